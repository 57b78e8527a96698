'use strict';

// What ws users reach through the socket: the net.Socket the application handed to
// handleUpgrade() (req.socket), and ws._socket. With ws, and with the stream transport, both
// are Node's socket; with the native transport Node's socket is released and these tests prove
// that both still act on the connection and report it (lib/native-socket.js). Every test but
// the last group holds for ws too (WS_IMPL=ws npx mocha test/socket-handle.test.js).

const assert = require('assert');
const { execFile } = require('child_process');
const http = require('http');
const path = require('path');

const { WebSocket, WebSocketServer, isWs, nativeOnly } = require('./support/impl');
const { OP, Cleanup, frame, listen, nextMessage, once, withTimeout } = require('./support/net-helpers');

const ROOT = path.join(__dirname, '..');
const nativeOn = !isWs && process.env.WS_NATIVE_TRANSPORT !== 'stream' && process.platform !== 'win32';
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the socket handed to handleUpgrade() and ws._socket', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /**
   * A noServer WebSocketServer on an http.Server, as engine.io uses it: the upgrade's socket
   * is in the app's hands. onSocket(socket) runs before handleUpgrade.
   */
  async function setup({ onSocket = () => {}, echo = true } = {}) {
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new WebSocketServer({ noServer: true }));
    const accepted = [];
    server.on('upgrade', (req, socket, head) => {
      onSocket(socket);
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (echo) ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        accepted.push({ ws, socket, req });
        wss.emit('connection', ws, req);
      });
    });
    const port = await listen(server);
    return { server, wss, port, accepted };
  }

  async function connect(port, options) {
    const { accepted } = options;
    const client = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`));
    await once(client, 'open');
    while (accepted.length === 0) await delay(1);
    return { client, ...accepted.shift() };
  }

  it("destroy() on the upgrade's socket closes the connection (engine.io's rejection)", async function () {
    const { port, accepted } = await setup();
    const { client, ws, socket } = await connect(port, { accepted });
    assert.strictEqual(socket.destroyed, false);
    const closedClient = once(client, 'close');
    const closedServer = once(ws, 'close');
    socket.destroy();
    const [code] = await closedClient;
    assert.strictEqual(code, 1006);
    await closedServer;
    assert.strictEqual(socket.destroyed, true);
    assert.strictEqual(ws.readyState, WebSocket.CLOSED);
  });

  it("write() then destroy() on the upgrade's socket: the written bytes reach the peer first", async function () {
    // engine.io's abortUpgrade(): a 400 written onto the upgraded socket, then destroy(). The
    // client reads those bytes as a frame (0x48: RSV1 set) and fails, as with ws.
    const { port, accepted } = await setup({ echo: false });
    const { client, socket } = await connect(port, { accepted });
    const failed = once(client, 'error');
    const closed = once(client, 'close');
    socket.on('error', () => {});
    assert.strictEqual(socket.write('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nnope'), true);
    socket.destroy();
    const [err] = await withTimeout(failed, 'the written bytes before the close');
    assert.match(err.message, /RSV1 must be clear/);
    const [code] = await closed;
    assert.strictEqual(code, 1006);
  });

  it("the upgrade's socket emits 'close' when the connection closes, not before", async function () {
    const events = [];
    const { port, accepted } = await setup({
      onSocket: (socket) => socket.on('close', (hadError) => events.push(['socket close', hadError]))
    });
    const { client, ws, socket } = await connect(port, { accepted });
    ws.on('close', () => events.push(['ws close']));
    client.send('still open');
    assert.strictEqual((await nextMessage(client))[0].toString(), 'still open');
    await delay(50);
    assert.deepStrictEqual(events, [], 'nothing closed while the connection is open');
    assert.strictEqual(socket.readyState, 'open');
    client.close(1000);
    await once(ws, 'close');
    while (events.length < 2) await delay(1);
    assert.deepStrictEqual(events, [['socket close', false], ['ws close']]);
    assert.strictEqual(socket.destroyed, true);
  });

  it("a 'close' listener added to the upgrade's socket later runs at the close too", async function () {
    const { port, accepted } = await setup();
    const { client, ws, socket } = await connect(port, { accepted });
    const closed = once(socket, 'close');
    client.terminate();
    await once(ws, 'close');
    await withTimeout(closed, "the socket's 'close'");
  });

  it("the upgrade's socket: end() sends FIN, the peer's FIN is its 'end'", async function () {
    const { port, accepted } = await setup();
    const first = await connect(port, { accepted });
    const ended = once(first.socket, 'end');
    first.client._socket.end(); // the client's FIN
    await withTimeout(ended, "the server socket's 'end'");

    const second = await connect(port, { accepted });
    const closed = once(second.client, 'close');
    second.socket.end();
    const [code] = await closed;
    assert.strictEqual(code, 1006); // no closing handshake: the connection just ended
  });

  it("resetAndDestroy() on the upgrade's socket resets the connection", async function () {
    const { port, accepted } = await setup();
    const { client, socket } = await connect(port, { accepted });
    const closed = once(client, 'close');
    socket.resetAndDestroy();
    const [code] = await closed;
    assert.strictEqual(code, 1006);
  });

  it('ws._socket: addresses, address(), byte counts (kept after the close), readyState', async function () {
    const { port, accepted } = await setup();
    const { client, ws, socket } = await connect(port, { accepted });
    const s = ws._socket;
    assert.strictEqual(s.remoteAddress, '127.0.0.1');
    assert.strictEqual(s.remotePort, client._socket.localPort);
    assert.strictEqual(s.localPort, port);
    assert.deepStrictEqual(s.address(), { address: '127.0.0.1', family: 'IPv4', port });
    assert.strictEqual(socket.remotePort, client._socket.localPort);
    assert.strictEqual(s.readyState, 'open');
    const readBefore = s.bytesRead;
    const writtenBefore = s.bytesWritten;
    client.send(Buffer.alloc(1000, 1));
    await nextMessage(client);
    // 1000 bytes and a 2 + 2 + 4 byte header each way (masked from the client).
    assert.strictEqual(s.bytesRead - readBefore, 1008);
    assert.strictEqual(s.bytesWritten - writtenBefore, 1004);
    let atClose;
    ws.on('close', () => (atClose = [s.bytesRead, s.bytesWritten, s.readyState, s.destroyed]));
    client.close();
    await once(ws, 'close');
    assert.ok(atClose[0] >= readBefore + 1008 + 6, `bytesRead at close: ${atClose[0]}`);
    assert.ok(atClose[1] >= writtenBefore + 1004 + 2, `bytesWritten at close: ${atClose[1]}`);
    assert.deepStrictEqual(atClose.slice(2), ['closed', true]);
  });

  it("ws._socket.setTimeout(): 'timeout' after that long without traffic, not while it flows; 0 cancels", async function () {
    const { port, accepted } = await setup();
    const { client, ws } = await connect(port, { accepted });
    let timeouts = 0;
    const cb = () => timeouts++;
    assert.strictEqual(ws._socket.setTimeout(150, cb), ws._socket);
    assert.strictEqual(ws._socket.timeout, 150);
    for (let i = 0; i < 10; i++) {
      client.send('keep busy');
      await nextMessage(client);
      await delay(40);
    }
    assert.strictEqual(timeouts, 0, 'no timeout while messages flow every 40 ms');
    await once(ws._socket, 'timeout', { timeout: 2000 });
    assert.strictEqual(timeouts, 1);
    assert.strictEqual(ws.readyState, WebSocket.OPEN, "'timeout' only tells; it closes nothing");
    ws._socket.setTimeout(0);
    client.send('again');
    await nextMessage(client);
    await delay(300);
    assert.strictEqual(timeouts, 1, 'setTimeout(0) stopped the timer');
    assert.throws(() => ws._socket.setTimeout(-1), { code: 'ERR_OUT_OF_RANGE' });
  });

  it('ws._socket.setNoDelay() / setKeepAlive() return the socket; pause() stops reading until resume()', async function () {
    const { port, accepted } = await setup();
    const { client, ws } = await connect(port, { accepted });
    assert.strictEqual(ws._socket.setNoDelay(true), ws._socket);
    assert.strictEqual(ws._socket.setKeepAlive(true, 10000), ws._socket);
    ws.pause();
    assert.strictEqual(ws._socket.isPaused(), true);
    client.send('held');
    const got = nextMessage(client, { timeout: 3000 });
    await delay(100);
    ws.resume();
    assert.strictEqual(ws._socket.isPaused(), false);
    assert.strictEqual((await got)[0].toString(), 'held');
  });

  it("ws._socket.write() puts raw bytes on the connection, after what was sent before", async function () {
    const { port, accepted } = await setup({ echo: false });
    const { client, ws } = await connect(port, { accepted });
    const messages = [];
    client.on('message', (data) => messages.push(data.toString()));
    ws.send('first');
    let written = false;
    assert.strictEqual(ws._socket.write(Buffer.from([0x81, 0x06, ...Buffer.from('second')]), () => (written = true)), true);
    ws.send('third');
    while (messages.length < 3) await once(client, 'message');
    assert.deepStrictEqual(messages, ['first', 'second', 'third']);
    assert.strictEqual(written, true);
  });

  it("ws._socket.unref() lets the process exit with the connection open; ref() keeps it", async function () {
    const script = (unref) => `
      const http = require('http');
      const { WebSocket, WebSocketServer } = require(${JSON.stringify(isWs ? 'ws' : ROOT)});
      const server = http.createServer();
      const wss = new WebSocketServer({ server });
      wss.on('connection', (ws) => {
        ws._socket.unref();
        ${unref ? '' : 'ws._socket.ref();'}
      });
      server.listen(0, '127.0.0.1', () => {
        const client = new WebSocket('ws://127.0.0.1:' + server.address().port);
        client.on('open', () => {
          client._socket.unref();
          server.unref();
          console.log('open');
        });
      });
    `;
    const run = (unref) =>
      new Promise((resolve) => {
        execFile(process.execPath, ['-e', script(unref)], { timeout: 3000 }, (err, stdout) =>
          resolve({ exited: !err || !err.killed, stdout })
        );
      });
    const [unrefd, refd] = await Promise.all([run(true), run(false)]);
    assert.strictEqual(unrefd.stdout.trim(), 'open');
    assert.strictEqual(unrefd.exited, true, 'every handle unref()d: the process exits');
    assert.strictEqual(refd.stdout.trim(), 'open');
    assert.strictEqual(refd.exited, false, 'the server side ref()d again: the process stays');
  });

  it("ws._socket 'end' and 'close' listeners run on the peer's FIN and at the close", async function () {
    const { port, accepted } = await setup();
    const { client, ws } = await connect(port, { accepted });
    const events = [];
    ws._socket.on('end', () => events.push('end'));
    ws._socket.once('close', (hadError) => events.push(`close ${hadError}`));
    client.close();
    await once(ws, 'close');
    assert.deepStrictEqual(events, ['end', 'close false']);
  });

  it("ws._socket 'data' listeners see the raw bytes read; push() hands bytes in as if read", async function () {
    const { port, accepted } = await setup({ echo: false });
    const { client, ws } = await connect(port, { accepted });
    const raw = [];
    const onData = (chunk) => raw.push(Buffer.from(chunk));
    ws._socket.on('data', onData);
    const messages = [];
    ws.on('message', (data) => messages.push(data.toString()));
    client.send('seen raw');
    while (messages.length < 1) await delay(5);
    const bytes = Buffer.concat(raw);
    assert.strictEqual(bytes[0], 0x81); // FIN + text
    assert.strictEqual(bytes[1], 0x80 | 8); // masked, 8 bytes
    assert.strictEqual(bytes.length, 2 + 4 + 8);
    ws._socket.removeListener('data', onData);
    client.send('not seen');
    while (messages.length < 2) await delay(5);
    assert.strictEqual(Buffer.concat(raw).length, 14, 'no more after removeListener');
    // A masked text frame "pushed" is parsed as if it had come from the peer.
    assert.strictEqual(ws._socket.push(frame({ opcode: OP.TEXT, payload: 'pushed' })), true);
    while (messages.length < 3) await delay(5);
    assert.deepStrictEqual(messages, ['seen raw', 'not seen', 'pushed']);
  });

  nativeOnly.it("on the native transport, what ws._socket cannot do throws WS_ERR_NATIVE_SOCKET, naming it", async function () {
    if (!nativeOn) this.skip();
    const { port, accepted } = await setup();
    const { ws, socket } = await connect(port, { accepted });
    assert.strictEqual(ws.transport, 'native');
    for (const call of [
      () => ws._socket.on('readable', () => {}),
      () => ws._socket.pipe(process.stdout),
      () => ws._socket.setEncoding('utf8'),
      () => ws._socket.read(),
      () => ws._socket.cork()
    ]) {
      assert.throws(call, (err) => err.code === 'WS_ERR_NATIVE_SOCKET' && /transport: 'stream'/.test(err.message));
    }
    // The released socket forwards what it can and its own getters answer for the connection.
    assert.strictEqual(socket.readyState, 'open');
    assert.strictEqual(socket.bytesRead, ws._socket.bytesRead);
  });

  nativeOnly.it("on the native transport, a reset by the peer reaches ws._socket as 'error' (ECONNRESET) and 'close' (true)", async function () {
    if (!nativeOn) this.skip();
    const { port, accepted } = await setup();
    const { client, ws } = await connect(port, { accepted });
    const errors = [];
    ws._socket.on('error', (err) => errors.push(err.code));
    const closed = once(ws._socket, 'close');
    client._socket.resetAndDestroy();
    const [hadError] = await closed;
    assert.strictEqual(hadError, true);
    assert.deepStrictEqual(errors, ['ECONNRESET']);
  });
});
