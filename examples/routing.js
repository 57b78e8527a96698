'use strict';

// One http.Server, two WebSocket endpoints: the application routes 'upgrade' requests by
// path to two servers created with { noServer: true }, each negotiating its own subprotocols.
// Plain HTTP requests keep working beside them.
//
//   node examples/routing.js --port 8999
//   then connect to ws://127.0.0.1:8999/chat (subprotocols "chat.v2", "chat.v1")
//   or ws://127.0.0.1:8999/echo

const http = require('http');
const { parseArgs } = require('util');
const { WebSocketServer } = require('..');

const { values: args } = parseArgs({
  options: { port: { type: 'string', default: '8999' } }
});

const chat = new WebSocketServer({
  noServer: true,
  // Pick the newest version the client offers, or refuse the subprotocol (false).
  handleProtocols(protocols) {
    for (const wanted of ['chat.v2', 'chat.v1']) if (protocols.has(wanted)) return wanted;
    return false;
  }
});
chat.on('connection', (ws) => {
  ws.send(`welcome to chat (protocol: ${ws.protocol || 'none'})`);
  ws.on('message', (data) => {
    for (const client of chat.clients) client.send(`chat: ${data}`);
  });
});

const echo = new WebSocketServer({ noServer: true });
echo.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('WebSocket endpoints: /chat and /echo\n');
});

server.on('upgrade', (req, socket, head) => {
  const { pathname } = new URL(req.url, 'http://localhost');
  const target = pathname === '/chat' ? chat : pathname === '/echo' ? echo : null;
  if (target === null) {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  target.handleUpgrade(req, socket, head, (ws) => target.emit('connection', ws, req));
});

server.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port} (/chat, /echo)`);
});
