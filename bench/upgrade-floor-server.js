'use strict';

// Node's own floor for a WebSocket handshake on an http.Server: an 'upgrade' listener that
// writes a fixed 101 (the Sec-WebSocket-Accept computed here, with crypto) and nothing else
// of WebSocket's, then answers the client's close frame with a fixed close frame and ends the
// socket. No library: what is left is Node's HTTP parser, its net.Socket and the syscalls,
// which ws-native attached to an http.Server pays too. bench/run.js --with-uws measures it
// with the handshake row's load, so the table shows how close ws-native comes to it.
// Usage: node bench/upgrade-floor-server.js --port P   (prints "listening ws://127.0.0.1:P")

const crypto = require('crypto');
const http = require('http');
const { serverArgs } = require('./common');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const CLOSE_NORMAL = Buffer.from([0x88, 0x02, 0x03, 0xe8]); // close frame, code 1000, unmasked

/** The client's first bytes after the 101: a close frame (opcode 8) gets the fixed reply. */
function onFrameBytes(socket, data) {
  if (data.length > 0 && (data[0] & 0x0f) === 0x8) socket.end(CLOSE_NORMAL);
  else socket.destroy();
}

const { port } = serverArgs(
  process.argv.slice(2),
  'node bench/upgrade-floor-server.js --port P'
);
console.log(`Node ${process.version} http.Server 'upgrade': a fixed 101, then a fixed close`);

const server = http.createServer((req, res) => {
  res.writeHead(426).end();
});

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {}); // a load generator that resets is not a server failure
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string') return socket.destroy();
  const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`
  );
  if (head.length > 0) return onFrameBytes(socket, head);
  socket.once('data', (data) => onFrameBytes(socket, data));
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening ws://127.0.0.1:${server.address().port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
