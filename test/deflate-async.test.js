'use strict';

// Large messages are compressed in the thread pool (from 64 KiB): whatever is sent meanwhile
// waits, so messages, pings and closes keep the order of the calls.

const assert = require('assert');
const http = require('http');

const zlib = require('zlib');

const { WebSocket, WebSocketServer, nativeOnly } = require('./support/impl');
const raw = require('./support/raw');
const { OP, frame } = require('./support/net-helpers');

const BIG = 200 * 1024;

function json(bytes, tag) {
  const items = [];
  let size = 2;
  for (let i = 0; size < bytes; i++) {
    const item = JSON.stringify({ tag, i, name: `user${i % 977}` });
    items.push(item);
    size += item.length + 1;
  }
  return `[${items.join(',')}]`;
}

async function pair(serverOptions = {}, clientOptions = {}) {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: true, ...serverOptions });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const connected = new Promise((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${server.address().port}`, clientOptions);
  await new Promise((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  const serverWs = await connected;
  const close = async () => {
    client.terminate();
    for (const ws of wss.clients) ws.terminate();
    await new Promise((resolve) => wss.close(resolve));
    await new Promise((resolve) => server.close(resolve));
  };
  return { client, serverWs, close };
}

function collect(ws, count) {
  return new Promise((resolve) => {
    const got = [];
    ws.on('message', (data, isBinary) => {
      got.push({ data, isBinary });
      if (got.length === count) resolve(got);
    });
  });
}

nativeOnly.describe('permessage-deflate: large messages compressed and inflated off the main thread', function () {
  this.timeout(30000);
  let close;
  afterEach(async () => {
    if (close) await close();
    close = undefined;
  });

  for (const [name, serverOptions] of [
    ['context takeover', {}],
    ['no context takeover (shared stream)', { perMessageDeflate: { serverNoContextTakeover: true } }]
  ]) {
    it(`keeps the order of large and small messages, both ways (${name})`, async function () {
      const p = await pair(serverOptions);
      close = p.close;
      p.serverWs.on('message', (data, isBinary) => p.serverWs.send(data, { binary: isBinary }));
      const sent = [
        json(BIG, 'a'),
        'small one',
        Buffer.from(json(BIG, 'b')),
        json(2000, 'c'),
        json(BIG * 3, 'd'),
        'small two'
      ];
      const received = collect(p.client, sent.length);
      for (const message of sent) p.client.send(message);
      const got = await received;
      got.forEach(({ data, isBinary }, i) => {
        assert.strictEqual(isBinary, Buffer.isBuffer(sent[i]), `message ${i} type`);
        assert.ok(data.equals(Buffer.from(sent[i])), `message ${i} content`);
      });
    });
  }

  it('a ping and a close sent right after a large message go out after it', async function () {
    const p = await pair();
    close = p.close;
    const events = [];
    p.client.on('message', (data) => events.push(`message ${data.length}`));
    p.client.on('ping', (data) => events.push(`ping ${data}`));
    const closed = new Promise((resolve) => p.client.on('close', (code) => resolve(code)));
    const big = json(BIG, 'x');
    p.serverWs.send(big);
    p.serverWs.ping('after');
    p.serverWs.close(1000, 'done');
    assert.strictEqual(await closed, 1000);
    assert.deepStrictEqual(events, [`message ${big.length}`, 'ping after']);
  });

  it('a large compressed message, then a small one and a close: delivered in that order', async function () {
    const p = await pair();
    close = p.close;
    const events = [];
    p.serverWs.on('message', (data) => events.push(`message ${data.length}`));
    const closed = new Promise((resolve) =>
      p.serverWs.on('close', (code) => {
        events.push(`close ${code}`);
        resolve();
      })
    );
    const big = json(BIG * 2, 'big'); // compresses to well over the 16 KiB async threshold
    p.client.send(big);
    p.client.send('small');
    p.client.close(1000);
    await closed;
    assert.deepStrictEqual(events, [`message ${big.length}`, 'message 5', 'close 1000']);
  });

  it('invalid UTF-8 inside a large compressed text message fails with 1007', async function () {
    const server = await raw.serve({ perMessageDeflate: true });
    const client = await raw.connect(server.port, '/', {
      headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' }
    });
    const ws = await server.nextConnection();
    const error = new Promise((resolve) => ws.once('error', resolve));
    // 2 MiB of random bytes compress poorly: well over the async threshold, and not UTF-8.
    const bytes = require('crypto').randomBytes(2 * 1024 * 1024);
    const deflated = zlib.deflateRawSync(bytes, { flush: zlib.constants.Z_SYNC_FLUSH });
    const payload = deflated.subarray(0, deflated.length - 4);
    await client.send(frame({ opcode: OP.TEXT, rsv1: true, payload }));
    const err = await error;
    assert.strictEqual(err.code, 'WS_ERR_INVALID_UTF8');
    const f = await client.nextFrame();
    assert.strictEqual(f.opcode, OP.CLOSE);
    assert.strictEqual(f.code, 1007);
    client.destroy();
    await server.close();
  });

  it("terminate() while a compression runs: the send's callback gets an error, nothing crashes", async function () {
    const p = await pair();
    close = p.close;
    const result = new Promise((resolve) => p.serverWs.send(json(BIG * 4, 'y'), resolve));
    p.serverWs.terminate();
    const err = await result;
    assert.ok(err instanceof Error);
    // The server still works for new connections.
    const q = await pair();
    q.serverWs.on('message', (data) => q.serverWs.send(data));
    const echoed = collect(q.client, 1);
    q.client.send(json(BIG, 'z'));
    assert.strictEqual((await echoed)[0].data.toString(), json(BIG, 'z'));
    await q.close();
  });
});
