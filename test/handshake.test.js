'use strict';

// Server-side opening handshake, driven with raw HTTP requests over net sockets so that every
// header is under the test's control.

const assert = require('assert');
const http = require('http');

const { WebSocketServer, nativeOnly } = require('./support/impl');
const {
  Cleanup,
  acceptKey,
  closed,
  createHttpServer,
  maskedFrame,
  once,
  rawRequest,
  readAll,
  readFrame,
  upgradeRequest,
  withTimeout,
  wssPort
} = require('./support/net-helpers');

describe('handshake', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** http.Server on a free port + WebSocketServer({ server, ...options }); counts connections. */
  async function setup(options = {}) {
    const { server, port } = await createHttpServer();
    cleanup.add(server);
    const wss = cleanup.add(new WebSocketServer({ server, ...options }));
    const connections = [];
    wss.on('connection', (ws, req) => connections.push({ ws, req }));
    // The i-th { ws, req } of 'connection', waiting for it if it has not been emitted yet.
    const conn = (i = 0) =>
      connections.length > i
        ? Promise.resolve(connections[i])
        : once(wss, 'connection').then(() => conn(i));
    return { server, port, wss, connections, conn };
  }

  async function request(port, text) {
    const res = await rawRequest(port, text);
    cleanup.add(res.socket);
    return res;
  }

  /** Asserts a rejection: exact status line, Connection: close, body; then that the server closes. */
  async function assertRejected(res, status, body, connections) {
    assert.strictEqual(res.statusLine, `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}`);
    assert.strictEqual(res.headers.connection, 'close');
    assert.strictEqual(res.headers['content-length'], String(Buffer.byteLength(body)));
    assert.strictEqual(res.body, body);
    assert.strictEqual(res.headers['sec-websocket-accept'], undefined);
    await closed(res.socket);
    assert.strictEqual(connections.length, 0, "no 'connection' event");
  }

  describe('valid upgrade', function () {
    it('answers 101 with Upgrade, Connection and the right Sec-WebSocket-Accept', async function () {
      const { port, connections, conn } = await setup();
      const key = 'x3JJHMbDL1EzLkh9GBhXDw==';
      const res = await request(port, upgradeRequest({ key, path: '/chat?room=1' }));

      assert.strictEqual(res.statusLine, 'HTTP/1.1 101 Switching Protocols');
      assert.strictEqual(res.headers.upgrade, 'websocket');
      assert.strictEqual(res.headers.connection, 'Upgrade');
      assert.strictEqual(res.headers['sec-websocket-accept'], acceptKey(key));
      assert.strictEqual(res.headers['sec-websocket-accept'], 'HSmrc0sMlYUkAGmm5OPpG2HaGWk=');
      assert.strictEqual(res.headers['sec-websocket-protocol'], undefined);
      assert.strictEqual(res.headers['sec-websocket-extensions'], undefined);

      const { ws, req } = await conn();
      assert.strictEqual(connections.length, 1);
      assert.strictEqual(ws.readyState, 1);
      assert.ok(req instanceof http.IncomingMessage);
      assert.strictEqual(req.url, '/chat?room=1');
      assert.strictEqual(req.headers['sec-websocket-key'], key);
    });

    it('computes the RFC 6455 example accept value', async function () {
      const { port } = await setup();
      const res = await request(port, upgradeRequest({ key: 'dGhlIHNhbXBsZSBub25jZQ==' }));
      assert.strictEqual(res.status, 101);
      assert.strictEqual(res.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    });

    it('accepts the Upgrade value case-insensitively', async function () {
      const { port, conn } = await setup();
      const res = await request(port, upgradeRequest({ headers: { Upgrade: 'WebSocket' } }));
      assert.strictEqual(res.status, 101);
      await conn();
    });

    it('accepts "Connection: keep-alive, Upgrade" (a list, mixed case)', async function () {
      const { port, conn } = await setup();
      const key = 'AQIDBAUGBwgJCgsMDQ4PEA==';
      const res = await request(
        port,
        upgradeRequest({ key, headers: { Connection: 'keep-alive, Upgrade' } })
      );
      assert.strictEqual(res.statusLine, 'HTTP/1.1 101 Switching Protocols');
      assert.strictEqual(res.headers['sec-websocket-accept'], acceptKey(key));
      await conn();
    });
  });

  describe('rejections', function () {
    it('non-GET method -> 405', async function () {
      const { port, connections } = await setup();
      const res = await request(port, upgradeRequest({ method: 'POST' }));
      await assertRejected(res, 405, 'Invalid HTTP method', connections);
    });

    it('Upgrade header other than "websocket" -> 400', async function () {
      const { port, connections } = await setup();
      const res = await request(port, upgradeRequest({ headers: { Upgrade: 'h2c' } }));
      await assertRejected(res, 400, 'Invalid Upgrade header', connections);
    });

    // Node's HTTP parser only emits 'upgrade' when an Upgrade header is present, so a request
    // without one reaches handleUpgrade() only when the application passes it on itself.
    it('missing Upgrade header (request passed to handleUpgrade by the app) -> 400', async function () {
      const wss = cleanup.add(new WebSocketServer({ noServer: true }));
      const connections = [];
      const { server, port } = await createHttpServer((req) => {
        wss.handleUpgrade(req, req.socket, Buffer.alloc(0), (ws) => connections.push(ws));
      });
      cleanup.add(server);
      const res = await request(port, upgradeRequest({ headers: { Upgrade: null } }));
      await assertRejected(res, 400, 'Invalid Upgrade header', connections);
    });

    it('missing Sec-WebSocket-Key -> 400', async function () {
      const { port, connections } = await setup();
      const res = await request(port, upgradeRequest({ headers: { 'Sec-WebSocket-Key': null } }));
      await assertRejected(res, 400, 'Missing or invalid Sec-WebSocket-Key header', connections);
    });

    it('Sec-WebSocket-Key of the wrong length -> 400', async function () {
      const { port, connections } = await setup();
      // 15 random bytes in base64 (20 characters), not 16.
      const res = await request(port, upgradeRequest({ key: 'AAECAwQFBgcICQoLDA0O' }));
      await assertRejected(res, 400, 'Missing or invalid Sec-WebSocket-Key header', connections);
    });

    it('Sec-WebSocket-Key with a character outside base64 -> 400', async function () {
      const { port, connections } = await setup();
      const res = await request(port, upgradeRequest({ key: 'dGhlIHNhbXBsZSBub25j!Q==' }));
      await assertRejected(res, 400, 'Missing or invalid Sec-WebSocket-Key header', connections);
    });

    it('missing Sec-WebSocket-Version -> 400', async function () {
      const { port, connections } = await setup();
      const res = await request(
        port,
        upgradeRequest({ headers: { 'Sec-WebSocket-Version': null } })
      );
      assert.strictEqual(res.headers['sec-websocket-version'], '13, 8');
      await assertRejected(res, 400, 'Missing or invalid Sec-WebSocket-Version header', connections);
    });

    for (const value of ['a,,b', 'a, a', 'ch@t', ',chat']) {
      it(`invalid Sec-WebSocket-Protocol ${JSON.stringify(value)} -> 400`, async function () {
        const { port, connections } = await setup();
        const res = await request(
          port,
          upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': value } })
        );
        await assertRejected(res, 400, 'Invalid Sec-WebSocket-Protocol header', connections);
      });
    }

    it('`path` mismatch -> 400 Bad Request; the query string is ignored when matching', async function () {
      const { port, connections, conn } = await setup({ path: '/ws' });
      const res = await request(port, upgradeRequest({ path: '/other' }));
      await assertRejected(res, 400, 'Bad Request', connections);

      const ok = await request(port, upgradeRequest({ path: '/ws?token=1' }));
      assert.strictEqual(ok.status, 101);
      await conn();
    });

    it('verifyClient returning false -> 401', async function () {
      let calls = 0;
      const { port, connections } = await setup({
        verifyClient: () => {
          calls++;
          return false;
        }
      });
      const res = await request(port, upgradeRequest());
      await assertRejected(res, 401, 'Unauthorized', connections);
      assert.strictEqual(calls, 1);
    });

    it('verifyClient returning true -> 101', async function () {
      const { port, conn } = await setup({ verifyClient: () => true });
      const res = await request(port, upgradeRequest());
      assert.strictEqual(res.status, 101);
      await conn();
    });

    it('async verifyClient cb(false, 403, "Forbidden", headers) -> 403 with those headers', async function () {
      const { port, connections } = await setup({
        verifyClient: (info, cb) => setImmediate(() => cb(false, 403, 'Forbidden', { 'X-Reason': 'x' }))
      });
      const res = await request(port, upgradeRequest());
      assert.strictEqual(res.headers['x-reason'], 'x');
      await assertRejected(res, 403, 'Forbidden', connections);
    });

    it('async verifyClient cb(false) -> 401', async function () {
      const { port, connections } = await setup({ verifyClient: (info, cb) => cb(false) });
      const res = await request(port, upgradeRequest());
      await assertRejected(res, 401, 'Unauthorized', connections);
    });

    it('async verifyClient cb(true) -> 101', async function () {
      const { port, conn } = await setup({
        verifyClient: (info, cb) => setImmediate(() => cb(true))
      });
      const res = await request(port, upgradeRequest());
      assert.strictEqual(res.status, 101);
      await conn();
    });

    it('verifyClient info has origin, secure and req', async function () {
      const infos = [];
      const { port } = await setup({
        verifyClient: (info) => {
          infos.push(info);
          return true;
        }
      });
      const res = await request(
        port,
        upgradeRequest({ path: '/v?x=1', headers: { Origin: 'https://example.com' } })
      );
      assert.strictEqual(res.status, 101);
      assert.strictEqual(infos.length, 1);
      const info = infos[0];
      assert.strictEqual(info.origin, 'https://example.com');
      assert.strictEqual(info.secure, false);
      assert.ok(info.req instanceof http.IncomingMessage);
      assert.strictEqual(info.req.url, '/v?x=1');
      assert.strictEqual(info.req.headers.origin, 'https://example.com');
    });

    it('verifyClient info.origin is undefined without an Origin header', async function () {
      const infos = [];
      const { port } = await setup({ verifyClient: (info) => infos.push(info) > 0 });
      const res = await request(port, upgradeRequest());
      assert.strictEqual(res.status, 101);
      assert.strictEqual(infos[0].origin, undefined);
    });
  });

  describe('Sec-WebSocket-Version', function () {
    // Version 8 (the last draft before RFC 6455) frames exactly as 13 does; ws accepts it.
    it('8 is accepted, its Sec-WebSocket-Origin is verifyClient\'s origin, and it talks', async function () {
      const infos = [];
      const { port, wss } = await setup({
        verifyClient: (info) => infos.push(info) > 0
      });
      const received = new Promise((resolve) => {
        wss.on('connection', (ws) => ws.once('message', (data, isBinary) => resolve([ws, data, isBinary])));
      });
      const res = await request(
        port,
        Buffer.concat([
          Buffer.from(
            upgradeRequest({
              headers: { 'Sec-WebSocket-Version': '8', 'Sec-WebSocket-Origin': 'http://draft.example' }
            })
          ),
          maskedFrame(0x1, 'hello, draft 8')
        ])
      );
      assert.strictEqual(res.statusLine, 'HTTP/1.1 101 Switching Protocols');
      assert.strictEqual(infos[0].origin, 'http://draft.example');
      const [ws, data, isBinary] = await received;
      assert.strictEqual(data.toString(), 'hello, draft 8');
      assert.strictEqual(isBinary, false);
      ws.send('echo');
      const frame = await readFrame(res.socket, { buf: res.body });
      assert.strictEqual(frame.opcode, 0x1);
      assert.strictEqual(frame.payload.toString(), 'echo');
    });

    // RFC 6455 4.4 asks for "an appropriate HTTP error code" and the versions spoken; ws
    // answers 400 with both, and so do we.
    for (const version of ['12', '7']) {
      it(`${version} -> 400 with Sec-WebSocket-Version: 13, 8`, async function () {
        const { port, connections } = await setup();
        const res = await request(
          port,
          upgradeRequest({ headers: { 'Sec-WebSocket-Version': version } })
        );
        assert.strictEqual(res.headers['sec-websocket-version'], '13, 8');
        await assertRejected(res, 400, 'Missing or invalid Sec-WebSocket-Version header', connections);
      });
    }
  });

  nativeOnly.describe('strict RFC 6455 checks (ws-native only)', function () {
    // Node's HTTP parser does not treat such a request as an upgrade (it goes to 'request'),
    // so this is checked in port mode, where the library owns the request handler.
    it('Upgrade: websocket without the "upgrade" token in Connection -> 400', async function () {
      const wss = cleanup.add(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
      const connections = [];
      wss.on('connection', (ws) => connections.push(ws));
      const port = await wssPort(wss);
      const res = await request(port, upgradeRequest({ headers: { Connection: 'keep-alive' } }));
      assert.strictEqual(res.statusLine, 'HTTP/1.1 400 Bad Request');
      await closed(res.socket);
      assert.strictEqual(connections.length, 0);
    });
  });

  describe("'wsClientError'", function () {
    const teapot = "HTTP/1.1 418 I'm a Teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

    const cases = [
      ['an invalid method', { method: 'POST' }, 'Invalid HTTP method'],
      ['an invalid Upgrade header', { headers: { Upgrade: 'h2c' } }, 'Invalid Upgrade header'],
      [
        'a missing Sec-WebSocket-Key',
        { headers: { 'Sec-WebSocket-Key': null } },
        'Missing or invalid Sec-WebSocket-Key header'
      ],
      [
        'an invalid Sec-WebSocket-Version',
        { headers: { 'Sec-WebSocket-Version': 'x' } },
        'Missing or invalid Sec-WebSocket-Version header'
      ],
      [
        'an invalid Sec-WebSocket-Protocol',
        { headers: { 'Sec-WebSocket-Protocol': 'a,,b' } },
        'Invalid Sec-WebSocket-Protocol header'
      ]
    ];

    for (const [what, reqOpts, message] of cases) {
      it(`is emitted with (err, socket, req) for ${what}; the server does not answer itself`, async function () {
        const { port, wss, connections } = await setup();
        const events = [];
        wss.on('wsClientError', (err, socket, req) => {
          events.push({ err, socket, req, remotePort: socket.remotePort });
          socket.end(teapot);
        });
        const request = upgradeRequest({ path: '/e', ...reqOpts });
        const raw = await readAll(port, request);

        // Only the listener's response, nothing written by the server itself.
        assert.strictEqual(raw, teapot);
        assert.strictEqual(events.length, 1);
        const { err, socket, req } = events[0];
        assert.ok(err instanceof Error);
        assert.strictEqual(err.message, message);
        assert.strictEqual(typeof socket.write, 'function');
        assert.ok(req instanceof http.IncomingMessage);
        assert.strictEqual(req.url, '/e');
        assert.strictEqual(connections.length, 0);
      });
    }

    it('is not emitted for a `path` mismatch or a verifyClient rejection (plain 400/401)', async function () {
      const { port, wss, connections } = await setup({
        path: '/ws',
        verifyClient: (info) => info.req.headers['x-ok'] === '1'
      });
      const errors = [];
      wss.on('wsClientError', (err, socket) => {
        errors.push(err);
        socket.destroy();
      });

      const res1 = await request(port, upgradeRequest({ path: '/nope', headers: { 'X-Ok': '1' } }));
      await assertRejected(res1, 400, 'Bad Request', connections);
      const res2 = await request(port, upgradeRequest({ path: '/ws' }));
      await assertRejected(res2, 401, 'Unauthorized', connections);
      assert.strictEqual(errors.length, 0);
    });
  });

  describe('subprotocols', function () {
    it('picks the first offered protocol by default', async function () {
      const { port, conn } = await setup();
      const res = await request(
        port,
        upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat, superchat' } })
      );
      assert.strictEqual(res.status, 101);
      assert.strictEqual(res.headers['sec-websocket-protocol'], 'chat');
      assert.strictEqual((await conn()).ws.protocol, 'chat');
    });

    it('handleProtocols(protocols: Set, req) chooses', async function () {
      const calls = [];
      const { port, conn } = await setup({
        handleProtocols: (protocols, req) => {
          calls.push({ protocols, req });
          return 'superchat';
        }
      });
      const res = await request(
        port,
        upgradeRequest({ path: '/p', headers: { 'Sec-WebSocket-Protocol': 'chat, superchat' } })
      );
      assert.strictEqual(res.status, 101);
      assert.strictEqual(res.headers['sec-websocket-protocol'], 'superchat');
      assert.strictEqual((await conn()).ws.protocol, 'superchat');

      assert.strictEqual(calls.length, 1);
      assert.ok(calls[0].protocols instanceof Set);
      assert.deepStrictEqual([...calls[0].protocols], ['chat', 'superchat']);
      assert.ok(calls[0].req instanceof http.IncomingMessage);
      assert.strictEqual(calls[0].req.url, '/p');
    });

    it('handleProtocols returning false -> no Sec-WebSocket-Protocol, ws.protocol === ""', async function () {
      const { port, conn } = await setup({ handleProtocols: () => false });
      const res = await request(
        port,
        upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat, superchat' } })
      );
      assert.strictEqual(res.status, 101);
      assert.strictEqual(res.headers['sec-websocket-protocol'], undefined);
      assert.strictEqual((await conn()).ws.protocol, '');
    });

    it('handleProtocols is not called when the client offers none', async function () {
      let calls = 0;
      const { port, conn } = await setup({
        handleProtocols: () => {
          calls++;
          return 'chat';
        }
      });
      const res = await request(port, upgradeRequest());
      assert.strictEqual(res.status, 101);
      assert.strictEqual(res.headers['sec-websocket-protocol'], undefined);
      assert.strictEqual((await conn()).ws.protocol, '');
      assert.strictEqual(calls, 0);
    });
  });

  describe("'headers' event", function () {
    it('exposes the response lines and lets the app add a header to the 101', async function () {
      const { port, wss, conn } = await setup();
      const key = 'dGhlIHNhbXBsZSBub25jZQ==';
      const seen = [];
      wss.on('headers', (headers, req) => {
        seen.push({ headers: headers.slice(), req });
        headers.push('Set-Cookie: session=abc; HttpOnly');
      });
      const res = await request(port, upgradeRequest({ key, path: '/h' }));
      assert.strictEqual(res.status, 101);
      assert.strictEqual(res.headers['set-cookie'], 'session=abc; HttpOnly');

      assert.strictEqual(seen.length, 1);
      assert.deepStrictEqual(seen[0].headers, [
        'HTTP/1.1 101 Switching Protocols',
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo='
      ]);
      assert.strictEqual(seen[0].req.url, '/h');
      await conn();
    });

    it('a 101 of many kilobytes (long added headers) arrives whole, before the first message', async function () {
      const { port, wss } = await setup();
      // (Past the 1 KiB that the native transport reads a response into without allocating.)
      const long = 'x'.repeat(5000);
      wss.on('headers', (headers) => {
        headers.push(`X-Long: ${long}`, 'X-After: end');
      });
      wss.on('connection', (ws) => ws.send('first'));
      const res = await rawRequest(port, Buffer.from(upgradeRequest()));
      cleanup.add(res.socket);
      assert.strictEqual(res.status, 101);
      assert.strictEqual(res.headers['x-long'], long);
      assert.strictEqual(res.headers['x-after'], 'end');
      const frame = await readFrame(res.socket, { buf: res.body });
      assert.strictEqual(frame.opcode, 0x1);
      assert.strictEqual(frame.payload.toString(), 'first');
    });
  });

  describe('head bytes', function () {
    it('delivers a frame sent in the same write as the upgrade request', async function () {
      const { port, wss } = await setup();
      const messages = [];
      wss.on('connection', (ws) => {
        ws.on('message', (data, isBinary) => {
          messages.push({ data, isBinary });
          ws.send(data, { binary: isBinary });
        });
      });
      const request = Buffer.concat([
        Buffer.from(upgradeRequest()),
        maskedFrame(0x1, 'hello from head')
      ]);
      const res = await rawRequest(port, request);
      cleanup.add(res.socket);
      assert.strictEqual(res.status, 101);

      const frame = await readFrame(res.socket, { buf: res.body });
      assert.strictEqual(frame.fin, true);
      assert.strictEqual(frame.opcode, 0x1);
      assert.strictEqual(frame.masked, false);
      assert.strictEqual(frame.payload.toString(), 'hello from head');

      assert.strictEqual(messages.length, 1);
      assert.ok(Buffer.isBuffer(messages[0].data));
      assert.strictEqual(messages[0].data.toString(), 'hello from head');
      assert.strictEqual(messages[0].isBinary, false);
    });

    it('delivers two frames (text then binary) that follow the request in one write', async function () {
      const { port, wss } = await setup();
      const messages = [];
      const got = new Promise((resolve) => {
        wss.on('connection', (ws) => {
          ws.on('message', (data, isBinary) => {
            messages.push({ data: Buffer.from(data), isBinary });
            if (messages.length === 2) resolve();
          });
        });
      });
      const request = Buffer.concat([
        Buffer.from(upgradeRequest()),
        maskedFrame(0x1, 'one'),
        maskedFrame(0x2, Buffer.from([0, 1, 2, 255]))
      ]);
      const res = await request_(port, request);
      assert.strictEqual(res.status, 101);
      await withTimeout(got, 'two messages');
      assert.deepStrictEqual(messages, [
        { data: Buffer.from('one'), isBinary: false },
        { data: Buffer.from([0, 1, 2, 255]), isBinary: true }
      ]);
    });

    async function request_(port, buf) {
      const res = await rawRequest(port, buf);
      cleanup.add(res.socket);
      return res;
    }
  });
});
