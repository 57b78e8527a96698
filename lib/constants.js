'use strict';

module.exports = {
  BINARY_TYPES: ['nodebuffer', 'arraybuffer', 'fragments', 'blob'],
  EMPTY_BUFFER: Buffer.alloc(0),
  // A connection's readyState (WebSocket.CONNECTING... answer the same), and their names.
  CONNECTING: 0,
  OPEN: 1,
  CLOSING: 2,
  CLOSED: 3,
  READY_STATES: ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'],
  // An RFC 7230 token (subprotocols, extension names and parameters):
  // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" /
  //         "~" / DIGIT / ALPHA
  TOKEN: /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/,
  kForOnEventAttribute: Symbol('kIsForOnEventAttribute'),
  kListener: Symbol('kListener'),
  kStatusCode: Symbol('status-code'),
  kWebSocket: Symbol('websocket'),
  kHandshakeSocket: Symbol('handshake-socket'), // the native listener's (lib/native-listener.js)
  NOOP: () => {},
  // Defaults shared by the server and its connections.
  DEFAULT_MAX_PAYLOAD: 100 * 1024 * 1024,
  DEFAULT_CLOSE_TIMEOUT: 30 * 1000,
  DEFAULT_HIGH_WATER_MARK: 64 * 1024,
  DEFAULT_MAX_BACKPRESSURE: 1024 * 1024,
  // Limits against peers that try to exhaust memory (the first three as in ws 8.19+).
  DEFAULT_MAX_FRAGMENTS: 16 * 1024,
  DEFAULT_MAX_BUFFERED_CHUNKS: 256 * 1024,
  DEFAULT_MAX_PENDING_AUTO_PONGS: 60,
  DEFAULT_MAX_BUFFERED_AMOUNT: 64 * 1024 * 1024
};
