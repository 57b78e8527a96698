'use strict';

// Abuse under load: one echo server (in a child process, so its memory can be measured
// alone) serves a well-behaved client that checks every echo, while attackers hammer it in
// rounds: slowloris handshakes, garbage after the upgrade, absurd and illegal frame lengths,
// unmasked frames, resets in the middle of a frame, peers that send but never read, and floods
// of empty fragments. Afterwards the good client must have got every echo right, the server
// must still accept new connections, and its memory must not grow from round to round.
//
// This file is also the server: `node --expose-gc test/abuse.test.js --abuse-server <transport>`
// (forked by the test) listens, echoes, and answers { cmd: 'stats' } over IPC.

const SERVER_FLAG = '--abuse-server';

// The transports the server side is run over. Adding one ('native') is one entry here, plus
// its option in serverOptions() below.
const transports = ['stream'];

// Server settings for the test: small enough that every limit trips within a round.
const HEADERS_TIMEOUT = 2000; // Node's http.Server: a request's headers must arrive in 2 s
const REQUEST_TIMEOUT = 3000;
const MAX_PAYLOAD = 1024 * 1024;
const MAX_BUFFERED_AMOUNT = 1024 * 1024;

function serverOptions(transport) {
  // The stream transport is what every connection uses today; another one would be selected
  // here by its option.
  return transport === 'stream' ? {} : { transport };
}

if (require.main === module && process.argv[2] === SERVER_FLAG) {
  runServer(process.argv[3]);
} else {
  defineTests();
}

// ---- the server (child process) ----------------------------------------------------------

function runServer(transport) {
  const http = require('http');
  const { WebSocketServer } = require('..');

  const server = http.createServer({
    headersTimeout: HEADERS_TIMEOUT,
    requestTimeout: REQUEST_TIMEOUT,
    connectionsCheckingInterval: 250
  });
  server.on('request', (req, res) => res.end('echo server\n'));
  const wss = new WebSocketServer({
    server,
    maxPayload: MAX_PAYLOAD,
    maxBufferedAmount: MAX_BUFFERED_AMOUNT,
    ...serverOptions(transport)
  });
  const errors = {}; // 'error' events of connections, by code
  wss.on('connection', (ws) => {
    ws.on('error', (err) => {
      errors[err.code] = (errors[err.code] || 0) + 1;
    });
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });

  process.on('message', async (msg) => {
    if (msg.cmd === 'stats') {
      // Two full collections, a turn of the loop apart, so that what is left is live.
      for (let i = 0; i < 2; i++) {
        global.gc();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const mem = process.memoryUsage();
      process.send({
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        arrayBuffers: mem.arrayBuffers,
        clients: wss.clients.size,
        errors
      });
    }
  });
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
}

// ---- the tests ---------------------------------------------------------------------------

function defineTests() {
  const assert = require('assert');
  const crypto = require('crypto');
  const net = require('net');
  const { fork } = require('child_process');
  const { once } = require('events');
  const WsClient = require('ws'); // the well-behaved client is ws's own

  const { nativeOnly } = require('./support/impl');
  const { OP, frame } = require('./support/net-helpers');
  const { connect } = require('./support/raw');

  const ROUNDS = Number(process.env.ABUSE_ROUNDS) || 5; // more: ABUSE_ROUNDS=20 npx mocha test/abuse.test.js
  const MiB = 1024 * 1024;
  // Under AddressSanitizer (scripts/asan-mocha.sh) freed memory sits in a quarantine, so RSS
  // says nothing about leaks there: the memory check is skipped.
  const CHECK_RSS = !process.env.WS_NATIVE_ASAN;

  const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const NOOP = () => {};

  /** Starts the server child; resolves with { child, port, stats() }. */
  async function startServer(transport) {
    const child = fork(__filename, [SERVER_FLAG, transport], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    });
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const [first] = await Promise.race([
      once(child, 'message'),
      exited.then((e) => Promise.reject(new Error(`server exited: ${JSON.stringify(e)}`)))
    ]);
    let pending = null;
    child.on('message', (msg) => {
      if (pending !== null && msg.rss !== undefined) {
        const resolve = pending;
        pending = null;
        resolve(msg);
      }
    });
    return {
      child,
      port: first.port,
      exited,
      stats() {
        return new Promise((resolve) => {
          pending = resolve;
          child.send({ cmd: 'stats' });
        });
      }
    };
  }

  /**
   * The well-behaved client: sends numbered messages (text and binary, 0 B to 16 KiB), 16 in
   * flight at a time, and checks every echo against what it sent, in order.
   */
  function goodClient(port) {
    const ws = new WsClient(`ws://127.0.0.1:${port}`);
    const state = {
      ws,
      sent: 0,
      verified: 0,
      mismatches: [],
      closed: null,
      stopping: false,
      expected: [],
      idle: null // resolves when stopping and nothing is in flight
    };
    const pool = crypto.randomBytes(32 * 1024);
    function sendNext() {
      const seq = state.sent++;
      const size = (seq * 7919) % (16 * 1024);
      let data;
      let binary;
      if (seq % 3 === 0) {
        binary = true;
        data = Buffer.alloc(4 + size);
        data.writeUInt32BE(seq, 0);
        pool.copy(data, 4, seq % 1024, (seq % 1024) + size);
      } else {
        binary = false;
        data = `#${seq}:` + 'abcdéfgh€😀'.repeat(Math.ceil(size / 16)).slice(0, size);
      }
      state.expected.push({ seq, binary, bytes: Buffer.from(data) });
      ws.send(data, { binary });
    }
    let onIdle = null;
    state.idle = new Promise((resolve) => (onIdle = resolve));
    ws.on('open', () => {
      for (let i = 0; i < 16; i++) sendNext();
    });
    ws.on('message', (data, isBinary) => {
      const want = state.expected.shift();
      if (want === undefined) {
        state.mismatches.push('an echo nobody sent');
      } else if (isBinary !== want.binary || !data.equals(want.bytes)) {
        if (state.mismatches.length < 5) {
          state.mismatches.push(
            `echo of #${want.seq} differs: ${isBinary ? 'binary' : 'text'} ${data.length} B ` +
              `(${data.subarray(0, 12).toString('hex')}...), expected ${want.bytes.length} B`
          );
        }
      } else {
        state.verified++;
      }
      if (!state.stopping) sendNext();
      else if (state.expected.length === 0) onIdle();
    });
    ws.on('error', (err) => state.mismatches.push(`client error: ${err.message}`));
    ws.on('close', (code) => {
      state.closed = code;
      onIdle();
    });
    return state;
  }

  // ---- the attackers; each resolves once its connection(s) ended -------------------------

  const SLOWLORIS_REQUEST =
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Version: 13\r\n' +
    Array.from({ length: 1000 }, (_, i) => `X-Slow-${i}: .\r\n`).join('');

  /**
   * `count` sockets send a handshake one byte every 50 ms, never finishing it. Resolves with
   * how many the server closed (all of them, or the test times out).
   */
  async function slowloris(port, count) {
    const sockets = [];
    const closed = [];
    for (let i = 0; i < count; i++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', NOOP);
      socket.on('data', NOOP);
      socket.sent = 0;
      sockets.push(socket);
      closed.push(new Promise((resolve) => socket.once('close', resolve))); // not once(): it rejects on 'error'
    }
    const timer = setInterval(() => {
      for (const socket of sockets) {
        if (socket.destroyed || socket.connecting) continue;
        socket.write(SLOWLORIS_REQUEST[socket.sent++ % SLOWLORIS_REQUEST.length]);
      }
    }, 50);
    try {
      await Promise.all(closed);
    } finally {
      clearInterval(timer);
    }
    return sockets.filter((s) => s.sent > 0).length;
  }

  /** The first close frame of a raw client, once its connection is gone. */
  async function closeCodeOf(client) {
    await client.awaitClose();
    const close = client.frames.find((f) => f.opcode === OP.CLOSE);
    return close === undefined ? null : close.code === undefined ? 1005 : close.code;
  }

  async function rawConnect(port) {
    const client = await connect(port);
    client.socket.on('error', NOOP);
    return client;
  }

  /** Random bytes after a valid upgrade, then a FIN: a protocol error or a plain close. */
  async function garbage(port) {
    const client = await rawConnect(port);
    const bytes = crypto.randomBytes(1 + crypto.randomInt(4096));
    // A well-formed close frame by chance would be answered with its own code: not garbage.
    if ((bytes[0] & 0x0f) === OP.CLOSE) bytes[0] ^= 0x01;
    client.send(bytes).catch(NOOP);
    client.end();
    const code = await closeCodeOf(client);
    assert.ok(
      code === null || [1002, 1007, 1009].includes(code),
      `garbage (${bytes.subarray(0, 16).toString('hex')}...): close code ${code}`
    );
  }

  /** One frame of a raw client; resolves with the close code the server answered. */
  async function oneFrame(port, bytes) {
    const client = await rawConnect(port);
    client.send(bytes).catch(NOOP);
    const code = await Promise.race([
      closeCodeOf(client),
      client.nextFrame().then((f) => (f.opcode === OP.CLOSE ? f.code : `opcode ${f.opcode}`), () => null)
    ]);
    client.destroy();
    return code;
  }

  const HUGE_LENGTH = frame({ opcode: OP.BINARY, payload: 'x', length: 2n ** 62n });
  const TOP_BIT_LENGTH = frame({ opcode: OP.BINARY, payload: 'x', length: 2n ** 63n + 5n });
  const UNMASKED = frame({ opcode: OP.TEXT, payload: 'no mask', mask: false });

  async function hugeLength(port) {
    assert.strictEqual(await oneFrame(port, HUGE_LENGTH), 1009, 'a 2^62-byte frame');
  }

  async function topBitLength(port) {
    assert.strictEqual(await oneFrame(port, TOP_BIT_LENGTH), 1002, 'a length with its top bit set');
  }

  async function unmasked(port) {
    assert.strictEqual(await oneFrame(port, UNMASKED), 1002, 'an unmasked frame');
  }

  /** Half a frame, then a TCP reset (or a plain destroy). */
  async function resetMidFrame(port, hard) {
    const client = await rawConnect(port);
    const partial = frame({ opcode: OP.BINARY, payload: crypto.randomBytes(3000), length: 60000 });
    await client.send(partial.subarray(0, 100 + crypto.randomInt(partial.length - 100)));
    await new Promise((resolve) => setImmediate(resolve));
    if (hard) client.socket.resetAndDestroy();
    else client.socket.destroy();
    await client.awaitClose();
  }

  const NON_READER_FRAME = frame({ opcode: OP.BINARY, payload: Buffer.alloc(64 * 1024, 0x5a), maskKey: Buffer.alloc(4) });
  const NON_READER_CAP = 512 * MiB;

  /**
   * Sends 64 KiB messages (each echoed) and never reads. The server must give up on it once
   * MAX_BUFFERED_AMOUNT waits; resolves with the bytes sent by then.
   */
  async function nonReader(port) {
    const client = await rawConnect(port);
    client.socket.pause();
    let sent = 0;
    while (!client.socket.destroyed && sent < NON_READER_CAP) {
      sent += NON_READER_FRAME.length;
      if (!client.socket.write(NON_READER_FRAME)) {
        // (events.once would reject on the socket's 'error' when the server drops us.)
        await Promise.race([
          new Promise((resolve) => client.socket.once('drain', resolve)),
          client.awaitClose()
        ]);
      }
    }
    client.destroy();
    assert.ok(sent < NON_READER_CAP, `a peer that never reads was not dropped after ${sent} bytes`);
    return sent;
  }

  // A text message begun, then 20,000 empty continuation frames: over maxFragments (16,384).
  const FRAGMENT_FLOOD = Buffer.concat([
    frame({ fin: false, opcode: OP.TEXT, payload: '' }),
    ...Array.from({ length: 20000 }, () => frame({ fin: false, opcode: OP.CONT, payload: '' }))
  ]);

  async function fragmentFlood(port) {
    assert.strictEqual(await oneFrame(port, FRAGMENT_FLOOD), 1008, 'empty fragments past maxFragments');
  }

  /** One round: every attacker at once; resolves with a summary. */
  async function round(port) {
    const jobs = [];
    const summary = {};
    const count = (name) => (result) => {
      summary[name] = (summary[name] || 0) + 1;
      return result;
    };
    const run = (name, n, fn) => {
      for (let i = 0; i < n; i++) jobs.push(fn(i).then(count(name)));
    };
    run('slowloris', 1, () => slowloris(port, 60));
    run('garbage', 30, () => garbage(port));
    run('hugeLength', 5, () => hugeLength(port));
    run('topBitLength', 5, () => topBitLength(port));
    run('unmasked', 5, () => unmasked(port));
    run('reset', 10, (i) => resetMidFrame(port, i % 2 === 0));
    run('nonReader', 3, () => nonReader(port));
    run('fragmentFlood', 3, () => fragmentFlood(port));
    await Promise.all(jobs);
    return summary;
  }

  for (const transport of transports) {
    nativeOnly.describe(`abuse (${transport} transport)`, function () {
      this.timeout(60000);
      let server = null;

      afterEach(async function () {
        if (server !== null) {
          server.child.kill();
          await server.exited;
          server = null;
        }
      });

      it(`a good client is unaffected by ${ROUNDS} rounds of attackers; the server stays up and its memory flat`, async function () {
        server = await startServer(transport);
        const { port } = server;
        const good = goodClient(port);
        await once(good.ws, 'open');

        const rss = [];
        const progress = [];
        for (let r = 0; r < ROUNDS; r++) {
          const before = good.verified;
          await round(port);
          const stats = await server.stats();
          rss.push(stats.rss);
          progress.push(good.verified - before);
          assert.strictEqual(good.closed, null, `the good client was closed (${good.closed}) in round ${r + 1}`);
          assert.deepStrictEqual(good.mismatches, [], `round ${r + 1}`);
        }

        // The good client: every echo right, in order, and still going.
        good.stopping = true;
        if (good.expected.length > 0) await good.idle;
        assert.deepStrictEqual(good.mismatches, []);
        assert.strictEqual(good.closed, null);
        assert.strictEqual(good.expected.length, 0);
        assert.ok(progress.every((n) => n > 0), `echoes per round: ${progress}`);

        // A new client connects and gets its echo.
        const fresh = new WsClient(`ws://127.0.0.1:${port}`);
        await once(fresh, 'open');
        fresh.send('still alive');
        const [data, isBinary] = await once(fresh, 'message');
        assert.strictEqual(data.toString(), 'still alive');
        assert.strictEqual(isBinary, false);
        fresh.close();
        good.ws.close();
        await Promise.all([once(fresh, 'close'), once(good.ws, 'close')]);

        // Every attacker's connection is gone on the server side too.
        let stats = await server.stats();
        for (let i = 0; i < 50 && stats.clients > 0; i++) {
          await delay(100);
          stats = await server.stats();
        }
        assert.strictEqual(stats.clients, 0, 'connections left on the server');
        // The non-readers were dropped for what they left unread, not for something else.
        assert.ok(
          (stats.errors.WS_ERR_BUFFER_OVERFLOW || 0) >= 3 * ROUNDS,
          `server errors: ${JSON.stringify(stats.errors)}`
        );

        const mib = rss.map((b) => (b / MiB).toFixed(1));
        this.test.title += ` [echoes ${good.verified}; server RSS per round ${mib.join(', ')} MiB]`;
        if (CHECK_RSS) {
          assert.ok(
            rss[rss.length - 1] <= rss[1] + 20 * MiB,
            `server RSS grew from round 2 to round ${ROUNDS}: ${mib.join(', ')} MiB`
          );
        }
      });
    });
  }
}
