// Type definitions for ws-native. They describe what the package does today: features still
// being built (permessage-deflate, the native transport) are left out (see the notes marked
// "Not declared"), so that code which compiles against these types also works.
//
// The API follows the ws package (version 8). What ws-native adds is marked "ws-native:".

/// <reference types="node" />

import { EventEmitter } from 'events';
import {
  Agent,
  ClientRequest,
  ClientRequestArgs,
  IncomingMessage,
  OutgoingHttpHeaders,
  Server as HttpServer
} from 'http';
import { Server as HttpsServer } from 'https';
import { Duplex, DuplexOptions } from 'stream';
import { ConnectionOptions, SecureContextOptions } from 'tls';
import { URL } from 'url';

/** Ready states, as numbers: the values of `readyState`. */
type ReadyState = 0 | 1 | 2 | 3;

/** A listener of an event whose arguments are Args, called with `this` bound to the emitter. */
type Listener<This, Args extends unknown[]> = (this: This, ...args: Args) => void;

/**
 * One WebSocket connection: either a client created with `new WebSocket(url)`, or a
 * connection a `WebSocketServer` accepted (handed to its 'connection' event).
 */
declare class WebSocket extends EventEmitter {
  /** The handshake has not completed yet. */
  static readonly CONNECTING: 0;
  /** Messages can be sent and received. */
  static readonly OPEN: 1;
  /** The closing handshake has started. */
  static readonly CLOSING: 2;
  /** The connection is closed. */
  static readonly CLOSED: 3;

  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  /**
   * Used by `WebSocketServer` (and subclasses passed as its `WebSocket` option) to create a
   * server-side connection; applications do not call it.
   */
  constructor(address: null);
  /** Opens a client connection to a `ws:`, `wss:`, `http:`, `https:` or `ws+unix:` URL. */
  constructor(address: string | URL, options?: WebSocket.ClientOptions | ClientRequestArgs);
  constructor(
    address: string | URL,
    protocols?: string | string[],
    options?: WebSocket.ClientOptions | ClientRequestArgs
  );

  /**
   * How binary messages are delivered to 'message': a Buffer ('nodebuffer', the default), an
   * ArrayBuffer, an array of Buffers, one per frame ('fragments'), or a Blob. Assigning any
   * other value is ignored.
   */
  binaryType: WebSocket.BinaryType;
  /**
   * Bytes queued by send()/ping()/pong() and not yet handed to the operating system: the
   * application data of this turn's sends (and of Blobs being read, messages being
   * compressed and the sends waiting for them), then the framed bytes the kernel has not
   * taken; plus, as in ws, the size of anything sent after the connection began closing.
   */
  readonly bufferedAmount: number;
  /** The negotiated extensions (the Sec-WebSocket-Extensions response), or ''. */
  readonly extensions: string;
  /**
   * ws-native: 'native' when the addon owns the socket, 'stream' when bytes go through a Node
   * stream; undefined before the connection opens.
   */
  readonly transport: 'native' | 'stream' | undefined;
  /** Whether pause() is in effect. */
  readonly isPaused: boolean;
  /** The subprotocol the server chose, or ''. */
  readonly protocol: string;
  readonly readyState: ReadyState;
  /**
   * The URL of a client connection (after redirects). A server-side connection has none:
   * `undefined`, as in ws.
   */
  readonly url: string | undefined;

  onopen: ((this: WebSocket, event: WebSocket.Event) => void) | null;
  onerror: ((this: WebSocket, event: WebSocket.ErrorEvent) => void) | null;
  onclose: ((this: WebSocket, event: WebSocket.CloseEvent) => void) | null;
  onmessage: ((this: WebSocket, event: WebSocket.MessageEvent) => void) | null;

  /**
   * Starts the closing handshake. Throws a TypeError with code WS_ERR_INVALID_CLOSE_CODE for a
   * code outside 1000-1003, 1007-1014 and 3000-4999, and a RangeError with code
   * WS_ERR_CLOSE_REASON_TOO_LONG for a reason over 123 bytes. As in ws: a non-integer code is
   * truncated (1000.5 sends 1000), a reason without a length (a number) is ignored, and
   * without a code no reason is sent (the peer sees 1005).
   */
  close(code?: number, reason?: string | Buffer): void;

  /**
   * Queues a message; text for strings and numbers, binary for everything else (override with
   * `options.binary`). Throws if the connection is still CONNECTING.
   *
   * ws-native: returns `false` once `bufferedAmount` reaches the `highWaterMark` option; a
   * 'drain' event follows when it falls below it again. (ws returns nothing.)
   *
   * No data (undefined or null) sends an empty binary message, as in ws. A `cb` that is not
   * a function throws a TypeError (ERR_INVALID_ARG_TYPE). If a callback throws, the others
   * still run; the first exception is rethrown afterwards, from a tick of its own.
   *
   * @param cb called once the data was written (with null, as ws), or with an error if it
   *   could not be
   */
  send(data: WebSocket.Sendable, cb?: (err?: Error) => void): boolean;
  send(data: WebSocket.Sendable, options: WebSocket.SendOptions, cb?: (err?: Error) => void): boolean;

  /**
   * Sends a ping (payload at most 125 bytes, else a RangeError with code
   * WS_ERR_CONTROL_PAYLOAD_TOO_LARGE). `mask` is accepted for ws compatibility and ignored:
   * frames are masked exactly when RFC 6455 requires it (client to server).
   */
  ping(data?: WebSocket.Sendable | null, mask?: boolean, cb?: (err?: Error) => void): void;
  ping(cb: (err?: Error) => void): void;
  /** Sends a pong; as ping(). */
  pong(data?: WebSocket.Sendable | null, mask?: boolean, cb?: (err?: Error) => void): void;
  pong(cb: (err?: Error) => void): void;

  /**
   * Destroys the connection at once, without a closing handshake. What was sent before it in
   * the same turn is written first (ws writes every send at once); nothing after it.
   */
  terminate(): void;

  /**
   * ws's Sender of this connection, for the one member other packages use of it (engine.io
   * feature-detects it): sendFrame(list, cb) queues frames built by WebSocket.Sender.frame().
   */
  readonly _sender: WebSocket.Sender;
  /** Stops emitting 'message' and reading from the socket until resume(). */
  pause(): void;
  resume(): void;

  /**
   * ws-native: the topics this connection subscribes to (a copy). See
   * WebSocketServer#publish().
   */
  readonly topics: string[];
  /**
   * ws-native: subscribes this connection to a topic of the server that accepted it.
   * Subscriptions end when the connection closes. Throws an Error with code
   * WS_ERR_TOPICS_UNSUPPORTED on a client connection (topics belong to a server), and a
   * TypeError (ERR_INVALID_ARG_TYPE) if topic is not a string.
   *
   * @returns false if it was subscribed already or the connection is closing
   */
  subscribe(topic: string): boolean;
  /**
   * ws-native: ends a subscription.
   *
   * @returns false if it was not subscribed
   */
  unsubscribe(topic: string): boolean;
  /** ws-native: whether this connection subscribes to topic. */
  isSubscribed(topic: string): boolean;

  addEventListener<K extends keyof WebSocket.WebSocketEventMap>(
    type: K,
    listener:
      | ((this: WebSocket, event: WebSocket.WebSocketEventMap[K]) => void)
      | { handleEvent(event: WebSocket.WebSocketEventMap[K]): void },
    options?: WebSocket.EventListenerOptions
  ): void;
  removeEventListener<K extends keyof WebSocket.WebSocketEventMap>(
    type: K,
    listener:
      | ((this: WebSocket, event: WebSocket.WebSocketEventMap[K]) => void)
      | { handleEvent(event: WebSocket.WebSocketEventMap[K]): void }
  ): void;

  on<K extends keyof WebSocket.WebSocketEvents>(
    event: K,
    listener: Listener<this, WebSocket.WebSocketEvents[K]>
  ): this;
  on(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  once<K extends keyof WebSocket.WebSocketEvents>(
    event: K,
    listener: Listener<this, WebSocket.WebSocketEvents[K]>
  ): this;
  once(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  off<K extends keyof WebSocket.WebSocketEvents>(
    event: K,
    listener: Listener<this, WebSocket.WebSocketEvents[K]>
  ): this;
  off(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  addListener<K extends keyof WebSocket.WebSocketEvents>(
    event: K,
    listener: Listener<this, WebSocket.WebSocketEvents[K]>
  ): this;
  addListener(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  removeListener<K extends keyof WebSocket.WebSocketEvents>(
    event: K,
    listener: Listener<this, WebSocket.WebSocketEvents[K]>
  ): this;
  removeListener(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  prependListener<K extends keyof WebSocket.WebSocketEvents>(
    event: K,
    listener: Listener<this, WebSocket.WebSocketEvents[K]>
  ): this;
  prependListener(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
}

/**
 * A WebSocket server. It attaches to an http(s).Server (`server`), creates one (`port`), or
 * leaves the 'upgrade' event to the application, which calls handleUpgrade() (`noServer`).
 */
declare class WebSocketServer<
  T extends typeof WebSocket = typeof WebSocket,
  U extends typeof IncomingMessage = typeof IncomingMessage
> extends EventEmitter {
  /** The options the server was created with, with defaults filled in. */
  options: WebSocket.ServerOptions<T, U>;
  /** The open connections; only when `clientTracking` is true (the default). */
  clients: Set<InstanceType<T>>;

  /**
   * Throws a TypeError unless exactly one of `port`, `server` and `noServer` is given, and a
   * RangeError (code ERR_OUT_OF_RANGE) for a negative limit (`maxPayload`, `closeTimeout`,
   * `highWaterMark`, `maxBackpressure`, `maxFragments`, ...) or a heartbeat interval/timeout
   * that is not a positive number, and a TypeError for a `heartbeat` or `onBufferOverflow` of
   * the wrong kind.
   *
   * @param callback a 'listening' listener (with `port`)
   */
  constructor(options: WebSocket.ServerOptions<T, U>, callback?: () => void);

  /** The address of the underlying server; throws in `noServer` mode. */
  address(): WebSocket.AddressInfo | string | null;
  /**
   * Stops accepting connections; 'close' follows once the connections have ended (existing
   * connections are not closed, as in ws 8). A server it created (`port`) is closed too.
   */
  close(cb?: (err?: Error) => void): void;
  /**
   * Completes the handshake of an 'upgrade' request and calls `callback` with the new
   * connection, or answers it with an HTTP error status and destroys the socket.
   */
  handleUpgrade(
    request: InstanceType<U>,
    socket: Duplex,
    head: Buffer,
    callback: (ws: InstanceType<T>, request: InstanceType<U>) => void
  ): void;
  /** Whether the request is for this server: its path matches the `path` option. */
  shouldHandle(request: InstanceType<U>): boolean;
  /**
   * ws-native: reads the HTTP upgrade request from a socket no http.Server has parsed (a
   * net.Server's connection) itself, then handles it as handleUpgrade() does. A malformed
   * request gets 400, a head over `maxHeaderSize` bytes or with over 100 fields 431, one not
   * complete within `headersTimeout` ms 408. `callback` defaults to emitting 'connection'.
   */
  handleSocket(
    socket: Duplex,
    callback?: (ws: InstanceType<T>, request: IncomingMessage) => void
  ): void;

  /**
   * ws-native: sends a message to every connection subscribed to topic. The frame is built
   * once and the same bytes are queued to each subscriber. Subscribers whose bufferedAmount
   * has reached the `maxBackpressure` option are skipped (they miss this message).
   *
   * With a broker (useBroker()) the message also goes to every other server sharing it;
   * those deliveries are not counted (see brokerStats).
   *
   * @returns how many local subscribers the message was queued to
   */
  publish(topic: string, data: WebSocket.PublishData, options?: WebSocket.PublishOptions): number;
  /** ws-native: how many connections subscribe to topic. */
  subscriberCount(topic: string): number;
  /**
   * ws-native: joins this server's topics to those of every other server using the same
   * broker (e.g. createRedisBroker()). One broker per server; close() closes it.
   */
  useBroker(broker: WebSocket.Broker): this;
  /** ws-native: what the broker did with publish() calls; null until useBroker(). */
  readonly brokerStats: WebSocket.BrokerStats | null;

  on<K extends keyof WebSocket.ServerEvents<T, U>>(
    event: K,
    listener: Listener<this, WebSocket.ServerEvents<T, U>[K]>
  ): this;
  on(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  once<K extends keyof WebSocket.ServerEvents<T, U>>(
    event: K,
    listener: Listener<this, WebSocket.ServerEvents<T, U>[K]>
  ): this;
  once(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  off<K extends keyof WebSocket.ServerEvents<T, U>>(
    event: K,
    listener: Listener<this, WebSocket.ServerEvents<T, U>[K]>
  ): this;
  off(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  addListener<K extends keyof WebSocket.ServerEvents<T, U>>(
    event: K,
    listener: Listener<this, WebSocket.ServerEvents<T, U>[K]>
  ): this;
  addListener(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  removeListener<K extends keyof WebSocket.ServerEvents<T, U>>(
    event: K,
    listener: Listener<this, WebSocket.ServerEvents<T, U>[K]>
  ): this;
  removeListener(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
  prependListener<K extends keyof WebSocket.ServerEvents<T, U>>(
    event: K,
    listener: Listener<this, WebSocket.ServerEvents<T, U>[K]>
  ): this;
  prependListener(event: string | symbol, listener: (this: this, ...args: any[]) => void): this;
}

/**
 * Wraps a WebSocket (open or still connecting) in a Duplex stream: each message is one
 * readable chunk, each written chunk is sent as one message. Ending the writable side closes
 * the WebSocket; destroying the stream terminates it.
 */
declare function createWebSocketStream(ws: WebSocket, options?: DuplexOptions): Duplex;

/**
 * ws's Sender as far as other packages use it: Sender.frame() builds the bytes of a frame
 * once (socket.io-adapter does, for a broadcast), and ws._sender.sendFrame() queues them.
 */
declare class Sender {
  /**
   * One frame of data (a string as UTF-8) with ws's options; the bytes to write, in order,
   * as a list (ws-native: one Buffer). `mask: true` masks with a key from the CSPRNG (ws's
   * maskBuffer/generateMask are not taken); data is never modified. Throws a RangeError
   * (ERR_OUT_OF_RANGE) for an opcode outside 0..15.
   */
  static frame(
    data: string | Buffer | ArrayBuffer | ArrayBufferView,
    options: WebSocket.FrameOptions
  ): Buffer[];
  private constructor();
  /**
   * Queues whole frames built beforehand (a list from Sender.frame(), ws's or ours), in
   * order with everything else the connection sends. Throws an Error with code
   * WS_ERR_FRAGMENTED_SEND for a data frame while a fragmented message is being sent, and a
   * TypeError (ERR_INVALID_ARG_TYPE) for a list that is not of Buffers or a cb that is not a
   * function. After the close, cb gets an error.
   *
   * @returns as send()
   */
  sendFrame(list: ReadonlyArray<Uint8Array | string>, cb?: (err?: Error) => void): boolean;
}

// The module is the WebSocket class, which also carries WebSocket, WebSocketServer, Server and
// createWebSocketStream as properties (`require('ws-native').WebSocketServer`, or
// `import { WebSocketServer } from 'ws-native'`). Inside the namespace below those names
// shadow the top-level ones, so the aliases reach the top-level declarations.
declare const WebSocketAlias: typeof WebSocket;
type WebSocketAlias = WebSocket;
declare const WebSocketServerAlias: typeof WebSocketServer;
type WebSocketServerAlias<
  T extends typeof WebSocket = typeof WebSocket,
  U extends typeof IncomingMessage = typeof IncomingMessage
> = WebSocketServer<T, U>;
declare const createWebSocketStreamAlias: typeof createWebSocketStream;
declare const SenderAlias: typeof Sender;
type SenderAlias = Sender;

/**
 * ws-native: a Broker over Redis pub/sub (needs the optional `redis` package, node-redis 4
 * or 5; throws WS_ERR_BROKER_UNAVAILABLE without it). Connects at once, reconnects and
 * resubscribes on its own.
 */
declare function createRedisBroker(options?: WebSocket.RedisBrokerOptions): WebSocket.RedisBroker;
declare const createRedisBrokerAlias: typeof createRedisBroker;

declare namespace WebSocket {
  const WebSocket: typeof WebSocketAlias;
  type WebSocket = WebSocketAlias;
  const WebSocketServer: typeof WebSocketServerAlias;
  type WebSocketServer<
    T extends typeof WebSocketAlias = typeof WebSocketAlias,
    U extends typeof IncomingMessage = typeof IncomingMessage
  > = WebSocketServerAlias<T, U>;
  /** Another name of WebSocketServer, as in ws. */
  const Server: typeof WebSocketServerAlias;
  type Server<
    T extends typeof WebSocketAlias = typeof WebSocketAlias,
    U extends typeof IncomingMessage = typeof IncomingMessage
  > = WebSocketServerAlias<T, U>;
  const createWebSocketStream: typeof createWebSocketStreamAlias;
  const createRedisBroker: typeof createRedisBrokerAlias;
  const Sender: typeof SenderAlias;
  type Sender = SenderAlias;

  /** The options of Sender.frame(), as ws names them. */
  interface FrameOptions {
    /** 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong (any 0..15). */
    opcode: number;
    /** The FIN bit (default false, as in ws). */
    fin?: boolean | undefined;
    /** The RSV1 bit (the payload is not compressed here). */
    rsv1?: boolean | undefined;
    /** Mask the payload (frames a client sends). */
    mask?: boolean | undefined;
    /** Accepted for ws compatibility; data is never modified. */
    readOnly?: boolean | undefined;
  }

  /**
   * What WebSocketServer#useBroker() takes. The server calls subscribe() when a topic gains its
   * first local subscriber, unsubscribe() when it loses its last, publish() for every
   * publish() (resolving false, or rejecting, means lost), and close() from server.close().
   * onMessage() must never deliver what this same broker published (no double delivery).
   */
  interface Broker {
    subscribe(topic: string): void | Promise<void>;
    unsubscribe(topic: string): void | Promise<void>;
    publish(topic: string, payload: Buffer, isBinary: boolean): Promise<boolean>;
    onMessage(cb: (topic: string, payload: Buffer, isBinary: boolean) => void): void;
    close(): Promise<void>;
  }

  interface BrokerStats {
    /** Messages the broker accepted (for Redis: PUBLISH acknowledged). */
    published: number;
    /** Messages it could not send (e.g. the connection to Redis was down): not delivered elsewhere. */
    lost: number;
    /** Messages from other servers delivered to local subscribers. */
    received: number;
  }

  interface RedisBrokerOptions {
    /** e.g. 'redis://127.0.0.1:6379' */
    url?: string | undefined;
    /** Prepended to a topic to name its Redis channel. Default 'ws-native:'. */
    prefix?: string | undefined;
    /** More options for node-redis' createClient(). */
    redisOptions?: object | undefined;
  }

  /** Emits 'error' for connection failures (only if listened to: never crashes). */
  interface RedisBroker extends Broker, EventEmitter {
    readonly prefix: string;
    /** Whether both connections (publish, subscribe) are up now. */
    readonly connected: boolean;
    /** Resolves once both connections were first established. */
    ready(): Promise<this>;
  }

  type BinaryType = 'nodebuffer' | 'arraybuffer' | 'fragments' | 'blob';

  /**
   * What a 'message' listener receives, by `binaryType`: a Buffer (also for text messages;
   * `isBinary` tells them apart), an ArrayBuffer, an array of Buffers, or a Blob.
   */
  type RawData = Buffer | ArrayBuffer | Buffer[] | Blob;

  /** The permessage-deflate parameters (as ws's). */
  interface PerMessageDeflateOptions {
    /** Server: answer with server_no_context_takeover (client: ask for it). */
    serverNoContextTakeover?: boolean | undefined;
    /** Server: answer with client_no_context_takeover (client: offer it). */
    clientNoContextTakeover?: boolean | undefined;
    /** The largest LZ77 window the server compresses with, 9..15 (8 is declined). */
    serverMaxWindowBits?: boolean | number | undefined;
    /** The largest LZ77 window the client compresses with, 8..15. */
    clientMaxWindowBits?: boolean | number | undefined;
    /** Messages shorter than this (bytes) are sent uncompressed (default 1024). */
    threshold?: number | undefined;
    /**
     * ms after which a connection's own zlib streams, unused, are freed (default 10000); an
     * inflater keeps its window (up to 32 KiB) so the peer's context takeover still holds.
     * false or 0: keep them for the connection's life, as ws does.
     */
    zlibIdleTimeout?: number | false | undefined;
    /** zlib deflate settings: level (-1..9) and memLevel (1..9). */
    zlibDeflateOptions?: { level?: number | undefined; memLevel?: number | undefined } | undefined;
    /** Accepted for ws compatibility. */
    zlibInflateOptions?: object | undefined;
  }

  /** MessageEvent.data: text messages arrive as strings, binary ones as in RawData. */
  type Data = string | RawData;

  /**
   * What send(), ping() and pong() accept: strings and numbers (sent as text), Buffers,
   * ArrayBuffers and their views, Blobs (read first; later sends wait for them so messages
   * keep their order), an array of Buffers (one message of their bytes joined: what a
   * 'fragments' message is, so an echo of any RawData works), and anything else
   * Buffer.from() takes.
   */
  type Sendable = PublishData | Blob | readonly Uint8Array[];

  /** What WebSocketServer#publish() accepts: as Sendable, but no Blob. */
  type PublishData =
    | string
    | number
    | Buffer
    | ArrayBuffer
    | SharedArrayBuffer
    | ArrayBufferView
    | readonly number[]
    | { valueOf(): ArrayBuffer | SharedArrayBuffer | Uint8Array | readonly number[] | string }
    | { [Symbol.toPrimitive](hint: 'string'): string };

  interface SendOptions {
    /** Send as a binary message (default: true unless data is a string or a number). */
    binary?: boolean | undefined;
    /** Whether this is the last fragment of the message (default: true). */
    fin?: boolean | undefined;
    /** false: send this message uncompressed even if permessage-deflate was negotiated. */
    compress?: boolean | undefined;
    /** Accepted for ws compatibility and ignored: see ping(). */
    mask?: boolean | undefined;
  }

  interface PublishOptions {
    /** Send as a binary message (default: true unless data is a string or a number). */
    binary?: boolean | undefined;
    /**
     * false: uncompressed for everyone. Otherwise subscribers that negotiated
     * permessage-deflate get one frame compressed once (per window size).
     */
    compress?: boolean | undefined;
  }

  /** The `heartbeat` server option in its object form. */
  interface HeartbeatOptions {
    /** Ping a connection after this many ms without receiving anything from it (30000). */
    interval?: number | undefined;
    /** Terminate it if nothing arrives within this many ms of the ping (10000). */
    timeout?: number | undefined;
  }

  /**
   * The `code` of the errors ws-native emits or throws. The ones that also exist in ws mean
   * the same thing there.
   */
  type ErrorCode =
    // A peer broke the protocol ('error' event; the connection closes with the status in
    // parentheses).
    | 'WS_ERR_UNEXPECTED_RSV_1' // (1002)
    | 'WS_ERR_UNEXPECTED_RSV_2_3' // (1002)
    | 'WS_ERR_INVALID_OPCODE' // (1002)
    | 'WS_ERR_EXPECTED_FIN' // (1002) a fragmented control frame
    | 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH' // (1002) a control frame over 125 bytes, or a
    //                                           close frame with a 1-byte body
    | 'WS_ERR_EXPECTED_MASK' // (1002) an unmasked frame from a client
    | 'WS_ERR_UNEXPECTED_MASK' // (1002) a masked frame from a server
    | 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH' // (1002 or 1009) a length over 2^53 - 1
    | 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' // (1009) over maxPayload
    | 'WS_ERR_INVALID_CLOSE_CODE' // (1002) received; also thrown by close()
    | 'WS_ERR_INVALID_UTF8' // (1007)
    | 'WS_ERR_TOO_MANY_BUFFERED_PARTS' // (1008) over maxFragments or maxBufferedChunks
    // (1007) a permessage-deflate message that does not inflate: reported as zlib's code,
    // as in ws; WS_ERR_INVALID_COMPRESSED_DATA is the engine's name for it.
    | 'Z_DATA_ERROR'
    | 'WS_ERR_INVALID_COMPRESSED_DATA'
    // ws-native only.
    | 'WS_ERR_FRAGMENTED_SEND' // thrown by _sender.sendFrame(): a data frame inside a fragmented send
    | 'WS_ERR_UNSUPPORTED_FRAME' // thrown by _sender.sendFrame(): RSV1 on a deflate client
    | 'WS_ERR_CLOSE_REASON_TOO_LONG' // thrown by close() (ws throws it without a code)
    | 'WS_ERR_CONTROL_PAYLOAD_TOO_LARGE' // thrown by ping()/pong() (likewise)
    | 'WS_ERR_OUT_OF_MEMORY' // (1011) the engine could not allocate a buffer
    | 'WS_ERR_BUFFER_OVERFLOW' // (1008) over maxBufferedAmount; see onBufferOverflow
    | 'WS_ERR_NATIVE' // an internal failure of the addon
    | 'WS_ERR_NATIVE_SOCKET' // a net.Socket member ws._socket lacks on the native transport
    | 'WS_ERR_TOPICS_UNSUPPORTED' // subscribe() on a connection no server accepted
    | 'WS_ERR_ADDON_NOT_FOUND' // thrown by require(): no compiled addon for this platform
    | 'WS_ERR_BROKER_UNAVAILABLE'; // thrown by createRedisBroker(): the `redis` package is missing

  /**
   * What an 'error' listener receives. Protocol errors carry one of the ErrorCode values; a
   * failed client handshake gives a plain Error (no code) or Node's socket/TLS error (its own
   * code, such as 'ECONNREFUSED').
   */
  interface WebSocketError extends Error {
    code?: ErrorCode | (string & {}) | undefined;
  }

  /** The EventEmitter events of a WebSocket and their arguments. */
  interface WebSocketEvents {
    /** The handshake completed (client). */
    open: [];
    /** `data` is a Buffer for text messages too (as in ws 8); see RawData. */
    message: [data: RawData, isBinary: boolean];
    /** `code` is 1005 when the close frame had none, 1006 when there was no close frame. */
    close: [code: number, reason: Buffer];
    /**
     * ws-native: emitted only when someone listens (ws throws without a listener); the
     * connection closes either way.
     */
    error: [error: WebSocketError];
    ping: [data: Buffer];
    pong: [data: Buffer];
    /** The server answered the handshake with 101 (client, before the answer is checked). */
    upgrade: [response: IncomingMessage];
    /** The server answered with something other than 101 (client). */
    'unexpected-response': [request: ClientRequest, response: IncomingMessage];
    /** A redirect is being followed (client, `followRedirects`). */
    redirect: [url: string, request: ClientRequest];
    /** ws-native: bufferedAmount fell below highWaterMark after send() returned false. */
    drain: [];
  }

  /** The EventEmitter events of a WebSocketServer and their arguments. */
  interface ServerEvents<
    T extends typeof WebSocket = typeof WebSocket,
    U extends typeof IncomingMessage = typeof IncomingMessage
  > {
    connection: [ws: InstanceType<T>, request: InstanceType<U>];
    /**
     * ws-native: a message on any of this server's connections, after that connection's own
     * 'message' listeners: one handler for every connection, with no closure per connection.
     */
    message: [ws: InstanceType<T>, data: WebSocket.RawData, isBinary: boolean];
    /** The response headers of a handshake about to be accepted; they may be changed. */
    headers: [headers: string[], request: InstanceType<U>];
    /**
     * A handshake was invalid. With a listener, the application answers on `socket` itself;
     * without one, the client gets the status (400, 405 or 426).
     */
    wsClientError: [error: Error, socket: Duplex, request: InstanceType<U>];
    /** Forwarded from the underlying http(s).Server. */
    error: [error: Error];
    listening: [];
    close: [];
  }

  /**
   * Limits against a peer that tries to exhaust memory, shared by ServerOptions and
   * ClientOptions. 0 turns a limit off.
   */
  interface LimitOptions {
    /**
     * The most data frames one message may have (default 16384); more fail the connection
     * with 1008 (WS_ERR_TOO_MANY_BUFFERED_PARTS).
     */
    maxFragments?: number | undefined;
    /**
     * The most socket chunks kept while the connection is paused (default 262144); more fail
     * it with 1008 (WS_ERR_TOO_MANY_BUFFERED_PARTS).
     */
    maxBufferedChunks?: number | undefined;
    /**
     * The most automatic pongs that may wait for a peer that does not read them (default 60);
     * then the connection is terminated.
     */
    maxPendingAutoPongs?: number | undefined;
    /**
     * ws-native: the most bytes that may wait for a peer that does not read, checked once
     * send() is past highWaterMark (default on a server 67108864 = 64 MiB; on a client 0, no
     * limit, as in ws). See onBufferOverflow.
     */
    maxBufferedAmount?: number | undefined;
    /**
     * ws-native: what a send() past maxBufferedAmount does: 'close' (default) fails the
     * connection (1008, 'error' with WS_ERR_BUFFER_OVERFLOW) and terminates it; 'drop' drops
     * that message, and its callback gets the WS_ERR_BUFFER_OVERFLOW error.
     */
    onBufferOverflow?: 'close' | 'drop' | undefined;
  }

  /** Options of `new WebSocketServer()`. */
  interface ServerOptions<
    T extends typeof WebSocket = typeof WebSocket,
    U extends typeof IncomingMessage = typeof IncomingMessage
  > extends LimitOptions {
    /** Create an http.Server listening on this port. */
    port?: number | undefined;
    host?: string | undefined;
    backlog?: number | undefined;
    /** Attach to this server's 'upgrade' event. */
    server?: HttpServer<U> | HttpsServer<U> | undefined;
    /** Do not listen to any server: call handleUpgrade() yourself. */
    noServer?: boolean | undefined;
    /** Only accept requests for this path. */
    path?: string | undefined;
    /** Keep the open connections in `clients` (default true). */
    clientTracking?: boolean | undefined;
    /** The largest message accepted, in bytes (default 104857600 = 100 MiB; 0 = no limit). */
    maxPayload?: number | undefined;
    verifyClient?:
      | VerifyClientCallbackSync<InstanceType<U>>
      | VerifyClientCallbackAsync<InstanceType<U>>
      | undefined;
    /** Picks one of the offered subprotocols (default: the first). */
    handleProtocols?: ((protocols: Set<string>, request: InstanceType<U>) => string | false) | undefined;
    /** Do not check that text messages are valid UTF-8 (default false). */
    skipUTF8Validation?: boolean | undefined;
    /**
     * Answer pings with pongs automatically (default true). The engine answers them in C, so
     * replacing ws.pong() does not stop it: `autoPong: false` does.
     */
    autoPong?: boolean | undefined;
    /**
     * Accepted for ws compatibility; ws-native always behaves as with `true` (several events
     * may be emitted in one tick).
     */
    allowSynchronousEvents?: boolean | undefined;
    /**
     * permessage-deflate (RFC 7692): false (default for servers), true, or its parameters.
     * Invalid offers are declined, never refused.
     */
    perMessageDeflate?: boolean | WebSocket.PerMessageDeflateOptions | undefined;
    /** The class of accepted connections: WebSocket or a subclass of it. */
    WebSocket?: T | undefined;
    /**
     * How long (ms) to wait for the peer to finish the closing handshake before the socket is
     * destroyed (default 30000).
     */
    closeTimeout?: number | undefined;
    /**
     * ws-native: the `bufferedAmount` (bytes) at which send() returns false (default 65536).
     */
    highWaterMark?: number | undefined;
    /**
     * ws-native: publish() skips a subscriber with this many bytes or more not yet written
     * (default 1048576).
     */
    maxBackpressure?: number | undefined;
    /**
     * ws-native: ping connections that have been silent for `interval` ms and terminate those
     * still silent `timeout` ms later. `true` uses the defaults (30000 / 10000), a number is
     * the interval; default false (off). Anything received counts as a sign of life.
     */
    heartbeat?: boolean | number | HeartbeatOptions | undefined;
    /**
     * ws-native: how bytes move after the upgrade. 'auto' (default) and 'native': the addon
     * takes a plain TCP socket over (Node's net.Socket is released; reads, writes and framing
     * happen in C on Node's event loop) and anything else (TLS, other Duplex streams) uses the
     * stream transport; 'stream': always through Node's socket. WS_NATIVE_TRANSPORT=stream in
     * the environment turns the native transport off for the whole process.
     */
    transport?: 'auto' | 'native' | 'stream' | undefined;
    /** ws-native, handleSocket(): the most bytes a request head may have (default 16384; 431). */
    maxHeaderSize?: number | undefined;
    /**
     * ws-native, handleSocket(): ms to wait for the whole request head (default 10000; 408);
     * 0: no limit.
     */
    headersTimeout?: number | undefined;
  }

  interface VerifyClientInfo<Request extends IncomingMessage = IncomingMessage> {
    /** The Origin header, if the client sent one. */
    origin: string | undefined;
    /** Whether the request came over TLS. */
    secure: boolean;
    req: Request;
  }

  /** Returns whether to accept the handshake (false: 401). */
  type VerifyClientCallbackSync<Request extends IncomingMessage = IncomingMessage> = (
    info: VerifyClientInfo<Request>
  ) => boolean;

  /** Calls back whether to accept the handshake, and if not, with what status and headers. */
  type VerifyClientCallbackAsync<Request extends IncomingMessage = IncomingMessage> = (
    info: VerifyClientInfo<Request>,
    callback: (
      verified: boolean,
      code?: number,
      message?: string,
      headers?: OutgoingHttpHeaders
    ) => void
  ) => void;

  /**
   * Called with the handshake request before it is sent; it must call `request.end()`.
   */
  type FinishRequestCallback = (request: ClientRequest, websocket: WebSocket) => void;

  /**
   * Options of `new WebSocket(url)`. Anything http.request() / https.request() accepts (an
   * agent, TLS options, `headers`, ...) is passed through to it.
   */
  interface ClientOptions extends SecureContextOptions, LimitOptions {
    /** Subprotocols to offer, when not given as the constructor's second argument. */
    protocols?: string | string[] | undefined;
    /** Follow 3xx redirects (default false). */
    followRedirects?: boolean | undefined;
    /** The most redirects to follow (default 10). */
    maxRedirects?: number | undefined;
    /**
     * Abort the handshake ('Opening handshake has timed out') if it has not completed this
     * many ms after the constructor, redirects included: a deadline, not an idle timer.
     */
    handshakeTimeout?: number | undefined;
    /** Sec-WebSocket-Version to send: 13 (default) or 8. */
    protocolVersion?: number | undefined;
    /** Sent as the Origin header. */
    origin?: string | undefined;
    /** Extra request headers. */
    headers?: { [name: string]: string } | undefined;
    agent?: Agent | undefined;
    family?: number | undefined;
    localAddress?: string | undefined;
    servername?: string | undefined;
    rejectUnauthorized?: boolean | undefined;
    checkServerIdentity?: ConnectionOptions['checkServerIdentity'] | undefined;
    /** Creates the socket of the handshake request (default net.connect / tls.connect). */
    createConnection?: ClientRequestArgs['createConnection'] | undefined;
    /**
     * ws-native: as in ServerOptions. 'auto' (default) and 'native': after the handshake the
     * addon takes a plain TCP or Unix-domain socket over; wss: and other streams use the stream
     * transport. 'stream': always through Node's socket.
     */
    transport?: 'auto' | 'native' | 'stream' | undefined;
    finishRequest?: FinishRequestCallback | undefined;
    /** As in ServerOptions. */
    maxPayload?: number | undefined;
    skipUTF8Validation?: boolean | undefined;
    autoPong?: boolean | undefined;
    allowSynchronousEvents?: boolean | undefined;
    /** permessage-deflate: offered by default (true), as in ws. */
    perMessageDeflate?: boolean | WebSocket.PerMessageDeflateOptions | undefined;
    /** As in ServerOptions (default 30000 ms). */
    closeTimeout?: number | undefined;
    /** ws-native: as in ServerOptions (default 65536 bytes). */
    highWaterMark?: number | undefined;
    // Not declared (not supported): generateMask; masks come from a CSPRNG in the addon.
  }

  interface AddressInfo {
    address: string;
    family: string;
    port: number;
  }

  // The browser-style API: what addEventListener() listeners and the on<event> attributes
  // receive.

  interface Event {
    readonly type: string;
    readonly target: WebSocket;
  }

  interface MessageEvent extends Event {
    /** A string for a text message; for a binary one, as `binaryType` says. */
    data: Data;
  }

  interface CloseEvent extends Event {
    code: number;
    reason: string;
    /** Whether close frames went both ways. */
    wasClean: boolean;
  }

  interface ErrorEvent extends Event {
    error: WebSocketError;
    message: string;
  }

  interface WebSocketEventMap {
    open: Event;
    message: MessageEvent;
    close: CloseEvent;
    error: ErrorEvent;
  }

  interface EventListenerOptions {
    /** Remove the listener after its first call. */
    once?: boolean | undefined;
  }
}

export = WebSocket;
