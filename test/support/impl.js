'use strict';

// The implementation under test. The suite is written against the ws 8 API, so it can be run
// against the `ws` package itself (WS_IMPL=ws) to check that a test expects what ws does.
// Tests of behaviour that only ws-native has are skipped there (see `nativeOnly`).

const useWs = process.env.WS_IMPL === 'ws';
const impl = useWs ? require('ws') : require('../..');

module.exports = {
  WebSocket: impl.WebSocket,
  WebSocketServer: impl.WebSocketServer,
  createWebSocketStream: impl.createWebSocketStream,
  isWs: useWs,
  /** describe()/it() replacement for tests of ws-native-only behaviour. */
  nativeOnly: useWs ? { describe: describe.skip, it: it.skip } : { describe, it }
};
