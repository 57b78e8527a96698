'use strict';

// The addon's connection handles: small integers naming a slot of a per-thread table, with a
// generation so that a handle used after release() (even once its slot is reused) acts on a
// released connection, never on freed memory or on the slot's new connection.

const assert = require('assert');

const { nativeOnly } = require('./support/impl');

nativeOnly.describe('connection handles', function () {
  const binding = require('../lib/binding');
  const { OP_TEXT } = binding.constants;
  const INDEX_MASK = (1 << 21) - 1;

  function create() {
    return binding.createConnection(true, 1024, false, true, 0);
  }

  it('are small integers; a released handle is inert even after its slot is reused', function () {
    const old = create();
    assert.ok(Number.isInteger(old) && old >= 0 && old < 2 ** 31);
    assert.ok(binding.send(old, 'before', OP_TEXT, true, false) > 0);
    binding.release(old);

    // Create connections until one takes the freed slot (freed slots are reused oldest first).
    const made = [];
    let reused;
    for (let i = 0; i < 1 << 17 && reused === undefined; i++) {
      const h = create();
      if ((h & INDEX_MASK) === (old & INDEX_MASK)) reused = h;
      else made.push(h);
    }
    assert.notStrictEqual(reused, undefined, 'the slot was reused');
    assert.notStrictEqual(reused, old, 'with another generation');

    // The stale handle acts on a released connection: nothing queued, nothing thrown...
    assert.strictEqual(binding.send(old, 'stale', OP_TEXT, true, false), 0);
    assert.strictEqual(binding.pendingOutput(old), 0);
    assert.strictEqual(binding.takeOutput(old), undefined);
    binding.release(old); // a second release is harmless
    // ...and the slot's new connection is untouched by it.
    assert.strictEqual(binding.pendingOutput(reused), 0);
    assert.ok(binding.send(reused, 'fresh', OP_TEXT, true, false) > 0);
    assert.strictEqual(binding.takeOutput(reused).subarray(2).toString(), 'fresh');

    for (const h of made) binding.release(h);
    binding.release(reused);
  });

  it('takeOutput(handle, pool, offset) copies into the pool when the output fits, says -1 when only a pool of its own would hold it', function () {
    const h = create();
    const pool = Buffer.alloc(16);
    binding.send(h, 'abc', OP_TEXT, true, false); // (5 bytes: a 2-byte header and the text)
    assert.strictEqual(binding.takeOutput(h, pool, 4), 5);
    assert.strictEqual(pool.subarray(6, 9).toString(), 'abc');
    assert.strictEqual(binding.takeOutput(h, pool, 9), undefined, 'nothing left to take');
    binding.send(h, 'abcdefghij', OP_TEXT, true, false); // 12 bytes: room for them at 0, not at 8
    assert.strictEqual(binding.takeOutput(h, pool, 8), -1);
    assert.strictEqual(binding.takeOutput(h, pool, 0), 12);
    binding.send(h, 'x'.repeat(20), OP_TEXT, true, false); // more than the pool holds
    assert.strictEqual(binding.takeOutput(h, pool, 0).subarray(2).toString(), 'x'.repeat(20));
    for (const [badPool, offset] of [['pool', 0], [pool, -1], [pool, 17], [pool, NaN]]) {
      binding.send(h, 'y', OP_TEXT, true, false);
      assert.throws(() => binding.takeOutput(h, badPool, offset), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE'
      });
      binding.takeOutput(h); // (what the failed call left)
    }
    binding.release(h);
  });

  it('sendFramedToEach(frames, handles, count) appends to the first count connections, leaves out released ones', function () {
    const [h1, h2, h3, gone] = [create(), create(), create(), create()];
    binding.release(gone);
    const frame = binding.frameOnce('hi', OP_TEXT, 0);
    const handles = Uint32Array.of(h1, gone, h2, h3);
    assert.strictEqual(binding.sendFramedToEach(frame, handles, 3), 2, 'h1 and h2; not h3');
    assert.strictEqual(binding.takeOutput(h1).toString('latin1'), '\x81\x02hi');
    assert.strictEqual(binding.takeOutput(h2).toString('latin1'), '\x81\x02hi');
    assert.strictEqual(binding.takeOutput(h3), undefined);
    for (const [list, count, name, code] of [
      [[h1], 1, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [new Int32Array([h1]), 1, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
      [handles, 5, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [handles, -1, 'RangeError', 'ERR_OUT_OF_RANGE'],
      [handles, 1.5, 'RangeError', 'ERR_OUT_OF_RANGE']
    ]) {
      assert.throws(() => binding.sendFramedToEach(frame, list, count), { name, code });
    }
    assert.strictEqual(binding.takeOutput(h1), undefined, 'nothing appended by a failed call');
    for (const h of [h1, h2, h3]) binding.release(h);
  });

  it('anything else is a TypeError (ERR_INVALID_ARG_TYPE)', function () {
    for (const bad of [undefined, null, {}, 'x', -1, 1.5]) {
      assert.throws(() => binding.pendingOutput(bad), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE'
      });
    }
  });
});
