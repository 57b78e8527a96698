'use strict';

// Backpressure, a ws-native extension: with the `highWaterMark` server option, send() returns
// false once bufferedAmount reaches it, and the connection emits 'drain' when it falls below.

const assert = require('assert');

const { nativeOnly } = require('./support/impl');
const { OP } = require('./support/net-helpers');
const { open, cleanup } = require('./support/raw');

const HIGH_WATER_MARK = 256 * 1024;
const SIZE = 64 * 1024;
const MAX_MESSAGES = 2048; // 128 MiB: far more than loopback socket buffers can hold

/** A 64 KiB message: a 4-byte sequence number, then the number's low byte repeated. */
function message(seq) {
  const buf = Buffer.alloc(SIZE, seq & 0xff);
  buf.writeUInt32BE(seq, 0);
  return buf;
}

nativeOnly.describe('backpressure (highWaterMark)', function () {
  afterEach(cleanup);

  it("send() returns false at highWaterMark, 'drain' follows once the client reads, every byte arrives in order", async function () {
    const { client, ws } = await open({ highWaterMark: HIGH_WATER_MARK });
    client.socket.pause(); // the client stops reading

    const callbacks = [];
    let allWritten;
    const written = new Promise((resolve) => (allWritten = resolve));
    let sent = 0;
    let ok;
    do {
      const seq = sent++;
      ok = ws.send(message(seq), (err) => {
        callbacks.push([seq, err]);
        if (!ok && callbacks.length === sent) allWritten();
      });
      assert.strictEqual(typeof ok, 'boolean', 'send() returns a boolean');
      if (seq === 0) assert.strictEqual(ok, true, 'the first send is below highWaterMark');
      if (ok) assert.ok(ws.bufferedAmount < HIGH_WATER_MARK, `true while bufferedAmount < highWaterMark (send ${seq})`);
      assert.ok(sent < MAX_MESSAGES, 'send() never returned false');
    } while (ok);
    assert.ok(
      ws.bufferedAmount >= HIGH_WATER_MARK,
      `false once bufferedAmount (${ws.bufferedAmount}) >= highWaterMark`
    );

    const drained = new Promise((resolve) => ws.once('drain', () => resolve(ws.bufferedAmount)));
    client.socket.resume();
    const bufferedAtDrain = await drained;
    assert.ok(bufferedAtDrain < HIGH_WATER_MARK, `bufferedAmount at 'drain' (${bufferedAtDrain}) < highWaterMark`);

    for (let seq = 0; seq < sent; seq++) {
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.BINARY);
      assert.strictEqual(f.fin, true);
      assert.strictEqual(f.payload.length, SIZE);
      assert.strictEqual(f.payload.readUInt32BE(0), seq, 'messages arrive in order');
      assert.ok(f.payload.equals(message(seq)), `message ${seq} arrives intact`);
    }

    if (callbacks.length < sent) await written;
    assert.deepStrictEqual(
      callbacks,
      Array.from({ length: sent }, (_, seq) => [seq, callbacks[seq][1]]),
      'callbacks are called once each, in order'
    );
    for (const [seq, err] of callbacks) assert.ok(err == null, `send ${seq} called back with ${err}`);

    // Below the mark again, send() returns true.
    assert.strictEqual(ws.send('after'), true);
    const f = await client.nextFrame();
    assert.deepStrictEqual(f.payload, Buffer.from('after'));
  });

  it('bufferedAmount is 0 and send() returns true on an idle connection', async function () {
    const { client, ws } = await open({ highWaterMark: HIGH_WATER_MARK });
    assert.strictEqual(ws.bufferedAmount, 0);
    assert.strictEqual(ws.send(Buffer.alloc(10)), true);
    await client.nextFrame();
  });
});
