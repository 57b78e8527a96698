// The ESM entry point (wrapper.mjs, via the "import" condition of package.json's exports):
// a default export and named exports with the same types as require() gives.

import WebSocket, { WebSocket as Named, WebSocketServer, Sender, createWebSocketStream, createRedisBroker } from 'ws-native';
import type { RawData } from 'ws-native';

const wss = new WebSocketServer({ port: 0 }, () => {
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const ws: Named = new WebSocket(`ws://127.0.0.1:${address.port}`);
  const stream = createWebSocketStream(ws);
  stream.on('data', (chunk: Buffer) => console.log(chunk.length));
  ws.on('message', (data: RawData, isBinary: boolean) => console.log(data, isBinary));
  ws.on('close', () => wss.close());
});

export const states: readonly [0, 1, 2, 3] = [
  WebSocket.CONNECTING,
  WebSocket.OPEN,
  Named.CLOSING,
  Named.CLOSED
];

export const broker: WebSocket.RedisBroker = createRedisBroker({ url: 'redis://127.0.0.1:6379' });

export const preEncoded: Buffer[] = Sender.frame('hello', { opcode: 1, fin: true });
