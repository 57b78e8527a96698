'use strict';

// express-ws on express 5 with ws-native as its ws (see support/require-with-ws.js; express-ws
// itself depends on ws 7): app.ws() and Router#ws() routes on the http.Server that also serves
// the app's HTTP routes. Real sockets on 127.0.0.1; WS_IMPL=ws runs the same with ws.

const assert = require('assert');
const express = require('express');
const http = require('http');

const impl = require('../support/impl');
const { once, listen, closeServer, httpGet } = require('../support/net-helpers');
const { requireWithWs } = require('./support/require-with-ws');

const expressWs = requireWithWs('express-ws');
const { WebSocket } = impl;

describe('consumers: express-ws on express 5', function () {
  let server;
  let wsInstance;
  let base;
  let clients;

  beforeEach(async function () {
    clients = [];
    const app = express();
    server = http.createServer(app);
    wsInstance = expressWs(app, server);
    app.ws('/echo', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    const router = express.Router();
    // express 5's Router is a class, so express-ws's patch of express.Router does not reach its
    // instances: applyTo() adds ws() to one.
    wsInstance.applyTo(router);
    router.ws('/:id', (ws, req) => {
      ws.send(JSON.stringify({
        id: req.params.id,
        query: req.query,
        implWebSocket: ws instanceof WebSocket,
        clients: wsInstance.getWss().clients.size
      }));
    });
    app.use('/rooms', router);
    app.get('/plain', (req, res) => res.send('plain http'));
    const port = await listen(server);
    base = `127.0.0.1:${port}`;
  });

  afterEach(async function () {
    for (const ws of clients) ws.terminate();
    await closeServer(server);
  });

  function open(path) {
    const ws = new WebSocket(`ws://${base}${path}`);
    clients.push(ws);
    // Queued from the start: a route may send as soon as the connection is up.
    ws.inbox = [];
    ws.on('message', (data, isBinary) => {
      ws.inbox.push([data, isBinary]);
      ws.emit('queued');
    });
    return once(ws, 'open', { rejectOnError: true }).then(() => ws);
  }

  async function next(ws) {
    if (ws.inbox.length === 0) await once(ws, 'queued', { rejectOnError: true });
    return ws.inbox.shift();
  }

  it('an app.ws() route echoes text and binary, many messages in order', async function () {
    const ws = await open('/echo');
    const sent = [];
    for (let i = 0; i < 200; i++) {
      const msg = i % 2 ? Buffer.alloc(i * 40, i) : `message ${i} ${'x'.repeat(i * 40)}`;
      sent.push(msg);
      ws.send(msg);
    }
    for (const msg of sent) {
      const [data, isBinary] = await next(ws);
      assert.strictEqual(isBinary, Buffer.isBuffer(msg));
      assert.ok(isBinary ? Buffer.from(data).equals(msg) : data.toString() === msg);
    }
  });

  it('a Router#ws() route gets its params and query; the socket is a ws-native WebSocket', async function () {
    const ws = await open('/rooms/42?user=bob');
    const [data] = await next(ws);
    assert.deepStrictEqual(JSON.parse(data), { id: '42', query: { user: 'bob' }, implWebSocket: true, clients: 1 });
  });

  it('HTTP routes keep working on the same server, and a path with no ws route is closed', async function () {
    const res = await httpGet(`http://${base}/plain`);
    assert.strictEqual(res.body, 'plain http');
    const accepted = once(wsInstance.getWss(), 'connection');
    const ws = await open('/nowhere');
    const [serverSide] = await accepted;
    const serverClosed = once(serverSide, 'close');
    const [code] = await once(ws, 'close');
    // express-ws calls close() with no code on a WebSocket no route took: the peer sees 1005.
    assert.strictEqual(code, 1005);
    await serverClosed;
    assert.strictEqual(wsInstance.getWss().clients.size, 0);
  });
});
