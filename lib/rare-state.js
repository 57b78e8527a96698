'use strict';

// How a connection keeps its size down. Every field of a WebSocket costs 8 bytes on every
// connection, so: state that most connections leave at its initial value lives in a RareState
// made on first need, the limits from the options in one frozen object that the connections of
// a server share, and permessage-deflate's window in four bits of _flags. The accessors defined
// here keep the fields' names, so the rest of lib/ reads and writes them as fields.

const {
  BINARY_TYPES,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_MAX_BUFFERED_AMOUNT,
  DEFAULT_MAX_BUFFERED_CHUNKS,
  DEFAULT_MAX_PENDING_AUTO_PONGS,
  EMPTY_BUFFER
} = require('./constants');

// State that stays at its initial value on most connections: the closing handshake's,
// messages held or compressed or inflated elsewhere, topics, a client's request. It is kept in
// a RareState made when one of them is first set to another value; until then the accessors
// (defineRareState) answer the initial value. Every field is assigned here, one statement
// each, so that V8 sizes the object for all of them (filled by a loop over a list, it kept ten
// of them in a separate property array: 34 bytes more on every connection that has one, every
// client's).
function RareState() {
  this._bufferedAmount = 0; // bytes of send() calls made after the connection closed
  this._binaryType = BINARY_TYPES[0]; // (most connections keep it)
  this._closeCode = 1006;
  this._closeMessage = EMPTY_BUFFER;
  this._closeTimer = null;
  this._endAfterFlush = false;
  this._ended = false;
  // Sends waiting behind an asynchronous step (a Blob being read, a large message being
  // compressed in the thread pool), in call order.
  this._sendQueue = null;
  this._queuedBytes = 0; // bytes of those sends and of the step they wait for
  this._terminated = false; // terminate() was called
  this._sendingFragments = false; // send(..., { fin: false }) began a message not yet ended
  this._inflating = false; // a large message is being inflated in the thread pool
  this._topics = null; // Set of subscribed topics, created on first subscribe()
  this._pendingAutoPongs = 0; // pongs queued while the peer is not reading what we write
  this._queuedEvents = null;
  this._stashedChunks = null; // chunks received while delivery is held (an array when any)
  this._closedSocket = null; // what _socket was while open
  this._url = undefined; // a client's
  this._redirects = 0;
  this._req = null;
  this._handshakeTimer = null; // a client's handshakeTimeout
}

// The initial values.
const RARE_STATE = new RareState();

/**
 * Defines an accessor on `prototype` for each field of RareState, over the instances' `_rare`
 * (null until a field is first set to another value than its initial one).
 */
function defineRareState(prototype) {
  for (const name of Object.keys(RARE_STATE)) {
    const initial = RARE_STATE[name];
    Object.defineProperty(prototype, name, {
      get() {
        const rare = this._rare;
        return rare === null ? initial : rare[name];
      },
      set(value) {
        if (this._rare === null) {
          if (value === initial) return;
          this._rare = new RareState();
        }
        this._rare[name] = value;
      }
    });
  }
}

// The limits from a connection's options. A server hands every connection the same options
// object, so its connections share one limits object.
const DEFAULT_LIMITS = Object.freeze({
  closeTimeout: DEFAULT_CLOSE_TIMEOUT,
  highWaterMark: DEFAULT_HIGH_WATER_MARK,
  maxPendingAutoPongs: DEFAULT_MAX_PENDING_AUTO_PONGS,
  maxBufferedChunks: DEFAULT_MAX_BUFFERED_CHUNKS,
  maxBufferedAmount: DEFAULT_MAX_BUFFERED_AMOUNT
});
const limitsByOptions = new WeakMap();

/** The (frozen, shared) limits object of an options object. */
function limitsOf(options) {
  let limits = limitsByOptions.get(options);
  if (limits === undefined) {
    limits = { ...DEFAULT_LIMITS };
    for (const name of Object.keys(limits)) {
      if (options[name] !== undefined) limits[name] = options[name];
    }
    limitsByOptions.set(options, Object.freeze(limits));
  }
  return limits;
}

/**
 * Defines the limits as fields of `prototype` (_closeTimeout...) over the instances' `_limits`:
 * read as fields by the rest of the code; a write gives the connection its own copy.
 */
function defineLimits(prototype) {
  for (const [field, name] of [
    ['_closeTimeout', 'closeTimeout'],
    ['_highWaterMark', 'highWaterMark'],
    ['_maxPendingAutoPongs', 'maxPendingAutoPongs'],
    ['_maxBufferedChunks', 'maxBufferedChunks'],
    ['_maxBufferedAmount', 'maxBufferedAmount']
  ]) {
    Object.defineProperty(prototype, field, {
      get() {
        return this._limits[name];
      },
      set(value) {
        this._limits = { ...this._limits, [name]: value };
      }
    });
  }
}

/**
 * Defines `_deflateWindowBits`, the window our compressed messages may use (8..15; 0 when
 * permessage-deflate was not negotiated), as four bits of `_flags` from bit `shift` on (above
 * the booleans' bits: a field would cost every connection), and `_deflate`, whether
 * permessage-deflate was negotiated.
 */
function defineDeflateWindow(prototype, shift) {
  const mask = 0xf << shift;
  Object.defineProperty(prototype, '_deflateWindowBits', {
    get() {
      return (this._flags & mask) >> shift;
    },
    set(bits) {
      this._flags = (this._flags & ~mask) | (bits << shift);
    }
  });
  Object.defineProperty(prototype, '_deflate', {
    get() {
      return (this._flags & mask) !== 0;
    }
  });
}

module.exports = { DEFAULT_LIMITS, limitsOf, defineRareState, defineLimits, defineDeflateWindow };
