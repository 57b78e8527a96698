'use strict';

// Cross-process topic fan-out through Redis: P processes, each a WebSocketServer joined by
// createRedisBroker() with C subscribed clients (in the same process, over loopback); one
// process publishes N messages and every client of every process must get all of them.
// Reports deliveries/s (messages received by clients, all processes) and the share that crossed
// processes through Redis.
//
//   node bench/broker-fanout.js [--processes 2,4] [--clients 50] [--messages 20000] [--size 64]
//   (starts its own redis-server from the Debian package, or uses REDIS_URL)

const { fork } = require('child_process');
const { parseArgs } = require('util');

if (process.argv[2] === 'child') child();
else main();

async function main() {
  const { values } = parseArgs({
    options: {
      processes: { type: 'string', default: '2,4' },
      clients: { type: 'string', default: '50' },
      messages: { type: 'string', default: '20000' },
      size: { type: 'string', default: '64' }
    }
  });
  const clients = Number(values.clients);
  const messages = Number(values.messages);
  const size = Number(values.size);
  let redis = null;
  let url = process.env.REDIS_URL;
  if (!url) {
    redis = await require('../test/support/redis-server').startRedis();
    url = redis.url;
  }
  const results = [];
  try {
    for (const processes of values.processes.split(',').map(Number)) {
      results.push(await run({ processes, clients, messages, size, url }));
    }
  } finally {
    if (redis) await redis.destroy();
  }
  console.log(JSON.stringify({ clients, messages, size, results }, null, 2));
}

async function run({ processes, clients, messages, size, url }) {
  const children = [];
  for (let i = 0; i < processes; i++) {
    const child = fork(__filename, ['child'], { stdio: 'inherit' });
    child.inbox = [];
    child.waiters = [];
    child.on('message', (msg) => {
      const waiter = child.waiters.findIndex((w) => w.type === msg.type);
      if (waiter !== -1) child.waiters.splice(waiter, 1)[0].resolve(msg);
      else child.inbox.push(msg);
    });
    child.next = (type) => {
      const i = child.inbox.findIndex((m) => m.type === type);
      if (i !== -1) return Promise.resolve(child.inbox.splice(i, 1)[0]);
      return new Promise((resolve) => child.waiters.push({ type, resolve }));
    };
    child.send({ type: 'setup', url, clients });
    children.push(child);
  }
  try {
    await Promise.all(children.map((c) => c.next('ready')));
    // Redis subscriptions become active asynchronously: probe until every process sees one.
    const seen = Promise.all(children.map((c) => c.next('probed')));
    let probing = true;
    seen.then(() => (probing = false));
    while (probing) {
      children[0].send({ type: 'probe' });
      await Promise.race([seen, new Promise((resolve) => setTimeout(resolve, 50))]);
    }
    for (const c of children) c.send({ type: 'expect', count: clients * messages });
    await Promise.all(children.map((c) => c.next('armed')));

    const start = process.hrtime.bigint();
    children[0].send({ type: 'publish', messages, size });
    const done = await Promise.all(
      children.map((c) =>
        c.next('done').then((msg) => ({ ...msg, at: process.hrtime.bigint() }))
      )
    );
    const seconds = Number(Math.max(...done.map((d) => Number(d.at - start)))) / 1e9;
    const delivered = done.reduce((sum, d) => sum + d.received, 0);
    const remote = done.slice(1).reduce((sum, d) => sum + d.received, 0);
    const result = {
      processes,
      seconds: +seconds.toFixed(3),
      deliveriesPerSec: Math.round(delivered / seconds),
      crossProcessDeliveriesPerSec: Math.round(remote / seconds),
      crossProcessMessagesPerSec: Math.round(((processes - 1) * messages) / seconds),
      complete: delivered === processes * clients * messages,
      lost: done[0].lost
    };
    console.error(
      `${processes} processes: ${result.deliveriesPerSec} deliveries/s ` +
        `(${result.crossProcessDeliveriesPerSec}/s through Redis) in ${result.seconds} s`
    );
    return result;
  } finally {
    await Promise.all(
      children.map((c) => {
        if (c.exitCode !== null || c.signalCode !== null) return null;
        const exited = new Promise((resolve) => c.once('exit', resolve));
        c.kill('SIGTERM');
        return exited;
      })
    );
  }
}

function child() {
  const { WebSocket, WebSocketServer, createRedisBroker } = require('..');
  let wss;
  let broker;
  let received = 0;
  let expected = Infinity;
  let probed = false;

  process.on('message', async (msg) => {
    if (msg.type === 'setup') {
      wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxBackpressure: 2 ** 40 });
      await new Promise((resolve) => wss.on('listening', resolve));
      broker = createRedisBroker({ url: msg.url });
      broker.on('error', (err) => console.error(`redis: ${err.message}`));
      wss.useBroker(broker);
      wss.on('connection', (ws) => ws.subscribe('bench'));
      await broker.ready();
      const url = `ws://127.0.0.1:${wss.address().port}`;
      await Promise.all(
        Array.from({ length: msg.clients }, () => {
          const ws = new WebSocket(url);
          ws.on('message', (data) => {
            if (data.length === 1) {
              if (!probed) {
                probed = true;
                process.send({ type: 'probed' });
              }
              return;
            }
            if (++received === expected) {
              process.send({ type: 'done', received, lost: wss.brokerStats.lost });
            }
          });
          return new Promise((resolve) => ws.on('open', resolve));
        })
      );
      while (wss.subscriberCount('bench') < msg.clients) await new Promise((r) => setTimeout(r, 5));
      process.send({ type: 'ready' });
    } else if (msg.type === 'probe') {
      wss.publish('bench', Buffer.alloc(1));
    } else if (msg.type === 'expect') {
      received = 0;
      expected = msg.count;
      process.send({ type: 'armed' });
    } else if (msg.type === 'publish') {
      const payload = Buffer.alloc(msg.size, 120);
      let sent = 0;
      const batch = () => {
        for (let i = 0; i < 1000 && sent < msg.messages; i++, sent++) wss.publish('bench', payload);
        if (sent < msg.messages) setImmediate(batch);
      };
      batch();
    }
  });
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
}
