'use strict';

// The limits that keep one peer from exhausting the server's memory: each one is an option,
// each is tripped here through a real socket, and each ends in the documented way.

const assert = require('assert');

const { nativeOnly } = require('./support/impl');
const { OP, frame } = require('./support/net-helpers');
const { open, cleanup } = require('./support/raw');

function closeEvent(ws) {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason })));
}

function errorEvent(ws) {
  return new Promise((resolve) => ws.once('error', resolve));
}

nativeOnly.describe('limits', function () {
  afterEach(cleanup);

  it('maxFragments: one fragment too many fails the message with 1008', async function () {
    const { client, ws } = await open({ maxFragments: 3 });
    const messages = [];
    ws.on('message', (data) => messages.push(data.toString()));
    const error = errorEvent(ws);

    // Exactly 3 fragments are fine.
    await client.send(
      Buffer.concat([
        frame({ fin: false, opcode: OP.TEXT, payload: 'a' }),
        frame({ fin: false, opcode: OP.CONT, payload: 'b' }),
        frame({ fin: true, opcode: OP.CONT, payload: 'c' })
      ])
    );
    // Four, even empty ones, are not.
    await client.send(
      Buffer.concat([
        frame({ fin: false, opcode: OP.TEXT, payload: '' }),
        frame({ fin: false, opcode: OP.CONT, payload: '' }),
        frame({ fin: false, opcode: OP.CONT, payload: '' }),
        frame({ fin: true, opcode: OP.CONT, payload: '' })
      ])
    );
    const err = await error;
    assert.strictEqual(err.code, 'WS_ERR_TOO_MANY_BUFFERED_PARTS');
    assert.strictEqual(err.message, 'Too many message fragments');
    assert.ok(err instanceof RangeError);
    const f = await client.nextFrame();
    assert.strictEqual(f.opcode, OP.CLOSE);
    assert.strictEqual(f.code, 1008);
    assert.deepStrictEqual(messages, ['abc']);
  });

  it('maxBufferedChunks: chunks piling up while paused fail the connection with 1008', async function () {
    // (The stream transport: the native one stops reading while paused, so nothing piles up.)
    const { client, ws } = await open({ maxBufferedChunks: 4, transport: 'stream' });
    const error = errorEvent(ws);
    const closed = closeEvent(ws);
    ws.on('message', () => {});
    ws.pause();
    // A paused socket stops reading, so feed the connection the way a Duplex would: push
    // more chunks than the limit at it while it is paused.
    for (let i = 0; i < 6; i++) ws._socket.emit('data', frame({ opcode: OP.TEXT, payload: `m${i}` }));
    const err = await error;
    assert.strictEqual(err.code, 'WS_ERR_TOO_MANY_BUFFERED_PARTS');
    assert.strictEqual(err.message, 'Too many buffered chunks');
    ws.resume();
    const f = await client.nextFrame();
    assert.strictEqual(f.opcode, OP.CLOSE);
    assert.strictEqual(f.code, 1008);
    client.destroy();
    assert.strictEqual((await closed).code, 1006);
  });

  it('maxPendingAutoPongs: a peer that pings but never reads is terminated; one that reads is not', async function () {
    const burst = Buffer.concat(
      Array.from({ length: 10 }, () => frame({ opcode: OP.PING, payload: Buffer.alloc(125, 1) }))
    );
    /** Sends bursts of 10 pings until the server closes or `rounds` bursts went out. */
    async function pingBursts(client, rounds) {
      for (let i = 0; i < rounds && !client.socket.destroyed; i++) {
        await new Promise((resolve) => client.socket.write(burst, resolve));
        await new Promise((resolve) => setImmediate(resolve));
      }
    }

    // A reader: its pongs leave, so the count never reaches the limit.
    const reader = await open({ maxPendingAutoPongs: 20 });
    let reads = 0;
    reader.client.socket.on('data', () => reads++);
    await pingBursts(reader.client, 300);
    assert.strictEqual(reader.ws.readyState, reader.ws.OPEN);
    assert.ok(reads > 0);

    // A peer that never reads: the kernel buffers fill, pongs stay queued, and past 20 the
    // connection is terminated.
    const { client, ws } = await open({ maxPendingAutoPongs: 20 });
    const closed = closeEvent(ws);
    client.socket.pause();
    const sending = pingBursts(client, 100000);
    const { code } = await closed;
    client.destroy();
    await sending;
    assert.strictEqual(code, 1006);
  });

  it('maxBufferedAmount (close): sending on to a peer that does not read fails with 1008', async function () {
    const { client, ws } = await open({ maxBufferedAmount: 4 * 1024 * 1024 });
    client.socket.pause();
    const error = errorEvent(ws);
    const closed = closeEvent(ws);
    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    let lastCallbackError = null;
    while (ws.readyState === ws.OPEN && sent < 100 * 1024 * 1024) {
      ws.send(chunk, (err) => {
        if (err) lastCallbackError = err;
      });
      sent += chunk.length;
    }
    const err = await error;
    assert.strictEqual(err.code, 'WS_ERR_BUFFER_OVERFLOW');
    assert.ok(sent < 8 * 1024 * 1024, `stopped after ${sent} bytes`);
    assert.strictEqual((await closed).code, 1006);
    assert.ok(lastCallbackError);
  });

  it("maxBufferedAmount (drop): messages past the limit are dropped, reported to send's callback", async function () {
    const { client, ws } = await open({
      maxBufferedAmount: 2 * 1024 * 1024,
      onBufferOverflow: 'drop'
    });
    client.socket.pause();
    const chunk = Buffer.alloc(64 * 1024, 7);
    const dropped = [];
    for (let i = 0; i < 100; i++) {
      ws.send(chunk, (err) => err && dropped.push(err.code));
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.strictEqual(ws.readyState, ws.OPEN);
    assert.ok(ws.bufferedAmount <= 2 * 1024 * 1024 + chunk.length, `${ws.bufferedAmount}`);
    assert.ok(dropped.length > 0);
    assert.ok(dropped.every((code) => code === 'WS_ERR_BUFFER_OVERFLOW'));
  });

  it('limit options are validated', function () {
    const { WebSocketServer } = require('./support/impl');
    for (const name of ['maxFragments', 'maxBufferedChunks', 'maxPendingAutoPongs', 'maxBufferedAmount']) {
      assert.throws(() => new WebSocketServer({ noServer: true, [name]: -1 }), {
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE'
      });
    }
    assert.throws(() => new WebSocketServer({ noServer: true, onBufferOverflow: 'ignore' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE'
    });
  });

  it('a limit option given as undefined keeps its default; timeouts past setTimeout()\'s range throw', async function () {
    const { WebSocketServer } = require('./support/impl');
    const options = {};
    for (const name of ['maxPayload', 'closeTimeout', 'highWaterMark', 'maxFragments', 'maxBufferedAmount']) {
      options[name] = undefined;
    }
    const { client, ws } = await open(options);
    ws.send('defaults');
    const f = await client.nextFrame();
    assert.strictEqual(f.payload.toString(), 'defaults');
    for (const name of ['closeTimeout', 'headersTimeout']) {
      assert.throws(() => new WebSocketServer({ noServer: true, [name]: 2 ** 31 }), {
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE'
      });
    }
  });
});
