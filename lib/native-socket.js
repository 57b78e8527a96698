'use strict';

// The net.Socket face of the native transport. With the stream transport ws._socket is Node's
// socket; with the native one Node's socket is released after the upgrade, and two objects
// stand in for it:
//
// - ws._socket is the transport itself, given the net.Socket members that applications and
//   frameworks use (addresses, byte counts, socket options, an idle timeout, ref/unref, the
//   'close'/'end'/'error'/'timeout'/'drain' events, destroy, write...), each done by the addon
//   where it is a socket option. A member it cannot offer throws WS_ERR_NATIVE_SOCKET,
//   suggesting `transport: 'stream'`: nothing is a silent no-op.
// - The net.Socket the application handed to handleUpgrade() (and req.socket) stays a handle
//   to the connection: destroy(), end(), write()... act on it, and its 'close' and 'end' come
//   when the connection really closes. Nothing here keeps it alive unless it has listeners
//   for those events (the connection then holds it until it closes).

const EventEmitter = require('events');
const net = require('net');

const binding = require('./binding');
const { kWebSocket, NOOP } = require('./constants');
const { beforeListenerAdded } = require('./listener-hook');
const { receive } = require('./receiver');
const {
  queueWrite,
  queueEngineOutput,
  addSendCallback,
  scheduleFlush,
  flush
} = require('./sender');

// Events of the socket's own (the ones net.Socket emits about the connection).
const MIRRORED_EVENTS = ['close', 'end', 'error', 'timeout', 'drain'];
const EVENTS = new Set(MIRRORED_EVENTS);
// ... and on ws._socket also 'data': the raw bytes of each read, as they came (the addon
// hands them over as well as parsing them, only while someone listens).
const FACE_EVENTS = new Set([...EVENTS, 'data']);

// Per transport, made on demand so that a connection nobody asks about carries none of it:
// listeners, released sockets to emit on too, the idle timeout, the byte counts once closed,
// the error a destroy(err) is to report.
const emitters = new WeakMap();
const mirrors = new WeakMap();
const timeouts = new WeakMap();
const finalStats = new WeakMap();
const destroyErrors = new WeakMap();
let timed = 0; // transports with an idle timeout (their reads and writes refresh it)

function unsupported(name) {
  const err = new Error(
    `ws._socket.${name} is not available on the native transport (the addon owns the socket); ` +
      "use the option transport: 'stream' to keep Node's net.Socket"
  );
  err.code = 'WS_ERR_NATIVE_SOCKET';
  return err;
}

function checkEvent(name, event) {
  if (!FACE_EVENTS.has(event)) {
    const err = unsupported(`${name}('${String(event)}')`);
    throw err;
  }
}

function emitterOf(transport) {
  let emitter = emitters.get(transport);
  if (emitter === undefined) emitters.set(transport, (emitter = new EventEmitter()));
  return emitter;
}

/** Emits on the transport's listeners and on every released socket that has some. */
function emitSocketEvent(transport, event, ...args) {
  const emitter = emitters.get(transport);
  if (emitter !== undefined) {
    if (event !== 'error' || emitter.listenerCount('error') > 0) emitter.emit(event, ...args);
  }
  const sockets = mirrors.get(transport);
  if (sockets !== undefined) {
    // (A released socket with no 'error' listener of the application's is not thrown at.)
    for (const socket of sockets) {
      if (event !== 'error' || socket.listenerCount('error') > 0) {
        EventEmitter.prototype.emit.call(socket, event, ...args);
      }
    }
  }
}

/** Network activity: an idle timeout starts again (as net.Socket's does on each read/write). */
function socketActive(transport) {
  if (timed === 0) return;
  const entry = timeouts.get(transport);
  if (entry !== undefined) entry.timer.refresh();
}

function clearIdleTimeout(transport) {
  const entry = timeouts.get(transport);
  if (entry === undefined) return;
  clearTimeout(entry.timer);
  timeouts.delete(transport);
  timed--;
}

function onIdle(transport) {
  emitSocketEvent(transport, 'timeout');
}

/** The peer sent FIN. */
function socketEnded(transport) {
  transport._peerEnded = true;
  emitSocketEvent(transport, 'end');
}

/** Whether the addon hands over raw reads: while ws._socket has 'data' listeners. */
function observeData(transport) {
  const emitter = emitters.get(transport);
  const on = emitter !== undefined && emitter.listenerCount('data') > 0;
  if (on !== transport._observed && !transport._closed) {
    transport._observed = on;
    binding.transportObserve(transport._ws._handle, on);
  }
}

/** A read's raw bytes (while observed). */
function socketData(transport, bytes) {
  emitSocketEvent(transport, 'data', bytes);
  observeData(transport);
}

/** The output the kernel did not take was written. */
function socketDrained(transport) {
  emitSocketEvent(transport, 'drain');
}

/**
 * The socket closed (errno: why, 0 for a plain close). Called before the connection is
 * released, so its byte counts can still be read.
 */
function socketClosed(transport, errno, handle) {
  clearIdleTimeout(transport);
  if (emitters.has(transport) || mirrors.has(transport) || transport._statsRead) {
    finalStats.set(transport, binding.transportStats(handle));
  }
  let err = destroyErrors.get(transport);
  destroyErrors.delete(transport);
  if (err === undefined && errno !== 0) err = errnoError(errno);
  if (err !== undefined) emitSocketEvent(transport, 'error', err);
  emitSocketEvent(transport, 'close', err !== undefined);
  mirrors.delete(transport);
}

function errnoError(errno) {
  const [code, description] = require('util').getSystemErrorMap().get(-errno) || ['UNKNOWN', ''];
  const err = new Error(`${description || 'socket error'} (${code})`);
  err.code = code;
  err.errno = -errno;
  err.syscall = 'read';
  return err;
}

function validateTimeout(ms) {
  if (typeof ms !== 'number') {
    const err = new TypeError(`The "msecs" argument must be of type number; got ${typeof ms}`);
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  if (!(ms >= 0) || ms > 2 ** 31 - 1) {
    const err = new RangeError(`The value of "msecs" is out of range; got ${ms}`);
    err.code = 'ERR_OUT_OF_RANGE';
    throw err;
  }
}

/**
 * Gives NativeTransport.prototype the net.Socket members. The transport's own fields:
 * _ws, _pending (bytes the kernel did not take), and flag bits _paused, _ended, _closed,
 * _destroyed, _peerEnded, _statsRead, _observed.
 */
function installSocketFace(NativeTransport) {
  const proto = NativeTransport.prototype;
  const methods = {
    address() {
      const info = this._addressInfo();
      return info.length === 0 ? {} : { address: info[3], family: info[5], port: info[4] };
    },

    setNoDelay(noDelay = true) {
      if (!this._closed) binding.transportNoDelay(this._ws._handle, noDelay !== false);
      return this;
    },

    setKeepAlive(enable = false, initialDelay = 0) {
      if (!this._closed) {
        binding.transportKeepAlive(this._ws._handle, !!enable, Math.floor(initialDelay / 1000));
      }
      return this;
    },

    /** As net.Socket's: 'timeout' after msecs without reads or writes (0: none). */
    setTimeout(msecs, callback) {
      validateTimeout(msecs);
      clearIdleTimeout(this);
      if (msecs > 0 && !this._closed) {
        const timer = setTimeout(onIdle, msecs, this);
        timer.unref(); // (net.Socket's timeout does not keep the process alive either)
        timeouts.set(this, { timer, msecs });
        timed++;
      }
      if (typeof callback === 'function') {
        if (msecs === 0) this.removeListener('timeout', callback);
        else this.once('timeout', callback);
      }
      return this;
    },

    ref() {
      if (!this._closed) binding.transportRef(this._ws._handle, true);
      return this;
    },

    unref() {
      if (!this._closed) binding.transportRef(this._ws._handle, false);
      return this;
    },

    isPaused() {
      return this._paused;
    },

    /** Raw bytes onto the connection, after everything the WebSocket queued before. */
    write(chunk, encoding, cb) {
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      const ws = this._ws;
      if (this._closed || this._destroyed || this._ended) {
        const err = new Error(this._ended ? 'write after end' : 'Cannot call write after a stream was destroyed');
        err.code = this._ended ? 'ERR_STREAM_WRITE_AFTER_END' : 'ERR_STREAM_DESTROYED';
        process.nextTick(emitWriteError, this, err, cb);
        return false;
      }
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : toBuffer(chunk);
      queueEngineOutput(ws);
      queueWrite(ws, bytes);
      if (typeof cb === 'function') addSendCallback(ws, cb);
      scheduleFlush(ws);
      return ws.bufferedAmount < ws._highWaterMark;
    },

    /** As net.Socket's: bytes written so far, then FIN once everything is out. */
    end(data, encoding, cb) {
      if (typeof data === 'function') {
        cb = data;
        data = undefined;
      } else if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      if (data !== undefined && data !== null) this.write(data, encoding);
      const ws = this._ws;
      if (ws._flushScheduled) flush(ws); // (which may end the transport itself)
      if (!this._closed && !this._ended) {
        this._ended = true;
        binding.transportEnd(ws._handle);
      }
      if (typeof cb === 'function') process.nextTick(cb);
      return this;
    },

    destroySoon() {
      return this.end();
    },

    destroy(err) {
      if (!this._closed && !this._destroyed) {
        // What was written goes to the kernel first, as net.Socket's write() already has by
        // the time its destroy() runs (engine.io writes a 400 and destroys in one go).
        const ws = this._ws;
        if (ws._flushScheduled) flush(ws);
        if (this._closed) return this; // (the flush found the connection gone)
        this._destroyed = true;
        if (err instanceof Error) destroyErrors.set(this, err);
        binding.transportDestroy(ws._handle, false);
      }
      return this;
    },

    /** Closes with a TCP reset (RST) instead of FIN, as net.Socket's does. */
    resetAndDestroy() {
      if (!this._closed && !this._destroyed) {
        this._destroyed = true;
        binding.transportDestroy(this._ws._handle, true);
      }
      return this;
    },

    // Events of the socket's own (FACE_EVENTS); any other event is one the native transport
    // has not ('readable', say), and says so.
    on(event, listener) {
      checkEvent('on', event);
      emitterOf(this).on(event, listener);
      if (event === 'data') observeData(this);
      return this;
    },
    once(event, listener) {
      checkEvent('once', event);
      emitterOf(this).once(event, listener);
      if (event === 'data') observeData(this);
      return this;
    },
    prependListener(event, listener) {
      checkEvent('prependListener', event);
      emitterOf(this).prependListener(event, listener);
      if (event === 'data') observeData(this);
      return this;
    },
    prependOnceListener(event, listener) {
      checkEvent('prependOnceListener', event);
      emitterOf(this).prependOnceListener(event, listener);
      if (event === 'data') observeData(this);
      return this;
    },
    removeListener(event, listener) {
      const emitter = emitters.get(this);
      if (emitter !== undefined) emitter.removeListener(event, listener);
      if (event === 'data') observeData(this);
      return this;
    },
    removeAllListeners(event) {
      const emitter = emitters.get(this);
      if (emitter !== undefined) emitter.removeAllListeners(event);
      observeData(this);
      return this;
    },

    /**
     * Bytes handed in as if the socket had read them (as Readable's push(); null: the end).
     * They go through the same parser as what the addon reads.
     */
    push(chunk) {
      if (this._closed) return false;
      if (chunk === null) {
        this._ws._onTransportEnd();
        return false;
      }
      receive(this._ws, typeof chunk === 'string' ? Buffer.from(chunk) : toBuffer(chunk), 0);
      return true;
    },
    listeners(event) {
      const emitter = emitters.get(this);
      return emitter === undefined ? [] : emitter.listeners(event);
    },
    listenerCount(event) {
      const emitter = emitters.get(this);
      return emitter === undefined ? 0 : emitter.listenerCount(event);
    },
    emit(event, ...args) {
      checkEvent('emit', event);
      const emitter = emitters.get(this);
      return emitter !== undefined && emitter.emit(event, ...args);
    },
    eventNames() {
      const emitter = emitters.get(this);
      return emitter === undefined ? [] : emitter.eventNames();
    },
    setMaxListeners(n) {
      emitterOf(this).setMaxListeners(n);
      return this;
    }
  };
  methods.addListener = methods.on;
  methods.off = methods.removeListener;
  for (const [name, fn] of Object.entries(methods)) {
    Object.defineProperty(proto, name, { configurable: true, writable: true, value: fn });
  }

  const getters = {
    readyState() {
      if (this._closed || this._destroyed) return 'closed';
      const readable = !this._peerEnded;
      const writable = !this._ended;
      if (readable && writable) return 'open';
      if (readable) return 'readOnly';
      if (writable) return 'writeOnly';
      return 'closed';
    },
    destroyed() {
      return this._closed || this._destroyed;
    },
    readable() {
      return !this._closed && !this._destroyed && !this._peerEnded;
    },
    writable() {
      return !this._closed && !this._destroyed && !this._ended;
    },
    connecting() {
      return false;
    },
    pending() {
      return false;
    },
    bufferSize() {
      return this._pending;
    },
    writableNeedDrain() {
      return this._ws._needDrain;
    },
    timeout() {
      const entry = timeouts.get(this);
      return entry === undefined ? undefined : entry.msecs;
    },
    bytesRead() {
      return stats(this)[0];
    },
    bytesWritten() {
      return stats(this)[1];
    },
    remoteAddress() {
      return this._addressInfo()[0];
    },
    remotePort() {
      return this._addressInfo()[1];
    },
    remoteFamily() {
      return this._addressInfo()[2];
    },
    localAddress() {
      return this._addressInfo()[3];
    },
    localPort() {
      return this._addressInfo()[4];
    },
    localFamily() {
      return this._addressInfo()[5];
    }
  };
  for (const [name, get] of Object.entries(getters)) {
    Object.defineProperty(proto, name, { configurable: true, get });
  }

  // What a net.Socket can do that a socket owned by the addon cannot: each throws, naming
  // itself, rather than doing nothing.
  for (const name of [
    'cork', // (the connection batches its writes per turn of the event loop already)
    'uncork',
    'pipe',
    'unpipe',
    'read',
    'unshift',
    'setEncoding',
    'setDefaultEncoding',
    'wrap',
    'connect',
    Symbol.asyncIterator
  ]) {
    const label = typeof name === 'symbol' ? '[Symbol.asyncIterator]' : name;
    Object.defineProperty(proto, name, {
      configurable: true,
      writable: true,
      value: function unavailable() {
        throw unsupported(`${label}()`);
      }
    });
  }
}

function stats(transport) {
  const kept = finalStats.get(transport);
  if (kept !== undefined) return kept;
  if (transport._closed) return [0, 0];
  // (Read from then on at close too: see socketClosed.)
  transport._statsRead = true;
  return binding.transportStats(transport._ws._handle);
}

function emitWriteError(transport, err, cb) {
  if (typeof cb === 'function') cb(err);
  emitSocketEvent(transport, 'error', err);
}

function toBuffer(chunk) {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const err = new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array');
  err.code = 'ERR_INVALID_ARG_TYPE';
  throw err;
}

// ---- the socket handed over ----

/** The facade (ws._socket) of a released socket's connection. */
function faceOf(socket) {
  const ws = socket[kWebSocket];
  return ws === undefined ? undefined : ws._socket;
}

/**
 * A net.Socket the native transport took over. Node's side of it is destroyed (its handle,
 * buffers and timers freed); what the application does with it goes to the connection, and
 * its own 'close'/'end'/... come from the connection (those Node would emit now are held).
 */
class ReleasedSocket extends net.Socket {
  emit(event, ...args) {
    if (EVENTS.has(event)) return false; // (Node's own, stale)
    return super.emit(event, ...args);
  }
}

// A listener added later to one of the connection's events makes the socket a mirror of them.
beforeListenerAdded(ReleasedSocket.prototype, net.Socket.prototype, (socket, event) => {
  if (EVENTS.has(event)) mirror(socket);
});

const forwardedMethods = [
  'address',
  'setNoDelay',
  'setKeepAlive',
  'ref',
  'unref',
  'isPaused',
  'pause',
  'resume',
  'cork',
  'uncork',
  'destroySoon'
];
for (const name of forwardedMethods) {
  Object.defineProperty(ReleasedSocket.prototype, name, {
    configurable: true,
    writable: true,
    value: function (...args) {
      const face = faceOf(this);
      if (face === undefined) return this;
      const result = face[name](...args);
      return result === face ? this : result;
    }
  });
}
Object.assign(ReleasedSocket.prototype, {
  write(...args) {
    return faceOf(this).write(...args);
  },
  end(...args) {
    faceOf(this).end(...args);
    return this;
  },
  destroy(err) {
    faceOf(this).destroy(err);
    return this;
  },
  resetAndDestroy() {
    faceOf(this).resetAndDestroy();
    return this;
  },
  setTimeout(msecs, callback) {
    faceOf(this).setTimeout(msecs);
    if (typeof callback === 'function') {
      if (msecs === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    return this;
  }
});
for (const name of [
  'readyState',
  'destroyed',
  'readable',
  'writable',
  'bufferSize',
  'timeout',
  'bytesRead',
  'bytesWritten',
  'remoteAddress',
  'remotePort',
  'remoteFamily',
  'localAddress',
  'localPort',
  'localFamily'
]) {
  Object.defineProperty(ReleasedSocket.prototype, name, {
    configurable: true,
    get() {
      const face = faceOf(this);
      return face === undefined ? undefined : face[name];
    }
  });
}

/** Node's own listener, added to every socket, which ends it when its reading ends. */
function isNodeInternal(listener) {
  return listener.name === 'onReadableStreamEnd';
}

/** Whether the application listens to one of the connection's events on socket already. */
function hasMirroredListeners(socket) {
  // (Read from the listener table: listeners() would copy five arrays on every handshake.)
  const table = socket._events;
  if (table === undefined) return false;
  for (const event of MIRRORED_EVENTS) {
    const listeners = table[event];
    if (listeners === undefined) continue;
    if (typeof listeners === 'function') {
      if (isApplications(listeners)) return true;
    } else if (listeners.some(isApplications)) {
      return true;
    }
  }
  return false;
}

function isApplications(listener) {
  const own = listener.listener || listener; // (once() wraps the listener)
  return own !== NOOP && !isNodeInternal(own);
}

/** The released socket is to be told of its connection's events (it has listeners). */
function mirror(socket, face = faceOf(socket)) {
  if (face === undefined || face === null || face._closed) return;
  let sockets = mirrors.get(face);
  if (sockets === undefined) mirrors.set(face, (sockets = new Set()));
  sockets.add(socket);
}

/**
 * Releases Node's side of a socket the native transport took over (which already duplicated
 * its descriptor), leaving the object a handle to the WebSocket's connection.
 */
function releaseSocket(socket, ws, transport) {
  socket[kWebSocket] = ws;
  socket.destroy(); // never end(): that would send FIN
  if (Object.getPrototypeOf(socket) !== net.Socket.prototype) {
    socket.on('error', NOOP); // (a subclass: left as is, its events are Node's)
    return;
  }
  // (Node's 'close' and any error of the destroy() come later: ReleasedSocket holds them.)
  Object.setPrototypeOf(socket, ReleasedSocket.prototype);
  if (hasMirroredListeners(socket)) mirror(socket, transport);
}

module.exports = {
  installSocketFace,
  releaseSocket,
  socketActive,
  socketClosed,
  socketData,
  socketDrained,
  socketEnded
};
