'use strict';

// Interoperability with the `ws` package, both ways: the implementation's server against ws's
// client, and the implementation's client against ws's server.

const assert = require('assert');
const crypto = require('crypto');
const WsClient = require('ws').WebSocket;

const { WebSocket, WebSocketServer } = require('./support/impl');
const {
  Cleanup,
  createHttpServer,
  nextMessage,
  once,
  openWsClient,
  withTimeout
} = require('./support/net-helpers');

describe('interop: implementation server <-> ws client', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** Server that echoes every message; resolves with the client and the server-side ws. */
  async function pair({ echo = true, serverOptions = {} } = {}) {
    const { server, port } = await createHttpServer();
    cleanup.add(server);
    const wss = cleanup.add(new WebSocketServer({ server, ...serverOptions }));
    const received = [];
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => {
        received.push({ data, isBinary });
        if (echo) ws.send(data, { binary: isBinary });
      });
    });
    const connected = once(wss, 'connection');
    const client = cleanup.add(await openWsClient(`ws://127.0.0.1:${port}`));
    const [serverWs] = await connected;
    return { client, serverWs, received, wss };
  }

  it('text: the server gets a Buffer and isBinary false; the echo round-trips', async function () {
    const { client, received } = await pair();
    client.send('hello, wörld ✓');
    const [data, isBinary] = await nextMessage(client);
    assert.strictEqual(isBinary, false);
    assert.strictEqual(data.toString(), 'hello, wörld ✓');
    assert.strictEqual(received.length, 1);
    assert.ok(Buffer.isBuffer(received[0].data));
    assert.strictEqual(received[0].isBinary, false);
    assert.strictEqual(received[0].data.toString(), 'hello, wörld ✓');
  });

  it('binary', async function () {
    const { client, received } = await pair();
    const payload = crypto.randomBytes(300);
    client.send(payload);
    const [data, isBinary] = await nextMessage(client);
    assert.strictEqual(isBinary, true);
    assert.ok(data.equals(payload));
    assert.ok(Buffer.isBuffer(received[0].data));
    assert.strictEqual(received[0].isBinary, true);
    assert.ok(received[0].data.equals(payload));
  });

  it('empty text and empty binary messages', async function () {
    const { client, received } = await pair();
    client.send('');
    const [t, tBin] = await nextMessage(client);
    assert.strictEqual(tBin, false);
    assert.strictEqual(t.length, 0);
    client.send(Buffer.alloc(0));
    const [b, bBin] = await nextMessage(client);
    assert.strictEqual(bBin, true);
    assert.strictEqual(b.length, 0);
    assert.deepStrictEqual(
      received.map((m) => [m.data.length, m.isBinary]),
      [
        [0, false],
        [0, true]
      ]
    );
  });

  it('100 messages arrive in order, both ways', async function () {
    const { client, received } = await pair();
    const got = [];
    const done = new Promise((resolve) => {
      client.on('message', (data) => {
        got.push(data.toString());
        if (got.length === 100) resolve();
      });
    });
    const sent = [];
    for (let i = 0; i < 100; i++) {
      const msg = `message ${i} ${'x'.repeat(i * 7)}`;
      sent.push(msg);
      client.send(msg);
    }
    await withTimeout(done, '100 echoes');
    assert.deepStrictEqual(got, sent);
    assert.deepStrictEqual(
      received.map((m) => m.data.toString()),
      sent
    );
  });

  it('a 16 MiB binary message round-trips', async function () {
    const { client, received } = await pair();
    const big = crypto.randomBytes(16 * 1024 * 1024);
    client.send(big);
    const [data, isBinary] = await nextMessage(client, { timeout: 30000 });
    assert.strictEqual(isBinary, true);
    assert.strictEqual(data.length, big.length);
    assert.ok(data.equals(big));
    assert.strictEqual(received[0].data.length, big.length);
  });

  it('send(data, cb) on the server calls back without an error', async function () {
    const { client, serverWs } = await pair();
    const sent = new Promise((resolve) => serverWs.send('from server', resolve));
    const [data, isBinary] = await nextMessage(client);
    assert.strictEqual(data.toString(), 'from server');
    assert.strictEqual(isBinary, false);
    const err = await withTimeout(sent, 'the send callback');
    assert.ok(err == null, `send callback error: ${err}`);
  });

  it('client ping -> server "ping" event with the payload, client gets the pong', async function () {
    const { client, serverWs } = await pair();
    const serverPing = once(serverWs, 'ping');
    const clientPong = once(client, 'pong');
    client.ping('client-ping');
    const [ping] = await serverPing;
    assert.ok(Buffer.isBuffer(ping));
    assert.strictEqual(ping.toString(), 'client-ping');
    const [pong] = await clientPong;
    assert.strictEqual(pong.toString(), 'client-ping');
  });

  it('server ping -> client "ping" event with the payload, server gets the pong', async function () {
    const { client, serverWs } = await pair();
    const clientPing = once(client, 'ping');
    const serverPong = once(serverWs, 'pong');
    serverWs.ping(Buffer.from('server-ping'));
    const [ping] = await clientPing;
    assert.strictEqual(ping.toString(), 'server-ping');
    const [pong] = await serverPong;
    assert.ok(Buffer.isBuffer(pong));
    assert.strictEqual(pong.toString(), 'server-ping');
  });

  it('unsolicited pong from the client -> server "pong" event', async function () {
    const { client, serverWs } = await pair();
    const serverPong = once(serverWs, 'pong');
    client.pong('unsolicited');
    const [pong] = await serverPong;
    assert.strictEqual(pong.toString(), 'unsolicited');
  });

  it('client close(4000, "bye") -> server "close" (4000, Buffer "bye"), echoed to the client', async function () {
    const { client, serverWs, wss } = await pair();
    const serverClosed = once(serverWs, 'close');
    const clientClosed = once(client, 'close');
    client.close(4000, 'bye');
    const [code, reason] = await serverClosed;
    assert.strictEqual(code, 4000);
    assert.ok(Buffer.isBuffer(reason));
    assert.strictEqual(reason.toString(), 'bye');
    assert.strictEqual(serverWs.readyState, WebSocket.CLOSED);
    assert.strictEqual(wss.clients.size, 0);
    const [ccode, creason] = await clientClosed;
    assert.strictEqual(ccode, 4000);
    assert.strictEqual(creason.toString(), 'bye');
  });

  it('server close(4000, "bye") -> client sees code and reason; server "close" too', async function () {
    const { client, serverWs } = await pair();
    const serverClosed = once(serverWs, 'close');
    const clientClosed = once(client, 'close');
    serverWs.close(4000, 'bye');
    assert.strictEqual(serverWs.readyState, WebSocket.CLOSING);
    const [ccode, creason] = await clientClosed;
    assert.strictEqual(ccode, 4000);
    assert.strictEqual(creason.toString(), 'bye');
    const [code, reason] = await serverClosed;
    assert.strictEqual(code, 4000);
    assert.strictEqual(reason.toString(), 'bye');
    assert.strictEqual(client.readyState, WsClient.CLOSED);
  });

  it('client close() without a code -> server "close" with 1005 and an empty reason', async function () {
    const { client, serverWs } = await pair();
    const serverClosed = once(serverWs, 'close');
    client.close();
    const [code, reason] = await serverClosed;
    assert.strictEqual(code, 1005);
    assert.ok(Buffer.isBuffer(reason));
    assert.strictEqual(reason.length, 0);
  });

  it('client terminate() -> server "close" with 1006', async function () {
    const { client, serverWs } = await pair();
    const serverClosed = once(serverWs, 'close');
    client.terminate();
    const [code, reason] = await serverClosed;
    assert.strictEqual(code, 1006);
    assert.strictEqual(reason.length, 0);
  });

});

describe('interop: implementation client <-> ws server', function () {
  const WsServer = require('ws').WebSocketServer;
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** A ws server that echoes; resolves with the implementation's client and ws's server side. */
  async function pair(clientOptions) {
    const { server, port } = await createHttpServer();
    cleanup.add(server);
    const wss = cleanup.add(new WsServer({ server }));
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    const connected = once(wss, 'connection');
    const client = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`, clientOptions));
    await once(client, 'open', { rejectOnError: true });
    const [serverWs] = await connected;
    return { client, serverWs };
  }

  it('text, binary and empty messages round-trip with their type', async function () {
    const { client } = await pair();
    const payload = crypto.randomBytes(1000);
    for (const [data, binary] of [
      ['hello, wörld ✓', false],
      [payload, true],
      ['', false],
      [Buffer.alloc(0), true]
    ]) {
      client.send(data);
      const [echo, isBinary] = await nextMessage(client);
      assert.strictEqual(isBinary, binary);
      assert.ok(echo.equals(Buffer.from(data)));
    }
  });

  it('100 messages arrive in order', async function () {
    const { client } = await pair();
    const got = [];
    const done = new Promise((resolve) =>
      client.on('message', (data) => got.push(Number(data)) === 100 && resolve())
    );
    for (let i = 0; i < 100; i++) client.send(String(i));
    await withTimeout(done, '100 echoes');
    assert.deepStrictEqual(got, [...Array(100).keys()]);
  });

  it('a 16 MiB binary message is intact', async function () {
    const { client } = await pair();
    const payload = crypto.randomBytes(16 * 1024 * 1024);
    client.send(payload);
    const [echo] = await nextMessage(client, { timeout: 30000 });
    assert.strictEqual(echo.length, payload.length);
    assert.ok(echo.equals(payload));
  });

  it('ping and pong both ways, with payloads', async function () {
    const { client, serverWs } = await pair();
    const pong = once(client, 'pong');
    client.ping('from client');
    assert.strictEqual((await pong)[0].toString(), 'from client');
    const ping = once(client, 'ping');
    const serverPong = once(serverWs, 'pong');
    serverWs.ping('from server');
    assert.strictEqual((await ping)[0].toString(), 'from server');
    assert.strictEqual((await serverPong)[0].toString(), 'from server');
  });

  it('close codes and reasons both ways', async function () {
    let { client, serverWs } = await pair();
    const serverSaw = once(serverWs, 'close');
    const clientSaw = once(client, 'close');
    client.close(4000, 'bye');
    assert.deepStrictEqual((await serverSaw).map(String), ['4000', 'bye']);
    assert.deepStrictEqual((await clientSaw).map(String), ['4000', 'bye']);

    ({ client, serverWs } = await pair());
    const closed = once(client, 'close');
    serverWs.close(4001, 'server says bye');
    const [code, reason] = await closed;
    assert.strictEqual(code, 4001);
    assert.strictEqual(reason.toString(), 'server says bye');
    assert.strictEqual(client.readyState, WebSocket.CLOSED);
  });
});
