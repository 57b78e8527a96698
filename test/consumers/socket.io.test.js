'use strict';

// socket.io with ws-native as engine.io's `wsEngine`, the line the README gives users:
//   new Server(httpServer, { wsEngine: require('ws-native').Server })
// socket.io-client (its own ws underneath) is the peer, except where a test says otherwise.
// Everything runs through real sockets on 127.0.0.1; waits have deadlines (net-helpers) and no
// test asserts a timing. WS_IMPL=ws runs the same tests with ws as the engine, to check that
// each expects what ws does.

const assert = require('assert');
const http = require('http');
const path = require('path');
const { spawn } = require('child_process');
const { Server } = require('socket.io');
const { io: ioc } = require('socket.io-client');

const impl = require('../support/impl');
const {
  once,
  withTimeout,
  closed,
  listen,
  closeServer,
  upgradeRequest,
  rawRequest
} = require('../support/net-helpers');

const { WebSocket, WebSocketServer } = impl;

/** Resolves with the value an ack callback is called with. */
function emitWithAck(socket, event, ...args) {
  return withTimeout(
    new Promise((resolve) => socket.emit(event, ...args, (reply) => resolve(reply))),
    `the ack of '${event}'`
  );
}

describe('consumers: socket.io with ws-native as wsEngine', function () {
  let httpServer;
  let io;
  let port;
  let clients;

  async function start(options = {}) {
    httpServer = http.createServer();
    io = new Server(httpServer, { wsEngine: WebSocketServer, ...options });
    port = await listen(httpServer);
  }

  /** A connected socket.io-client; websocket only unless `options.transports` says otherwise. */
  async function connect(options = {}) {
    const client = ioc(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      ...options
    });
    clients.push(client);
    if (!client.connected) await once(client, 'connect');
    return client;
  }

  beforeEach(function () {
    clients = [];
  });

  afterEach(async function () {
    for (const client of clients) client.disconnect();
    if (io) await withTimeout(new Promise((resolve) => io.close(() => resolve())), 'io.close()').catch(() => {});
    if (httpServer) await closeServer(httpServer);
    io = null;
    httpServer = null;
  });

  it('connects over websocket; the server side of the connection is a ws-native WebSocket', async function () {
    await start();
    const seen = new Promise((resolve) => io.once('connection', resolve));
    io.on('connection', (socket) => socket.on('hello', (name, ack) => ack(`hello ${name}`)));
    const client = await connect();
    const socket = await withTimeout(seen, "the server's 'connection'");
    assert.strictEqual(socket.conn.transport.name, 'websocket');
    assert.ok(socket.conn.transport.socket instanceof WebSocket, 'the transport socket is not the wsEngine\'s WebSocket');
    assert.strictEqual(await emitWithAck(client, 'hello', 'you'), 'hello you');
  });

  it('upgrades a polling connection to websocket and keeps talking', async function () {
    await start();
    io.on('connection', (socket) => socket.on('ping?', (ack) => ack({ transport: socket.conn.transport.name })));
    const client = await connect({ transports: ['polling', 'websocket'] });
    if (client.io.engine.transport.name !== 'websocket') {
      const [transport] = await once(client.io.engine, 'upgrade');
      assert.strictEqual(transport.name, 'websocket');
    }
    assert.deepStrictEqual(await emitWithAck(client, 'ping?'), { transport: 'websocket' });
  });

  it('rooms: an emit to a room reaches its members only, and leaving a room stops it', async function () {
    await start();
    io.on('connection', (socket) => {
      socket.on('join', (room, ack) => {
        socket.join(room);
        ack();
      });
      socket.on('leave', (room, ack) => {
        socket.leave(room);
        ack();
      });
    });
    const [a, b, c] = [await connect(), await connect(), await connect()];
    const seen = new Map([[a, []], [b, []], [c, []]]);
    for (const [client, list] of seen) {
      client.on('news', (n) => list.push(`news ${n}`));
      client.on('all', (n) => list.push(`all ${n}`));
    }
    await emitWithAck(a, 'join', 'r');
    await emitWithAck(b, 'join', 'r');
    assert.strictEqual((await io.in('r').fetchSockets()).length, 2);

    // Each connection delivers in order, so 'all' arriving proves that an earlier 'news' that
    // did not arrive was not sent.
    const allArrived = (n) => Promise.all([a, b, c].map((client) => withTimeout(
      new Promise((resolve) => client.on('all', (m) => m === n && resolve())), `'all ${n}'`)));
    let arrived = allArrived(1);
    io.to('r').emit('news', 1);
    io.emit('all', 1);
    await arrived;

    await emitWithAck(a, 'leave', 'r');
    arrived = allArrived(2);
    io.to('r').emit('news', 2);
    io.emit('all', 2);
    await arrived;

    assert.deepStrictEqual(seen.get(a), ['news 1', 'all 1', 'all 2']);
    assert.deepStrictEqual(seen.get(b), ['news 1', 'all 1', 'news 2', 'all 2']);
    assert.deepStrictEqual(seen.get(c), ['all 1', 'all 2']);
  });

  it('broadcast: socket.broadcast reaches every other client, and a namespace emit all of them', async function () {
    await start();
    io.on('connection', (socket) => {
      socket.on('shout', (text) => {
        socket.broadcast.emit('shouted', text);
        io.emit('done', text);
      });
    });
    const group = [];
    for (let i = 0; i < 8; i++) group.push(await connect());
    const seen = group.map(() => []);
    const done = group.map((client, i) => {
      client.on('shouted', (text) => seen[i].push(`shouted ${text.length}`));
      return withTimeout(new Promise((resolve) => client.on('done', (text) => {
        seen[i].push(`done ${text.length}`);
        resolve();
      })), `'done' on client ${i}`);
    });
    // Large enough to need the 16-bit and the 64-bit frame lengths.
    const text = 'x'.repeat(70000);
    group[0].emit('shout', text);
    await Promise.all(done);
    assert.deepStrictEqual(seen[0], ['done 70000']);
    for (let i = 1; i < group.length; i++) assert.deepStrictEqual(seen[i], ['shouted 70000', 'done 70000']);
  });

  // Issue 17 point 3: engine.io writes a broadcast that socket.io-adapter pre-encoded once
  // (with WebSocket.Sender.frame) through ws._sender.sendFrame when the server's WebSocket has
  // it, and falls back to framing the packet's data again when it has not. The pre-encoded
  // frame here carries another payload than the packet's data, as in engine.io's own test, so
  // the client tells which of the two went out. Fails while ws-native has no _sender.sendFrame
  // (the client gets 'from the data').
  it('writes a pre-encoded broadcast frame as it is (ws._sender.sendFrame; issue 17 point 3)', async function () {
    await start();
    const connected = new Promise((resolve) => io.once('connection', resolve));
    const client = await connect();
    const socket = await withTimeout(connected, "the server's 'connection'");
    const which = withTimeout(new Promise((resolve) => client.on('which', resolve)), "'which'");
    const preEncoded = Buffer.from('42["which","from the pre-encoded frame"]');
    socket.conn.send('2["which","from the data"]', {
      wsPreEncodedFrame: [Buffer.from([0x81, preEncoded.length]), preEncoded]
    });
    assert.strictEqual(await which, 'from the pre-encoded frame');
  });

  it('binary payloads arrive intact both ways, at every frame length encoding', async function () {
    await start({ maxHttpBufferSize: 4 * 1024 * 1024 }); // the default (1e6 bytes) < the 1 MiB payload
    io.on('connection', (socket) => {
      socket.on('echo', (payload, ack) => {
        ack({ ...payload, serverSawBuffers: Object.values(payload).every((v) => Buffer.isBuffer(v)) });
      });
      socket.on('send me', (size, ack) => {
        socket.emit('bytes', Buffer.alloc(size, size & 0xff));
        ack();
      });
    });
    const client = await connect();
    const payload = {};
    for (const size of [0, 1, 125, 126, 65535, 65536, 1024 * 1024 + 3]) {
      const buf = Buffer.alloc(size);
      for (let i = 0; i < size; i++) buf[i] = (i * 31 + size) & 0xff;
      payload[`b${size}`] = buf;
    }
    const reply = await emitWithAck(client, 'echo', payload);
    assert.strictEqual(reply.serverSawBuffers, true);
    for (const key of Object.keys(payload)) {
      assert.ok(Buffer.from(reply[key]).equals(payload[key]), `${key} came back changed`);
    }

    const received = [];
    client.on('bytes', (data) => received.push(Buffer.from(data)));
    for (const size of [3, 70000]) await emitWithAck(client, 'send me', size);
    assert.deepStrictEqual(received.map((b) => [b.length, b[0]]), [[3, 3], [70000, 70000 & 0xff]]);
  });

  it('reconnects after the server drops the connection, with a new session', async function () {
    await start();
    const ids = [];
    io.on('connection', (socket) => {
      ids.push(socket.id);
      socket.on('who', (ack) => ack(socket.id));
    });
    const client = await connect({ reconnection: true, reconnectionDelay: 20, reconnectionDelayMax: 50 });
    const firstId = await emitWithAck(client, 'who');

    const disconnected = once(client, 'disconnect');
    const reconnected = once(client.io, 'reconnect');
    // The connection is cut under socket.io: the server's WebSocket is terminated, no
    // socket.io or engine.io goodbye.
    const [serverSide] = await io.fetchSockets();
    io.sockets.sockets.get(serverSide.id).conn.transport.socket.terminate();

    const [reason] = await disconnected;
    assert.match(reason, /^transport (close|error)$/);
    await reconnected;
    if (!client.connected) await once(client, 'connect');
    const secondId = await emitWithAck(client, 'who');
    assert.notStrictEqual(secondId, firstId);
    assert.deepStrictEqual(ids, [firstId, secondId]);
  });

  // Issue 17 point 1: engine.io accepts the upgrade (handleUpgrade), then rejects a client
  // speaking Engine.IO 3 to a server without allowEIO3 by writing an HTTP 400 and calling
  // destroy() on the net.Socket it had passed to handleUpgrade. With ws that closes the
  // connection. The raw client here only reads: it sees the connection close only if the server
  // closes it. Fails on the native transport while destroy() on the handed-over socket does
  // nothing (the connection then stays open, owned by no one).
  it('closes the connection of a rejected Engine.IO 3 upgrade (no allowEIO3; issue 17 point 1)', async function () {
    await start();
    const rejected = once(io.engine, 'connection_error');
    const res = await rawRequest(port, upgradeRequest({ path: '/socket.io/?EIO=3&transport=websocket' }));
    try {
      assert.strictEqual(res.status, 101);
      const [err] = await rejected;
      assert.strictEqual(err.code, 5);
      assert.strictEqual(err.message, 'Unsupported protocol version');
      res.socket.on('error', () => {});
      res.socket.resume();
      await closed(res.socket);
    } finally {
      res.socket.destroy();
    }
  });

  // Issue 17 point 2: engine.io-client with `autoUnref: true` calls ws._socket.unref() when the
  // WebSocket opens, so that the connection does not keep the process alive. Here the client's
  // WebSocket is ws-native's (engine.io-client's NodeWebSocket transport with createSocket
  // overridden, its documented way to bring another WebSocket), in a child process that must
  // connect and then, with nothing else left to wait for, exit on its own while the
  // connection is still open. Fails on the native
  // transport while ws._socket has no unref() (TypeError in engine.io-client's onopen).
  it("engine.io-client's autoUnref: a connected client does not keep its process alive (issue 17 point 2)", async function () {
    await start();
    const connected = new Promise((resolve) => io.once('connection', resolve));
    const script = `
      const { io } = require(${JSON.stringify(require.resolve('socket.io-client'))});
      const { NodeWebSocket } = require(${JSON.stringify(
        require.resolve('engine.io-client', { paths: [path.dirname(require.resolve('socket.io-client'))] })
      )});
      const impl = require(${JSON.stringify(impl.isWs ? require.resolve('ws') : require.resolve('../..'))});
      class ImplWebSocket extends NodeWebSocket {
        createSocket(uri, protocols, opts) { return new impl.WebSocket(uri, protocols, opts); }
      }
      // Alive until socket.io's handshake is done (the unref'd connection would not keep it).
      const keepAlive = setInterval(() => {}, 1000);
      const socket = io(process.argv[1], { transports: [ImplWebSocket], autoUnref: true, reconnection: false });
      socket.on('connect', () => {
        const ws = socket.io.engine.transport.ws;
        console.log(JSON.stringify({ connected: true, implWebSocket: ws instanceof impl.WebSocket }));
        clearInterval(keepAlive); // from here on only the connection is left, and it is unref'd
      });
      socket.on('connect_error', (err) => { console.error('connect_error', err); process.exitCode = 3; });
    `;
    const child = spawn(process.execPath, ['-e', script, `http://127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBUG: '' }
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    try {
      const [code, signal] = await once(child, 'exit', { timeout: 10000 }).catch((err) => {
        throw new Error(`the client process did not exit on its own (${err.message}); it printed: ${stdout}${stderr}`);
      });
      assert.strictEqual(code, 0, `the client process exited with ${code} ${signal}: ${stdout}${stderr}`);
      assert.deepStrictEqual(JSON.parse(stdout.trim().split('\n').pop()), { connected: true, implWebSocket: true });
      await withTimeout(connected, "the server's 'connection'");
    } finally {
      child.kill('SIGKILL');
    }
  });
});
