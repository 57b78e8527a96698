'use strict';

// A raw WebSocket client over `net` for tests that craft frames byte by byte, plus a small
// server fixture. The client does the opening handshake by hand, then sends whatever bytes
// a test builds with frame() and parses every frame the server sends into `frames`.

const crypto = require('crypto');
const http = require('http');
const net = require('net');
const { once } = require('events');

const { WebSocketServer } = require('./impl');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

function toBuffer(data) {
  if (data === undefined) return Buffer.alloc(0);
  if (typeof data === 'string') return Buffer.from(data);
  if (Buffer.isBuffer(data)) return data;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Builds one frame as a client would send it (masked unless mask is false).
 * `length` overrides the announced payload length (number or BigInt) without changing the
 * payload, to announce more than is sent.
 */
function frame({
  fin = true,
  rsv1 = false,
  rsv2 = false,
  rsv3 = false,
  opcode,
  payload,
  mask = true,
  maskKey,
  lengthEncoding = 'auto',
  length
} = {}) {
  if (typeof opcode !== 'number') throw new TypeError('frame(): opcode is required');
  const data = toBuffer(payload);
  const announced = BigInt(length === undefined ? data.length : length);
  let enc = lengthEncoding;
  if (enc === 'auto') enc = announced < 126n ? 7 : announced < 65536n ? 16 : 64;
  if (enc === 7 && announced > 125n) throw new RangeError('frame(): length needs 16 or 64 bits');
  if (enc === 16 && announced > 0xffffn) throw new RangeError('frame(): length needs 64 bits');

  const extra = enc === 7 ? 0 : enc === 16 ? 2 : 8;
  const head = Buffer.alloc(2 + extra + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | (opcode & 0x0f);
  head[1] = (mask ? 0x80 : 0) | (enc === 7 ? Number(announced) : enc === 16 ? 126 : 127);
  if (enc === 16) head.writeUInt16BE(Number(announced), 2);
  if (enc === 64) head.writeBigUInt64BE(announced, 2);
  if (!mask) return Buffer.concat([head, data]);

  const key = maskKey ? toBuffer(maskKey) : crypto.randomBytes(4);
  key.copy(head, 2 + extra);
  const body = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) body[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, body]);
}

/** The payload of a close frame: 2-byte code then reason (string or bytes). */
function closePayload(code, reason) {
  if (code === undefined) return Buffer.alloc(0);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code);
  return Buffer.concat([head, toBuffer(reason)]);
}

/** A masked close frame. */
function closeFrame(code, reason, options) {
  return frame({ ...options, opcode: OP.CLOSE, payload: closePayload(code, reason) });
}

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
        this._header = this._parseHeader();
        if (this._header === null) return;
      }
      const h = this._header;
      if (this._buffered < h.length) return;
      const payload = this._consume(h.length);
      if (h.maskKey) for (let i = 0; i < payload.length; i++) payload[i] ^= h.maskKey[i & 3];
      this._header = null;
      const f = {
        fin: h.fin,
        rsv1: h.rsv1,
        rsv2: h.rsv2,
        rsv3: h.rsv3,
        opcode: h.opcode,
        masked: h.maskKey !== null,
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

  _parseHeader() {
    if (this._buffered < 2) return null;
    const first = this._peek(2);
    const len7 = first[1] & 0x7f;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const masked = (first[1] & 0x80) !== 0;
    const size = 2 + extra + (masked ? 4 : 0);
    if (this._buffered < size) return null;
    const head = this._consume(size);
    const length =
      extra === 0 ? len7 : extra === 2 ? head.readUInt16BE(2) : Number(head.readBigUInt64BE(2));
    return {
      fin: (head[0] & 0x80) !== 0,
      rsv1: (head[0] & 0x40) !== 0,
      rsv2: (head[0] & 0x20) !== 0,
      rsv3: (head[0] & 0x10) !== 0,
      opcode: head[0] & 0x0f,
      length,
      maskKey: masked ? Buffer.from(head.subarray(2 + extra)) : null
    };
  }

  _peek(n) {
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
    const key = crypto.randomBytes(16).toString('base64');
    const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
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

module.exports = { OP, frame, closePayload, closeFrame, connect, serve, open, cleanup, RawClient };
