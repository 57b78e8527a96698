'use strict';

// The hook API between a WebSocketServer and a message broker that joins the topics of many
// servers (processes, machines): wss.useBroker(broker). lib/redis-broker.js implements it over
// Redis pub/sub; another broker (NATS, a message bus, ...) implements the same five methods.

const crypto = require('crypto');

/**
 * What a broker implements. The server calls it; it never waits on the promises it returns
 * (only counts the outcome of publish()), so a broker must not throw synchronously and must
 * never deliver, through onMessage, a message that this same broker instance published
 * (the server already delivered it to its own subscribers: no double delivery).
 *
 * @typedef {object} Broker
 * @property {(topic: string) => (void|Promise<void>)} subscribe called when a topic gains
 *   its first local subscriber (and, from useBroker(), for each topic that already has one)
 * @property {(topic: string) => (void|Promise<void>)} unsubscribe called when a topic loses
 *   its last local subscriber
 * @property {(topic: string, payload: Buffer, isBinary: boolean) => Promise<boolean>} publish
 *   called for every server.publish(); resolves true once the broker accepted the message,
 *   false (or rejects) if it was lost (e.g. the connection is down): never claim delivery
 *   of what was not sent
 * @property {(cb: (topic: string, payload: Buffer, isBinary: boolean) => void) => void}
 *   onMessage registers the one callback for messages published elsewhere
 * @property {() => Promise<void>} close releases the connections (called by server.close())
 */

const METHODS = ['subscribe', 'unsubscribe', 'publish', 'onMessage', 'close'];

/** Throws a TypeError unless broker has the methods of the Broker interface. */
function checkBroker(broker) {
  const missing =
    broker === null || typeof broker !== 'object'
      ? METHODS
      : METHODS.filter((m) => typeof broker[m] !== 'function');
  if (missing.length) {
    const err = new TypeError(`The broker must implement ${missing.join(', ')}()`);
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
}

// The envelope a broker can put around a payload so that its own messages are recognized
// when they come back: [flags (bit 0: binary)] [8-byte origin id] [payload].
const ORIGIN_LENGTH = 8;
const HEADER_LENGTH = 1 + ORIGIN_LENGTH;

/** @returns {Buffer} a random id naming one broker instance */
function newOrigin() {
  return crypto.randomBytes(ORIGIN_LENGTH);
}

/** @returns {Buffer} header + payload */
function encodeEnvelope(origin, payload, isBinary) {
  const header = Buffer.allocUnsafe(HEADER_LENGTH);
  header[0] = isBinary ? 1 : 0;
  origin.copy(header, 1);
  return Buffer.concat([header, payload], HEADER_LENGTH + payload.length);
}

/**
 * @returns {{ payload: Buffer, isBinary: boolean } | null} null for a message from `origin`
 *   itself or one that is not an envelope
 */
function decodeEnvelope(origin, message) {
  if (!Buffer.isBuffer(message) || message.length < HEADER_LENGTH || message[0] > 1) return null;
  if (message.compare(origin, 0, ORIGIN_LENGTH, 1, HEADER_LENGTH) === 0) return null;
  return { payload: message.subarray(HEADER_LENGTH), isBinary: message[0] === 1 };
}

module.exports = { checkBroker, newOrigin, encodeEnvelope, decodeEnvelope };
