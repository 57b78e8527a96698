'use strict';

// A client speaking Engine.IO 3 to a socket.io server without allowEIO3: engine.io takes the
// upgrade, then rejects it (connection_error code 5) and destroys the socket it had handed to
// ws's handleUpgrade. Reports whether the server then closed the connection (the raw client
// below only reads, so the close can only come from the server).

const crypto = require('crypto');
const http = require('http');
const net = require('net');
const { Server } = require('socket.io');
const { deadline, run } = require('./common.cjs');

run(async () => {
  const server = http.createServer();
  const io = new Server(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const rejected = new Promise((resolve) => io.engine.once('connection_error', (err) => resolve(err.code)));
  const socket = net.connect(server.address().port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk) => (received += chunk.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(
    'GET /socket.io/?EIO=3&transport=websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n' +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
      'Sec-WebSocket-Version: 13\r\n\r\n'
  );
  const code = await deadline(rejected, 'connection_error');
  const serverClosed = await deadline(closed, 'the server to close the connection', 5000).then(() => true, () => false);
  socket.destroy();
  io.close();
  return { status: received.split('\r\n')[0], code, serverClosed };
});
