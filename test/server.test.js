'use strict';

// WebSocketServer: modes (port / server / noServer), routing, clients tracking, close(),
// handleUpgrade misuse, maxPayload, and the properties of a server-side connection.
// The peer is the `ws` package's client (ws-native's client comes later) or a raw socket.

const assert = require('assert');
const http = require('http');

const { WebSocket, WebSocketServer } = require('./support/impl');
const {
  Cleanup,
  closed,
  createHttpServer,
  OP,
  frame,
  listen,
  maskedFrame,
  nextMessage,
  once,
  openWsClient,
  rawRequest,
  readAll,
  readFrame,
  upgradeRequest,
  withTimeout,
  wssPort
} = require('./support/net-helpers');

const ONE_OF = 'One and only one of the "port", "server", or "noServer" options must be specified';

describe('WebSocketServer', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** A ws-package client, registered for cleanup. */
  async function client(url, options) {
    return cleanup.add(await openWsClient(url, options));
  }

  function echo(wss, prefix = '') {
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => {
        ws.send(isBinary ? data : prefix + data.toString(), { binary: isBinary });
      });
    });
  }

  describe('constructor', function () {
    it('throws a TypeError unless exactly one of port, server, noServer is given', function () {
      const server = http.createServer();
      const bad = [
        undefined,
        {},
        { port: 0, server },
        { port: 0, noServer: true },
        { server, noServer: true },
        { port: 0, server, noServer: true },
        { path: '/x' }
      ];
      for (const options of bad) {
        assert.throws(
          () => new WebSocketServer(options),
          (err) => err instanceof TypeError && err.message === ONE_OF,
          `options ${JSON.stringify(options && Object.keys(options))}`
        );
      }
      assert.strictEqual(server.listening, false);
      assert.strictEqual(server.listenerCount('upgrade'), 0);
    });

    it('port mode: creates its own server, emits listening, calls back, reports address()', async function () {
      let callbackCalls = 0;
      const wss = cleanup.add(
        new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => callbackCalls++)
      );
      await once(wss, 'listening');
      assert.strictEqual(callbackCalls, 1);
      const addr = wss.address();
      assert.strictEqual(addr.address, '127.0.0.1');
      assert.strictEqual(addr.family, 'IPv4');
      assert.strictEqual(typeof addr.port, 'number');
      assert.ok(addr.port > 0);

      echo(wss);
      const ws = await client(`ws://127.0.0.1:${addr.port}`);
      ws.send('hi');
      const [data, isBinary] = await nextMessage(ws);
      assert.strictEqual(data.toString(), 'hi');
      assert.strictEqual(isBinary, false);
    });

    it('port mode: a plain HTTP GET gets 426 Upgrade Required', async function () {
      const wss = cleanup.add(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
      const port = await wssPort(wss);
      const res = await rawRequest(
        port,
        'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
      );
      cleanup.add(res.socket);
      assert.strictEqual(res.statusLine, 'HTTP/1.1 426 Upgrade Required');
      assert.strictEqual(res.headers['content-type'], 'text/plain');
      assert.strictEqual(res.headers['content-length'], '16');
      assert.strictEqual(res.body, 'Upgrade Required');
    });

    it('noServer mode: address() throws', function () {
      const wss = cleanup.add(new WebSocketServer({ noServer: true }));
      assert.throws(
        () => wss.address(),
        (err) => err instanceof Error && err.message === 'The server is operating in "noServer" mode'
      );
    });
  });

  describe('server mode', function () {
    it('shares an http.Server with normal request handling', async function () {
      const { server, port } = await createHttpServer((req, res) => {
        const body = `app:${req.url}`;
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
        res.end(body);
      });
      cleanup.add(server);
      const wss = cleanup.add(new WebSocketServer({ server }));
      echo(wss, 'echo:');

      const res = await rawRequest(port, 'GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n');
      cleanup.add(res.socket);
      assert.strictEqual(res.statusLine, 'HTTP/1.1 200 OK');
      assert.strictEqual(res.body, 'app:/x');

      const ws = await client(`ws://127.0.0.1:${port}/x`);
      ws.send('hello');
      const [data] = await nextMessage(ws);
      assert.strictEqual(data.toString(), 'echo:hello');

      // Normal requests still work while a WebSocket is open.
      const res2 = await rawRequest(port, 'GET /yz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      cleanup.add(res2.socket);
      assert.strictEqual(res2.status, 200);
      assert.strictEqual(res2.body, 'app:/yz');
    });

    it("forwards the http.Server's 'listening' event", async function () {
      const server = cleanup.add(http.createServer());
      const wss = cleanup.add(new WebSocketServer({ server }));
      const listening = once(wss, 'listening');
      await listen(server);
      await listening;
      assert.strictEqual(wss.address().port, server.address().port);
    });
  });

  describe('noServer + handleUpgrade', function () {
    it('routes two paths on one http.Server to two servers; the app destroys unknown paths', async function () {
      const wssA = cleanup.add(new WebSocketServer({ noServer: true }));
      const wssB = cleanup.add(new WebSocketServer({ noServer: true }));
      echo(wssA, 'a:');
      echo(wssB, 'b:');
      const connections = { a: 0, b: 0 };
      wssA.on('connection', () => connections.a++);
      wssB.on('connection', () => connections.b++);

      const { server, port } = await createHttpServer();
      cleanup.add(server);
      server.on('upgrade', (req, socket, head) => {
        const { pathname } = new URL(req.url, 'http://localhost');
        const wss = pathname === '/a' ? wssA : pathname === '/b' ? wssB : null;
        if (!wss) {
          socket.destroy();
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      });

      const a = await client(`ws://127.0.0.1:${port}/a`);
      const b = await client(`ws://127.0.0.1:${port}/b?q=1`);
      a.send('1');
      b.send('2');
      const [[da], [db]] = await Promise.all([nextMessage(a), nextMessage(b)]);
      assert.strictEqual(da.toString(), 'a:1');
      assert.strictEqual(db.toString(), 'b:2');
      assert.deepStrictEqual(connections, { a: 1, b: 1 });
      assert.strictEqual(wssA.clients.size, 1);
      assert.strictEqual(wssB.clients.size, 1);

      const raw = await readAll(port, upgradeRequest({ path: '/c' }));
      assert.strictEqual(raw, '');
      assert.deepStrictEqual(connections, { a: 1, b: 1 });
    });

    it('handleUpgrade(req, socket, head, cb) calls cb(ws, req) and does not emit connection itself', async function () {
      const wss = cleanup.add(new WebSocketServer({ noServer: true }));
      let emitted = 0;
      wss.on('connection', () => emitted++);
      const calls = [];
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      server.on('upgrade', (req, socket, head) => {
        wss.handleUpgrade(req, socket, head, (ws, req2) => {
          calls.push({ ws, req, req2 });
          ws.on('message', (d) => ws.send(d));
        });
      });
      const ws = await client(`ws://127.0.0.1:${port}/u`);
      ws.send('x');
      await nextMessage(ws);
      assert.strictEqual(calls.length, 1);
      assert.ok(calls[0].ws instanceof WebSocket);
      assert.strictEqual(calls[0].req2, calls[0].req);
      assert.strictEqual(emitted, 0);
    });

    it('throws when called twice with the same socket', async function () {
      const wss = cleanup.add(new WebSocketServer({ noServer: true }));
      const errors = [];
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      server.on('upgrade', (req, socket, head) => {
        wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(d)));
        try {
          wss.handleUpgrade(req, socket, head, () => errors.push(new Error('second cb called')));
        } catch (err) {
          errors.push(err);
        }
      });
      const ws = await client(`ws://127.0.0.1:${port}`);
      assert.strictEqual(errors.length, 1);
      assert.ok(errors[0] instanceof Error);
      assert.strictEqual(
        errors[0].message,
        'server.handleUpgrade() was called more than once with the same socket, ' +
          'possibly due to a misconfiguration'
      );
      // The first upgrade is unaffected.
      ws.send('still here');
      const [data] = await nextMessage(ws);
      assert.strictEqual(data.toString(), 'still here');
      assert.strictEqual(wss.clients.size, 1);
    });

    it('answers 503 to handleUpgrade() after close()', async function () {
      const wss = new WebSocketServer({ noServer: true });
      await new Promise((resolve) => wss.close(resolve));
      let cbCalls = 0;
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      server.on('upgrade', (req, socket, head) => {
        wss.handleUpgrade(req, socket, head, () => cbCalls++);
      });
      const res = await rawRequest(port, upgradeRequest());
      cleanup.add(res.socket);
      assert.strictEqual(res.statusLine, 'HTTP/1.1 503 Service Unavailable');
      assert.strictEqual(res.body, 'Service Unavailable');
      await closed(res.socket);
      assert.strictEqual(cbCalls, 0);
    });
  });

  describe('shouldHandle(req)', function () {
    it('matches the pathname against `path`, ignoring the query string', function () {
      const wss = cleanup.add(new WebSocketServer({ noServer: true, path: '/ws' }));
      assert.strictEqual(wss.shouldHandle({ url: '/ws' }), true);
      assert.strictEqual(wss.shouldHandle({ url: '/ws?a=1' }), true);
      assert.strictEqual(wss.shouldHandle({ url: '/ws/' }), false);
      assert.strictEqual(wss.shouldHandle({ url: '/wss' }), false);
      assert.strictEqual(wss.shouldHandle({ url: '/' }), false);
    });

    it('accepts every path without `path`', function () {
      const wss = cleanup.add(new WebSocketServer({ noServer: true }));
      assert.strictEqual(wss.shouldHandle({ url: '/anything?x' }), true);
      assert.strictEqual(wss.shouldHandle({ url: '/' }), true);
    });

    it('is consulted by handleUpgrade (an override rejects with 400)', async function () {
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      const wss = cleanup.add(new WebSocketServer({ server }));
      let connections = 0;
      wss.on('connection', () => connections++);
      wss.shouldHandle = (req) => req.headers['x-allow'] === 'yes';

      const res = await rawRequest(port, upgradeRequest());
      cleanup.add(res.socket);
      assert.strictEqual(res.statusLine, 'HTTP/1.1 400 Bad Request');
      await closed(res.socket);
      assert.strictEqual(connections, 0);

      const ok = await rawRequest(port, upgradeRequest({ headers: { 'X-Allow': 'yes' } }));
      cleanup.add(ok.socket);
      assert.strictEqual(ok.status, 101);
    });
  });

  describe('clients tracking', function () {
    it('wss.clients holds open connections and drops them after close', async function () {
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      const wss = cleanup.add(new WebSocketServer({ server }));
      assert.ok(wss.clients instanceof Set);
      assert.strictEqual(wss.clients.size, 0);

      const connected = once(wss, 'connection');
      const c = await client(`ws://127.0.0.1:${port}`);
      const [serverWs] = await connected;
      assert.strictEqual(wss.clients.size, 1);
      assert.ok(wss.clients.has(serverWs));

      const serverClosed = once(serverWs, 'close');
      c.close();
      await serverClosed;
      assert.strictEqual(wss.clients.size, 0);
    });

    it('clientTracking: false -> wss.clients is undefined', async function () {
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      const wss = cleanup.add(new WebSocketServer({ server, clientTracking: false }));
      assert.strictEqual(wss.clients, undefined);
      const connected = once(wss, 'connection');
      const c = await client(`ws://127.0.0.1:${port}`);
      const [serverWs] = await connected;
      cleanup.add(serverWs);
      assert.strictEqual(wss.clients, undefined);
      c.close();
    });
  });

  describe('close()', function () {
    it('port mode: closes its http server, calls back, emits close; a second close() errors', async function () {
      const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
      const port = await wssPort(wss);
      let closeEvents = 0;
      wss.on('close', () => closeEvents++);

      const cbArgs = await withTimeout(
        new Promise((resolve) => wss.close((...args) => resolve(args))),
        'the close callback'
      );
      assert.ok(cbArgs.length === 0 || cbArgs[0] === undefined, `cb args: ${cbArgs}`);
      assert.strictEqual(closeEvents, 1);

      // Nothing listens on the port any more.
      await assert.rejects(rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), (err) => {
        return err.code === 'ECONNREFUSED';
      });

      const [err] = await withTimeout(
        new Promise((resolve) => wss.close((...args) => resolve(args))),
        'the second close callback'
      );
      assert.ok(err instanceof Error);
      assert.strictEqual(err.message, 'The server is not running');
    });

    it('server mode: does not close the http.Server, and stops handling upgrades', async function () {
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      const wss = new WebSocketServer({ server });
      assert.strictEqual(server.listenerCount('upgrade'), 1);
      await withTimeout(new Promise((resolve) => wss.close(resolve)), 'the close callback');
      assert.strictEqual(server.listening, true);
      assert.strictEqual(server.listenerCount('upgrade'), 0);
      const res = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      cleanup.add(res.socket);
      assert.strictEqual(res.status, 200);
    });

    for (const mode of ['server', 'port']) {
      it(`${mode} mode: does not terminate open connections; 'close' follows their end`, async function () {
        let wss;
        let port;
        if (mode === 'server') {
          const s = await createHttpServer();
          cleanup.add(s.server);
          port = s.port;
          wss = new WebSocketServer({ server: s.server });
        } else {
          wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
          port = await wssPort(wss);
        }
        cleanup.add(() => new Promise((resolve) => wss.close(() => resolve())));
        echo(wss);
        const order = [];
        const connected = once(wss, 'connection');
        const c = await client(`ws://127.0.0.1:${port}`);
        const [serverWs] = await connected;
        serverWs.on('close', () => order.push('connection close'));

        let stateAtWssClose;
        const wssClosed = withTimeout(
          new Promise((resolve) => {
            wss.close((err) => {
              stateAtWssClose = serverWs.readyState;
              order.push('wss close');
              resolve(err);
            });
          }),
          "the wss 'close'"
        );

        // The connection still works after wss.close() (a full round trip).
        c.send('after close()');
        const [data] = await nextMessage(c);
        assert.strictEqual(data.toString(), 'after close()');
        assert.strictEqual(serverWs.readyState, WebSocket.OPEN);
        assert.deepStrictEqual(order, []);

        c.close(1000);
        const err = await wssClosed;
        assert.strictEqual(err, undefined);
        if (mode === 'server') {
          // Emitted once wss.clients is empty, i.e. after the connection's 'close'.
          assert.deepStrictEqual(order, ['connection close', 'wss close']);
        } else {
          // ws: emitted when its own http.Server closes, i.e. once the TCP connection is gone,
          // which may be just before the connection's 'close' event.
          assert.notStrictEqual(stateAtWssClose, WebSocket.OPEN);
          assert.ok(order.includes('wss close'));
        }
      });
    }
  });

  describe('maxPayload', function () {
    async function setup(options) {
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      const wss = cleanup.add(new WebSocketServer({ server, ...options }));
      const events = { messages: [], errors: [], closes: [] };
      wss.on('connection', (ws) => {
        ws.on('message', (data, isBinary) => {
          events.messages.push({ data, isBinary });
          ws.send(`${data.length}`);
        });
        ws.on('error', (err) => events.errors.push(err));
        ws.on('close', (code, reason) => events.closes.push({ code, reason }));
      });
      return { port, wss, events };
    }

    function assertTooBig(err) {
      assert.ok(err instanceof RangeError);
      assert.strictEqual(err.message, 'Max payload size exceeded');
      assert.strictEqual(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    }

    it('accepts a message of exactly maxPayload bytes', async function () {
      const { port, events } = await setup({ maxPayload: 1024 });
      const c = await client(`ws://127.0.0.1:${port}`);
      c.send(Buffer.alloc(1024, 7));
      const [data] = await nextMessage(c);
      assert.strictEqual(data.toString(), '1024');
      assert.strictEqual(events.messages.length, 1);
      assert.ok(events.messages[0].data.equals(Buffer.alloc(1024, 7)));
      assert.strictEqual(events.errors.length, 0);
    });

    it('closes with 1009 on one byte over maxPayload and emits a RangeError', async function () {
      const { port, events } = await setup({ maxPayload: 1024 });
      const c = await client(`ws://127.0.0.1:${port}`);
      const clientClosed = once(c, 'close');
      c.send(Buffer.alloc(1025, 7));
      const [code, reason] = await clientClosed;
      assert.strictEqual(code, 1009);
      assert.strictEqual(reason.toString(), '');
      assert.strictEqual(events.messages.length, 0);
      assert.strictEqual(events.errors.length, 1);
      assertTooBig(events.errors[0]);
    });

    it('counts the whole fragmented message against maxPayload', async function () {
      const { port, events } = await setup({ maxPayload: 1024 });
      const res = await rawRequest(
        port,
        Buffer.concat([
          Buffer.from(upgradeRequest()),
          maskedFrame(0x2, Buffer.alloc(600), { fin: false }),
          maskedFrame(0x0, Buffer.alloc(425), { fin: true })
        ])
      );
      cleanup.add(res.socket);
      assert.strictEqual(res.status, 101);
      const frame = await readFrame(res.socket, { buf: res.body });
      assert.strictEqual(frame.opcode, 0x8);
      assert.strictEqual(frame.payload.readUInt16BE(0), 1009);
      assert.strictEqual(frame.payload.length, 2);
      assert.strictEqual(events.messages.length, 0);
      assertTooBig(events.errors[0]);
    });

    it('defaults to 100 MiB: a frame header announcing 104857601 bytes gets 1009', async function () {
      const { port, events } = await setup({});
      // Header only: FIN + binary, masked, 64-bit length 104857601; the payload is never sent.
      const header = frame({ opcode: OP.BINARY, length: 104857601 });
      const res = await rawRequest(port, Buffer.concat([Buffer.from(upgradeRequest()), header]));
      cleanup.add(res.socket);
      assert.strictEqual(res.status, 101);
      const answer = await readFrame(res.socket, { buf: res.body });
      assert.strictEqual(answer.opcode, 0x8);
      assert.strictEqual(answer.payload.readUInt16BE(0), 1009);
      assertTooBig(events.errors[0]);
    });

    it('defaults to 100 MiB: a message of exactly 104857600 bytes is accepted', async function () {
      const { port, events } = await setup({});
      const size = 100 * 1024 * 1024;
      // Mask key 0, so the zero payload can be sent as is, 1 MiB at a time.
      const header = frame({ opcode: OP.BINARY, length: size, maskKey: Buffer.alloc(4) });
      const res = await rawRequest(port, Buffer.concat([Buffer.from(upgradeRequest()), header]));
      cleanup.add(res.socket);
      assert.strictEqual(res.status, 101);
      const reply = readFrame(res.socket, { buf: res.body }, { timeout: 30000 });
      const chunk = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < 100; i++) res.socket.write(chunk); // the same Buffer, queued 100 times
      const answer = await reply;
      assert.strictEqual(answer.opcode, 0x1);
      assert.strictEqual(answer.payload.toString(), String(size));
      assert.strictEqual(events.errors.length, 0);
      assert.strictEqual(events.messages.length, 1);
      assert.strictEqual(events.messages[0].data.length, size);
    });
  });

  describe('server-side connection properties', function () {
    it('has the ws 8 properties and constants', async function () {
      const { server, port } = await createHttpServer();
      cleanup.add(server);
      const wss = cleanup.add(new WebSocketServer({ server }));
      const connected = once(wss, 'connection');
      const c = await client(`ws://127.0.0.1:${port}/p?q=1`);
      const [ws] = await connected;

      assert.ok(ws instanceof WebSocket);
      assert.strictEqual(WebSocket.CONNECTING, 0);
      assert.strictEqual(WebSocket.OPEN, 1);
      assert.strictEqual(WebSocket.CLOSING, 2);
      assert.strictEqual(WebSocket.CLOSED, 3);
      assert.strictEqual(ws.CONNECTING, 0);
      assert.strictEqual(ws.OPEN, 1);
      assert.strictEqual(ws.CLOSING, 2);
      assert.strictEqual(ws.CLOSED, 3);

      assert.strictEqual(ws.readyState, 1);
      assert.strictEqual(ws.protocol, '');
      assert.strictEqual(ws.extensions, '');
      assert.strictEqual(ws.binaryType, 'nodebuffer');
      assert.strictEqual(ws.url, undefined);
      assert.strictEqual(typeof ws.bufferedAmount, 'number');
      assert.strictEqual(ws.isPaused, false);

      const serverClosed = once(ws, 'close');
      c.close();
      await serverClosed;
      assert.strictEqual(ws.readyState, 3);
    });
  });
});
