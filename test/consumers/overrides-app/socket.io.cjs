'use strict';

// socket.io and socket.io-client with no wsEngine option: both sides get ws-native as their ws
// through the overrides. Rooms, broadcast (with socket.io-adapter's pre-encoded frame), binary,
// and reconnection after the server drops the client.

const http = require('http');
const { Server } = require('socket.io');
const { io: ioc } = require('socket.io-client');
const WebSocket = require('ws');
const { wsSeenBy, addonsLoaded, deadline, run } = require('./common.cjs');

const once = (emitter, event, what) => deadline(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))), what || event);
const ack = (socket, event, ...args) => deadline(new Promise((resolve) => socket.emit(event, ...args, resolve)), `the ack of ${event}`);

run(async () => {
  const server = http.createServer();
  const io = new Server(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const serverSockets = [];
  io.on('connection', (socket) => {
    serverSockets.push(socket);
    socket.on('join', (room, cb) => {
      socket.join(room);
      cb();
    });
    socket.on('echo', (data, cb) => cb(data));
    socket.on('who', (cb) => cb(socket.id));
  });
  const connect = async (options = {}) => {
    const client = ioc(url, { transports: ['websocket'], forceNew: true, reconnection: false, ...options });
    await once(client, 'connect', 'a client to connect');
    return client;
  };

  const [a, b] = [await connect(), await connect()];
  const results = {
    ws: { app: wsSeenBy(), engineIo: wsSeenBy('engine.io'), engineIoClient: wsSeenBy('engine.io-client'), socketIoAdapter: wsSeenBy('socket.io-adapter') },
    serverIsWsNative: serverSockets[0].conn.transport.socket instanceof WebSocket,
    clientIsWsNative: a.io.engine.transport.ws instanceof WebSocket,
    senderFrame: typeof (WebSocket.Sender && WebSocket.Sender.frame)
  };

  // rooms: b alone in 'r'; 'all' (to everyone) comes after, so its arrival closes the record.
  await ack(b, 'join', 'r');
  const seen = { a: [], b: [] };
  for (const [name, client] of [['a', a], ['b', b]]) {
    client.on('news', (n) => seen[name].push(`news ${n}`));
    client.on('all', (n) => seen[name].push(`all ${Buffer.from(n).length}`));
  }
  // socket.io-adapter pre-encodes a broadcast's frame once (WebSocket.Sender.frame) when ws has
  // it: for a text packet ('news'; a binary one such as 'all' goes in several parts, never so).
  const created = [];
  for (const s of serverSockets) s.conn.on('packetCreate', (p) => created.push(p));
  const allDone = Promise.all([a, b].map((c) => once(c, 'all', "'all'")));
  io.to('r').emit('news', 1);
  io.emit('all', Buffer.alloc(70000, 7));
  await allDone;
  results.rooms = seen;
  results.broadcastPreEncoded = created.some((p) => Array.isArray(p.options && p.options.wsPreEncodedFrame));

  // binary both ways
  const bin = Buffer.alloc(200000);
  for (let i = 0; i < bin.length; i++) bin[i] = i & 0xff;
  results.binaryEchoed = Buffer.from(await ack(a, 'echo', bin)).equals(bin);

  // reconnection after the server cuts the connection under socket.io
  const c = await connect({ reconnection: true, reconnectionDelay: 20, reconnectionDelayMax: 50 });
  const firstId = await ack(c, 'who');
  const disconnected = once(c, 'disconnect', "the client's 'disconnect'");
  const reconnected = once(c.io, 'reconnect', "the client's 'reconnect'");
  serverSockets[serverSockets.length - 1].conn.transport.socket.terminate();
  const [reason] = await disconnected;
  await reconnected;
  if (!c.connected) await once(c, 'connect');
  const secondId = await ack(c, 'who');
  results.reconnection = { reason, newSession: secondId !== firstId };

  results.addons = addonsLoaded();
  for (const client of [a, b, c]) client.disconnect();
  io.close();
  return results;
});
