'use strict';

// The native transport: which sockets the addon takes over (and which stay on the stream
// transport), what replaces Node's socket for the application, and worker threads. The rest of
// the suite runs on both transports (npm run test:js runs it with WS_NATIVE_TRANSPORT=native and
// =stream); with =stream, every connection here must say 'stream'.

const assert = require('assert');
const { execFile } = require('child_process');
const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const os = require('os');
const path = require('path');
const { Duplex } = require('stream');
const { Worker } = require('worker_threads');

const { nativeOnly } = require('./support/impl');
const {
  Cleanup,
  listen,
  nextMessage,
  once,
  openWsClient,
  parseFrame,
  parseHead,
  upgradeRequest,
  withTimeout
} = require('./support/net-helpers');

const ROOT = path.join(__dirname, '..');
const { WebSocket, WebSocketServer } = require(ROOT);

// (The native transport is Linux only: src/napi/native_transport.c.)
const nativeOn = process.env.WS_NATIVE_TRANSPORT !== 'stream' && process.platform === 'linux';
const expected = nativeOn ? 'native' : 'stream';

function echo(wss) {
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
}

// The process's open descriptors: /proc on Linux, /dev/fd on macOS and the BSDs (where the
// native transport runs on the portable poller).
const FD_DIR = fs.existsSync('/proc/self/fd') ? '/proc/self/fd' : '/dev/fd';
function openFds() {
  return fs.readdirSync(FD_DIR).length;
}

nativeOnly.describe('native transport', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function httpSetup(options = {}) {
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new WebSocketServer({ server, ...options }));
    echo(wss);
    const port = await listen(server);
    return { server, wss, port };
  }

  /** Opens count clients (not in cleanup: closing the server ends them); both ends of each. */
  async function openConnections(wss, port, count) {
    const servers = [];
    wss.on('connection', (ws) => servers.push(ws));
    const clients = [];
    for (let i = 0; i < count; i++) {
      const c = new WebSocket(`ws://127.0.0.1:${port}`);
      c.on('error', () => {});
      clients.push(c);
    }
    await Promise.all(clients.map((c) => once(c, 'open')));
    await withTimeout(
      (async () => {
        while (servers.length < count) await new Promise((resolve) => setTimeout(resolve, 5));
      })(),
      `${count} connections`
    );
    return { servers, clients };
  }

  it(`takes over an http.Server connection and the client's (transport '${expected}'); Node's sockets are released`, async function () {
    const { server, wss, port } = await httpSetup();
    const connected = once(wss, 'connection');
    const client = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`));
    await once(client, 'open');
    const [ws, req] = await connected;
    assert.strictEqual(ws.transport, expected);
    assert.strictEqual(client.transport, expected);

    // What applications read from ws._socket.
    assert.strictEqual(ws._socket.remoteAddress, client._socket.localAddress);
    assert.strictEqual(ws._socket.remotePort, client._socket.localPort);
    assert.strictEqual(ws._socket.localPort, port);
    assert.strictEqual(ws._socket.remoteFamily, 'IPv4');

    // The client's side answers the same questions.
    assert.strictEqual(client._socket.remoteAddress, '127.0.0.1');
    assert.strictEqual(client._socket.remotePort, port);
    assert.strictEqual(client._socket.remoteFamily, 'IPv4');

    // req.socket still answers what ws users read from it in 'connection'.
    assert.strictEqual(req.socket.remoteAddress, client._socket.localAddress);
    assert.strictEqual(req.socket.remotePort, client._socket.localPort);
    assert.strictEqual(req.socket.localPort, port);
    if (nativeOn) {
      // Node's side of the socket was freed without ending the connection, and the server no
      // longer counts it; the object stays a handle to the connection (not destroyed).
      assert.strictEqual(req.socket.destroyed, false);
      assert.strictEqual(req.socket.readyState, 'open');
      const count = await new Promise((resolve, reject) =>
        server.getConnections((err, n) => (err ? reject(err) : resolve(n)))
      );
      assert.strictEqual(count, 0);
    }

    for (const size of [0, 5, 125, 126, 65535, 65536, 3 * 1024 * 1024]) {
      const payload = Buffer.alloc(size, size & 0xff);
      client.send(payload);
      const [data, isBinary] = await once(client, 'message');
      assert.strictEqual(isBinary, true);
      assert.ok(data.equals(payload), `echo of ${size} bytes`);
    }
    client.send('héllo');
    const [text] = await once(client, 'message');
    assert.strictEqual(text.toString(), 'héllo');

    const closed = once(ws, 'close');
    client.close(4000, 'bye');
    const [code, reason] = await closed;
    assert.strictEqual(code, 4000);
    assert.strictEqual(reason.toString(), 'bye');
    // After the close, the address is gone as it is from a destroyed socket, without throwing.
    assert.strictEqual(ws._socket.destroyed, true);
    if (client.readyState !== WebSocket.CLOSED) await once(client, 'close');
    assert.strictEqual(client._socket.destroyed, true);
  });

  it('delivers the bytes that came with the upgrade request (head) first, in order', async function () {
    const { port } = await httpSetup();
    const { maskedFrame } = require('./support/net-helpers');
    const socket = cleanup.add(net.connect(port, '127.0.0.1'));
    await once(socket, 'connect');
    // The request and two frames in one write: Node hands the frames over as `head`.
    socket.write(
      Buffer.concat([
        Buffer.from(upgradeRequest()),
        maskedFrame(1, 'first'),
        maskedFrame(1, 'second')
      ])
    );
    let received = Buffer.alloc(0);
    const texts = [];
    await withTimeout(
      new Promise((resolve) => {
        socket.on('data', (chunk) => {
          received = Buffer.concat([received, chunk]);
          const end = received.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = parseHead(received);
          assert.strictEqual(head.status, 101);
          let rest = received.subarray(end + 4);
          for (let f; (f = parseFrame(rest)) !== null; rest = rest.subarray(f.length)) {
            texts.push(f.payload.toString());
          }
          if (texts.length === 2) resolve();
        });
      }),
      'two echoes'
    );
    assert.deepStrictEqual(texts, ['first', 'second']);
  });

  it("a client delivers the frames that came right behind the server's 101 first, after 'open'", async function () {
    const { acceptKey } = require('./support/net-helpers');
    // A server written by hand: the 101 and two frames leave in one write, so the client's
    // HTTP parser hands the frames over as the upgrade's head.
    const server = cleanup.add(
      net.createServer((socket) => {
        let request = '';
        socket.on('data', (chunk) => {
          request += chunk.toString('latin1');
          if (!request.includes('\r\n\r\n')) return;
          const key = /sec-websocket-key: *(\S+)/i.exec(request)[1];
          socket.write(
            Buffer.concat([
              Buffer.from(
                'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
                  `Connection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`
              ),
              Buffer.from([0x81, 5]), Buffer.from('first'),
              Buffer.from([0x81, 6]), Buffer.from('second')
            ])
          );
        });
      })
    );
    const port = await listen(server);
    const client = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false }));
    const seen = [];
    client.on('open', () => seen.push(`open ${client.transport}`));
    client.on('message', (data) => seen.push(data.toString()));
    await withTimeout(
      new Promise((resolve) => client.on('message', () => seen.length === 3 && resolve())),
      'two messages'
    );
    assert.deepStrictEqual(seen, [`open ${expected}`, 'first', 'second']);
  });

  describe('falls back to the stream transport', function () {
    it("with transport: 'stream'", async function () {
      const { wss, port } = await httpSetup({ transport: 'stream' });
      const connected = once(wss, 'connection');
      const client = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`));
      const [ws, req] = await connected;
      assert.strictEqual(ws.transport, 'stream');
      assert.strictEqual(ws._socket, req.socket);
      if (client.readyState !== WebSocket.OPEN) await once(client, 'open');
      assert.strictEqual(client.transport, expected); // the client chooses its own
      client.send('x');
      const [data] = await once(client, 'message');
      assert.strictEqual(data.toString(), 'x');
    });

    it("with transport: 'stream' on the client", async function () {
      const { wss, port } = await httpSetup();
      const connected = once(wss, 'connection');
      const client = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`, { transport: 'stream' }));
      let upgraded;
      client.on('upgrade', (res) => (upgraded = res.socket));
      await once(client, 'open');
      const [ws] = await connected;
      assert.strictEqual(client.transport, 'stream');
      assert.strictEqual(client._socket, upgraded);
      assert.strictEqual(ws.transport, expected);
      client.send('x');
      const [data] = await once(client, 'message');
      assert.strictEqual(data.toString(), 'x');
    });

    it('for TLS (https.Server)', async function () {
      const key = fs.readFileSync(path.join(__dirname, 'fixtures', 'key.pem'));
      const cert = fs.readFileSync(path.join(__dirname, 'fixtures', 'cert.pem'));
      const server = cleanup.add(https.createServer({ key, cert }));
      const wss = cleanup.add(new WebSocketServer({ server, transport: 'native' }));
      echo(wss);
      const port = await listen(server);
      const connected = once(wss, 'connection');
      const client = cleanup.add(
        await openWsClient(`wss://127.0.0.1:${port}`, { rejectUnauthorized: false })
      );
      const [ws] = await connected;
      assert.strictEqual(ws.transport, 'stream');
      client.send('over tls');
      const [data] = await once(client, 'message');
      assert.strictEqual(data.toString(), 'over tls');

      // Our own client over TLS stays on the stream transport too.
      const own = cleanup.add(
        new WebSocket(`wss://127.0.0.1:${port}`, { rejectUnauthorized: false, transport: 'native' })
      );
      await once(own, 'open');
      assert.strictEqual(own.transport, 'stream');
      own.send('ours over tls');
      const [echoed] = await once(own, 'message');
      assert.strictEqual(echoed.toString(), 'ours over tls');
    });

    it('for a Duplex that is not a socket (handleUpgrade with any stream)', async function () {
      const server = cleanup.add(http.createServer());
      const wss = cleanup.add(new WebSocketServer({ noServer: true, transport: 'native' }));
      echo(wss);
      server.on('upgrade', (req, socket, head) => {
        // A Duplex in front of the socket, as a proxy or a test harness would have.
        const duplex = new Duplex({
          read() {},
          write(chunk, encoding, callback) {
            socket.write(chunk, callback);
          },
          final(callback) {
            socket.end(callback);
          },
          destroy(err, callback) {
            socket.destroy();
            callback(err);
          }
        });
        socket.on('data', (chunk) => duplex.push(chunk));
        socket.on('end', () => duplex.push(null));
        wss.handleUpgrade(req, duplex, head, (ws) => wss.emit('connection', ws, req));
      });
      const port = await listen(server);
      const connected = once(wss, 'connection');
      const client = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`));
      const [ws] = await connected;
      assert.strictEqual(ws.transport, 'stream');
      if (client.readyState !== WebSocket.OPEN) await once(client, 'open');
      client.send('through a duplex');
      const [data] = await once(client, 'message');
      assert.strictEqual(data.toString(), 'through a duplex');
    });

    it('when Node already holds received data for the socket (it is delivered first)', async function () {
      const server = cleanup.add(http.createServer());
      const wss = cleanup.add(new WebSocketServer({ noServer: true, transport: 'native' }));
      echo(wss);
      const { maskedFrame } = require('./support/net-helpers');
      server.on('upgrade', (req, socket, head) => {
        // The application peeked at the first frame and put it back.
        socket.unshift(maskedFrame(1, 'put back'));
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      });
      const port = await listen(server);
      const connected = once(wss, 'connection');
      const client = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`));
      const echoed = nextMessage(client);
      const [ws] = await connected;
      assert.strictEqual(ws.transport, 'stream');
      const [data] = await echoed;
      assert.strictEqual(data.toString(), 'put back');
    });

    it('when Node has output queued for the socket (an interim 100 response); it goes first', async function () {
      const server = cleanup.add(http.createServer());
      const wss = cleanup.add(new WebSocketServer({ noServer: true, transport: 'native' }));
      echo(wss);
      let transport;
      server.on('upgrade', (req, socket, head) => {
        socket.cork();
        socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        wss.handleUpgrade(req, socket, head, (ws) => {
          transport = ws.transport;
          process.nextTick(() => socket.uncork());
        });
      });
      const port = await listen(server);
      const socket = cleanup.add(net.connect(port, '127.0.0.1'));
      await once(socket, 'connect');
      socket.write(upgradeRequest());
      let received = '';
      await withTimeout(
        new Promise((resolve) => {
          socket.on('data', (chunk) => {
            received += chunk.toString('latin1');
            if (/\r\n\r\n[\s\S]*\r\n\r\n/.test(received)) resolve();
          });
        }),
        'both responses'
      );
      assert.match(received, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 101 Switching Protocols\r\n/);
      assert.strictEqual(transport, 'stream');
    });

    it('for a socket destroyed before handleUpgrade: no connection, no crash', async function () {
      const server = cleanup.add(http.createServer());
      const wss = cleanup.add(new WebSocketServer({ noServer: true, transport: 'native' }));
      let connections = 0;
      const handled = new Promise((resolve) => {
        server.on('upgrade', (req, socket, head) => {
          socket.destroy();
          wss.handleUpgrade(req, socket, head, () => connections++);
          resolve();
        });
      });
      const port = await listen(server);
      const socket = cleanup.add(net.connect(port, '127.0.0.1'));
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write(upgradeRequest());
      await withTimeout(handled, 'the upgrade');
      await once(socket, 'close');
      assert.strictEqual(connections, 0);
    });

    it('for every connection when WS_NATIVE_TRANSPORT=stream is set for the process', async function () {
      const script = `
        const http = require('http');
        const { WebSocketServer, WebSocket } = require(${JSON.stringify(ROOT)});
        const server = http.createServer();
        const wss = new WebSocketServer({ server, transport: 'native' });
        wss.on('connection', (ws) => { console.log(ws.transport); process.exit(0); });
        server.listen(0, '127.0.0.1', () => new WebSocket('ws://127.0.0.1:' + server.address().port));
      `;
      const output = await new Promise((resolve, reject) =>
        execFile(
          process.execPath,
          ['-e', script],
          { env: { ...process.env, WS_NATIVE_TRANSPORT: 'stream' }, timeout: 10000 },
          (err, stdout) => (err ? reject(err) : resolve(stdout))
        )
      );
      assert.strictEqual(output.trim(), 'stream');
    });
  });

  it("rejects an unknown transport option with a TypeError (ERR_INVALID_ARG_VALUE)", function () {
    assert.throws(() => new WebSocketServer({ noServer: true, transport: 'udp' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE'
    });
    assert.throws(() => new WebSocket('ws://127.0.0.1:1', { transport: 'udp' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE'
    });
  });

  it('serves an http.Server listening on a Unix-domain socket', async function () {
    // Windows has no Unix-domain socket path for Node to listen on (a path there names a pipe).
    if (process.platform === 'win32') this.skip();
    const socketPath = path.join(os.tmpdir(), `ws-native-${process.pid}-${Date.now()}.sock`);
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new WebSocketServer({ server }));
    echo(wss);
    await new Promise((resolve) => server.listen(socketPath, resolve));
    const connected = once(wss, 'connection');
    const client = cleanup.add(new WebSocket(`ws+unix://${socketPath}`));
    const [ws] = await connected;
    assert.strictEqual(ws.transport, expected);
    if (client.readyState !== WebSocket.OPEN) await once(client, 'open');
    assert.strictEqual(client.transport, expected);
    client.send('over a unix socket');
    const [data] = await once(client, 'message');
    assert.strictEqual(data.toString(), 'over a unix socket');
  });

  it('terminate() and a peer reset end the connection with 1006; no descriptor is left open', async function () {
    const { wss, port } = await httpSetup();
    const before = openFds();
    const { servers, clients } = await openConnections(wss, port, 10);
    const serverCloses = servers.map((ws) => once(ws, 'close'));
    const clientCloses = clients.map((c) => once(c, 'close'));
    for (let i = 0; i < 5; i++) servers[i].terminate();
    for (let i = 5; i < 10; i++) clients[i]._socket.resetAndDestroy();
    const codes = (await Promise.all(serverCloses)).map(([code]) => code);
    assert.deepStrictEqual(codes, Array(10).fill(1006));
    await Promise.all(clientCloses);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(openFds() <= before, `open descriptors: ${before} before, ${openFds()} after`);
  });

  it('serves more sockets ready at once than it takes per loop turn (300 echo together), in order', async function () {
    this.timeout(20000);
    const { wss, port } = await httpSetup();
    const { servers, clients } = await openConnections(wss, port, 300);
    assert.ok(servers.every((ws) => ws.transport === expected));
    // Every client sends three messages in the same tick, so all 300 sockets are readable
    // together; each must get its own three back, in order.
    const replies = clients.map(
      (c) =>
        new Promise((resolve) => {
          const got = [];
          c.on('message', (data) => {
            got.push(String(data));
            if (got.length === 3) resolve(got);
          });
        })
    );
    clients.forEach((c, i) => {
      for (let k = 0; k < 3; k++) c.send(`${i}:${k}`);
    });
    const all = await withTimeout(Promise.all(replies), 'every echo');
    all.forEach((got, i) => assert.deepStrictEqual(got, [`${i}:0`, `${i}:1`, `${i}:2`]));
    for (const c of clients) c.terminate();
  });

  it('payloads of a large read stay intact after later reads, also when paused midway', async function () {
    this.timeout(20000);
    // Large reads are parsed in the transport's shared read buffer; a message delivered from
    // one, or kept while paused, must not be overwritten by the next read of any socket.
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new WebSocketServer({ server }));
    const port = await listen(server);
    const { servers, clients } = await openConnections(wss, port, 2);
    // 100 B messages: a read holds more than the 1,024 events the engine reports per call, so
    // pausing also keeps part of a read unparsed.
    const COUNT = 3000;
    const text = (who, i) => `${who}:${i}:`.padEnd(100, String.fromCharCode(97 + (i % 26)));
    const kept = [[], []];
    const done = servers.map(
      (ws, k) =>
        new Promise((resolve) => {
          ws.pause();
          ws.on('message', (data) => {
            kept[k].push(data);
            if (kept[k].length % 500 === 0) {
              ws.pause();
              setTimeout(() => ws.resume(), 5);
            }
            if (kept[k].length === COUNT) resolve();
          });
        })
    );
    // Sent while the server reads nothing, so the kernel gathers far more than 64 KiB.
    clients.forEach((c, k) => {
      for (let i = 0; i < COUNT; i++) c.send(text(k, i));
    });
    await withTimeout(
      (async () => {
        while (clients.some((c) => c.bufferedAmount > 0)) {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })(),
      'the clients handing their messages to the kernel'
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const ws of servers) ws.resume();
    await withTimeout(Promise.all(done), `${COUNT} messages on each connection`);
    kept.forEach((list, k) => {
      list.forEach((data, i) => assert.strictEqual(data.toString(), text(k, i), `${k}:${i}`));
    });
    for (const c of clients) c.terminate();
  });

  it('4 worker threads each serve connections; terminating them closes every connection, no crash, no descriptor left', async function () {
    this.timeout(30000);
    // (The main thread's own epoll set and wakeup descriptors stay for good once made: made
    // first, so that only what the workers and connections leave is counted.)
    if (nativeOn) require('../lib/native-transport').ensureNativeTransport();
    const before = openFds();
    const workerSource = `
      const http = require('http');
      const { parentPort } = require('worker_threads');
      const { WebSocketServer } = require(${JSON.stringify(ROOT)});
      const server = http.createServer();
      const wss = new WebSocketServer({ server });
      wss.on('connection', (ws) => {
        parentPort.postMessage({ transport: ws.transport });
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
      server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
    `;
    for (let round = 0; round < 2; round++) {
      const workers = [];
      for (let i = 0; i < 4; i++) workers.push(new Worker(workerSource, { eval: true }));
      const transports = [];
      const ports = await Promise.all(
        workers.map(
          (w) =>
            new Promise((resolve, reject) => {
              w.on('error', reject);
              w.on('message', (m) => {
                if (m.port) resolve(m.port);
                if (m.transport) transports.push(m.transport);
              });
            })
        )
      );
      const clients = [];
      for (const port of ports) {
        for (let i = 0; i < 5; i++) {
          const c = new WebSocket(`ws://127.0.0.1:${port}`);
          c.on('error', () => {});
          clients.push(c);
        }
      }
      await Promise.all(clients.map((c) => once(c, 'open')));
      // Every connection echoes, then the workers end with their connections open.
      await Promise.all(
        clients.map(async (c, i) => {
          c.send(`round ${round} client ${i}`);
          const [data] = await once(c, 'message');
          assert.strictEqual(data.toString(), `round ${round} client ${i}`);
        })
      );
      // (A worker's report of its connection may come after that connection's echo.)
      for (let i = 0; i < 100 && transports.length < 20; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepStrictEqual(transports, Array(20).fill(expected));
      const closes = clients.map((c) => once(c, 'close', { timeout: 10000 }));
      const exits = await Promise.all(workers.map((w) => w.terminate()));
      assert.deepStrictEqual(exits, [1, 1, 1, 1]);
      const codes = (await Promise.all(closes)).map(([code]) => code);
      assert.deepStrictEqual(codes, Array(20).fill(1006));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(openFds() <= before, `open descriptors: ${before} before, ${openFds()} after`);
  });

  it('keeps the process alive while a connection is open, and lets it exit after', async function () {
    // The child exits by itself only once its one connection has closed.
    const script = `
      const http = require('http');
      const { WebSocketServer, WebSocket } = require(${JSON.stringify(ROOT)});
      const server = http.createServer();
      const wss = new WebSocketServer({ server, transport: 'native' });
      wss.on('connection', (ws) => {
        server.close();
        console.log('open ' + ws.transport);
        setTimeout(() => ws.send('late'), 300);
        ws.on('close', () => console.log('closed'));
      });
      server.listen(0, '127.0.0.1', () => {
        const c = new WebSocket('ws://127.0.0.1:' + server.address().port);
        c.on('message', (m) => { console.log('got ' + m); c.close(); });
      });
    `;
    const output = await new Promise((resolve, reject) =>
      execFile(process.execPath, ['-e', script], { timeout: 10000 }, (err, stdout) =>
        err ? reject(err) : resolve(stdout)
      )
    );
    assert.deepStrictEqual(output.trim().split('\n'), [`open ${expected}`, 'got late', 'closed']);
  });
});
