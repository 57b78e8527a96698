'use strict';

// The closing handshake from both sides, close() argument checks, closeTimeout, terminate()
// and abrupt TCP closes, seen from a raw client.

const assert = require('assert');
const { Blob } = require('buffer');

const { isWs } = require('./support/impl');
const { OP, frame, closeFrame } = require('./support/net-helpers');
const { open, cleanup } = require('./support/raw');

/** Resolves with [code, reason, readyState at that moment] on the connection's 'close'. */
function closeEvent(ws) {
  return new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve([code, reason, ws.readyState]));
  });
}

describe('close', function () {
  afterEach(cleanup);

  describe('closing handshake', function () {
    it("server close(1000, 'done'): close frame, echo, then the server closes TCP and emits 'close'", async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      ws.close(1000, 'done');
      assert.strictEqual(ws.readyState, ws.CLOSING);

      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.masked, false);
      assert.strictEqual(f.code, 1000);
      assert.strictEqual(f.reason, 'done');
      assert.strictEqual(ws.readyState, ws.CLOSING);

      await client.sendClose(1000, 'done');
      const [code, reason, state] = await closed;
      assert.strictEqual(code, 1000);
      assert.ok(Buffer.isBuffer(reason));
      assert.deepStrictEqual(reason, Buffer.from('done'));
      assert.strictEqual(state, ws.CLOSED);

      await client.awaitClose();
      assert.strictEqual(client.remoteEnded, true, 'the server closed its side of TCP');
      assert.strictEqual(client.frames.length, 1);
    });

    it("client-initiated close: the server echoes code and reason; 'close' gets (code, reason Buffer)", async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      await client.sendClose(4000, 'bye ☃');

      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.code, 4000);
      assert.strictEqual(f.reason, 'bye ☃');

      const [code, reason, state] = await closed;
      assert.strictEqual(code, 4000);
      assert.deepStrictEqual(reason, Buffer.from('bye ☃'));
      assert.strictEqual(state, ws.CLOSED);

      await client.awaitClose();
      assert.strictEqual(client.remoteEnded, true, 'the server closed its side of TCP');
      assert.strictEqual(client.frames.length, 1);
    });

    it("close frame with no payload: the server echoes an empty close; 'close' code is 1005", async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      await client.sendClose();

      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.payload.length, 0);

      const [code, reason] = await closed;
      assert.strictEqual(code, 1005);
      assert.deepStrictEqual(reason, Buffer.alloc(0));
      await client.awaitClose();
    });

    it('close() with no arguments sends an empty close frame', async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      ws.close();
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.payload.length, 0);
      await client.sendClose();
      assert.strictEqual((await closed)[0], 1005);
      await client.awaitClose();
    });

    it("the peer's close code and reason are what 'close' reports", async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      ws.close(1000, 'mine');
      assert.strictEqual((await client.nextFrame()).code, 1000);
      await client.sendClose(1001, 'theirs');
      const [code, reason] = await closed;
      assert.strictEqual(code, 1001);
      assert.deepStrictEqual(reason, Buffer.from('theirs'));
      await client.awaitClose();
    });

    it('a second close() while CLOSING sends no second close frame', async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      ws.close(1000, 'first');
      ws.close(1001, 'second');
      assert.strictEqual((await client.nextFrame()).reason, 'first');
      await client.sendClose(1000, 'first');
      await closed;
      await client.awaitClose();
      assert.strictEqual(client.frames.length, 1);
    });

    it('replies to messages that arrived with the close frame go out before the close echo', async function () {
      const { client, ws } = await open();
      ws.on('message', (data) => ws.send(`re:${data}`));
      ws.on('ping', () => ws.send('saw ping'));
      await client.send(
        Buffer.concat([
          frame({ opcode: OP.TEXT, payload: 'one' }),
          frame({ opcode: OP.PING, payload: 'p' }),
          frame({ opcode: OP.TEXT, payload: 'two' }),
          closeFrame(1000, 'bye')
        ])
      );
      await client.awaitClose();
      const seen = client.frames.map((f) =>
        f.opcode === OP.CLOSE ? `close:${f.code}` : `${f.opcode}:${f.payload.toString()}`
      );
      assert.deepStrictEqual(seen, [
        `${OP.TEXT}:re:one`,
        `${OP.PONG}:p`,
        `${OP.TEXT}:saw ping`,
        `${OP.TEXT}:re:two`,
        'close:1000'
      ]);
    });

    it('a close frame behind messages is handled even when a listener pauses on the first', async function () {
      const { client, ws } = await open();
      const got = [];
      ws.on('message', (data) => {
        got.push(data.toString());
        if (got.length === 1) {
          ws.pause();
          setImmediate(() => ws.resume());
        }
      });
      const closed = closeEvent(ws);
      await client.send(
        Buffer.concat([
          frame({ opcode: OP.TEXT, payload: 'a' }),
          frame({ opcode: OP.TEXT, payload: 'b' }),
          closeFrame(1000, 'done')
        ])
      );
      const [code, reason] = await closed;
      assert.strictEqual(code, 1000);
      assert.strictEqual(reason.toString(), 'done');
      assert.deepStrictEqual(got, ['a', 'b']);
    });

    it('data after a close frame is ignored', async function () {
      const { client, ws } = await open();
      const events = [];
      ws.on('message', (data) => events.push(`message:${data}`));
      ws.on('error', (err) => events.push(`error:${err.code}`));
      const closed = closeEvent(ws);
      await client.send(
        Buffer.concat([
          closeFrame(1000, 'bye'),
          frame({ opcode: OP.TEXT, payload: 'ignored' }),
          frame({ opcode: 0xf, payload: 'would be a protocol error' })
        ])
      );
      const f = await client.nextFrame();
      assert.strictEqual(f.code, 1000);
      assert.strictEqual(f.reason, 'bye');
      const [code, reason] = await closed;
      assert.strictEqual(code, 1000);
      assert.deepStrictEqual(reason, Buffer.from('bye'));
      await client.awaitClose();
      assert.deepStrictEqual(events, []);
      assert.strictEqual(client.frames.length, 1);
    });
  });

  describe('close() arguments', function () {
    it('an invalid code throws a TypeError and leaves the connection open', async function () {
      const { client, ws } = await open();
      const message = 'First argument must be a valid error code number';
      for (const code of [0, 999, 1004, 1005, 1006, 1015, 2999, 5000, '1000', null]) {
        assert.throws(() => ws.close(code), { name: 'TypeError', message }, `code ${code}`);
      }
      assert.strictEqual(ws.readyState, ws.OPEN);
      ws.send('still open');
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.TEXT);
      assert.deepStrictEqual(f.payload, Buffer.from('still open'));
    });

    it('a reason over 123 bytes throws a RangeError; 123 bytes is fine', async function () {
      const { client, ws } = await open();
      const message = 'The message must not be greater than 123 bytes';
      assert.throws(() => ws.close(1000, 'x'.repeat(124)), { name: 'RangeError', message });
      assert.throws(() => ws.close(1000, '€'.repeat(42)), { name: 'RangeError', message }); // 126 bytes
      assert.throws(() => ws.close(1000, Buffer.alloc(124, 0x61)), { name: 'RangeError', message });
      assert.strictEqual(ws.readyState, ws.OPEN);

      const reason = '€'.repeat(41); // 123 bytes
      ws.close(4999, reason);
      const f = await client.nextFrame();
      assert.strictEqual(f.code, 4999);
      assert.strictEqual(f.reason, reason);
    });
  });

  // As ws takes them (nothing in RFC 6455 forbids what it sends for these).
  describe('close() arguments as ws takes them', function () {
    it('close(1000.5): the code is truncated to 1000; a truncation that is not a valid code throws', async function () {
      const { client, ws } = await open();
      // (ws sends 1004 for 1004.5, a code RFC 6455 7.4.2 reserves: "MUST NOT be set".)
      for (const code of isWs ? [999.5, 2999.5, NaN, Infinity] : [999.5, 2999.5, 1004.5, NaN, Infinity]) {
        assert.throws(() => ws.close(code), { name: 'TypeError' }, `code ${code}`);
      }
      ws.close(1000.5, 'half');
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.code, 1000);
      assert.strictEqual(f.reason, 'half');
    });

    it('close(1000, 123): a reason without a length is ignored, the code is sent alone', async function () {
      const { client, ws } = await open();
      ws.close(1000, 123);
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.payload.length, 2);
      assert.strictEqual(f.code, 1000);
    });

    it('close(1000, [1, 2]): a reason with a length that is not a string or bytes throws a TypeError', async function () {
      const { ws } = await open();
      assert.throws(
        () => ws.close(1000, [1, 2]),
        (err) =>
          err instanceof TypeError &&
          (isWs || err.message === 'Second argument must be a string or a Uint8Array')
      );
      assert.strictEqual(ws.readyState, ws.OPEN);
    });

    it("close(undefined, 'reason'): no status, so no reason either; the peer sees 1005", async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      ws.close(undefined, 'reason');
      const f = await client.nextFrame();
      assert.strictEqual(f.opcode, OP.CLOSE);
      assert.strictEqual(f.payload.length, 0);
      await client.sendClose();
      const [code] = await closed;
      assert.strictEqual(code, 1005);
    });

    it('an invalid code is refused at the call even while a Blob is still being read', async function () {
      const { client, ws } = await open();
      ws.send(new Blob(['first']));
      assert.throws(() => ws.close(1004), { name: 'TypeError' });
      assert.throws(() => ws.close(1000, 'x'.repeat(124)), { name: 'RangeError' });
      ws.close(4000, 'later');
      const frames = [await client.nextFrame(), await client.nextFrame()];
      assert.deepStrictEqual(
        frames.map((f) => f.opcode),
        [OP.BINARY, OP.CLOSE]
      );
      assert.strictEqual(frames[1].code, 4000);
    });
  });

  describe('abrupt closes', function () {
    it("closeTimeout: the peer never answers -> the socket is destroyed and 'close' is 1006", async function () {
      const { client, ws } = await open({ closeTimeout: 200 });
      const closed = closeEvent(ws);
      ws.close(1000, 'going');
      const f = await client.nextFrame();
      assert.strictEqual(f.code, 1000);
      // The raw client neither answers the close frame nor closes TCP.
      const [code, reason, state] = await closed;
      assert.strictEqual(code, 1006);
      assert.deepStrictEqual(reason, Buffer.alloc(0));
      assert.strictEqual(state, ws.CLOSED);
      await client.awaitClose();
    });

    it("terminate(): 'close' is 1006, the TCP socket is destroyed, no close frame is sent", async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      ws.terminate();
      assert.strictEqual(ws.readyState, ws.CLOSING);
      const [code, reason, state] = await closed;
      assert.strictEqual(code, 1006);
      assert.deepStrictEqual(reason, Buffer.alloc(0));
      assert.strictEqual(state, ws.CLOSED);
      await client.awaitClose();
      assert.strictEqual(client.frames.length, 0);
    });

    it("client TCP end without a close frame -> 'close' 1006", async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      client.end();
      const [code, reason, state] = await closed;
      assert.strictEqual(code, 1006);
      assert.deepStrictEqual(reason, Buffer.alloc(0));
      assert.strictEqual(state, ws.CLOSED);
      await client.awaitClose();
      assert.strictEqual(client.frames.length, 0);
    });

    it("client TCP end in the middle of a message -> 'close' 1006, no message", async function () {
      const { client, ws } = await open();
      const messages = [];
      ws.on('message', (data) => messages.push(data));
      const closed = closeEvent(ws);
      await client.send(frame({ opcode: OP.TEXT, payload: 'half', fin: false }));
      await client.send(frame({ opcode: OP.CONT, payload: 'x'.repeat(100) }).subarray(0, 20));
      client.end();
      assert.strictEqual((await closed)[0], 1006);
      assert.deepStrictEqual(messages, []);
      await client.awaitClose();
    });

    it("client socket destroyed -> 'close' 1006", async function () {
      const { client, ws } = await open();
      const closed = closeEvent(ws);
      client.destroy();
      assert.strictEqual((await closed)[0], 1006);
    });
  });
});
