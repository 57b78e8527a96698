'use strict';

// ws's Sender as other packages use it: WebSocket.Sender.frame(data, options) (socket.io-adapter
// encodes a broadcast once with it) and ws._sender.sendFrame(list, cb) (engine.io's websocket
// transport writes that frame to each client with it), plus the other ws members engine.io
// touches: ws._socket.remoteAddress, and the server options and 'headers' event it uses.

const assert = require('assert');
const http = require('http');

const Ws = require('ws');
const impl = require('./support/impl');
const { OP, parseFrame, parseHeader } = require('./support/net-helpers');
const { open, serve, connect, cleanup } = require('./support/raw');
const { Blob } = require('buffer');

const { WebSocket, WebSocketServer, nativeOnly } = impl;
const Sender = (impl.isWs ? Ws : require('..')).Sender;

/** The one frame in bytes, unmasked: { fin, rsv1, opcode, masked, payload }. */
function parseOne(bytes) {
  const f = parseFrame(bytes);
  assert.ok(f, 'a whole frame');
  assert.strictEqual(f.length, bytes.length, 'exactly one frame');
  return f;
}

function firstByte(bytes) {
  const { fin, rsv1, opcode } = parseHeader(bytes);
  return { fin, rsv1, opcode };
}

/** A ws-native (or ws) client and its server-side connection on a new server. */
async function clientPair(serverOptions) {
  const server = await serve(serverOptions);
  const client = new WebSocket(`ws://127.0.0.1:${server.port}`);
  const [serverSide] = await Promise.all([
    server.nextConnection(),
    new Promise((resolve, reject) => {
      client.once('open', resolve);
      client.once('error', reject);
    })
  ]);
  return { server, client, serverSide };
}

describe('WebSocket.Sender.frame(data, options)', function () {
  it("socket.io-adapter's call: the same bytes as ws's Sender.frame", function () {
    const options = { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true };
    for (const size of [0, 5, 125, 126, 65535, 65536, 200000]) {
      const data = Buffer.from('4' + 'x'.repeat(size));
      const ours = Sender.frame(data, { ...options });
      assert.ok(Array.isArray(ours) && ours.every((b) => Buffer.isBuffer(b)), 'a list of Buffers');
      assert.deepStrictEqual(
        Buffer.concat(ours),
        Buffer.concat(Ws.Sender.frame(Buffer.from(data), { ...options })),
        `payload of ${data.length} bytes`
      );
    }
  });

  it('fin, rsv1 and any opcode as given; a string is framed as UTF-8; fin defaults to false', function () {
    assert.deepStrictEqual(Buffer.concat(Sender.frame(Buffer.from('ab'), { opcode: 2 })), Buffer.from([0x02, 2, 0x61, 0x62]));
    assert.deepStrictEqual(
      firstByte(Buffer.concat(Sender.frame(Buffer.from('x'), { opcode: 1, fin: true, rsv1: true }))),
      { fin: true, rsv1: true, opcode: 1 }
    );
    const close = Buffer.concat(Sender.frame(Buffer.alloc(0), { opcode: 0x08, fin: true }));
    assert.deepStrictEqual(close, Buffer.from([0x88, 0x00]));
    const text = parseOne(Buffer.concat(Sender.frame('héllo', { opcode: 1, fin: true })));
    assert.deepStrictEqual(text.payload, Buffer.from('héllo'));
    const cont = Buffer.concat(Sender.frame(Buffer.from('c'), { opcode: 0, fin: true }));
    assert.deepStrictEqual(firstByte(cont), { fin: true, rsv1: false, opcode: 0 });
  });

  it('mask: true masks the payload with a fresh key; the caller\'s data is left as it was', function () {
    const data = Buffer.from('a payload to mask, longer than one key'.repeat(10));
    const copy = Buffer.from(data);
    const keys = new Set();
    for (let i = 0; i < 4; i++) {
      const f = parseOne(Buffer.concat(Sender.frame(data, { opcode: 2, fin: true, mask: true, readOnly: true })));
      assert.strictEqual(f.masked, true);
      assert.deepStrictEqual(f.payload, copy);
      keys.add(f.maskKey.toString('hex'));
    }
    assert.ok(keys.size > 1, 'the keys differ');
    assert.deepStrictEqual(data, copy);
  });

  nativeOnly.it('an invalid opcode or no options throws (RangeError / TypeError)', function () {
    assert.throws(() => Sender.frame(Buffer.from('x'), { opcode: 16 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => Sender.frame(Buffer.from('x'), { fin: true }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => Sender.frame(Buffer.from('x')), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => Sender.frame(42, { opcode: 1 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('ws._sender.sendFrame(list, cb)', function () {
  afterEach(cleanup);

  it("engine.io's feature test holds: typeof ws._sender.sendFrame === 'function'", async function () {
    const { ws } = await open();
    assert.strictEqual(typeof ws._sender.sendFrame, 'function');
  });

  it('queues the bytes in order with send() and ping(); the callback runs once they are written', async function () {
    const { client, ws } = await open();
    const results = [];
    ws.send('one');
    ws._sender.sendFrame(Sender.frame(Buffer.from('two'), { opcode: 1, fin: true, mask: false }), (err) =>
      results.push(err)
    );
    ws.ping('p');
    ws._sender.sendFrame(Ws.Sender.frame(Buffer.from([1, 2, 3]), { opcode: 2, fin: true, mask: false }));
    ws.send('five');
    const frames = [];
    for (let i = 0; i < 5; i++) frames.push(await client.nextFrame());
    assert.deepStrictEqual(
      frames.map((f) => [f.opcode, f.payload.toString('hex')]),
      [
        [OP.TEXT, Buffer.from('one').toString('hex')],
        [OP.TEXT, Buffer.from('two').toString('hex')],
        [OP.PING, Buffer.from('p').toString('hex')],
        [OP.BINARY, '010203'],
        [OP.TEXT, Buffer.from('five').toString('hex')]
      ]
    );
    assert.strictEqual(results.length, 1);
    assert.ok(!results[0], `callback error ${results[0]}`);
  });

  it('a large frame (written without a copy)', async function () {
    const { client, ws } = await open();
    const big = Buffer.alloc(256 * 1024, 0x5a);
    ws._sender.sendFrame(Sender.frame(big, { opcode: 2, fin: true }));
    const f1 = await client.nextFrame();
    assert.strictEqual(f1.opcode, OP.BINARY);
    assert.deepStrictEqual(f1.payload, big);
  });

  // (ws writes the first element of a list only, or the first two: one frame per call.)
  nativeOnly.it('many frames in one list, after a large one', async function () {
    const { client, ws } = await open();
    const big = Buffer.alloc(256 * 1024, 0x5a);
    ws._sender.sendFrame(Sender.frame(big, { opcode: 2, fin: true }));
    ws._sender.sendFrame([
      ...Sender.frame(Buffer.from('frag-'), { opcode: 1, fin: false }),
      ...Sender.frame(Buffer.from('ment'), { opcode: 0, fin: true })
    ]);
    const f1 = await client.nextFrame();
    assert.strictEqual(f1.opcode, OP.BINARY);
    assert.deepStrictEqual(f1.payload, big);
    const [f2, f3] = [await client.nextFrame(), await client.nextFrame()];
    assert.deepStrictEqual([f2.opcode, f2.fin, f2.payload.toString()], [OP.TEXT, false, 'frag-']);
    assert.deepStrictEqual([f3.opcode, f3.fin, f3.payload.toString()], [OP.CONT, true, 'ment']);
  });

  it("socket.io's broadcast: one frame from Sender.frame() written to every client with sendFrame()", async function () {
    const server = await serve();
    const clients = await Promise.all([0, 1, 2].map(() => connect(server.port)));
    const connections = await Promise.all(clients.map(() => server.nextConnection()));
    const packet = Sender.frame(Buffer.from('42["chat","hello everyone"]'), {
      readOnly: false,
      mask: false,
      rsv1: false,
      opcode: 1,
      fin: true
    });
    const written = [];
    for (const ws of connections) ws._sender.sendFrame(packet, (err) => written.push(err));
    for (const c of clients) {
      const f = await c.nextFrame();
      assert.deepStrictEqual([f.opcode, f.payload.toString()], [OP.TEXT, '42["chat","hello everyone"]']);
      c.destroy();
    }
    while (written.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(written.every((err) => !err));
  });

  it('from a client: masked frames from Sender.frame({ mask: true }) reach the server', async function () {
    const { client, serverSide } = await clientPair();
    const message = new Promise((resolve) => serverSide.once('message', (data, isBinary) => resolve([data, isBinary])));
    client._sender.sendFrame(Sender.frame(Buffer.from('masked by hand'), { opcode: 1, fin: true, mask: true }));
    const [data, isBinary] = await message;
    assert.strictEqual(data.toString(), 'masked by hand');
    assert.strictEqual(isBinary, false);
    client.terminate();
  });

  it('after the close: the callback gets an error (and, as in ws, bufferedAmount stays)', async function () {
    const { ws } = await open();
    ws.terminate();
    await new Promise((resolve) => ws.once('close', resolve));
    const bytes = Sender.frame(Buffer.from('late'), { opcode: 1, fin: true });
    const err = await new Promise((resolve) => ws._sender.sendFrame(bytes, resolve));
    assert.ok(err instanceof Error);
    assert.strictEqual(ws.bufferedAmount, 0);
  });

  nativeOnly.it('behind a Blob being read it waits its turn; a bad list or callback throws', async function () {
    const { client, ws } = await open();
    ws.send(new Blob(['blob first']));
    ws._sender.sendFrame(Sender.frame(Buffer.from('then the frame'), { opcode: 1, fin: true }));
    assert.deepStrictEqual(
      [(await client.nextFrame()).payload.toString(), (await client.nextFrame()).payload.toString()],
      ['blob first', 'then the frame']
    );
    for (const list of ['x', [42], null]) {
      assert.throws(() => ws._sender.sendFrame(list), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    }
    assert.throws(() => ws._sender.sendFrame(Sender.frame(Buffer.from('x'), { opcode: 1, fin: true }), 'cb'), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE'
    });
  });

  nativeOnly.it('during a fragmented send: a data frame throws (WS_ERR_FRAGMENTED_SEND), a control frame goes in between', async function () {
    const { client, ws } = await open();
    ws.send('part 1, ', { fin: false });
    assert.throws(() => ws._sender.sendFrame(Sender.frame(Buffer.from('x'), { opcode: 1, fin: true })), {
      code: 'WS_ERR_FRAGMENTED_SEND'
    });
    ws._sender.sendFrame(Sender.frame(Buffer.from('ping!'), { opcode: 9, fin: true }));
    ws.send('part 2', { fin: true });
    const frames = [await client.nextFrame(), await client.nextFrame(), await client.nextFrame()];
    assert.deepStrictEqual(
      frames.map((f) => [f.opcode, f.fin, f.payload.toString()]),
      [
        [OP.TEXT, false, 'part 1, '],
        [OP.PING, true, 'ping!'],
        [OP.CONT, true, 'part 2']
      ]
    );
  });

  // (ws writes the frame at once, ahead of messages still being compressed.)
  nativeOnly.it('with permessage-deflate: an uncompressed pre-built frame keeps its place between compressed messages', async function () {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { threshold: 0 } });
    await new Promise((resolve) => wss.once('listening', resolve));
    try {
      const ws = new Ws(`ws://127.0.0.1:${wss.address().port}`); // the reference inflater
      const received = [];
      const done = new Promise((resolve) =>
        ws.on('message', (data) => received.push(data.toString()) === 4 && resolve())
      );
      const [serverSide] = await new Promise((resolve) => wss.once('connection', (...args) => resolve(args)));
      serverSide.send('compressed 1 compressed 1');
      serverSide._sender.sendFrame(Sender.frame(Buffer.from('plain'), { opcode: 1, fin: true }));
      serverSide.send('compressed 1 compressed 1 again');
      serverSide.send('compressed 2');
      await done;
      assert.deepStrictEqual(received, [
        'compressed 1 compressed 1',
        'plain',
        'compressed 1 compressed 1 again',
        'compressed 2'
      ]);
      ws.close();
    } finally {
      await new Promise((resolve) => wss.close(resolve));
      for (const c of wss.clients) c.terminate();
    }
  });
});

// The rest of what engine.io (packages/engine.io/lib/server.ts, socket.ts, transports/
// websocket.ts) uses of ws, in one place: a noServer server without client tracking, with
// perMessageDeflate and maxPayload; 'headers' to add response headers; handleUpgrade; and
// ws._socket.remoteAddress of each connection.
describe("engine.io's use of the server", function () {
  it('noServer + clientTracking: false + perMessageDeflate + maxPayload, headers, handleUpgrade, _socket.remoteAddress', async function () {
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: { threshold: 1024 },
      maxPayload: 1000
    });
    wss.on('headers', (headers) => headers.push('Set-Cookie: io=abc'));
    const server = http.createServer();
    server.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, Buffer.from(head), (ws) => wss.emit('connection', ws, req));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      assert.strictEqual(wss.clients, undefined);
      const connection = new Promise((resolve) => wss.once('connection', resolve));
      const ws = new Ws(`ws://127.0.0.1:${server.address().port}/engine.io/?EIO=4&transport=websocket`);
      const upgrade = new Promise((resolve) => ws.once('upgrade', resolve));
      const opened = new Promise((resolve) => ws.once('open', resolve));
      const serverSide = await connection;
      const res = await upgrade;
      assert.strictEqual(res.headers['set-cookie'][0], 'io=abc');
      assert.match(res.headers['sec-websocket-extensions'], /^permessage-deflate/);
      assert.strictEqual(serverSide._socket.remoteAddress, '127.0.0.1');
      // maxPayload: a message of 1001 bytes fails the connection with 1009.
      const errors = [];
      serverSide.on('error', (err) => errors.push(err.code));
      const closed = new Promise((resolve) => ws.once('close', resolve));
      await opened;
      ws.send(Buffer.alloc(1001));
      assert.strictEqual(await closed, 1009);
      assert.deepStrictEqual(errors, ['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      wss.close();
    }
  });
});
