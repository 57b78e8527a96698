'use strict';

// Publish/subscribe topics of one server: which connections subscribe to which topics, and
// publish(), which frames a message once and queues the same bytes to every subscriber.

const binding = require('./binding');
const { OPEN } = require('./constants');
const { withRoomAt } = require('./handle-list');
const { sendFramed, appendsFramed, framedQueued } = require('./sender');

const { OP_TEXT, OP_BINARY } = binding.constants;

class TopicRegistry {
  /**
   * @param {number} maxBackpressure a subscriber with this many bytes or more waiting to be
   *   written is skipped by publish(), so one slow reader cannot make memory grow unbounded
   */
  constructor(maxBackpressure, deflateThreshold = Infinity) {
    this._subscribers = new Map(); // topic -> Set<WebSocket>
    this._maxBackpressure = maxBackpressure;
    // Messages at least this big go compressed to subscribers that negotiated the extension.
    this._deflateThreshold = deflateThreshold;
    this._broker = null; // told when a topic gains its first / loses its last subscriber
  }

  /** @returns {boolean} true if ws was not subscribed to topic before */
  subscribe(ws, topic) {
    checkTopic(topic);
    if (ws._readyState > OPEN) return false;
    let set = this._subscribers.get(topic);
    if (set === undefined) {
      this._subscribers.set(topic, (set = new Set()));
      if (this._broker !== null) callBroker(this._broker, 'subscribe', topic);
    }
    if (set.has(ws)) return false;
    set.add(ws);
    (ws._topics || (ws._topics = new Set())).add(topic);
    return true;
  }

  /** @returns {boolean} true if ws was subscribed to topic */
  unsubscribe(ws, topic) {
    checkTopic(topic);
    const set = this._subscribers.get(topic);
    if (set === undefined || !set.delete(ws)) return false;
    if (set.size === 0) this._removeTopic(topic);
    ws._topics.delete(topic);
    return true;
  }

  /** Ends every subscription of ws (its connection closed). */
  unsubscribeAll(ws) {
    if (!ws._topics) return;
    for (const topic of ws._topics) {
      const set = this._subscribers.get(topic);
      if (set === undefined) continue;
      set.delete(ws);
      if (set.size === 0) this._removeTopic(topic);
    }
    ws._topics.clear();
  }

  _removeTopic(topic) {
    this._subscribers.delete(topic);
    if (this._broker !== null) callBroker(this._broker, 'unsubscribe', topic);
  }

  /** Joins a broker (lib/broker.js; null: leaves it): it learns every topic with local subscribers. */
  setBroker(broker) {
    this._broker = broker;
    if (broker === null) return;
    for (const topic of this._subscribers.keys()) callBroker(broker, 'subscribe', topic);
  }

  /** @returns {number} subscribers of topic */
  count(topic) {
    const set = this._subscribers.get(topic);
    return set === undefined ? 0 : set.size;
  }

  /**
   * @returns {number} how many subscribers the message was queued to
   */
  publish(topic, data, options) {
    checkTopic(topic);
    const set = this._subscribers.get(topic);
    if (set === undefined) return 0;
    const message = normalize(data, options);
    const compress = !(options && options.compress === false);
    return this.publishNormalized(topic, message.data, message.binary, compress);
  }

  /** publish() of data already normalized (a string, Buffer, ArrayBuffer or view). */
  publishNormalized(topic, data, binary, compress = true) {
    const set = this._subscribers.get(topic);
    if (set === undefined) return 0;
    const opcode = binary ? OP_BINARY : OP_TEXT;
    // Subscribers that negotiated permessage-deflate get one frame compressed from an empty
    // window (valid whatever their context), one per negotiated window size; the others
    // share the plain frame. Each frame is built once, on first need.
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const compressing = compress && size >= this._deflateThreshold;
    let plain = null;
    let compressed = null; // window bits -> frame
    let reached = 0;
    let count = 0; // subscribers in handles, which take the plain frame in one call below
    for (const ws of set) {
      if (ws._readyState !== OPEN || ws.bufferedAmount >= this._maxBackpressure) continue;
      const bits = compressing && ws._deflate ? ws._deflateWindowBits : 0;
      if (bits !== 0) {
        if (compressed === null) compressed = new Map();
        let frame = compressed.get(bits);
        if (frame === undefined) compressed.set(bits, (frame = binding.frameOnce(data, opcode, bits)));
        if (sendFramed(ws, frame, true)) reached++;
        continue;
      }
      if (plain === null) plain = binding.frameOnce(data, opcode, 0);
      if (!appendsFramed(ws, plain)) {
        if (sendFramed(ws, plain)) reached++;
        continue;
      }
      handles = withRoomAt(handles, count);
      handles[count++] = ws._handle;
      framedQueued(ws, plain);
    }
    if (count !== 0) reached += binding.sendFramedToEach(plain, handles, count);
    return reached;
  }
}

// publishNormalized()'s list of the subscribers' handles (one per thread, grown as needed).
let handles = new Uint32Array(64);

/** @returns {{ data: string|Buffer|ArrayBuffer|ArrayBufferView, binary: boolean }} */
function normalize(data, options) {
  let binary = typeof data !== 'string';
  if (typeof data === 'number') {
    data = data.toString();
    binary = false;
  } else if (binary && !ArrayBuffer.isView(data) && !(data instanceof ArrayBuffer)) {
    data = Buffer.from(data);
  }
  if (options && options.binary !== undefined) binary = !!options.binary;
  return { data, binary };
}

/** @returns {Buffer} the bytes of normalized data (no copy for a Buffer) */
function toBuffer(data) {
  if (typeof data === 'string') return Buffer.from(data);
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Calls a broker hook; a throw or a rejection must not reach the caller. */
function callBroker(broker, method, topic) {
  try {
    const result = broker[method](topic);
    if (result && typeof result.catch === 'function') result.catch(() => {});
  } catch {
    // the broker reports its own failures (e.g. its 'error' event)
  }
}

function checkTopic(topic) {
  if (typeof topic !== 'string') {
    const err = new TypeError(`The topic must be a string; got ${typeof topic}`);
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
}

module.exports = TopicRegistry;
module.exports.normalize = normalize;
module.exports.toBuffer = toBuffer;
module.exports.checkTopic = checkTopic;
