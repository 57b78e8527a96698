'use strict';

// The server: options, the hook on http.Server's 'upgrade' event, the RFC 6455 section 4
// handshake checks (each failure answered with its HTTP status), subprotocol selection,
// client tracking and shutdown. The accept key is computed in C (binding.acceptKey).

const EventEmitter = require('events');
const http = require('http');

const binding = require('./binding');
const subprotocol = require('./subprotocol');
const permessageDeflate = require('./permessage-deflate');
const TopicRegistry = require('./topics');
const { checkBroker } = require('./broker');
const WebSocket = require('./websocket');
const { Heartbeat, heartbeatOptions } = require('./heartbeat');
const { transportOption } = require('./native-transport');
const { checkConnectionOptions, checkNonNegative, checkTimeout, withDefaults } = require('./options');
const { handleSocket, DEFAULT_HEADERS_TIMEOUT, DEFAULT_MAX_HEADER_SIZE } = require('./raw-upgrade');
const { NativeListener, nativeListenerFor } = require('./native-listener');
const {
  DEFAULT_CLOSE_TIMEOUT,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_MAX_BACKPRESSURE,
  DEFAULT_MAX_BUFFERED_AMOUNT,
  DEFAULT_MAX_BUFFERED_CHUNKS,
  DEFAULT_MAX_FRAGMENTS,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_MAX_PENDING_AUTO_PONGS,
  kWebSocket
} = require('./constants');

// The offered subprotocols when the request names none (only its size is ever read).
const NO_PROTOCOLS = new Set();

const RUNNING = 0;
const CLOSING = 1;
const CLOSED = 2;

class WebSocketServer extends EventEmitter {
  /**
   * @param {object} options
   * @param {number} [options.port] create an http.Server listening on this port
   * @param {string} [options.host]
   * @param {number} [options.backlog]
   * @param {http.Server|import('https').Server} [options.server] attach to this server
   * @param {boolean} [options.noServer] the application calls handleUpgrade() itself
   * @param {string} [options.path] accept only this path
   * @param {boolean} [options.clientTracking=true] keep connections in `clients`
   * @param {number} [options.maxPayload=104857600] largest message accepted, in bytes
   * @param {Function} [options.verifyClient]
   * @param {Function} [options.handleProtocols]
   * @param {boolean} [options.skipUTF8Validation=false]
   * @param {boolean} [options.autoPong=true] answer pings automatically
   * @param {number} [options.closeTimeout=30000] ms to wait for the peer to finish closing
   * @param {number} [options.highWaterMark=65536] bufferedAmount at which send() returns false
   * @param {number} [options.maxBackpressure=1048576] publish() skips a subscriber with this
   *   many bytes or more waiting to be written
   * @param {number} [options.maxFragments=16384] data frames one message may have (1008)
   * @param {number} [options.maxBufferedChunks=262144] chunks kept while paused (1008)
   * @param {number} [options.maxPendingAutoPongs=60] pongs queued for a peer that does not
   *   read them before the connection is terminated
   * @param {number} [options.maxBufferedAmount=67108864] bytes that may wait for a peer that
   *   does not read (checked past highWaterMark); 0 = no limit
   * @param {'close'|'drop'} [options.onBufferOverflow='close'] past maxBufferedAmount: fail
   *   the connection (1008) or drop the message (send's callback gets the error)
   * @param {boolean|number|{interval?: number, timeout?: number}} [options.heartbeat=false]
   *   ping connections silent for `interval` ms (30000), terminate them if still silent
   *   `timeout` ms (10000) later
   * @param {'auto'|'native'|'stream'} [options.transport='auto'] 'auto' and 'native': the
   *   addon takes plain TCP sockets over after the upgrade (others use 'stream'); 'stream':
   *   bytes always go through Node's socket
   * @param {Function} [options.WebSocket] the class of accepted connections
   * @param {number} [options.maxHeaderSize=16384] handleSocket() and port mode: the largest
   *   request head (431)
   * @param {number} [options.headersTimeout=10000] handleSocket() and port mode on the native
   *   listener: ms to wait for it (408)
   * @param {Function} [callback] 'listening' listener (port mode)
   */
  constructor(options, callback) {
    super();

    options = withDefaults({
      allowSynchronousEvents: true,
      autoPong: true,
      maxPayload: DEFAULT_MAX_PAYLOAD,
      skipUTF8Validation: false,
      perMessageDeflate: false,
      handleProtocols: null,
      clientTracking: true,
      closeTimeout: DEFAULT_CLOSE_TIMEOUT,
      highWaterMark: DEFAULT_HIGH_WATER_MARK,
      maxBackpressure: DEFAULT_MAX_BACKPRESSURE,
      maxFragments: DEFAULT_MAX_FRAGMENTS,
      maxBufferedChunks: DEFAULT_MAX_BUFFERED_CHUNKS,
      maxPendingAutoPongs: DEFAULT_MAX_PENDING_AUTO_PONGS,
      maxBufferedAmount: DEFAULT_MAX_BUFFERED_AMOUNT,
      onBufferOverflow: 'close',
      heartbeat: false,
      maxHeaderSize: DEFAULT_MAX_HEADER_SIZE,
      headersTimeout: DEFAULT_HEADERS_TIMEOUT,
      verifyClient: null,
      noServer: false,
      backlog: null,
      server: null,
      host: null,
      path: null,
      port: null,
      WebSocket
    }, options);

    if (
      (options.port == null && !options.server && !options.noServer) ||
      (options.port != null && (options.server || options.noServer)) ||
      (options.server && options.noServer)
    ) {
      throw new TypeError(
        'One and only one of the "port", "server", or "noServer" options must be specified'
      );
    }
    checkConnectionOptions(options);
    checkNonNegative(options, 'maxBackpressure');
    checkNonNegative(options, 'maxHeaderSize');
    checkTimeout(options, 'headersTimeout');
    options.transport = transportOption(options.transport);
    const heartbeat = heartbeatOptions(options.heartbeat);
    this._deflate = permessageDeflate.deflateOptions(options.perMessageDeflate, { isServer: true });

    if (options.port != null && nativeListenerFor(options)) {
      // The addon listens, accepts and reads the requests itself (lib/native-listener.js).
      this._server = new NativeListener(options);
      this._server.listen(options.port, options.host, options.backlog, callback);
    } else if (options.port != null) {
      const limit = Number.isFinite(options.maxHeaderSize) ? Math.floor(options.maxHeaderSize) : undefined;
      this._server = http.createServer({ maxHeaderSize: limit }, (req, res) => {
        // Node only treats a request as an upgrade when Connection names "upgrade"; one that
        // asks for websocket without it is a malformed handshake (400), anything else is a
        // plain request to a WebSocket-only server (426).
        const malformed = /^websocket$/i.test(req.headers.upgrade || '');
        const status = malformed ? 400 : 426;
        const body = malformed ? 'Invalid Connection header' : http.STATUS_CODES[426];
        const headers = { 'Content-Length': body.length, 'Content-Type': 'text/plain' };
        if (malformed) headers.Connection = 'close';
        res.writeHead(status, headers);
        res.end(body);
      });
      this._server.listen(options.port, options.host, options.backlog, callback);
    } else if (options.server) {
      this._server = options.server;
    }

    if (this._server) {
      const emitConnection = this.emit.bind(this, 'connection');
      this._removeListeners = addListeners(this._server, {
        listening: this.emit.bind(this, 'listening'),
        error: this.emit.bind(this, 'error'),
        upgrade: (req, socket, head) => {
          this.handleUpgrade(req, socket, head, emitConnection);
        }
      });
    }

    if (options.clientTracking) {
      this.clients = new Set();
      this._shouldEmitClose = false;
    }
    this.options = options;
    this._state = RUNNING;
    this._topics = new TopicRegistry(
      options.maxBackpressure,
      this._deflate === null ? Infinity : this._deflate.threshold
    );
    this._broker = null;
    this.brokerStats = null;
    this._heartbeatConnections = null;
    this._heartbeat = null;
    if (heartbeat !== null) {
      this._heartbeatConnections = this.clients || new Set();
      this._heartbeat = new Heartbeat(this._heartbeatConnections, heartbeat);
    }
  }

  /**
   * Sends a message to every connection subscribed to topic. The frame is built once and the
   * same bytes are queued to each subscriber (batched with everything else it sends this
   * turn). Subscribers with maxBackpressure bytes or more still waiting are skipped.
   *
   * @param {string} topic
   * @param {string|Buffer|ArrayBuffer|ArrayBufferView} data
   * @param {{ binary?: boolean, compress?: boolean }} [options]
   * With a broker (useBroker()) the message also goes to every other server sharing it;
   * only local subscribers are counted, and brokerStats tells whether the broker took it.
   *
   * @returns {number} how many local subscribers it was queued to
   */
  publish(topic, data, options) {
    if (this._broker === null) return this._topics.publish(topic, data, options);
    TopicRegistry.checkTopic(topic);
    const message = TopicRegistry.normalize(data, options);
    const reached = this._topics.publishNormalized(topic, message.data, message.binary);
    const stats = this.brokerStats;
    let sent;
    try {
      sent = this._broker.publish(topic, TopicRegistry.toBuffer(message.data), message.binary);
    } catch {
      sent = false;
    }
    Promise.resolve(sent).then(
      (ok) => (ok === true ? stats.published++ : stats.lost++),
      () => stats.lost++
    );
    return reached;
  }

  /**
   * Joins this server's topics to those of every other server using the same broker
   * (lib/broker.js; e.g. createRedisBroker()). One broker per server; server.close() closes it.
   *
   * @param {import('./broker').Broker} broker
   * @returns {this}
   */
  useBroker(broker) {
    checkBroker(broker);
    if (this._broker !== null) throw new Error('This server already uses a broker');
    this._broker = broker;
    const stats = (this.brokerStats = { published: 0, lost: 0, received: 0 });
    broker.onMessage((topic, payload, isBinary) => {
      stats.received++;
      this._topics.publishNormalized(topic, payload, isBinary);
    });
    this._topics.setBroker(broker);
    return this;
  }

  /**
   * @param {string} topic
   * @returns {number} how many connections subscribe to topic
   */
  subscriberCount(topic) {
    return this._topics.count(topic);
  }

  /**
   * @returns {object|string|null} the address of the server it listens on
   */
  address() {
    if (this.options.noServer) {
      throw new Error('The server is operating in "noServer" mode');
    }
    if (!this._server) return null;
    return this._server.address();
  }

  /**
   * Stops accepting connections. Existing connections are not closed (as in ws 8); 'close'
   * is emitted once they have all ended.
   *
   * @param {(err?: Error) => void} [cb]
   */
  close(cb) {
    if (this._state === CLOSED) {
      if (cb) this.once('close', () => cb(new Error('The server is not running')));
      process.nextTick(emitClose, this);
      return;
    }
    if (cb) this.once('close', cb);

    if (this._state === CLOSING) return;
    this._state = CLOSING;
    if (this._heartbeat !== null) this._heartbeat.stop();
    if (this._broker !== null) {
      const broker = this._broker;
      this._topics.setBroker((this._broker = null));
      try {
        Promise.resolve(broker.close()).catch(() => {});
      } catch {
        // the broker reports its own failures
      }
    }

    if (this.options.noServer || this.options.server) {
      if (this._server) {
        this._removeListeners();
        this._removeListeners = this._server = null;
      }
      if (this.clients && this.clients.size) this._shouldEmitClose = true;
      else process.nextTick(emitClose, this);
    } else {
      const server = this._server;
      this._removeListeners();
      this._removeListeners = this._server = null;
      // Node's server waits for the sockets it still owns; connections the native transport
      // took over are waited for here, so 'close' still follows the end of every connection.
      server.close(() => {
        if (this.clients && this.clients.size) this._shouldEmitClose = true;
        else emitClose(this);
      });
    }
  }

  /**
   * A connection this server accepted has closed (called by the WebSocket before its 'close').
   *
   * @private
   */
  _connectionClosed(ws) {
    if (this._heartbeatConnections !== null) this._heartbeatConnections.delete(ws);
    if (this.clients) {
      this.clients.delete(ws);
      if (this._shouldEmitClose && !this.clients.size) process.nextTick(emitClose, this);
    }
  }

  /**
   * @param {http.IncomingMessage} req
   * @returns {boolean} whether this server handles the request (the `path` option)
   */
  shouldHandle(req) {
    if (this.options.path) {
      const index = req.url.indexOf('?');
      const pathname = index !== -1 ? req.url.slice(0, index) : req.url;
      if (pathname !== this.options.path) return false;
    }
    return true;
  }

  /** Reads an HTTP upgrade request from a raw socket (net.Server) itself, then handles it like handleUpgrade. */
  handleSocket(socket, cb) {
    handleSocket(this, socket, cb || this.emit.bind(this, 'connection'));
  }

  /**
   * Completes (or refuses) a WebSocket handshake.
   *
   * @param {http.IncomingMessage} req
   * @param {import('stream').Duplex} socket
   * @param {Buffer} head
   * @param {(ws: WebSocket, req: http.IncomingMessage) => void} cb
   */
  handleUpgrade(req, socket, head, cb) {
    // (An error of the socket before it is handed on ends it: socketOnError, added by each path
    // that leaves the handshake waiting or answers it with an error. Node emits socket errors
    // from the event loop, never within this call, so the path that completes the handshake
    // here needs no listener: by the next tick the transport has its own.)
    const headers = req.headers;
    const upgrade = headers.upgrade;
    const versionHeader = headers['sec-websocket-version'];

    if (req.method !== 'GET') {
      return refuse(this, req, socket, 405, 'Invalid HTTP method');
    }
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
      return refuse(this, req, socket, 400, 'Invalid Upgrade header');
    }
    if (!hasToken(headers.connection, 'upgrade')) {
      return refuse(this, req, socket, 400, 'Invalid Connection header');
    }
    const accept = binding.acceptKey(headers['sec-websocket-key']);
    if (accept === null) {
      return refuse(this, req, socket, 400, 'Missing or invalid Sec-WebSocket-Key header');
    }
    // 13 (RFC 6455) and 8 (the last draft, whose framing is the same), as ws accepts them.
    // Anything else is answered as ws does: 400 naming the versions we speak (RFC 6455 4.4
    // asks for such a header with "an appropriate HTTP error code").
    const version =
      versionHeader === '13' ? 13 : /^\s*\d+\s*$/.test(versionHeader || '') ? +versionHeader : NaN;
    if (version !== 13 && version !== 8) {
      return refuse(this, req, socket, 400, 'Missing or invalid Sec-WebSocket-Version header', {
        'Sec-WebSocket-Version': '13, 8'
      });
    }
    if (!this.shouldHandle(req)) {
      abortHandshake(socket, 400);
      return;
    }

    let protocols = NO_PROTOCOLS;
    const protocolHeader = headers['sec-websocket-protocol'];
    if (protocolHeader !== undefined) {
      try {
        protocols = subprotocol.parse(protocolHeader);
      } catch {
        return refuse(this, req, socket, 400, 'Invalid Sec-WebSocket-Protocol header');
      }
    }

    // An offer we cannot or may not accept is declined (RFC 7692 section 5), never an error.
    const deflate = permessageDeflate.acceptOffer(headers['sec-websocket-extensions'], this._deflate);

    if (this.options.verifyClient) {
      const info = {
        // (version 8 clients send their origin as Sec-WebSocket-Origin)
        origin: version === 8 ? headers['sec-websocket-origin'] : headers.origin,
        secure: !!(req.socket.authorized || req.socket.encrypted),
        req
      };
      if (this.options.verifyClient.length === 2) {
        watchErrors(socket);
        this.options.verifyClient(info, (verified, code, message, extraHeaders) => {
          if (!verified) return abortHandshake(socket, code || 401, message, extraHeaders);
          this.completeUpgrade(accept, protocols, deflate, req, socket, head, cb);
        });
        return;
      }
      if (!this.options.verifyClient(info)) return abortHandshake(socket, 401);
    }

    this.completeUpgrade(accept, protocols, deflate, req, socket, head, cb);
  }

  /**
   * Writes the 101 response and hands the socket to a new WebSocket.
   *
   * @private
   */
  completeUpgrade(accept, protocols, deflate, req, socket, head, cb) {
    // (Checked first: the native transport destroys Node's socket once it took it over.)
    if (socket[kWebSocket]) {
      throw new Error(
        'server.handleUpgrade() was called more than once with the same ' +
          'socket, possibly due to a misconfiguration'
      );
    }
    if (!socket.readable || !socket.writable) return socket.destroy();
    if (this._state > RUNNING) return abortHandshake(socket, 503);

    const ws = new this.options.WebSocket(null, undefined, this.options);

    let protocol;
    if (protocols.size) {
      protocol = this.options.handleProtocols
        ? this.options.handleProtocols(protocols, req)
        : protocols.values().next().value;
      if (protocol) ws._protocol = protocol;
    }
    if (deflate !== null) ws._extensions = deflate.response;

    let response =
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n` +
      (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
      (deflate !== null ? `Sec-WebSocket-Extensions: ${deflate.response}\r\n` : '');
    if (this.listenerCount('headers') > 0) {
      // The lines as ws gives them to 'headers' listeners, which may change them.
      const headers = response.split('\r\n');
      headers.pop();
      this.emit('headers', headers, req);
      response = headers.join('\r\n') + '\r\n';
    }
    response += '\r\n';
    socket.removeListener('error', socketOnError); // (if a path above added it)

    ws._server = this;
    // Written by the transport: the native one writes it from C once it owns the socket.
    ws.setSocket(socket, head, this.options, deflate === null ? undefined : deflate.engine, response);

    if (this._heartbeat !== null) {
      ws._lastHeard = Date.now(); // from now on, the receiver notes when bytes arrive
      if (!this.clients) this._heartbeatConnections.add(ws);
    }
    // Removed by _connectionClosed() when the connection closes.
    if (this.clients) this.clients.add(ws);
    cb(ws, req);
  }
}

/** Whether a comma-separated header (Connection) contains token, case-insensitively. */
function hasToken(header, token) {
  if (typeof header !== 'string') return false;
  if (header.length === token.length && header.toLowerCase() === token) return true; // (usual)
  return header.split(',').some((part) => part.trim().toLowerCase() === token);
}

function addListeners(server, map) {
  for (const event of Object.keys(map)) server.on(event, map[event]);
  return function removeListeners() {
    for (const event of Object.keys(map)) server.removeListener(event, map[event]);
  };
}

function emitClose(server) {
  server._state = CLOSED;
  server.emit('close');
}

function socketOnError() {
  this.destroy();
}

/** Ends the socket on an error while its handshake waits or is refused (once per socket). */
function watchErrors(socket) {
  if (!socket.listeners('error').includes(socketOnError)) socket.on('error', socketOnError);
}

/**
 * Answers a handshake with an HTTP error and closes the socket.
 */
function abortHandshake(socket, code, message, headers) {
  watchErrors(socket);
  message = message || http.STATUS_CODES[code];
  headers = {
    Connection: 'close',
    'Content-Type': 'text/html',
    'Content-Length': Buffer.byteLength(message),
    ...headers
  };
  socket.once('finish', socket.destroy);
  socket.end(
    `HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\n` +
      Object.keys(headers)
        .map((h) => `${h}: ${headers[h]}`)
        .join('\r\n') +
      '\r\n\r\n' +
      message
  );
}

/**
 * Refuses an invalid handshake: the application sees it through 'wsClientError' if it
 * listens (and answers itself), otherwise the client gets the status code.
 */
function refuse(server, req, socket, code, message, headers) {
  if (server.listenerCount('wsClientError')) {
    watchErrors(socket); // (abortHandshake, below, adds it itself)
    const err = new Error(message);
    Error.captureStackTrace(err, refuse);
    server.emit('wsClientError', err, socket, req);
  } else {
    abortHandshake(socket, code, message, headers);
  }
}

module.exports = WebSocketServer;
