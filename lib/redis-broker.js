'use strict';

// A Broker (lib/broker.js) over Redis pub/sub with node-redis (the `redis` package, an
// optional peer dependency loaded only here). Two connections: one publishes, one subscribes
// (a subscribed Redis connection can do nothing else). A topic is the channel prefix + topic,
// subscribed on Redis only while it has local subscribers.
//
// Failure handling: node-redis reconnects on its own and resubscribes the channels it had
// confirmed; the broker also re-issues any subscribe/unsubscribe that a lost connection cut
// short. While the publishing connection is down, publish() resolves false at once (lost,
// counted by the server), never queued and replayed later. Connection errors are emitted as
// 'error' if anyone listens, and otherwise ignored: they never crash the process.

const EventEmitter = require('events');
const { newOrigin, encodeEnvelope, decodeEnvelope } = require('./broker');

function loadRedis() {
  try {
    return require('redis');
  } catch (cause) {
    const err = new Error(
      "createRedisBroker() needs the 'redis' package (node-redis 4 or 5): npm install redis"
    );
    err.code = 'WS_ERR_BROKER_UNAVAILABLE';
    err.cause = cause;
    throw err;
  }
}

class RedisBroker extends EventEmitter {
  /**
   * @param {object} [options]
   * @param {string} [options.url] e.g. 'redis://127.0.0.1:6379'
   * @param {string} [options.prefix='ws-native:'] prepended to a topic to name its channel
   * @param {object} [options.redisOptions] more options for node-redis' createClient()
   */
  constructor(options = {}) {
    super();
    const { createClient } = loadRedis();
    this.prefix = options.prefix === undefined ? 'ws-native:' : String(options.prefix);
    this._origin = newOrigin();
    this._onMessage = null;
    this._wanted = new Set(); // topics with local subscribers
    this._active = new Set(); // topics Redis confirmed subscribed
    this._busy = new Set(); // topics with a SUBSCRIBE/UNSUBSCRIBE in flight
    this._listeners = new Map(); // topic -> node-redis listener
    this._closed = false;

    const clientOptions = { ...options.redisOptions };
    if (options.url !== undefined) clientOptions.url = options.url;
    // Nothing is queued while disconnected: a publish in a gap is lost and reported so.
    this._pub = createClient({ ...clientOptions, disableOfflineQueue: true });
    this._sub = createClient(clientOptions);
    for (const client of [this._pub, this._sub]) {
      client.on('error', (err) => {
        if (this.listenerCount('error') > 0) this.emit('error', err);
      });
    }
    this._sub.on('ready', () => {
      for (const topic of this._wanted) this._sync(topic);
      for (const topic of this._active) this._sync(topic);
    });
    const connect = (client) =>
      client.connect().then(
        () => undefined,
        (err) => {
          if (!this._closed && this.listenerCount('error') > 0) this.emit('error', err);
        }
      );
    this._ready = Promise.all([connect(this._pub), connect(this._sub)]).then(() => this);
  }

  /** @returns {Promise<RedisBroker>} resolves once both connections were first established */
  ready() {
    return this._ready;
  }

  /** Whether both connections are up now. */
  get connected() {
    return this._pub.isReady && this._sub.isReady;
  }

  subscribe(topic) {
    this._wanted.add(topic);
    this._sync(topic);
  }

  unsubscribe(topic) {
    this._wanted.delete(topic);
    this._sync(topic);
  }

  /** Brings the Redis subscription of topic in line with _wanted, one command at a time. */
  _sync(topic) {
    if (this._closed || this._busy.has(topic)) return;
    const want = this._wanted.has(topic);
    if (want === this._active.has(topic)) return;
    let listener = this._listeners.get(topic);
    if (listener === undefined) {
      listener = (message) => this._deliver(topic, message);
      this._listeners.set(topic, listener);
    }
    this._busy.add(topic);
    const channel = this.prefix + topic;
    const done = (ok) => {
      this._busy.delete(topic);
      if (ok) {
        if (want) this._active.add(topic);
        else {
          this._active.delete(topic);
          if (!this._wanted.has(topic)) this._listeners.delete(topic);
        }
      }
      // Retry now only if the wish changed meanwhile; a failure is retried on 'ready'.
      if (ok) this._sync(topic);
    };
    let promise;
    try {
      promise = want
        ? this._sub.subscribe(channel, listener, true)
        : this._sub.unsubscribe(channel, listener, true);
    } catch (err) {
      promise = Promise.reject(err);
    }
    Promise.resolve(promise).then(
      () => done(true),
      () => done(false)
    );
  }

  _deliver(topic, message) {
    if (this._onMessage === null || !this._wanted.has(topic)) return;
    const decoded = decodeEnvelope(this._origin, message);
    if (decoded !== null) this._onMessage(topic, decoded.payload, decoded.isBinary);
  }

  /** @returns {Promise<boolean>} false if the message was lost (no connection to Redis) */
  publish(topic, payload, isBinary) {
    if (this._closed || !this._pub.isReady) return Promise.resolve(false);
    let sent;
    try {
      sent = this._pub.publish(this.prefix + topic, encodeEnvelope(this._origin, payload, isBinary));
    } catch {
      return Promise.resolve(false);
    }
    return Promise.resolve(sent).then(
      () => true,
      () => false
    );
  }

  onMessage(cb) {
    this._onMessage = cb;
  }

  /** Closes both connections (idempotent). */
  async close() {
    if (this._closed) return;
    this._closed = true;
    await Promise.all([this._pub, this._sub].map(closeClient));
  }
}

async function closeClient(client) {
  try {
    if (client.isReady) await (typeof client.close === 'function' ? client.close() : client.quit());
    else if (client.isOpen) await (typeof client.destroy === 'function' ? client.destroy() : client.disconnect());
  } catch {
    // already closed or the connection died: nothing left to release
  }
}

/**
 * @param {object} [options] see RedisBroker
 * @returns {RedisBroker}
 */
function createRedisBroker(options) {
  return new RedisBroker(options);
}

module.exports = { createRedisBroker, RedisBroker };
