'use strict';

// Soak test: a ws-native echo server in a child process, and a driver (ws's client) that keeps
// --conns connections opening and closing for --minutes, checking every echo end to end.
//
//   npm run soak -- --minutes 10 [--conns 200] [--deflate] [--transport auto|native|stream]
//
// Each connection lives a random 0.5-5 s and keeps 1-8 messages in flight. A message is text or
// binary, carries its connection id and sequence number, has 1 B..64 KiB of random content
// after that header (sizes spread evenly on a log scale, so there are as many 1-15 B as 4-64 KiB
// messages), and is sent fragmented (2-5 frames split anywhere, mid UTF-8 character too) one
// time in five. At the end of its life a connection either stops sending and closes once its
// echoes are in, or closes with messages still in flight (their echoes must still arrive before
// the server's close frame), or (one in ten) is terminated without a closing handshake (its
// messages in flight are then not counted either way).
//
// The server's RSS (after a forced GC) is sampled every 10 s and printed as a table. At the
// end: connections opened/closed, messages sent/verified, lost/duplicated/reordered/corrupted
// and abnormal closes (all must be 0: exit 0, else exit 1), RSS first/last/max and its slope
// over the second half of the run.

const crypto = require('crypto');
const path = require('path');
const { fork } = require('child_process');
const { parseArgs } = require('util');

const SAMPLE_MS = 10000;
const KiB = 1024;
const MiB = 1024 * KiB;

if (process.argv[2] === '--server') runServer();
else main();

// ---- the server (child process) ----------------------------------------------------------

function runServer() {
  const http = require('http');
  const { WebSocketServer } = require(path.join(__dirname, '..'));
  const { values: args } = parseArgs({
    args: process.argv.slice(3),
    options: { deflate: { type: 'boolean', default: false }, transport: { type: 'string' } }
  });
  const server = http.createServer((req, res) => res.end('soak echo server\n'));
  const wss = new WebSocketServer({ server, perMessageDeflate: args.deflate, transport: args.transport });
  const transports = {};
  const errors = {};
  wss.on('connection', (ws) => {
    transports[ws.transport] = (transports[ws.transport] || 0) + 1;
    ws.on('error', (err) => {
      errors[err.code] = (errors[err.code] || 0) + 1;
    });
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  process.on('message', (msg) => {
    if (msg.cmd !== 'stats') return;
    global.gc();
    setImmediate(() => {
      global.gc();
      const mem = process.memoryUsage();
      process.send({
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        arrayBuffers: mem.arrayBuffers,
        clients: wss.clients.size,
        errors,
        transports
      });
    });
  });
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
}

// ---- the driver --------------------------------------------------------------------------

function main() {
  const { values: args } = parseArgs({
    options: {
      minutes: { type: 'string', default: '1' },
      conns: { type: 'string', default: '200' },
      deflate: { type: 'boolean', default: false },
      transport: { type: 'string', default: 'auto' }
    }
  });
  const minutes = Number(args.minutes);
  const conns = Number(args.conns);
  if (!(minutes > 0) || !(conns > 0)) {
    console.error(
      'usage: node bench/soak.js [--minutes N] [--conns N] [--deflate] [--transport T]'
    );
    process.exit(2);
  }
  if (!['auto', 'native', 'stream'].includes(args.transport)) {
    console.error(`--transport ${args.transport}: 'auto', 'native' or 'stream'`);
    process.exit(2);
  }
  run({ durationMs: minutes * 60000, conns, deflate: args.deflate, transport: args.transport }).then(
    (ok) => process.exit(ok ? 0 : 1),
    (err) => {
      console.error(err);
      process.exit(1);
    }
  );
}

async function run({ durationMs, conns, deflate, transport }) {
  const WebSocket = require('ws');

  const child = fork(__filename, ['--server', '--transport', transport, ...(deflate ? ['--deflate'] : [])], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  });
  const { port } = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  let statsWaiter = null;
  child.on('message', (msg) => {
    if (statsWaiter !== null && msg.rss !== undefined) {
      const resolve = statsWaiter;
      statsWaiter = null;
      resolve(msg);
    }
  });
  let serverDied = null;
  child.on('exit', (code, signal) => {
    serverDied = `server exited (code ${code}, signal ${signal})`;
  });
  const serverStats = () =>
    new Promise((resolve) => {
      statsWaiter = resolve;
      child.send({ cmd: 'stats' });
    });

  const totals = {
    opened: 0,
    closed: 0,
    terminated: 0, // closed by the driver without a closing handshake
    handshakeErrors: 0,
    abnormal: 0, // closes the driver did not ask for, or with an unexpected code
    sent: 0,
    verified: 0,
    abandoned: 0, // in flight on a connection the driver terminated: not checked
    lost: 0,
    duplicated: 0,
    reordered: 0,
    corrupted: 0,
    bytes: 0
  };
  const problems = []; // the first few, for the report
  const problem = (text) => {
    if (problems.length < 10) problems.push(text);
  };

  // Random content: one pool of random bytes for binary messages and one of text mixing 1- to
  // 4-byte UTF-8 characters; a message takes a slice at a random offset.
  const binaryPool = crypto.randomBytes(128 * KiB);
  const textPool = Buffer.from(
    Array.from({ length: 40000 }, () => 'aZ09 -éß€中😀'[crypto.randomInt(12)]).join('')
  );
  const isContinuation = (byte) => (byte & 0xc0) === 0x80;

  /** A size from 1 B to 64 KiB, uniform on a log scale. */
  const randomSize = () => Math.min(64 * KiB, Math.floor(Math.exp(Math.random() * Math.log(64 * KiB + 1))) || 1);

  function makeMessage(id, seq, binary) {
    const size = randomSize();
    if (binary) {
      const bytes = Buffer.allocUnsafe(8 + size);
      bytes.writeUInt32BE(id, 0);
      bytes.writeUInt32BE(seq, 4);
      const from = crypto.randomInt(binaryPool.length - size);
      binaryPool.copy(bytes, 8, from, from + size);
      return bytes;
    }
    // Text: "id:seq:" then whole characters of the pool, about `size` bytes.
    let from = crypto.randomInt(textPool.length - size - 4);
    while (isContinuation(textPool[from])) from++;
    let to = from + size;
    while (to < textPool.length && isContinuation(textPool[to])) to++;
    return Buffer.concat([Buffer.from(`${id}:${seq}:`), textPool.subarray(from, to)]);
  }

  /** The (id, seq) a message claims; null if it cannot be read. */
  function headerOf(data, binary) {
    if (binary) {
      if (data.length < 8) return null;
      return { id: data.readUInt32BE(0), seq: data.readUInt32BE(4) };
    }
    const m = /^(\d+):(\d+):/.exec(data.subarray(0, 24).toString('latin1'));
    return m === null ? null : { id: Number(m[1]), seq: Number(m[2]) };
  }

  let running = true;
  let nextId = 1;
  const live = new Set();
  let allClosed = null; // resolves when running is false and live is empty

  function open() {
    const id = nextId++;
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: deflate });
    const conn = {
      id,
      ws,
      nextSeq: 0,
      pending: [], // sent, echo awaited, in order: { seq, binary, bytes }
      skipped: new Map(), // seq -> message passed over by a later echo
      window: 1 + crypto.randomInt(8),
      ending: null // null while active; 'drain', 'close' or 'terminate'
    };
    live.add(conn);
    totals.opened++;

    const lifetime = 500 + crypto.randomInt(4500);
    let lifeTimer = null;

    function fill() {
      while (conn.ending === null && conn.pending.length < conn.window && ws.readyState === WebSocket.OPEN) {
        sendOne();
      }
    }

    function sendOne() {
      const seq = conn.nextSeq++;
      const binary = Math.random() < 0.5;
      const bytes = makeMessage(id, seq, binary);
      conn.pending.push({ seq, binary, bytes });
      totals.sent++;
      totals.bytes += bytes.length;
      if (bytes.length > 1 && Math.random() < 0.2) {
        // Fragmented: 2-5 frames, cut anywhere (an empty frame is allowed, and text may be cut
        // in the middle of a character: only the whole message must be valid UTF-8).
        const pieces = 2 + crypto.randomInt(4);
        const cuts = Array.from({ length: pieces - 1 }, () => crypto.randomInt(bytes.length + 1)).sort((a, b) => a - b);
        let start = 0;
        for (const cut of cuts) {
          ws.send(bytes.subarray(start, cut), { binary, fin: false });
          start = cut;
        }
        ws.send(bytes.subarray(start), { binary, fin: true });
      } else {
        ws.send(bytes, { binary });
      }
    }

    function end() {
      const r = Math.random();
      if (r < 0.1) {
        conn.ending = 'terminate';
        ws.terminate();
      } else if (r < 0.55 || conn.pending.length === 0) {
        conn.ending = 'close';
        ws.close(1000);
      } else {
        conn.ending = 'drain'; // close once every echo is in
        // A connection whose echoes never come would wait forever: give up after 15 s.
        lifeTimer = setTimeout(() => ws.close(1000), 15000);
      }
    }
    conn.end = () => {
      if (conn.ending !== null) return;
      clearTimeout(lifeTimer);
      if (ws.readyState === WebSocket.CONNECTING) {
        conn.ending = 'terminate';
        ws.terminate();
        return;
      }
      conn.ending = 'drain';
      if (conn.pending.length === 0) ws.close(1000);
      else lifeTimer = setTimeout(() => ws.close(1000), 15000);
    };

    ws.on('open', () => {
      lifeTimer = setTimeout(end, lifetime);
      fill();
    });

    ws.on('message', (data, isBinary) => {
      const head = headerOf(data, isBinary);
      if (head === null || head.id !== id || head.seq >= conn.nextSeq) {
        totals.corrupted++;
        problem(`conn ${id}: an echo that was never sent (${data.length} B, ${data.subarray(0, 16).toString('hex')})`);
        return;
      }
      const check = (want) => {
        if (want.binary === isBinary && want.bytes.equals(data)) {
          totals.verified++;
        } else {
          totals.corrupted++;
          problem(`conn ${id} #${head.seq}: echo differs (${isBinary ? 'binary' : 'text'} ${data.length} B, sent ${want.bytes.length} B)`);
        }
      };
      const first = conn.pending[0];
      if (first !== undefined && first.seq === head.seq) {
        conn.pending.shift();
        check(first);
      } else if (conn.skipped.has(head.seq)) {
        totals.reordered++;
        problem(`conn ${id} #${head.seq}: echoed after a later message`);
        check(conn.skipped.get(head.seq));
        conn.skipped.delete(head.seq);
      } else if (first !== undefined && head.seq > first.seq) {
        const at = conn.pending.findIndex((m) => m.seq === head.seq);
        if (at === -1) {
          totals.duplicated++;
          problem(`conn ${id} #${head.seq}: echoed twice`);
          return;
        }
        for (const m of conn.pending.splice(0, at)) conn.skipped.set(m.seq, m);
        check(conn.pending.shift());
      } else {
        totals.duplicated++;
        problem(`conn ${id} #${head.seq}: echoed twice`);
        return;
      }
      if (conn.ending === null) fill();
      else if (conn.ending === 'drain' && conn.pending.length === 0 && ws.readyState === WebSocket.OPEN) {
        clearTimeout(lifeTimer);
        ws.close(1000);
      }
    });

    ws.on('error', (err) => {
      if (conn.ending === 'terminate') return; // ws reports its own terminate() while connecting
      if (conn.nextSeq === 0) totals.handshakeErrors++;
      problem(`conn ${id}: ${err.message}`);
    });

    ws.on('close', (code) => {
      clearTimeout(lifeTimer);
      live.delete(conn);
      totals.closed++;
      const outstanding = conn.pending.length + conn.skipped.size;
      if (conn.ending === 'terminate') {
        totals.terminated++;
        totals.abandoned += outstanding;
      } else {
        if (conn.ending === null || code !== 1000) {
          totals.abnormal++;
          problem(`conn ${id}: closed with ${code} (${conn.ending === null ? 'not asked to' : conn.ending})`);
        }
        if (outstanding > 0) {
          totals.lost += outstanding;
          problem(`conn ${id}: ${outstanding} message(s) never echoed (closed with ${code})`);
        }
      }
      if (running) open();
      else if (live.size === 0 && allClosed !== null) allClosed();
    });
  }

  // ---- the run ---------------------------------------------------------------------------

  const samples = [];
  const start = Date.now();
  const fmt = (bytes) => (bytes / MiB).toFixed(1);
  const header =
    '   t(s)  RSS(MiB)  heap(MiB)  buffers(MiB)  server conns   opened   closed       sent   verified   msgs/s';
  console.log(
    `soak: ${conns} connections for ${durationMs / 60000} min against ws-native` +
      `${deflate ? ' (permessage-deflate)' : ''}, transport '${transport}', pid ${child.pid}`
  );
  console.log(header);
  let lastVerified = 0;
  let lastT = 0;
  let loadEnd = Infinity; // samples before this index were taken under load
  async function sample(label) {
    const stats = await serverStats();
    const t = (Date.now() - start) / 1000;
    const rate = t > lastT ? (totals.verified - lastVerified) / (t - lastT) : 0;
    lastVerified = totals.verified;
    lastT = t;
    samples.push({ t, ...stats });
    console.log(
      [
        (label || t.toFixed(0)).padStart(7),
        fmt(stats.rss).padStart(9),
        fmt(stats.heapUsed).padStart(10),
        fmt(stats.arrayBuffers).padStart(13),
        String(stats.clients).padStart(13),
        String(totals.opened).padStart(8),
        String(totals.closed).padStart(8),
        String(totals.sent).padStart(10),
        String(totals.verified).padStart(10),
        rate.toFixed(0).padStart(8)
      ].join(' ')
    );
  }

  await sample();
  // Open the connections over the first second rather than all at once.
  for (let i = 0; i < conns; i++) setTimeout(open, (i * 1000) / conns);

  while (Date.now() - start < durationMs && serverDied === null) {
    const next = Math.min(SAMPLE_MS * (samples.length), durationMs) - (Date.now() - start);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next)));
    if (serverDied !== null) break;
    if (Date.now() - start < durationMs - 1000) await sample();
  }

  // Wind down: no new connections; every connection closes once its echoes are in.
  running = false;
  const closedAll = new Promise((resolve) => (allClosed = resolve));
  for (const conn of live) conn.end();
  if (live.size > 0) {
    await Promise.race([closedAll, new Promise((resolve) => setTimeout(resolve, 30000))]);
  }
  const stuck = live.size;
  if (stuck > 0) problem(`${stuck} connection(s) did not close within 30 s of the end`);
  let serverErrors = {};
  let serverLeft = 0;
  if (serverDied === null) {
    // The server forgets a connection once its TCP connection is closed: give that a moment.
    for (let i = 0; i < 50 && (await serverStats()).clients > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    loadEnd = samples.length;
    await sample('end');
    serverErrors = samples[samples.length - 1].errors;
    serverLeft = samples[samples.length - 1].clients;
    if (serverLeft > 0) problem(`the server still holds ${serverLeft} connection(s) after every client closed`);
  } else {
    problem(serverDied);
  }
  child.removeAllListeners('exit');
  child.kill();

  // ---- the report --------------------------------------------------------------------------

  const rss = samples.map((s) => s.rss);
  // The slope: samples under load (not the idle one at 0 s, not the one after the wind-down)
  // from the second half of the run.
  const loaded = samples.slice(1, loadEnd);
  const second = loaded.filter((s) => s.t >= durationMs / 2000);
  const slope = slopeKbPerMin(second);
  const elapsed = (Date.now() - start) / 1000;
  console.log('');
  console.log(`connections: ${totals.opened} opened, ${totals.closed} closed ` +
    `(${totals.terminated} terminated by the driver, ${totals.abnormal} abnormal, ` +
    `${totals.handshakeErrors} failed handshakes)`);
  const last = samples[samples.length - 1];
  if (last && last.transports) {
    console.log(
      `server transports: ${Object.entries(last.transports).map(([k, v]) => `${v} ${k}`).join(', ')}`
    );
  }
  console.log(`messages:    ${totals.sent} sent, ${totals.verified} verified ` +
    `(${(totals.bytes / MiB).toFixed(0)} MiB), ${totals.abandoned} abandoned on terminated connections, ` +
    `${(totals.verified / elapsed).toFixed(0)}/s`);
  console.log(`errors:      lost ${totals.lost}, duplicated ${totals.duplicated}, ` +
    `reordered ${totals.reordered}, corrupted ${totals.corrupted}`);
  console.log(`server RSS:  first ${fmt(rss[0])} MiB (idle), last ${fmt(rss[rss.length - 1])} MiB (after the wind-down), ` +
    `max ${fmt(Math.max(...rss))} MiB; slope over the second half ${slope.toFixed(0)} KB/min ` +
    `(${second.length} samples)`);
  console.log(`server 'error' events: ${JSON.stringify(serverErrors)}`);
  for (const p of problems) console.log(`  ! ${p}`);

  const ok =
    serverDied === null &&
    stuck === 0 &&
    serverLeft === 0 &&
    totals.lost === 0 &&
    totals.duplicated === 0 &&
    totals.reordered === 0 &&
    totals.corrupted === 0 &&
    totals.abnormal === 0 &&
    totals.verified > 0;
  console.log(ok ? 'soak: PASS' : 'soak: FAIL');
  return ok;
}

/** Least-squares slope of RSS over time, in KB per minute. */
function slopeKbPerMin(samples) {
  if (samples.length < 2) return 0;
  const n = samples.length;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const mr = samples.reduce((a, s) => a + s.rss, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.rss - mr);
    den += (s.t - mt) ** 2;
  }
  return den === 0 ? 0 : ((num / den) * 60) / 1024;
}
