'use strict';

// @fastify/websocket on fastify 5, its ws replaced by ws-native through the overrides: an echo
// route, and the route's socket.

const Fastify = require('fastify');
const WebSocket = require('ws');
const { wsSeenBy, addonsLoaded, deadline, run } = require('./common.cjs');

run(async () => {
  const app = Fastify({ logger: false });
  await app.register(require('@fastify/websocket'));
  let routeSocketIsWsNative = null;
  app.get('/echo', { websocket: true }, (socket, request) => {
    routeSocketIsWsNative = socket instanceof WebSocket;
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.send(`hello ${request.query.name}`);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const ws = new WebSocket(`ws://127.0.0.1:${app.server.address().port}/echo?name=ann`);
  const messages = [];
  const got = (n) => deadline(new Promise((resolve) => {
    const check = () => messages.length >= n && resolve();
    ws.on('message', (data, isBinary) => {
      messages.push(isBinary ? `binary ${data.length}` : data.toString());
      check();
    });
  }), 'the echoes');
  const done = got(3);
  await deadline(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 'open');
  ws.send('ping');
  ws.send(Buffer.alloc(100000, 1));
  await done;
  ws.close();
  await app.close();
  return { ws: wsSeenBy('@fastify/websocket'), messages, routeSocketIsWsNative, addons: addonsLoaded() };
});
