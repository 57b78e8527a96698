'use strict';

// wss.handleSocket(): the handshake read off a plain net.Server's sockets (no http.Server),
// with the request head parsed in C. Driven through real sockets: a ws-native client, and raw
// requests where every byte and every split is under the test's control.

const assert = require('assert');
const http = require('http');
const net = require('net');

const { WebSocket, WebSocketServer, nativeOnly } = require('./support/impl');
const {
  Cleanup,
  acceptKey,
  closed,
  listen,
  maskedFrame,
  once,
  parseHead,
  rawRequest,
  readFrame,
  upgradeRequest,
  withTimeout
} = require('./support/net-helpers');

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

nativeOnly.describe('handleSocket (a net.Server without http.Server)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /**
   * A WebSocketServer({ noServer: true, ...options }) fed by a net.Server whose connection
   * handler calls wss.handleSocket(socket). `sockets` are the server side's sockets.
   */
  async function setup(options = {}, { handler, serverOptions } = {}) {
    const wss = cleanup.add(new WebSocketServer({ noServer: true, ...options }));
    const connections = [];
    const sockets = [];
    wss.on('connection', (ws, req) => connections.push({ ws, req }));
    const server = net.createServer(serverOptions, (socket) => {
      sockets.push(socket);
      if (handler) handler(wss, socket);
      else wss.handleSocket(socket);
    });
    const port = await listen(server);
    cleanup.add(server);
    const conn = (i = 0) =>
      connections.length > i
        ? Promise.resolve(connections[i])
        : once(wss, 'connection').then(() => conn(i));
    return { wss, port, connections, sockets, conn };
  }

  async function open(port, path = '/', protocols, options) {
    const ws = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols, options));
    await once(ws, 'open', { rejectOnError: true });
    return ws;
  }

  async function request(port, text) {
    const res = await rawRequest(port, text);
    cleanup.add(res.socket);
    return res;
  }

  /** A refusal: the status line, Connection: close, the text/plain body; then the close. */
  async function assertRefused(res, status, body, connections) {
    assert.strictEqual(res.statusLine, `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}`);
    assert.strictEqual(res.headers.connection, 'close');
    assert.strictEqual(res.headers['content-length'], String(Buffer.byteLength(res.body)));
    if (body instanceof RegExp) assert.match(res.body, body);
    else assert.strictEqual(res.body, body);
    assert.strictEqual(res.headers['sec-websocket-accept'], undefined);
    await closed(res.socket);
    assert.strictEqual(connections.length, 0, "no 'connection' event");
  }

  function connect(port) {
    const socket = cleanup.add(net.connect(port, '127.0.0.1'));
    socket.setNoDelay(true);
    return once(socket, 'connect', { rejectOnError: true }).then(() => socket);
  }

  /** The server side of the first connection, once the net.Server has accepted it. */
  async function serverSocket(sockets) {
    for (let waited = 0; !sockets.length; waited += 5) {
      if (waited > 5000) throw new Error('timed out waiting for the server to accept');
      await delay(5);
    }
    return sockets[0];
  }

  /**
   * Resolves with the parsed response head (the bytes after it in `state.buf`). After a 101
   * the socket is paused for readFrame(); after a refusal it keeps flowing, so that it sees
   * the server's end and closes.
   */
  function readHead(socket, state) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const onData = (chunk) => {
          state.buf = Buffer.concat([state.buf, chunk]);
          const head = parseHead(state.buf);
          if (head === null) return;
          socket.removeListener('data', onData);
          if (head.status === 101) socket.pause();
          state.buf = head.rest;
          resolve(head);
        };
        socket.on('data', onData);
        socket.once('error', reject);
      }),
      'the response head'
    );
  }

  describe('connections', function () {
    it('echoes text and binary messages with the ws-native client', async function () {
      const { port, conn } = await setup();
      const ws = await open(port, '/echo');
      const { ws: server } = await conn();
      server.on('message', (data, isBinary) => server.send(data, { binary: isBinary }));
      // A raw net socket is a plain TCP socket: the native transport takes it, unless the
      // process turned that off (the suite's second run) or the platform has none (Windows:
      // Node gives an addon no socket descriptor there, so every socket stays on the stream).
      const native = process.env.WS_NATIVE_TRANSPORT !== 'stream' && process.platform !== 'win32';
      assert.strictEqual(server.transport, native ? 'native' : 'stream');

      ws.send('héllo');
      const [text, textIsBinary] = await once(ws, 'message');
      assert.strictEqual(textIsBinary, false);
      assert.strictEqual(text.toString(), 'héllo');

      const blob = Buffer.alloc(200000).map((_, i) => i * 7);
      ws.send(blob);
      const [binary, binaryIsBinary] = await once(ws, 'message');
      assert.strictEqual(binaryIsBinary, true);
      assert.ok(binary.equals(blob));

      ws.close(1000, 'done');
      const [code, reason] = await once(ws, 'close');
      assert.strictEqual(code, 1000);
      assert.strictEqual(reason.toString(), 'done');
    });

    it("gives 'connection' an http.IncomingMessage with the request's url and headers", async function () {
      const { port, conn, sockets } = await setup();
      const key = 'dGhlIHNhbXBsZSBub25jZQ==';
      const res = await request(
        port,
        upgradeRequest({
          key,
          path: '/chat?room=1',
          headers: { Origin: 'http://a.example', 'X-Custom': '  v  ' }
        })
      );
      assert.strictEqual(res.statusLine, 'HTTP/1.1 101 Switching Protocols');
      assert.strictEqual(res.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');

      const { ws, req } = await conn();
      assert.strictEqual(ws.readyState, WebSocket.OPEN);
      assert.ok(req instanceof http.IncomingMessage);
      assert.strictEqual(req.method, 'GET');
      assert.strictEqual(req.url, '/chat?room=1');
      assert.strictEqual(req.httpVersion, '1.1');
      assert.strictEqual(req.httpVersionMajor, 1);
      assert.strictEqual(req.httpVersionMinor, 1);
      assert.strictEqual(req.socket, sockets[0]);
      assert.deepStrictEqual(req.headers, {
        host: 'localhost',
        upgrade: 'websocket',
        connection: 'Upgrade',
        'sec-websocket-key': key,
        'sec-websocket-version': '13',
        origin: 'http://a.example',
        'x-custom': 'v'
      });
      assert.deepStrictEqual(req.rawHeaders.slice(-4), ['Origin', 'http://a.example', 'X-Custom', 'v']);
    });

    it('combines repeated header fields as an http.Server does', async function () {
      const text =
        'GET /dup HTTP/1.1\r\nHost: a\r\nHOST: b\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n' +
        'connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        'Sec-WebSocket-Version: 13\r\nCookie: a=1\r\ncookie: b=2\r\nSet-Cookie: x=1\r\n' +
        'set-cookie: y=2\r\nUser-Agent: one\r\nUser-Agent: two\r\nAccept: a\r\nAccept: b\r\n' +
        'X-Latin1: caf\xe9\r\nX-Empty:\r\n\r\n';

      // What Node's own parser makes of it.
      const httpServer = cleanup.add(http.createServer());
      const reference = new Promise((resolve) => {
        httpServer.on('upgrade', (req, socket) => {
          resolve({ headers: { ...req.headers }, rawHeaders: req.rawHeaders, url: req.url });
          socket.destroy();
        });
      });
      const httpPort = await listen(httpServer);
      const client = cleanup.add(net.connect(httpPort, '127.0.0.1'));
      client.on('error', () => {});
      client.end(Buffer.from(text, 'latin1'));
      const expected = await withTimeout(reference, "the http.Server's request");

      const { port, conn } = await setup();
      const res = await request(port, Buffer.from(text, 'latin1'));
      assert.strictEqual(res.status, 101);
      const { req } = await conn();
      assert.deepStrictEqual({ ...req.headers }, expected.headers);
      assert.deepStrictEqual(req.rawHeaders, expected.rawHeaders);
      assert.strictEqual(req.url, expected.url);
      assert.strictEqual(req.headers.cookie, 'a=1; b=2');
      assert.deepStrictEqual(req.headers['set-cookie'], ['x=1', 'y=2']);
      assert.strictEqual(req.headers['x-latin1'], 'café');
    });

    it('works with a request split into 1-byte writes', async function () {
      const { port, conn, sockets } = await setup();
      const chunks = [];
      const key = 'AQIDBAUGBwgJCgsMDQ4PEA==';
      const text = upgradeRequest({ key, path: '/slow' });
      const socket = await connect(port);
      (await serverSocket(sockets)).on('data', (chunk) => chunks.push(chunk.length));

      const state = { buf: Buffer.alloc(0) };
      const head = readHead(socket, state);
      for (const byte of Buffer.from(text)) {
        socket.write(Buffer.from([byte]));
        await delay(1);
      }
      const res = await head;
      assert.strictEqual(res.statusLine, 'HTTP/1.1 101 Switching Protocols');
      assert.strictEqual(res.headers['sec-websocket-accept'], acceptKey(key));
      assert.ok(chunks.length > 10, `the server read the request in ${chunks.length} pieces`);

      const { ws, req } = await conn();
      assert.strictEqual(req.url, '/slow');
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      socket.write(maskedFrame(0x1, 'after the slow handshake'));
      const frame = await readFrame(socket, state);
      assert.strictEqual(frame.opcode, 0x1);
      assert.strictEqual(frame.payload.toString(), 'after the slow handshake');
    });

    it('delivers a frame sent in the same write as the request as the first message', async function () {
      const { wss, port } = await setup();
      const received = [];
      // Listening from 'connection' on, as an application does: the early frame follows it.
      wss.on('connection', (ws) => {
        ws.on('message', (data, isBinary) => {
          received.push([data.toString(), isBinary]);
          ws.send(data, { binary: isBinary });
        });
      });
      const socket = await connect(port);
      const state = { buf: Buffer.alloc(0) };
      const head = readHead(socket, state);
      const early = maskedFrame(0x1, 'sent with the handshake');
      const binary = maskedFrame(0x2, Buffer.from([1, 2, 3]));
      socket.write(Buffer.concat([Buffer.from(upgradeRequest()), early, binary]));

      assert.strictEqual((await head).status, 101);
      const first = await readFrame(socket, state);
      const second = await readFrame(socket, state);
      assert.deepStrictEqual(received, [
        ['sent with the handshake', false],
        ['\x01\x02\x03', true]
      ]);
      assert.strictEqual(first.payload.toString(), 'sent with the handshake');
      assert.deepStrictEqual([...second.payload], [1, 2, 3]);
    });

    it('negotiates subprotocols and permessage-deflate', async function () {
      const { port, conn } = await setup({
        perMessageDeflate: { threshold: 0 },
        handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false)
      });
      const ws = await open(port, '/', ['chat.v1', 'chat.v2'], { perMessageDeflate: true });
      assert.strictEqual(ws.protocol, 'chat.v2');
      assert.match(ws.extensions, /^permessage-deflate/);
      const { ws: server, req } = await conn();
      assert.strictEqual(server.protocol, 'chat.v2');
      assert.match(req.headers['sec-websocket-extensions'], /permessage-deflate/);
      server.on('message', (data, isBinary) => server.send(data, { binary: isBinary }));

      const json = JSON.stringify(Array.from({ length: 300 }, (_, id) => ({ id, ok: true })));
      ws.send(json);
      const [echo, isBinary] = await once(ws, 'message');
      assert.strictEqual(isBinary, false);
      assert.strictEqual(echo.toString(), json);
    });

    it('calls a callback given to handleSocket instead of emitting connection', async function () {
      let called;
      const seen = new Promise((resolve) => (called = resolve));
      const { port, connections } = await setup(
        {},
        { handler: (wss, socket) => wss.handleSocket(socket, (ws, req) => called({ ws, req })) }
      );
      const ws = await open(port, '/cb');
      const { ws: server, req } = await withTimeout(seen, 'the callback');
      assert.strictEqual(req.url, '/cb');
      assert.strictEqual(server.readyState, WebSocket.OPEN);
      assert.strictEqual(connections.length, 0);
      ws.close();
    });

    it('reads from a net.Server created with pauseOnConnect', async function () {
      const { port, conn } = await setup({}, { serverOptions: { pauseOnConnect: true } });
      await open(port, '/paused');
      assert.strictEqual((await conn()).req.url, '/paused');
    });

    it("honours the server's path option and verifyClient", async function () {
      const { wss, port, connections } = await setup({
        path: '/ws',
        verifyClient: ({ origin }, done) => setTimeout(() => done(origin !== 'http://evil.example', 403), 20)
      });
      const wrongPath = await request(port, upgradeRequest({ path: '/other' }));
      assert.strictEqual(wrongPath.status, 400);
      const evil = await request(
        port,
        upgradeRequest({ path: '/ws', headers: { Origin: 'http://evil.example' } })
      );
      assert.strictEqual(evil.status, 403);
      await closed(evil.socket);
      assert.strictEqual(connections.length, 0);

      // The socket stays paused while verifyClient decides: a frame sent with the request
      // waits for the connection.
      const early = new Promise((resolve) => {
        wss.on('connection', (ws) => ws.on('message', (data) => resolve(data.toString())));
      });
      const socket = await connect(port);
      const state = { buf: Buffer.alloc(0) };
      const head = readHead(socket, state);
      const text = upgradeRequest({ path: '/ws?x=1' });
      socket.write(Buffer.concat([Buffer.from(text), maskedFrame(0x1, 'early')]));
      assert.strictEqual((await head).status, 101);
      assert.strictEqual(await withTimeout(early, 'the early message'), 'early');
    });
  });

  describe('refusals', function () {
    it('a GET that is not an upgrade gets 400 from the handshake checks', async function () {
      const { port, connections } = await setup();
      const res = await request(port, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await assertRefused(res, 400, 'Invalid Upgrade header', connections);
    });

    it('a POST upgrade gets 405', async function () {
      const { port, connections } = await setup();
      const res = await request(port, upgradeRequest({ method: 'POST' }));
      await assertRefused(res, 405, 'Invalid HTTP method', connections);
    });

    it('garbage gets 400', async function () {
      const { port, connections } = await setup();
      const noVersion = await request(port, 'hello world\r\n\r\n');
      await assertRefused(noVersion, 400, 'Invalid request target', connections);
      const badVersion = await request(port, 'hello / world\r\n\r\n');
      await assertRefused(badVersion, 400, 'Invalid HTTP version', connections);
      // A TLS ClientHello (a wss:// client on a ws:// port) is refused at its first byte.
      const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
      await assertRefused(await request(port, hello), 400, 'Invalid HTTP method', connections);
    });

    it('malformed header fields get 400', async function () {
      const { port, connections } = await setup();
      const cases = [
        ['Bad : value', 'Invalid header name'],
        ['NoColon', 'Invalid header name'],
        ['X-Nul: a\0b', 'Invalid character in header value'],
        ['X-Fold: a\r\n  folded', 'Header line folding is not allowed']
      ];
      for (const [line, body] of cases) {
        const text = upgradeRequest().replace('\r\n\r\n', `\r\n${line}\r\n\r\n`);
        await assertRefused(await request(port, text), 400, body, connections);
      }
    });

    it('line ends must be CRLF: a bare LF gets 400', async function () {
      const { port, connections } = await setup();
      const text = upgradeRequest().replace(/\r\n/g, '\n');
      const res = await request(port, text);
      await assertRefused(res, 400, 'Invalid line ending (CRLF expected)', connections);
    });

    it('HTTP/1.0 gets 400 and HTTP/2.0 gets 505', async function () {
      const { port, connections } = await setup();
      const v10 = upgradeRequest().replace('HTTP/1.1', 'HTTP/1.0');
      await assertRefused(await request(port, v10), 400, /HTTP\/1\.1/, connections);
      const v20 = upgradeRequest().replace('HTTP/1.1', 'HTTP/2.0');
      await assertRefused(await request(port, v20), 505, 'HTTP version not supported', connections);
    });

    it('a head over maxHeaderSize gets 431 and the socket closes', async function () {
      const { port, connections } = await setup();
      // The default is Node's 16 KiB.
      const big = upgradeRequest({ headers: { 'X-Big': 'a'.repeat(17 * 1024) } });
      await assertRefused(await request(port, big), 431, 'Request header fields too large', connections);

      const small = await setup({ maxHeaderSize: 1024 });
      const over = upgradeRequest({ headers: { 'X-Pad': 'p'.repeat(1100) } });
      const refused = await request(small.port, over);
      await assertRefused(refused, 431, 'Request header fields too large', small.connections);
      const fits = upgradeRequest({ headers: { 'X-Pad': 'p'.repeat(800) } });
      assert.strictEqual((await request(small.port, fits)).status, 101);
    });

    it('an endless header gets 431 as soon as it passes maxHeaderSize', async function () {
      const { port, connections, sockets } = await setup({ maxHeaderSize: 2048, headersTimeout: 0 });
      const socket = await connect(port);
      const state = { buf: Buffer.alloc(0) };
      const head = readHead(socket, state);
      socket.write('GET / HTTP/1.1\r\nHost: a\r\nX-Endless: ');
      let sent = 0;
      let answered = false;
      head.then(() => (answered = true), () => {});
      while (!answered && sent < 64 * 1024) {
        socket.write('z'.repeat(256));
        sent += 256;
        await delay(2);
      }
      const res = await head;
      assert.strictEqual(res.status, 431);
      assert.ok(sent < 8 * 1024, `answered after ${sent} bytes`);
      await closed(socket);
      assert.strictEqual(connections.length, 0);
      // The server's side closes once it reads the client's FIN, which can come after the
      // client's own 'close' (it did under ASan in CI): wait for it rather than look at once.
      await closed(sockets[0]);
    });

    it('more than 100 header fields get 431', async function () {
      const { port, connections } = await setup();
      const extra = Array.from({ length: 100 }, (_, i) => `X-H${i}: ${i}`).join('\r\n');
      const text = upgradeRequest().replace('\r\n\r\n', `\r\n${extra}\r\n\r\n`);
      await assertRefused(await request(port, text), 431, 'Too many header fields', connections);
    });

    it('a slowloris gets 408 after headersTimeout', async function () {
      const { port, connections } = await setup({ headersTimeout: 200 });
      // Headers that never end, one byte at a time: the deadline counts from the connection.
      const socket = await connect(port);
      const state = { buf: Buffer.alloc(0) };
      const head = readHead(socket, state);
      let answered = false;
      head.then(() => (answered = true), () => {});
      socket.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ');
      const started = Date.now();
      while (!answered && Date.now() - started < 4000) {
        socket.write('z');
        await delay(20);
      }
      const res = await head;
      assert.strictEqual(res.statusLine, 'HTTP/1.1 408 Request Timeout');
      assert.strictEqual(res.headers.connection, 'close');
      await closed(socket);
      assert.strictEqual(connections.length, 0);

      // And a client that sends nothing at all.
      const silent = await request(port, '');
      assert.strictEqual(silent.status, 408);
      await closed(silent.socket);
    });
  });

  describe('cleanup', function () {
    // ('close' has listeners of the test's own.)
    function listeners(socket) {
      return ['data', 'end', 'error'].map((event) => socket.listenerCount(event));
    }

    it('a peer that ends in the middle of the head leaves no listener or timer', async function () {
      const before = [];
      const after = [];
      const { port, sockets } = await setup(
        { headersTimeout: 150 },
        {
          handler: (wss, socket) => {
            before.push(listeners(socket));
            wss.handleSocket(socket);
            socket.on('close', () => after.push(listeners(socket)));
          }
        }
      );
      const socket = await connect(port);
      socket.write('GET / HTTP/1.1\r\nHost: a\r\n');
      const server = await serverSocket(sockets);
      await delay(20);
      socket.end();
      await closed(server);
      assert.deepStrictEqual(after[0], before[0]);
      // Past the timeout nothing is written to the closed socket (no 408).
      await delay(250);
      assert.strictEqual(server.bytesWritten, 0);
    });

    it('a reset during the head is handled (no uncaught error)', async function () {
      const { port, sockets } = await setup({ headersTimeout: 150 });
      const socket = await connect(port);
      socket.write('GET / HTTP/1.1\r\nHost: a\r\n');
      const server = await serverSocket(sockets);
      await delay(20);
      socket.resetAndDestroy();
      await closed(server);
      assert.strictEqual(server.listenerCount('data'), 0);
      await delay(200);
      assert.strictEqual(server.bytesWritten, 0);
    });

    it('a socket that is already destroyed is just destroyed', async function () {
      const { port } = await setup(
        {},
        {
          handler: (wss, socket) => {
            socket.destroy();
            wss.handleSocket(socket);
            assert.strictEqual(socket.listenerCount('data'), 0);
          }
        }
      );
      const socket = await connect(port);
      socket.on('error', () => {});
      await closed(socket);
    });
  });

  describe('options and arguments', function () {
    it('maxHeaderSize and headersTimeout default to 16384 and 10000 and must be numbers >= 0', function () {
      const wss = new WebSocketServer({ noServer: true });
      assert.strictEqual(wss.options.maxHeaderSize, 16384);
      assert.strictEqual(wss.options.headersTimeout, 10000);
      wss.close();
      for (const name of ['maxHeaderSize', 'headersTimeout']) {
        for (const value of [-1, NaN, '100', null]) {
          assert.throws(() => new WebSocketServer({ noServer: true, [name]: value }), {
            name: 'RangeError',
            code: 'ERR_OUT_OF_RANGE'
          });
        }
      }
    });

    it('parseUpgradeRequest checks its arguments', function () {
      const binding = require('../lib/binding');
      const buf = Buffer.from('GET / HTTP/1.1\r\n\r\n');
      assert.strictEqual(binding.parseUpgradeRequest(buf.subarray(0, 10), 100, 10), null);
      assert.strictEqual(binding.parseUpgradeRequest(buf, Infinity, 0).headLength, buf.length);
      assert.deepStrictEqual(binding.parseUpgradeRequest(buf, 10, 10), {
        status: 431,
        message: 'Request header fields too large'
      });
      const typeError = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };
      const rangeError = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' };
      assert.throws(() => binding.parseUpgradeRequest('GET', 100, 10), typeError);
      assert.throws(() => binding.parseUpgradeRequest(new Uint16Array(4), 100, 10), typeError);
      assert.throws(() => binding.parseUpgradeRequest(buf, '100', 10), typeError);
      assert.throws(() => binding.parseUpgradeRequest(buf, 100, undefined), typeError);
      assert.throws(() => binding.parseUpgradeRequest(buf, -1, 10), rangeError);
      assert.throws(() => binding.parseUpgradeRequest(buf, NaN, 10), rangeError);
      assert.throws(() => binding.parseUpgradeRequest(buf, 100, 101), rangeError);
      assert.throws(() => binding.parseUpgradeRequest(buf), {
        name: 'TypeError',
        code: 'ERR_MISSING_ARGS'
      });
    });

    it('a header named __proto__ is an own property, not the prototype', function () {
      const binding = require('../lib/binding');
      const text = 'GET / HTTP/1.1\r\n__proto__: x\r\nconstructor: y\r\n\r\n';
      const { headers } = binding.parseUpgradeRequest(Buffer.from(text), 1000, 10);
      assert.strictEqual(Object.getPrototypeOf(headers), Object.prototype);
      assert.deepStrictEqual(Object.keys(headers), ['__proto__', 'constructor']);
      assert.strictEqual(Object.getOwnPropertyDescriptor(headers, '__proto__').value, 'x');
    });
  });
});
