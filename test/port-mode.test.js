'use strict';

// Port mode (new WebSocketServer({ port })): what ws's port mode does, which ws-native keeps
// whether the addon listens itself (the native listener, lib/native-listener.js) or an
// http.Server does (transport: 'stream', and cluster workers). Most of these hold for ws too
// (WS_IMPL=ws npx mocha test/port-mode.test.js).

const assert = require('assert');
const { execFile } = require('child_process');
const http = require('http');
const net = require('net');
const path = require('path');

const { WebSocket, WebSocketServer, isWs, nativeOnly } = require('./support/impl');
const { once, rawRequest, upgradeRequest, maskedFrame, withTimeout } = require('./support/net-helpers');

const ROOT = path.join(__dirname, '..');
const nativeOn = !isWs && process.env.WS_NATIVE_TRANSPORT !== 'stream' && process.platform !== 'win32';

function listening(options = {}) {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options }, () => resolve(wss));
    wss.once('error', reject);
  });
}

function closeWss(wss) {
  for (const ws of wss.clients) ws.terminate();
  return new Promise((resolve) => wss.close(() => resolve()));
}

describe('port mode', function () {
  let wss = null;
  afterEach(async () => {
    if (wss !== null) await closeWss(wss);
    wss = null;
  });

  it(`'listening', address() and a connection (the native listener: ${nativeOn})`, async function () {
    wss = await listening();
    const { address, family, port } = wss.address();
    assert.strictEqual(address, '127.0.0.1');
    assert.strictEqual(family, 'IPv4');
    assert.ok(port > 0);
    if (!isWs) assert.strictEqual(wss._server.constructor.name, nativeOn ? 'NativeListener' : 'Server');
    const [ws, req] = await new Promise((resolve) => {
      wss.once('connection', (...args) => resolve(args));
      new WebSocket(`ws://127.0.0.1:${port}/some/path?query=1`, ['chat']);
    });
    assert.strictEqual(req.url, '/some/path?query=1');
    assert.strictEqual(req.method, 'GET');
    assert.strictEqual(req.headers.upgrade, 'websocket');
    assert.strictEqual(req.socket.remoteAddress, '127.0.0.1');
    assert.strictEqual(ws.protocol, 'chat');
    if (!isWs) assert.strictEqual(ws.transport, nativeOn ? 'native' : 'stream');
    if (nativeOn) assert.ok(!(req.socket instanceof net.Socket), 'no net.Socket was made');
  });

  it('a plain HTTP request gets 426 Upgrade Required; HEAD gets no body', async function () {
    wss = await listening();
    const { port } = wss.address();
    const res = await new Promise((resolve) => http.get({ port, host: '127.0.0.1', path: '/' }, resolve));
    assert.strictEqual(res.statusCode, 426);
    assert.match(res.headers['content-type'], /^text\/plain/);
    let body = '';
    for await (const chunk of res) body += chunk;
    assert.strictEqual(body, 'Upgrade Required');
    const head = await rawRequest(port, 'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    head.socket.destroy();
    assert.strictEqual(head.status, 426);
    assert.strictEqual(head.body, '', 'HEAD: no body');
  });

  // (ws answers 426 here; RFC 6455 4.2.1 asks for 400: see the README's migration table.)
  nativeOnly.it("asking for websocket without Connection: upgrade is 400 'Invalid Connection header'", async function () {
    wss = await listening();
    const reply = await rawRequest(
      wss.address().port,
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
    );
    reply.socket.destroy();
    assert.strictEqual(reply.status, 400);
    assert.strictEqual(reply.body, 'Invalid Connection header');
  });

  it('a handshake with a bad key is refused by handleUpgrade (400), and wsClientError lets the app answer', async function () {
    wss = await listening();
    const { port } = wss.address();
    const bad = upgradeRequest({ headers: { 'Sec-WebSocket-Key': 'short' } });
    const first = await rawRequest(port, bad);
    first.socket.destroy();
    assert.strictEqual(first.status, 400);
    wss.on('wsClientError', (err, socket, req) => {
      assert.strictEqual(req.headers['sec-websocket-key'], 'short');
      socket.end(`HTTP/1.1 418 I'm a Teapot\r\nConnection: close\r\nContent-Length: ${err.message.length}\r\n\r\n${err.message}`);
    });
    const reply = await rawRequest(port, bad);
    reply.socket.destroy();
    assert.strictEqual(reply.status, 418);
    assert.strictEqual(reply.body, 'Missing or invalid Sec-WebSocket-Key header');
  });

  it('verifyClient (async) refuses with its status and accepts; handleProtocols picks the protocol', async function () {
    wss = await listening({
      verifyClient: (info, cb) => setTimeout(() => cb(info.req.url !== '/no', 403, 'Go away'), 10),
      handleProtocols: (protocols) => [...protocols].pop()
    });
    const { port } = wss.address();
    const refused = new WebSocket(`ws://127.0.0.1:${port}/no`);
    const [err] = await once(refused, 'error');
    assert.match(err.message, /Unexpected server response: 403/);
    const accepted = new WebSocket(`ws://127.0.0.1:${port}/yes`, ['a', 'b']);
    await once(accepted, 'open');
    assert.strictEqual(accepted.protocol, 'b');
    accepted.close();
    await once(accepted, 'close');
  });

  it('a frame sent right behind the request head (one write) is delivered after connection', async function () {
    wss = await listening();
    const received = new Promise((resolve) => {
      wss.once('connection', (ws) => ws.once('message', (data) => resolve(data.toString())));
    });
    const socket = net.connect(wss.address().port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(Buffer.concat([Buffer.from(upgradeRequest()), maskedFrame(0x1, Buffer.from('early'))]));
    assert.strictEqual(await withTimeout(received, 'the early message'), 'early');
    socket.destroy();
  });

  nativeOnly.it('a head over maxHeaderSize is 431; one not complete within headersTimeout is 408', async function () {
    wss = await listening({ maxHeaderSize: 1024, headersTimeout: 300 });
    const { port } = wss.address();
    const huge = upgradeRequest({ headers: { 'X-Filler': 'x'.repeat(2000) } });
    const tooLarge = await rawRequest(port, huge);
    tooLarge.socket.destroy();
    assert.strictEqual(tooLarge.status, 431);
    // (With an http.Server, transport: 'stream', Node's own headersTimeout applies.)
    if (!nativeOn) return;
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n'); // ... and nothing more
    const chunks = [];
    socket.on('data', (c) => chunks.push(c));
    await withTimeout(once(socket, 'close'), 'the 408', 5000);
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 408 /);
  });

  it("an address in use is an 'error' event with EADDRINUSE", async function () {
    wss = await listening();
    const second = new WebSocketServer({ port: wss.address().port, host: '127.0.0.1' });
    const [err] = await once(second, 'error');
    assert.strictEqual(err.code, 'EADDRINUSE');
    assert.strictEqual(err.syscall, 'listen');
  });

  it("close() stops listening, and 'close' follows once every connection has ended", async function () {
    wss = await listening();
    const { port } = wss.address();
    const client = new WebSocket(`ws://127.0.0.1:${port}`);
    await once(client, 'open');
    let closed = false;
    const server = wss;
    wss = null;
    server.close(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.strictEqual(closed, false, 'a connection is still open');
    const refused = new WebSocket(`ws://127.0.0.1:${port}`);
    await once(refused, 'error'); // (nothing listens any more)
    client.close();
    await once(client, 'close');
    for (let i = 0; i < 100 && !closed; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.strictEqual(closed, true);
  });

  nativeOnly.it('an unref()d native listener lets the process exit', async function () {
    if (!nativeOn) this.skip();
    const script = `
      const { WebSocketServer } = require(${JSON.stringify(ROOT)});
      const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
        console.log(wss._server.constructor.name);
        wss._server.unref();
      });
    `;
    const out = await new Promise((resolve, reject) =>
      execFile(process.execPath, ['-e', script], { timeout: 5000 }, (err, stdout) =>
        err ? reject(err) : resolve(stdout)
      )
    );
    assert.strictEqual(out.trim(), 'NativeListener');
  });
});
