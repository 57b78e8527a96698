// The ESM entry point ("import" in package.json's exports). It re-exports the CommonJS module
// instead of loading lib/ a second time, so `import` and `require` share one WebSocket class
// (instanceof works across them) and one copy of the addon.

import WebSocket from './index.js';

const { WebSocketServer, Sender, createWebSocketStream, createRedisBroker } = WebSocket;

export { WebSocket, WebSocketServer, Sender, createWebSocketStream, createRedisBroker };
export default WebSocket;
