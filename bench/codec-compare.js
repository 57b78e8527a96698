'use strict';

// The codec alone, ws-native's C next to ws's JavaScript on the same inputs: frame parsing
// (ws's Receiver vs binding.feed), masking (bufferutil vs the C mask) and UTF-8 validation
// (utf-8-validate and buffer.isUtf8 vs the C validator). The C-only figures come from
// bench/build/codec-bench, run as a child process once before and once after the JavaScript
// measurements (best of the two, so a burst of load from elsewhere does not decide them).
//
// Usage: node bench/codec-compare.js [--json]   (--json: one JSON document on stdout instead
// of the table; bench/run.js uses it and renders the table with render()).

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { setImmediate: yieldToLoop } = require('timers/promises');

const KiB = 1024;
const MiB = 1024 * KiB;
const MIN_SECONDS = 0.5; // each measurement runs at least this long ...
const BEST_OF = 3; // ... and the best of this many measurements is reported
const STREAM_BYTES = 4 * MiB; // the masked client stream each parse pass goes through
const CHUNK_BYTES = 64 * KiB; // what a socket read typically delivers
const CODEC_BENCH = path.join(__dirname, 'build', 'codec-bench');

const PARSE_CASES = [
  { name: '16 B', payload: 16, binary: false },
  { name: '1 KiB', payload: KiB, binary: false },
  { name: '64 KiB', payload: 64 * KiB, binary: true },
  { name: '1 MiB', payload: MiB, binary: true }
];

const now = () => Number(process.hrtime.bigint()) / 1e9;

/**
 * Calls fn in batches until MIN_SECONDS have passed, BEST_OF times; returns the best rate
 * in calls per second. The batch grows to what the remaining time needs, so a slow fn does
 * not overshoot by a whole doubling.
 */
function bestCallRate(fn) {
  fn(); // warm-up: page faults, JIT, caches
  let best = 0;
  for (let rep = 0; rep < BEST_OF; rep++) {
    let calls = 0;
    let batch = 1;
    let elapsed = 0;
    const start = now();
    while (elapsed < MIN_SECONDS) {
      for (let i = 0; i < batch; i++) fn();
      calls += batch;
      elapsed = now() - start;
      const perCall = elapsed / calls;
      batch = Math.max(1, Math.min(batch * 2, Math.ceil((MIN_SECONDS - elapsed) / perCall)));
    }
    best = Math.max(best, calls / elapsed);
  }
  return best;
}

// ---- inputs ----

/** xorshift32, as codec-bench.c's next_random: same seed, same bytes. */
function xorshift(seed) {
  let x = seed >>> 0;
  return () => {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    return x;
  };
}

/**
 * A client's stream of masked frames with `payload`-byte payloads, about STREAM_BYTES long.
 * Every frame has its own non-zero masking key (a zero key would let ws skip the unmask).
 */
function clientStream(payload, binary) {
  const ext = payload < 126 ? 0 : payload < 65536 ? 2 : 8;
  const frameSize = 2 + ext + 4 + payload;
  const frames = Math.max(1, Math.floor(STREAM_BYTES / frameSize));
  const wire = Buffer.alloc(frameSize * frames);
  const data = Buffer.alloc(payload);
  for (let i = 0; i < payload; i++) {
    data[i] = binary ? (i * 31 + 7) & 0xff : 0x61 + (i % 26); // binary bytes or a-z text
  }
  const random = xorshift(0x9e3779b9);
  for (let f = 0; f < frames; f++) {
    let p = f * frameSize;
    wire[p++] = 0x80 | (binary ? 0x2 : 0x1);
    if (ext === 0) {
      wire[p++] = 0x80 | payload;
    } else if (ext === 2) {
      wire[p++] = 0x80 | 126;
      wire.writeUInt16BE(payload, p);
      p += 2;
    } else {
      wire[p++] = 0x80 | 127;
      wire.writeBigUInt64BE(BigInt(payload), p);
      p += 8;
    }
    const key = (random() | 0x01010101) >>> 0;
    wire.writeUInt32BE(key, p);
    const k = [wire[p], wire[p + 1], wire[p + 2], wire[p + 3]];
    p += 4;
    for (let i = 0; i < payload; i++) wire[p + i] = data[i] ^ k[i & 3];
  }
  return { wire, frames, frameSize };
}

/** codec-bench.c's ASCII text: one sentence repeated. */
function asciiText(len) {
  const sentence = Buffer.from('The quick brown fox jumps over the lazy dog; {"id":42}\n');
  const buf = Buffer.alloc(len);
  for (let i = 0; i < len; i++) buf[i] = sentence[i % sentence.length];
  return buf;
}

/** codec-bench.c's fill_mixed, byte for byte: random words in four scripts. */
function mixedText(len) {
  const utf8 = (list) => list.map((s) => Buffer.from(s, 'utf8'));
  const latin = utf8(['a', 'e', 't', 'o', 'n', 's', 'r', 'h', 'l', 'd']);
  const cyrillic = utf8(['а', 'е', 'о', 'и', 'т', 'н', 'с', 'я']);
  const cjk = utf8(['你', '好', '世', '界', '敏', '狐']);
  const emoji = utf8(['😀', '🚀', '🦊', '🐶']);
  const random = xorshift(0x12345678);
  const buf = Buffer.alloc(len);
  let p = 0;
  const appendWord = (chars) => {
    const letters = 2 + (random() % 7);
    for (let i = 0; i < letters; i++) {
      const c = chars[random() % chars.length];
      if (len - p < c.length + 1) return;
      c.copy(buf, p);
      p += c.length;
    }
    buf[p++] = 0x20;
  };
  while (len - p > 64) {
    const r = random() % 100;
    if (r < 45) appendWord(latin);
    else if (r < 70) appendWord(cyrillic);
    else if (r < 90) appendWord(cjk);
    else appendWord(emoji);
  }
  buf.fill(0x20, p);
  const byWidth = [0, 0, 0, 0, 0];
  for (let i = 0; i < len; ) {
    const b = buf[i];
    const w = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    byWidth[w] += w;
    i += w;
  }
  const pct = (w) => Math.round((100 * byWidth[w]) / len);
  return { buf, mix: `${pct(1)}% ASCII, ${pct(2)}/${pct(3)}/${pct(4)}% 2/3/4-byte` };
}

// ---- frame parsing ----

/**
 * Runs pass() over fresh copies of the masked stream until MIN_SECONDS of passes were timed,
 * BEST_OF times; returns the best passes per second. Both parsers unmask in place, so each
 * pass starts by copying the masked stream into the work buffer, outside the clock (one clock
 * pair per pass, which is >= 0.3 ms here). The copy leaves the stream in cache, as a socket
 * read just before would. Between passes the event loop turns (ticks a socket would get).
 */
async function bestPassRate(wire, work, pass, expected) {
  const check = (n) => {
    if (n !== expected) throw new Error(`bench bug: ${n} messages per pass, expected ${expected}`);
  };
  wire.copy(work);
  check(pass()); // warm-up
  let best = 0;
  for (let rep = 0; rep < BEST_OF; rep++) {
    let timed = 0;
    let passes = 0;
    while (timed < MIN_SECONDS) {
      wire.copy(work);
      const start = now();
      const n = pass();
      timed += now() - start;
      passes++;
      check(n);
      await yieldToLoop();
    }
    best = Math.max(best, passes / timed);
  }
  return best;
}

function wsPass(chunks) {
  const { Receiver } = require('ws'); // ws/lib/receiver.js (the package exports only '.')
  // As ws's WebSocketServer sets it up (its defaults), except maxPayload 0 = no limit.
  const receiver = new Receiver({
    allowSynchronousEvents: true,
    binaryType: 'nodebuffer',
    extensions: {},
    isServer: true,
    maxPayload: 0,
    skipUTF8Validation: false
  });
  let messages = 0;
  receiver.on('message', () => messages++);
  receiver.on('error', (err) => {
    throw err;
  });
  return () => {
    messages = 0;
    for (const chunk of chunks) receiver.write(chunk); // what ws's socketOnData does
    return messages;
  };
}

function nativePass(chunks, withPayload) {
  const binding = require('../lib/binding');
  const { TABLE_HEADER, TABLE_STRIDE, EV_MESSAGE, EV_FLAG_OBJECT, STATE_FAILED } =
    binding.constants;
  const { STATE_CALL_AGAIN } = binding.constants;
  const handle = binding.createConnection(true, 0, false, true);
  const table = new Uint32Array(TABLE_HEADER + 1024 * TABLE_STRIDE); // as lib/receiver.js
  const objects = [];
  let sink = 0;
  return () => {
    let messages = 0;
    for (const chunk of chunks) {
      let offset = 0;
      let again = true;
      while (offset < chunk.length || again) {
        const count = binding.feed(handle, chunk, offset, table, objects);
        offset = table[1];
        again = (table[2] & STATE_CALL_AGAIN) !== 0;
        if (table[2] & STATE_FAILED) throw new Error('bench bug: feed failed');
        for (let i = 0; i < count; i++) {
          const base = TABLE_HEADER + i * TABLE_STRIDE;
          const word = table[base];
          if ((word & 0xff) !== EV_MESSAGE) continue;
          messages++;
          if (withPayload) {
            // The Buffer lib/receiver.js hands to 'message': an object, or a view of the chunk.
            const a = table[base + 1];
            const data =
              word & EV_FLAG_OBJECT ? objects[a] : chunk.subarray(a, a + table[base + 2]);
            sink += data.length;
          }
        }
        objects.length = 0;
      }
    }
    return sink >= 0 ? messages : -1;
  };
}

async function measureParsing(progress) {
  const rows = [];
  for (const c of PARSE_CASES) {
    const { wire, frames } = clientStream(c.payload, c.binary);
    const work = Buffer.alloc(wire.length);
    const chunks = [];
    for (let off = 0; off < work.length; off += CHUNK_BYTES) {
      chunks.push(work.subarray(off, Math.min(off + CHUNK_BYTES, work.length)));
    }
    const kind = c.binary ? 'binary' : 'text';
    const input = `${c.name} ${kind}, ${frames.toLocaleString('en-US')} frames`;
    const impls = [
      ['ws Receiver (JS)', wsPass(chunks)],
      ['ws-native feed (C), table only', nativePass(chunks, false)],
      ['ws-native feed (C) + payload Buffers', nativePass(chunks, true)]
    ];
    for (const [impl, pass] of impls) {
      progress(`parse ${c.name} / ${impl}`);
      const passesPerS = await bestPassRate(wire, work, pass, frames);
      rows.push({
        section: 'parse',
        case: c.name,
        input,
        impl,
        frames_per_s: passesPerS * frames,
        mb_per_s: (passesPerS * wire.length) / 1e6
      });
    }
  }
  return rows;
}

// ---- masking and UTF-8 ----

function measureMasking(progress) {
  const bufferutil = require('bufferutil');
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]); // codec-bench's key
  const rows = [];
  for (const size of [MiB, 16 * MiB]) {
    const src = Buffer.alloc(size);
    for (let i = 0; i < size; i++) src[i] = (i * 31 + 7) & 0xff; // codec-bench's bytes
    const dst = Buffer.alloc(size);
    const name = `${size / MiB} MiB`;
    progress(`mask ${name}`);
    rows.push({
      section: 'mask',
      case: name,
      impl: 'bufferutil.unmask (in place)',
      gb_per_s: (bestCallRate(() => bufferutil.unmask(src, mask)) * size) / 1e9
    });
    rows.push({
      section: 'mask',
      case: name,
      impl: 'bufferutil.mask (copy)',
      gb_per_s: (bestCallRate(() => bufferutil.mask(src, mask, dst, 0, size)) * size) / 1e9
    });
  }
  return rows;
}

function measureUtf8(progress) {
  const utf8Validate = require('utf-8-validate');
  const { isUtf8 } = require('buffer');
  const len = 16 * MiB;
  const mixed = mixedText(len);
  const texts = [
    ['ASCII', asciiText(len), 'ASCII'],
    ['mixed', mixed.buf, `mixed (${mixed.mix})`]
  ];
  const rows = [];
  for (const [name, buf, input] of texts) {
    if (!isUtf8(buf) || !utf8Validate(buf)) throw new Error(`bench bug: ${name} text rejected`);
    progress(`utf8 ${name}`);
    for (const [impl, fn] of [
      ['buffer.isUtf8 (ws 8 on Node >= 18.14)', () => isUtf8(buf)],
      ['utf-8-validate', () => utf8Validate(buf)]
    ]) {
      const gbPerS = (bestCallRate(fn) * len) / 1e9;
      rows.push({ section: 'utf8', case: name, input, impl, gb_per_s: gbPerS });
    }
  }
  return { rows, mix: mixed.mix };
}

// ---- codec-bench (C) ----

function runCodecBench(progress, which) {
  if (!fs.existsSync(CODEC_BENCH)) {
    progress('building bench/build/codec-bench');
    execFileSync('make', ['-s', '-C', __dirname, 'codec'], {
      stdio: ['ignore', 'ignore', 'inherit']
    });
  }
  progress(`codec-bench (C, about 10 s), ${which}`);
  const out = execFileSync(CODEC_BENCH, { encoding: 'utf8' });
  const c = { mask: {}, utf8: {}, parse: {}, raw: [out] };
  for (const m of out.matchAll(
    /^\s*(\d+) MiB\s+mask_apply\s+([\d.]+)\s+mask_copy\s+([\d.]+)\s+memcpy\s+([\d.]+)/gm
  )) {
    c.mask[`${m[1]} MiB`] = { apply: Number(m[2]), copy: Number(m[3]), memcpy: Number(m[4]) };
  }
  const ascii = /^\s*ASCII\s+([\d.]+)/m.exec(out);
  if (ascii) c.utf8.ASCII = Number(ascii[1]);
  const mixed = /^\s*mixed \(bytes: ([^)]*)\)\s+([\d.]+)/m.exec(out);
  if (mixed) {
    c.utf8.mixed = Number(mixed[2]);
    c.utf8MixLabel = mixed[1];
  }
  for (const m of out.matchAll(/^\s*(16 B|1 KiB|64 KiB|1 MiB)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/gm)) {
    c.parse[m[1]] = { frames_per_s: Number(m[3]), mb_per_s: Number(m[4]) };
  }
  return c;
}

/** The better figure of two codec-bench runs, field by field. */
function bestOf(a, b) {
  if (!a || !b) return a || b;
  const best = (x, y) => {
    if (typeof x === 'number' && typeof y === 'number') return Math.max(x, y);
    if (x && y && typeof x === 'object') {
      return Object.fromEntries(Object.keys(x).map((k) => [k, best(x[k], y[k])]));
    }
    return x !== undefined ? x : y;
  };
  return { ...best(a, b), utf8MixLabel: a.utf8MixLabel, raw: [...a.raw, ...b.raw] };
}

function tryCodecBench(progress, which) {
  try {
    return runCodecBench(progress, which);
  } catch (e) {
    console.error(`codec-compare.js: codec-bench failed, C figures left out: ${e.message}`);
    return null;
  }
}

// ---- report ----

function fmtRate(v) {
  if (!Number.isFinite(v)) return '-';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

const fmtGB = (v) => (Number.isFinite(v) ? `${v.toFixed(2)} GB/s` : '-');
const fmtRatio = (a, b) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}x` : '-';

/** The comparison as table rows: [step, input, implementation, result, vs JS]. */
function tableRows(doc) {
  const rows = [];
  const c = doc.c || { mask: {}, utf8: {}, parse: {} };
  for (const pc of PARSE_CASES) {
    const mine = doc.rows.filter((r) => r.section === 'parse' && r.case === pc.name);
    const base = mine.find((r) => r.impl.startsWith('ws '));
    for (const r of mine) {
      rows.push([
        'parse, server',
        r.input,
        r.impl,
        `${fmtRate(r.frames_per_s)} frames/s, ${r.mb_per_s.toFixed(0)} MB/s`,
        r === base ? '1x' : fmtRatio(r.frames_per_s, base && base.frames_per_s)
      ]);
    }
    const cp = c.parse[pc.name];
    if (cp) {
      rows.push([
        'parse, server',
        `${pc.name} text, ~1 MiB in one buffer`,
        'C conn_feed, no Node-API (codec-bench)',
        `${fmtRate(cp.frames_per_s)} frames/s, ${cp.mb_per_s.toFixed(0)} MB/s`,
        fmtRatio(cp.frames_per_s, base && base.frames_per_s)
      ]);
    }
  }
  for (const size of ['1 MiB', '16 MiB']) {
    const js = (impl) =>
      doc.rows.find((r) => r.section === 'mask' && r.case === size && r.impl.startsWith(impl));
    const unmask = js('bufferutil.unmask');
    const mask = js('bufferutil.mask');
    const cm = c.mask[size] || {};
    rows.push(['mask', size, unmask.impl, fmtGB(unmask.gb_per_s), '1x']);
    const applyRatio = fmtRatio(cm.apply, unmask.gb_per_s);
    rows.push(['mask', size, 'C mask_apply (in place)', fmtGB(cm.apply), applyRatio]);
    rows.push(['mask', size, mask.impl, fmtGB(mask.gb_per_s), '1x']);
    rows.push(['mask', size, 'C mask_copy', fmtGB(cm.copy), fmtRatio(cm.copy, mask.gb_per_s)]);
    rows.push(['mask', size, 'C memcpy (yardstick)', fmtGB(cm.memcpy), '']);
  }
  for (const name of ['ASCII', 'mixed']) {
    const mine = doc.rows.filter((r) => r.section === 'utf8' && r.case === name);
    const base = mine[0];
    for (const r of mine) {
      rows.push([
        'UTF-8',
        `16 MiB ${r.input}`,
        r.impl,
        fmtGB(r.gb_per_s),
        r === base ? '1x' : fmtRatio(r.gb_per_s, base.gb_per_s)
      ]);
    }
    rows.push([
      'UTF-8',
      `16 MiB ${base.input}`,
      'C utf8_is_valid',
      fmtGB(c.utf8[name]),
      fmtRatio(c.utf8[name], base.gb_per_s)
    ]);
  }
  return rows;
}

/** The table and its footnotes, as lines of text. */
function render(doc) {
  const head = ['codec step', 'input', 'implementation', 'throughput', 'vs JS'];
  const rows = tableRows(doc);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cols) => `| ${cols.map((col, i) => col.padEnd(widths[i])).join(' | ')} |`;
  const lines = [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`];
  for (const r of rows) lines.push(line(r));
  lines.push(
    `Each JS figure is the best of ${BEST_OF} measurements of >= ${MIN_SECONDS} s; each C figure ` +
      'the best of 2 codec-bench runs (before and after the JS ones) of >= 0.5 s.',
    'MB/s and GB/s are 10^6 and 10^9 bytes/s;' +
      ' parse MB/s counts wire bytes. "vs JS": against the 1x row of the same size (ws Receiver, ' +
      'bufferutil, buffer.isUtf8).',
    `parse: the same ~4 MiB stream of masked client frames (a key per frame), fed in ` +
      `${CHUNK_BYTES / KiB} KiB chunks as a socket delivers it;`,
    '  both parsers unmask in place, so each pass copies the masked stream into the work buffer ' +
      'first, outside the clock (one clock pair per pass).',
    "  ws Receiver: ws's server-side setup (Writable.write per chunk, 'message' counted by a " +
      'listener; UTF-8 via buffer.isUtf8 on this Node).',
    '  ws-native feed: binding.feed per chunk and a loop over its event table counting messages; ' +
      'no EventEmitter, no WebSocket object.',
    '  "+ payload Buffers" also makes the Buffer lib/receiver.js would emit (a view of the ' +
      'chunk, or the assembled message).',
    "  C conn_feed: codec-bench's figure without Node-API (text frames, one ~1 MiB buffer, no-op " +
      'callback).',
    "mask: bufferutil (what ws uses) on codec-bench's bytes and key; UTF-8: the same 16 MiB " +
      'texts as codec-bench, generated byte for byte.'
  );
  return lines;
}

function machine() {
  const os = require('os');
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: (os.cpus()[0] || {}).model,
    cores: os.cpus().length,
    kernel: `${os.type()} ${os.release()}`
  };
}

async function main() {
  const json = process.argv.slice(2).includes('--json');
  for (const a of process.argv.slice(2)) {
    if (a !== '--json') {
      console.error(`codec-compare.js: unknown option "${a}"`);
      console.error('usage: node bench/codec-compare.js [--json]');
      process.exit(2);
    }
  }
  const started = now();
  const progress = (what) => process.stderr.write(`  codec: ${what}\n`);
  const before = tryCodecBench(progress, 'first run');
  const rows = await measureParsing(progress);
  rows.push(...measureMasking(progress));
  const utf8 = measureUtf8(progress);
  rows.push(...utf8.rows);
  const c = bestOf(before, before && tryCodecBench(progress, 'second run'));
  if (c && c.utf8MixLabel && !c.utf8MixLabel.startsWith(utf8.mix.split('%')[0])) {
    console.error(
      `codec-compare.js: note: mixed text differs from codec-bench's (${c.utf8MixLabel})`
    );
  }
  const doc = { ...machine(), seconds: now() - started, rows, c };
  if (json) {
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    for (const l of render(doc)) console.log(l);
    console.log(`${doc.seconds.toFixed(0)} s total`);
  }
}

module.exports = { render };

if (require.main === module) {
  main().catch((e) => {
    console.error(e.stack || e.message);
    process.exit(1);
  });
}
