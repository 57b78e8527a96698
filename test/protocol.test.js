'use strict';

// Protocol errors: for each malformed input the server sends a close frame with the RFC 6455
// status, emits one 'error' with ws's code and message, closes the TCP connection, and emits
// 'close' with 1006 (no close frame was received).

const assert = require('assert');

const { nativeOnly } = require('./support/impl');
const { OP, frame, closeFrame } = require('./support/net-helpers');
const { open, cleanup } = require('./support/raw');

/**
 * Opens a connection, records the server connection's events, writes `bytes` from the client
 * and checks the failure: the close frame's status, the error and the 'close' event.
 * Returns the recorded events ('message:<text>', 'error', 'close').
 */
async function expectFailure(bytes, { status, code, message, type = RangeError, options }) {
  const { client, ws } = await open(options);
  const events = [];
  const errors = [];
  ws.on('message', (data, isBinary) => events.push(`message:${data}:${isBinary}`));
  ws.on('error', (err) => {
    errors.push(err);
    events.push('error');
  });
  const closed = new Promise((resolve) => {
    ws.on('close', (closeCode, reason) => {
      events.push('close');
      resolve({ closeCode, reason });
    });
  });

  await client.send(bytes);

  const f = await client.nextFrame();
  assert.strictEqual(f.opcode, OP.CLOSE, 'first frame from the server is a close frame');
  assert.strictEqual(f.code, status);
  assert.strictEqual(f.reason, '');

  const { closeCode, reason } = await closed;
  assert.strictEqual(closeCode, 1006);
  assert.ok(Buffer.isBuffer(reason) && reason.length === 0);
  assert.strictEqual(ws.readyState, ws.CLOSED);

  await client.awaitClose();
  assert.strictEqual(client.frames.length, 1, 'nothing follows the close frame');

  assert.strictEqual(errors.length, 1);
  const err = errors[0];
  assert.ok(err instanceof type, `error is a ${type.name}`);
  assert.strictEqual(err.code, code);
  assert.strictEqual(err.message, message);
  return events;
}

const text = (payload, extra) => frame({ opcode: OP.TEXT, payload, ...extra });

describe('protocol errors', function () {
  afterEach(cleanup);

  describe('reserved bits', function () {
    it('RSV1 without a negotiated extension -> 1002 WS_ERR_UNEXPECTED_RSV_1', async function () {
      await expectFailure(text('x', { rsv1: true }), {
        status: 1002,
        code: 'WS_ERR_UNEXPECTED_RSV_1',
        message: 'Invalid WebSocket frame: RSV1 must be clear'
      });
    });

    for (const bit of ['rsv2', 'rsv3']) {
      it(`${bit.toUpperCase()} -> 1002 WS_ERR_UNEXPECTED_RSV_2_3`, async function () {
        await expectFailure(text('x', { [bit]: true }), {
          status: 1002,
          code: 'WS_ERR_UNEXPECTED_RSV_2_3',
          message: 'Invalid WebSocket frame: RSV2 and RSV3 must be clear'
        });
      });
    }
  });

  describe('opcodes', function () {
    for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      it(`reserved opcode 0x${opcode.toString(16)} -> 1002 WS_ERR_INVALID_OPCODE`, async function () {
        await expectFailure(frame({ opcode, payload: 'x' }), {
          status: 1002,
          code: 'WS_ERR_INVALID_OPCODE',
          message: `Invalid WebSocket frame: invalid opcode ${opcode}`
        });
      });
    }

    it('continuation frame with no message to continue -> 1002 WS_ERR_INVALID_OPCODE', async function () {
      await expectFailure(frame({ opcode: OP.CONT, payload: 'x' }), {
        status: 1002,
        code: 'WS_ERR_INVALID_OPCODE',
        message: 'Invalid WebSocket frame: invalid opcode 0'
      });
    });

    it('a new text frame while a fragmented message is open -> 1002 WS_ERR_INVALID_OPCODE', async function () {
      const bytes = Buffer.concat([text('a', { fin: false }), text('b')]);
      const events = await expectFailure(bytes, {
        status: 1002,
        code: 'WS_ERR_INVALID_OPCODE',
        message: 'Invalid WebSocket frame: invalid opcode 1'
      });
      assert.deepStrictEqual(events, ['error', 'close']);
    });

    it('a new binary frame while a fragmented message is open -> 1002 WS_ERR_INVALID_OPCODE', async function () {
      const bytes = Buffer.concat([
        frame({ opcode: OP.BINARY, payload: 'a', fin: false }),
        frame({ opcode: OP.BINARY, payload: 'b' })
      ]);
      await expectFailure(bytes, {
        status: 1002,
        code: 'WS_ERR_INVALID_OPCODE',
        message: 'Invalid WebSocket frame: invalid opcode 2'
      });
    });
  });

  describe('control frames', function () {
    it('fragmented ping (FIN clear) -> 1002 WS_ERR_EXPECTED_FIN', async function () {
      await expectFailure(frame({ opcode: OP.PING, payload: 'x', fin: false }), {
        status: 1002,
        code: 'WS_ERR_EXPECTED_FIN',
        message: 'Invalid WebSocket frame: FIN must be set'
      });
    });

    for (const [name, opcode] of [['ping', OP.PING], ['pong', OP.PONG], ['close', OP.CLOSE]]) {
      it(`${name} with a 126-byte payload -> 1002 WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH`, async function () {
        const payload = Buffer.alloc(126, 0x61);
        if (opcode === OP.CLOSE) payload.writeUInt16BE(1000);
        await expectFailure(frame({ opcode, payload }), {
          status: 1002,
          code: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH',
          message: 'Invalid WebSocket frame: invalid payload length 126'
        });
      });
    }

    it('ping with a 125-byte payload is accepted and answered', async function () {
      const { client, ws } = await open();
      const pings = [];
      ws.on('ping', (data) => pings.push(data));
      const payload = Buffer.alloc(125, 0x62);
      await client.send(frame({ opcode: OP.PING, payload }));
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.PONG);
      assert.deepStrictEqual(f.payload, payload);
      assert.deepStrictEqual(pings, [payload]);
    });

    it('close frame with a 1-byte payload -> 1002 WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', async function () {
      await expectFailure(frame({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }), {
        status: 1002,
        code: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH',
        message: 'Invalid WebSocket frame: invalid payload length 1'
      });
    });
  });

  describe('masking', function () {
    it('unmasked client frame -> 1002 WS_ERR_EXPECTED_MASK', async function () {
      await expectFailure(text('x', { mask: false }), {
        status: 1002,
        code: 'WS_ERR_EXPECTED_MASK',
        message: 'Invalid WebSocket frame: MASK must be set'
      });
    });

    it('unmasked ping -> 1002 WS_ERR_EXPECTED_MASK', async function () {
      await expectFailure(frame({ opcode: OP.PING, payload: 'x', mask: false }), {
        status: 1002,
        code: 'WS_ERR_EXPECTED_MASK',
        message: 'Invalid WebSocket frame: MASK must be set'
      });
    });
  });

  describe('payload length', function () {
    const tooBig = {
      status: 1009,
      code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
      message: 'Max payload size exceeded',
      options: { maxPayload: 1024 }
    };

    it('a message of exactly maxPayload bytes is accepted', async function () {
      const { client, ws } = await open({ maxPayload: 1024 });
      const got = new Promise((resolve) => ws.once('message', resolve));
      await client.send(frame({ opcode: OP.BINARY, payload: Buffer.alloc(1024, 7) }));
      assert.deepStrictEqual(await got, Buffer.alloc(1024, 7));
    });

    it('over maxPayload is refused from the 64-bit header alone -> 1009', async function () {
      // Header and mask key only; the 1025 payload bytes are never sent.
      const header = frame({ opcode: OP.BINARY, length: 1025, lengthEncoding: 64 });
      assert.strictEqual(header.length, 2 + 8 + 4);
      await expectFailure(header, tooBig);
    });

    it('over maxPayload is refused from the 16-bit header alone -> 1009', async function () {
      await expectFailure(frame({ opcode: OP.TEXT, length: 1025, lengthEncoding: 16 }), tooBig);
    });

    it('fragments summing over maxPayload -> 1009, and no message is delivered', async function () {
      const bytes = Buffer.concat([
        text(Buffer.alloc(600, 0x61), { fin: false }),
        frame({ opcode: OP.CONT, payload: Buffer.alloc(600, 0x61) })
      ]);
      const events = await expectFailure(bytes, tooBig);
      assert.deepStrictEqual(events, ['error', 'close']);
    });

    it('64-bit length > 2^53 - 1 -> 1009 WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', async function () {
      await expectFailure(frame({ opcode: OP.BINARY, length: 2n ** 53n, lengthEncoding: 64 }), {
        status: 1009,
        code: 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH',
        message: 'Unsupported WebSocket frame: payload length > 2^53 - 1'
      });
    });

    nativeOnly.it('64-bit length with the most significant bit set -> 1002 (RFC 6455 5.2)', async function () {
      const { client, ws } = await open();
      const errors = [];
      ws.on('error', (err) => errors.push(err));
      const closed = new Promise((resolve) => ws.on('close', resolve));
      await client.send(frame({ opcode: OP.BINARY, length: 2n ** 63n + 5n, lengthEncoding: 64 }));
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.code, 1002);
      assert.strictEqual(await closed, 1006);
      assert.strictEqual(errors.length, 1);
      assert.strictEqual(errors[0].code, 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH');
    });
  });

  describe('close frames', function () {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
      it(`close code ${code} -> 1002 WS_ERR_INVALID_CLOSE_CODE`, async function () {
        await expectFailure(closeFrame(code, 'r'), {
          status: 1002,
          code: 'WS_ERR_INVALID_CLOSE_CODE',
          message: `Invalid WebSocket frame: invalid status code ${code}`
        });
      });
    }

    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
      it(`valid close code ${code} is echoed`, async function () {
        const { client, ws } = await open();
        const closed = new Promise((resolve) => ws.on('close', (c, r) => resolve([c, r])));
        await client.sendClose(code, 'why');
        const f = await client.nextFrame();
        assert.strictEqual(f.opcode, OP.CLOSE);
        assert.strictEqual(f.code, code);
        assert.strictEqual(f.reason, 'why');
        assert.deepStrictEqual(await closed, [code, Buffer.from('why')]);
        await client.awaitClose();
      });
    }

    it('close reason that is not valid UTF-8 -> 1007 WS_ERR_INVALID_UTF8', async function () {
      await expectFailure(closeFrame(1000, Buffer.from([0x61, 0xff])), {
        status: 1007,
        code: 'WS_ERR_INVALID_UTF8',
        message: 'Invalid WebSocket frame: invalid UTF-8 sequence',
        type: Error
      });
    });
  });

  describe('UTF-8 in text messages', function () {
    const invalid = {
      'a 0xFF byte': [0x61, 0xff, 0x62],
      'an overlong encoding': [0xc0, 0x80],
      'a UTF-16 surrogate': [0xed, 0xa0, 0x80],
      'a code point above U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
      'a truncated sequence at the end': [0x61, 0xe2, 0x82],
      'a lone continuation byte': [0x80]
    };
    for (const [name, bytes] of Object.entries(invalid)) {
      it(`text with ${name} -> 1007 WS_ERR_INVALID_UTF8`, async function () {
        await expectFailure(text(Buffer.from(bytes)), {
          status: 1007,
          code: 'WS_ERR_INVALID_UTF8',
          message: 'Invalid WebSocket frame: invalid UTF-8 sequence',
          type: Error
        });
      });
    }

    it('invalid UTF-8 split over fragments -> 1007', async function () {
      const bytes = Buffer.concat([
        text(Buffer.from([0x61, 0xe2]), { fin: false }),
        frame({ opcode: OP.CONT, payload: Buffer.from([0x41]) })
      ]);
      await expectFailure(bytes, {
        status: 1007,
        code: 'WS_ERR_INVALID_UTF8',
        message: 'Invalid WebSocket frame: invalid UTF-8 sequence',
        type: Error
      });
    });
  });

  describe('after an error', function () {
    it('messages before the bad frame in the same write are delivered first', async function () {
      const bytes = Buffer.concat([
        text('one'),
        frame({ opcode: OP.BINARY, payload: 'two' }),
        text('bad', { rsv2: true }),
        text('never')
      ]);
      const events = await expectFailure(bytes, {
        status: 1002,
        code: 'WS_ERR_UNEXPECTED_RSV_2_3',
        message: 'Invalid WebSocket frame: RSV2 and RSV3 must be clear'
      });
      assert.deepStrictEqual(events, ['message:one:false', 'message:two:true', 'error', 'close']);
    });

    it('a bad frame split over many writes fails the same way', async function () {
      const { client, ws } = await open();
      const errors = [];
      ws.on('error', (err) => errors.push(err));
      const bytes = frame({ opcode: 0xb, payload: 'abc' });
      for (const byte of bytes) {
        if (client.frames.length || client.closed) break; // the server may fail before the last byte
        try {
          await client.send(Buffer.from([byte]));
        } catch {
          break; // the server already closed the connection
        }
        await new Promise(setImmediate);
      }
      const f = await client.nextFrame();
      assert.strictEqual(f.code, 1002);
      await client.awaitClose();
      assert.strictEqual(errors.length, 1);
      assert.strictEqual(errors[0].code, 'WS_ERR_INVALID_OPCODE');
    });

    nativeOnly.it('with no error listener: the connection is closed with the right code and the process lives', async function () {
      const { client, ws } = await open();
      assert.strictEqual(ws.listenerCount('error'), 0);
      const closed = new Promise((resolve) => ws.on('close', resolve));
      await client.send(text('x', { rsv3: true }));
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.code, 1002);
      assert.strictEqual(await closed, 1006);
      await client.awaitClose();
    });
  });
});
