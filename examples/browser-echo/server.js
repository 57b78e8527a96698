'use strict';

// A page on one origin talking to a WebSocket server on another port, as in seed 003: the
// page server (--page-port, default 3201) serves index.html; the echo server (--ws-port,
// default 3200) is a plain ws-native WebSocketServer. WebSocket is not bound by the
// same-origin policy, so the server itself checks the Origin header the browser sends and
// accepts only pages served by the page server (otherwise any site the user visits could
// open a socket to it).
//
//   node examples/browser-echo/server.js [--page-port 3201] [--ws-port 3200] [--host 127.0.0.1]
//   then open the printed page URL

const fs = require('fs');
const http = require('http');
const path = require('path');
const { parseArgs } = require('util');
const { WebSocketServer } = require('../..');

const { values: args } = parseArgs({
  options: {
    'page-port': { type: 'string', default: '3201' },
    'ws-port': { type: 'string', default: '3200' },
    host: { type: 'string', default: '127.0.0.1' }
  }
});

const page = fs.readFileSync(path.join(__dirname, 'public', 'index.html'));

function urlHost(address) {
  return address.includes(':') ? `[${address}]` : address;
}

// Listen on both ports before printing, so the printed ports are the real ones (port 0 works).
const pageServer = http.createServer((req, res) => {
  const pathname = new URL(req.url, 'http://localhost').pathname;
  if (req.method === 'GET' && pathname === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length });
    res.end(page);
  } else if (req.method === 'GET' && pathname === '/config.js') {
    // The page learns where the WebSocket server is from here (its port may be chosen at start).
    const { port } = wss.address();
    const body = `window.WS_PORT = ${JSON.stringify(port)};\n`;
    res.writeHead(200, { 'Content-Type': 'text/javascript', 'Cache-Control': 'no-store' });
    res.end(body);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  }
});

let wss;

pageServer.listen(Number(args['page-port']), args.host, () => {
  const pagePort = pageServer.address().port;
  const allowedOrigins = new Set([
    `http://${urlHost(args.host)}:${pagePort}`,
    `http://localhost:${pagePort}`,
    `http://127.0.0.1:${pagePort}`
  ]);

  wss = new WebSocketServer({
    port: Number(args['ws-port']),
    host: args.host,
    maxPayload: 1024 * 1024,
    perMessageDeflate: true, // as browsers offer it
    verifyClient: ({ origin }) => allowedOrigins.has(origin)
  });

  wss.on('connection', (ws, req) => {
    console.log(`connection from ${req.headers.origin}`);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });

  wss.on('listening', () => {
    const { address, port } = wss.address();
    console.log(`websocket ws://${urlHost(address)}:${port}`);
    console.log(`listening http://${urlHost(pageServer.address().address)}:${pagePort}/`);
  });
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
