// Misuse that must not compile: `npm run test:types` fails if a line marked as expecting an
// error compiles after all (for instance because a type became `any`).

import { WebSocket, WebSocketServer, createWebSocketStream, type ErrorCode } from 'ws-native';

declare const ws: WebSocket;
declare const wssForBlob: WebSocketServer;

// @ts-expect-error BigInt is not sendable (Buffer.from throws on it)
ws.send(123n);
// @ts-expect-error publish() does not take a Blob (send() does)
wssForBlob.publish('topic', new Blob(['x']));
// @ts-expect-error nor a plain object
ws.send({ text: 'hi' });
// @ts-expect-error unknown binaryType
ws.binaryType = 'bogus';
// @ts-expect-error readyState is read-only
ws.readyState = 1;
// @ts-expect-error bufferedAmount is read-only
ws.bufferedAmount = 0;
// @ts-expect-error the close code is a number
ws.close('1000');
// @ts-expect-error send's options are checked
ws.send('x', { binray: true });
// @ts-expect-error addEventListener knows its events
ws.addEventListener('drain', () => {});
// @ts-expect-error onmessage receives a MessageEvent
ws.onmessage = (data: Buffer) => data;
// @ts-expect-error not a connection
createWebSocketStream({});

// @ts-expect-error the server needs options
new WebSocketServer();
// @ts-expect-error misspelt option
new WebSocketServer({ noServer: true, maxPayLoad: 10 });
// @ts-expect-error permessage-deflate window bits are numbers
new WebSocketServer({ noServer: true, perMessageDeflate: { serverMaxWindowBits: '15' } });
// @ts-expect-error the transport is 'auto', 'native' or 'stream'
new WebSocketServer({ noServer: true, transport: 'udp' });
// @ts-expect-error the client's transport too
new WebSocket('ws://127.0.0.1:1', { transport: 'udp' });
// @ts-expect-error heartbeat's object form has interval and timeout
new WebSocketServer({ noServer: true, heartbeat: { every: 1000 } });
// @ts-expect-error topics are strings
ws.subscribe(1);
declare const wss: WebSocketServer;
// @ts-expect-error publish needs a topic
wss.publish(Buffer.from('x'));
// @ts-expect-error onBufferOverflow is 'close' or 'drop'
new WebSocketServer({ noServer: true, onBufferOverflow: 'ignore' });
// @ts-expect-error handleProtocols returns a string or false
new WebSocketServer({ noServer: true, handleProtocols: () => 1 });
// @ts-expect-error highWaterMark is a number
new WebSocket('ws://localhost', { highWaterMark: '64k' });

// @ts-expect-error an error code that does not exist
const code: ErrorCode = 'WS_ERR_BOGUS';

export { code };
// @ts-expect-error Sender.frame() needs its options (the opcode at least)
WebSocket.Sender.frame(Buffer.from('x'));
// @ts-expect-error nor is the Sender constructed by applications
new WebSocket.Sender();
