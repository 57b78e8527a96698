// A realistic use of the public API, type-checked by `npm run test:types` (never run). Each
// `expect<T>(value)` fails to compile unless value's type is exactly T, so these types can
// neither widen to `any` nor drift from what the code does.

import * as http from 'http';
import * as net from 'net';
import { Duplex } from 'stream';
import WebSocketDefault = require('ws-native');
import {
  WebSocket,
  WebSocketServer,
  createWebSocketStream,
  type ErrorCode,
  type RawData,
  type ServerOptions
} from 'ws-native';

type Equal<A, B> =
  (<V>() => V extends A ? 1 : 2) extends <V>() => V extends B ? 1 : 2 ? true : false;
function expect<T>(): <V>(value: V, ...exact: Equal<V, T> extends true ? [] : [never]) => void {
  return () => {};
}

// The module is the WebSocket class; the named exports are the same values.
expect<typeof WebSocket>()(WebSocketDefault);
expect<typeof WebSocketServer>()(WebSocketDefault.WebSocketServer);
expect<typeof WebSocketServer>()(WebSocketDefault.Server);
expect<typeof createWebSocketStream>()(WebSocketDefault.createWebSocketStream);
expect<0>()(WebSocket.CONNECTING);
expect<3>()(WebSocket.CLOSED);

// A server on the application's http.Server, with every option ws-native implements.
const server = http.createServer((req, res) => res.end('hello'));
const options: ServerOptions = {
  server,
  path: '/chat',
  clientTracking: true,
  maxPayload: 1024 * 1024,
  skipUTF8Validation: false,
  autoPong: true,
  perMessageDeflate: false,
  closeTimeout: 5000,
  highWaterMark: 256 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  heartbeat: { interval: 20000, timeout: 5000 },
  transport: 'auto',
  maxFragments: 1024,
  maxBufferedChunks: 4096,
  maxPendingAutoPongs: 10,
  maxBufferedAmount: 16 * 1024 * 1024,
  onBufferOverflow: 'drop',
  handleProtocols: (protocols, req) => {
    expect<Set<string>>()(protocols);
    expect<http.IncomingMessage>()(req);
    return protocols.has('chat.v1') ? 'chat.v1' : false;
  },
  verifyClient: (info, done) => {
    expect<string | undefined>()(info.origin);
    expect<boolean>()(info.secure);
    if (info.origin === 'https://evil.example') done(false, 403, 'Forbidden', { 'X-Why': 'origin' });
    else done(true);
  }
};
const wss = new WebSocketServer(options);

wss.on('headers', (headers, req) => {
  expect<string[]>()(headers);
  headers.push(`X-Path: ${req.url}`);
});
wss.on('wsClientError', (err, socket, req) => {
  expect<Error>()(err);
  expect<Duplex>()(socket);
  socket.end(`HTTP/1.1 400 Bad Request\r\nX-Reason: ${err.message} ${req.url}\r\n\r\n`);
});
// One handler for every connection's messages (ws-native): (ws, data, isBinary).
wss.on('message', (ws, data, isBinary) => {
  expect<WebSocket>()(ws);
  expect<RawData>()(data);
  expect<boolean>()(isBinary);
  ws.send(data, { binary: isBinary });
});

wss.on('connection', function (ws, req) {
  expect<WebSocketServer>()(this);
  expect<WebSocket>()(ws);
  expect<http.IncomingMessage>()(req);
  expect<number>()(wss.clients.size);

  ws.binaryType = 'arraybuffer';
  // Topics: each connection joins a room; a publish reaches every member with one frame.
  const room = new URL(req.url ?? '/', 'http://localhost').searchParams.get('room') ?? 'lobby';
  expect<boolean>()(ws.subscribe(room));
  expect<string[]>()(ws.topics);
  expect<number>()(wss.publish(room, `joined: ${wss.subscriberCount(room)}`));
  wss.publish(room, Buffer.from([0]), { binary: true });
  if (ws.isSubscribed('lobby')) ws.unsubscribe('lobby');
  ws.on('message', (data, isBinary) => {
    expect<RawData>()(data);
    expect<boolean>()(isBinary);
    // The usual ws echo compiles as is, whatever the binaryType (RawData is Sendable).
    // With backpressure: stop reading while the peer is slow.
    if (!ws.send(data, { binary: isBinary })) {
      ws.pause();
      ws.once('drain', () => ws.resume());
    }
  });
  ws.on('ping', (data) => expect<Buffer>()(data));
  ws.on('close', function (code, reason) {
    expect<WebSocket>()(this);
    expect<number>()(code);
    expect<Buffer>()(reason);
  });
  ws.on('error', (err) => {
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') ws.terminate();
  });
  ws.ping('are you there', undefined, (err) => expect<Error | undefined>()(err));
  ws.pong();
  expect<boolean>()(ws.send('welcome'));
  expect<string | undefined>()(ws.url);
});
wss.on('close', () => {});

server.listen(0, () => {
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  expect<number>()(address.port);

  // A client, with ws-native's client options.
  const client = new WebSocket(`ws://127.0.0.1:${address.port}/chat`, ['chat.v1'], {
    handshakeTimeout: 2000,
    headers: { Authorization: 'Bearer token' },
    followRedirects: true,
    maxRedirects: 3,
    highWaterMark: 1 << 20,
    closeTimeout: 1000,
    maxFragments: 0,
    onBufferOverflow: 'close',
    transport: 'native'
  });
  client.on('upgrade', (res) => expect<http.IncomingMessage>()(res));
  client.on('redirect', (url, req) => {
    expect<string>()(url);
    expect<http.ClientRequest>()(req);
  });
  client.on('unexpected-response', (req, res) => {
    expect<number | undefined>()(res.statusCode);
    req.destroy();
  });
  client.on('open', () => {
    expect<1 | 0 | 2 | 3>()(client.readyState);
    expect<string>()(client.protocol);
    expect<string>()(client.extensions);
    expect<'native' | 'stream' | undefined>()(client.transport);
    expect<number>()(client.bufferedAmount);
    expect<boolean>()(client.isPaused);
    client.send(Buffer.from([1, 2, 3]), (err) => expect<Error | undefined>()(err));
    client.send(new Float32Array(4));
    client.send(42);
    client.send(new Blob(['from a Blob']));
    client.send('part 1', { fin: false });
    client.send(' and 2', { fin: true, compress: false, mask: true });
  });
  client.on('error', (err) => {
    const code: ErrorCode | string | undefined = err.code;
    console.error(code, err.message);
  });

  // The browser-style API.
  client.binaryType = 'blob';
  client.onmessage = (event) => {
    expect<WebSocket>()(event.target);
    if (typeof event.data === 'string') console.log(event.data.toUpperCase());
  };
  client.onclose = (event) => {
    expect<number>()(event.code);
    expect<string>()(event.reason);
    expect<boolean>()(event.wasClean);
    wss.close((err) => expect<Error | undefined>()(err));
    server.close();
  };
  client.addEventListener('error', (event) => expect<string>()(event.message), { once: true });
  const listener = { handleEvent: (event: WebSocketDefault.Event) => expect<string>()(event.type) };
  client.addEventListener('open', listener);
  client.removeEventListener('open', listener);

  // A stream over a connection.
  const stream = createWebSocketStream(client, { encoding: 'utf8' });
  expect<Duplex>()(stream);
  stream.pipe(process.stdout);
});

// noServer: the application routes 'upgrade' itself.
const routed = new WebSocketServer({ noServer: true, heartbeat: true });
server.on('upgrade', (req, socket, head) => {
  if (!routed.shouldHandle(req)) return socket.destroy();
  routed.handleUpgrade(req, socket, head, (ws) => routed.emit('connection', ws, req));
});

// A net.Server: the library reads the upgrade request itself.
const raw = new WebSocketServer({ noServer: true, maxHeaderSize: 8192, headersTimeout: 5000 });
net.createServer((socket) => raw.handleSocket(socket)).listen(0);
net.createServer((socket) =>
  raw.handleSocket(socket, (ws, req) => {
    expect<WebSocket>()(ws);
    expect<http.IncomingMessage>()(req);
  })
);

// A subclass of WebSocket as the class of accepted connections.
class Tagged extends WebSocket {
  tag = 'tagged';
}
const tagged = new WebSocketServer({ port: 0, WebSocket: Tagged, heartbeat: 15000 }, () => {});
tagged.on('connection', (ws) => expect<string>()(ws.tag));

// Scale-out: a Redis broker joins the topics of many servers.
{
  const broker = WebSocketDefault.createRedisBroker({ url: 'redis://127.0.0.1:6379', prefix: 'app:' });
  broker.on('error', (err: Error) => console.error(err.message));
  const joined = new WebSocketServer({ port: 0 }).useBroker(broker);
  expect<number>()(joined.publish('news', 'hello'));
  expect<WebSocketDefault.BrokerStats | null>()(joined.brokerStats);
  expect<Promise<WebSocketDefault.RedisBroker>>()(broker.ready());
  const custom: WebSocketDefault.Broker = {
    subscribe() {},
    unsubscribe() {},
    publish: async (topic: string, payload: Buffer, isBinary: boolean) => topic.length + payload.length > 0 && isBinary,
    onMessage() {},
    close: async () => {}
  };
  new WebSocketServer({ noServer: true }).useBroker(custom);
}

// socket.io's broadcast: a frame built once with Sender.frame(), queued to each connection
// with ws._sender.sendFrame() (socket.io-adapter + engine.io).
{
  const frame = WebSocketDefault.Sender.frame(Buffer.from('42["news"]'), {
    readOnly: false,
    mask: false,
    rsv1: false,
    opcode: 1,
    fin: true
  });
  expect<Buffer[]>()(frame);
  const each = new WebSocketServer({ noServer: true, clientTracking: true });
  for (const ws of each.clients) {
    if (typeof ws._sender.sendFrame === 'function') {
      expect<boolean>()(ws._sender.sendFrame(frame, (err) => err && console.error(err.message)));
    }
  }
  expect<WebSocketDefault.Sender>()(new WebSocket('ws://127.0.0.1:1')._sender);
}
