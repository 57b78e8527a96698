'use strict';

// One WebSocket connection: the ws-compatible EventEmitter API, the browser's EventTarget API,
// the ready-state machine and the JavaScript half of the closing handshake. Bytes come and go
// through a transport; every byte is handled by the native engine (binding). What a connection
// sends is queued and written by lib/sender.js, what it receives delivered by lib/receiver.js;
// how it keeps its size down is lib/rare-state.js.

const EventEmitter = require('events');
const { Blob } = require('buffer');

const binding = require('./binding');
const { EventTarget } = require('./event-target');
const { defineFlags } = require('./flags');
const { beforeListenerAdded } = require('./listener-hook');
const { DEFAULT_LIMITS, limitsOf, defineRareState, defineLimits, defineDeflateWindow } = require('./rare-state');
const StreamTransport = require('./stream-transport');
const { NativeTransport, canAdopt } = require('./native-transport');
const { deliverStashed, isHeld } = require('./receiver');
const { initAsClient, abortHandshake } = require('./client');
const {
  Sender,
  send,
  sendControl,
  queueSend,
  scheduleFlush,
  flush,
  runCallbacks,
  byteLengthOf,
  isArrayBuffer
} = require('./sender');
const { watchIdleStreams, unwatchIdleStreams } = require('./permessage-deflate');
const {
  BINARY_TYPES,
  CLOSED,
  CLOSING,
  CONNECTING,
  DEFAULT_MAX_FRAGMENTS,
  DEFAULT_MAX_PAYLOAD,
  kForOnEventAttribute,
  kListener,
  kStatusCode,
  OPEN,
  READY_STATES
} = require('./constants');

const { OP_PING, OP_PONG, CLOSE_SENT, CLOSE_RECEIVED, CLOSE_FAILED } = binding.constants;

// The prototype of each connection's listener table. EventEmitter makes that table a
// null-prototype object, which V8 keeps in dictionary mode (about 150 bytes); an object whose
// prototype is this empty frozen one stays in fast mode, and looks up like it (no inherited
// event names, own keys only).
const EVENTS_PROTO = Object.freeze(Object.create(null));

// Boolean state read only around the close and on rare paths (or, _isServer, fixed at
// construction), one bit each in _flags (accessors below keep the names): fields cost 8 bytes
// each per connection. The state the per-message path writes stays in plain fields, which are
// faster to reach than accessors.
const FLAGS = [
  // Read from the engine's record of the closing handshake when the handle is released (close
  // frames sent and received): the 'close' event's wasClean is read after that.
  '_closedCleanly',
  '_errorEmitted',
  '_autoPong',
  '_dropOnOverflow',
  '_isServer',
  '_parksStreams', // counted by permessage-deflate's idle stream timer
  '_needDrain' // (written only when a send goes over the high-water mark)
];

/**
 * @extends EventEmitter
 */
class WebSocket {
  /**
   * @param {string|URL|null} address null for a connection accepted by a server
   * @param {string|string[]} [protocols]
   * @param {object} [options]
   */
  constructor(address, protocols, options) {
    // What EventEmitter's constructor would set, minus the fields it adds that the prototype
    // answers the same (_maxListeners, the capture and shape-mode symbols): 24 bytes per
    // connection. The listener table is a fast-mode object (see EVENTS_PROTO), made with the
    // first listener (see beforeListenerAdded below).
    this._events = undefined;
    this._eventsCount = 0;

    // Bytes per connection again: each field is 8. State most connections keep at its
    // initial value lives in _rare, the limits from the options in one object shared by the
    // connections of a server (both: lib/rare-state.js), and the rarely used booleans are
    // bits of _flags. What the per-message path writes stays here.
    this._flags = 0;
    this._autoPong = true;
    this._rare = null;
    this._limits = DEFAULT_LIMITS;
    this._extensions = '';
    this._flushScheduled = false;
    this._handle = null;
    this._paused = false;
    this._protocol = '';
    this._readyState = CONNECTING;
    this._receiving = false;
    this._sendCallbacks = null;
    this._transport = null;
    this._writeQueue = null; // buffers to write before the engine's next output, in order
    // Bytes of application data (messages, ping and pong payloads) queued since the last
    // flush: what bufferedAmount counts of them until the transport has them.
    this._unflushedBytes = 0;
    this._server = null; // the WebSocketServer that accepted this connection
    // Heartbeat: when bytes last arrived; 0 when no heartbeat watches the connection, and
    // minus the time of its ping while that ping is unanswered (see lib/heartbeat.js).
    this._lastHeard = 0;
    this._isServer = address === null; // (a bit of _flags)
    if (address === null) return;

    // (url, protocols, options), (url, options) or (url, undefined, options); the
    // subprotocols may also come as options.protocols.
    if (protocols !== undefined && !Array.isArray(protocols)) {
      if (typeof protocols === 'object' && protocols !== null) {
        options = protocols;
        protocols = undefined;
      } else {
        protocols = [protocols];
      }
    }
    if (protocols === undefined) {
      const fromOptions = options ? options.protocols : undefined;
      if (fromOptions === undefined) protocols = [];
      else protocols = Array.isArray(fromOptions) ? fromOptions : [fromOptions];
    }
    initAsClient(this, address, protocols, options);
  }

  /**
   * The socket, as ws has it: Node's (stream transport), or the native transport, which
   * answers what applications read from it (remoteAddress...). Kept after the close.
   */
  get _socket() {
    const transport = this._transport;
    return transport !== null ? transport.socket : this._closedSocket;
  }

  /**
   * ws's Sender of the connection, for what other packages use of it: sendFrame(list, cb)
   * (engine.io writes frames built once by Sender.frame() with it). A view made on demand.
   */
  get _sender() {
    return new Sender(this);
  }

  /** @type {'nodebuffer'|'arraybuffer'|'fragments'|'blob'} */
  get binaryType() {
    return this._binaryType;
  }

  set binaryType(type) {
    if (!BINARY_TYPES.includes(type)) return;
    this._binaryType = type;
    if (this._handle !== null) binding.trackFragments(this._handle, type === 'fragments');
  }

  /**
   * Bytes queued by send()/ping()/pong() and not yet handed to the operating system: the
   * application data of what waits for this turn's write (or for a Blob being read, or a
   * message being compressed), the framed bytes the kernel has not taken yet, and, as in ws
   * and the browser, what was sent after the connection began closing.
   */
  get bufferedAmount() {
    const rare = this._rare;
    const late = rare === null ? 0 : rare._bufferedAmount + rare._queuedBytes;
    if (this._transport === null) return late;
    return this._unflushedBytes + this._transport.writableLength + late;
  }

  /** How bytes move: 'native' (the addon owns the socket) or 'stream' (a Node stream). */
  get transport() {
    return this._transport === null ? undefined : this._transport.kind;
  }

  get extensions() {
    return this._extensions;
  }

  get isPaused() {
    return this._paused;
  }

  get protocol() {
    return this._protocol;
  }

  get readyState() {
    return this._readyState;
  }

  get url() {
    return this._url;
  }

  /** The topics this connection is subscribed to. */
  get topics() {
    return this._topics === null ? [] : [...this._topics];
  }

  /**
   * Subscribes to a topic of the server that accepted this connection; wss.publish(topic)
   * then reaches it. Subscriptions end with the connection.
   *
   * @param {string} topic
   * @returns {boolean} false if it was subscribed already (or the connection is closing)
   */
  subscribe(topic) {
    return this._topicRegistry().subscribe(this, topic);
  }

  /**
   * @param {string} topic
   * @returns {boolean} false if it was not subscribed
   */
  unsubscribe(topic) {
    return this._topicRegistry().unsubscribe(this, topic);
  }

  /**
   * @param {string} topic
   * @returns {boolean}
   */
  isSubscribed(topic) {
    return this._topics !== null && this._topics.has(topic);
  }

  /**
   * Attaches an upgraded socket. A server passes its 101 response, so that the native
   * transport can write it itself after taking the socket over; the stream transport writes
   * it to the socket.
   *
   * @param {import('stream').Duplex} socket
   * @param {Buffer} head
   * @param {object} options
   * @param {object} [deflate] the agreed permessage-deflate parameters, if any
   * @param {string} [response] the 101 response, not yet written
   * @private
   */
  setSocket(socket, head, options, deflate, response) {
    this._autoPong = options.autoPong === undefined ? true : !!options.autoPong;
    this._handle = binding.createConnection(
      this._isServer,
      options.maxPayload === undefined ? DEFAULT_MAX_PAYLOAD : options.maxPayload,
      !!options.skipUTF8Validation,
      this._autoPong,
      options.maxFragments === undefined ? DEFAULT_MAX_FRAGMENTS : options.maxFragments,
      deflate
    );
    this._deflateWindowBits = deflate === undefined ? 0 : deflate.deflateWindowBits;
    if (deflate !== undefined && deflate.idleTimeout > 0) {
      watchIdleStreams(deflate.idleTimeout);
      this._parksStreams = true;
    }
    this._limits = limitsOf(options);
    this._dropOnOverflow = options.onBufferOverflow === 'drop';
    if (this._binaryType === 'fragments') binding.trackFragments(this._handle, true);
    if (canAdopt(socket, options.transport)) {
      this._transport = NativeTransport.adopt(this, socket, head, response);
    }
    if (this._transport === null) {
      if (response !== undefined) socket.write(response);
      this._transport = new StreamTransport(this, socket, head);
    }
    this._readyState = OPEN;
    if (!this._isServer) this.emit('open');
  }

  /**
   * Starts the closing handshake.
   *
   * @param {number} [code] status code (1000-1003, 1007-1014, 3000-4999)
   * @param {string|Buffer} [data] reason, at most 123 bytes
   */
  close(code, data) {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      abortHandshake(this, this._req, 'WebSocket was closed before the connection was established');
      return;
    }
    // Checked now, even when the close frame must wait behind a Blob or a compression.
    code = closeCode(code);
    data = code === undefined ? undefined : closeReason(data);
    if (this._sendQueue !== null && this._readyState === OPEN) {
      queueSend(this, () => this.close(code, data), 0, undefined);
      return;
    }
    if (this._readyState === CLOSING) {
      // The handshake is over (the engine's conn_close_complete: ours sent, and the peer's
      // received or the connection failed; or a failure found here, _errorEmitted): end the
      // TCP connection once the output is written. (No handle: a client whose handshake
      // failed, CLOSING until its 'close'.)
      const state = this._handle === null ? 0 : binding.closeState(this._handle);
      const over = (state & (CLOSE_RECEIVED | CLOSE_FAILED)) !== 0 || this._errorEmitted;
      if ((state & CLOSE_SENT) !== 0 && over) {
        this._endAfterFlush = true;
        scheduleFlush(this);
      }
      return;
    }
    binding.close(this._handle, code, data);
    this._readyState = CLOSING;
    scheduleFlush(this);
    this._setCloseTimer();
  }

  /** Stops emitting 'message' (and reading from the socket) until resume(). */
  pause() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = true;
    this._transport.pause();
  }

  resume() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    if (!this._paused) return;
    this._paused = false;
    if (this._inflating) return; // delivery goes on when the message is inflated
    if (isHeld(this)) {
      process.nextTick(deliverStashed, this);
    } else {
      this._transport.resume();
    }
  }

  /**
   * @param {*} [data]
   * @param {boolean} [mask] ignored: frames are masked exactly when the protocol requires it
   * @param {(err?: Error) => void} [cb]
   */
  ping(data, mask, cb) {
    sendControl(this, OP_PING, data, mask, cb);
  }

  /**
   * @param {*} [data]
   * @param {boolean} [mask] ignored, as for ping()
   * @param {(err?: Error) => void} [cb]
   */
  pong(data, mask, cb) {
    sendControl(this, OP_PONG, data, mask, cb);
  }

  /**
   * Queues a message. Returns false once bufferedAmount reaches the high-water mark; a
   * 'drain' event follows when it falls below it again.
   *
   * @param {string|Buffer|ArrayBuffer|ArrayBufferView|number} data
   * @param {{ binary?: boolean, fin?: boolean, compress?: boolean, mask?: boolean }} [options]
   * @param {(err?: Error) => void} [cb] called once the data was written (or failed)
   * @returns {boolean}
   */
  send(data, options, cb) {
    return send(this, data, options, cb);
  }

  /** Destroys the connection without a closing handshake. */
  terminate() {
    if (this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      abortHandshake(this, this._req, 'WebSocket was closed before the connection was established');
      return;
    }
    if (this._transport !== null) {
      this._readyState = CLOSING;
      this._terminated = true;
      // What this turn queued goes out first: ws writes every send at once, so data sent
      // before terminate() reaches the socket there too. Nothing after it.
      if (this._flushScheduled) flush(this);
      this._transport.destroy();
    }
  }

  // ---- internals ----

  /**
   * Fails the connection for a reason found in JavaScript (a limit): sends a close frame with
   * err's status, as the engine does for protocol errors, and reports err.
   */
  _failConnection(err) {
    if (this._readyState !== OPEN) return;
    binding.close(this._handle, err[kStatusCode]);
    this._readyState = CLOSING;
    this._endAfterFlush = true;
    scheduleFlush(this);
    this._setCloseTimer();
    this._errorEmitted = true;
    this._emitError(err);
  }

  /** Answers to pings pile up when the peer does not read them: past the limit, terminate. */
  _onPing(data) {
    if (
      this._autoPong &&
      this._readyState === OPEN &&
      this._maxPendingAutoPongs > 0 &&
      ++this._pendingAutoPongs > this._maxPendingAutoPongs
    ) {
      this.terminate();
      return;
    }
    this.emit('ping', data);
  }

  /**
   * A Blob could not be read (ws: the file behind it changed): every send waiting for it
   * fails with the error, and so does the connection, as in ws: 'error', then the socket is
   * ended without a close frame.
   */
  _onSendFailure(err) {
    if (this._readyState === CLOSED) return;
    if (this._readyState === OPEN) this._readyState = CLOSING;
    this._setCloseTimer();
    this._endAfterFlush = true;
    scheduleFlush(this);
    if (this._errorEmitted) return;
    this._errorEmitted = true;
    this._emitError(err);
  }

  _topicRegistry() {
    if (this._server === null) {
      const err = new Error('Topics belong to a server: this connection was not accepted by one');
      err.code = 'WS_ERR_TOPICS_UNSUPPORTED';
      throw err;
    }
    return this._server._topics;
  }

  _emitMessage(data, isBinary, fragmentEnds) {
    if (isBinary && this._binaryType !== 'nodebuffer') {
      if (this._binaryType === 'arraybuffer') data = toArrayBuffer(data);
      else if (this._binaryType === 'blob') data = new Blob(splitFragments(data, fragmentEnds));
      else data = splitFragments(data, fragmentEnds);
    }
    this.emit('message', data, isBinary);
    // Then the server's 'message' listeners, (ws, data, isBinary): one handler for every
    // connection, so an application needs no closure per connection (as uWS's handlers).
    // After the connection's own, as an event that bubbles from a connection to its server.
    const server = this._server;
    if (server !== null && server._events.message !== undefined) {
      server.emit('message', this, data, isBinary);
    }
  }

  /** A valid close frame arrived; the engine already queued our answer if one was due. */
  _onCloseFrame(code, reason) {
    this._closeCode = code;
    this._closeMessage = reason;
    if (this._readyState === OPEN) this._readyState = CLOSING;
    this._endAfterFlush = true;
    this._setCloseTimer();
  }

  /**
   * The engine handed over a large compressed message: it is inflated in the thread pool
   * (inflating takes about 1 ms per MiB) while delivery on this connection waits.
   */
  _inflateAsync(isBinary) {
    this._inflating = true;
    binding.inflateAsync(this._handle, (ok, data) => {
      this._inflating = false;
      if (this._transport === null) return; // closed meanwhile
      try {
        if (ok) this._emitMessage(data, isBinary);
        else this._onProtocolError();
      } finally {
        flush(this);
        if (!this._paused) deliverStashed(this);
      }
    });
  }

  /** The engine failed the connection (it queued a close frame with the status). */
  _onProtocolError() {
    const [message, code, status] = binding.errorInfo(this._handle);
    let err;
    if (code === 'WS_ERR_INVALID_COMPRESSED_DATA') {
      // What ws reports, zlib's error of corrupt input (ws's is zlib's own): code and errno
      // as Node's zlib has them.
      err = new Error(message);
      err.code = 'Z_DATA_ERROR';
      err.errno = -3;
    } else {
      err = code === 'WS_ERR_INVALID_UTF8' ? new Error(message) : new RangeError(message);
      err.code = code;
    }
    err[kStatusCode] = status;
    if (this._readyState === OPEN) this._readyState = CLOSING;
    this._endAfterFlush = true;
    this._setCloseTimer();
    if (this._errorEmitted) return;
    this._errorEmitted = true;
    this._emitError(err);
  }

  // ws throws when nothing listens for 'error'; a bad peer or a failed handshake must not
  // crash the process, so without a listener the error is only reflected in 'close'.
  _emitError(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  _emitClose() {
    this._readyState = CLOSED;
    if (this._topics !== null) this._server._topics.unsubscribeAll(this);
    // The server forgets it first, as ws's own 'close' listener (added before the
    // application's) would; a method call rather than a listener costs no closure per connection.
    if (this._server !== null) this._server._connectionClosed(this);
    this.emit('close', this._closeCode, this._closeMessage);
  }

  _onReceiveDrained() {
    if (this._transport !== null && this._readyState !== CLOSED) this._transport.resume();
  }

  _onTransportEnd() {
    if (this._readyState === OPEN) this._readyState = CLOSING;
    this._endAfterFlush = true;
    flush(this);
  }

  _onTransportClose() {
    this._readyState = CLOSED;
    if (this._closeTimer !== null) {
      clearTimeout(this._closeTimer);
      this._closeTimer = null;
    }
    const callbacks = this._sendCallbacks;
    this._sendCallbacks = null;
    if (callbacks !== null) {
      process.nextTick(runCallbacks, callbacks, new Error('WebSocket is not open: readyState 3 (CLOSED)'));
    }
    const both = CLOSE_SENT | CLOSE_RECEIVED;
    this._closedCleanly = (binding.closeState(this._handle) & both) === both;
    binding.release(this._handle);
    if (this._parksStreams) unwatchIdleStreams();
    this._closedSocket = this._transport.socket;
    this._transport = null;
    this._emitClose();
  }

  _setCloseTimer() {
    if (this._closeTimer !== null || this._transport === null) return;
    const transport = this._transport;
    this._closeTimer = setTimeout(() => transport.destroy(), this._closeTimeout);
  }
}

function toArrayBuffer(buf) {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) return buf.buffer;
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

/** The 'fragments' binaryType: one Buffer per non-empty frame, views into the message. */
function splitFragments(data, ends) {
  if (ends === undefined) return [data];
  const fragments = [];
  let start = 0;
  for (const end of ends) {
    fragments.push(data.subarray(start, end));
    start = end;
  }
  return fragments;
}

/** close()'s code as ws takes it: undefined (no status), or a valid code (truncated). */
function closeCode(code) {
  if (code === undefined) return undefined;
  const truncated = typeof code === 'number' ? Math.trunc(code) : NaN;
  if (!binding.isValidCloseCode(truncated)) {
    const err = new TypeError('First argument must be a valid error code number');
    err.code = 'WS_ERR_INVALID_CLOSE_CODE';
    throw err;
  }
  return truncated;
}

/**
 * close()'s reason as ws takes it: a string or bytes (checked by the engine), or undefined
 * when it has no length (none, an empty one, or a value such as a number, which ws ignores).
 */
function closeReason(data) {
  if (typeof data === 'string' || ArrayBuffer.isView(data) || isArrayBuffer(data)) {
    const length = byteLengthOf(data);
    if (length > 123) {
      const err = new RangeError('The message must not be greater than 123 bytes');
      err.code = 'WS_ERR_CLOSE_REASON_TOO_LONG';
      throw err;
    }
    return length === 0 ? undefined : data;
  }
  if (data === undefined || data === null || !data.length) return undefined;
  const err = new TypeError('Second argument must be a string or a Uint8Array');
  err.code = 'ERR_INVALID_ARG_TYPE';
  throw err;
}

// EventEmitter's methods without its constructor (see the constructor).
Object.setPrototypeOf(WebSocket.prototype, EventEmitter.prototype);
Object.setPrototypeOf(WebSocket, EventEmitter);

// The listener table is made when the first listener comes: a connection that never gets one
// (an application with server-level handlers) does without its 56 bytes. EventEmitter reads a
// missing table as an empty one everywhere, but would make a null-prototype one itself (see
// EVENTS_PROTO), so it is made here first.
beforeListenerAdded(WebSocket.prototype, EventEmitter.prototype, (ws) => {
  if (ws._events === undefined) ws._events = Object.create(EVENTS_PROTO);
});

defineFlags(WebSocket.prototype, FLAGS);
defineDeflateWindow(WebSocket.prototype, FLAGS.length);
defineRareState(WebSocket.prototype);
defineLimits(WebSocket.prototype);

for (const [index, name] of READY_STATES.entries()) {
  const descriptor = { enumerable: true, value: index };
  Object.defineProperty(WebSocket.prototype, name, descriptor);
  Object.defineProperty(WebSocket, name, descriptor);
}

for (const property of [
  'binaryType',
  'bufferedAmount',
  'extensions',
  'isPaused',
  'protocol',
  'readyState',
  'transport',
  'url'
]) {
  Object.defineProperty(WebSocket.prototype, property, { enumerable: true });
}

// onopen, onerror, onclose, onmessage: one handler each, alongside addEventListener ones.
for (const method of ['open', 'error', 'close', 'message']) {
  Object.defineProperty(WebSocket.prototype, `on${method}`, {
    configurable: true,
    enumerable: true,
    get() {
      for (const listener of this.listeners(method)) {
        if (listener[kForOnEventAttribute]) return listener[kListener];
      }
      return null;
    },
    set(handler) {
      for (const listener of this.listeners(method)) {
        if (listener[kForOnEventAttribute]) {
          this.removeListener(method, listener);
          break;
        }
      }
      if (typeof handler !== 'function') return;
      this.addEventListener(method, handler, { [kForOnEventAttribute]: true });
    }
  });
}

WebSocket.prototype.addEventListener = EventTarget.addEventListener;
WebSocket.prototype.removeEventListener = EventTarget.removeEventListener;

module.exports = WebSocket;
