'use strict';

// The client side of the opening handshake, over http.request/https.request so that agents,
// TLS options, extra headers and createConnection behave as Node users expect: a key of 16
// CSPRNG bytes, the 101 answer checked (Upgrade, Sec-WebSocket-Accept computed in C,
// subprotocol and extensions against what was offered), redirects, timeouts, and every
// failure reported as 'error' then 'close' (1006), never thrown from an event.

const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');
const { randomBytes } = require('crypto');

const binding = require('./binding');
const subprotocol = require('./subprotocol');
const permessageDeflate = require('./permessage-deflate');
const {
  CLOSING,
  CONNECTING,
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_MAX_BUFFERED_CHUNKS,
  DEFAULT_MAX_FRAGMENTS,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_MAX_PENDING_AUTO_PONGS
} = require('./constants');
const { transportOption } = require('./native-transport');
const { checkConnectionOptions, checkNonNegative, checkTimeout, withDefaults } = require('./options');

const kAborted = Symbol('kAborted');
const SUPPORTED_VERSIONS = [8, 13];

/**
 * Starts (or, after a redirect, restarts) the handshake of a client WebSocket.
 *
 * @param {import('./websocket')} websocket
 * @param {string|URL} address
 * @param {string[]} protocols
 * @param {object} [options]
 */
// ws's client options and their defaults (the limits as a server's connections have them,
// but maxBufferedAmount: see below).
const CLIENT_DEFAULTS = Object.freeze({
  allowSynchronousEvents: true,
  autoPong: true,
  protocolVersion: 13,
  maxPayload: DEFAULT_MAX_PAYLOAD,
  closeTimeout: DEFAULT_CLOSE_TIMEOUT,
  highWaterMark: DEFAULT_HIGH_WATER_MARK,
  maxFragments: DEFAULT_MAX_FRAGMENTS,
  maxBufferedChunks: DEFAULT_MAX_BUFFERED_CHUNKS,
  maxPendingAutoPongs: DEFAULT_MAX_PENDING_AUTO_PONGS,
  // No limit by default, as in ws: a client's peer is the server it chose, and an upload that
  // ignores send()'s backpressure completes (a server keeps 64 MiB against its clients).
  maxBufferedAmount: 0,
  onBufferOverflow: 'close',
  skipUTF8Validation: false,
  perMessageDeflate: true,
  followRedirects: false,
  maxRedirects: 10,
  handshakeTimeout: 0
});

function initAsClient(websocket, address, protocols, options) {
  const opts = {
    ...withDefaults(CLIENT_DEFAULTS, options),
    protocols: undefined,
    socketPath: undefined,
    hostname: undefined,
    protocol: undefined,
    timeout: undefined,
    method: 'GET',
    host: undefined,
    path: undefined,
    port: undefined
  };
  opts.transport = transportOption(opts.transport);
  // Every option a connection uses is checked here, synchronously: nothing may throw later,
  // inside the 'upgrade' event, where the caller could not catch it.
  checkConnectionOptions(opts);
  checkNonNegative(opts, 'maxRedirects');
  checkTimeout(opts, 'handshakeTimeout');

  if (!SUPPORTED_VERSIONS.includes(opts.protocolVersion)) {
    throw new RangeError(
      `Unsupported protocol version: ${opts.protocolVersion} ` +
        `(supported versions: ${SUPPORTED_VERSIONS.join(', ')})`
    );
  }

  let url;
  if (address instanceof URL) {
    url = new URL(address.href); // the caller's object stays as it was
  } else {
    try {
      url = new URL(address);
    } catch {
      throw new SyntaxError(`Invalid URL: ${address}`);
    }
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  websocket._url = url.href;

  const isSecure = url.protocol === 'wss:';
  const isIpc = url.protocol === 'ws+unix:';
  let invalid;
  if (url.protocol !== 'ws:' && !isSecure && !isIpc) {
    invalid =
      'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"';
  } else if (isIpc && !url.pathname) {
    invalid = "The URL's pathname is empty";
  } else if (url.hash) {
    invalid = 'The URL contains a fragment identifier';
  }
  if (invalid) {
    const err = new SyntaxError(invalid);
    if (websocket._redirects === 0) throw err;
    emitErrorAndClose(websocket, err);
    return;
  }

  const defaultPort = isSecure ? 443 : 80;
  const key = randomBytes(16).toString('base64');
  const expectedAccept = binding.acceptKey(key);
  const request = isSecure ? https.request : http.request;
  const offered = new Set();

  opts.createConnection = opts.createConnection || (isSecure ? tlsConnect : netConnect);
  opts.defaultPort = opts.defaultPort || defaultPort;
  opts.port = url.port || defaultPort;
  opts.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  opts.headers = {
    ...opts.headers,
    'Sec-WebSocket-Version': opts.protocolVersion,
    'Sec-WebSocket-Key': key,
    Connection: 'Upgrade',
    Upgrade: 'websocket'
  };
  opts.path = url.pathname + url.search;

  const deflateOptions = permessageDeflate.deflateOptions(opts.perMessageDeflate, {
    isServer: false
  });
  const deflateOffer = permessageDeflate.offer(deflateOptions);
  if (deflateOffer !== undefined) opts.headers['Sec-WebSocket-Extensions'] = deflateOffer;

  if (protocols.length) {
    for (const protocol of protocols) {
      if (typeof protocol !== 'string' || !subprotocol.isToken(protocol) || offered.has(protocol)) {
        throw new SyntaxError('An invalid or duplicated subprotocol was specified');
      }
      offered.add(protocol);
    }
    opts.headers['Sec-WebSocket-Protocol'] = protocols.join(',');
  }
  if (opts.origin) {
    if (opts.protocolVersion < 13) opts.headers['Sec-WebSocket-Origin'] = opts.origin;
    else opts.headers.Origin = opts.origin;
  }
  if (url.username || url.password) {
    opts.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  }
  if (isIpc) {
    // ws+unix:/path/to.sock:/request/path — only the first colon separates the two.
    const colon = opts.path.indexOf(':');
    opts.socketPath = colon === -1 ? opts.path : opts.path.slice(0, colon);
    opts.path = colon === -1 ? '' : opts.path.slice(colon + 1);
  }

  let req;
  if (opts.followRedirects) {
    if (websocket._redirects === 0) {
      websocket._originalIpc = isIpc;
      websocket._originalSecure = isSecure;
      websocket._originalHostOrSocketPath = isIpc ? opts.socketPath : url.host;
      // Keep the caller's headers with lower-case names so a redirect can drop some.
      const headers = options && options.headers;
      options = { ...options, headers: {} };
      if (headers) {
        for (const [name, value] of Object.entries(headers)) {
          options.headers[name.toLowerCase()] = value;
        }
      }
    } else if (websocket.listenerCount('redirect') === 0) {
      const sameHost = isIpc
        ? websocket._originalIpc && opts.socketPath === websocket._originalHostOrSocketPath
        : !websocket._originalIpc && url.host === websocket._originalHostOrSocketPath;
      // Credentials go only to the host they were meant for, and never from https to http.
      if (!sameHost || (websocket._originalSecure && !isSecure)) {
        delete opts.headers.authorization;
        delete opts.headers.cookie;
        if (!sameHost) delete opts.headers.host;
        opts.auth = undefined;
      }
    }
    if (opts.auth && !options.headers.authorization) {
      options.headers.authorization = 'Basic ' + Buffer.from(opts.auth).toString('base64');
    }
    req = websocket._req = request(opts);
    if (websocket._redirects) websocket.emit('redirect', websocket.url, req);
  } else {
    req = websocket._req = request(opts);
  }

  // handshakeTimeout is a deadline for the whole handshake (redirects included), not an idle
  // timer: a server that drips its answer a byte at a time cannot hold it open past it.
  if (opts.handshakeTimeout > 0 && websocket._handshakeTimer === null) {
    websocket._handshakeTimer = setTimeout(handshakeTimedOut, opts.handshakeTimeout, websocket);
  }

  req.on('error', (err) => {
    if (req === null || req[kAborted]) return;
    req = websocket._req = null;
    emitErrorAndClose(websocket, err);
  });

  req.on('response', (res) => {
    const location = res.headers.location;
    const status = res.statusCode;
    if (location && opts.followRedirects && status >= 300 && status < 400) {
      if (++websocket._redirects > opts.maxRedirects) {
        abortHandshake(websocket, req, 'Maximum redirects exceeded');
        return;
      }
      req.abort();
      let next;
      try {
        next = new URL(location, address);
      } catch {
        emitErrorAndClose(websocket, new SyntaxError(`Invalid URL: ${location}`));
        return;
      }
      initAsClient(websocket, next, protocols, options);
    } else if (!websocket.emit('unexpected-response', req, res)) {
      abortHandshake(websocket, req, `Unexpected server response: ${res.statusCode}`);
    }
  });

  req.on('upgrade', (res, socket, head) => {
    websocket.emit('upgrade', res);
    // An 'upgrade' listener may have closed or terminated the connection.
    if (websocket.readyState !== CONNECTING) return;
    req = websocket._req = null;
    stopHandshakeTimer(websocket);

    const upgrade = res.headers.upgrade;
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
      abortHandshake(websocket, socket, 'Invalid Upgrade header');
      return;
    }
    if (res.headers['sec-websocket-accept'] !== expectedAccept) {
      abortHandshake(websocket, socket, 'Invalid Sec-WebSocket-Accept header');
      return;
    }

    const chosen = res.headers['sec-websocket-protocol'];
    let protocolError;
    if (chosen !== undefined) {
      if (!offered.size) protocolError = 'Server sent a subprotocol but none was requested';
      else if (!offered.has(chosen)) protocolError = 'Server sent an invalid subprotocol';
    } else if (offered.size) {
      protocolError = 'Server sent no subprotocol';
    }
    if (protocolError) {
      abortHandshake(websocket, socket, protocolError);
      return;
    }
    if (chosen) websocket._protocol = chosen;

    let deflate;
    const extensionsHeader = res.headers['sec-websocket-extensions'];
    if (extensionsHeader !== undefined) {
      if (deflateOptions === null) {
        abortHandshake(
          websocket,
          socket,
          'Server sent a Sec-WebSocket-Extensions header but no extension was requested'
        );
        return;
      }
      try {
        const agreed = permessageDeflate.acceptAnswer(extensionsHeader, deflateOptions);
        deflate = agreed.engine;
        websocket._extensions = agreed.extensions;
      } catch (err) {
        abortHandshake(websocket, socket, err.message);
        return;
      }
    }

    websocket.setSocket(socket, head, opts, deflate);
  });

  if (opts.finishRequest) opts.finishRequest(req, websocket);
  else req.end();
}

function netConnect(options) {
  options.path = options.socketPath;
  return net.connect(options);
}

function tlsConnect(options) {
  options.path = undefined;
  if (!options.servername && options.servername !== '') {
    options.servername = net.isIP(options.host) ? '' : options.host;
  }
  return tls.connect(options);
}

function handshakeTimedOut(websocket) {
  websocket._handshakeTimer = null;
  const req = websocket._req;
  if (websocket.readyState === CONNECTING && req !== null) {
    abortHandshake(websocket, req, 'Opening handshake has timed out');
  }
}

function stopHandshakeTimer(websocket) {
  if (websocket._handshakeTimer === null) return;
  clearTimeout(websocket._handshakeTimer);
  websocket._handshakeTimer = null;
}

/** Reports a failed handshake: 'error', then 'close' with 1006. */
function emitErrorAndClose(websocket, err) {
  stopHandshakeTimer(websocket);
  websocket._readyState = CLOSING;
  websocket._errorEmitted = true;
  websocket._emitError(err);
  websocket._emitClose();
}

/**
 * Aborts the handshake on the request (before a response) or on the upgraded socket (a bad
 * 101 answer), then reports the error.
 */
function abortHandshake(websocket, stream, message) {
  stopHandshakeTimer(websocket);
  websocket._readyState = CLOSING;
  const err = new Error(message);
  Error.captureStackTrace(err, abortHandshake);

  if (stream.setHeader) {
    stream[kAborted] = true;
    stream.abort();
    if (stream.socket && !stream.socket.destroyed) stream.socket.destroy();
    process.nextTick(emitErrorAndClose, websocket, err);
  } else {
    stream.destroy(err);
    stream.once('error', (e) => {
      websocket._errorEmitted = true;
      websocket._emitError(e);
    });
    stream.once('close', () => websocket._emitClose());
  }
}

module.exports = { initAsClient, abortHandshake };
