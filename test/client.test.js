'use strict';

// The client (lib/client.js + lib/websocket.js) against real servers on 127.0.0.1: ws-native's
// WebSocketServer, the `ws` package's WebSocketServer and the Python `websockets` server, then
// handshake failures, constructor errors, redirects, schemes, TLS, options, the browser-style
// API and frame masking against raw servers this file controls.
// Runs against the `ws` client too (WS_IMPL=ws) to check that each test expects what ws does.

const assert = require('assert');
const crypto = require('crypto');
const EventEmitter = require('events');
const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { spawn, spawnSync } = require('child_process');
const { Blob } = require('buffer');

const Ws = require('ws');
const Native = require('..');
const { WebSocket, nativeOnly } = require('./support/impl');
const {
  Cleanup,
  acceptKey,
  closeServer,
  frame,
  listen,
  nextMessage,
  once,
  parseFrame,
  withTimeout
} = require('./support/net-helpers');

const PYTHON = '/usr/bin/python3';
const PY_SERVER = path.join(__dirname, 'support', 'python-echo-server.py');
const CERT = fs.readFileSync(path.join(__dirname, 'fixtures', 'cert.pem'));
const KEY = fs.readFileSync(path.join(__dirname, 'fixtures', 'key.pem'));

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// ---- helpers ----

/** A client, tracked for cleanup. */
function client(...args) {
  return cleanup.add(new WebSocket(...args));
}

/** Opens a client and resolves with it once 'open' fired; rejects on 'error'. */
async function open(...args) {
  const ws = client(...args);
  await once(ws, 'open', { rejectOnError: true });
  return ws;
}

/**
 * Records the events of a client until 'close': resolves with
 * [{ event: 'open' }, { event: 'error', err }, { event: 'close', code, reason }, ...].
 */
function outcome(ws, { errorListener = true } = {}) {
  const seq = [];
  return withTimeout(
    new Promise((resolve) => {
      ws.on('open', () => seq.push({ event: 'open' }));
      if (errorListener) ws.on('error', (err) => seq.push({ event: 'error', err }));
      ws.on('close', (code, reason) => {
        seq.push({ event: 'close', code, reason });
        resolve(seq);
      });
    }),
    "the client's 'close'"
  );
}

/** Asserts that the client failed with exactly 'error' (message) then 'close' 1006. */
async function expectFailure(ws, message) {
  const seq = await outcome(ws);
  assert.deepStrictEqual(
    seq.map((e) => e.event),
    ['error', 'close'],
    `events: ${seq.map((e) => (e.err ? `error(${e.err.message})` : e.event)).join(', ')}`
  );
  if (message instanceof RegExp) assert.match(seq[0].err.message, message);
  else assert.strictEqual(seq[0].err.message, message);
  assert.strictEqual(seq[1].code, 1006);
  assert.strictEqual(seq[1].reason.length, 0);
  return seq[0].err;
}

/** A port nothing listens on (a server was bound to it and closed). */
async function closedPort() {
  const server = net.createServer();
  const port = await listen(server);
  await closeServer(server);
  return port;
}

/**
 * A raw TCP server that parses the request head and calls onRequest(socket, req) with
 * req = { method, path, headers (lower-case names) }. Records every request in `requests`.
 */
async function rawServer(onRequest) {
  const requests = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.removeListener('data', onData);
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const [method, target] = lines[0].split(' ');
      const headers = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const req = { method, path: target, headers, rest: buf.subarray(end + 4) };
      requests.push(req);
      onRequest(socket, req);
    };
    socket.on('data', onData);
  });
  cleanup.add(server);
  const port = await listen(server);
  return { server, port, requests, url: `ws://127.0.0.1:${port}` };
}

/** Writes a 101 answer; `headers` overrides/extends the correct ones (null removes one). */
function write101(socket, req, headers = {}) {
  const all = {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Accept': acceptKey(req.headers['sec-websocket-key']),
    ...headers
  };
  let text = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [name, value] of Object.entries(all)) {
    if (value !== null && value !== undefined) text += `${name}: ${value}\r\n`;
  }
  socket.write(text + '\r\n');
}


/** An unmasked server frame. */
function serverFrame(opcode, payload) {
  return frame({ opcode, payload, mask: false });
}

/**
 * A `ws` package echo server (the reference peer for the API tests). `connections` emits
 * 'connection' (ws, req). On the path /close4001 the server closes with 4001 'py-bye' after
 * the first message.
 */
async function refServer(options = {}) {
  const wss = cleanup.add(new Ws.WebSocketServer({ port: 0, host: '127.0.0.1', ...options }));
  await once(wss, 'listening');
  const port = wss.address().port;
  wss.on('connection', (ws, req) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (req.url === '/close4001') ws.close(4001, 'py-bye');
      else ws.send(data, { binary: isBinary });
    });
  });
  return { wss, port, url: `ws://127.0.0.1:${port}` };
}

// ---- the three echo servers ----

/**
 * A JS echo server (ws-native's or ws's WebSocketServer). Picks the subprotocol 'b' when
 * offered. `closes` emits 'closed' (path, code, reason) when a connection ends.
 */
async function startJsServer(Server) {
  const closes = new EventEmitter();
  const wss = new Server({
    port: 0,
    host: '127.0.0.1',
    handleProtocols: (protocols) => (protocols.has('b') ? 'b' : false)
  });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    const urlPath = req.url;
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (urlPath === '/close4001') ws.close(4001, 'py-bye');
      else ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => closes.emit('closed', urlPath, code, reason.toString()));
  });
  return {
    url: `ws://127.0.0.1:${wss.address().port}`,
    closes,
    stop: () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      })
  };
}

const pythonHasWebsockets =
  fs.existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0;

/** The Python `websockets` echo server as a child process (it picks 'b' when offered). */
async function startPythonServer() {
  const child = spawn(PYTHON, [PY_SERVER, '0', '--subprotocol', 'b'], {
    stdio: ['pipe', 'pipe', 'inherit']
  });
  const closes = new EventEmitter();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const lines = readline.createInterface({ input: child.stdout });
  const port = await withTimeout(
    new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`python server exited (${code})`)));
      lines.on('line', (line) => {
        let m;
        if ((m = /^PORT (\d+)$/.exec(line))) resolve(Number(m[1]));
        else if ((m = /^CLOSED (\S+) (\S+) ?(.*)$/.exec(line))) {
          closes.emit('closed', m[1], Number(m[2]), m[3]);
        }
      });
    }),
    'the python server to start',
    10000
  );
  return {
    url: `ws://127.0.0.1:${port}`,
    closes,
    stop: async () => {
      child.stdin.end(); // the server exits on EOF on stdin
      try {
        await withTimeout(exited, 'the python server to exit');
      } catch {
        child.kill();
        await exited;
      }
    }
  };
}

/** Resolves with { code, reason } when the server reports the end of a connection on urlPath. */
function serverClose(server, urlPath) {
  return withTimeout(
    new Promise((resolve) => {
      const onClosed = (p, code, reason) => {
        if (p !== urlPath) return;
        server.closes.removeListener('closed', onClosed);
        resolve({ code, reason });
      };
      server.closes.on('closed', onClosed);
    }),
    `the server to report the close of ${urlPath}`
  );
}

const serverKinds = [
  { name: "ws-native's WebSocketServer", start: () => startJsServer(Native.WebSocketServer) },
  { name: "the ws package's WebSocketServer", start: () => startJsServer(Ws.WebSocketServer) },
  {
    name: 'the Python websockets server',
    start: startPythonServer,
    skipReason: pythonHasWebsockets ? null : `${PYTHON} cannot import websockets`
  }
];

for (const kind of serverKinds) {
  const title = `client against ${kind.name}`;
  if (kind.skipReason) {
    describe.skip(`${title} (SKIPPED: ${kind.skipReason})`, () => {});
    continue;
  }

  describe(title, function () {
    let server;
    before(async function () {
      server = await kind.start();
    });
    after(async function () {
      if (server) await server.stop();
    });

    it('echoes text as text', async function () {
      const ws = await open(`${server.url}/text`);
      ws.send('héllo wörld ✓');
      const [data, isBinary] = await nextMessage(ws);
      assert.strictEqual(isBinary, false);
      assert.ok(Buffer.isBuffer(data));
      assert.strictEqual(data.toString(), 'héllo wörld ✓');
    });

    it('echoes binary as binary', async function () {
      const ws = await open(`${server.url}/binary`);
      const payload = Buffer.from([0, 1, 2, 0x80, 0xfe, 0xff]);
      ws.send(payload);
      const [data, isBinary] = await nextMessage(ws);
      assert.strictEqual(isBinary, true);
      assert.deepStrictEqual(data, payload);
    });

    it('echoes empty text and empty binary messages', async function () {
      const ws = await open(`${server.url}/empty`);
      ws.send('');
      const [text, textIsBinary] = await nextMessage(ws);
      assert.strictEqual(textIsBinary, false);
      assert.strictEqual(text.length, 0);
      ws.send(Buffer.alloc(0));
      const [bin, binIsBinary] = await nextMessage(ws);
      assert.strictEqual(binIsBinary, true);
      assert.strictEqual(bin.length, 0);
    });

    it('echoes a 1 MiB binary message intact', async function () {
      const ws = await open(`${server.url}/big`);
      const payload = crypto.randomBytes(1024 * 1024);
      ws.send(payload);
      const [data, isBinary] = await nextMessage(ws, { timeout: 15000 });
      assert.strictEqual(isBinary, true);
      assert.strictEqual(data.length, payload.length);
      assert.ok(data.equals(payload), 'the echoed bytes differ');
    });

    it('echoes 100 messages in order', async function () {
      const ws = await open(`${server.url}/many`);
      const sent = Array.from({ length: 100 }, (_, i) => `message ${i}`);
      const received = [];
      const all = withTimeout(
        new Promise((resolve) => {
          ws.on('message', (data) => {
            received.push(data.toString());
            if (received.length === sent.length) resolve();
          });
        }),
        '100 echoes'
      );
      for (const m of sent) ws.send(m);
      await all;
      assert.deepStrictEqual(received, sent);
    });

    it('client close(4000, "bye"): the server sees 4000/"bye", the client gets 4000 + Buffer "bye"', async function () {
      const ws = await open(`${server.url}/close4000`);
      const seen = serverClose(server, '/close4000');
      const closed = outcome(ws);
      ws.close(4000, 'bye');
      const seq = await closed;
      assert.deepStrictEqual(seq.map((e) => e.event), ['close']);
      assert.strictEqual(seq[0].code, 4000);
      assert.ok(Buffer.isBuffer(seq[0].reason));
      assert.strictEqual(seq[0].reason.toString(), 'bye');
      assert.deepStrictEqual(await seen, { code: 4000, reason: 'bye' });
    });

    it('a close initiated by the server (4001 "py-bye") reaches the client', async function () {
      const ws = await open(`${server.url}/close4001`);
      const closed = outcome(ws);
      ws.send('trigger');
      const seq = await closed;
      assert.deepStrictEqual(seq.map((e) => e.event), ['close']);
      assert.strictEqual(seq[0].code, 4001);
      assert.strictEqual(seq[0].reason.toString(), 'py-bye');
      assert.strictEqual(ws.readyState, WebSocket.CLOSED);
    });

    it("subprotocols: offers ['a', 'b'], the server picks 'b' -> ws.protocol", async function () {
      const ws = await open(`${server.url}/proto`, ['a', 'b']);
      assert.strictEqual(ws.protocol, 'b');
      ws.send('with protocol');
      const [data] = await nextMessage(ws);
      assert.strictEqual(data.toString(), 'with protocol');
      const plain = await open(`${server.url}/noproto`);
      assert.strictEqual(plain.protocol, '');
    });

    it('ping from the client is answered with a pong carrying the same data', async function () {
      const ws = await open(`${server.url}/ping`);
      const pong = once(ws, 'pong', { rejectOnError: true });
      const sent = new Promise((resolve) => ws.ping(Buffer.from('ping-data'), undefined, resolve));
      const [data] = await pong;
      const err = await withTimeout(sent, 'the ping callback');
      assert.ok(err === undefined || err === null, `the ping callback got ${err}`);
      assert.strictEqual(data.toString(), 'ping-data');
    });
  });
}

// ---- handshake failures ----

describe('client handshake failures', function () {
  it("wrong Sec-WebSocket-Accept -> 'Invalid Sec-WebSocket-Accept header' then close 1006", async function () {
    const srv = await rawServer((socket, req) =>
      write101(socket, req, { 'Sec-WebSocket-Accept': acceptKey('AAAAAAAAAAAAAAAAAAAAAA==') })
    );
    await expectFailure(client(srv.url), 'Invalid Sec-WebSocket-Accept header');
  });

  it("close() and terminate() from the 'error' listener of a failed handshake do nothing more; 'close' follows", async function () {
    const srv = await rawServer((socket, req) =>
      write101(socket, req, { 'Sec-WebSocket-Accept': acceptKey('AAAAAAAAAAAAAAAAAAAAAA==') })
    );
    for (const method of ['close', 'terminate']) {
      const ws = client(srv.url);
      const [err] = await once(ws, 'error');
      assert.strictEqual(err.message, 'Invalid Sec-WebSocket-Accept header');
      assert.strictEqual(ws.readyState, WebSocket.CLOSING);
      ws[method]();
      const [code] = await once(ws, 'close');
      assert.strictEqual(code, 1006);
    }
  });

  // Node's HTTP parser treats a 101 without an Upgrade header as an ordinary response, so it
  // never reaches the 'upgrade' check: ws reports 'Unexpected server response: 101' there.
  it("missing Upgrade header in the 101 -> 'Unexpected server response: 101' (as ws)", async function () {
    const srv = await rawServer((socket, req) => write101(socket, req, { Upgrade: null }));
    await expectFailure(client(srv.url), 'Unexpected server response: 101');
  });

  it("Upgrade: foo in the 101 -> 'Invalid Upgrade header'", async function () {
    const srv = await rawServer((socket, req) => write101(socket, req, { Upgrade: 'foo' }));
    await expectFailure(client(srv.url), 'Invalid Upgrade header');
  });

  it("HTTP 403 -> 'Unexpected server response: 403'", async function () {
    const { server, port } = await httpServer((req, res) => {
      res.writeHead(403);
      res.end('forbidden');
    });
    assert.ok(server);
    await expectFailure(client(`ws://127.0.0.1:${port}`), 'Unexpected server response: 403');
  });

  it("HTTP 403 with an 'unexpected-response' listener: it gets (req, res), no 'error'", async function () {
    const { port } = await httpServer((req, res) => {
      res.writeHead(403, { 'X-Why': 'nope' });
      res.end('forbidden');
    });
    const ws = client(`ws://127.0.0.1:${port}`);
    const errors = [];
    ws.on('error', (err) => errors.push(err));
    const [req, res] = await once(ws, 'unexpected-response');
    assert.ok(req instanceof http.ClientRequest);
    assert.ok(res instanceof http.IncomingMessage);
    assert.strictEqual(res.statusCode, 403);
    assert.strictEqual(res.headers['x-why'], 'nope');
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    await once(res, 'end');
    await new Promise((resolve) => setImmediate(resolve));
    assert.strictEqual(body, 'forbidden');
    assert.deepStrictEqual(errors, []);
    assert.strictEqual(ws.readyState, WebSocket.CONNECTING);
    // Ending it is the listener's business; terminate() reports the abandoned handshake.
    const closed = once(ws, 'close');
    ws.terminate();
    const [code] = await closed;
    assert.strictEqual(code, 1006);
    assert.deepStrictEqual(
      errors.map((e) => e.message),
      ['WebSocket was closed before the connection was established']
    );
  });

  it("handshakeTimeout with a server that never answers -> 'Opening handshake has timed out'", async function () {
    const srv = await rawServer(() => {});
    await expectFailure(client(srv.url, { handshakeTimeout: 100 }), 'Opening handshake has timed out');
    assert.strictEqual(srv.requests.length, 1);
  });

  // (ws resets its timer on every byte, so it completes this handshake: ws-native only.)
  nativeOnly.it('handshakeTimeout is a deadline: a server dripping its 101 a byte at a time cannot hold the handshake open past it', async function () {
    let written = 0;
    let total = 0;
    let timer = null;
    const srv = await rawServer((socket, req) => {
      const captured = [];
      write101({ write: (text) => captured.push(text) }, req);
      const answer = Buffer.from(captured.join(''), 'latin1');
      total = answer.length;
      // About 20 ms a byte: the whole answer takes several seconds, far past the deadline.
      timer = setInterval(() => {
        if (written === total || socket.destroyed) return clearInterval(timer);
        socket.write(answer.subarray(written, ++written));
      }, 20);
      socket.on('close', () => clearInterval(timer));
    });
    try {
      await expectFailure(client(srv.url, { handshakeTimeout: 300 }), 'Opening handshake has timed out');
      assert.ok(written > 0, 'the server had begun to answer');
      assert.ok(written < total, `aborted before the whole answer came (${written} of ${total} bytes)`);
    } finally {
      clearInterval(timer);
    }
  });

  it("the server picks a subprotocol that was not offered -> 'Server sent an invalid subprotocol'", async function () {
    const srv = await rawServer((socket, req) =>
      write101(socket, req, { 'Sec-WebSocket-Protocol': 'c' })
    );
    await expectFailure(client(srv.url, ['a', 'b']), 'Server sent an invalid subprotocol');
    assert.strictEqual(srv.requests[0].headers['sec-websocket-protocol'], 'a,b');
  });

  it("subprotocols offered but none chosen -> 'Server sent no subprotocol'", async function () {
    const srv = await rawServer((socket, req) => write101(socket, req));
    await expectFailure(client(srv.url, ['a', 'b']), 'Server sent no subprotocol');
  });

  it("a subprotocol chosen though none was offered -> 'Server sent a subprotocol but none was requested'", async function () {
    const srv = await rawServer((socket, req) =>
      write101(socket, req, { 'Sec-WebSocket-Protocol': 'a' })
    );
    await expectFailure(client(srv.url), 'Server sent a subprotocol but none was requested');
  });

  it('an unrequested Sec-WebSocket-Extensions header fails the handshake', async function () {
    const srv = await rawServer((socket, req) =>
      write101(socket, req, { 'Sec-WebSocket-Extensions': 'permessage-deflate' })
    );
    const ws = client(srv.url, { perMessageDeflate: false });
    await expectFailure(
      ws,
      'Server sent a Sec-WebSocket-Extensions header but no extension was requested'
    );
    assert.strictEqual(srv.requests[0].headers['sec-websocket-extensions'], undefined);
  });

  for (const answer of ['foo', 'permessage-deflate, foo']) {
    it(`an extension that was not offered (${answer}) -> 'Server indicated an extension that was not requested'`, async function () {
      const srv = await rawServer((socket, req) =>
        write101(socket, req, { 'Sec-WebSocket-Extensions': answer })
      );
      await expectFailure(client(srv.url), 'Server indicated an extension that was not requested');
    });
  }

  it("a malformed Sec-WebSocket-Extensions answer -> 'Invalid Sec-WebSocket-Extensions header'", async function () {
    const srv = await rawServer((socket, req) =>
      write101(socket, req, { 'Sec-WebSocket-Extensions': 'permessage-deflate; =x' })
    );
    await expectFailure(client(srv.url), 'Invalid Sec-WebSocket-Extensions header');
  });

  it("connection refused -> 'error' (ECONNREFUSED) then 'close' 1006", async function () {
    const port = await closedPort();
    const err = await expectFailure(client(`ws://127.0.0.1:${port}`), /ECONNREFUSED/);
    assert.strictEqual(err.code, 'ECONNREFUSED');
  });

  nativeOnly.it("connection refused with NO 'error' listener: no crash, still 'close' 1006", async function () {
    const port = await closedPort();
    const ws = client(`ws://127.0.0.1:${port}`);
    const seq = await outcome(ws, { errorListener: false });
    assert.deepStrictEqual(seq.map((e) => e.event), ['close']);
    assert.strictEqual(seq[0].code, 1006);
    assert.strictEqual(ws.readyState, WebSocket.CLOSED);
  });

  nativeOnly.it("a bad 101 with NO 'error' listener: no crash, still 'close' 1006", async function () {
    const srv = await rawServer((socket, req) => write101(socket, req, { Upgrade: 'foo' }));
    const seq = await outcome(client(srv.url), { errorListener: false });
    assert.deepStrictEqual(seq.map((e) => e.event), ['close']);
    assert.strictEqual(seq[0].code, 1006);
  });
});

/** An http.Server on 127.0.0.1 (tracked for cleanup). */
async function httpServer(handler) {
  const server = cleanup.add(http.createServer(handler));
  const port = await listen(server);
  return { server, port };
}

// ---- constructor errors ----

describe('client constructor errors (thrown synchronously, as ws)', function () {
  function throwsSync(fn, Type, message) {
    let thrown;
    try {
      cleanup.add(fn());
    } catch (err) {
      thrown = err;
    }
    assert.ok(thrown, 'nothing was thrown');
    assert.strictEqual(thrown.constructor, Type, `got ${thrown.name}: ${thrown.message}`);
    if (message instanceof RegExp) assert.match(thrown.message, message);
    else assert.strictEqual(thrown.message, message);
  }

  it("an invalid URL -> SyntaxError 'Invalid URL: ...'", function () {
    throwsSync(() => new WebSocket('not a url'), SyntaxError, 'Invalid URL: not a url');
  });

  it('ftp://x -> SyntaxError about the protocol', function () {
    throwsSync(
      () => new WebSocket('ftp://x'),
      SyntaxError,
      'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"'
    );
  });

  it('a URL with a #fragment -> SyntaxError', function () {
    throwsSync(
      () => new WebSocket('ws://127.0.0.1:1/path#frag'),
      SyntaxError,
      'The URL contains a fragment identifier'
    );
  });

  it('an invalid or duplicated subprotocol -> SyntaxError', function () {
    const message = 'An invalid or duplicated subprotocol was specified';
    throwsSync(() => new WebSocket('ws://127.0.0.1:1', ['a', 'a']), SyntaxError, message);
    throwsSync(() => new WebSocket('ws://127.0.0.1:1', ['a b']), SyntaxError, message);
    throwsSync(() => new WebSocket('ws://127.0.0.1:1', 'x,y'), SyntaxError, message);
    throwsSync(() => new WebSocket('ws://127.0.0.1:1', ['']), SyntaxError, message);
  });

  it('protocolVersion 7 -> RangeError', function () {
    throwsSync(
      () => new WebSocket('ws://127.0.0.1:1', { protocolVersion: 7 }),
      RangeError,
      'Unsupported protocol version: 7 (supported versions: 8, 13)'
    );
  });

  // ws takes them and misbehaves later (ws-native used to throw from inside the 'upgrade'
  // event, where no caller can catch it); checked in the constructor, as the server does.
  nativeOnly.it('an invalid limit option -> RangeError ERR_OUT_OF_RANGE from the constructor', function () {
    const names = [
      'maxPayload',
      'closeTimeout',
      'highWaterMark',
      'maxFragments',
      'maxBufferedChunks',
      'maxPendingAutoPongs',
      'maxBufferedAmount',
      'maxRedirects',
      'handshakeTimeout'
    ];
    for (const name of names) {
      for (const value of [NaN, null, -1, 'big', {}]) {
        assert.throws(
          () => cleanup.add(new WebSocket('ws://127.0.0.1:1', { [name]: value })),
          (err) => err instanceof RangeError && err.code === 'ERR_OUT_OF_RANGE' && err.message.includes(name),
          `${name}: ${String(value)}`
        );
      }
    }
    for (const name of ['closeTimeout', 'handshakeTimeout']) {
      assert.throws(() => new WebSocket('ws://127.0.0.1:1', { [name]: 2 ** 31 }), { code: 'ERR_OUT_OF_RANGE' });
    }
    assert.throws(() => new WebSocket('ws://127.0.0.1:1', { onBufferOverflow: 'ignore' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE'
    });
  });

  it('an option given as undefined keeps its default', async function () {
    const ref = await refServer();
    const ws = await open(ref.url, { maxPayload: undefined, handshakeTimeout: undefined, closeTimeout: undefined });
    ws.send('still works');
    const [data] = await nextMessage(ws);
    assert.strictEqual(data.toString(), 'still works');
  });
});

// ---- redirects ----

describe('client redirects', function () {
  /**
   * One http.Server answering upgrade requests itself: paths in `redirects` get that status
   * and Location; anything else is upgraded by a ws-native WebSocketServer (echo). Every
   * upgrade request is recorded as { host, path, headers }.
   */
  async function redirectServer(redirects) {
    const requests = [];
    const wss = cleanup.add(new Native.WebSocketServer({ noServer: true }));
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    const server = cleanup.add(http.createServer());
    server.on('upgrade', (req, socket, head) => {
      requests.push({ path: req.url, headers: req.headers });
      const r = redirects[req.url];
      if (r) {
        socket.end(`HTTP/1.1 ${r.status} Moved\r\nLocation: ${r.location}\r\nContent-Length: 0\r\n\r\n`);
      } else {
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      }
    });
    const port = await listen(server);
    return { port, requests };
  }

  for (const status of [301, 302]) {
    it(`followRedirects with a ${status}: 'redirect' (url, req), then it opens on the target`, async function () {
      const target = await redirectServer({});
      const targetUrl = `ws://127.0.0.1:${target.port}/target?x=1`;
      const origin = await redirectServer({ '/start': { status, location: targetUrl } });
      const ws = client(`ws://127.0.0.1:${origin.port}/start`, { followRedirects: true });
      const redirects = [];
      ws.on('redirect', (url, req) => redirects.push({ url, req }));
      await once(ws, 'open', { rejectOnError: true });
      assert.strictEqual(redirects.length, 1);
      assert.strictEqual(redirects[0].url, targetUrl);
      assert.ok(redirects[0].req instanceof http.ClientRequest);
      assert.strictEqual(ws.url, targetUrl);
      assert.deepStrictEqual(origin.requests.map((r) => r.path), ['/start']);
      assert.deepStrictEqual(target.requests.map((r) => r.path), ['/target?x=1']);
      ws.send('after redirect');
      const [data] = await nextMessage(ws);
      assert.strictEqual(data.toString(), 'after redirect');
    });
  }

  it('a relative Location is resolved against the current URL', async function () {
    const srv = await redirectServer({ '/a/b': { status: 302, location: '../c' } });
    const ws = await open(`ws://127.0.0.1:${srv.port}/a/b`, { followRedirects: true });
    assert.strictEqual(ws.url, `ws://127.0.0.1:${srv.port}/c`);
    assert.deepStrictEqual(srv.requests.map((r) => r.path), ['/a/b', '/c']);
  });

  it("more redirects than maxRedirects -> 'Maximum redirects exceeded'", async function () {
    const srv = await redirectServer({ '/loop': { status: 302, location: '/loop' } });
    const ws = client(`ws://127.0.0.1:${srv.port}/loop`, { followRedirects: true, maxRedirects: 2 });
    await expectFailure(ws, 'Maximum redirects exceeded');
    assert.strictEqual(srv.requests.length, 3);
  });

  it("without followRedirects a 302 -> 'Unexpected server response: 302'", async function () {
    const srv = await redirectServer({ '/start': { status: 302, location: '/target' } });
    await expectFailure(client(`ws://127.0.0.1:${srv.port}/start`), 'Unexpected server response: 302');
    assert.deepStrictEqual(srv.requests.map((r) => r.path), ['/start']);
  });

  const sensitive = { Authorization: 'Bearer secret', Cookie: 'session=1', 'X-Custom': 'kept' };

  it('Authorization and Cookie are dropped when redirected to a different host', async function () {
    // One server, two host names: ws://localhost:P/start -> ws://127.0.0.1:P/final.
    const redirects = {};
    const srv = await redirectServer(redirects);
    redirects['/start'] = { status: 302, location: `ws://127.0.0.1:${srv.port}/final` };
    const ws = await open(`ws://localhost:${srv.port}/start`, {
      followRedirects: true,
      headers: sensitive,
      family: 4
    });
    assert.strictEqual(ws.url, `ws://127.0.0.1:${srv.port}/final`);
    assert.deepStrictEqual(srv.requests.map((r) => r.path), ['/start', '/final']);
    const [first, final] = srv.requests;
    assert.strictEqual(first.headers.host, `localhost:${srv.port}`);
    assert.strictEqual(first.headers.authorization, 'Bearer secret');
    assert.strictEqual(first.headers.cookie, 'session=1');
    assert.strictEqual(final.headers.authorization, undefined);
    assert.strictEqual(final.headers.cookie, undefined);
    assert.strictEqual(final.headers['x-custom'], 'kept');
    assert.strictEqual(final.headers.host, `127.0.0.1:${srv.port}`);
  });

  it("with a 'redirect' listener, the headers are left to it (kept on another host, as ws)", async function () {
    const redirects = {};
    const srv = await redirectServer(redirects);
    redirects['/start'] = { status: 302, location: `ws://127.0.0.1:${srv.port}/final` };
    const ws = client(`ws://localhost:${srv.port}/start`, {
      followRedirects: true,
      headers: sensitive,
      family: 4
    });
    const seen = [];
    ws.on('redirect', (url, req) => seen.push([url, req.getHeader('authorization')]));
    await once(ws, 'open', { rejectOnError: true });
    assert.deepStrictEqual(seen, [[`ws://127.0.0.1:${srv.port}/final`, 'Bearer secret']]);
    assert.strictEqual(srv.requests[1].headers.authorization, 'Bearer secret');
    assert.strictEqual(srv.requests[1].headers.cookie, 'session=1');
  });

  it("a redirect to a non-WebSocket URL -> 'error' (SyntaxError) then 'close' 1006, not a throw", async function () {
    const srv = await redirectServer({ '/start': { status: 302, location: 'ftp://127.0.0.1/x' } });
    const err = await expectFailure(
      client(`ws://127.0.0.1:${srv.port}/start`, { followRedirects: true }),
      'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"'
    );
    assert.ok(err instanceof SyntaxError);
  });

  it('Authorization and Cookie are kept when redirected on the same host', async function () {
    const srv = await redirectServer({ '/start': { status: 301, location: '/final' } });
    await open(`ws://127.0.0.1:${srv.port}/start`, { followRedirects: true, headers: sensitive });
    assert.deepStrictEqual(srv.requests.map((r) => r.path), ['/start', '/final']);
    for (const r of srv.requests) {
      assert.strictEqual(r.headers.authorization, 'Bearer secret');
      assert.strictEqual(r.headers.cookie, 'session=1');
      assert.strictEqual(r.headers['x-custom'], 'kept');
    }
  });
});

// ---- schemes ----

describe('client URL schemes', function () {
  it('http:// works like ws:// (and ws.url says ws:)', async function () {
    const ref = await refServer();
    const ws = await open(`http://127.0.0.1:${ref.port}/h?q=1`);
    assert.strictEqual(ws.url, `ws://127.0.0.1:${ref.port}/h?q=1`);
    ws.send('over http:');
    const [data] = await nextMessage(ws);
    assert.strictEqual(data.toString(), 'over http:');
  });

  it('https:// works like wss:// (and ws.url says wss:)', async function () {
    const { port } = await tlsEchoServer();
    const ws = await open(`https://127.0.0.1:${port}/s`, { rejectUnauthorized: false });
    assert.strictEqual(ws.url, `wss://127.0.0.1:${port}/s`);
    ws.send('over https:');
    const [data] = await nextMessage(ws);
    assert.strictEqual(data.toString(), 'over https:');
  });

  it('ws+unix:/path/to.sock:/path connects to a server on a Unix socket', async function () {
    if (process.platform === 'win32') this.skip();
    const sockPath = path.join(os.tmpdir(), `ws-native-client-${process.pid}-${Date.now()}.sock`);
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new Native.WebSocketServer({ server }));
    const paths = [];
    wss.on('connection', (ws, req) => {
      paths.push(req.url);
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(sockPath, resolve);
    });
    cleanup.add(() => fs.promises.rm(sockPath, { force: true }));
    const ws = await open(`ws+unix:${sockPath}:/some/path?x=1`);
    ws.send('over a unix socket');
    const [data] = await nextMessage(ws);
    assert.strictEqual(data.toString(), 'over a unix socket');
    assert.deepStrictEqual(paths, ['/some/path?x=1']);
    ws.close();
    await once(ws, 'close');
  });

  it('ws+unix: keeps the colons of the request path (only the first one splits)', async function () {
    if (process.platform === 'win32') this.skip();
    const sockPath = path.join(os.tmpdir(), `ws-native-client-${process.pid}-${Date.now()}-c.sock`);
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new Native.WebSocketServer({ server }));
    const paths = [];
    wss.on('connection', (ws, req) => paths.push(req.url));
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(sockPath, resolve);
    });
    cleanup.add(() => fs.promises.rm(sockPath, { force: true }));
    await open(`ws+unix:${sockPath}:/a:b?t=12:30`);
    assert.deepStrictEqual(paths, ['/a:b?t=12:30']);
  });

  it('an IPv6 literal host ws://[::1]:port works', async function () {
    const wss = cleanup.add(new Ws.WebSocketServer({ port: 0, host: '::1' }));
    try {
      await once(wss, 'listening', { rejectOnError: true });
    } catch (err) {
      this.skip(); // no IPv6 loopback here
    }
    const hosts = [];
    wss.on('connection', (ws, req) => hosts.push(req.headers.host));
    const port = wss.address().port;
    const ws = await open(`ws://[::1]:${port}/v6`);
    assert.strictEqual(ws.url, `ws://[::1]:${port}/v6`);
    assert.deepStrictEqual(hosts, [`[::1]:${port}`]);
  });

  it('a URL object with http: is not modified by the constructor (ws copies it)', async function () {
    const ref = await refServer();
    const url = new URL(`http://127.0.0.1:${ref.port}/obj`);
    const ws = await open(url);
    assert.strictEqual(ws.url, `ws://127.0.0.1:${ref.port}/obj`);
    assert.strictEqual(url.href, `http://127.0.0.1:${ref.port}/obj`);
  });

  it('user:password in the URL is sent as Basic authorization, percent-decoded (as ws)', async function () {
    const ref = await refServer();
    const auth = [];
    ref.wss.on('connection', (ws, req) => auth.push(req.headers.authorization));
    await open(`ws://user:pass@127.0.0.1:${ref.port}/`);
    await open(`ws://us%40er:p%3Ass@127.0.0.1:${ref.port}/`);
    assert.deepStrictEqual(auth, [
      'Basic ' + Buffer.from('user:pass').toString('base64'),
      'Basic ' + Buffer.from('us@er:p:ss').toString('base64')
    ]);
  });
});

// ---- TLS ----

/** An https.Server (fixture cert) with a ws-native echo WebSocketServer. */
async function tlsEchoServer() {
  const server = cleanup.add(https.createServer({ cert: CERT, key: KEY }));
  server.on('tlsClientError', () => {});
  const wss = cleanup.add(new Native.WebSocketServer({ server }));
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const port = await listen(server);
  return { server, port };
}

describe('client TLS (wss://)', function () {
  it('works with rejectUnauthorized: false', async function () {
    const { port } = await tlsEchoServer();
    const ws = await open(`wss://127.0.0.1:${port}`, { rejectUnauthorized: false });
    const payload = crypto.randomBytes(100000);
    ws.send(payload);
    const [data, isBinary] = await nextMessage(ws);
    assert.strictEqual(isBinary, true);
    assert.ok(data.equals(payload));
  });

  it("without rejectUnauthorized: false -> 'error' (self-signed certificate) then 'close' 1006", async function () {
    const { port } = await tlsEchoServer();
    const err = await expectFailure(client(`wss://127.0.0.1:${port}`), /self[- ]signed/i);
    assert.match(err.code, /SELF_SIGNED/);
  });

  it("with ca: cert and servername 'localhost'", async function () {
    const { port } = await tlsEchoServer();
    const ws = await open(`wss://127.0.0.1:${port}`, { ca: CERT, servername: 'localhost' });
    ws.send('trusted');
    const [data] = await nextMessage(ws);
    assert.strictEqual(data.toString(), 'trusted');
  });
});

// ---- options passed through ----

describe('client options', function () {
  async function recordingServer() {
    const ref = await refServer();
    const requests = [];
    ref.wss.on('connection', (ws, req) => requests.push(req));
    return { ...ref, requests };
  }

  // As in ws: nothing caps what a client may queue for the server it chose.
  it('a bulk upload that ignores backpressure completes (no default maxBufferedAmount on a client)', async function () {
    const wss = cleanup.add(new Native.WebSocketServer({ port: 0, host: '127.0.0.1' }));
    await once(wss, 'listening');
    const MESSAGES = 72; // 72 MiB: more than a server's 64 MiB default, and than socket buffers
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let received = 0;
    const allReceived = new Promise((resolve) => {
      wss.on('connection', (serverWs) => {
        serverWs.pause(); // reads nothing until the client has queued everything
        serverWs.on('message', (data) => {
          received += data.length;
          if (received === MESSAGES * chunk.length) resolve();
        });
        serverWs.once('resume-now', () => serverWs.resume());
      });
    });
    const ws = await open(`ws://127.0.0.1:${wss.address().port}`);
    const errors = [];
    ws.on('error', (err) => errors.push(err));
    const callbacks = [];
    for (let i = 0; i < MESSAGES; i++) ws.send(chunk, (err) => callbacks.push(err));
    assert.ok(ws.bufferedAmount > 64 * 1024 * 1024 - 1, `bufferedAmount ${ws.bufferedAmount}`);
    for (const serverWs of wss.clients) serverWs.emit('resume-now');
    await withTimeout(allReceived, 'every byte at the server');
    while (callbacks.length < MESSAGES) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepStrictEqual(errors, []);
    assert.ok(callbacks.every((err) => !err), 'every send succeeded');
    assert.strictEqual(ws.readyState, WebSocket.OPEN);
  });

  it('headers: a custom header reaches the server', async function () {
    const ref = await recordingServer();
    await open(ref.url, { headers: { 'X-Custom-Header': 'custom value' } });
    assert.strictEqual(ref.requests[0].headers['x-custom-header'], 'custom value');
    assert.strictEqual(ref.requests[0].headers['sec-websocket-version'], '13');
  });

  it('origin: sent as the Origin header', async function () {
    const ref = await recordingServer();
    await open(ref.url, { origin: 'https://example.com' });
    assert.strictEqual(ref.requests[0].headers.origin, 'https://example.com');
  });

  it('finishRequest(req, ws) is called and controls req.end()', async function () {
    const ref = await recordingServer();
    const calls = [];
    let lateError = null;
    const ws = client(ref.url, {
      finishRequest(req, websocket) {
        calls.push({ req, websocket });
        // If the client ended the request itself, setHeader() here would throw.
        setImmediate(() => {
          try {
            req.setHeader('X-Late', 'set after the constructor');
            req.end();
          } catch (err) {
            lateError = err;
            req.destroy();
          }
        });
      }
    });
    await once(ws, 'open', { rejectOnError: true });
    assert.strictEqual(lateError, null);
    assert.strictEqual(calls.length, 1);
    assert.ok(calls[0].req instanceof http.ClientRequest);
    assert.strictEqual(calls[0].websocket, ws);
    assert.strictEqual(ref.requests[0].headers['x-late'], 'set after the constructor');
  });

  it('createConnection is used to make the socket', async function () {
    const ref = await recordingServer();
    const calls = [];
    const ws = await open(ref.url, {
      createConnection(options) {
        calls.push({ host: options.host, port: Number(options.port) });
        return net.connect({ host: options.host, port: options.port });
      }
    });
    assert.deepStrictEqual(calls, [{ host: '127.0.0.1', port: ref.port }]);
    ws.send('via createConnection');
    const [data] = await nextMessage(ws);
    assert.strictEqual(data.toString(), 'via createConnection');
  });

  it('handshakeTimeout does not fire once the connection is open', async function () {
    const ref = await refServer();
    const ws = await open(ref.url, { handshakeTimeout: 50 });
    const errors = [];
    ws.on('error', (err) => errors.push(err));
    await new Promise((resolve) => setTimeout(resolve, 300));
    ws.send('still open');
    const [data] = await nextMessage(ws);
    assert.strictEqual(data.toString(), 'still open');
    assert.strictEqual(ws.readyState, WebSocket.OPEN);
    assert.deepStrictEqual(errors, []);
  });

  it("maxPayload: a larger message from the server -> 'error' 'Max payload size exceeded', then 'close'", async function () {
    const ref = await refServer();
    ref.wss.on('connection', (ws) => ws.send(Buffer.alloc(11)));
    const ws = client(ref.url, { maxPayload: 10 });
    const seq = await outcome(ws);
    assert.deepStrictEqual(seq.map((e) => e.event), ['open', 'error', 'close']);
    assert.ok(seq[1].err instanceof RangeError);
    assert.strictEqual(seq[1].err.message, 'Max payload size exceeded');
    assert.strictEqual(seq[1].err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    // The client sent a 1009 close frame and stopped reading: no close frame was received.
    assert.strictEqual(seq[2].code, 1006);
  });

  it('the protocols option (ws 8.23) offers subprotocols like the protocols argument', async function () {
    const ref = await refServer({ handleProtocols: (set) => (set.has('b') ? 'b' : false) });
    const offered = [];
    ref.wss.on('connection', (ws, req) => offered.push(req.headers['sec-websocket-protocol']));
    const a = await open(ref.url, { protocols: ['a', 'b'] });
    const b = await open(ref.url, undefined, { protocols: 'b' });
    assert.deepStrictEqual(offered, ['a,b', 'b']);
    assert.strictEqual(a.protocol, 'b');
    assert.strictEqual(b.protocol, 'b');
  });

  it("close() from an 'upgrade' listener aborts: 'error' then 'close' 1006, never 'open'", async function () {
    const ref = await recordingServer();
    const serverClosed = new Promise((resolve) =>
      ref.wss.on('connection', (ws) => ws.on('close', (code) => resolve(code)))
    );
    const ws = client(ref.url);
    ws.on('upgrade', () => ws.close());
    await expectFailure(ws, 'WebSocket was closed before the connection was established');
    assert.strictEqual(await withTimeout(serverClosed, "the server's close"), 1006);
  });

  it("'upgrade' gets the 101 response with its headers", async function () {
    const ref = await recordingServer();
    ref.wss.on('headers', (headers) => headers.push('X-Server: yes'));
    const ws = client(ref.url);
    const upgraded = once(ws, 'upgrade');
    await once(ws, 'open', { rejectOnError: true });
    const [res] = await upgraded;
    assert.ok(res instanceof http.IncomingMessage);
    assert.strictEqual(res.statusCode, 101);
    assert.strictEqual(res.headers['x-server'], 'yes');
    assert.strictEqual(res.headers.upgrade.toLowerCase(), 'websocket');
    assert.strictEqual(
      res.headers['sec-websocket-accept'],
      acceptKey(ref.requests[0].headers['sec-websocket-key'])
    );
  });
});

// ---- browser-style API ----

describe('client browser-style API', function () {
  it('CONNECTING/OPEN/CLOSING/CLOSED on the class and the instance', async function () {
    const ref = await refServer();
    const ws = client(ref.url);
    for (const [name, value] of [['CONNECTING', 0], ['OPEN', 1], ['CLOSING', 2], ['CLOSED', 3]]) {
      assert.strictEqual(WebSocket[name], value, `WebSocket.${name}`);
      assert.strictEqual(ws[name], value, `ws.${name}`);
    }
    await once(ws, 'open', { rejectOnError: true });
  });

  it('readyState goes 0 -> 1 -> 2 -> 3', async function () {
    const ref = await refServer();
    const ws = client(ref.url);
    const states = [ws.readyState];
    await once(ws, 'open', { rejectOnError: true });
    states.push(ws.readyState);
    const closed = once(ws, 'close');
    ws.close();
    states.push(ws.readyState);
    await closed;
    states.push(ws.readyState);
    assert.deepStrictEqual(states, [0, 1, 2, 3]);
  });

  it('onopen / onmessage / onclose receive events; the getters return the handlers', async function () {
    const ref = await refServer();
    const ws = client(ref.url);
    const seen = [];
    const onopen = (e) => {
      seen.push(['open', e.type, e.target === ws]);
      ws.send('attr');
    };
    const onmessage = (e) => {
      seen.push(['message', e.type, e.data]);
      ws.close(1000, 'done');
    };
    ws.onopen = onopen;
    ws.onmessage = onmessage;
    assert.strictEqual(ws.onopen, onopen);
    assert.strictEqual(ws.onmessage, onmessage);
    assert.strictEqual(ws.onerror, null);
    const closed = new Promise((resolve) => {
      ws.onclose = (e) => {
        seen.push(['close', e.type, e.code, e.reason, e.wasClean]);
        resolve();
      };
    });
    await withTimeout(closed, 'onclose');
    assert.deepStrictEqual(seen, [
      ['open', 'open', true],
      ['message', 'message', 'attr'],
      ['close', 'close', 1000, 'done', true]
    ]);
  });

  it('onerror gets an ErrorEvent (connection refused), then onclose with 1006 and wasClean false', async function () {
    const port = await closedPort();
    const ws = client(`ws://127.0.0.1:${port}`);
    const seen = [];
    ws.onerror = (e) => seen.push(['error', e.type, e.error && e.error.code, typeof e.message]);
    const closed = new Promise((resolve) => {
      ws.onclose = (e) => {
        seen.push(['close', e.code, e.reason, e.wasClean]);
        resolve();
      };
    });
    await withTimeout(closed, 'onclose');
    assert.deepStrictEqual(seen, [
      ['error', 'error', 'ECONNREFUSED', 'string'],
      ['close', 1006, '', false]
    ]);
  });

  it('setting an on<event> attribute replaces the previous handler; null removes it', async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    const calls = [];
    ws.onmessage = () => calls.push('first');
    ws.onmessage = () => calls.push('second');
    ws.send('1');
    await nextMessage(ws);
    ws.onmessage = null;
    assert.strictEqual(ws.onmessage, null);
    ws.send('2');
    await nextMessage(ws);
    assert.deepStrictEqual(calls, ['second']);
    assert.strictEqual(ws.listenerCount('message'), 0);
  });

  it('addEventListener with { once: true }, with a handleEvent object, and removeEventListener', async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    const calls = [];
    ws.addEventListener('message', (e) => calls.push(['once', e.data]), { once: true });
    const handler = {
      handleEvent(e) {
        calls.push(['object', e.data, this === handler]);
      }
    };
    ws.addEventListener('message', handler);
    const removed = (e) => calls.push(['removed', e.data]);
    ws.addEventListener('message', removed);
    ws.removeEventListener('message', removed);
    ws.send('one');
    await nextMessage(ws);
    ws.send('two');
    await nextMessage(ws);
    ws.removeEventListener('message', handler);
    ws.send('three');
    await nextMessage(ws);
    assert.deepStrictEqual(calls, [
      ['once', 'one'],
      ['object', 'one', true],
      ['object', 'two', true]
    ]);
  });

  it('MessageEvent.data: a string for text, a Buffer for binary (default binaryType)', async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    assert.strictEqual(ws.binaryType, 'nodebuffer');
    const data = [];
    ws.addEventListener('message', (e) => data.push(e.data));
    ws.send('text ✓');
    await nextMessage(ws);
    ws.send(Buffer.from([1, 2, 3]));
    await nextMessage(ws);
    assert.strictEqual(data[0], 'text ✓');
    assert.ok(Buffer.isBuffer(data[1]));
    assert.deepStrictEqual([...data[1]], [1, 2, 3]);
  });

  it("binaryType 'arraybuffer' -> ArrayBuffer", async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    ws.binaryType = 'arraybuffer';
    assert.strictEqual(ws.binaryType, 'arraybuffer');
    const event = new Promise((resolve) => ws.addEventListener('message', resolve, { once: true }));
    ws.send(Buffer.from([9, 8, 7]));
    const [data, isBinary] = await nextMessage(ws);
    assert.strictEqual(isBinary, true);
    assert.ok(data instanceof ArrayBuffer);
    assert.deepStrictEqual([...new Uint8Array(data)], [9, 8, 7]);
    const e = await withTimeout(event, 'the MessageEvent');
    assert.ok(e.data instanceof ArrayBuffer);
    assert.deepStrictEqual([...new Uint8Array(e.data)], [9, 8, 7]);
  });

  it("binaryType 'blob' -> a Blob whose arrayBuffer() has the bytes", async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    ws.binaryType = 'blob';
    ws.send(Buffer.from('blob bytes'));
    const [data, isBinary] = await nextMessage(ws);
    assert.strictEqual(isBinary, true);
    assert.ok(data instanceof Blob);
    assert.strictEqual(data.size, 10);
    assert.strictEqual(Buffer.from(await data.arrayBuffer()).toString(), 'blob bytes');
  });

  it("binaryType 'fragments' -> an array of Buffers, one per frame", async function () {
    const ref = await refServer();
    ref.wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        if (data.toString() !== 'fragments please') return;
        ws.send(Buffer.from('abc'), { fin: false });
        ws.send(Buffer.from('defg'), { fin: true });
      });
    });
    const ws = await open(ref.url);
    ws.binaryType = 'fragments';
    // The echo of the request (text) and the fragmented message may arrive in one chunk.
    const messages = [];
    const two = withTimeout(
      new Promise((resolve) => {
        ws.on('message', (...args) => messages.push(args) === 2 && resolve());
      }),
      'two messages'
    );
    ws.send('fragments please');
    await two;
    assert.strictEqual(messages[0][1], false);
    assert.strictEqual(messages[0][0].toString(), 'fragments please');
    const [data, isBinary] = messages[1];
    assert.strictEqual(isBinary, true);
    assert.ok(Array.isArray(data));
    assert.ok(data.every((b) => Buffer.isBuffer(b)));
    assert.deepStrictEqual(data.map((b) => b.toString()), ['abc', 'defg']);
  });

  it('send(Blob) sends its bytes as a binary message (ws >= 8.18)', async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    ws.send(new Blob(['blob ', Buffer.from('sent')]));
    const [data, isBinary] = await nextMessage(ws);
    assert.strictEqual(isBinary, true);
    assert.strictEqual(data.toString(), 'blob sent');
  });

  it('binaryType ignores invalid values', async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    ws.binaryType = 'arraybuffer';
    ws.binaryType = 'nonsense';
    assert.strictEqual(ws.binaryType, 'arraybuffer');
  });

  it('CloseEvent: wasClean true after a clean close handshake', async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    const event = new Promise((resolve) => ws.addEventListener('close', resolve));
    ws.close(4100, 'clean');
    const e = await withTimeout(event, 'the CloseEvent');
    assert.strictEqual(e.code, 4100);
    assert.strictEqual(e.reason, 'clean');
    assert.strictEqual(typeof e.reason, 'string');
    assert.strictEqual(e.wasClean, true);
  });

  it('CloseEvent: wasClean false after terminate()', async function () {
    const ref = await refServer();
    const ws = await open(ref.url);
    const event = new Promise((resolve) => ws.addEventListener('close', resolve));
    ws.terminate();
    const e = await withTimeout(event, 'the CloseEvent');
    assert.strictEqual(e.code, 1006);
    assert.strictEqual(e.reason, '');
    assert.strictEqual(e.wasClean, false);
  });

  it("bufferedAmount is a number (0 when idle); url is normalized; protocol and extensions ''", async function () {
    const ref = await refServer();
    const ws = client(`WS://127.0.0.1:${ref.port}`, { perMessageDeflate: false });
    assert.strictEqual(ws.url, `ws://127.0.0.1:${ref.port}/`);
    assert.strictEqual(typeof ws.bufferedAmount, 'number');
    await once(ws, 'open', { rejectOnError: true });
    assert.strictEqual(ws.bufferedAmount, 0);
    assert.strictEqual(ws.protocol, '');
    assert.strictEqual(ws.extensions, '');
    ws.send('x');
    await nextMessage(ws);
    assert.strictEqual(ws.bufferedAmount, 0);
    assert.strictEqual(ws.url, `ws://127.0.0.1:${ref.port}/`);
  });

  it('send() after a failed handshake: bufferedAmount grows, the callback gets an error', async function () {
    const port = await closedPort();
    const ws = client(`ws://127.0.0.1:${port}`);
    await outcome(ws);
    const cbErr = [];
    ws.send('abcd', (err) => cbErr.push(err));
    assert.strictEqual(ws.bufferedAmount, 4);
    await new Promise((resolve) => setImmediate(resolve));
    assert.strictEqual(cbErr.length, 1);
    assert.strictEqual(cbErr[0].message, 'WebSocket is not open: readyState 3 (CLOSED)');
  });

  it("send() while CONNECTING throws 'WebSocket is not open: readyState 0 (CONNECTING)'", async function () {
    const ref = await refServer();
    const ws = client(ref.url);
    assert.throws(() => ws.send('too early'), {
      constructor: Error,
      message: 'WebSocket is not open: readyState 0 (CONNECTING)'
    });
    assert.throws(() => ws.ping(), {
      message: 'WebSocket is not open: readyState 0 (CONNECTING)'
    });
    await once(ws, 'open', { rejectOnError: true });
  });

  it("close() while CONNECTING -> 'error' then 'close' 1006", async function () {
    const ref = await refServer();
    const ws = client(ref.url);
    const failed = expectFailure(ws, 'WebSocket was closed before the connection was established');
    ws.close();
    assert.strictEqual(ws.readyState, WebSocket.CLOSING);
    await failed;
    assert.strictEqual(ws.readyState, WebSocket.CLOSED);
  });

  it("terminate() while CONNECTING -> 'error' then 'close' 1006", async function () {
    const ref = await refServer();
    const ws = client(ref.url);
    const failed = expectFailure(ws, 'WebSocket was closed before the connection was established');
    ws.terminate();
    await failed;
    assert.strictEqual(ws.readyState, WebSocket.CLOSED);
  });

  it('close() while CONNECTING once the server got the request', async function () {
    let sawRequest;
    const requested = new Promise((resolve) => (sawRequest = resolve));
    const srv = await rawServer(() => sawRequest());
    const ws = client(srv.url);
    const failed = expectFailure(ws, 'WebSocket was closed before the connection was established');
    await withTimeout(requested, 'the request');
    ws.close();
    await failed;
  });
});

// ---- masking ----

describe('client frame masking', function () {
  it('every frame is masked, with a different key each time (raw server)', async function () {
    const frames = [];
    let gotAll;
    const all = new Promise((resolve) => (gotAll = resolve));
    let serverSocket;
    const srv = await rawServer((socket, req) => {
      serverSocket = socket;
      write101(socket, req);
      let buf = req.rest;
      const parse = () => {
        let f;
        while ((f = parseFrame(buf)) !== null) {
          buf = buf.subarray(f.length);
          frames.push(f);
          if (f.opcode === 0x8) {
            socket.end(serverFrame(0x8, f.payload));
            gotAll();
          }
        }
      };
      socket.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        parse();
      });
      parse();
    });
    const ws = await open(srv.url);
    const sent = [];
    for (let i = 0; i < 18; i++) {
      const text = `masked message ${i} ${'x'.repeat(i * 10)}`;
      sent.push({ opcode: 1, payload: Buffer.from(text) });
      ws.send(text);
    }
    const bin = crypto.randomBytes(70000);
    sent.push({ opcode: 2, payload: bin });
    ws.send(bin);
    const closed = outcome(ws);
    ws.close(1000, 'masked close');
    sent.push({ opcode: 8, payload: Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('masked close')]) });
    await withTimeout(all, 'the close frame');
    const seq = await closed;
    assert.ok(serverSocket);
    assert.strictEqual(frames.length, 20);
    for (const [i, f] of frames.entries()) {
      assert.strictEqual(f.masked, true, `frame ${i} is not masked`);
      assert.strictEqual(f.fin, true);
      assert.strictEqual(f.opcode, sent[i].opcode, `frame ${i} opcode`);
      assert.ok(f.payload.equals(sent[i].payload), `frame ${i} payload`);
    }
    const keys = new Set(frames.map((f) => f.maskKey.toString('hex')));
    assert.strictEqual(keys.size, 20, 'mask keys repeat');
    assert.deepStrictEqual(seq.map((e) => e.event), ['close']);
    assert.strictEqual(seq[0].code, 1000);
    assert.strictEqual(seq[0].reason.toString(), 'masked close');
  });
});
