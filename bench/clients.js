'use strict';

// The client side: ws-native's client on its native transport and on its stream transport,
// and ws's client (with bufferutil), in one run against the same server, a ws-native echo
// server pinned to core 0. The clients run in a process of their own pinned to core 1, so
// where the server keeps up, a row measures the client. (bench/run.js measures servers, with
// the C load generator as the client.)
//
// Rows: ping-pong, 50 connections x 1 message of 16 B in flight (messages/s and the client
// process's CPU); RSS per idle client connection, 10,000 held, settled: measured as
// bench/run.js measures a server's, the lowest RSS over 40 s of holding them less the RSS of
// the fresh process with one connection open.
//
// Usage: node bench/clients.js [--repeat N] [--quick]
//   --quick: 2 s rates, 2,000 idle connections settled over 10 s.

const { spawn } = require('child_process');
const path = require('path');

const { canPin, pinned, median } = require('./common');

const ROOT = path.join(__dirname, '..');
const CLIENTS = ['ws-native', 'ws-native/stream', 'ws'];

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const repeatAt = argv.indexOf('--repeat');
const repeat = repeatAt === -1 ? 1 : Math.max(1, parseInt(argv[repeatAt + 1], 10) || 1);

const PING_PONG = { conns: 50, seconds: quick ? 2 : 5 };
const IDLE = { conns: quick ? 2000 : 10000, settle: quick ? 10 : 40 };

// ---- the two roles, when this file runs as a child ----

function serve() {
  const { WebSocketServer } = require(ROOT);
  const wss = new WebSocketServer({ port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  wss.on('listening', () => process.send(wss.address().port));
}

function ignoreError() {}

function clientClass(name) {
  if (name === 'ws') return [require('ws').WebSocket, { perMessageDeflate: false }];
  const transport = name === 'ws-native' ? 'native' : 'stream';
  return [require(ROOT).WebSocket, { perMessageDeflate: false, transport }];
}

async function runClient(name, row, port) {
  const [WebSocket, options] = clientClass(name);
  // Once open, a connection keeps only a shared listener: the handshake's own would keep a
  // closure and a promise alive per connection, counted in the idle row as the library's.
  const connect = () =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, options);
      ws.once('error', reject);
      ws.once('open', () => {
        ws.removeListener('error', reject);
        ws.on('error', ignoreError);
        resolve(ws);
      });
    });
  const openMany = async (count) => {
    const all = [];
    for (let i = 0; i < count; i += 500) {
      all.push(...(await Promise.all(Array.from({ length: Math.min(500, count - i) }, connect))));
    }
    return all;
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  if (row === 'pingpong') {
    const sockets = await openMany(PING_PONG.conns);
    let count = 0;
    const payload = Buffer.alloc(16, 0x61);
    for (const ws of sockets) {
      ws.on('message', () => {
        count++;
        ws.send(payload);
      });
      ws.send(payload);
    }
    await sleep(1000); // warm-up
    count = 0;
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    await sleep(PING_PONG.seconds * 1000);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    return { rate: count / seconds, cpu: (cpu.user + cpu.system) / 1e6 / seconds };
  }

  // idle: RSS at its lowest while the connections sit idle (V8 gives back the young generation
  // grown by the handshakes some 20 s after they stop), less that of the fresh process.
  await openMany(1);
  await sleep(1000);
  const before = process.memoryUsage().rss;
  await openMany(IDLE.conns);
  let lowest = Infinity;
  for (let i = 0; i < IDLE.settle; i++) {
    await sleep(1000);
    lowest = Math.min(lowest, process.memoryUsage().rss);
  }
  return { kb: (lowest - before) / IDLE.conns / 1024 };
}

// ---- the parent ----

function start(args, core, onMessage) {
  const [cmd, cmdArgs] = pinned(core, process.execPath, [__filename, ...args]);
  const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('message', onMessage);
  return child;
}

function measure(name, row, port) {
  return new Promise((resolve, reject) => {
    const child = start(['--child', 'client', name, row, String(port)], 1, resolve);
    child.on('exit', (code) => code !== 0 && reject(new Error(`${name} ${row}: exit ${code}`)));
  });
}

async function main() {
  canPin('clients.js');
  let server;
  const port = await new Promise((resolve) => {
    server = start(['--child', 'server'], 0, resolve);
  });
  try {
    const results = {};
    for (const row of ['pingpong', 'idle']) {
      for (let i = 0; i < repeat; i++) {
        for (const name of CLIENTS) {
          const result = await measure(name, row, port);
          ((results[row] ??= {})[name] ??= []).push(result);
          // (the server sees the connections close with the process; give it a moment)
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
    }
    const pp = (name) => median(results.pingpong[name].map((r) => r.rate));
    const cpu = (name) => median(results.pingpong[name].map((r) => r.cpu));
    const kb = (name) => median(results.idle[name].map((r) => r.kb));
    const runs = repeat > 1 ? ` (medians of ${repeat})` : '';
    console.log(`client side, against a ws-native echo server${runs}`);
    console.log('| row | ws-native | ws-native/stream | ws 8 + bufferutil | ws-native / ws |');
    console.log('|---|---|---|---|---|');
    console.log(
      `| ping-pong ${PING_PONG.conns} x 1, 16 B (msg/s; client CPU) | ` +
        CLIENTS.map((n) => `${Math.round(pp(n))} (${Math.round(cpu(n) * 100)}%)`).join(' | ') +
        ` | ${(pp('ws-native') / pp('ws')).toFixed(2)}x |`
    );
    console.log(
      `| RSS per idle client connection, ${IDLE.conns} held, settled | ` +
        CLIENTS.map((n) => `${kb(n).toFixed(2)} KB`).join(' | ') +
        ` | ${(kb('ws') / kb('ws-native')).toFixed(2)}x less |`
    );
  } finally {
    server.kill();
  }
}

if (argv[0] === '--child') {
  if (argv[1] === 'server') serve();
  else {
    runClient(argv[2], argv[3], Number(argv[4])).then((result) => {
      process.send(result, () => process.exit(0));
    });
  }
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
