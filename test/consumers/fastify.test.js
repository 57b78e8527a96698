'use strict';

// @fastify/websocket on fastify 5 with ws-native as its ws (see support/require-with-ws.js):
// routes declared with { websocket: true }, the socket a route handler gets, fastify's hooks in
// front of the upgrade, and app.close(). Real sockets on 127.0.0.1; WS_IMPL=ws runs the same
// with ws.

const assert = require('assert');
const Fastify = require('fastify');

const impl = require('../support/impl');
const { once, withTimeout, httpGet } = require('../support/net-helpers');
const { requireWithWs } = require('./support/require-with-ws');

const fastifyWebsocket = requireWithWs('@fastify/websocket');
const { WebSocket } = impl;

describe('consumers: @fastify/websocket on fastify 5', function () {
  let app;
  let base;
  let sockets;
  let clients;

  beforeEach(async function () {
    clients = [];
    sockets = [];
    app = Fastify({ logger: false });
    await app.register(fastifyWebsocket, { options: { maxPayload: 4 * 1024 * 1024 } });
    app.addHook('preValidation', async (request, reply) => {
      if (request.url.startsWith('/private') && request.headers.authorization !== 'Bearer yes') {
        await reply.code(401).send({ error: 'no' });
      }
    });
    app.get('/echo', { websocket: true }, (socket) => {
      sockets.push(socket);
      socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    });
    app.get('/info/:room', { websocket: true }, (socket, request) => {
      sockets.push(socket);
      socket.on('message', (data) => {
        if (data.toString() === 'ping me') return socket.ping('from the route');
        if (data.toString() === 'bye') return socket.close(4001, 'bye from the route');
        socket.send(JSON.stringify({
          params: request.params,
          query: request.query,
          header: request.headers['x-test'],
          isWs: request.ws,
          protocol: socket.protocol,
          implWebSocket: socket instanceof WebSocket,
          clients: app.websocketServer.clients.size
        }));
      });
      socket.on('pong', (data) => socket.send(`pong: ${data}`));
    });
    app.route({
      method: 'GET',
      url: '/both',
      handler: (request, reply) => reply.send({ http: true }),
      wsHandler: (socket) => socket.send('over the websocket')
    });
    app.get('/private/feed', { websocket: true }, (socket) => socket.send('secret'));
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `ws://127.0.0.1:${app.server.address().port}`;
  });

  afterEach(async function () {
    for (const ws of clients) ws.terminate();
    await app.close();
  });

  /** Opens a client whose messages queue up from the start (a route may send at once). */
  function open(path, protocols, options) {
    const ws = new WebSocket(base + path, protocols, options);
    clients.push(ws);
    ws.inbox = [];
    ws.on('message', (data, isBinary) => {
      ws.inbox.push([data, isBinary]);
      ws.emit('queued');
    });
    return once(ws, 'open', { rejectOnError: true }).then(() => ws);
  }

  /** The next [data, isBinary] the client received. */
  async function next(ws) {
    if (ws.inbox.length === 0) await once(ws, 'queued', { rejectOnError: true });
    return ws.inbox.shift();
  }

  it('echoes text and binary messages of every frame length encoding', async function () {
    const ws = await open('/echo');
    for (const size of [0, 1, 125, 126, 65535, 65536, 1024 * 1024 + 7]) {
      const text = 'é'.repeat(size >> 1) + 'a'.repeat(size & 1);
      ws.send(text);
      const [data, isBinary] = await next(ws);
      assert.strictEqual(isBinary, false);
      assert.strictEqual(data.toString(), text);

      const bin = Buffer.alloc(size);
      for (let i = 0; i < size; i++) bin[i] = (i * 7 + size) & 0xff;
      ws.send(bin);
      const [echoed, echoedBinary] = await next(ws);
      assert.strictEqual(echoedBinary, true);
      assert.ok(Buffer.from(echoed).equals(bin), `${size} bytes came back changed`);
    }
  });

  it("the route's socket: a ws-native WebSocket with the request's params, query, headers and subprotocol", async function () {
    const ws = await open('/info/lobby?user=ann', 'chat', { headers: { 'x-test': 'hello' } });
    ws.send('tell me');
    const [data] = await next(ws);
    assert.deepStrictEqual(JSON.parse(data), {
      params: { room: 'lobby' },
      query: { user: 'ann' },
      header: 'hello',
      isWs: true,
      protocol: 'chat',
      implWebSocket: true,
      clients: 1
    });
    assert.strictEqual(ws.protocol, 'chat');
  });

  it("the route's socket pings (and hears the pong) and closes with its code and reason", async function () {
    const ws = await open('/info/lobby');
    ws.send('ping me');
    const [pingData] = await once(ws, 'ping');
    assert.strictEqual(pingData.toString(), 'from the route');
    const [pong] = await next(ws);
    assert.strictEqual(pong.toString(), 'pong: from the route');

    const serverClosed = once(sockets[0], 'close');
    ws.send('bye');
    const [code, reason] = await once(ws, 'close');
    assert.strictEqual(code, 4001);
    assert.strictEqual(reason.toString(), 'bye from the route');
    const [serverCode] = await serverClosed;
    assert.strictEqual(serverCode, 4001);
    assert.strictEqual(app.websocketServer.clients.size, 0);
  });

  it('one route serves HTTP and WebSocket (handler and wsHandler)', async function () {
    const res = await app.inject({ method: 'GET', url: '/both' });
    assert.deepStrictEqual(res.json(), { http: true });
    const http = await httpGet(`http://127.0.0.1:${app.server.address().port}/both`);
    assert.deepStrictEqual(JSON.parse(http.body), { http: true });
    const ws = await open('/both');
    const [data] = await next(ws);
    assert.strictEqual(data.toString(), 'over the websocket');
  });

  it("fastify's hooks run before the upgrade: a 401 from preValidation refuses it", async function () {
    const ws = new WebSocket(`${base}/private/feed`);
    clients.push(ws);
    const [, res] = await once(ws, 'unexpected-response');
    assert.strictEqual(res.statusCode, 401);
    res.resume();
    ws.on('error', () => {});

    const allowed = await open('/private/feed', [], { headers: { authorization: 'Bearer yes' } });
    const [data] = await next(allowed);
    assert.strictEqual(data.toString(), 'secret');
  });

  it('app.close() closes the open WebSockets', async function () {
    const ws = await open('/echo');
    ws.send('x');
    await next(ws);
    const closing = once(ws, 'close');
    await withTimeout(app.close(), 'app.close()');
    const [code] = await closing;
    // @fastify/websocket's preClose calls close() with no code: the peer sees 1005.
    assert.strictEqual(code, 1005);
  });
});
