'use strict';

// Delivers received bytes to a WebSocket: one native call parses a whole chunk into a table
// of events (payloads unmasked in place, given as offsets into the chunk), then this loop
// emits them. Whatever cannot be delivered now (delivery is held: see isHeld) is kept, in
// order, and delivered later: accepted data is never dropped. The native transport parses in
// C and hands its events to deliverParsed() instead; the stream transport, the bytes of a
// handshake's head and what ws._socket.push() is given come through receive().

const binding = require('./binding');
const { EMPTY_BUFFER, kStatusCode } = require('./constants');
const { flush } = require('./sender');

const {
  TABLE_HEADER,
  TABLE_STRIDE,
  EV_MESSAGE,
  EV_PING,
  EV_PONG,
  EV_CLOSE,
  EV_ERROR,
  EV_INFLATE,
  EV_FLAG_BINARY,
  EV_FLAG_FRAGMENTS,
  EV_FLAG_OBJECT,
  STATE_CALL_AGAIN
} = binding.constants;

const TABLE_EVENTS = 1024;

// One table per nesting level: a listener may cause another connection to receive data
// synchronously (a Duplex pair in memory), and that must not overwrite the outer table.
const tables = [];
const objectLists = [];
let depth = 0;

function payloadOf(table, base, objects, chunk) {
  if (table[base] & EV_FLAG_OBJECT) return objects[table[base + 1]];
  const length = table[base + 2];
  if (length === 0) return EMPTY_BUFFER;
  const start = table[base + 1];
  return chunk.subarray(start, start + length);
}

/** The frame boundaries of a message, when the engine reported them. */
function fragmentsOf(table, base, objects) {
  return table[base] & EV_FLAG_FRAGMENTS ? objects[table[base + 1] + 1] : undefined;
}

function dispatch(ws, kind, data, isBinary, code, fragmentEnds) {
  switch (kind) {
    case EV_MESSAGE:
      ws._emitMessage(data, isBinary, fragmentEnds);
      break;
    case EV_PING:
      ws._onPing(data);
      break;
    case EV_PONG:
      ws.emit('pong', data);
      break;
    case EV_CLOSE:
      ws._onCloseFrame(code, data);
      break;
    case EV_ERROR:
      ws._onProtocolError();
      break;
    case EV_INFLATE:
      ws._inflateAsync(isBinary);
      break;
  }
}

/**
 * Keeps events [from, count) of the table and the unparsed rest of the chunk for later. With
 * callAgain (the engine holds back work, e.g. a close frame, until the events before it are
 * handled) the chunk is kept even when fully consumed, so the engine is called once more.
 */
function stash(ws, table, objects, chunk, from, count, offset, callAgain) {
  const queue = ws._queuedEvents || (ws._queuedEvents = []);
  for (let i = from; i < count; i++) {
    const base = TABLE_HEADER + i * TABLE_STRIDE;
    queue.push({
      kind: table[base] & 0xff,
      data: payloadOf(table, base, objects, chunk),
      isBinary: (table[base] & EV_FLAG_BINARY) !== 0,
      code: table[base + 3],
      fragmentEnds: fragmentsOf(table, base, objects)
    });
  }
  // The unparsed rest is the oldest data not yet parsed: it goes before anything stashed.
  if (offset < chunk.length || callAgain) {
    const entry = { chunk, offset };
    if (ws._stashedChunks === null) ws._stashedChunks = [entry];
    else ws._stashedChunks.unshift(entry);
  }
}

/**
 * Whether delivery on ws is stopped: paused by the application, or waiting for a large
 * message to be inflated elsewhere. Nothing is delivered until it goes on.
 */
function isStopped(ws) {
  return ws._paused || ws._inflating;
}

/**
 * Whether delivery on ws is held: stopped, or behind events and bytes kept for later (which
 * go first). Received data then waits, in order, for deliverStashed().
 */
function isHeld(ws) {
  return isStopped(ws) || ws._queuedEvents !== null || ws._stashedChunks !== null;
}

/**
 * Delivers one event the native transport's engine parsed in C (the payload already a Buffer
 * of its own or a view of the batch's copy), or queues it when delivery is held.
 *
 * @returns {Error|undefined} what a listener threw: the connection's later events then wait
 *   for the next tick, and the caller reports the error once its batch is done
 */
function deliverParsed(ws, kind, data, isBinary, code, fragmentEnds) {
  if (isHeld(ws)) {
    (ws._queuedEvents || (ws._queuedEvents = [])).push({ kind, data, isBinary, code, fragmentEnds });
    return undefined;
  }
  try {
    dispatch(ws, kind, data, isBinary, code, fragmentEnds);
  } catch (err) {
    if (ws._queuedEvents === null) ws._queuedEvents = [];
    if (!ws._paused) process.nextTick(deliverStashed, ws);
    return err;
  }
  return undefined;
}

function tooManyChunks() {
  const err = new RangeError('Too many buffered chunks');
  err.code = 'WS_ERR_TOO_MANY_BUFFERED_PARTS';
  err[kStatusCode] = 1008;
  return err;
}

/**
 * Entry point for a transport: delivers chunk[offset..], after anything still waiting.
 *
 * @param {WebSocket} ws
 * @param {Buffer} chunk
 * @param {number} offset
 */
function receive(ws, chunk, offset) {
  if (ws._lastHeard !== 0) ws._lastHeard = Date.now(); // (0: no heartbeat watches it)
  if (isHeld(ws)) {
    if (ws._stashedChunks === null) {
      ws._stashedChunks = [{ chunk, offset }];
      return;
    }
    if (ws._stashedChunks.length >= ws._maxBufferedChunks && ws._maxBufferedChunks > 0) {
      ws._failConnection(tooManyChunks());
      return;
    }
    ws._stashedChunks.push({ chunk, offset });
    return;
  }
  parse(ws, chunk, offset);
}

/**
 * Parses and delivers chunk[offset..]. Stops early, stashing the rest, if the connection is
 * paused by a listener or a listener throws (the error is rethrown after stashing).
 */
function parse(ws, chunk, offset) {
  const level = depth++;
  let table = tables[level];
  if (table === undefined) {
    table = tables[level] = new Uint32Array(TABLE_HEADER + TABLE_EVENTS * TABLE_STRIDE);
    objectLists[level] = [];
  }
  const objects = objectLists[level];
  const handle = ws._handle;
  ws._receiving = true;

  try {
    let again = true;
    while (offset < chunk.length || again) {
      const count = binding.feed(handle, chunk, offset, table, objects);
      offset = table[1];
      again = (table[2] & STATE_CALL_AGAIN) !== 0;
      for (let i = 0; i < count; i++) {
        const base = TABLE_HEADER + i * TABLE_STRIDE;
        const word = table[base];
        try {
          dispatch(
            ws,
            word & 0xff,
            payloadOf(table, base, objects, chunk),
            (word & EV_FLAG_BINARY) !== 0,
            table[base + 3],
            fragmentsOf(table, base, objects)
          );
        } catch (err) {
          stash(ws, table, objects, chunk, i + 1, count, offset, again);
          objects.length = 0;
          if (!ws._paused) process.nextTick(deliverStashed, ws);
          throw err;
        }
        if (isStopped(ws)) {
          stash(ws, table, objects, chunk, i + 1, count, offset, again);
          objects.length = 0;
          return;
        }
      }
      if (objects.length !== 0) objects.length = 0; // (setting it is a runtime call even at 0)
    }
  } finally {
    depth--;
    ws._receiving = false;
    if (ws._transport === null || !ws._transport.holdFlush(ws)) flush(ws);
  }
}

/** Delivers what was stashed, in order, until done or held again. */
function deliverStashed(ws) {
  if (isStopped(ws)) return;
  ws._receiving = true;
  try {
    while (ws._queuedEvents !== null) {
      const event = ws._queuedEvents.shift();
      if (ws._queuedEvents.length === 0) ws._queuedEvents = null;
      if (event === undefined) break;
      dispatch(ws, event.kind, event.data, event.isBinary, event.code, event.fragmentEnds);
      if (isStopped(ws)) return;
    }
  } catch (err) {
    process.nextTick(deliverStashed, ws);
    throw err;
  } finally {
    ws._receiving = false;
    flush(ws);
  }
  // A stashed chunk is parsed once nothing stops delivery and no event waits before it.
  while (ws._stashedChunks !== null && !isStopped(ws) && ws._queuedEvents === null) {
    const { chunk, offset } = ws._stashedChunks.shift();
    if (ws._stashedChunks.length === 0) ws._stashedChunks = null;
    parse(ws, chunk, offset);
  }
  if (!isHeld(ws)) ws._onReceiveDrained();
}

module.exports = { receive, deliverParsed, deliverStashed, isHeld };
