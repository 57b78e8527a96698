'use strict';

module.exports = {
  BINARY_TYPES: ['nodebuffer', 'arraybuffer', 'fragments', 'blob'],
  EMPTY_BUFFER: Buffer.alloc(0),
  GUID: '258EAFA5-E914-47DA-95CA-C5AB0DC85B11',
  kForOnEventAttribute: Symbol('kIsForOnEventAttribute'),
  kListener: Symbol('kListener'),
  kStatusCode: Symbol('status-code'),
  kWebSocket: Symbol('websocket'),
  NOOP: () => {},
  // Defaults shared by the server and its connections.
  DEFAULT_MAX_PAYLOAD: 100 * 1024 * 1024,
  DEFAULT_CLOSE_TIMEOUT: 30 * 1000,
  DEFAULT_HIGH_WATER_MARK: 64 * 1024,
  DEFAULT_MAX_BACKPRESSURE: 1024 * 1024
};
