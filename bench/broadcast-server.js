'use strict';

// The broadcast benchmark's server: once --subscribers connections are open it broadcasts
// --size-byte messages to all of them as fast as the rule allows, and loadgen (--mode recv)
// counts deliveries. The rule is the same for every library: publish while every
// subscriber's bufferedAmount is below 64 KiB, otherwise wait a turn of the event loop.
//
//   node bench/broadcast-server.js --impl ws-native|ws|uws --port P --subscribers 1000 --size 64
//
// ws-native: wss.publish(topic, data) frames the message once for everyone.
// ws: the loop of send() its README shows (each send frames the message again).
// uws: uWebSockets.js's app.publish(topic, data) (from bench/uws.js's cache folder), on its
// own listener; getBufferedAmount() is its bufferedAmount.

const http = require('http');
const path = require('path');
const { parseArgs } = require('util');

const { values: args } = parseArgs({
  options: {
    impl: { type: 'string', default: 'ws-native' },
    port: { type: 'string', default: '9002' },
    subscribers: { type: 'string', default: '1000' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '16' },
    transport: { type: 'string', default: 'auto' }
  }
});

const native = args.impl === 'ws-native';
const subscribers = Number(args.subscribers);
const batch = Number(args.batch);
const LIMIT = 64 * 1024;
const message = Buffer.alloc(Number(args.size), 'x');

if (args.impl === 'uws') {
  broadcastWithUws();
  return;
}
if (!native && args.impl !== 'ws') {
  console.error(`broadcast-server.js: unknown --impl "${args.impl}" (ws-native, ws or uws)`);
  process.exit(2);
}

const { WebSocketServer } = native ? require(path.join(__dirname, '..')) : require('ws');
const server = http.createServer();
const wss = new WebSocketServer(
  native ? { server, perMessageDeflate: false, transport: args.transport } : { server, perMessageDeflate: false }
);
const clients = [];

wss.on('connection', (ws) => {
  if (native) ws.subscribe('all');
  clients.push(ws);
  ws.on('close', () => clients.splice(clients.indexOf(ws), 1));
  ws.on('error', () => {});
  if (clients.length === subscribers) setImmediate(broadcast);
});

function everyoneBelowLimit() {
  for (const ws of clients) if (ws.bufferedAmount >= LIMIT) return false;
  return true;
}

function broadcast() {
  if (clients.length === 0) return;
  if (everyoneBelowLimit()) {
    for (let i = 0; i < batch; i++) {
      if (native) wss.publish('all', message, { binary: true });
      else for (const ws of clients) ws.send(message, { binary: true });
    }
  }
  setImmediate(broadcast);
}

server.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`listening ws://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));

/** The same rule with uWS.js: subscribers on topic 'all', one app.publish() per message. */
function broadcastWithUws() {
  const uws = require('./uws');
  const uWS = uws.load();
  console.log(uws.describe());
  const sockets = new Set();
  const app = uWS.App();
  const below = () => {
    for (const ws of sockets) if (ws.getBufferedAmount() >= LIMIT) return false;
    return true;
  };
  const publish = () => {
    if (sockets.size === 0) return;
    if (below()) for (let i = 0; i < batch; i++) app.publish('all', message, true);
    setImmediate(publish);
  };
  app.ws('/*', {
    compression: uWS.DISABLED,
    idleTimeout: 0,
    // above what the 64 KiB rule lets build up, so uWS never skips a subscriber
    maxBackpressure: 16 * 1024 * 1024,
    sendPingsAutomatically: false,
    open: (ws) => {
      ws.subscribe('all');
      sockets.add(ws);
      if (sockets.size === subscribers) setImmediate(publish);
    },
    close: (ws) => sockets.delete(ws)
  });
  app.listen('127.0.0.1', Number(args.port), (listenSocket) => {
    if (!listenSocket) {
      console.error(`uWS.js could not listen on 127.0.0.1:${args.port}`);
      process.exit(1);
    }
    console.log(`listening ws://127.0.0.1:${uWS.us_socket_local_port(listenSocket)}`);
  });
  process.on('SIGTERM', () => process.exit(0));
}
