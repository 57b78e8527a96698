'use strict';

// What a connection sends: send(), ping() and pong() framed by the engine (binding.send), the
// frames built once for many connections (topics, ws._sender.sendFrame), the sends that wait
// behind a Blob being read or a message compressed in the thread pool, and the batching that
// writes everything one turn queued in one write, with its callbacks and 'drain' afterwards.
// Plain functions of the connection (ws), as its methods would be, without a closure or an
// object per send.
//
// And ws's Sender as far as other packages use it: WebSocket.Sender.frame(data, options)
// builds the bytes of one frame (socket.io-adapter encodes a broadcast once that way), and a
// connection's ws._sender.sendFrame(list, cb) queues such bytes (engine.io writes the
// broadcast to each client with it). Here the frame is built by the engine's encoder in C
// (binding.buildFrame), and sendFrame() puts the bytes on the connection's batched output,
// in order with everything else it sends, as publish() does with a topic's frame.

const { Blob } = require('buffer');

const binding = require('./binding');
const { CONNECTING, EMPTY_BUFFER, kStatusCode, OPEN, READY_STATES } = require('./constants');

const { OP_TEXT, OP_BINARY, ASYNC_DEFLATE_MIN } = binding.constants;

// A server sends binary payloads from this size on without copying them: the engine queues
// only the frame header and the caller's bytes are written right after it (one corked write).
// Below it, one copy into the connection's output is cheaper than another write chunk.
const DIRECT_WRITE_MIN = 32 * 1024;

/** ws.send(data, options, cb) (see there). */
function send(ws, data, options, cb) {
  if (typeof options === 'function') {
    cb = options;
    options = undefined;
  } else {
    cb = callbackArgument(cb);
  }
  if (ws._readyState !== OPEN) {
    if (ws._readyState === CONNECTING) {
      throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    }
    sendAfterClose(ws, byteLengthOf(data), cb);
    return false;
  }

  if (ws._sendQueue !== null) {
    queueSend(ws, () => ws.send(data, options, cb), byteLengthOf(data), cb);
    return belowHighWaterMark(ws);
  }
  if (isBlob(data)) {
    whenBlobRead(ws, data, (bytes) => ws.send(bytes, { binary: true, ...options }, cb), cb);
    return belowHighWaterMark(ws);
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
  let compress = ws._deflate;
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
  if (ws._needDrain && ws._maxBufferedAmount > 0) {
    if (size < 0) size = Buffer.byteLength(data);
    if (ws.bufferedAmount + size > ws._maxBufferedAmount) {
      onBufferOverflow(ws, cb);
      return false;
    }
  }

  const opcode = binary ? OP_BINARY : OP_TEXT;
  if (compress && fin && !ws._sendingFragments && atLeast(data, size, ASYNC_DEFLATE_MIN)) {
    sendCompressedAsync(ws, data, size < 0 ? Buffer.byteLength(data) : size, opcode, cb);
    return belowHighWaterMark(ws);
  }
  ws._sendingFragments = !fin;
  if (!compress && size >= DIRECT_WRITE_MIN && ws._isServer) {
    binding.sendHeader(ws._handle, opcode, fin, false, size);
    queueEngineOutput(ws); // (the header just framed)
    queueWrite(ws, toBuffer(data));
    ws._unflushedBytes += size;
  } else {
    ws._unflushedBytes += binding.send(ws._handle, data, opcode, fin, compress);
  }
  if (cb !== undefined) addSendCallback(ws, cb);
  scheduleFlush(ws);
  return belowHighWaterMark(ws);
}

/** A send past maxBufferedAmount: dropped (onBufferOverflow: 'drop') or the connection fails. */
function onBufferOverflow(ws, cb) {
  const err = new Error(
    `Send buffer limit exceeded: more than ${ws._maxBufferedAmount} bytes wait for a ` +
      'peer that is not reading'
  );
  err.code = 'WS_ERR_BUFFER_OVERFLOW';
  if (ws._dropOnOverflow) {
    if (cb) process.nextTick(cb, err);
    return;
  }
  err[kStatusCode] = 1008;
  if (cb) process.nextTick(cb, err);
  ws._failConnection(err);
  // The peer is not reading, so it would not read a close frame either: free it all now.
  ws.terminate();
}

/** send()'s result: false (and 'drain' due later) once bufferedAmount reaches the mark. */
function belowHighWaterMark(ws) {
  if (ws.bufferedAmount < ws._highWaterMark) return true;
  ws._needDrain = true;
  return false;
}

/**
 * Sends made while a Blob is read or a message is compressed wait in _sendQueue, in call
 * order, each with its bytes (counted in bufferedAmount meanwhile) and its callback (which
 * gets the error if they never go out).
 */
function queueSend(ws, run, bytes, cb) {
  ws._sendQueue.push({ run, bytes, cb });
  ws._queuedBytes += bytes;
}

/** Starts an asynchronous step of `bytes`: later sends wait for it (see queueSend). */
function holdSends(ws, bytes) {
  ws._sendQueue = [];
  ws._queuedBytes += bytes;
}

/** Ends the step begun by holdSends(ws, bytes); returns the sends that waited for it. */
function takeHeldSends(ws, bytes) {
  const waiting = ws._sendQueue;
  ws._sendQueue = null;
  ws._queuedBytes -= bytes;
  return waiting;
}

/** Runs sends that waited, in order, until one of them begins another asynchronous step. */
function runHeldSends(ws, waiting) {
  for (let i = 0; i < waiting.length; i++) {
    if (ws._sendQueue !== null) {
      // Another asynchronous step began: the rest waits for it too (still counted).
      ws._sendQueue.push(...waiting.slice(i));
      return;
    }
    ws._queuedBytes -= waiting[i].bytes;
    waiting[i].run();
  }
}

/** Fails a send and those that waited behind it: each callback gets err, in order. */
function failHeldSends(ws, waiting, cb, err) {
  const callbacks = cb === undefined ? [] : [cb];
  for (const entry of waiting) {
    ws._queuedBytes -= entry.bytes;
    if (entry.cb !== undefined) callbacks.push(entry.cb);
  }
  runCallbacks(callbacks, err);
}

/** Whether nothing can be written any more (terminated, destroyed, ended or closed). */
function cannotWrite(ws) {
  return ws._transport === null || ws._terminated || !ws._transport.writable;
}

/** Reads a Blob, then sendBytes(bytes); sends made meanwhile wait for it. */
function whenBlobRead(ws, blob, sendBytes, cb) {
  const size = blob.size;
  holdSends(ws, size);
  // (Continued in a tick of its own, so that what the callbacks throw is not a rejection.)
  blob.arrayBuffer().then(
    (arrayBuffer) => process.nextTick(blobRead, ws, size, arrayBuffer, sendBytes, cb),
    (err) => process.nextTick(blobFailed, ws, size, err, cb)
  );
}

/**
 * Compresses a large message in the thread pool (zlib takes milliseconds per 64 KiB, which
 * would stall every other connection); sends made meanwhile wait for it.
 */
function sendCompressedAsync(ws, data, size, opcode, cb) {
  holdSends(ws, size);
  binding.compressAsync(ws._handle, data, opcode, (err) => {
    const waiting = takeHeldSends(ws, size);
    if (!err && cannotWrite(ws)) {
      err = new Error('The socket was closed while data was being compressed');
    }
    if (err) {
      failHeldSends(ws, waiting, cb, err);
      return;
    }
    ws._unflushedBytes += size;
    if (cb !== undefined) addSendCallback(ws, cb);
    scheduleFlush(ws);
    runHeldSends(ws, waiting);
  });
}

/** ws.ping() and ws.pong(): a control frame, with ws's arguments. */
function sendControl(ws, opcode, data, mask, cb) {
  if (typeof data === 'function') {
    cb = data;
    data = undefined;
  } else if (typeof mask === 'function') {
    cb = mask;
  } else {
    cb = callbackArgument(cb);
  }
  if (ws._readyState === CONNECTING) {
    throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
  }
  if (typeof data === 'number') data = data.toString();
  const size = byteLengthOf(data);
  if (size > 125) {
    const err = new RangeError('The data size must not be greater than 125 bytes');
    err.code = 'WS_ERR_CONTROL_PAYLOAD_TOO_LARGE';
    throw err;
  }
  if (ws._readyState !== OPEN) {
    sendAfterClose(ws, byteLengthOf(data), cb);
    return;
  }
  if (ws._sendQueue !== null) {
    queueSend(ws, () => sendControl(ws, opcode, data, mask, cb), size, cb);
    return;
  }
  if (isBlob(data)) {
    whenBlobRead(ws, data, (bytes) => sendControl(ws, opcode, bytes, mask, cb), cb);
    return;
  }
  if (data === undefined || data === null) data = EMPTY_BUFFER;
  else if (typeof data !== 'string' && !ArrayBuffer.isView(data) && !isArrayBuffer(data)) {
    data = Buffer.from(data);
  }
  binding.send(ws._handle, data, opcode, true, false);
  ws._unflushedBytes += size;
  if (cb !== undefined) addSendCallback(ws, cb);
  scheduleFlush(ws);
}

/** Queues bytes to write as they are, before the engine's next output, in order. */
function queueWrite(ws, buffer) {
  if (ws._writeQueue === null) ws._writeQueue = [buffer];
  else ws._writeQueue.push(buffer);
}

// Small output leaves as a view of a shared pool (the way Buffer.allocUnsafe pools small
// Buffers): one allocation per OUTPUT_POOL_SIZE bytes written instead of one per flush. A view
// that a socket keeps while it cannot write pins its pool, which is why the pool is as small
// as Node's own (8 KiB); output of more than a pool comes in a Buffer of its own.
const OUTPUT_POOL_SIZE = 8 * 1024;
let outputPool = null;
let outputPoolUsed = OUTPUT_POOL_SIZE;

/** What the engine has framed so far (a Buffer, maybe a view of the pool), or undefined. */
function takeEngineOutput(handle) {
  if (outputPoolUsed === OUTPUT_POOL_SIZE) newOutputPool();
  let taken = binding.takeOutput(handle, outputPool, outputPoolUsed);
  if (taken === -1) {
    // (It fits in a pool of its own: the rest of this one stays unused.)
    newOutputPool();
    taken = binding.takeOutput(handle, outputPool, 0);
  }
  if (typeof taken !== 'number') return taken;
  const start = outputPoolUsed;
  // Views start 8-byte aligned, as Node's pool does them (the size is a multiple of 8, so
  // this never passes the end).
  outputPoolUsed = (start + taken + 7) & ~7;
  return outputPool.subarray(start, start + taken);
}

function newOutputPool() {
  outputPool = Buffer.allocUnsafeSlow(OUTPUT_POOL_SIZE);
  outputPoolUsed = 0;
}

/** Queues what the engine has framed so far: bytes queued next go out after it, in order. */
function queueEngineOutput(ws) {
  const out = takeEngineOutput(ws._handle);
  if (out !== undefined) queueWrite(ws, out);
}

/**
 * Queues whole frames built once for many connections (topics).
 *
 * @returns {boolean} false if they cannot go out now (a fragmented send is in progress)
 */
function sendFramed(ws, frame, compressed = false) {
  // A whole message cannot go in between the fragments of one the connection is sending.
  if (ws._sendingFragments) return false;
  if (ws._sendQueue !== null) {
    queueSend(ws, () => sendFramed(ws, frame, compressed), frame.length, undefined);
    return true;
  }
  if (frame.length >= DIRECT_WRITE_MIN) {
    queueEngineOutput(ws);
    queueWrite(ws, frame);
    // (An empty append: only tells the deflater its window no longer matches the peer's.)
    if (compressed) binding.sendFramed(ws._handle, EMPTY_BUFFER, true);
  } else {
    binding.sendFramed(ws._handle, frame, compressed);
  }
  framedQueued(ws, frame);
  return true;
}

/**
 * Whether sendFramed(ws, frame) would only append the frame to the engine's output, which
 * binding.sendFramedToEach() then does for many connections in one call (publish()); those
 * connections take framedQueued() instead of sendFramed().
 */
function appendsFramed(ws, frame) {
  return frame.length < DIRECT_WRITE_MIN && !ws._sendingFragments && ws._sendQueue === null;
}

/** sendFramed()'s bookkeeping, also for a frame appended by binding.sendFramedToEach(). */
function framedQueued(ws, frame) {
  ws._unflushedBytes += frame.length;
  scheduleFlush(ws);
}

/**
 * ws._sender.sendFrame(list, cb): whole frames built beforehand, queued as they are. On a
 * server small ones join the engine's output (one copy); otherwise the engine's output so
 * far and these buffers are written after each other, without a copy.
 */
function sendFrames(ws, list, cb) {
  cb = callbackArgument(cb);
  const buffers = framesOf(list);
  let size = 0;
  for (const buffer of buffers) size += buffer.length;
  if (ws._readyState !== OPEN) {
    if (ws._readyState === CONNECTING) {
      throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    }
    sendAfterClose(ws, 0, cb); // (ws does not count these in bufferedAmount)
    return false;
  }
  if (size === 0) throw framesError('The frame list is empty');
  const first = buffers[0][0];
  const isData = (first & 0x08) === 0;
  // A data frame cannot go in between the fragments of a message the connection sends.
  if (isData && ws._sendingFragments) {
    const err = new Error('A frame cannot be sent while a fragmented message is being sent');
    err.code = 'WS_ERR_FRAGMENTED_SEND';
    throw err;
  }
  // RSV1 on a data frame: compressed by someone else's deflater, so ours must not refer back
  // past it (sendFramed's compressed flag); the engine does that only for a server.
  const compressed = isData && (first & 0x40) !== 0 && ws._deflate;
  if (compressed && !ws._isServer) {
    const err = new Error(
      'A compressed frame built elsewhere cannot be sent on a client connection that ' +
        'negotiated permessage-deflate'
    );
    err.code = 'WS_ERR_UNSUPPORTED_FRAME';
    throw err;
  }
  if (ws._sendQueue !== null) {
    queueSend(ws, () => sendFrames(ws, buffers, cb), size, cb);
    return belowHighWaterMark(ws);
  }
  if (ws._isServer && !ws._sendingFragments && size < DIRECT_WRITE_MIN) {
    binding.sendFramed(ws._handle, buffers.length === 1 ? buffers[0] : Buffer.concat(buffers), compressed);
  } else {
    queueEngineOutput(ws);
    for (const buffer of buffers) queueWrite(ws, buffer);
    if (compressed) binding.sendFramed(ws._handle, EMPTY_BUFFER, true);
  }
  ws._unflushedBytes += size;
  if (cb !== undefined) addSendCallback(ws, cb);
  scheduleFlush(ws);
  return belowHighWaterMark(ws);
}

/** Adds a callback to those of the next flush, called once its bytes are written. */
function addSendCallback(ws, cb) {
  if (ws._sendCallbacks === null) ws._sendCallbacks = [cb];
  else ws._sendCallbacks.push(cb);
}

/** Flushes in a tick of its own, once for everything sent in this turn. */
function scheduleFlush(ws) {
  // While a chunk is being delivered, the receive loop flushes once at its end.
  if (ws._receiving || ws._flushScheduled) return;
  ws._flushScheduled = true;
  const transport = ws._transport;
  if (transport === null) process.nextTick(flush, ws);
  else transport.scheduleFlush(ws);
}

/** Writes everything queued in one write, then ends the socket if the close is complete. */
function flush(ws) {
  ws._flushScheduled = false;
  ws._unflushedBytes = 0; // (the transport counts what it could not write yet)
  if (ws._transport === null) return;
  const queue = ws._writeQueue;
  ws._writeQueue = null;
  const callbacks = ws._sendCallbacks;
  ws._sendCallbacks = null;
  // Payloads written without a copy go out first, then the engine's output, in one write.
  ws._transport.flush(ws._handle, queue, callbacks);
  // Everything reached the operating system: the peer is reading our pongs.
  if (ws._pendingAutoPongs !== 0 && ws._transport.writableLength === 0) {
    ws._pendingAutoPongs = 0;
  }
  if (ws._endAfterFlush && !ws._ended) {
    ws._ended = true;
    ws._transport.end();
  }
}

/**
 * The bytes of a flush were written (or failed): its callbacks, then 'drain'. Each runs
 * even if one before it throws; the first exception is rethrown afterwards (see
 * runCallbacks), so one throwing callback cannot starve the others or stop 'drain'.
 */
function afterWrite(ws, err, callbacks) {
  let thrown = NO_EXCEPTION;
  if (callbacks !== null) thrown = callEach(callbacks, err || null);
  try {
    checkDrain(ws);
  } catch (e) {
    if (thrown === NO_EXCEPTION) thrown = e;
  }
  if (thrown !== NO_EXCEPTION) process.nextTick(rethrow, thrown);
}

/** The transport's buffer emptied: pongs are being read, and 'drain' is due if it was. */
function checkDrain(ws) {
  if (ws._transport !== null && ws._transport.writableLength === 0) {
    ws._pendingAutoPongs = 0;
  }
  if (!ws._needDrain || ws._readyState !== OPEN) return;
  if (ws.bufferedAmount < ws._highWaterMark) {
    ws._needDrain = false;
    ws.emit('drain');
  }
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

/** whenBlobRead(), continued: the Blob's bytes go out, then the sends that waited for them. */
function blobRead(ws, size, arrayBuffer, sendBytes, cb) {
  const waiting = takeHeldSends(ws, size);
  if (cannotWrite(ws)) {
    failHeldSends(ws, waiting, cb, new Error('The socket was closed while the blob was being read'));
    return;
  }
  // Its own send goes first, before those that waited (it may itself hold them again).
  if (ws._readyState === OPEN) sendBytes(Buffer.from(arrayBuffer));
  else sendAfterClose(ws, arrayBuffer.byteLength, cb);
  runHeldSends(ws, waiting);
}

/** whenBlobRead(), continued: the Blob could not be read (see ws._onSendFailure). */
function blobFailed(ws, size, err, cb) {
  failHeldSends(ws, takeHeldSends(ws, size), cb, err);
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

/** ws's Sender, as far as other packages use it (see the top of this file). */
class Sender {
  /**
   * One frame of `data`, with ws's signature and options. The result is a list of Buffers
   * to write in order (here always one), as ws's is.
   *
   * @param {string|Buffer|ArrayBuffer|ArrayBufferView} data the payload (a string as UTF-8)
   * @param {object} options
   * @param {number} options.opcode 0..15
   * @param {boolean} [options.fin=false]
   * @param {boolean} [options.rsv1=false] set RSV1 (the payload is not compressed here)
   * @param {boolean} [options.mask=false] mask the payload with a key from the CSPRNG
   *   (ws's maskBuffer and generateMask options are not taken: RFC 6455 5.3 wants
   *   unpredictable keys); `data` is never modified, so readOnly makes no difference
   * @returns {Buffer[]}
   */
  static frame(data, options) {
    if (options === null || typeof options !== 'object') {
      const err = new TypeError('The "options" argument must be an object');
      err.code = 'ERR_INVALID_ARG_TYPE';
      throw err;
    }
    return [binding.buildFrame(data, options.opcode, !!options.fin, !!options.rsv1, !!options.mask)];
  }

  /** The connection's Sender, as ws._sender returns it. @param {import('./websocket')} ws */
  constructor(ws) {
    this._ws = ws;
  }

  /**
   * Queues whole frames built beforehand (by Sender.frame(), ws's or ours): their bytes go
   * out as they are, after what the connection sent before and before what it sends next.
   *
   * @param {Array<Buffer|Uint8Array|string>} list the bytes of the frames, in order
   * @param {(err?: Error | null) => void} [cb] called once they are written (or failed)
   * @returns {boolean} as send(): false once bufferedAmount reaches the high-water mark
   */
  sendFrame(list, cb) {
    return sendFrames(this._ws, list, cb);
  }
}

module.exports = {
  Sender,
  send,
  sendControl,
  sendFramed,
  appendsFramed,
  framedQueued,
  queueSend,
  queueWrite,
  queueEngineOutput,
  takeEngineOutput,
  addSendCallback,
  scheduleFlush,
  flush,
  afterWrite,
  checkDrain,
  runCallbacks,
  byteLengthOf,
  isArrayBuffer
};
