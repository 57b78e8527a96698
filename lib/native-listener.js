'use strict';

// Port mode (new WebSocketServer({ port })) on the native listener: the addon owns the
// listening socket, accepts connections and reads each request head in C; a request that is
// not an upgrade is answered there (ws's 426), and an upgrade request comes here, through the
// native transport's batch, as an 'upgrade' event -- the same event an http.Server emits, so
// WebSocketServer checks it exactly as it checks any other (handleUpgrade). Accepting it
// hands its socket to the connection with the 101 written from C; no net.Socket is made.
//
// NativeListener stands in for the http.Server of port mode: listen(), address(), close(),
// ref()/unref(), and the 'listening', 'error', 'close' and 'upgrade' events.

const cluster = require('cluster');
const dns = require('dns');
const EventEmitter = require('events');
const net = require('net');
const util = require('util');

const binding = require('./binding');
const { kHandshakeSocket, kWebSocket } = require('./constants');
const { createRequest } = require('./raw-upgrade');
const { ensureNativeTransport, onHandshake, usable } = require('./native-transport');

const DEFAULT_BACKLOG = 511; // net.Server's

// The listeners of this thread, by id.
const listeners = [];

/**
 * Whether port mode may use the native listener: the native transport exists and is wanted,
 * and this is not a cluster worker (whose servers share the primary's listening socket).
 */
function nativeListenerFor(options) {
  return usable(options.transport) && typeof binding.listenerOpen === 'function' && !cluster.isWorker;
}

/** As net.Server reports it; errno is negative (as Node's are). */
function listenError(errno, address, port) {
  const code = util.getSystemErrorName(errno);
  const description = (util.getSystemErrorMap().get(errno) || [code, code])[1];
  const err = new Error(`listen ${code}: ${description} ${address}:${port}`);
  err.code = code;
  err.errno = errno;
  err.syscall = 'listen';
  err.address = address;
  err.port = port;
  return err;
}

class NativeListener extends EventEmitter {
  /**
   * @param {{ maxHeaderSize: number, headersTimeout: number }} options
   */
  constructor(options) {
    super();
    this._options = options;
    this._id = -1;
    this._unref = false;
    this.listening = false;
  }

  /** As net.Server's listen(port, host, backlog, callback); host may be a name. */
  listen(port, host, backlog, callback) {
    if (typeof callback === 'function') this.once('listening', callback);
    const portNumber = Number(port);
    if (!Number.isInteger(portNumber) || portNumber < 0 || portNumber > 65535) {
      const err = new RangeError(`options.port should be >= 0 and < 65536. Received ${port}.`);
      err.code = 'ERR_SOCKET_BAD_PORT';
      throw err;
    }
    const open = (address) => {
      let id;
      try {
        ensureNativeTransport();
        id = binding.listenerOpen(
          address,
          portNumber,
          backlog == null ? DEFAULT_BACKLOG : backlog,
          this._options.maxHeaderSize,
          this._options.headersTimeout
        );
      } catch (err) {
        this.emit('error', err);
        return;
      }
      if (id < 0) {
        this.emit('error', listenError(id, address, portNumber));
        return;
      }
      this._id = id;
      listeners[id] = this;
      this.listening = true;
      if (this._unref) binding.listenerRef(id, false);
      this.emit('listening');
    };
    if (host == null) {
      // As net.Server: every address, IPv6 and IPv4 alike, where IPv6 exists.
      process.nextTick(open, '::');
      return this;
    }
    if (net.isIP(host)) {
      process.nextTick(open, host);
      return this;
    }
    dns.lookup(host, (err, address) => {
      if (err) this.emit('error', err);
      else open(address);
    });
    return this;
  }

  address() {
    if (!this.listening) return null;
    const [address, family, port] = binding.listenerAddress(this._id);
    return { address, family, port };
  }

  /** Stops accepting connections (those already made go on, as with net.Server). */
  close(callback) {
    if (!this.listening) {
      const err = new Error('Server is not running.');
      err.code = 'ERR_SERVER_NOT_RUNNING';
      if (typeof callback === 'function') process.nextTick(callback, err);
      return this;
    }
    binding.listenerClose(this._id);
    listeners[this._id] = undefined;
    this.listening = false;
    if (typeof callback === 'function') this.once('close', callback);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  ref() {
    this._unref = false;
    if (this.listening) binding.listenerRef(this._id, true);
    return this;
  }

  unref() {
    this._unref = true;
    if (this.listening) binding.listenerRef(this._id, false);
    return this;
  }

  /** An upgrade request arrived (from the native transport's batch). */
  _onHandshake(token, parsed, head) {
    const socket = new HandshakeSocket(token);
    const req = createRequest(socket, parsed);
    this.emit('upgrade', req, socket, head || Buffer.alloc(0));
  }
}

/**
 * The socket of a handshake the native listener holds: what handleUpgrade() and an
 * application ('wsClientError', verifyClient) do with an upgrade's socket -- write an answer,
 * end, destroy, read its addresses -- done by the addon. Once the connection is accepted, it
 * stays a handle to it (as the net.Socket handed over with the native transport does).
 */
class HandshakeSocket extends EventEmitter {
  constructor(token) {
    super();
    this[kHandshakeSocket] = true;
    this._token = token;
    this._state = 'open'; // 'open', 'ended' (an answer was written), 'destroyed', 'adopted'
    this._addresses = undefined;
  }

  /** The connection's socket, once accepted. */
  get _face() {
    const ws = this[kWebSocket];
    return ws === undefined ? undefined : ws._socket;
  }

  get readable() {
    if (this._state === 'adopted') return this._face.readable;
    return this._state === 'open';
  }

  get writable() {
    if (this._state === 'adopted') return this._face.writable;
    return this._state === 'open';
  }

  get destroyed() {
    if (this._state === 'adopted') return this._face.destroyed;
    return this._state !== 'open';
  }

  write(data, encoding, cb) {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this._state === 'adopted') return this._face.write(data, encoding, cb);
    const ok = this._state === 'open' && binding.handshakeWrite(this._token, toBytes(data, encoding), false);
    if (typeof cb === 'function') process.nextTick(cb, ok ? undefined : new Error('The socket is closed'));
    return ok;
  }

  end(data, encoding, cb) {
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this._state === 'adopted') {
      this._face.end(data, encoding, cb);
      return this;
    }
    if (this._state === 'open') {
      // The addon writes it, sends FIN and reads until the peer leaves (a reset could make
      // the peer lose the answer otherwise), then closes the socket itself.
      binding.handshakeWrite(this._token, data == null ? Buffer.alloc(0) : toBytes(data, encoding), true);
      this._state = 'ended';
      process.nextTick(() => {
        this.emit('finish');
        if (typeof cb === 'function') cb();
        this.emit('close', false);
      });
    }
    return this;
  }

  destroy() {
    if (this._state === 'adopted') {
      this._face.destroy();
    } else if (this._state === 'open') {
      this._state = 'destroyed';
      binding.handshakeDestroy(this._token);
      process.nextTick(() => this.emit('close', false));
    } else if (this._state === 'ended') {
      // (The answer is on its way: the addon closes the socket once it is out.)
      this._state = 'destroyed';
    }
    return this;
  }

  resetAndDestroy() {
    if (this._state === 'adopted') this._face.resetAndDestroy();
    else this.destroy();
    return this;
  }

  setTimeout() {
    return this;
  }

  setNoDelay() {
    return this;
  }

  setKeepAlive() {
    return this;
  }

  _address(i) {
    if (this._state === 'adopted') {
      const face = this._face;
      return [face.remoteAddress, face.remoteFamily, face.remotePort, face.localAddress, face.localFamily, face.localPort][i];
    }
    if (this._addresses === undefined) this._addresses = binding.handshakeAddress(this._token) || [];
    return this._addresses[i];
  }

  get remoteAddress() {
    return this._address(0);
  }

  get remoteFamily() {
    return this._address(1);
  }

  get remotePort() {
    return this._address(2);
  }

  get localAddress() {
    return this._address(3);
  }

  get localPort() {
    return this._address(5);
  }

  address() {
    return { address: this._address(3), family: this._address(4), port: this._address(5) };
  }

  /** handleUpgrade accepted it: the socket becomes ws's; returns its transport id or -1. */
  _accept(ws, response) {
    const id = binding.handshakeAccept(this._token, ws._handle, response);
    this._state = 'adopted';
    this[kWebSocket] = ws;
    return id;
  }
}

function toBytes(data, encoding) {
  if (typeof data === 'string') return Buffer.from(data, encoding || 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const err = new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array');
  err.code = 'ERR_INVALID_ARG_TYPE';
  throw err;
}

onHandshake((listenerId, token, parsed, head) => {
  const listener = listeners[listenerId];
  if (listener === undefined) {
    // Closed meanwhile: as an http.Server being closed would, answer nothing and close.
    binding.handshakeDestroy(token);
    return;
  }
  listener._onHandshake(token, parsed, head);
});

module.exports = { NativeListener, nativeListenerFor };
