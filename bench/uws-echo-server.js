'use strict';

// uWebSockets.js's echo server, the contender bench/run.js --with-uws adds: uWS owns its
// listening socket and its HTTP parser, and calls JavaScript once per message.
// Usage: node bench/uws-echo-server.js --port P [--tls]
//   (prints "listening ws://127.0.0.1:P" when ready; uWS.js comes from the cache folder that
//   bench/uws.js installs into; no --deflate: run.js does not ask uWS for the deflate rows;
//   --tls: wss from uWS.SSLApp, uWS's own TLS)
//
// The settings match what the other echo servers do, not uWS's defaults: messages up to
// 64 MiB (maxPayload as theirs), no idle timeout (the idle rows hold connections for a
// minute; ws has none), and a send buffer that never drops a reply (uWS drops what goes past
// maxBackpressure, 64 KiB by default; ws and ws-native buffer without limit).

const uws = require('./uws');
const { serverArgs, TLS_FILES } = require('./common');

const { port, tls } = serverArgs(
  process.argv.slice(2),
  'node bench/uws-echo-server.js --port P [--tls]',
  ['--tls']
);
const uWS = uws.load();
console.log(uws.describe());

const MiB = 1024 * 1024;

// uWS reads the pair from the files itself
const app = tls
  ? uWS.SSLApp({ cert_file_name: TLS_FILES.cert, key_file_name: TLS_FILES.key })
  : uWS.App();

app
  .ws('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: 64 * MiB,
    idleTimeout: 0,
    maxBackpressure: 1024 * MiB,
    closeOnBackpressureLimit: false,
    sendPingsAutomatically: false,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    }
  })
  .listen('127.0.0.1', port, (listenSocket) => {
    if (!listenSocket) {
      console.error(`uWS.js could not listen on 127.0.0.1:${port}`);
      process.exit(1);
    }
    console.log(`listening ${tls ? 'wss' : 'ws'}://127.0.0.1:${uWS.us_socket_local_port(listenSocket)}`);
  });

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
