'use strict';

// The native transport: the addon takes over an upgraded plain TCP socket. It duplicates the
// file descriptor, polls it on Node's own event loop, reads into one buffer shared by the
// thread and writes each connection's output with one system call per flush
// (src/napi/native_transport.c); Node's net.Socket (about 10 KB per connection) is destroyed.
// Sockets it cannot take (TLS, any other Duplex, Windows, data already queued in Node) stay on
// the stream transport.

const net = require('net');

const binding = require('./binding');
const { defineFlags } = require('./flags');
const { receive, receiveLent, copyOf } = require('./receiver');
const {
  installSocketFace,
  releaseSocket,
  socketActive,
  socketClosed,
  socketDrained,
  socketEnded
} = require('./native-socket');

const {
  READ: EV_READ,
  READ_MORE: EV_READ_MORE,
  FLUSH: EV_FLUSH,
  END: EV_END,
  DRAIN: EV_DRAIN,
  CLOSE: EV_CLOSE
} = binding.transportEvents || {}; // (absent where the addon has no native transport)

const TRANSPORTS = ['auto', 'native', 'stream'];

// WS_NATIVE_TRANSPORT=stream turns the native transport off for the whole process (to rule it
// out when investigating a problem); any other value leaves it on.
// (It exists on Linux only: see src/napi/native_transport.c.)
const disabled =
  process.env.WS_NATIVE_TRANSPORT === 'stream' || typeof binding.transportOpen !== 'function';

// What tells the addon a socket is ready: on Linux one epoll set per thread ('epoll', the
// default there), elsewhere a libuv poll handle per socket on Node's own loop ('uv': kqueue on
// macOS). WS_NATIVE_POLLER=uv forces the portable one where both exist.
const POLLERS = binding.transportPollers || [];
const poller = process.env.WS_NATIVE_POLLER || POLLERS[0];
if (!disabled && !POLLERS.includes(poller)) {
  const err = new Error(
    `WS_NATIVE_POLLER must be one of ${POLLERS.join(', ')} here; got ${process.env.WS_NATIVE_POLLER}`
  );
  err.code = 'ERR_INVALID_ARG_VALUE';
  throw err;
}

/** Checks the `transport` option; returns the value to use ('auto' and 'native' act alike). */
function transportOption(value) {
  if (value === undefined || value === null) return 'auto';
  if (!TRANSPORTS.includes(value)) {
    const err = new TypeError(
      `The "transport" option must be 'auto', 'native' or 'stream'; got ${value}`
    );
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  return value;
}

/**
 * Whether the addon can take this socket over: a plain TCP (or Unix-domain) socket from
 * net/http, open both ways, with a descriptor, and nothing buffered in Node that would be lost.
 */
function canAdopt(socket, transport) {
  if (disabled || transport === 'stream') return false;
  if (!(socket instanceof net.Socket) || socket.encrypted || socket.alpnProtocol !== undefined) {
    return false;
  }
  const handle = socket._handle;
  if (
    handle === null ||
    handle === undefined ||
    typeof handle.fd !== 'number' ||
    handle.fd < 0 ||
    typeof handle.readStop !== 'function'
  ) {
    return false;
  }
  const kind = handle.constructor && handle.constructor.name;
  if (kind !== 'TCP' && kind !== 'Pipe') return false;
  return (
    !socket.destroyed &&
    !socket.connecting &&
    socket.readable &&
    socket.writable &&
    socket.writableLength === 0 &&
    socket.readableLength === 0 &&
    socket.listenerCount('data') === 0
  );
}

// Every read of the thread lands in this buffer (made with the first transport). A small read
// is copied out at once into a Buffer of its own (pooled, as Buffer.allocUnsafe() does), which
// costs less than a Buffer made in C for each read, and its messages are views of that copy.
// A large read is lent to the receiver instead (receiveLent): it is mostly the body of a large
// message, which the engine copies into the message's own memory anyway, so a JS copy of the
// read would be a second copy of every byte (it cost the 1 MiB echo row about 12% of its rate).
// Node reads 64 KiB at a time; a larger buffer quarters the calls for large messages.
const READ_BUFFER_SIZE = 256 * 1024;
const LEND_MIN = 64 * 1024;
let readBuffer = null;

// The open transports of this thread, by id (their connection's index in the addon's table of
// connections): C names a transport by it (so it needs no JS reference of its own), and this
// entry keeps the connection alive while open.
const open = [];

// While C delivers one batch of reads (one turn of its epoll set), the connections whose
// replies wait for the batch's last read, so that they leave back to back (see read_once in
// src/napi/native_transport.c).
let holding = false;
const held = [];

// The addresses of the transports whose application asked for them (see _addressInfo).
const addresses = new WeakMap();

class NativeTransport {
  constructor(ws) {
    this._ws = ws;
    this._pending = 0; // bytes the kernel did not take yet (as of the last flush)
    this._waiting = null; // write callbacks waiting for those bytes, per flush
    this._flags = 0; // bits (see defineFlags below): 8 bytes per boolean less per connection
  }

  /**
   * Takes the socket over: stops Node reading it, duplicates its descriptor, writes a server's
   * 101 response from C (a client has none to write), then destroys Node's socket (never
   * end(): that would send FIN).
   *
   * @returns {NativeTransport|null} null if the addon could not take it (the caller falls
   *   back to the stream transport)
   */
  static adopt(ws, socket, head, response) {
    const transport = new NativeTransport(ws);
    const handle = socket._handle;
    if (handle.readStop() !== 0) return null;
    try {
      if (readBuffer === null) {
        const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
        binding.transportInit(dispatch, buffer, poller);
        readBuffer = buffer;
      }
      open[binding.transportOpen(handle.fd, ws._handle, !noDelaySet(socket))] = transport;
    } catch {
      handle.readStart();
      return null;
    }
    if (response !== undefined) {
      binding.transportFlush(ws._handle, [Buffer.from(response, 'latin1')]);
    }
    // The application's socket stays a handle to the connection (and answers
    // req.socket.remoteAddress from it, on demand: reading the addresses up front would cost
    // every handshake); Node's side of it is freed.
    releaseSocket(socket, ws, transport);
    // Delivered like any read, after 'connection' (which the caller emits synchronously).
    if (head.length > 0) process.nextTick(receiveHead, transport, head);
    return transport;
  }

  get kind() {
    return 'native';
  }

  /** What ws._socket is: this transport, with net.Socket's members (lib/native-socket.js). */
  get socket() {
    return this;
  }

  /**
   * The receive loop's flush, held back until the end of the batch of reads being delivered.
   * Not when it carries a large payload (one written without a copy, see _queueWrite): then
   * the kernel is better put to work at once (holding 1 MiB replies cost that echo row 10-20%
   * of its rate), and a peer woken for it has plenty to read anyway.
   *
   * @returns {boolean} false when no batch is being delivered or the flush should not wait
   *   (the caller flushes now)
   */
  holdFlush(ws) {
    if (!holding || ws._writeQueue !== null) return false;
    if (!ws._flushScheduled) {
      ws._flushScheduled = true;
      held.push(ws);
    }
    return true;
  }

  get writableLength() {
    return this._pending;
  }

  /**
   * Writes queue's buffers, then the engine's output, in one system call.
   *
   * @param {object} handle the connection's engine handle
   * @param {Buffer[]|null} queue
   * @param {Function[]|null} callbacks send callbacks to call once these bytes are written
   */
  flush(handle, queue, callbacks) {
    const pending = this._closed ? -1 : binding.transportFlush(handle, queue);
    if (pending < 0) {
      if (callbacks !== null) failCallbacks(callbacks);
      return;
    }
    this._pending = pending;
    socketActive(this);
    if (pending > 0) {
      if (callbacks !== null) {
        if (this._waiting === null) this._waiting = [callbacks];
        else this._waiting.push(callbacks);
      }
    } else if (callbacks !== null || this._ws._needDrain) {
      process.nextTick(afterWrite, this._ws, callbacks);
    }
  }

  pause() {
    if (this._paused || this._closed) return;
    this._paused = true;
    binding.transportPause(this._ws._handle, true);
  }

  resume() {
    if (!this._paused || this._closed) return;
    this._paused = false;
    binding.transportPause(this._ws._handle, false);
  }

  _addressInfo() {
    let info = addresses.get(this);
    if (info === undefined) {
      // Read once, on demand, and kept outside the transport: most applications never ask,
      // and a field would cost every connection 8 bytes.
      info = this._closed ? undefined : binding.transportAddress(this._ws._handle);
      if (info === undefined) return [];
      addresses.set(this, info);
    }
    return info;
  }
}

// Node records setNoDelay() under an internal symbol (http.Server sets it on every connection);
// when it says the socket has it, the system call is skipped. Found once, by its description.
let kSetNoDelay;
function noDelaySet(socket) {
  if (kSetNoDelay === undefined) {
    kSetNoDelay =
      Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay') || null;
  }
  return kSetNoDelay !== null && socket[kSetNoDelay] === true;
}

defineFlags(NativeTransport.prototype, [
  '_paused',
  '_ended', // FIN requested
  '_closed',
  '_destroyed', // destroy() called (the close is told from the loop)
  '_peerEnded', // the peer's FIN arrived
  '_statsRead' // bytesRead/bytesWritten were asked for: kept at the close
]);
installSocketFace(NativeTransport);

function receiveHead(transport, head) {
  if (!transport._closed) receive(transport._ws, head, 0);
}

function afterWrite(ws, callbacks) {
  ws._afterWrite(undefined, callbacks);
}

function failCallbacks(callbacks) {
  const err = new Error('The socket is not writable');
  for (const cb of callbacks) process.nextTick(cb, err);
}

function flushHeld() {
  holding = false;
  for (let i = 0; i < held.length; i++) {
    const ws = held[i];
    if (ws._flushScheduled) ws._flush();
  }
  held.length = 0;
}

// Every event of every native transport of this thread comes through here.
function dispatch(id, event, arg) {
  if (event === EV_FLUSH) {
    flushHeld();
    return;
  }
  const transport = open[id];
  const ws = transport._ws;
  switch (event) {
    case EV_READ:
    case EV_READ_MORE: {
      holding = true;
      socketActive(transport);
      try {
        if (arg >= LEND_MIN) receiveLent(ws, readBuffer.subarray(0, arg));
        else receive(ws, copyOf(readBuffer, 0, arg), 0);
      } finally {
        if (event === EV_READ) flushHeld();
      }
      break;
    }
    case EV_END:
      socketEnded(transport);
      ws._onTransportEnd();
      break;
    case EV_DRAIN: {
      transport._pending = 0;
      const waiting = transport._waiting;
      transport._waiting = null;
      if (waiting === null) {
        ws._checkDrain();
      } else {
        for (const callbacks of waiting) ws._afterWrite(undefined, callbacks);
      }
      socketDrained(transport);
      break;
    }
    case EV_CLOSE: {
      open[id] = undefined;
      transport._closed = true;
      transport._pending = 0;
      const waiting = transport._waiting;
      transport._waiting = null;
      if (waiting !== null) for (const callbacks of waiting) failCallbacks(callbacks);
      socketClosed(transport, arg, ws._handle);
      ws._onTransportClose();
      break;
    }
  }
}

module.exports = { NativeTransport, canAdopt, transportOption };
