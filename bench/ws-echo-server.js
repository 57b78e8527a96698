'use strict';

// The `ws` package's echo server, the baseline that bench/run.js measures ws-native against.
// Usage: node bench/ws-echo-server.js --port P [--deflate] [--tls]
//   (prints "listening ws://127.0.0.1:P" when ready; --deflate turns on ws's permessage-deflate
//   with its defaults, `perMessageDeflate: true`, as a ws user would; --tls serves wss from an
//   https.Server, ws's way to do TLS)

const https = require('https');
const path = require('path');
const { WebSocketServer } = require('ws');
const { serverArgs, tlsOptions } = require('./common');

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

const { port, deflate, tls } = serverArgs(
  process.argv.slice(2),
  'node bench/ws-echo-server.js --port P [--deflate] [--tls]',
  ['--deflate', '--tls']
);
const utf8Note = require('buffer').isUtf8 ? ' (unused: ws prefers buffer.isUtf8 on this Node)' : '';
console.log(
  `ws ${require('ws/package.json').version}, bufferutil: ${addonStatus('bufferutil')}, ` +
    `utf-8-validate: ${addonStatus('utf-8-validate')}${utf8Note}`
);

const server = tls ? https.createServer(tlsOptions()) : null;
const wss = new WebSocketServer({
  ...(server ? { server } : { host: '127.0.0.1', port }),
  perMessageDeflate: deflate,
  maxPayload: 64 * 1024 * 1024
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a load generator that quits mid-run is not a server failure
});

const listening = () =>
  console.log(`listening ${tls ? 'wss' : 'ws'}://127.0.0.1:${wss.address().port}`);
const failed = (err) => {
  console.error(err.message);
  process.exit(1);
};
if (server) server.on('error', failed).listen(port, '127.0.0.1', listening);
else wss.on('listening', listening);
wss.on('error', failed);

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
