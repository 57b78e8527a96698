'use strict';

// What send(), ping() and pong() promise beyond the bytes: their arguments, their callbacks
// (each one runs, whatever another one throws), bufferedAmount, sends that wait behind a Blob
// or a compression, and what becomes of queued sends when the connection is terminated.

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { Blob } = require('buffer');

const { WebSocket, isWs, nativeOnly } = require('./support/impl');
const { OP } = require('./support/net-helpers');
const { open, serve, cleanup } = require('./support/raw');

/**
 * Takes over 'uncaughtException' (mocha's listeners are put back afterwards) and resolves
 * with the first exception thrown out of a callback, or null if none came within `ms`.
 */
function nextUncaught(ms = 2000) {
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), ms);
    function done(err) {
      clearTimeout(timer);
      process.removeListener('uncaughtException', done);
      for (const listener of saved) process.on('uncaughtException', listener);
      resolve(err);
    }
    process.on('uncaughtException', done);
  });
}

/** A ws-native client connected to a new server; resolves with [client, serverSide]. */
async function clientPair(serverOptions, clientOptions) {
  const server = await serve(serverOptions);
  const client = new WebSocket(`ws://127.0.0.1:${server.port}`, clientOptions);
  const [serverSide] = await Promise.all([
    server.nextConnection(),
    new Promise((resolve, reject) => {
      client.once('open', resolve);
      client.once('error', reject);
    })
  ]);
  return [client, serverSide];
}

function closeOf(ws) {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve([code, reason])));
}

describe('send(), ping(), pong()', function () {
  afterEach(cleanup);

  describe('arguments', function () {
    it('send() without data (or with null) sends an empty binary message, as ws does', async function () {
      const { client, ws } = await open();
      ws.send();
      ws.send(null);
      ws.send('');
      for (const opcode of [OP.BINARY, OP.BINARY, OP.TEXT]) {
        const f = await client.nextFrame();
        assert.strictEqual(f.opcode, opcode);
        assert.strictEqual(f.payload.length, 0);
      }
    });

    // (ws takes any value and throws when it calls it, from a tick of its own.)
    for (const method of ['send', 'ping', 'pong']) {
      nativeOnly.it(`${method}() with a callback that is not a function throws a TypeError (ERR_INVALID_ARG_TYPE) and sends nothing`, async function () {
        const { client, ws } = await open();
        for (const cb of ['notfn', 42, {}, true]) {
          assert.throws(
            () => (method === 'send' ? ws.send('x', {}, cb) : ws[method]('x', false, cb)),
            (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE',
            `callback ${JSON.stringify(cb)}`
          );
        }
        // null and undefined mean no callback.
        if (method === 'send') ws.send('after', {}, null);
        else ws[method]('after', false, null);
        const f = await client.nextFrame();
        assert.deepStrictEqual(f.payload, Buffer.from('after'));
        assert.strictEqual(client.frames.length, 1, 'nothing else was sent');
      });
    }

    it('ping() with a Blob over 125 bytes throws at the call (RangeError)', async function () {
      const { ws } = await open();
      assert.throws(
        () => ws.ping(new Blob([Buffer.alloc(126)])),
        (err) =>
          err instanceof RangeError &&
          err.message === 'The data size must not be greater than 125 bytes' &&
          (isWs || err.code === 'WS_ERR_CONTROL_PAYLOAD_TOO_LARGE')
      );
    });

    it('on{open,message,close,error} are configurable, enumerable accessors', function () {
      for (const name of ['onopen', 'onmessage', 'onclose', 'onerror']) {
        const descriptor = Object.getOwnPropertyDescriptor(WebSocket.prototype, name);
        assert.strictEqual(descriptor.configurable, true, name);
        assert.strictEqual(descriptor.enumerable, true, name);
        assert.strictEqual(typeof descriptor.get, 'function', name);
        assert.strictEqual(typeof descriptor.set, 'function', name);
      }
    });
  });

  describe('messages waiting in a corked socket', function () {
    it('arrive intact and in order on two connections, of sizes around 8 KiB and past it', async function () {
      // The stream transport's small output leaves as views of a shared 8 KiB pool
      // (lib/sender.js). Here every send is flushed in a turn of its own while the server's
      // sockets are corked (Node's own: the native transport has no cork()), so the views wait
      // in them, two connections taking turns in the pool, until the last send is done.
      const sizes = [1, 37, 500, 1000, 2500, 4000, 7000, 8188, 8192, 8194, 9000, 16384];
      const pairs = [await clientPair({ transport: 'stream' }), await clientPair({ transport: 'stream' })];
      const received = pairs.map(([client]) => {
        const got = [];
        client.on('message', (data) => got.push(data.toString()));
        return got;
      });
      const payload = (which, i) => {
        const size = sizes[i % sizes.length];
        const seed = crypto.createHash('sha256').update(`${which}:${i}`).digest('hex');
        return seed.repeat(Math.ceil(size / seed.length)).slice(0, size);
      };
      const count = 5 * sizes.length;
      for (const [, serverSide] of pairs) serverSide._socket.cork();
      for (let i = 0; i < count; i++) {
        pairs[0][1].send(payload(0, i));
        pairs[1][1].send(Buffer.from(payload(1, i)));
        await new Promise(setImmediate);
      }
      for (const [, serverSide] of pairs) serverSide._socket.uncork();
      for (const got of received) {
        while (got.length < count) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      for (let i = 0; i < count; i++) {
        assert.strictEqual(received[0][i], payload(0, i), `connection 0, message ${i}`);
        assert.strictEqual(received[1][i], payload(1, i), `connection 1, message ${i}`);
      }
    });
  });

  describe('callbacks', function () {
    // (ws calls each from a write callback of its own, so each exception is thrown on its own.)
    nativeOnly.it('a callback that throws does not keep the others of its write from running; the first exception is rethrown afterwards', async function () {
      const { client, ws } = await open();
      const ran = [];
      const uncaught = nextUncaught();
      for (let i = 0; i < 10; i++) {
        ws.send(`m${i}`, (err) => {
          ran.push([i, err]);
          if (i === 2) throw new Error('thrown by callback 2');
          if (i === 5) throw new Error('thrown by callback 5');
        });
      }
      ws.ping('p', () => ran.push(['ping']));
      const err = await uncaught;
      assert.ok(err instanceof Error, 'the exception was rethrown');
      assert.strictEqual(err.message, 'thrown by callback 2');
      assert.deepStrictEqual(
        ran,
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => [i, null]).concat([['ping']])
      );
      for (let i = 0; i < 10; i++) assert.strictEqual((await client.nextFrame()).payload.toString(), `m${i}`);
    });

    nativeOnly.it("under backpressure, a throwing callback neither drops the rest nor stops 'drain'", async function () {
      const { client, ws } = await open({ highWaterMark: 64 * 1024 });
      client.socket.pause(); // nothing is read until the sends below are queued
      const ran = new Set();
      let sent = 0;
      const big = Buffer.alloc(16 * 1024);
      const uncaught = nextUncaught(10000);
      while (ws.send(big, ((i) => () => {
        ran.add(i);
        if (i === 0) throw new Error('first callback throws');
      })(sent++)));
      for (let i = 0; i < 64; i++, sent++) ws.send(big, ((n) => () => ran.add(n))(sent));
      const drained = new Promise((resolve) => ws.once('drain', resolve));
      client.socket.resume();
      const err = await uncaught;
      assert.strictEqual(err && err.message, 'first callback throws');
      await drained;
      await new Promise((resolve) => setTimeout(resolve, 10)); // (callbacks of the last write)
      while (ws.bufferedAmount > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.strictEqual(ran.size, sent, `${ran.size} of ${sent} callbacks ran`);
      // The producer that waits for 'drain' can go on.
      assert.strictEqual(ws.send('more'), true);
    });
  });

  describe('bufferedAmount', function () {
    // (ws writes each send at once, so its bufferedAmount is what the kernel did not take.)
    nativeOnly.it("counts the application data of this turn's sends (not their frames), not the close frame", async function () {
      const { ws } = await open();
      assert.strictEqual(ws.bufferedAmount, 0);
      ws.send('héllo'); // 6 bytes of UTF-8
      assert.strictEqual(ws.bufferedAmount, 6);
      ws.send(Buffer.alloc(200));
      ws.ping('ab');
      assert.strictEqual(ws.bufferedAmount, 208);
      await new Promise((resolve) => ws.send('', resolve));
      assert.strictEqual(ws.bufferedAmount, 0);
      ws.close();
      assert.strictEqual(ws.bufferedAmount, 0, 'the close frame is not application data');
    });

    // The native transport writes a listener's replies at the end of the receive batch, in C:
    // what JS counted for them must go back to 0 then, or every echo would add to it.
    it("is 0 again once the replies sent from 'message' listeners are written", async function () {
      const [client, serverSide] = await clientPair();
      serverSide.on('message', (data) => serverSide.send(data));
      const seen = [];
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => {
          client.once('message', resolve);
          client.send(Buffer.alloc(100, i));
        });
        seen.push(serverSide.bufferedAmount);
      }
      assert.deepStrictEqual(seen, [0, 0, 0, 0, 0]);
      client.close();
    });

    it('counts a compressed message at its uncompressed size until it is written', async function () {
      const [client] = await clientPair(
        { perMessageDeflate: true },
        { perMessageDeflate: { threshold: 0 } }
      );
      client.send('foo');
      assert.strictEqual(client.bufferedAmount, 3);
      await new Promise((resolve) => client.send('bar', resolve));
      assert.strictEqual(client.bufferedAmount, 0);
      client.close();
    });

    it('grows with what is sent while closing and after the close; those callbacks get an error', async function () {
      const { ws } = await open();
      ws.close();
      const first = await new Promise((resolve) => ws.send('hi', resolve));
      assert.strictEqual(first.message, 'WebSocket is not open: readyState 2 (CLOSING)');
      assert.strictEqual(ws.bufferedAmount, 2);
      ws.terminate();
      await new Promise((resolve) => ws.once('close', resolve));
      const second = await new Promise((resolve) => ws.ping('abc', false, resolve));
      assert.strictEqual(second.message, 'WebSocket is not open: readyState 3 (CLOSED)');
      ws.send();
      assert.strictEqual(ws.bufferedAmount, 5);
    });
  });

  describe('Blobs', function () {
    it('two Blobs then close(): both arrive, in order, before the close frame', async function () {
      const { client, ws } = await open();
      const results = [];
      ws.send(new Blob(['foo']), (err) => results.push(['foo', err]));
      ws.send(new Blob(['bar']), (err) => results.push(['bar', err]));
      assert.strictEqual(ws.bufferedAmount, 6, 'the Blobs being read count');
      ws.close(1000);
      const frames = [await client.nextFrame(), await client.nextFrame(), await client.nextFrame()];
      assert.deepStrictEqual(
        frames.map((f) => [f.opcode, f.payload.toString('latin1')]),
        [
          [OP.BINARY, 'foo'],
          [OP.BINARY, 'bar'],
          [OP.CLOSE, '\x03\xe8']
        ]
      );
      assert.deepStrictEqual(results, [
        ['foo', null],
        ['bar', null]
      ]);
    });

    it('terminate() while a Blob is read: its callback and those of the sends behind it get one error', async function () {
      const { ws } = await open();
      const called = [];
      const message = 'The socket was closed while the blob was being read';
      ws.send(new Blob(['foo']), (err) => called.push(['blob', err && err.message]));
      ws.send('bar');
      ws.send('baz', (err) => called.push(['baz', err && err.message]));
      ws.ping('p', false, (err) => called.push(['ping', err && err.message]));
      ws.terminate();
      await new Promise((resolve) => ws.once('close', resolve));
      while (called.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.deepStrictEqual(called, [
        ['blob', message],
        ['baz', message],
        ['ping', message]
      ]);
      if (!isWs) assert.strictEqual(ws.bufferedAmount, 0, 'what was never sent is not counted');
    });

    it("a Blob that cannot be read: every waiting send's callback gets the error, then 'error' once and the connection ends", async function () {
      if (typeof fs.openAsBlob !== 'function') this.skip(); // (Node >= 19.8)
      const file = path.join(os.tmpdir(), `ws-native-${crypto.randomBytes(4).toString('hex')}.txt`);
      fs.writeFileSync(file, 'x'.repeat(64));
      const blob = await fs.openAsBlob(file);
      fs.writeFileSync(file, 'x'.repeat(32)); // a Blob of a changed file cannot be read
      try {
        const { client, ws } = await open();
        const called = [];
        const errors = [];
        ws.on('error', (err) => errors.push(err));
        const closed = closeOf(ws);
        ws.send(blob, (err) => called.push(err));
        ws.send('after', (err) => called.push(err));
        const [code] = await closed;
        assert.strictEqual(called.length, 2);
        for (const err of called) {
          assert.strictEqual(err.name, 'NotReadableError');
          assert.strictEqual(err.message, 'The blob could not be read');
        }
        assert.deepStrictEqual(errors, [called[0]]);
        assert.strictEqual(code, 1006, 'ended without a close frame, as ws does');
        await client.awaitClose();
        assert.strictEqual(client.frames.length, 0);
      } finally {
        fs.unlinkSync(file);
      }
    });
  });

  describe('terminate()', function () {
    it('what was sent before it in the same turn is written first (as ws, which writes at once)', async function () {
      const { client, ws } = await open();
      const results = [];
      ws.send('last words', (err) => results.push(err));
      ws.terminate();
      await client.awaitClose();
      assert.deepStrictEqual(
        client.frames.map((f) => [f.opcode, f.payload.toString()]),
        [[OP.TEXT, 'last words']]
      );
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepStrictEqual(results, [null]);
    });

    it('while a large message is compressed: its callback and those behind it get ws\'s error', async function () {
      const [client] = await clientPair({ perMessageDeflate: true }, { perMessageDeflate: true });
      const called = [];
      const message = 'The socket was closed while data was being compressed';
      const big = crypto.randomBytes(256 * 1024).toString('hex'); // compressed in the thread pool
      client.send(big, (err) => called.push(['big', client.readyState, err && err.message]));
      client.send('small', (err) => called.push(['small', client.readyState, err && err.message]));
      assert.ok(client.bufferedAmount >= big.length + 5, `bufferedAmount ${client.bufferedAmount}`);
      client.terminate();
      await closeOf(client);
      while (called.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.deepStrictEqual(
        called.map(([name, , err]) => [name, err]),
        [
          ['big', message],
          ['small', message]
        ]
      );
      if (!isWs) assert.strictEqual(client.bufferedAmount, 0, 'what was never sent is not counted');
    });
  });
});
