'use strict';

// Built-in heartbeat: pings connections that have been silent for `interval` ms and
// terminates those that still send nothing (no pong, no data) within `timeout` ms of the ping.
// One timer per server, not one per connection. A connection counts as alive whenever any
// bytes arrive from it, so busy connections are never pinged.

const { OPEN } = require('./constants');

class Heartbeat {
  /**
   * @param {Set<import('./websocket')>} connections
   * @param {{ interval: number, timeout: number }} options
   */
  constructor(connections, { interval, timeout }) {
    this._connections = connections;
    this._interval = interval;
    this._timeout = timeout;
    // Checking four times per shortest period bounds how late a ping or a termination can be.
    // (setInterval cannot wait longer than 2^31 - 1 ms.)
    const tick = Math.min(2 ** 31 - 1, Math.max(1, Math.floor(Math.min(interval, timeout) / 4)));
    this._timer = setInterval(() => this._check(), tick);
    this._timer.unref(); // open connections keep the process alive, not the heartbeat
  }

  _check() {
    const now = Date.now();
    for (const ws of this._connections) {
      if (ws._readyState !== OPEN) continue;
      // _lastHeard is minus the time of our ping while it is unanswered: the receiver sets it
      // to the time bytes arrive (a pong or any data), so one field serves both.
      const lastHeard = ws._lastHeard;
      if (lastHeard < 0) {
        if (now + lastHeard >= this._timeout) ws.terminate();
      } else if (now - lastHeard >= this._interval) {
        ws._lastHeard = -now;
        ws.ping();
      }
    }
  }

  stop() {
    clearInterval(this._timer);
  }
}

/**
 * Normalizes the `heartbeat` option: false/undefined (off), true (defaults), a number (the
 * interval) or { interval, timeout }.
 *
 * @returns {{ interval: number, timeout: number } | null}
 */
function heartbeatOptions(value) {
  if (value === undefined || value === null || value === false) return null;
  const defaults = { interval: 30000, timeout: 10000 };
  if (
    value !== true &&
    typeof value !== 'number' &&
    (typeof value !== 'object' || Array.isArray(value))
  ) {
    const err = new TypeError(
      `The "heartbeat" option must be a boolean, a number or { interval, timeout }; got ${Array.isArray(value) ? 'an array' : typeof value}`
    );
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  const options =
    value === true
      ? defaults
      : typeof value === 'number'
        ? { ...defaults, interval: value }
        : { ...defaults, ...value };
  for (const name of ['interval', 'timeout']) {
    const n = options[name];
    if (typeof n !== 'number' || !(n > 0) || !Number.isFinite(n)) {
      const err = new RangeError(`heartbeat.${name} must be a positive number of ms; got ${n}`);
      err.code = 'ERR_OUT_OF_RANGE';
      throw err;
    }
  }
  return options;
}

module.exports = { Heartbeat, heartbeatOptions };
