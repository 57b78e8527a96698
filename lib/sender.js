'use strict';

// ws's Sender as far as other packages use it: WebSocket.Sender.frame(data, options) builds
// the bytes of one frame (socket.io-adapter encodes a broadcast once that way), and a
// connection's ws._sender.sendFrame(list, cb) queues such bytes (engine.io writes the
// broadcast to each client with it). Here the frame is built by the engine's encoder in C
// (binding.buildFrame), and sendFrame() puts the bytes on the connection's batched output,
// in order with everything else it sends, as publish() does with a topic's frame.

const binding = require('./binding');

class Sender {
  /**
   * One frame of `data`, with ws's signature and options. The result is a list of Buffers
   * to write in order (here always one), as ws's is.
   *
   * @param {string|Buffer|ArrayBuffer|ArrayBufferView} data the payload (a string as UTF-8)
   * @param {object} options
   * @param {number} options.opcode 0..15
   * @param {boolean} [options.fin=false]
   * @param {boolean} [options.rsv1=false] set RSV1 (the payload is not compressed here)
   * @param {boolean} [options.mask=false] mask the payload with a key from the CSPRNG
   *   (ws's maskBuffer and generateMask options are not taken: RFC 6455 5.3 wants
   *   unpredictable keys); `data` is never modified, so readOnly makes no difference
   * @returns {Buffer[]}
   */
  static frame(data, options) {
    if (options === null || typeof options !== 'object') {
      const err = new TypeError('The "options" argument must be an object');
      err.code = 'ERR_INVALID_ARG_TYPE';
      throw err;
    }
    return [binding.buildFrame(data, options.opcode, !!options.fin, !!options.rsv1, !!options.mask)];
  }

  /** The connection's Sender, as ws._sender returns it. @param {import('./websocket')} ws */
  constructor(ws) {
    this._ws = ws;
  }

  /**
   * Queues whole frames built beforehand (by Sender.frame(), ws's or ours): their bytes go
   * out as they are, after what the connection sent before and before what it sends next.
   *
   * @param {Array<Buffer|Uint8Array|string>} list the bytes of the frames, in order
   * @param {(err?: Error | null) => void} [cb] called once they are written (or failed)
   * @returns {boolean} as send(): false once bufferedAmount reaches the high-water mark
   */
  sendFrame(list, cb) {
    return this._ws._sendFrames(list, cb);
  }
}

module.exports = Sender;
