'use strict';

// Where an idle connection's memory goes: starts an echo server (examples/echo-server.js
// unless a script is given after --), opens N idle connections with bench/build/loadgen,
// waits for the server's RSS to settle (its lowest over --settle seconds, as bench/run.js's
// settled rows do), then splits what RSS grew by, per connection:
//   - by mapping (/proc/PID/smaps at the settled low): the V8 heap and other anonymous
//     memory, malloc's main arena ([heap]), malloc's thread arenas, the node binary's pages;
//   - V8's heap spaces, after a full collection;
//   - malloc's arenas, in use and held (glibc's malloc_stats(), called through gdb when gdb
//     is installed and may attach);
//   - the JS objects that every connection has (two heap snapshots, before and after).
// Linux only (smaps). The server runs on core 0, loadgen on core 1, as in bench/run.js.
//
// Usage: node bench/memory-breakdown.js [--conns N] [--storm] [--settle SEC] [--no-snapshot]
//                                       [-- SCRIPT [server flags...]]
// e.g.   node bench/memory-breakdown.js -- examples/echo-server.js --port-mode
// --storm opens all N at once (a reconnect storm) instead of 128 at a time.

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { canPin, pinned, freePort, rssKiB } = require('./common');

const ROOT = path.join(__dirname, '..');
const LOADGEN = path.join(__dirname, 'build', 'loadgen');
const PROBE = path.join(__dirname, 'memory-probe.js');
const HEAP_MAX_SIZE = 64 * 1024 * 1024; // glibc's thread arenas are heaps of this alignment

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function parseArgs(argv) {
  const opts = { conns: 10000, storm: false, settle: 40, snapshot: true, server: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--conns') opts.conns = Number(argv[++i]);
    else if (a === '--settle') opts.settle = Number(argv[++i]);
    else if (a === '--storm') opts.storm = true;
    else if (a === '--no-snapshot') opts.snapshot = false;
    else if (a === '--') {
      opts.server = argv.slice(i + 1);
      break;
    } else usage(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.conns) || opts.conns < 1) usage('--conns takes a positive integer');
  if (!(opts.settle >= 1)) usage('--settle takes seconds (at least 1)');
  if (opts.server === null || opts.server.length === 0) {
    opts.server = [path.join(ROOT, 'examples', 'echo-server.js')];
  }
  return opts;
}

function usage(msg) {
  console.error(
    `${msg}\nusage: node bench/memory-breakdown.js [--conns N] [--storm] [--settle SEC] ` +
      '[--no-snapshot] [-- SCRIPT [server flags...]]'
  );
  process.exit(2);
}

/** The process's mappings: start address → { end, perms, name, rssKiB }. */
function readSmaps(pid) {
  const maps = new Map();
  let current = null;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = {
        start: BigInt(`0x${head[1]}`),
        end: BigInt(`0x${head[2]}`),
        perms: head[3],
        name: head[4],
        rssKiB: 0
      };
      maps.set(head[1], current);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current) current.rssKiB = Number(rss[1]);
  }
  return maps;
}

/**
 * What a mapping is. A glibc thread arena is a heap of HEAP_MAX_SIZE at an address of that
 * alignment, its used part read-write and the rest reserved (---p) right after it.
 */
function mappingKind(m, next) {
  if (m.name === '[heap]') return 'malloc, main arena ([heap])';
  if (m.name === '[stack]') return 'main thread stack';
  if (m.name.startsWith('/') || m.name.startsWith('[')) {
    return m.name.endsWith('/node') || m.name === process.execPath
      ? 'the node binary (code and data pages)'
      : `file ${path.basename(m.name)}`;
  }
  const arena =
    m.start % BigInt(HEAP_MAX_SIZE) === 0n &&
    m.perms.startsWith('rw') &&
    next !== undefined &&
    next.start === m.end &&
    next.perms === '---p' &&
    next.end - m.start === BigInt(HEAP_MAX_SIZE);
  return arena ? 'malloc, thread arenas' : 'V8 heap and other anonymous memory';
}

/** RSS in KiB by mapping kind. */
function rssByKind(maps) {
  const sorted = [...maps.values()].sort((a, b) => (a.start < b.start ? -1 : 1));
  const kinds = new Map();
  sorted.forEach((m, i) => {
    const kind = mappingKind(m, sorted[i + 1]);
    kinds.set(kind, (kinds.get(kind) || 0) + m.rssKiB);
  });
  return kinds;
}

let gdbWorks;

/** glibc's malloc_stats() of the process (what it prints to the process's stderr), or null. */
async function mallocStats(server) {
  if (gdbWorks === false) return null;
  const from = server.stderr.length;
  try {
    execFileSync('gdb', ['-p', String(server.pid), '-batch', '-ex', 'call (void)malloc_stats()'], {
      stdio: 'ignore',
      timeout: 60000
    });
  } catch {
    gdbWorks = false;
    return null;
  }
  await sleep(300);
  const text = server.stderr.slice(from);
  const arenas = [...text.matchAll(/Arena (\d+):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)/g)];
  if (arenas.length === 0) {
    gdbWorks = false;
    return null;
  }
  gdbWorks = true;
  return arenas.map((m) => ({ arena: Number(m[1]), system: Number(m[2]), inUse: Number(m[3]) }));
}

/** Asks the server's probe for its figures (and a heap snapshot); resolves them. */
async function probe(server) {
  const from = server.stderr.length;
  process.kill(server.pid, 'SIGUSR2');
  for (let waited = 0; waited < 120000; waited += 100) {
    const m = /memory-probe (.*)\n/.exec(server.stderr.slice(from));
    if (m) return JSON.parse(m[1]);
    await sleep(100);
  }
  throw new Error('the server did not answer the memory probe');
}

/** Self size and count by object kind and constructor name, from a heap snapshot file. */
function objectsOf(file) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const kinds = new Map();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]];
    // Strings are counted together: their "name" is their text.
    const name = /string/.test(type) ? '' : snap.strings[snap.nodes[i + nameAt]].slice(0, 60);
    const key = name ? `${type} ${name}` : type;
    const k = kinds.get(key) || { count: 0, bytes: 0 };
    k.count++;
    k.bytes += snap.nodes[i + sizeAt];
    kinds.set(key, k);
  }
  return kinds;
}

function startServer(script, args, port, snapshotBase) {
  const [cmd, cmdArgs] = pinned(0, process.execPath, [
    '--expose-gc',
    '-r',
    PROBE,
    script,
    ...args,
    '--port',
    String(port)
  ]);
  const env = { ...process.env };
  if (snapshotBase) env.MEMORY_PROBE_SNAPSHOT = snapshotBase;
  const child = spawn(cmd, cmdArgs, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = { child, pid: child.pid, stderr: '' };
  child.stderr.on('data', (d) => (server.stderr += d));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (/listening/.test(out)) resolve(server);
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}): ${server.stderr}`)));
  });
}

function openIdle(port, opts) {
  const args = ['--host', '127.0.0.1', '--port', String(port), '--mode', 'idle'];
  args.push('--conns', String(opts.conns));
  if (opts.storm) args.push('--connecting', String(opts.conns));
  const [cmd, cmdArgs] = pinned(1, LOADGEN, args);
  const child = spawn(cmd, cmdArgs, { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (/ready \d+/.test(out)) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`loadgen exited (${code}) before "ready"`)));
  });
}

/** Phase one: RSS, mappings, V8's spaces and malloc, with no heap snapshot to disturb them. */
async function measureRss(script, serverFlags, opts) {
  const port = await freePort();
  const server = await startServer(script, serverFlags, port, null);
  let loadgen = null;
  try {
    await sleep(1000);
    const before = await probe(server);
    const mallocBefore = await mallocStats(server);
    const rssBefore = rssKiB(server.pid);
    const mapsBefore = readSmaps(server.pid);

    loadgen = await openIdle(port, opts);
    let low = Infinity;
    let mapsLow = null;
    for (let t = 0; t < opts.settle; t++) {
      await sleep(1000);
      const rss = rssKiB(server.pid);
      if (rss < low) {
        low = rss;
        mapsLow = readSmaps(server.pid);
      }
    }
    const after = await probe(server);
    const mallocAfter = await mallocStats(server);
    return { rssBefore, low, mapsBefore, mapsLow, before, after, mallocBefore, mallocAfter };
  } finally {
    if (loadgen) loadgen.kill();
    server.child.removeAllListeners('exit');
    server.child.kill();
  }
}

/** Phase two, on a fresh server: the JS objects the connections added (two heap snapshots). */
async function measureObjects(script, serverFlags, opts) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-native-memory-'));
  const port = await freePort();
  const server = await startServer(script, serverFlags, port, path.join(dir, 'heap'));
  let loadgen = null;
  try {
    await sleep(1000);
    const before = await probe(server);
    loadgen = await openIdle(port, opts);
    await sleep(1000);
    const after = await probe(server);
    return { before: objectsOf(before.snapshot), after: objectsOf(after.snapshot) };
  } finally {
    if (loadgen) loadgen.kill();
    server.child.removeAllListeners('exit');
    server.child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(LOADGEN)) {
    console.error('bench/build/loadgen is missing: make -C bench loadgen (or npm run bench once)');
    process.exit(1);
  }
  canPin('memory-breakdown');
  const [script, ...serverFlags] = opts.server;
  const m = await measureRss(script, serverFlags, opts);

  const n = opts.conns;
  const perConn = (bytes) => Math.round(bytes / n);
  const signed = (v) => (v > 0 ? `+${v}` : String(v));
  const arrival = opts.storm ? 'all at once' : '128 at a time';
  console.log(
    `${path.relative(ROOT, script)} ${serverFlags.join(' ')}: ${n} idle connections ` +
      `arriving ${arrival}, settled (lowest RSS over ${opts.settle} s)`
  );
  console.log(
    `RSS ${(m.rssBefore / 1024).toFixed(1)} MB -> ${(m.low / 1024).toFixed(1)} MB: ` +
      `${perConn((m.low - m.rssBefore) * 1024)} B per connection`
  );

  console.log('\nwhere RSS grew (smaps at the settled low), bytes per connection:');
  const kindsBefore = rssByKind(m.mapsBefore);
  const kindsLow = rssByKind(m.mapsLow);
  const rows = [...new Set([...kindsBefore.keys(), ...kindsLow.keys()])]
    .map((k) => [k, perConn(((kindsLow.get(k) || 0) - (kindsBefore.get(k) || 0)) * 1024)])
    .filter(([, v]) => v !== 0)
    .sort((a, b) => b[1] - a[1]);
  for (const [k, v] of rows) console.log(`  ${signed(v).padStart(6)}  ${k}`);

  console.log("\nV8's heap spaces after a full collection, bytes per connection (used / size):");
  for (const [name, s] of Object.entries(m.after.spaces)) {
    const b = m.before.spaces[name] || { used: 0, size: 0 };
    const used = perConn(s.used - b.used);
    const size = perConn(s.size - b.size);
    if (used !== 0 || size !== 0) {
      console.log(`  ${signed(used).padStart(6)} / ${signed(size).padStart(6)}  ${name}`);
    }
  }
  const external = perConn(m.after.usage.external - m.before.usage.external);
  console.log(`  ${signed(external).padStart(6)}           external (Buffers' memory)`);

  if (m.mallocBefore && m.mallocAfter) {
    console.log('\nmalloc (glibc malloc_stats), bytes per connection (in use / held):');
    for (const a of m.mallocAfter) {
      const b = m.mallocBefore.find((x) => x.arena === a.arena) || { system: 0, inUse: 0 };
      const label = a.arena === 0 ? 'main arena' : `thread arena ${a.arena}`;
      console.log(
        `  ${signed(perConn(a.inUse - b.inUse)).padStart(6)} / ` +
          `${signed(perConn(a.system - b.system)).padStart(6)}  ${label}`
      );
    }
  } else {
    console.log('\nmalloc: not shown (needs glibc and gdb allowed to attach)');
  }

  if (opts.snapshot) {
    // (Fewer connections: a snapshot of 10,000 takes long and says the same per connection.)
    const k = Math.min(n, 2000);
    const o = await measureObjects(script, serverFlags, { ...opts, conns: k });
    console.log(`\nJS objects every connection has (heap snapshots, ${k} connections), bytes each:`);
    const grown = [];
    for (const [key, v] of o.after) {
      const w = o.before.get(key) || { count: 0, bytes: 0 };
      const count = v.count - w.count;
      if (count >= 0.9 * k) grown.push([key, count / k, (v.bytes - w.bytes) / k]);
    }
    grown.sort((x, y) => y[2] - x[2]);
    for (const [key, per, bytes] of grown) {
      console.log(`  ${bytes.toFixed(0).padStart(6)}  ${per.toFixed(2)} x ${key}`);
    }
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
