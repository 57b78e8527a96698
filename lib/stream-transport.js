'use strict';

// The stream transport: moves bytes between a WebSocket and any stream.Duplex (a TCP socket,
// a TLS socket from https.Server, or an in-memory stream). Every 'data' chunk goes to the
// engine in one native call; output is written once per connection per event-loop turn.

const { EMPTY_BUFFER, kWebSocket, NOOP } = require('./constants');
const { receive } = require('./receiver');
const { flush, afterWrite, checkDrain, takeEngineOutput } = require('./sender');

class StreamTransport {
  /**
   * @param {WebSocket} ws
   * @param {import('stream').Duplex} socket
   * @param {Buffer} head bytes that arrived with the upgrade request
   */
  constructor(ws, socket, head) {
    this._ws = ws;
    this._socket = socket;
    socket[kWebSocket] = ws;

    if (typeof socket.setTimeout === 'function') socket.setTimeout(0);
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay();
    // Delivered through 'data' like everything else, so it arrives after 'connection'.
    if (head.length > 0) socket.unshift(head);

    // What the application writes to the socket itself (ws._socket.write()) goes after what
    // the WebSocket queued this turn, as it would with ws, which writes each frame at once.
    const write = socket.write;
    this._write = write;
    socket.write = function writeAfterQueued(...args) {
      if ((ws._flushScheduled || ws._receiving) && ws._transport !== null) flush(ws);
      return write.apply(this, args);
    };

    socket.on('close', socketOnClose);
    socket.on('data', socketOnData);
    socket.on('drain', socketOnDrain);
    socket.on('end', socketOnEnd);
    socket.on('error', socketOnError);
  }

  /** The receive loop flushes each chunk's replies at once here (see NativeTransport). */
  holdFlush() {
    return false;
  }

  get kind() {
    return 'stream';
  }

  /** flush(ws) in a tick of its own (sender.js's scheduleFlush()). */
  scheduleFlush(ws) {
    process.nextTick(flush, ws);
  }

  /** What ws._socket is: the stream itself. */
  get socket() {
    return this._socket;
  }

  /**
   * Writes queue's buffers, then the engine's output, as one corked write.
   *
   * @param {object} handle the connection's engine handle
   * @param {Buffer[]|null} queue
   * @param {Function[]|null} callbacks send callbacks to call once these bytes are written
   */
  flush(handle, queue, callbacks) {
    const ws = this._ws;
    if (queue !== null) {
      this.cork();
      for (const buffer of queue) this.write(buffer);
    }
    const out = takeEngineOutput(handle);
    if (out !== undefined) {
      if (callbacks !== null || ws._needDrain) {
        this.write(out, (err) => afterWrite(ws, err, callbacks));
      } else {
        this.write(out);
      }
    } else if (callbacks !== null) {
      // Nothing new to write (e.g. queued after close): report once the earlier writes finish.
      this.write(EMPTY_BUFFER, (err) => afterWrite(ws, err, callbacks));
    }
    if (queue !== null) this.uncork();
  }

  get writableLength() {
    return this._socket.writableLength || 0;
  }

  get writable() {
    return !this._socket.destroyed && !this._socket.writableEnded;
  }

  /**
   * @param {Buffer} data
   * @param {(err?: Error) => void} [cb]
   */
  write(data, cb) {
    if (!this.writable) {
      if (cb) process.nextTick(cb, new Error('The socket is not writable'));
      return;
    }
    this._write.call(this._socket, data, cb);
  }

  cork() {
    this._socket.cork();
  }

  uncork() {
    this._socket.uncork();
  }

  end() {
    this._socket.end();
  }

  destroy() {
    this._socket.destroy();
  }

  pause() {
    this._socket.pause();
  }

  resume() {
    this._socket.resume();
  }
}

function socketOnData(chunk) {
  receive(this[kWebSocket], chunk, 0);
}

function socketOnDrain() {
  checkDrain(this[kWebSocket]);
}

function socketOnEnd() {
  this[kWebSocket]._onTransportEnd();
}

function socketOnClose() {
  const ws = this[kWebSocket];
  this.removeListener('data', socketOnData);
  this.removeListener('end', socketOnEnd);
  this.removeListener('drain', socketOnDrain);
  ws._onTransportClose();
}

// Socket errors (a reset, a write after the peer left) end the connection; the user learns
// of it through 'close' with code 1006, as with ws.
function socketOnError() {
  this.removeListener('error', socketOnError);
  this.on('error', NOOP);
  this.destroy();
}

module.exports = StreamTransport;
