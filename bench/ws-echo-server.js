'use strict';

// The `ws` package's echo server, the baseline that bench/run.js measures ws-native against.
// Usage: node bench/ws-echo-server.js --port P   (prints "listening ws://127.0.0.1:P" when ready)

const path = require('path');
const { WebSocketServer } = require('ws');

function parsePort(argv) {
  const i = argv.indexOf('--port');
  const port = i === -1 ? 8080 : Number(argv[i + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('usage: node bench/ws-echo-server.js --port P');
    process.exit(2);
  }
  return port;
}

// ws loads these silently when it can, so say which native helpers this run really uses.
function addonStatus(name) {
  let dir;
  try {
    dir = path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    return 'not installed';
  }
  try {
    require('node-gyp-build').path(dir);
    return 'native';
  } catch {
    return 'JS fallback';
  }
}

const port = parsePort(process.argv.slice(2));
const utf8Note = require('buffer').isUtf8 ? ' (unused: ws prefers buffer.isUtf8 on this Node)' : '';
console.log(
  `ws ${require('ws/package.json').version}, bufferutil: ${addonStatus('bufferutil')}, ` +
    `utf-8-validate: ${addonStatus('utf-8-validate')}${utf8Note}`
);

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a load generator that quits mid-run is not a server failure
});

wss.on('listening', () => console.log(`listening ws://127.0.0.1:${wss.address().port}`));
wss.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
