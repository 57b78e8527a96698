'use strict';

// Many cores, one port: N cluster workers share the listening socket, and a Redis broker joins
// their topics, so a message published in one worker reaches the subscribers of every worker
// (and of any other server using the same Redis).
//
//   node examples/cluster/server.js [--port 8080] [--host 127.0.0.1] [--workers N]
//                                   [--redis redis://127.0.0.1:6379]
//   (needs `npm install redis` and a running redis-server)
//
// Protocol: the URL path names a topic (ws://host:port/news subscribes to "news"). The server
// first sends {"worker": <pid>}; after that, every message a client sends is published to its
// topic and reaches all its subscribers, the sender included. Prints `listening ws://...` once
// every worker listens.

const cluster = require('cluster');
const os = require('os');
const { parseArgs } = require('util');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    redis: { type: 'string', default: process.env.REDIS_URL || 'redis://127.0.0.1:6379' }
  }
});

if (cluster.isPrimary) {
  const count = Math.max(1, Number(args.workers) || 1);
  let listening = 0;
  let stopping = false;
  cluster.on('listening', (worker, address) => {
    if (++listening === count) console.log(`listening ws://${args.host}:${address.port}`);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`worker ${worker.process.pid} died (${signal || code}); stopping`);
    stop(1);
  });
  function stop(code) {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    process.exitCode = code;
  }
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  for (let i = 0; i < count; i++) cluster.fork();
} else {
  const { WebSocketServer, createRedisBroker } = require('../..');

  const wss = new WebSocketServer({ port: Number(args.port), host: args.host });
  const broker = createRedisBroker({ url: args.redis });
  broker.on('error', (err) => console.error(`worker ${process.pid}: redis: ${err.message}`));
  wss.useBroker(broker);

  wss.on('connection', (ws, req) => {
    const topic = decodeURIComponent(req.url.split('?')[0].slice(1)) || 'default';
    ws.send(JSON.stringify({ worker: process.pid }));
    ws.subscribe(topic);
    ws.on('message', (data, isBinary) => wss.publish(topic, data, { binary: isBinary }));
  });

  const shutdown = () => {
    wss.close();
    for (const ws of wss.clients) ws.terminate();
    broker.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('disconnect', shutdown); // the primary is gone
}
