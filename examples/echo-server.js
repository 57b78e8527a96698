'use strict';

// An echo server: every message comes back as it was sent (text as text, binary as binary).
// It is the server the benchmark drives.
//
//   node examples/echo-server.js --port 9001 [--host 127.0.0.1] [--transport auto|native|stream]
//                                [--deflate] [--port-mode] [--server-handler] [--tls]
//
// --port-mode: new WebSocketServer({ port }) instead of attaching to an http.Server of the
// app's; with the native transport the addon then owns the listening socket too.
// --server-handler: one wss.on('message', (ws, data, isBinary)) for every connection instead
// of a listener per connection (no closure per connection).
// --tls: wss from an https.Server with the self-signed pair in examples/tls (see
// wss-server.js); not with --port-mode, which, as ws's, has no TLS.

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { parseArgs } = require('util');
const { WebSocketServer } = require('..');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '9001' },
    host: { type: 'string', default: '127.0.0.1' },
    transport: { type: 'string', default: 'auto' },
    deflate: { type: 'boolean', default: false },
    'port-mode': { type: 'boolean', default: false },
    'server-handler': { type: 'boolean', default: false },
    tls: { type: 'boolean', default: false }
  }
});

const portMode = args['port-mode'];
if (portMode && args.tls) {
  console.error('--tls needs an https.Server: it does not go with --port-mode');
  process.exit(2);
}
function answer(req, res) {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('ws-native echo server: connect with a WebSocket client\n');
}
function tlsPair() {
  const dir = path.join(__dirname, 'tls');
  return {
    cert: fs.readFileSync(path.join(dir, 'cert.pem')),
    key: fs.readFileSync(path.join(dir, 'key.pem'))
  };
}
const server = portMode
  ? null
  : args.tls
    ? https.createServer(tlsPair(), answer)
    : http.createServer(answer);

const wss = new WebSocketServer({
  ...(portMode ? { port: Number(args.port), host: args.host } : { server }),
  maxPayload: 64 * 1024 * 1024,
  // As a ws user turns it on: `perMessageDeflate: true` (context takeover, threshold 1 KiB).
  perMessageDeflate: args.deflate,
  // 'auto': the addon owns each plain TCP connection after the upgrade (the native transport).
  transport: args.transport
});

if (args['server-handler']) {
  wss.on('message', (ws, data, isBinary) => ws.send(data, { binary: isBinary }));
} else {
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
}

function listening() {
  const { address, port } = (portMode ? wss : server).address();
  console.log(`listening ${args.tls ? 'wss' : 'ws'}://${address}:${port}`);
}
if (portMode) wss.on('listening', listening);
else server.listen(Number(args.port), args.host, listening);

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
