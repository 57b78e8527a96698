'use strict';

// Checks of the options the server and the client share, made when the server or the
// client is constructed: a bad value throws there, with a code, rather than misbehaving (or
// throwing from an event) once a connection uses it.

// setTimeout() takes at most this many ms (a larger delay fires at once, with a warning).
const MAX_TIMEOUT = 2 ** 31 - 1;

/**
 * defaults with options over them; an option given as undefined keeps its default (as a
 * missing one does), so that `{ maxPayload: undefined }` means what ws makes of it.
 */
function withDefaults(defaults, options) {
  const result = { ...defaults, ...options };
  for (const name of Object.keys(defaults)) {
    if (result[name] === undefined) result[name] = defaults[name];
  }
  return result;
}

/** options[name] must be a number >= 0 (RangeError ERR_OUT_OF_RANGE). */
function checkNonNegative(options, name) {
  const value = options[name];
  if (typeof value !== 'number' || !(value >= 0)) {
    const err = new RangeError(`The "${name}" option must be a number >= 0; got ${value}`);
    err.code = 'ERR_OUT_OF_RANGE';
    throw err;
  }
}

/** options[name] must be a delay setTimeout() can wait: 0..2147483647 ms. */
function checkTimeout(options, name) {
  const value = options[name];
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_TIMEOUT)) {
    const err = new RangeError(
      `The "${name}" option must be a number of ms from 0 to ${MAX_TIMEOUT}; got ${value}`
    );
    err.code = 'ERR_OUT_OF_RANGE';
    throw err;
  }
}

/** onBufferOverflow: 'close' or 'drop' (TypeError ERR_INVALID_ARG_VALUE). */
function checkOnBufferOverflow(value) {
  if (value !== 'close' && value !== 'drop') {
    const err = new TypeError(`The "onBufferOverflow" option must be 'close' or 'drop'; got ${value}`);
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
}

/** The limits every connection has, server or client. */
function checkConnectionOptions(options) {
  checkNonNegative(options, 'maxPayload');
  checkTimeout(options, 'closeTimeout');
  checkNonNegative(options, 'highWaterMark');
  checkNonNegative(options, 'maxFragments');
  checkNonNegative(options, 'maxBufferedChunks');
  checkNonNegative(options, 'maxPendingAutoPongs');
  checkNonNegative(options, 'maxBufferedAmount');
  checkOnBufferOverflow(options.onBufferOverflow);
}

module.exports = { checkNonNegative, checkTimeout, checkConnectionOptions, withDefaults };
