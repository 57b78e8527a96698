'use strict';

// engine.io-client's autoUnref: true (ws._socket.unref() once the WebSocket is open). The server
// runs here; the client runs in a child process (this file with the argument `client`) that
// connects, then has nothing left to wait for but the unref'd connection: it must exit by itself.

const http = require('http');
const { spawn } = require('child_process');
const { deadline, run } = require('./common.cjs');

if (process.argv[2] === 'client') {
  const { io } = require('socket.io-client');
  const WebSocket = require('ws');
  const keepAlive = setInterval(() => {}, 1000); // until socket.io's handshake is done
  const socket = io(process.argv[3], { transports: ['websocket'], autoUnref: true, reconnection: false });
  socket.on('connect', () => {
    process.stdout.write(JSON.stringify({ connected: true, wsNative: socket.io.engine.transport.ws instanceof WebSocket }) + '\n');
    clearInterval(keepAlive);
  });
  socket.on('connect_error', (err) => {
    process.stderr.write(`connect_error: ${err.message}\n`);
    process.exitCode = 3;
  });
} else {
  const { Server } = require('socket.io');
  run(async () => {
    const server = http.createServer();
    const io = new Server(server);
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const child = spawn(process.execPath, [__filename, 'client', `http://127.0.0.1:${server.address().port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const exit = await deadline(new Promise((resolve) => child.once('exit', (code) => resolve(code))), 'the client to exit', 10000)
      .catch((err) => {
        child.kill('SIGKILL');
        return err.message;
      });
    io.close();
    return { exit, stdout: stdout.trim(), stderr: stderr.trim().split('\n').slice(0, 4).join('\n') };
  });
}
