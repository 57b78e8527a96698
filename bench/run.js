'use strict';

// Runs ws-native and ws side by side, scenario by scenario, in one run: each server pinned to
// core 0, bench/build/loadgen pinned to core 1, a fresh server process for every measurement.
// With --repeat N every scenario runs N times per server, alternating ws-native and ws, and the
// table shows medians. Then bench/codec-compare.js measures the codec alone (skip: --no-codec).
//
// Usage: node bench/run.js [--only ws|ws-native|ws-native/stream|uWS.js|floor] [--duration SEC]
//                          [--quick] [--binary] [--repeat N] [--codec | --no-codec]
//                          [--with-stream] [--with-uws] [--filter TEXT] [--json]
// --filter runs only the scenarios whose name contains TEXT (case-insensitive).
// --with-uws adds uWebSockets.js (installed on demand into a cache folder, see bench/uws.js)
// on every row it serves, and Node's handshake floor (bench/upgrade-floor-server.js) on the
// handshake row; both run in turn with the others, so they share the run's noise.

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { canPin, pinned, median, freePort, rssKiB } = require('./common');

const ROOT = path.join(__dirname, '..');
const LOADGEN = path.join(__dirname, 'build', 'loadgen');
const RESULTS = path.join(__dirname, 'results.json');
const CODEC_COMPARE = path.join(__dirname, 'codec-compare.js');
const START_TIMEOUT_MS = 10000;

// ws-native runs with its default transport (native where eligible); --with-stream adds a
// column for its stream transport (every byte through Node's socket), for comparison.
// --with-uws adds the last two. A server with `serves` runs only the scenarios it accepts.
const NATIVE_ECHO = path.join(ROOT, 'examples', 'echo-server.js');
const SERVERS = [
  { name: 'ws-native', script: NATIVE_ECHO },
  {
    name: 'ws-native/stream',
    script: NATIVE_ECHO,
    args: ['--transport', 'stream'],
    optional: 'stream'
  },
  { name: 'ws', script: path.join(__dirname, 'ws-echo-server.js') },
  // No deflate rows: uWS's compression settings (shared or dedicated compressors of fixed
  // window sizes) have no counterpart to ws's `perMessageDeflate: true`.
  {
    name: 'uWS.js',
    script: path.join(__dirname, 'uws-echo-server.js'),
    impl: 'uws',
    optional: 'uws',
    serves: (sc) => !sc.deflate
  },
  // The floor for a server attached to an http.Server: Node's 'upgrade' path and a fixed 101.
  {
    name: 'floor',
    script: path.join(__dirname, 'upgrade-floor-server.js'),
    optional: 'uws',
    serves: (sc) => sc.mode === 'handshake' && !sc.deflate && !sc.portMode
  }
];

const serves = (server, sc) => !server.serves || server.serves(sc);

const KiB = 1024;
const MiB = 1024 * KiB;

// kind 'rate': loadgen's figure, higher is better, ratio ws-native/ws.
// kind 'rss': server KB per idle connection, lower is better, ratio ws/ws-native.
// deflate: both servers start with --deflate and loadgen offers permessage-deflate; a server
// that refuses the flag shows "not supported", one that does not negotiate "not negotiated".
const SCENARIOS = [
  { name: '50 conns, 16 B, 32 in flight', mode: 'echo', conns: 50, size: 16, inflight: 32 },
  { name: '50 conns, 1 KiB, 32 in flight', mode: 'echo', conns: 50, size: KiB, inflight: 32 },
  { name: '50 conns, 64 KiB, 4 in flight', mode: 'echo', conns: 50, size: 64 * KiB, inflight: 4 },
  { name: '50 conns, 1 MiB, 2 in flight', mode: 'echo', conns: 50, size: MiB, inflight: 2 },
  { name: '50 conns, 16 B, 1 in flight', mode: 'echo', conns: 50, size: 16, inflight: 1 },
  { name: '1 conn ping-pong, 16 B', mode: 'echo', conns: 1, size: 16, inflight: 1 },
  // wss: every server serves TLS its own way (ws-native and ws on an https.Server, Node's
  // TLSSocket under them; uWS with its own OpenSSL), loadgen --tls on the other side.
  {
    name: 'wss: 50 conns, 16 B, 32 in flight',
    mode: 'echo',
    conns: 50,
    size: 16,
    inflight: 32,
    tls: true
  },
  {
    name: 'wss: 50 conns, 64 KiB, 4 in flight',
    mode: 'echo',
    conns: 50,
    size: 64 * KiB,
    inflight: 4,
    tls: true
  },
  {
    name: 'wss: 200 conns, 1 KiB, 1 in flight',
    mode: 'echo',
    conns: 200,
    size: KiB,
    inflight: 1,
    tls: true
  },
  { name: 'handshakes, 32 parallel', mode: 'handshake', conns: 32 },
  // new WebSocketServer({ port }): ws-native's native listener (ws and uWS own theirs in
  // every row).
  { name: 'handshakes, 32 parallel, port mode', mode: 'handshake', conns: 32, portMode: true },
  { name: 'RSS per idle conn', mode: 'idle', conns: 10000 },
  // The same, once RSS has settled (the lowest over 40 s idle): by then V8's memory reducer
  // has given back the young generation that the handshakes grew, so what is left is what
  // the connections keep.
  { name: 'RSS per idle conn, settled', mode: 'idle', conns: 10000, settle: 40 },
  // Port mode (the native listener: no net.Socket or http parser per handshake) with one
  // server-level handler, wss.on('message', (ws, data, isBinary)), instead of a closure per
  // connection; gentle and storm arrivals.
  {
    name: 'RSS per idle conn, settled, port mode, server-level handler',
    mode: 'idle',
    conns: 10000,
    settle: 40,
    portMode: true,
    serverHandler: true
  },
  {
    name: 'RSS per idle conn, 10,000 connecting at once, settled, port mode, server-level handler',
    mode: 'idle',
    conns: 10000,
    settle: 40,
    storm: true,
    portMode: true,
    serverHandler: true
  },
  // A reconnect storm: all 10,000 open at once (loadgen keeps 128 opening otherwise), so the
  // server holds many handshakes in progress together; settled as above.
  {
    name: 'RSS per idle conn, 10,000 connecting at once, settled',
    mode: 'idle',
    conns: 10000,
    settle: 40,
    storm: true
  },
  // What each further connection costs: the RSS that 10,000 more take on a server that has
  // done 3 s of handshakes (V8 has grown its young generation to its working size, a fixed
  // cost of tens of MB that the cold row spreads over the connections) and already holds
  // half as many (they fill the holes the warm-up's closed connections left in the heaps).
  { name: 'RSS per idle conn, marginal', mode: 'idle', conns: 10000, marginal: true },
  {
    name: 'deflate: 1 KiB JSON, 50 conns x 8 in flight',
    mode: 'echo',
    conns: 50,
    size: KiB,
    inflight: 8,
    payload: 'json',
    deflate: true
  },
  { name: 'deflate: RSS per idle conn', mode: 'idle', conns: 10000, deflate: true },
  {
    name: 'deflate: RSS per idle conn, settled',
    mode: 'idle',
    conns: 10000,
    deflate: true,
    settle: 40
  },
  // Connections that compressed: each sent one 1 KiB JSON message (compressed) and got its
  // echo (compressed), so each made its zlib streams (context takeover, as browsers offer it),
  // then went quiet. ws keeps those for the connection's life; ws-native parks them after
  // zlibIdleTimeout (10 s).
  {
    name: 'deflate: RSS per idle conn after one message each, settled',
    mode: 'idle',
    conns: 10000,
    deflate: true,
    touch: true,
    settle: 40
  },
  {
    name: 'deflate: RSS per idle conn, marginal',
    mode: 'idle',
    conns: 10000,
    deflate: true,
    marginal: true
  },
  // bench/broadcast-server.js: publish() against ws's loop of send(), both only while every
  // subscriber's bufferedAmount is below 64 KiB; loadgen counts deliveries.
  { name: 'broadcast: 1,000 subscribers, 64 B', mode: 'recv', conns: 1000, size: 64, broadcast: true },
  // One publish per event-loop turn (one incoming event, one publish: the common case).
  {
    name: 'broadcast: 1,000 subscribers, 64 B, one publish per turn',
    mode: 'recv',
    conns: 1000,
    size: 64,
    broadcast: true,
    batch: 1
  }
];

/** The table's name for a scenario; idle ones say how many connections were held. */
function scenarioName(sc, opts) {
  if (sc.mode !== 'idle') return sc.name;
  const count = (n) => n.toLocaleString('en-US');
  let held = sc.marginal
    ? `${count(opts.idleConns)} more held on ${count(opts.idleConns / 2)}, after 3 s of handshakes`
    : `${count(opts.idleConns)} held`;
  if (sc.settle) held += `, lowest RSS in ${sc.settle} s idle`;
  return sc.deflate ? `${sc.name} (${held}, extension negotiated)` : `${sc.name}, ${held}`;
}

function parseArgs(argv) {
  const opts = {
    only: null,
    duration: 5,
    warmup: 1,
    idleConns: 10000,
    binary: false,
    json: false,
    repeat: 1,
    codec: true,
    withStream: false,
    withUws: false
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') {
      opts.only = argv[++i];
      if (!SERVERS.some((s) => s.name === opts.only)) usage(`unknown server "${opts.only}"`);
    } else if (a === '--duration') {
      opts.duration = Number(argv[++i]);
      if (!(opts.duration > 0)) usage('--duration needs a positive number of seconds');
    } else if (a === '--quick') {
      opts.quick = true;
    } else if (a === '--binary') {
      opts.binary = true;
    } else if (a === '--json') {
      opts.json = true;
    } else if (a === '--repeat') {
      opts.repeat = Number(argv[++i]);
      if (!Number.isInteger(opts.repeat) || opts.repeat < 1) {
        usage('--repeat needs a whole number >= 1');
      }
    } else if (a === '--codec') {
      opts.codec = true;
    } else if (a === '--filter') {
      opts.filter = String(argv[++i]).toLowerCase();
    } else if (a === '--with-stream') {
      opts.withStream = true;
    } else if (a === '--with-uws') {
      opts.withUws = true;
    } else if (a === '--no-codec') {
      opts.codec = false;
    } else {
      usage(`unknown option "${a}"`);
    }
  }
  if (opts.quick) {
    if (!argv.includes('--duration')) opts.duration = 1;
    opts.warmup = 0.5;
    opts.idleConns = 2000;
  }
  return opts;
}

function usage(msg) {
  console.error(`run.js: ${msg}`);
  console.error(
    'usage: node bench/run.js [--only ws|ws-native|ws-native/stream|uWS.js|floor] [--duration SEC]\n' +
      '                         [--quick] [--binary] [--repeat N] [--codec | --no-codec]\n' +
      '                         [--with-stream] [--with-uws] [--filter TEXT] [--json]'
  );
  process.exit(2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

/**
 * The server's RSS once it has settled: the lowest of one sample per second over `seconds`.
 * V8's memory reducer gives back the young generation in one step some 20 s after allocation
 * goes quiet (when is up to V8), and ws-native parks idle zlib streams after 10 s.
 */
async function settledRssKiB(pid, seconds) {
  let low = Infinity;
  for (let t = 0; t < seconds; t++) {
    await sleep(1000);
    low = Math.min(low, rssKiB(pid));
  }
  return low;
}

/** Starts a server; resolves { child, port, banner } once it prints its listening line. */
async function startServer(server, extraArgs = []) {
  if (!fs.existsSync(server.script)) {
    throw new Error(`missing ${path.relative(ROOT, server.script)}`);
  }
  const port = await freePort();
  const [cmd, args] = pinned(0, process.execPath, [
    server.script,
    '--port',
    String(port),
    ...(server.args || []),
    ...extraArgs
  ]);
  const child = track(spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    err = (err + d).slice(-2000);
  });
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      const tail = err.trim().split('\n').slice(-3).join(' | ');
      reject(new Error(tail ? `${why}: ${tail}` : why));
    };
    const timer = setTimeout(() => fail('no listening line within 10 s'), START_TIMEOUT_MS);
    child.on('exit', (code, sig) => fail(`exited (${sig || code}) before listening`));
    child.on('error', (e) => fail(e.message));
    child.stdout.on('data', function onData(d) {
      out += d;
      const m = /listening wss?:\/\/[^\s:]+:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout.off('data', onData);
      child.stdout.resume(); // keep draining so a chatty server never blocks on its pipe
      const banner = out.split('\n').filter((l) => l && !l.startsWith('listening'));
      resolve({ child, port: Number(m[1]), banner: banner.join(' ') });
    });
  });
}

async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

function loadgenArgs(sc, port, opts) {
  const args = ['--host', '127.0.0.1', '--port', String(port), '--mode', sc.mode, '--json'];
  args.push('--conns', String(sc.mode === 'idle' ? opts.idleConns : sc.conns));
  if (sc.deflate) args.push('--deflate');
  if (sc.tls) args.push('--tls');
  if (sc.touch) args.push('--touch', '--size', String(KiB), '--payload', 'json');
  if (sc.storm) args.push('--connecting', String(opts.idleConns));
  if (sc.mode === 'echo') {
    args.push('--size', String(sc.size), '--inflight', String(sc.inflight));
    if (sc.payload) args.push('--payload', sc.payload);
    if (opts.binary && sc.payload !== 'json') args.push('--binary');
  }
  if (sc.mode !== 'idle') {
    args.push('--duration', String(opts.duration), '--warmup', String(opts.warmup));
  }
  return args;
}

/**
 * Runs loadgen to completion; for idle mode, onReady runs after "ready N" and before stdin
 * closes. Resolves loadgen's JSON report plus ready (the connection count) if any.
 */
function runLoadgen(args, timeoutMs, onReady) {
  const [cmd, cmdArgs] = pinned(1, LOADGEN, args);
  const child = track(spawn(cmd, cmdArgs, { stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  let ready = null;
  let readyHandled = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('loadgen timed out'));
    }, timeoutMs);
    child.stderr.on('data', (d) => {
      err = (err + d).slice(-2000);
    });
    child.stdout.on('data', async (d) => {
      out += d;
      const m = /^ready (\d+)$/m.exec(out);
      if (m && !readyHandled) {
        readyHandled = true;
        ready = Number(m[1]);
        try {
          if (onReady) await onReady(ready);
        } finally {
          child.stdin.end();
        }
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) {
        const tail = err.trim().split('\n').slice(-3).join(' | ');
        return reject(new Error(`loadgen exited ${code} without a report${tail ? `: ${tail}` : ''}`));
      }
      const report = JSON.parse(line);
      report.ready = ready;
      if (err.trim()) report.log = err.trim().split('\n').slice(0, 5);
      resolve(report);
    });
    if (!onReady) child.stdin.end();
  });
}

/** One measurement of one scenario against one server; never throws. */
async function measure(sc, server, opts) {
  let srv;
  try {
    if (sc.broadcast) {
      const script = path.join(__dirname, 'broadcast-server.js');
      srv = await startServer({ ...server, script }, [
        '--impl',
        server.impl || (server.name === 'ws' ? 'ws' : 'ws-native'),
        '--subscribers',
        String(sc.conns),
        '--size',
        String(sc.size),
        ...(sc.batch ? ['--batch', String(sc.batch)] : []) // (else broadcast-server.js's default)
      ]);
    } else {
      const extra = sc.deflate ? ['--deflate'] : [];
      if (sc.tls) extra.push('--tls');
      // ws's and uWS's echo servers always own their listener; ws-native's attaches to an
      // http.Server unless told otherwise.
      if (sc.portMode && server.script === NATIVE_ECHO) extra.push('--port-mode');
      if (sc.serverHandler && server.script === NATIVE_ECHO) extra.push('--server-handler');
      srv = await startServer(server, extra);
    }
  } catch (e) {
    // a server that exits at once on --deflate does not have it
    if (sc.deflate && /before listening/.test(e.message)) {
      return { error: `not supported: --deflate: ${e.message}` };
    }
    return { error: `failed to start: ${e.message}` };
  }
  const timeoutMs = (opts.duration + opts.warmup + 60) * 1000;
  try {
    if (sc.mode === 'idle') {
      await sleep(500);
      let base = null; // marginal: the connections held under the measured ones
      let releaseBase;
      const baseReleased = new Promise((resolve) => (releaseBase = resolve));
      if (sc.marginal) {
        const warmup = { mode: 'handshake', conns: 32, deflate: sc.deflate };
        await runLoadgen(
          loadgenArgs(warmup, srv.port, { ...opts, duration: 3, warmup: 0 }),
          timeoutMs
        );
        await new Promise((resolve, reject) => {
          const baseOpts = { ...opts, idleConns: Math.floor(opts.idleConns / 2) };
          base = runLoadgen(loadgenArgs(sc, srv.port, baseOpts), timeoutMs, async () => {
            resolve();
            await baseReleased;
          });
          base.catch(reject);
        });
        await sleep(1000);
      }
      let report;
      let before = NaN;
      let after = NaN;
      try {
        before = rssKiB(srv.child.pid);
        report = await runLoadgen(loadgenArgs(sc, srv.port, opts), timeoutMs, async () => {
          if (sc.settle) {
            after = await settledRssKiB(srv.child.pid, sc.settle);
          } else {
            await sleep(1000); // let the server finish its last handshakes' bookkeeping
            after = rssKiB(srv.child.pid);
          }
        });
      } finally {
        releaseBase();
        if (base) await base.catch(() => {});
      }
      const held = report.ready || 0;
      const value = held > 0 ? (after - before) / held : NaN;
      if (sc.deflate && !report.deflate_upgrades) return { error: 'deflate not negotiated', report };
      return {
        value,
        unit: 'KB/conn',
        held,
        rss_before_kib: before,
        rss_after_kib: after,
        banner: srv.banner,
        report
      };
    }
    const report = await runLoadgen(loadgenArgs(sc, srv.port, opts), timeoutMs);
    if (sc.deflate && !report.deflate_upgrades) {
      return { error: 'deflate not negotiated', report };
    }
    const value = sc.mode === 'handshake' ? report.handshakes_per_s : report.msgs_per_s;
    const unit = sc.mode === 'handshake' ? 'hs/s' : sc.broadcast ? 'deliveries/s' : 'msg/s';
    return { value, unit, banner: srv.banner, report };
  } catch (e) {
    return { error: e.message };
  } finally {
    await stopServer(srv.child);
  }
}

/** One server's runs of one scenario: medians of the runs that worked, their errors summed. */
function summarise(runs) {
  const ok = runs.filter((r) => !r.error);
  if (ok.length === 0) return { error: runs[0].error, runs };
  return {
    value: median(ok.map((r) => r.value)),
    unit: ok[0].unit,
    mb_per_s: median(ok.map((r) => (r.report ? r.report.mb_per_s : NaN))),
    errors: ok.reduce((n, r) => n + ((r.report && r.report.errors) || 0), 0),
    failed_runs: runs.length - ok.length,
    runs
  };
}

function fmtRate(v) {
  if (!Number.isFinite(v)) return '-';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

/** A table cell for a single run or a summary of runs (same fields). */
function cell(sc, r) {
  if (!r) return 'skipped';
  if (r.error) {
    for (const short of ['failed to start', 'not supported', 'deflate not negotiated']) {
      if (r.error.startsWith(short)) return short.replace('deflate ', '');
    }
    return 'error';
  }
  const errors = r.errors !== undefined ? r.errors : r.report && r.report.errors;
  let notes = errors ? ` (${errors} err)` : '';
  if (r.failed_runs) notes += ` (${r.failed_runs} of ${r.runs.length} runs failed)`;
  if (sc.mode === 'idle') return `${r.value.toFixed(2)} KB/conn${notes}`;
  let s = `${fmtRate(r.value)} ${r.unit}`;
  const mb = r.mb_per_s !== undefined ? r.mb_per_s : r.report.mb_per_s;
  if (sc.mode === 'echo' && sc.size >= 64 * KiB) s += `, ${mb.toFixed(0)} MB/s`;
  // loadgen compresses, inflates and does TLS too: say so when it, not the server, may be
  // the limit
  const reports = r.runs ? r.runs.map((x) => x.report) : [r.report];
  const cpu = median(reports.map((x) => (x ? x.loadgen_cpu : NaN)));
  if ((sc.deflate || sc.tls) && cpu >= 0.9) notes += ' (loadgen-bound)';
  return s + notes;
}

/** ws-native's advantage over another server in one pair of runs: above 1 favours ws-native. */
function runRatio(sc, native, other) {
  if (!native || !other || native.error || other.error) return NaN;
  const r = sc.mode === 'idle' ? other.value / native.value : native.value / other.value;
  return Number.isFinite(r) && r > 0 ? r : NaN;
}

/** The ratio of each pair of runs (run i of ws-native with run i of `other`, ws by default). */
function runRatios(e, other = 'ws') {
  const native = e.results['ws-native'];
  const them = e.results[other];
  if (!native || !them) return [];
  return native.runs.map((n, i) => runRatio(e, n, them.runs[i]));
}

const fmtRatio = (r, digits = 2) => (Number.isFinite(r) ? `${r.toFixed(digits)}x` : '-');

function printTable(head, rows) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cols) => `| ${cols.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

/** What the table ran on, in one line to paste next to it. */
function machine() {
  let cpu = (os.cpus()[0] || {}).model || 'unknown CPU';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  return {
    cpu,
    cores: os.cpus().length,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
    load_average: os.loadavg()[0]
  };
}

// Rough seconds per measurement beyond --duration + warm-up (server start and stop, handshakes),
// and for one idle-memory measurement per 1,000 held connections; measured on a 2-core VM.
const OVERHEAD_S = 0.7;
const IDLE_S_PER_1000 = 0.25;
const CODEC_S = 55;

function estimateSeconds(opts, servers) {
  let perRound = 0;
  for (const sc of SCENARIOS) {
    if (opts.quick && sc.settle) continue;
    const each =
      sc.mode === 'idle'
        ? 1 + (opts.idleConns / 1000) * IDLE_S_PER_1000 * (sc.marginal ? 1.5 : 1) +
          (sc.marginal ? 5 : 0) +
          (sc.settle || 0)
        : opts.duration + opts.warmup + OVERHEAD_S;
    perRound += each * servers.filter((s) => serves(s, sc)).length;
  }
  return perRound * opts.repeat + (opts.codec ? CODEC_S : 0);
}

/** Runs bench/codec-compare.js --json (its progress on our stderr); resolves its report. */
function runCodecCompare() {
  return new Promise((resolve) => {
    const [cmd, args] = pinned(0, process.execPath, [CODEC_COMPARE, '--json']);
    const child = track(spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', (e) => resolve({ error: e.message }));
    child.on('close', (code, sig) => {
      if (code !== 0) return resolve({ error: `codec-compare.js exited (${sig || code})` });
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        resolve({ error: `codec-compare.js printed no report: ${e.message}` });
      }
    });
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  execFileSync('make', ['-s', '-C', __dirname, 'loadgen'], { stdio: 'inherit' });
  const pinning = canPin('run.js');
  const wanted = {
    stream: opts.withStream,
    uws: opts.withUws
  };
  const servers = SERVERS.filter(
    (s) => (opts.only ? s.name === opts.only : !s.optional || wanted[s.optional])
  );
  // before anything is measured, so a long first install never eats into a run
  if (servers.some((s) => s.impl === 'uws')) require('./uws').ensureInstalled();
  const started = Date.now();
  const host = machine();
  const when = host.date.slice(0, 16).replace('T', ' ');
  console.log(
    `machine: ${host.cpu}, ${host.cores} cores, ${host.kernel}, Node ${host.node}, ` +
      `${when} UTC (load average ${host.load_average.toFixed(2)})`
  );
  const estimate = estimateSeconds(opts, servers);
  console.error(
    `bench: ${opts.duration} s per run + ${opts.warmup} s warm-up, ` +
      `${opts.binary ? 'binary' : 'text'} payloads, ` +
      `servers: ${servers.map((s) => s.name).join(', ')}` +
      `${opts.repeat > 1 ? `, ${opts.repeat} runs each (alternating)` : ''}` +
      `${opts.codec ? ', then the codec alone' : ''}; about ${Math.ceil(estimate / 60)} min`
  );

  const results = [];
  const banners = {};
  for (const sc of SCENARIOS) {
    const name = scenarioName(sc, opts);
    if (opts.filter && !name.toLowerCase().includes(opts.filter)) continue;
    if (opts.quick && sc.settle) continue; // (--quick is for seconds, not half minutes)
    const entry = { scenario: name, ...sc, results: {} };
    if (sc.mode === 'idle') entry.conns = opts.idleConns;
    const contenders = servers.filter((s) => serves(s, sc));
    const runs = Object.fromEntries(contenders.map((s) => [s.name, []]));
    for (let rep = 0; rep < opts.repeat; rep++) {
      for (const server of contenders) {
        const which = opts.repeat > 1 ? ` [${rep + 1}/${opts.repeat}]` : '';
        process.stderr.write(`  ${name} / ${server.name}${which} ... `);
        const r = await measure(sc, server, opts);
        runs[server.name].push(r);
        if (r.banner) banners[server.name] = r.banner;
        delete r.banner;
        process.stderr.write(`${r.error ? r.error : cell(sc, r)}\n`);
        if (r.report && r.report.log) for (const l of r.report.log) console.error(`    ${l}`);
      }
    }
    for (const server of contenders) entry.results[server.name] = summarise(runs[server.name]);
    entry.ratios = runRatios(entry);
    entry.ratio = median(entry.ratios);
    for (const [key, other] of [['Uws', 'uWS.js'], ['Floor', 'floor']]) {
      if (!entry.results[other]) continue;
      entry[`ratios${key}`] = runRatios(entry, other);
      entry[`ratio${key}`] = median(entry[`ratios${key}`]);
    }
    results.push(entry);
  }
  const benchSeconds = (Date.now() - started) / 1000;

  console.log('');
  const streamColumn = servers.some((s) => s.name === 'ws-native/stream');
  const uwsColumn = servers.some((s) => s.name === 'uWS.js');
  const head = ['scenario', 'ws-native', 'ws', 'ratio'];
  if (uwsColumn) head.push('uWS.js', 'ws-native/uWS');
  if (streamColumn) head.push('ws-native/stream', 'native/stream');
  if (opts.repeat > 1) head.push('ratio of each run');
  if (opts.repeat > 1 && uwsColumn) head.push('ws-native/uWS of each run');
  const eachRun = (ratios) => (ratios || []).map((r) => fmtRatio(r, 1)).join(' ');
  const rows = [];
  for (const e of results) {
    const row = [
      e.scenario,
      cell(e, e.results['ws-native']),
      cell(e, e.results.ws),
      fmtRatio(e.ratio)
    ];
    if (uwsColumn) row.push(cell(e, e.results['uWS.js']), fmtRatio(e.ratioUws));
    if (streamColumn) {
      const stream = e.results['ws-native/stream'];
      const native = e.results['ws-native'];
      row.push(cell(e, stream), fmtRatio(runRatio(e, native, stream)));
    }
    if (opts.repeat > 1) row.push(eachRun(e.ratios));
    if (opts.repeat > 1 && uwsColumn) row.push(eachRun(e.ratiosUws));
    rows.push(row);
    // the floor gets a row of its own under the handshake row: its figure where ws-native's
    // would be, and ws-native / floor as its ratio
    if (e.results.floor) {
      const floor = [
        `${e.scenario}: Node's floor (http.Server 'upgrade', a fixed 101)`,
        `${cell(e, e.results.floor)} (floor)`,
        '',
        fmtRatio(e.ratioFloor)
      ];
      while (floor.length < head.length) floor.push('');
      if (opts.repeat > 1) floor[head.indexOf('ratio of each run')] = eachRun(e.ratiosFloor);
      rows.push(floor);
    }
  }
  printTable(head, rows);
  console.log(
    `ratio: ws-native/ws for rates, ws/ws-native for memory (above 1 favours ws-native)` +
      (opts.repeat > 1
        ? `; medians of ${opts.repeat} runs per server, run in turn, ` +
          "and the median of the runs' ratios"
        : '') +
      `; ${opts.duration} s per run, ${opts.binary ? 'binary' : 'text'} messages` +
      (pinning ? '; server on core 0, loadgen on core 1' : '; unpinned') +
      `; ${benchSeconds.toFixed(0)} s`
  );
  if (uwsColumn) {
    console.log(
      'ws-native/uWS: the same against uWebSockets.js (uWS/ws-native for memory; uWS skips ' +
        "the deflate rows); the floor row's ratio is ws-native/floor"
    );
  }
  const failures = new Set();
  for (const e of results) {
    for (const [name, s] of Object.entries(e.results)) {
      for (const r of s.runs) if (r.error) failures.add(`${name}: ${r.error}`);
    }
  }
  for (const f of failures) console.log(`note: ${f}`);

  let codec = null;
  if (opts.codec) {
    console.error('codec alone (bench/codec-compare.js):');
    codec = await runCodecCompare();
    console.log('');
    if (codec.error) {
      console.log(`codec: ${codec.error}`);
    } else {
      console.log('The codec alone (node bench/codec-compare.js):');
      for (const l of require(CODEC_COMPARE).render(codec)) console.log(l);
    }
  }
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);

  if (opts.json) {
    const doc = {
      ...host,
      pinned: pinning,
      duration_s: opts.duration,
      warmup_s: opts.warmup,
      binary: opts.binary,
      repeat: opts.repeat,
      banners,
      scenarios: results.map((e) => ({
        scenario: e.scenario,
        mode: e.mode,
        conns: e.conns,
        size: e.size,
        inflight: e.inflight,
        payload: e.payload,
        deflate: e.deflate || false,
        results: e.results,
        ratio: fmtRatio(e.ratio),
        ratios: e.ratios.map((r) => fmtRatio(r)),
        ...(e.ratiosUws && {
          ratio_uws: fmtRatio(e.ratioUws),
          ratios_uws: e.ratiosUws.map((r) => fmtRatio(r))
        }),
        ...(e.ratiosFloor && {
          ratio_floor: fmtRatio(e.ratioFloor),
          ratios_floor: e.ratiosFloor.map((r) => fmtRatio(r))
        })
      })),
      codec
    };
    fs.writeFileSync(RESULTS, JSON.stringify(doc, null, 2) + '\n');
    console.log(`wrote ${path.relative(process.cwd(), RESULTS)}`);
  }
}

main().catch((e) => {
  console.error(e.stack || e.message);
  process.exit(1);
});
