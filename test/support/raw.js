'use strict';

// A raw WebSocket client over `net` for tests that craft frames byte by byte, plus a small
// server fixture. The client does the opening handshake by hand, then sends whatever bytes
// a test builds (with net-helpers' frame()) and parses every frame the server sends into
// `frames`.

const http = require('http');
const net = require('net');
const { once } = require('events');

const { WebSocketServer } = require('./impl');
const { OP, acceptKey, closeFrame, mask, parseHeader, randomKey } = require('./net-helpers');


class RawClient {
  constructor(socket) {
    this.socket = socket;
    /** Every frame the server sent, in order: { fin, rsv1, rsv2, rsv3, opcode, masked, payload } */
    this.frames = [];
    this.closed = false; // the TCP connection is closed
    this.remoteEnded = false; // the server sent a FIN
    this.error = null;
    this._read = 0; // index in frames of the next frame nextFrame() returns
    this._waiters = [];
    this._chunks = [];
    this._buffered = 0;
    this._header = null; // parsed header of the frame whose payload is awaited

    socket.setNoDelay(true); // tests write many small frames; do not wait on Nagle
    this._closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        for (const w of this._waiters.splice(0)) {
          w.reject(new Error('connection closed before the server sent another frame'));
        }
        resolve();
      });
    });
    socket.on('end', () => {
      this.remoteEnded = true;
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('data', (chunk) => this._onData(chunk));
  }

  /** Writes raw bytes; resolves once they are handed to the kernel. */
  send(bytes) {
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Sends a masked close frame with the given code and reason (no payload if code is undefined). */
  sendClose(code, reason) {
    return this.send(closeFrame(code, reason));
  }

  /** Resolves with the next frame the server sent that this method has not yet returned. */
  nextFrame() {
    if (this._read < this.frames.length) return Promise.resolve(this.frames[this._read++]);
    if (this.closed) {
      return Promise.reject(new Error('connection closed before the server sent another frame'));
    }
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  /** Resolves when the TCP connection is closed. */
  awaitClose() {
    return this._closedPromise;
  }

  /** Half-closes: sends a TCP FIN without a close frame. */
  end() {
    this.socket.end();
  }

  destroy() {
    this.socket.destroy();
  }

  _onData(chunk) {
    this._chunks.push(chunk);
    this._buffered += chunk.length;

    for (;;) {
      if (this._header === null) {
        // (A header is at most 14 bytes.)
        this._header = parseHeader(this._peek(Math.min(14, this._buffered)));
        if (this._header === null) return;
        this._consume(this._header.headerLength);
      }
      const h = this._header;
      if (this._buffered < h.payloadLength) return;
      let payload = this._consume(h.payloadLength);
      if (h.masked) payload = mask(payload, h.maskKey);
      this._header = null;
      const f = {
        fin: h.fin,
        rsv1: h.rsv1,
        rsv2: h.rsv2,
        rsv3: h.rsv3,
        opcode: h.opcode,
        masked: h.masked,
        payload
      };
      if (f.opcode === OP.CLOSE && payload.length >= 2) {
        f.code = payload.readUInt16BE(0);
        f.reason = payload.subarray(2).toString();
      }
      this.frames.push(f);
      if (this._waiters.length) {
        this._read++;
        this._waiters.shift().resolve(f);
      }
    }
  }

  /** At least the first n buffered bytes (n <= buffered), without removing them. */
  _peek(n) {
    if (n === 0) return Buffer.alloc(0);
    if (this._chunks[0].length >= n) return this._chunks[0];
    const out = Buffer.alloc(n);
    for (let i = 0, off = 0; off < n; i++) off += this._chunks[i].copy(out, off);
    return out;
  }

  /** Removes n bytes from the front of the buffered chunks; returns them as one own Buffer. */
  _consume(n) {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this._chunks[0];
      const take = Math.min(c.length, n - off);
      c.copy(out, off, 0, take);
      off += take;
      if (take === c.length) this._chunks.shift();
      else this._chunks[0] = c.subarray(take);
    }
    this._buffered -= n;
    return out;
  }
}

/**
 * Opens a TCP connection and does the opening handshake by hand. Resolves with a RawClient
 * once the 101 with the right Sec-WebSocket-Accept has arrived.
 */
function connect(port, path = '/', { headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const key = randomKey();
    const accept = acceptKey(key);
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);

    const fail = (err) => {
      socket.destroy();
      reject(err);
    };
    const onData = (chunk) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.removeListener('data', onData);
      socket.removeListener('error', fail);
      socket.removeListener('close', onClose);

      const lines = received.subarray(0, end).toString('latin1').split('\r\n');
      const fields = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        fields[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      if (!/^HTTP\/1\.1 101 /.test(lines[0])) return fail(new Error(`handshake: got ${lines[0]}`));
      if (fields['sec-websocket-accept'] !== accept) {
        return fail(new Error('handshake: wrong Sec-WebSocket-Accept'));
      }

      const client = new RawClient(socket);
      client.response = { status: lines[0], headers: fields };
      const rest = received.subarray(end + 4);
      if (rest.length) client._onData(rest);
      resolve(client);
    };
    const onClose = () => reject(new Error('handshake: connection closed'));

    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.on('connect', () => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(
        `GET ${path} HTTP/1.1\r\n` +
          `Host: 127.0.0.1:${port}\r\n` +
          'Upgrade: websocket\r\n' +
          'Connection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${key}\r\n` +
          'Sec-WebSocket-Version: 13\r\n' +
          extra +
          '\r\n'
      );
    });
  });
}

// --- server fixture ---------------------------------------------------------------------

const live = new Set(); // servers and clients to tear down in cleanup()

/**
 * A WebSocketServer attached to an http.Server on 127.0.0.1, port 0.
 * nextConnection() resolves with the next server-side connection.
 */
async function serve(options = {}) {
  const httpServer = http.createServer();
  const wss = new WebSocketServer({ ...options, server: httpServer });
  const ready = [];
  const waiting = [];
  wss.on('connection', (ws) => (waiting.length ? waiting.shift()(ws) : ready.push(ws)));
  httpServer.listen(0, '127.0.0.1');
  await once(httpServer, 'listening');

  const server = {
    wss,
    http: httpServer,
    port: httpServer.address().port,
    nextConnection() {
      return ready.length ? Promise.resolve(ready.shift()) : new Promise((r) => waiting.push(r));
    },
    async close() {
      live.delete(server);
      for (const ws of wss.clients) ws.terminate();
      await Promise.all([
        new Promise((resolve) => wss.close(() => resolve())),
        new Promise((resolve) => httpServer.close(() => resolve()))
      ]);
    }
  };
  live.add(server);
  return server;
}

/** A server with the given options, one raw client connected to it, and its server-side ws. */
async function open(options) {
  const server = await serve(options);
  const [client, ws] = await Promise.all([connect(server.port), server.nextConnection()]);
  live.add(client);
  return { server, client, ws };
}

/** Destroys every client and closes every server made by open()/serve(); call in afterEach. */
async function cleanup() {
  const all = [...live];
  live.clear();
  for (const item of all) if (item instanceof RawClient) item.destroy();
  await Promise.all(all.filter((item) => !(item instanceof RawClient)).map((s) => s.close()));
}

module.exports = { connect, serve, open, cleanup, RawClient };
