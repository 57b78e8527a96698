'use strict';

// express-ws (which depends on ws 7) on express 5, its ws replaced by ws-native through the
// overrides: an echo route.

const express = require('express');
const http = require('http');
const expressWs = require('express-ws');
const WebSocket = require('ws');
const { wsSeenBy, addonsLoaded, deadline, run } = require('./common.cjs');

run(async () => {
  const app = express();
  const server = http.createServer(app);
  expressWs(app, server);
  let routeSocketIsWsNative = null;
  app.ws('/echo', (ws) => {
    routeSocketIsWsNative = ws instanceof WebSocket;
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const ws = new WebSocket(`ws://127.0.0.1:${server.address().port}/echo`);
  await deadline(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 'open');
  const echoed = deadline(new Promise((resolve) => ws.once('message', (data) => resolve(data.toString()))), 'the echo');
  ws.send('over express-ws');
  const message = await echoed;
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  server.close();
  return { ws: wsSeenBy('express-ws'), message, routeSocketIsWsNative, addons: addonsLoaded() };
});
