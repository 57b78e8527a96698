'use strict';

// Data messages, fragmentation, control frames and the send/ping/pong/pause API of the
// server-side connection, driven by a raw client that crafts every frame.

const assert = require('assert');
const crypto = require('crypto');

const { nativeOnly } = require('./support/impl');
const { OP, frame } = require('./support/net-helpers');
const { open, connect, cleanup } = require('./support/raw');

const text = (payload, extra) => frame({ opcode: OP.TEXT, payload, ...extra });
const binary = (payload, extra) => frame({ opcode: OP.BINARY, payload, ...extra });
const cont = (payload, extra) => frame({ opcode: OP.CONT, payload, ...extra });
const ping = (payload) => frame({ opcode: OP.PING, payload });

/** Echoes every message back with the same type; records [data, isBinary] pairs. */
function echo(ws) {
  const received = [];
  ws.on('message', (data, isBinary) => {
    received.push([data, isBinary]);
    ws.send(data, { binary: isBinary });
  });
  return received;
}

function assertFrame(f, opcode, payload, fin = true) {
  assert.strictEqual(f.opcode, opcode, 'opcode');
  assert.strictEqual(f.fin, fin, 'fin');
  assert.strictEqual(f.masked, false, 'server frames are not masked');
  assert.deepStrictEqual(f.payload, Buffer.from(payload));
}

/** Sends each byte in its own write, letting the event loop turn between writes. */
async function sendByteByByte(client, bytes) {
  for (const byte of bytes) {
    await client.send(Buffer.from([byte]));
    await new Promise(setImmediate);
  }
}

describe('messages', function () {
  afterEach(cleanup);

  describe('text and binary', function () {
    it("text: 'message' gets a Buffer and isBinary false; echoed as a text frame", async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      await client.send(text('héllo'));
      assertFrame(await client.nextFrame(), OP.TEXT, 'héllo');
      assert.strictEqual(received.length, 1);
      assert.ok(Buffer.isBuffer(received[0][0]));
      assert.deepStrictEqual(received[0], [Buffer.from('héllo'), false]);
    });

    it("binary: 'message' gets a Buffer and isBinary true; echoed as a binary frame", async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      const data = Buffer.from([0, 1, 2, 0xff, 0xfe]);
      await client.send(binary(data));
      assertFrame(await client.nextFrame(), OP.BINARY, data);
      assert.deepStrictEqual(received, [[data, true]]);
    });

    it('empty text and empty binary messages', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      await client.send(Buffer.concat([text(''), binary('')]));
      assertFrame(await client.nextFrame(), OP.TEXT, '');
      assertFrame(await client.nextFrame(), OP.BINARY, '');
      assert.deepStrictEqual(received, [
        [Buffer.alloc(0), false],
        [Buffer.alloc(0), true]
      ]);
    });

    it('16-bit and 64-bit length encodings of small payloads are accepted', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      await client.send(
        Buffer.concat([
          text('hi', { lengthEncoding: 16 }),
          binary('yo', { lengthEncoding: 64 }),
          text('', { lengthEncoding: 64 })
        ])
      );
      assertFrame(await client.nextFrame(), OP.TEXT, 'hi');
      assertFrame(await client.nextFrame(), OP.BINARY, 'yo');
      assertFrame(await client.nextFrame(), OP.TEXT, '');
      assert.strictEqual(received.length, 3);
    });

    it('a zero mask key is handled', async function () {
      const { client, ws } = await open();
      echo(ws);
      await client.send(text('plain', { maskKey: Buffer.alloc(4) }));
      assertFrame(await client.nextFrame(), OP.TEXT, 'plain');
    });
  });

  describe('fragmentation', function () {
    it('text in 3 fragments with pings between them: pongs in order, one whole message', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      const pings = [];
      ws.on('ping', (data) => pings.push(data.toString()));

      await client.send(Buffer.concat([text('Hel', { fin: false }), ping('p1')]));
      assertFrame(await client.nextFrame(), OP.PONG, 'p1');
      assert.strictEqual(received.length, 0, 'no message before the last fragment');

      await client.send(Buffer.concat([cont('lo, ', { fin: false }), ping('p2')]));
      assertFrame(await client.nextFrame(), OP.PONG, 'p2');
      assert.strictEqual(received.length, 0, 'no message before the last fragment');

      await client.send(cont('world'));
      assertFrame(await client.nextFrame(), OP.TEXT, 'Hello, world');
      assert.deepStrictEqual(pings, ['p1', 'p2']);
      assert.deepStrictEqual(received, [[Buffer.from('Hello, world'), false]]);
    });

    it('the same sequence in one write: pong, pong, then the message', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      const pings = [];
      ws.on('ping', (data) => pings.push(data.toString()));
      await client.send(
        Buffer.concat([
          text('Hel', { fin: false }),
          ping('p1'),
          cont('lo, ', { fin: false }),
          ping('p2'),
          cont('world')
        ])
      );
      assertFrame(await client.nextFrame(), OP.PONG, 'p1');
      assertFrame(await client.nextFrame(), OP.PONG, 'p2');
      assertFrame(await client.nextFrame(), OP.TEXT, 'Hello, world');
      assert.deepStrictEqual(pings, ['p1', 'p2']);
      assert.strictEqual(received.length, 1);
    });

    it('binary in fragments, including empty ones', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      await client.send(
        Buffer.concat([binary('ab', { fin: false }), cont('', { fin: false }), cont('cd', { fin: false }), cont('')])
      );
      assertFrame(await client.nextFrame(), OP.BINARY, 'abcd');
      assert.deepStrictEqual(received, [[Buffer.from('abcd'), true]]);
    });

    it('UTF-8 split inside multi-byte characters across fragments is accepted', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      const bytes = Buffer.from('a€b😀c'); // 61 | e2 82 ac | 62 | f0 9f 98 80 | 63
      await client.send(
        Buffer.concat([
          text(bytes.subarray(0, 3), { fin: false }), // 'a' + first 2 bytes of '€'
          cont(bytes.subarray(3, 6), { fin: false }), // last byte of '€', 'b', first byte of '😀'
          cont(bytes.subarray(6, 8), { fin: false }), // 2 middle bytes of '😀'
          cont(bytes.subarray(8)) // last byte of '😀', 'c'
        ])
      );
      assertFrame(await client.nextFrame(), OP.TEXT, 'a€b😀c');
      assert.deepStrictEqual(received, [[bytes, false]]);
    });

    nativeOnly.it('invalid UTF-8 in the first fragment fails fast: 1007 while the message is still open', async function () {
      const { client, ws } = await open();
      const errors = [];
      ws.on('error', (err) => errors.push(err));
      const closed = new Promise((resolve) => ws.on('close', resolve));
      const first = Buffer.concat([Buffer.from('ab'), Buffer.from([0xff]), Buffer.alloc(4096, 0x61)]);
      await client.send(text(first, { fin: false }));

      // The final fragment has not been sent: the close frame must come anyway.
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.code, 1007);
      assert.strictEqual(await closed, 1006);
      assert.strictEqual(errors.length, 1);
      assert.strictEqual(errors[0].code, 'WS_ERR_INVALID_UTF8');
      assert.strictEqual(errors[0].message, 'Invalid WebSocket frame: invalid UTF-8 sequence');
    });

    it('a frame that ends inside a multi-byte character is not a UTF-8 error on its own', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      await client.send(text(Buffer.from([0x61, 0xe2, 0x82]), { fin: false }));
      await client.send(ping('sync'));
      assertFrame(await client.nextFrame(), OP.PONG, 'sync');
      await client.send(cont(Buffer.from([0xac])));
      assertFrame(await client.nextFrame(), OP.TEXT, 'a€');
      assert.strictEqual(received.length, 1);
    });
  });

  describe('sizes and splits', function () {
    it('a 16 MiB binary message is echoed intact', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      const data = crypto.randomBytes(16 * 1024 * 1024);
      const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
      await client.send(binary(data));
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.BINARY);
      assert.strictEqual(f.fin, true);
      assert.strictEqual(f.payload.length, data.length);
      assert.strictEqual(sha(f.payload), sha(data));
      assert.strictEqual(received.length, 1);
      assert.strictEqual(sha(received[0][0]), sha(data));
    });

    it('1,000 small frames in one socket write are all echoed in order', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      const n = 1000;
      const frames = [];
      for (let i = 0; i < n; i++) frames.push(i % 2 ? binary(`m${i}`) : text(`m${i}`));
      await client.send(Buffer.concat(frames));
      for (let i = 0; i < n; i++) {
        assertFrame(await client.nextFrame(), i % 2 ? OP.BINARY : OP.TEXT, `m${i}`);
      }
      assert.deepStrictEqual(
        received.map(([d, b]) => `${d}:${b}`),
        Array.from({ length: n }, (_, i) => `m${i}:${i % 2 === 1}`)
      );
    });

    it('messages fed one byte per write are echoed (7-, 16- and 64-bit lengths)', async function () {
      const { client, ws } = await open();
      const received = echo(ws);
      const big = Buffer.alloc(300, 0x5a);
      const mid = crypto.randomBytes(200);
      await sendByteByByte(
        client,
        Buffer.concat([
          text('one byte at a time: €😀'),
          binary(mid), // 16-bit length
          binary(big, { lengthEncoding: 64 }),
          text('a€', { fin: false }), // fragmented as well
          cont('b')
        ])
      );
      assertFrame(await client.nextFrame(), OP.TEXT, 'one byte at a time: €😀');
      assertFrame(await client.nextFrame(), OP.BINARY, mid);
      assertFrame(await client.nextFrame(), OP.BINARY, big);
      assertFrame(await client.nextFrame(), OP.TEXT, 'a€b');
      assert.strictEqual(received.length, 4);
    });
  });

  describe('binaryType', function () {
    it("'arraybuffer': binary messages are ArrayBuffers, text stays a Buffer", async function () {
      const { client, ws } = await open();
      ws.binaryType = 'arraybuffer';
      assert.strictEqual(ws.binaryType, 'arraybuffer');
      const received = [];
      ws.on('message', (data, isBinary) => received.push([data, isBinary]));
      await client.send(Buffer.concat([binary('abc'), text('t'), ping('sync')]));
      await client.nextFrame();
      assert.strictEqual(received.length, 2);
      assert.ok(received[0][0] instanceof ArrayBuffer);
      assert.deepStrictEqual(Buffer.from(received[0][0]), Buffer.from('abc'));
      assert.strictEqual(received[0][1], true);
      assert.ok(Buffer.isBuffer(received[1][0]));
      assert.deepStrictEqual(received[1], [Buffer.from('t'), false]);
    });

    it("'fragments': binary messages are an array of the fragments' Buffers", async function () {
      const { client, ws } = await open();
      ws.binaryType = 'fragments';
      const received = [];
      ws.on('message', (data, isBinary) => received.push([data, isBinary]));
      await client.send(
        Buffer.concat([binary('ab', { fin: false }), cont('cd', { fin: false }), cont('ef'), binary('one'), ping('sync')])
      );
      await client.nextFrame();
      assert.strictEqual(received.length, 2);
      assert.deepStrictEqual(received[0], [[Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')], true]);
      assert.deepStrictEqual(received[1], [[Buffer.from('one')], true]);
    });

    nativeOnly.it("an echo of a 'fragments' message sends their bytes as one message", async function () {
      const { client, ws } = await open();
      ws.binaryType = 'fragments';
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      await client.send(
        Buffer.concat([binary('ab', { fin: false }), cont('cd', { fin: false }), cont('ef')])
      );
      assertFrame(await client.nextFrame(), OP.BINARY, 'abcdef');
    });

    it('an unknown binaryType is ignored', async function () {
      const { ws } = await open();
      assert.strictEqual(ws.binaryType, 'nodebuffer');
      ws.binaryType = 'nonsense';
      assert.strictEqual(ws.binaryType, 'nodebuffer');
    });
  });

  describe('browser-style API', function () {
    it('onmessage gets a MessageEvent: data is a string for text, a Buffer for binary', async function () {
      const { client, ws } = await open();
      const events = [];
      ws.onmessage = (ev) => events.push(ev);
      assert.strictEqual(typeof ws.onmessage, 'function');
      await client.send(Buffer.concat([text('hi €'), binary('bin'), ping('sync')]));
      await client.nextFrame();
      assert.strictEqual(events.length, 2);
      assert.strictEqual(events[0].type, 'message');
      assert.strictEqual(events[0].data, 'hi €');
      assert.strictEqual(events[0].target, ws);
      assert.deepStrictEqual(events[1].data, Buffer.from('bin'));
    });

    it("addEventListener('message', fn, { once: true }) fires once", async function () {
      const { client, ws } = await open();
      const once = [];
      const all = [];
      ws.addEventListener('message', (ev) => once.push(ev.data), { once: true });
      ws.on('message', (data) => all.push(data.toString()));
      await client.send(Buffer.concat([text('first'), text('second'), ping('sync')]));
      await client.nextFrame();
      assert.deepStrictEqual(all, ['first', 'second']);
      assert.deepStrictEqual(once, ['first']);
    });
  });

  describe('ping and pong', function () {
    it('autoPong: false -> no automatic pong, and the ping event is still emitted', async function () {
      const { client, ws } = await open({ autoPong: false });
      echo(ws);
      const pings = [];
      ws.on('ping', (data) => pings.push(data.toString()));
      await client.send(Buffer.concat([ping('x'), text('after')]));
      // Had a pong been sent it would come before the echo.
      assertFrame(await client.nextFrame(), OP.TEXT, 'after');
      assert.deepStrictEqual(pings, ['x']);
    });

    // The engine answers pings in C as it parses them, so a test that stubs ws.pong() to play
    // a dead peer (graphql-ws's keep-alive test does) still sees pongs; autoPong is the switch.
    nativeOnly.it('replacing ws.pong() does not stop the automatic pong (autoPong: false does)', async function () {
      const { client, ws } = await open();
      let stubCalls = 0;
      ws.pong = () => stubCalls++;
      await client.send(ping('still answered'));
      assertFrame(await client.nextFrame(), OP.PONG, 'still answered');
      assert.strictEqual(stubCalls, 0);
    });

    it("'pong' events carry the payload", async function () {
      const { client, ws } = await open();
      const pongs = [];
      ws.on('pong', (data) => pongs.push(data));
      await client.send(Buffer.concat([frame({ opcode: OP.PONG, payload: 'unsolicited' }), ping('sync')]));
      await client.nextFrame();
      assert.deepStrictEqual(pongs, [Buffer.from('unsolicited')]);
    });

    it("ws.ping('x') and ws.pong('y') reach the client as frames with those payloads", async function () {
      const { client, ws } = await open();
      ws.ping('x');
      ws.pong('y');
      ws.ping();
      ws.ping(Buffer.alloc(125, 1));
      assertFrame(await client.nextFrame(), OP.PING, 'x');
      assertFrame(await client.nextFrame(), OP.PONG, 'y');
      assertFrame(await client.nextFrame(), OP.PING, '');
      assertFrame(await client.nextFrame(), OP.PING, Buffer.alloc(125, 1));
    });

    it('ping or pong with more than 125 bytes throws a RangeError', async function () {
      const { ws } = await open();
      const msg = 'The data size must not be greater than 125 bytes';
      assert.throws(() => ws.ping(Buffer.alloc(126)), { name: 'RangeError', message: msg });
      assert.throws(() => ws.ping('x'.repeat(126)), { name: 'RangeError', message: msg });
      assert.throws(() => ws.pong('€'.repeat(42)), { name: 'RangeError', message: msg }); // 126 bytes
    });
  });

  describe('send', function () {
    it('send(data, { fin: false }) then send(data2) makes a fragmented message', async function () {
      const { client, ws } = await open();
      ws.send('ab', { fin: false });
      ws.send('cd');
      ws.send(Buffer.from('12'), { fin: false });
      ws.send(Buffer.from('34'), { fin: false });
      ws.send(Buffer.from('56'));
      ws.send('next');
      assertFrame(await client.nextFrame(), OP.TEXT, 'ab', false);
      assertFrame(await client.nextFrame(), OP.CONT, 'cd', true);
      assertFrame(await client.nextFrame(), OP.BINARY, '12', false);
      assertFrame(await client.nextFrame(), OP.CONT, '34', false);
      assertFrame(await client.nextFrame(), OP.CONT, '56', true);
      assertFrame(await client.nextFrame(), OP.TEXT, 'next', true);
    });

    it('sends strings, numbers, Buffers, typed arrays, ArrayBuffers and DataViews', async function () {
      const { client, ws } = await open();
      const ab = new ArrayBuffer(8);
      new Uint8Array(ab).set([1, 2, 3, 4, 5, 6, 7, 8]);
      const u16 = new Uint16Array([0x0102, 0x0304, 0xfffe]);
      const cases = [
        ['h€llo', OP.TEXT, Buffer.from('h€llo')],
        [42, OP.TEXT, Buffer.from('42')],
        [Buffer.from('buf'), OP.BINARY, Buffer.from('buf')],
        [new Uint8Array(ab, 2, 3), OP.BINARY, Buffer.from([3, 4, 5])],
        [ab, OP.BINARY, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])],
        [new DataView(ab, 4, 2), OP.BINARY, Buffer.from([5, 6])],
        [u16, OP.BINARY, Buffer.from(u16.buffer, u16.byteOffset, u16.byteLength)],
        [u16.subarray(1, 2), OP.BINARY, Buffer.from(u16.buffer, 2, 2)],
        ['as binary', OP.BINARY, Buffer.from('as binary'), { binary: true }],
        [Buffer.from('as text'), OP.TEXT, Buffer.from('as text'), { binary: false }]
      ];
      for (const [data, , , options] of cases) ws.send(data, options);
      for (const [, opcode, payload] of cases) assertFrame(await client.nextFrame(), opcode, payload);
    });

    it('the send callback is called with no error once written', async function () {
      const { client, ws } = await open();
      const err = await new Promise((resolve) => ws.send('cb', resolve));
      assert.ok(err === undefined || err === null, `unexpected error ${err}`);
      assertFrame(await client.nextFrame(), OP.TEXT, 'cb');
    });

    it("send/ping/pong while CLOSING or CLOSED call back with 'WebSocket is not open'", async function () {
      const { client, ws } = await open();
      const closed = new Promise((resolve) => ws.on('close', resolve));
      ws.close(1000);
      assert.strictEqual(ws.readyState, ws.CLOSING);

      const closingMsg = 'WebSocket is not open: readyState 2 (CLOSING)';
      let sync = true;
      const errs = await Promise.all([
        new Promise((resolve) => ws.send('x', resolve)),
        new Promise((resolve) => ws.ping('x', resolve)),
        new Promise((resolve) => ws.pong(resolve)),
        (() => {
          const p = new Promise((resolve) => ws.send('y', () => resolve(sync)));
          sync = false;
          return p;
        })()
      ]);
      for (const err of errs.slice(0, 3)) {
        assert.ok(err instanceof Error);
        assert.strictEqual(err.message, closingMsg);
      }
      assert.strictEqual(errs[3], false, 'the callback is not called synchronously');
      ws.send('no callback: no throw');

      const f = await client.nextFrame();
      assert.strictEqual(f.code, 1000);
      assert.strictEqual(client.frames.length, 1, 'nothing is sent after the close frame');
      await client.sendClose(1000);
      await closed;
      assert.strictEqual(ws.readyState, ws.CLOSED);

      const err = await new Promise((resolve) => ws.send('x', resolve));
      assert.ok(err instanceof Error);
      assert.strictEqual(err.message, 'WebSocket is not open: readyState 3 (CLOSED)');
      await client.awaitClose();
    });
  });

  describe('pause and resume', function () {
    it("while paused no 'message' is emitted; after resume all arrive in order", async function () {
      const { server, client, ws } = await open();
      const received = [];
      ws.on('message', (data) => received.push(data.toString()));
      assert.strictEqual(ws.isPaused, false);
      ws.pause();
      assert.strictEqual(ws.isPaused, true);

      await client.send(Buffer.concat([text('one'), text('two')]));
      await client.send(text('three'));

      // Barrier: a round trip on a second connection to the same server shows the server's
      // event loop has turned since the bytes above reached its socket.
      const other = await connect(server.port);
      const otherWs = await server.nextConnection();
      echo(otherWs);
      await other.send(text('barrier'));
      assertFrame(await other.nextFrame(), OP.TEXT, 'barrier');
      other.destroy();

      assert.deepStrictEqual(received, []);
      assert.strictEqual(ws.isPaused, true);

      const all = new Promise((resolve) => ws.on('message', () => received.length === 3 && resolve()));
      ws.resume();
      assert.strictEqual(ws.isPaused, false);
      await all;
      assert.deepStrictEqual(received, ['one', 'two', 'three']);
    });
  });
});
