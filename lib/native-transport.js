'use strict';

// The native transport: the addon takes over an upgraded plain TCP socket. It duplicates the
// file descriptor, polls it on Node's own event loop, reads into one buffer shared by the
// thread, parses what it reads in C, and hands JavaScript the events of all the sockets read
// in one turn at once (dispatchBatch below; src/napi/native_receive.c); each connection's
// output leaves with one system call per flush. Node's net.Socket (about 10 KB per connection)
// is released. Sockets it cannot take (TLS, any other Duplex, Windows, data already queued in
// Node) stay on the stream transport.

const net = require('net');

const binding = require('./binding');
const { defineFlags } = require('./flags');
const { withRoomAt } = require('./handle-list');
const { EMPTY_BUFFER, kHandshakeSocket } = require('./constants');
const { receive, deliverParsed } = require('./receiver');
const { flush, afterWrite, checkDrain } = require('./sender');
const {
  installSocketFace,
  releaseSocket,
  socketActive,
  socketClosed,
  socketData,
  socketDrained,
  socketEnded
} = require('./native-socket');

const { EV_FLAG_BINARY, EV_FLAG_FRAGMENTS, EV_FLAG_OBJECT } = binding.constants;
const {
  REST: EV_REST,
  END: EV_END,
  DRAIN: EV_DRAIN,
  CLOSE: EV_CLOSE,
  HANDSHAKE: EV_HANDSHAKE,
  DATA: EV_DATA,
  BATCH_HEADER,
  BATCH_STRIDE,
  BATCH_COUNT,
  BATCH_SPAN_START,
  BATCH_SPAN_END,
  BATCH_IN_PLACE,
  BATCH_HANDOFF,
  FLUSH_CLOSED
} = binding.transportEvents || {}; // (absent where the addon has no native transport)

const TRANSPORTS = ['auto', 'native', 'stream'];

// WS_NATIVE_TRANSPORT=stream turns the native transport off for the whole process (to rule it
// out when investigating a problem); any other value leaves it on.
// (It exists on every Unix, not on Windows: see src/napi/native_transport.c.)
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

/** Whether a connection with this `transport` option may use the native transport. */
function usable(transport) {
  return !disabled && transport !== 'stream';
}

/** Sets the native transport up for this thread (once): the read buffer and the batch table. */
function ensureNativeTransport() {
  if (readBuffer !== null) return;
  const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  const events = new Uint32Array(BATCH_HEADER + TABLE_EVENTS * BATCH_STRIDE);
  binding.transportInit(dispatchBatch, buffer, events, objects, poller);
  readBuffer = buffer;
  table = events;
}

// The native listener's (lib/native-listener.js): told of each upgrade request it accepted.
let handshakeHandler = null;
function onHandshake(handler) {
  handshakeHandler = handler;
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
  if (socket[kHandshakeSocket] === true) return true; // (the native listener's: always native)
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

// Every read of the thread lands in this buffer (made with the first transport), one after
// another within a turn; C parses them there, and the events of the turn come in one table.
// Payloads left in place are copied out once per batch (they are views of that copy), those
// the engine assembled come as Buffers of their own (objects). Node reads 64 KiB at a time; a
// larger buffer takes several sockets' reads, or a quarter of the calls for large messages.
const READ_BUFFER_SIZE = 256 * 1024;
const TABLE_EVENTS = 1024;
// A batch whose payloads in place come to this many bytes keeps the read buffer instead of
// copying them (when C says it may: BATCH_HANDOFF): its payloads of VIEW_MIN bytes and up are
// views of it, and the next reads go into a fresh buffer. A copy of them would cost as much
// as the kernel's own copy out of the socket. Smaller payloads are still copied, so a small
// message an application keeps never pins the whole buffer; a kept view pins at most 8x its
// size.
const HANDOFF_MIN = 64 * 1024;
const VIEW_MIN = 32 * 1024;
let readBuffer = null;
let viewsTaken = false; // payloads of this batch are views of readBuffer
let table = null;
const objects = [];

// The open transports of this thread, by id (their connection's index in the addon's table of
// connections): C names a transport by it (so it needs no JS reference of its own), and this
// entry keeps the connection alive while open.
const open = [];

// The connections that had events in the batch being delivered: their replies are written
// when the batch ends (by JS if it has more to do than write the engine's output, else by C).
const delivered = [];

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
    if (socket[kHandshakeSocket] === true) return adoptHandshake(transport, ws, socket, head, response);
    const handle = socket._handle;
    if (handle.readStop() !== 0) return null;
    try {
      ensureNativeTransport();
      // (The 101, when there is one, is written by C once the socket is its own.)
      open[binding.transportOpen(handle.fd, ws._handle, !noDelaySet(socket), response)] = transport;
    } catch {
      handle.readStart();
      return null;
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

  /** Joins the connections flushed together at the end of this tick (flushScheduled()). */
  scheduleFlush(ws) {
    if (scheduled.push(ws) === 1) process.nextTick(flushScheduled);
  }

  /** What ws._socket is: this transport, with net.Socket's members (lib/native-socket.js). */
  get socket() {
    return this;
  }

  /** The receive loop (parse() in lib/receiver.js) flushes each chunk's replies at once. */
  holdFlush() {
    return false;
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
      process.nextTick(afterWrite, this._ws, undefined, callbacks);
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
  '_statsRead', // bytesRead/bytesWritten were asked for: kept at the close
  '_observed' // the addon hands raw reads over too ('data' listeners on ws._socket)
]);
installSocketFace(NativeTransport);

/**
 * The native listener's handshake, accepted: its socket becomes the connection's and the 101
 * is written from C (the handshake was never a net.Socket).
 */
function adoptHandshake(transport, ws, socket, head, response) {
  const id = socket._accept(ws, response);
  if (id < 0) {
    // The peer left before the answer: the connection ends at once.
    transport._closed = true;
    process.nextTick(() => ws._onTransportClose());
    return transport;
  }
  open[id] = transport;
  if (head.length > 0) process.nextTick(receiveHead, transport, head);
  return transport;
}

/** Bytes that came with the upgrade: delivered as the socket's first read. */
function receiveHead(transport, head) {
  if (transport._closed) return;
  if (transport._observed) socketData(transport, head);
  receive(transport._ws, head, 0);
}

function failCallbacks(callbacks) {
  const err = new Error('The socket is not writable');
  for (const cb of callbacks) process.nextTick(cb, err);
}

// ---- the batch ----

/** chunk[start..end] in a Buffer of its own (pooled when small, as Buffer.allocUnsafe is). */
function copyOf(chunk, start, end) {
  const copy = Buffer.allocUnsafe(end - start);
  chunk.copy(copy, 0, start, end);
  return copy;
}

/**
 * The bytes of an event's payload left in place (at a, b bytes, in the read buffer): from the
 * batch's copy of [start, end) when there is one, a view of the read buffer itself when the
 * batch keeps it (copy === readBuffer), else a copy of their own.
 */
function inPlace(copy, start, a, b) {
  if (b === 0) return EMPTY_BUFFER;
  if (copy === null || (copy === readBuffer && b < VIEW_MIN)) return copyOf(readBuffer, a, a + b);
  if (copy !== readBuffer) return copy.subarray(a - start, a - start + b);
  viewsTaken = true;
  return readBuffer.subarray(a, a + b);
}

/** After a batch that kept views of the read buffer: the next reads go into a new one. */
function replaceReadBuffer() {
  viewsTaken = false;
  readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  binding.transportReadBuffer(readBuffer);
}

/** Whether a connection's replies need JS to write them (C writes only the engine's output). */
function needsOwnFlush(ws) {
  return ws._flushScheduled || needsJsWrite(ws);
}

/** Whether flush(ws) has more to do than write the engine's output (see needsOwnFlush). */
function needsJsWrite(ws) {
  return (
    ws._writeQueue !== null ||
    ws._sendCallbacks !== null ||
    ws._needDrain ||
    ws._pendingAutoPongs !== 0 ||
    (ws._endAfterFlush && !ws._ended)
  );
}

function beginDelivery(ws, transport) {
  ws._receiving = true;
  if (ws._lastHeard !== 0) ws._lastHeard = Date.now(); // (0: no heartbeat watches it)
  socketActive(transport);
}

function endDelivery(ws) {
  ws._receiving = false;
  // A reply carrying a large payload (written without a copy) goes at once: the kernel is
  // better put to work now (holding 1 MiB replies to the end of the batch cost that echo row
  // 10-20% of its rate), and a peer woken for it has plenty to read anyway.
  if (ws._writeQueue !== null) flush(ws);
  else delivered.push(ws);
}

/** EV_END, EV_DRAIN, EV_CLOSE, EV_REST and EV_DATA of a connection. */
function transportEvent(transport, ws, kind, id, code, rest) {
  switch (kind) {
    case EV_DATA:
      socketData(transport, rest);
      break;
    case EV_REST:
      // The engine is inflating a message elsewhere; C paused the socket. These bytes are
      // parsed once that message is delivered, then reading resumes (_onReceiveDrained).
      transport._paused = true;
      receive(ws, rest, 0);
      break;
    case EV_END:
      socketEnded(transport);
      ws._onTransportEnd();
      break;
    case EV_DRAIN: {
      transport._pending = 0;
      const waiting = transport._waiting;
      transport._waiting = null;
      if (waiting === null) {
        checkDrain(ws);
      } else {
        for (const callbacks of waiting) afterWrite(ws, undefined, callbacks);
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
      socketClosed(transport, code, ws._handle);
      ws._onTransportClose();
      break;
    }
  }
}

// The connections whose flush sender.js scheduled in this tick, outside a receive batch (a
// publish() to 1,000 subscribers, a loop of send()): their engines' output leaves in one
// call down, transportFlushEach(), instead of a tick and a call for each.
const scheduled = [];
let flushHandles = new Uint32Array(64);

function flushScheduled() {
  let count = 0;
  for (let i = 0; i < scheduled.length; i++) {
    const ws = scheduled[i];
    if (!ws._flushScheduled) continue; // (flushed meanwhile: ws._socket.write(), terminate())
    if (ws._transport === null || needsJsWrite(ws)) {
      flush(ws);
      continue;
    }
    ws._flushScheduled = false;
    ws._unflushedBytes = 0; // (what the socket does not take is counted as transport._pending)
    flushHandles = withRoomAt(flushHandles, count);
    flushHandles[count] = ws._handle;
    scheduled[count++] = ws; // (count <= i: the ones C flushes, in the order of flushHandles)
  }
  if (count !== 0) binding.transportFlushEach(flushHandles, count);
  for (let i = 0; i < count; i++) {
    const pending = flushHandles[i];
    if (pending === FLUSH_CLOSED) continue; // (its close is reported as for any socket)
    const transport = scheduled[i]._transport;
    transport._pending = pending;
    socketActive(transport);
  }
  scheduled.length = 0;
}

/** Ends a batch: the replies of the connections it delivered to leave together. */
function flushDelivered() {
  for (let i = 0; i < delivered.length; i++) {
    const ws = delivered[i];
    if (ws._transport === null) continue;
    if (needsOwnFlush(ws)) flush(ws);
    // C writes it below; what the socket does not take then is counted as transport._pending.
    else ws._unflushedBytes = 0;
  }
  if (delivered.length !== 0) delivered.length = 0; // (setting it is a runtime call even at 0)
  // C writes the rest (the engine's output alone) and says which sockets kept some pending.
  const left = binding.transportFlushBatch();
  for (let i = 0; i < left; i++) {
    const transport = open[table[BATCH_HEADER + 2 * i]];
    if (transport !== undefined) transport._pending = table[BATCH_HEADER + 2 * i + 1];
  }
}

/**
 * Every event of every native transport of this thread comes through here, in batches: C
 * read the sockets that were ready, parsed what they sent, and filled the table. Each
 * connection's events are delivered in order; a listener that throws does not stop the
 * others (its connection's later events wait for the next tick, and the first such error is
 * thrown once the batch is done, as an uncaught exception).
 */
function dispatchBatch() {
  const count = table[BATCH_COUNT];
  const start = table[BATCH_SPAN_START];
  const end = table[BATCH_SPAN_END];
  // Large payloads stay where they landed (HANDOFF_MIN); else one copy for every payload left
  // in place, unless that would mostly copy bytes no payload needs (then each is copied alone).
  const inPlaceBytes = table[BATCH_IN_PLACE];
  let copy = null;
  if (inPlaceBytes >= HANDOFF_MIN && table[BATCH_HANDOFF] === 1) {
    copy = readBuffer;
  } else if (end > start && end - start <= 2 * inPlaceBytes + 4096) {
    copy = copyOf(readBuffer, start, end);
  }
  let current = null;
  let thrown;
  try {
    for (let i = 0; i < count; i++) {
      const base = BATCH_HEADER + i * BATCH_STRIDE;
      const id = table[base];
      const word = table[base + 1];
      const kind = word & 0xff;
      if (kind === EV_HANDSHAKE) {
        const a = table[base + 2];
        handshakeHandler(id, table[base + 3], objects[a], table[base + 4] === 1 ? objects[a + 1] : undefined);
        continue;
      }
      const transport = open[id];
      if (transport === undefined) continue;
      const ws = transport._ws;
      if (kind >= EV_REST) {
        const rest =
          kind === EV_REST || kind === EV_DATA
            ? inPlace(copy, start, table[base + 2], table[base + 3])
            : null;
        transportEvent(transport, ws, kind, id, table[base + 4], rest);
        continue;
      }
      if (ws !== current) {
        if (current !== null) endDelivery(current);
        current = ws;
        beginDelivery(ws, transport);
      }
      const a = table[base + 2];
      const data = word & EV_FLAG_OBJECT ? objects[a] : inPlace(copy, start, a, table[base + 3]);
      const fragmentEnds = word & EV_FLAG_FRAGMENTS ? objects[a + 1] : undefined;
      const err = deliverParsed(ws, kind, data, (word & EV_FLAG_BINARY) !== 0, table[base + 4], fragmentEnds);
      if (err !== undefined && thrown === undefined) thrown = { err };
    }
    if (current !== null) endDelivery(current);
  } finally {
    if (objects.length !== 0) objects.length = 0;
    if (viewsTaken) replaceReadBuffer();
    flushDelivered();
  }
  if (thrown !== undefined) throw thrown.err;
}

module.exports = {
  NativeTransport,
  canAdopt,
  ensureNativeTransport,
  onHandshake,
  transportOption,
  usable
};
