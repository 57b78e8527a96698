'use strict';

// permessage-deflate negotiation (RFC 7692 section 7.1): parsing Sec-WebSocket-Extensions,
// the server's choice among the client's offers, the client's offer and its check of the
// answer. The result is the set of parameters the native engine compresses with.

const binding = require('./binding');
const { TOKEN } = require('./constants');

const EXTENSION_NAME = 'permessage-deflate';

// A connection's own zlib streams (context takeover) hold about 230 KB with the default
// options (the RSS per connection after one compressed message each way), and ws keeps them
// for the connection's life. Streams that stay unused for zlibIdleTimeout ms are parked
// instead (src/codec/deflate.c: zlib state freed, an inflater's window kept), by one timer per
// thread while such connections are open. It runs every half timeout (at least every 1 s, at
// most every 10 ms), so a stream is parked 1 to 1.5 timeouts after its last message.
const DEFAULT_ZLIB_IDLE_TIMEOUT = 10000;

/**
 * Parses a Sec-WebSocket-Extensions header into [{ name, params: [[key, value], ...] }].
 * A parameter without a value has the value true. Returns null when the header does not
 * follow the grammar of RFC 6455 section 9.1.
 *
 * @param {string} header
 */
function parseExtensions(header) {
  const extensions = [];
  for (const element of splitOutsideQuotes(header, ',')) {
    const parts = splitOutsideQuotes(element, ';').map((p) => p.trim());
    const name = parts[0];
    if (!TOKEN.test(name)) return null;
    const params = [];
    for (const part of parts.slice(1)) {
      const eq = part.indexOf('=');
      const key = (eq === -1 ? part : part.slice(0, eq)).trim();
      if (!TOKEN.test(key)) return null;
      let value = true;
      if (eq !== -1) {
        value = part.slice(eq + 1).trim();
        if (value.startsWith('"')) {
          if (value.length < 2 || !value.endsWith('"')) return null;
          value = value.slice(1, -1).replace(/\\(.)/g, '$1');
        }
        if (!TOKEN.test(value)) return null;
      }
      params.push([key.toLowerCase(), value]);
    }
    extensions.push({ name: name.toLowerCase(), params });
  }
  return extensions;
}

function splitOutsideQuotes(text, separator) {
  const parts = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && quoted) i++;
    else if (ch === '"') quoted = !quoted;
    else if (ch === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/**
 * Checks one offer's (or answer's) parameters as RFC 7692 section 7 defines them: known names
 * only, each at most once, no value on the no_context_takeover ones, window bits 8..15
 * (server_max_window_bits must have a value; client_max_window_bits may go without in an
 * offer). Returns an object of them, or null when they are invalid.
 */
function readParams(params, isOffer) {
  const result = {};
  for (const [key, value] of params) {
    if (Object.prototype.hasOwnProperty.call(result, key)) return null;
    switch (key) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (value !== true) return null;
        result[key] = true;
        break;
      case 'server_max_window_bits':
      case 'client_max_window_bits': {
        if (value === true) {
          if (key === 'server_max_window_bits' || !isOffer) return null;
          result[key] = true;
          break;
        }
        if (!/^[0-9]+$/.test(value)) return null;
        const bits = Number(value);
        if (bits < 8 || bits > 15) return null;
        result[key] = bits;
        break;
      }
      default:
        return null;
    }
  }
  return result;
}

/**
 * Normalizes the perMessageDeflate option. false/undefined: off.
 *
 * @returns {object|null}
 */
function deflateOptions(value, { isServer }) {
  if (value === undefined) value = !isServer; // ws: on for clients, off for servers
  if (value === false || value === null) return null;
  // undefined and false differ, as in ws: false refuses an offer that asks for the feature.
  const options = {
    serverNoContextTakeover: undefined,
    clientNoContextTakeover: undefined,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
    threshold: 1024,
    zlibIdleTimeout: DEFAULT_ZLIB_IDLE_TIMEOUT,
    zlibDeflateOptions: {},
    zlibInflateOptions: {},
    ...(value === true ? {} : value)
  };
  for (const name of ['serverMaxWindowBits', 'clientMaxWindowBits']) {
    const bits = options[name];
    if (bits !== undefined && typeof bits !== 'boolean' && !(Number.isInteger(bits) && bits >= 8 && bits <= 15)) {
      const err = new RangeError(`perMessageDeflate.${name} must be a boolean or 8..15; got ${bits}`);
      err.code = 'ERR_OUT_OF_RANGE';
      throw err;
    }
  }
  // Checked here, at construction, so that a bad value never reaches the engine mid-handshake.
  const zlib = options.zlibDeflateOptions || {};
  checkInteger(zlib, 'level', -1, 9, 'perMessageDeflate.zlibDeflateOptions.level');
  checkInteger(zlib, 'memLevel', 1, 9, 'perMessageDeflate.zlibDeflateOptions.memLevel');
  if (typeof options.threshold !== 'number' || !(options.threshold >= 0)) {
    const err = new RangeError(
      `perMessageDeflate.threshold must be a number >= 0; got ${options.threshold}`
    );
    err.code = 'ERR_OUT_OF_RANGE';
    throw err;
  }
  const idle = options.zlibIdleTimeout;
  if (idle === false) {
    options.zlibIdleTimeout = 0;
  } else if (typeof idle !== 'number' || !(idle >= 0) || idle > 2 ** 31 - 1) {
    const err = new RangeError(
      `perMessageDeflate.zlibIdleTimeout must be false or 0..2147483647 ms; got ${idle}`
    );
    err.code = 'ERR_OUT_OF_RANGE';
    throw err;
  }
  return options;
}

function checkInteger(object, name, min, max, label) {
  const value = object[name];
  if (value === undefined || (Number.isInteger(value) && value >= min && value <= max)) return;
  const err = new RangeError(`${label} must be an integer from ${min} to ${max}; got ${value}`);
  err.code = 'ERR_OUT_OF_RANGE';
  throw err;
}

/** The engine's parameters for one side of an agreed configuration (every one: the engine
 * has no defaults of its own). */
function engineParams(agreed, options, isServer) {
  const ours = isServer ? 'server' : 'client';
  const theirs = isServer ? 'client' : 'server';
  const zlib = options.zlibDeflateOptions || {};
  return {
    // zlib has no 256-byte window to deflate with: asked for 8 bits, it uses 9, as ws does
    // (only a client can be asked so; a server declines an offer for it, see acceptOffer).
    deflateWindowBits: Math.max(agreed[`${ours}_max_window_bits`] || 15, 9),
    deflateReset: !!agreed[`${ours}_no_context_takeover`],
    inflateWindowBits: agreed[`${theirs}_max_window_bits`] || 15,
    inflateReset: !!agreed[`${theirs}_no_context_takeover`],
    level: zlib.level === undefined ? -1 : zlib.level,
    memLevel: zlib.memLevel === undefined ? 8 : zlib.memLevel,
    threshold: Math.min(Math.ceil(options.threshold), 2 ** 31 - 1),
    idleTimeout: Math.ceil(options.zlibIdleTimeout)
  };
}

function formatParams(params) {
  return Object.entries(params)
    .map(([key, value]) => (value === true ? key : `${key}=${value}`))
    .join('; ');
}

/**
 * Server side: picks the first acceptable permessage-deflate offer. Invalid offers are
 * declined (RFC 7692 section 5), as are those this server cannot honour.
 *
 * @param {string|undefined} header the client's Sec-WebSocket-Extensions
 * @param {object|null} options normalized perMessageDeflate option
 * @returns {{ response: string, engine: object } | null}
 */
function acceptOffer(header, options) {
  if (!options || header === undefined) return null;
  const extensions = parseExtensions(header);
  if (extensions === null) return null;
  for (const { name, params } of extensions) {
    if (name !== EXTENSION_NAME) continue;
    const offer = readParams(params, true);
    if (offer === null) continue;
    if (options.serverNoContextTakeover === false && offer.server_no_context_takeover) continue;
    const offeredServerBits = offer.server_max_window_bits;
    if (offeredServerBits !== undefined) {
      // zlib cannot compress within a 256-byte window.
      if (offeredServerBits === 8) continue;
      if (options.serverMaxWindowBits === false) continue;
      if (typeof options.serverMaxWindowBits === 'number' && options.serverMaxWindowBits > offeredServerBits) {
        continue;
      }
    }
    if (typeof options.clientMaxWindowBits === 'number' && offer.client_max_window_bits === undefined) {
      continue;
    }

    const agreed = {};
    if (options.serverNoContextTakeover || offer.server_no_context_takeover) {
      agreed.server_no_context_takeover = true;
    }
    if (options.clientNoContextTakeover || offer.client_no_context_takeover) {
      agreed.client_no_context_takeover = true;
    }
    if (typeof options.serverMaxWindowBits === 'number') {
      agreed.server_max_window_bits = options.serverMaxWindowBits;
    } else if (offeredServerBits !== undefined) {
      agreed.server_max_window_bits = offeredServerBits;
    }
    const offeredClientBits = offer.client_max_window_bits;
    if (typeof options.clientMaxWindowBits === 'number') {
      agreed.client_max_window_bits =
        typeof offeredClientBits === 'number'
          ? Math.min(options.clientMaxWindowBits, offeredClientBits)
          : options.clientMaxWindowBits;
    } else if (typeof offeredClientBits === 'number' && options.clientMaxWindowBits !== false) {
      agreed.client_max_window_bits = offeredClientBits;
    }
    const response = [EXTENSION_NAME, formatParams(agreed)].filter(Boolean).join('; ');
    return { response, engine: engineParams(agreed, options, true) };
  }
  return null;
}

/**
 * Client side: the offer to send.
 *
 * @param {object|null} options
 * @returns {string|undefined}
 */
function offer(options) {
  if (!options) return undefined;
  const params = {};
  if (options.serverNoContextTakeover) params.server_no_context_takeover = true;
  if (options.clientNoContextTakeover) params.client_no_context_takeover = true;
  if (typeof options.serverMaxWindowBits === 'number') {
    params.server_max_window_bits = options.serverMaxWindowBits;
  }
  if (typeof options.clientMaxWindowBits === 'number') {
    params.client_max_window_bits = options.clientMaxWindowBits;
  } else if (options.clientMaxWindowBits !== false) {
    params.client_max_window_bits = true;
  }
  return [EXTENSION_NAME, formatParams(params)].filter(Boolean).join('; ');
}

/**
 * Client side: checks the server's answer against what was offered.
 *
 * @returns {{ extensions: string, engine: object }} the agreed configuration
 * @throws {Error} with the message the handshake fails with
 */
function acceptAnswer(header, options) {
  const extensions = parseExtensions(header);
  if (extensions === null) throw new Error('Invalid Sec-WebSocket-Extensions header');
  if (extensions.some((extension) => extension.name !== EXTENSION_NAME)) {
    throw new Error('Server indicated an extension that was not requested');
  }
  if (extensions.length !== 1) throw new Error('Invalid Sec-WebSocket-Extensions header');
  const answer = readParams(extensions[0].params, false);
  if (answer === null) throw new Error('Invalid Sec-WebSocket-Extensions header');
  if (options.clientNoContextTakeover === false && answer.client_no_context_takeover) {
    // Allowed by the RFC, so accepted; ws refuses it only when explicitly set to false.
  }
  const clientBits = answer.client_max_window_bits;
  if (clientBits !== undefined) {
    if (
      options.clientMaxWindowBits === false ||
      (typeof options.clientMaxWindowBits === 'number' && clientBits > options.clientMaxWindowBits)
    ) {
      throw new Error('Unexpected or invalid parameter "client_max_window_bits"');
    }
  } else if (typeof options.clientMaxWindowBits === 'number') {
    answer.client_max_window_bits = options.clientMaxWindowBits;
  }
  const serverBits = answer.server_max_window_bits;
  if (
    serverBits !== undefined &&
    typeof options.serverMaxWindowBits === 'number' &&
    serverBits > options.serverMaxWindowBits
  ) {
    throw new Error('Unexpected or invalid parameter "server_max_window_bits"');
  }
  if (options.serverNoContextTakeover && !answer.server_no_context_takeover) {
    throw new Error('Unexpected or invalid parameter "server_no_context_takeover"');
  }
  return { extensions: header.trim(), engine: engineParams(answer, options, false) };
}

// The timer that parks idle streams (see DEFAULT_ZLIB_IDLE_TIMEOUT), and the connections
// it serves.
let watched = 0;
let sweepPeriod = Infinity;
let sweepTimer = null;

/** A connection whose streams may be parked opened. */
function watchIdleStreams(timeout) {
  watched++;
  const period = Math.max(10, Math.min(1000, Math.floor(timeout / 2)));
  if (period >= sweepPeriod) return;
  if (sweepTimer !== null) clearInterval(sweepTimer);
  sweepPeriod = period;
  sweepTimer = setInterval(sweepIdleStreams, period, period, false);
  sweepTimer.unref(); // open connections keep the process alive, not this
}

function sweepIdleStreams(period, resume) {
  // (It stops early when it has parked many; the rest of the round follows after I/O.)
  if (binding.parkIdleStreams(period, resume)) setImmediate(sweepIdleStreams, period, true);
}

/** ...and closed. */
function unwatchIdleStreams() {
  if (--watched > 0) return;
  clearInterval(sweepTimer);
  sweepTimer = null;
  sweepPeriod = Infinity;
}

module.exports = {
  acceptOffer,
  acceptAnswer,
  deflateOptions,
  offer,
  watchIdleStreams,
  unwatchIdleStreams
};
