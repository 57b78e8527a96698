'use strict';

const WebSocket = require('./lib/websocket');
const WebSocketServer = require('./lib/websocket-server');

WebSocket.createWebSocketStream = require('./lib/stream');
WebSocket.Sender = require('./lib/sender').Sender;
WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
// Loaded on first use: requiring ws-native never loads the optional `redis` package.
WebSocket.createRedisBroker = function createRedisBroker(options) {
  return require('./lib/redis-broker').createRedisBroker(options);
};

module.exports = WebSocket;
