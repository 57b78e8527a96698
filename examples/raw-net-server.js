'use strict';

// WebSocket on a plain net.Server, with no http.Server: the scenario of seeds 003 and 004, which
// read the handshake off a `net` socket by hand (split the request on '\r\n', hash
// Sec-WebSocket-Key, write the 101, then parse frames themselves). Here wss.handleSocket()
// does all of it: it parses the request head (in C), refuses what is not a valid handshake
// with its HTTP status, answers the 101, and hands over a connection. Every message is echoed.
//
//   node examples/raw-net-server.js [port]          (default 3200; 0 picks a free port)
//   node examples/raw-net-server.js --port 3200 [--host 127.0.0.1]
//
// Then, in a browser console: new WebSocket('ws://localhost:3200').onmessage = (e) => ...

const net = require('net');
const { parseArgs } = require('util');
const { WebSocketServer } = require('..');

const { values: args, positionals } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' }
  },
  allowPositionals: true
});
const port = Number(args.port ?? positionals[0] ?? 3200);

// noServer: no http.Server to hook; the net.Server below hands each socket over itself.
const wss = new WebSocketServer({
  noServer: true,
  maxHeaderSize: 8 * 1024, // a browser's handshake is well under 1 KiB
  headersTimeout: 5000 // a client that connects and says nothing is answered 408
});

wss.on('connection', (ws, req) => {
  console.log(`connection from ${req.socket.remoteAddress} for ${req.url}`);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

const server = net.createServer((socket) => wss.handleSocket(socket));

server.listen(port, args.host, () => {
  const { address, port } = server.address();
  console.log(`listening ws://${address}:${port}`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
