'use strict';

// One WebSocket connection: the ws-compatible EventEmitter API, the browser's EventTarget API,
// the ready-state machine and the JavaScript half of the closing handshake. Bytes come and go
// through a transport; every byte is handled by the native engine (binding).

const EventEmitter = require('events');
const { Blob } = require('buffer');

const binding = require('./binding');
const { EventTarget } = require('./event-target');
const { defineFlags } = require('./flags');
const { DEFAULT_LIMITS, limitsOf, defineRareState, defineLimits, defineDeflateWindow } = require('./rare-state');
const StreamTransport = require('./stream-transport');
const { NativeTransport, canAdopt } = require('./native-transport');
const { deliverStashed, isHeld } = require('./receiver');
const { initAsClient, abortHandshake } = require('./client');
const Sender = require('./sender');
const { watchIdleStreams, unwatchIdleStreams } = require('./permessage-deflate');
const {
  BINARY_TYPES,
  CLOSED,
  CLOSING,
  CONNECTING,
  DEFAULT_MAX_FRAGMENTS,
  DEFAULT_MAX_PAYLOAD,
  EMPTY_BUFFER,
  kForOnEventAttribute,
  kListener,
  kStatusCode,
  OPEN,
  READY_STATES
} = require('./constants');

const { OP_TEXT, OP_BINARY, OP_PING, OP_PONG, ASYNC_DEFLATE_MIN } = binding.constants;

// A server sends binary payloads from this size on without copying them: the engine queues
// only the frame header and the caller's bytes are written right after it (one corked write).
// Below it, one copy into the connection's output is cheaper than another write chunk.
const DIRECT_WRITE_MIN = 32 * 1024;

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
  '_closeFrameReceived',
  '_closeFrameSent',
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
    // connection. The listener table is a fast-mode object (see EVENTS_PROTO).
    this._events = Object.create(EVENTS_PROTO);
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
      this._queueSend(() => this.close(code, data), 0, undefined);
      return;
    }
    if (this._readyState === CLOSING) {
      if (this._closeFrameSent && (this._closeFrameReceived || this._errorEmitted)) {
        this._endAfterFlush = true;
        this._scheduleFlush();
      }
      return;
    }
    binding.close(this._handle, code, data);
    this._readyState = CLOSING;
    this._closeFrameSent = true;
    this._scheduleFlush();
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
    this._sendControl(OP_PING, data, mask, cb);
  }

  /**
   * @param {*} [data]
   * @param {boolean} [mask] ignored, as for ping()
   * @param {(err?: Error) => void} [cb]
   */
  pong(data, mask, cb) {
    this._sendControl(OP_PONG, data, mask, cb);
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
    if (typeof options === 'function') {
      cb = options;
      options = undefined;
    } else {
      cb = callbackArgument(cb);
    }
    if (this._readyState !== OPEN) {
      if (this._readyState === CONNECTING) {
        throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
      }
      sendAfterClose(this, byteLengthOf(data), cb);
      return false;
    }

    if (this._sendQueue !== null) {
      this._queueSend(() => this.send(data, options, cb), byteLengthOf(data), cb);
      return this._belowHighWaterMark();
    }
    if (isBlob(data)) {
      this._whenBlobRead(data, (bytes) => this.send(bytes, { binary: true, ...options }, cb), cb);
      return this._belowHighWaterMark();
    }

    let binary = true;
    if (typeof data === 'string') {
      binary = false;
    } else if (typeof data === 'number') {
      data = data.toString();
      binary = false;
    } else if (!ArrayBuffer.isView(data) && !isArrayBuffer(data)) {
      // No data (as ws: any falsy value) is an empty binary message.
      if (!data) data = EMPTY_BUFFER;
      else data = isBufferList(data) ? Buffer.concat(data) : Buffer.from(data);
    }
    let fin = true;
    let compress = this._deflate;
    if (options !== undefined && options !== null) {
      if (options.binary !== undefined) binary = !!options.binary;
      if (options.fin !== undefined) fin = !!options.fin;
      if (options.compress === false) compress = false;
    }
    // A string's UTF-8 size is measured here only when something needs it before the engine,
    // which returns it (-1 until then).
    let size = typeof data === 'string' ? -1 : data.byteLength;
    // Past the high-water mark, check the hard limit on what may wait for a peer that does
    // not read: drop this message, or fail the connection (1008) and free everything.
    if (this._needDrain && this._maxBufferedAmount > 0) {
      if (size < 0) size = Buffer.byteLength(data);
      if (this.bufferedAmount + size > this._maxBufferedAmount) {
        this._onBufferOverflow(cb);
        return false;
      }
    }

    const opcode = binary ? OP_BINARY : OP_TEXT;
    if (compress && fin && !this._sendingFragments && atLeast(data, size, ASYNC_DEFLATE_MIN)) {
      this._sendCompressedAsync(data, size < 0 ? Buffer.byteLength(data) : size, opcode, cb);
      return this._belowHighWaterMark();
    }
    this._sendingFragments = !fin;
    if (!compress && size >= DIRECT_WRITE_MIN && this._isServer) {
      binding.sendHeader(this._handle, opcode, fin, false, size);
      this._queueWrite(binding.takeOutput(this._handle));
      this._queueWrite(toBuffer(data));
      this._unflushedBytes += size;
    } else {
      this._unflushedBytes += binding.send(this._handle, data, opcode, fin, compress);
    }
    if (cb !== undefined) this._addSendCallback(cb);
    this._scheduleFlush();
    return this._belowHighWaterMark();
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
      if (this._flushScheduled) this._flush();
      this._transport.destroy();
    }
  }

  // ---- internals ----

  _onBufferOverflow(cb) {
    const err = new Error(
      `Send buffer limit exceeded: more than ${this._maxBufferedAmount} bytes wait for a ` +
        'peer that is not reading'
    );
    err.code = 'WS_ERR_BUFFER_OVERFLOW';
    if (this._dropOnOverflow) {
      if (cb) process.nextTick(cb, err);
      return;
    }
    err[kStatusCode] = 1008;
    if (cb) process.nextTick(cb, err);
    this._failConnection(err);
    // The peer is not reading, so it would not read a close frame either: free it all now.
    this.terminate();
  }

  /**
   * Fails the connection for a reason found in JavaScript (a limit): sends a close frame with
   * err's status, as the engine does for protocol errors, and reports err.
   */
  _failConnection(err) {
    if (this._readyState !== OPEN) return;
    binding.close(this._handle, err[kStatusCode]);
    this._readyState = CLOSING;
    this._closeFrameSent = true;
    this._endAfterFlush = true;
    this._scheduleFlush();
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

  _belowHighWaterMark() {
    if (this.bufferedAmount < this._highWaterMark) return true;
    this._needDrain = true;
    return false;
  }

  /**
   * Sends made while a Blob is read or a message is compressed wait in _sendQueue, in call
   * order, each with its bytes (counted in bufferedAmount meanwhile) and its callback (which
   * gets the error if they never go out).
   */
  _queueSend(run, bytes, cb) {
    this._sendQueue.push({ run, bytes, cb });
    this._queuedBytes += bytes;
  }

  /** Starts an asynchronous step of `bytes`: later sends wait for it (see _queueSend). */
  _holdSends(bytes) {
    this._sendQueue = [];
    this._queuedBytes += bytes;
  }

  /** Ends the step begun by _holdSends(bytes); returns the sends that waited for it. */
  _takeHeldSends(bytes) {
    const waiting = this._sendQueue;
    this._sendQueue = null;
    this._queuedBytes -= bytes;
    return waiting;
  }

  /** Runs sends that waited, in order, until one of them begins another asynchronous step. */
  _runHeldSends(waiting) {
    for (let i = 0; i < waiting.length; i++) {
      if (this._sendQueue !== null) {
        // Another asynchronous step began: the rest waits for it too (still counted).
        this._sendQueue.push(...waiting.slice(i));
        return;
      }
      this._queuedBytes -= waiting[i].bytes;
      waiting[i].run();
    }
  }

  /** Fails a send and those that waited behind it: each callback gets err, in order. */
  _failHeldSends(waiting, cb, err) {
    const callbacks = cb === undefined ? [] : [cb];
    for (const entry of waiting) {
      this._queuedBytes -= entry.bytes;
      if (entry.cb !== undefined) callbacks.push(entry.cb);
    }
    runCallbacks(callbacks, err);
  }

  /** Whether nothing can be written any more (terminated, destroyed, ended or closed). */
  _cannotWrite() {
    return this._transport === null || this._terminated || !this._transport.writable;
  }

  /** Reads a Blob, then sendBytes(bytes); sends made meanwhile wait for it. */
  _whenBlobRead(blob, sendBytes, cb) {
    const size = blob.size;
    this._holdSends(size);
    // (Continued in a tick of its own, so that what the callbacks throw is not a rejection.)
    blob.arrayBuffer().then(
      (arrayBuffer) => process.nextTick(blobRead, this, size, arrayBuffer, sendBytes, cb),
      (err) => process.nextTick(blobFailed, this, size, err, cb)
    );
  }

  /**
   * Compresses a large message in the thread pool (zlib takes milliseconds per 64 KiB, which
   * would stall every other connection); sends made meanwhile wait for it.
   */
  _sendCompressedAsync(data, size, opcode, cb) {
    this._holdSends(size);
    binding.compressAsync(this._handle, data, opcode, (err) => {
      const waiting = this._takeHeldSends(size);
      if (!err && this._cannotWrite()) {
        err = new Error('The socket was closed while data was being compressed');
      }
      if (err) {
        this._failHeldSends(waiting, cb, err);
        return;
      }
      this._unflushedBytes += size;
      if (cb !== undefined) this._addSendCallback(cb);
      this._scheduleFlush();
      this._runHeldSends(waiting);
    });
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
    this._scheduleFlush();
    if (this._errorEmitted) return;
    this._errorEmitted = true;
    this._emitError(err);
  }

  _sendControl(opcode, data, mask, cb) {
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof mask === 'function') {
      cb = mask;
    } else {
      cb = callbackArgument(cb);
    }
    if (this._readyState === CONNECTING) {
      throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    }
    if (typeof data === 'number') data = data.toString();
    const size = byteLengthOf(data);
    if (size > 125) {
      const err = new RangeError('The data size must not be greater than 125 bytes');
      err.code = 'WS_ERR_CONTROL_PAYLOAD_TOO_LARGE';
      throw err;
    }
    if (this._readyState !== OPEN) {
      sendAfterClose(this, byteLengthOf(data), cb);
      return;
    }
    if (this._sendQueue !== null) {
      this._queueSend(() => this._sendControl(opcode, data, mask, cb), size, cb);
      return;
    }
    if (isBlob(data)) {
      this._whenBlobRead(data, (bytes) => this._sendControl(opcode, bytes, mask, cb), cb);
      return;
    }
    if (data === undefined || data === null) data = EMPTY_BUFFER;
    else if (typeof data !== 'string' && !ArrayBuffer.isView(data) && !isArrayBuffer(data)) {
      data = Buffer.from(data);
    }
    binding.send(this._handle, data, opcode, true, false);
    this._unflushedBytes += size;
    if (cb !== undefined) this._addSendCallback(cb);
    this._scheduleFlush();
  }

  _queueWrite(buffer) {
    if (this._writeQueue === null) this._writeQueue = [buffer];
    else this._writeQueue.push(buffer);
  }

  _topicRegistry() {
    if (this._server === null) {
      const err = new Error('Topics belong to a server: this connection was not accepted by one');
      err.code = 'WS_ERR_TOPICS_UNSUPPORTED';
      throw err;
    }
    return this._server._topics;
  }

  /**
   * Queues whole frames built once for many connections (topics).
   *
   * @returns {boolean} false if they cannot go out now (a fragmented send is in progress)
   */
  _sendFramed(frame, compressed = false) {
    // A whole message cannot go in between the fragments of one this connection is sending.
    if (this._sendingFragments) return false;
    if (this._sendQueue !== null) {
      this._queueSend(() => this._sendFramed(frame, compressed), frame.length, undefined);
      return true;
    }
    if (frame.length >= DIRECT_WRITE_MIN) {
      const out = binding.takeOutput(this._handle);
      if (out !== undefined) this._queueWrite(out);
      this._queueWrite(frame);
      // (An empty append: only tells the deflater its window no longer matches the peer's.)
      if (compressed) binding.sendFramed(this._handle, EMPTY_BUFFER, true);
    } else {
      binding.sendFramed(this._handle, frame, compressed);
    }
    this._unflushedBytes += frame.length;
    this._scheduleFlush();
    return true;
  }

  /**
   * ws._sender.sendFrame(list, cb): whole frames built beforehand, queued as they are. On a
   * server small ones join the engine's output (one copy); otherwise the engine's output so
   * far and these buffers are written after each other, without a copy.
   */
  _sendFrames(list, cb) {
    cb = callbackArgument(cb);
    const buffers = framesOf(list);
    let size = 0;
    for (const buffer of buffers) size += buffer.length;
    if (this._readyState !== OPEN) {
      if (this._readyState === CONNECTING) {
        throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
      }
      sendAfterClose(this, 0, cb); // (ws does not count these in bufferedAmount)
      return false;
    }
    if (size === 0) throw framesError('The frame list is empty');
    const first = buffers[0][0];
    const isData = (first & 0x08) === 0;
    // A data frame cannot go in between the fragments of a message this connection sends.
    if (isData && this._sendingFragments) {
      const err = new Error('A frame cannot be sent while a fragmented message is being sent');
      err.code = 'WS_ERR_FRAGMENTED_SEND';
      throw err;
    }
    // RSV1 on a data frame: compressed by someone else's deflater, so ours must not refer back
    // past it (sendFramed's compressed flag); the engine does that only for a server.
    const compressed = isData && (first & 0x40) !== 0 && this._deflate;
    if (compressed && !this._isServer) {
      const err = new Error(
        'A compressed frame built elsewhere cannot be sent on a client connection that ' +
          'negotiated permessage-deflate'
      );
      err.code = 'WS_ERR_UNSUPPORTED_FRAME';
      throw err;
    }
    if (this._sendQueue !== null) {
      this._queueSend(() => this._sendFrames(buffers, cb), size, cb);
      return this._belowHighWaterMark();
    }
    if (this._isServer && !this._sendingFragments && size < DIRECT_WRITE_MIN) {
      binding.sendFramed(this._handle, buffers.length === 1 ? buffers[0] : Buffer.concat(buffers), compressed);
    } else {
      const out = binding.takeOutput(this._handle);
      if (out !== undefined) this._queueWrite(out);
      for (const buffer of buffers) this._queueWrite(buffer);
      if (compressed) binding.sendFramed(this._handle, EMPTY_BUFFER, true);
    }
    this._unflushedBytes += size;
    if (cb !== undefined) this._addSendCallback(cb);
    this._scheduleFlush();
    return this._belowHighWaterMark();
  }

  _addSendCallback(cb) {
    if (this._sendCallbacks === null) this._sendCallbacks = [cb];
    else this._sendCallbacks.push(cb);
  }

  _scheduleFlush() {
    // While a chunk is being delivered, the receive loop flushes once at its end.
    if (this._receiving || this._flushScheduled) return;
    this._flushScheduled = true;
    process.nextTick(flushTick, this);
  }

  /** Writes everything queued in one write, then ends the socket if the close is complete. */
  _flush() {
    this._flushScheduled = false;
    this._unflushedBytes = 0; // (the transport counts what it could not write yet)
    if (this._transport === null) return;
    const queue = this._writeQueue;
    this._writeQueue = null;
    const callbacks = this._sendCallbacks;
    this._sendCallbacks = null;
    // Payloads written without a copy go out first, then the engine's output, in one write.
    this._transport.flush(this._handle, queue, callbacks);
    // Everything reached the operating system: the peer is reading our pongs.
    if (this._pendingAutoPongs !== 0 && this._transport.writableLength === 0) {
      this._pendingAutoPongs = 0;
    }
    if (this._endAfterFlush && !this._ended) {
      this._ended = true;
      this._transport.end();
    }
  }

  /**
   * The bytes of a flush were written (or failed): its callbacks, then 'drain'. Each runs
   * even if one before it throws; the first exception is rethrown afterwards (see
   * runCallbacks), so one throwing callback cannot starve the others or stop 'drain'.
   */
  _afterWrite(err, callbacks) {
    let thrown = NO_EXCEPTION;
    if (callbacks !== null) thrown = callEach(callbacks, err || null);
    try {
      this._checkDrain();
    } catch (e) {
      if (thrown === NO_EXCEPTION) thrown = e;
    }
    if (thrown !== NO_EXCEPTION) process.nextTick(rethrow, thrown);
  }

  _checkDrain() {
    if (this._transport !== null && this._transport.writableLength === 0) {
      this._pendingAutoPongs = 0;
    }
    if (!this._needDrain || this._readyState !== OPEN) return;
    if (this.bufferedAmount < this._highWaterMark) {
      this._needDrain = false;
      this.emit('drain');
    }
  }

  _emitMessage(data, isBinary, fragmentEnds) {
    if (isBinary && this._binaryType !== 'nodebuffer') {
      if (this._binaryType === 'arraybuffer') data = toArrayBuffer(data);
      else if (this._binaryType === 'blob') data = new Blob(splitFragments(data, fragmentEnds));
      else data = splitFragments(data, fragmentEnds);
    }
    this.emit('message', data, isBinary);
  }

  /** A valid close frame arrived; the engine already queued our answer if one was due. */
  _onCloseFrame(code, reason) {
    this._closeFrameReceived = true;
    this._closeFrameSent = true;
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
        this._flush();
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
    this._closeFrameSent = true;
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
    this._flush();
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

function flushTick(ws) {
  ws._flush();
}

// Send callbacks. Each one runs even when one before it throws; the first exception is then
// rethrown in a tick of its own, where it is an uncaught exception as any other (Node's
// streams report a throwing write callback that way too).
const NO_EXCEPTION = Symbol('no exception');

/** Calls each callback with err; returns the first exception thrown, or NO_EXCEPTION. */
function callEach(callbacks, err) {
  let thrown = NO_EXCEPTION;
  for (let i = 0; i < callbacks.length; i++) {
    try {
      callbacks[i](err);
    } catch (e) {
      if (thrown === NO_EXCEPTION) thrown = e;
    }
  }
  return thrown;
}

function runCallbacks(callbacks, err) {
  const thrown = callEach(callbacks, err);
  if (thrown !== NO_EXCEPTION) process.nextTick(rethrow, thrown);
}

function rethrow(err) {
  throw err;
}

/** A send's callback argument: a function, or undefined/null for none. */
function callbackArgument(cb) {
  if (cb === undefined || cb === null) return undefined;
  if (typeof cb !== 'function') {
    const err = new TypeError(`The "cb" argument must be of type function; got ${typeof cb}`);
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  return cb;
}

function framesError(message) {
  const err = new TypeError(message);
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

/** sendFrame()'s list as Buffers: each a Buffer, another binary view, or a string (UTF-8). */
function framesOf(list) {
  if (!Array.isArray(list)) throw framesError('The "list" argument must be an array of Buffers');
  return list.map((item) => {
    if (typeof item === 'string') return Buffer.from(item);
    if (ArrayBuffer.isView(item) || isArrayBuffer(item)) return toBuffer(item);
    throw framesError('The "list" argument must be an array of Buffers');
  });
}

function blobRead(ws, size, arrayBuffer, sendBytes, cb) {
  const waiting = ws._takeHeldSends(size);
  if (ws._cannotWrite()) {
    ws._failHeldSends(waiting, cb, new Error('The socket was closed while the blob was being read'));
    return;
  }
  // Its own send goes first, before those that waited (it may itself hold them again).
  if (ws._readyState === OPEN) sendBytes(Buffer.from(arrayBuffer));
  else sendAfterClose(ws, arrayBuffer.byteLength, cb);
  ws._runHeldSends(waiting);
}

function blobFailed(ws, size, err, cb) {
  ws._failHeldSends(ws._takeHeldSends(size), cb, err);
  ws._onSendFailure(err);
}

function isArrayBuffer(value) {
  return (
    value instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)
  );
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
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

/**
 * Whether a message has at least `min` bytes; a string is measured only when its length does
 * not decide (UTF-8 takes one to three bytes per UTF-16 unit). size: -1 for a string not
 * measured yet.
 */
function atLeast(data, size, min) {
  if (size >= 0) return size >= min;
  if (data.length >= min) return true;
  if (data.length * 3 < min) return false;
  return Buffer.byteLength(data) >= min;
}

/** An array of Buffers (a 'fragments' message): sent as one message of their bytes. */
function isBufferList(value) {
  return Array.isArray(value) && value.length > 0 && value.every((v) => v instanceof Uint8Array);
}

function isBlob(value) {
  return typeof Blob !== 'undefined' && value instanceof Blob;
}

function byteLengthOf(data) {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (isBlob(data)) return data.size;
  if (data && typeof data.byteLength === 'number') return data.byteLength;
  return 0;
}

// As ws: data sent after close is counted in bufferedAmount and its callback gets an error.
function sendAfterClose(ws, bytes, cb) {
  if (bytes > 0) ws._bufferedAmount += bytes;
  if (cb) {
    const state = ws._readyState;
    const err = new Error(`WebSocket is not open: readyState ${state} (${READY_STATES[state]})`);
    process.nextTick(cb, err);
  }
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
