'use strict';

// Helpers for tests that speak raw HTTP/WebSocket over net sockets on 127.0.0.1, and the frame
// toolkit (frame(), parseFrame()...) every test that crafts or reads frames uses.
// Every waiting helper has a timeout that rejects (so a missing event fails the test with a
// clear message instead of hanging until mocha's global timeout); no test asserts on time.

const crypto = require('crypto');
const http = require('http');
const net = require('net');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const DEFAULT_TIMEOUT = 5000;

/** Sec-WebSocket-Accept for a key, computed independently of the implementation. */
function acceptKey(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

/** A fresh random, valid Sec-WebSocket-Key. */
function randomKey() {
  return crypto.randomBytes(16).toString('base64');
}

/**
 * Resolves with the arguments array of the next `event` on `emitter`; rejects on timeout
 * (or on 'error' when `event` is not 'error' and `rejectOnError` is true).
 */
function once(emitter, event, { timeout = DEFAULT_TIMEOUT, rejectOnError = false } = {}) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      cleanup();
      resolve(args);
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for '${event}'`));
    }, timeout);
    function cleanup() {
      clearTimeout(timer);
      emitter.removeListener(event, onEvent);
      if (rejectOnError && event !== 'error') emitter.removeListener('error', onError);
    }
    emitter.on(event, onEvent);
    if (rejectOnError && event !== 'error') emitter.on('error', onError);
  });
}

/** `promise`, or a rejection if it has not settled within `timeout` ms. */
function withTimeout(promise, what = 'a result', timeout = DEFAULT_TIMEOUT) {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeout);
    })
  ]).finally(() => clearTimeout(timer));
}

/** Resolves when `socket` has closed (immediately if it already has). */
function closed(socket, opts) {
  if (socket.destroyed && socket.closed) return Promise.resolve();
  return once(socket, 'close', opts).then(() => undefined);
}

const trackedSockets = new WeakMap();

/** Listens on 127.0.0.1:0 and resolves with the port. Tracks accepted sockets for closeServer. */
function listen(server) {
  if (!trackedSockets.has(server)) {
    const sockets = new Set();
    trackedSockets.set(server, sockets);
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve(server.address().port);
    });
  });
}

/** An http.Server on a free port; `handler` defaults to a 200 "ok" responder. */
async function createHttpServer(handler) {
  const server = http.createServer(
    handler ||
      ((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
        res.end('ok');
      })
  );
  const port = await listen(server);
  return { server, port };
}

/**
 * Closes an http(s).Server, destroying every connection it accepted (kept-alive HTTP ones and
 * upgraded ones alike) when it was started with listen().
 */
function closeServer(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    if (server.closeAllConnections) server.closeAllConnections();
    for (const socket of trackedSockets.get(server) || []) socket.destroy();
  });
}

/**
 * Builds the text of an upgrade request. `headers` overrides the defaults; a value of
 * `undefined`/`null` removes that header. Order: defaults first, then new ones.
 */
function upgradeRequest({ method = 'GET', path = '/', key = randomKey(), headers = {} } = {}) {
  const all = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13'
  };
  for (const name of Object.keys(headers)) {
    const existing = Object.keys(all).find((k) => k.toLowerCase() === name.toLowerCase());
    if (existing !== undefined) delete all[existing];
    if (headers[name] !== undefined && headers[name] !== null) all[name] = headers[name];
  }
  let text = `${method} ${path} HTTP/1.1\r\n`;
  for (const name of Object.keys(all)) text += `${name}: ${all[name]}\r\n`;
  return text + '\r\n';
}

/**
 * Parses the head of a raw HTTP response in `buf`. Returns null until the whole head arrived.
 * headers: lowercased name -> value (repeated headers joined with ', '), rawHeaders: [name, value]...
 */
function parseHead(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(lines[0]);
  if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
  const headers = {};
  const rawHeaders = [];
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    rawHeaders.push(name, value);
    const lc = name.toLowerCase();
    headers[lc] = lc in headers ? `${headers[lc]}, ${value}` : value;
  }
  return {
    statusLine: lines[0],
    status: Number(m[1]),
    statusText: m[2],
    headers,
    rawHeaders,
    rest: buf.subarray(end + 4)
  };
}

/**
 * Opens a net socket to 127.0.0.1:port, writes `requestText` (string or Buffer; may include
 * bytes after the request), and resolves with the raw response:
 *   { status, statusText, statusLine, headers, rawHeaders, body, socket }
 * For a 101 the promise resolves as soon as the head arrived; `body` is then whatever bytes
 * followed the head in the same reads (WebSocket frames) and the socket stays open.
 * For other statuses it waits for Content-Length bytes of body (or the close of the socket
 * when there is no Content-Length). `socket` is the client socket; the caller destroys it.
 */
function rawRequest(port, requestText, { timeout = DEFAULT_TIMEOUT } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let head = null;
    let done = false;
    const timer = setTimeout(() => {
      finish(new Error(`timed out waiting for the response (got ${JSON.stringify(buf.toString('latin1'))})`));
    }, timeout);

    function finish(err, value) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(value);
      }
    }

    function check(ended) {
      if (!head) {
        try {
          head = parseHead(buf);
        } catch (err) {
          return finish(err);
        }
        if (!head) {
          if (ended) finish(new Error(`connection closed before a full response head (got ${JSON.stringify(buf.toString('latin1'))})`));
          return;
        }
      }
      const body = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
      const result = { ...head, socket };
      delete result.rest;
      if (head.status === 101) {
        socket.pause();
        return finish(null, { ...result, body });
      }
      const len = head.headers['content-length'];
      if (len !== undefined) {
        if (body.length >= Number(len)) return finish(null, { ...result, body: body.toString() });
      } else if (/chunked/i.test(head.headers['transfer-encoding'] || '')) {
        const decoded = decodeChunked(body);
        if (decoded !== null) return finish(null, { ...result, body: decoded.toString() });
      }
      if (ended) finish(null, { ...result, body: body.toString() });
    }

    function onData(chunk) {
      buf = Buffer.concat([buf, chunk]);
      check(false);
    }
    function onEnd() {
      check(true);
    }

    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', (err) => finish(err));
    socket.write(requestText);
  });
}

/** Decodes a complete chunked body, or returns null if it is not complete yet. */
function decodeChunked(buf) {
  const parts = [];
  let off = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', off);
    if (eol === -1) return null;
    const size = parseInt(buf.subarray(off, eol).toString('latin1'), 16);
    if (size === 0) return buf.indexOf('\r\n', eol + 2) === -1 ? null : Buffer.concat(parts);
    if (buf.length < eol + 2 + size + 2) return null;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
}

/** Reads everything the peer sends until it closes the connection. */
function readAll(port, requestText, { timeout = DEFAULT_TIMEOUT } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out waiting for the peer to close (got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))})`));
    }, timeout);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(requestText);
  });
}

/**
 * GET `url` with node's http client: { status, headers, body } (body a string). Not fetch():
 * undici's connect fails under wine (connect UNKNOWN), where this suite also runs.
 */
function httpGet(url, { timeout = DEFAULT_TIMEOUT } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`timed out waiting for the response to GET ${url}`));
    }, timeout);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

// --- frames: the one toolkit that builds, masks and parses WebSocket frames in tests -------

const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

/** A payload as bytes: nothing is empty, a string is UTF-8, a view is used as it is. */
function bytesOf(data) {
  if (data === undefined) return Buffer.alloc(0);
  if (typeof data === 'string') return Buffer.from(data);
  if (Buffer.isBuffer(data)) return data;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** `data` XORed with the 4-byte `key`, in a new Buffer (masking and unmasking are the same). */
function mask(data, key) {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[i & 3];
  return out;
}

/**
 * Builds one frame as a client would send it (masked unless mask is false; with a random key
 * unless maskKey is given). `length` overrides the announced payload length (number or
 * BigInt) without changing the payload, to announce more than is sent.
 */
function frame({
  fin = true,
  rsv1 = false,
  rsv2 = false,
  rsv3 = false,
  opcode,
  payload,
  mask: masked = true,
  maskKey,
  lengthEncoding = 'auto',
  length
} = {}) {
  if (typeof opcode !== 'number') throw new TypeError('frame(): opcode is required');
  const data = bytesOf(payload);
  const announced = BigInt(length === undefined ? data.length : length);
  let enc = lengthEncoding;
  if (enc === 'auto') enc = announced < 126n ? 7 : announced < 65536n ? 16 : 64;
  if (enc === 7 && announced > 125n) throw new RangeError('frame(): length needs 16 or 64 bits');
  if (enc === 16 && announced > 0xffffn) throw new RangeError('frame(): length needs 64 bits');

  const extra = enc === 7 ? 0 : enc === 16 ? 2 : 8;
  const head = Buffer.alloc(2 + extra + (masked ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | (opcode & 0x0f);
  head[1] = (masked ? 0x80 : 0) | (enc === 7 ? Number(announced) : enc === 16 ? 126 : 127);
  if (enc === 16) head.writeUInt16BE(Number(announced), 2);
  if (enc === 64) head.writeBigUInt64BE(announced, 2);
  if (!masked) return Buffer.concat([head, data]);

  const key = maskKey ? bytesOf(maskKey) : crypto.randomBytes(4);
  key.copy(head, 2 + extra);
  return Buffer.concat([head, mask(data, key)]);
}

/** A masked client-to-server frame (FIN set unless fin === false; mask: the key). */
function maskedFrame(opcode, payload, { fin = true, mask: maskKey } = {}) {
  return frame({ opcode, payload, fin, maskKey });
}

/** The payload of a close frame: 2-byte code then reason (string or bytes). */
function closePayload(code, reason) {
  if (code === undefined) return Buffer.alloc(0);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code);
  return Buffer.concat([head, bytesOf(reason)]);
}

/** A masked close frame. */
function closeFrame(code, reason, options) {
  return frame({ ...options, opcode: OP.CLOSE, payload: closePayload(code, reason) });
}

/**
 * Parses the header of the frame at the start of `buf`. Returns null when incomplete, else
 * { fin, rsv1, rsv2, rsv3, opcode, masked, maskKey, payloadLength, headerLength }.
 */
function parseHeader(buf) {
  if (buf.length < 2) return null;
  const len7 = buf[1] & 0x7f;
  const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  const masked = (buf[1] & 0x80) !== 0;
  const headerLength = 2 + extra + (masked ? 4 : 0);
  if (buf.length < headerLength) return null;
  return {
    fin: (buf[0] & 0x80) !== 0,
    rsv1: (buf[0] & 0x40) !== 0,
    rsv2: (buf[0] & 0x20) !== 0,
    rsv3: (buf[0] & 0x10) !== 0,
    opcode: buf[0] & 0x0f,
    masked,
    maskKey: masked ? Buffer.from(buf.subarray(2 + extra, headerLength)) : null,
    payloadLength: extra === 0 ? len7 : extra === 2 ? buf.readUInt16BE(2) : Number(buf.readBigUInt64BE(2)),
    headerLength
  };
}

/**
 * Parses one frame at the start of `buf`: a server's (unmasked; payload is a view into buf) or
 * a client's (masked; payload is an unmasked copy and maskKey the key). Returns null when
 * incomplete, else { fin, opcode, masked, maskKey, payload, length } (length = bytes consumed).
 */
function parseFrame(buf) {
  const h = parseHeader(buf);
  if (h === null) return null;
  const end = h.headerLength + h.payloadLength;
  if (buf.length < end) return null;
  const payload = buf.subarray(h.headerLength, end);
  return {
    fin: h.fin,
    opcode: h.opcode,
    masked: h.masked,
    maskKey: h.maskKey,
    payload: h.masked ? mask(payload, h.maskKey) : payload,
    length: end
  };
}

/**
 * Resolves with the next complete frame read from `socket` (whose already-received bytes
 * are in `state.buf`, a Buffer kept across calls). Resumes the socket.
 */
function readFrame(socket, state, { timeout = DEFAULT_TIMEOUT } = {}) {
  return new Promise((resolve, reject) => {
    const tryParse = () => {
      const f = parseFrame(state.buf);
      if (f) {
        state.buf = state.buf.subarray(f.length);
        cleanup();
        resolve(f);
        return true;
      }
      return false;
    };
    const onData = (c) => {
      state.buf = Buffer.concat([state.buf, c]);
      tryParse();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('connection closed before a complete frame'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error('timed out waiting for a frame'));
    }, timeout);
    function cleanup() {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
    }
    socket.on('data', onData);
    socket.on('close', onClose);
    if (!tryParse()) socket.resume();
  });
}

/** Resolves with the port a WebSocketServer in port mode is listening on. */
async function wssPort(wss) {
  const addr = wss.address();
  if (addr && addr.port) return addr.port;
  await once(wss, 'listening');
  return wss.address().port;
}

/** Closes a WebSocketServer, terminating its clients first so that 'close' can fire. */
function closeWss(wss) {
  return new Promise((resolve) => {
    if (wss.clients) for (const c of wss.clients) c.terminate();
    // A second close() calls back with an Error ('The server is not running'); that is fine here.
    wss.close(() => resolve());
  });
}

/**
 * Opens a client of the `ws` package (used as the reference client until ws-native's client
 * exists) and resolves with it once open. Rejects on 'error'/'unexpected-response'.
 */
function openWsClient(url, options) {
  const WsClient = require('ws').WebSocket;
  const ws = new WsClient(url, options);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`timed out opening ${url}`));
    }, DEFAULT_TIMEOUT);
    const fail = (err) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.once('error', fail);
    ws.once('unexpected-response', (req, res) => fail(new Error(`unexpected response ${res.statusCode}`)));
    ws.once('open', () => {
      clearTimeout(timer);
      ws.removeListener('error', fail);
      resolve(ws);
    });
  });
}

/** Resolves with [data, isBinary] of the next 'message' on `ws`. */
function nextMessage(ws, opts) {
  return once(ws, 'message', { rejectOnError: true, ...opts });
}

/**
 * Collects what a test opened, and closes all of it in afterEach:
 *   const c = new Cleanup(); afterEach(() => c.run());
 *   c.add(server) / c.add(wss) / c.add(socketOrWebSocket) — returns its argument.
 */
class Cleanup {
  constructor() {
    this.items = [];
  }

  add(item) {
    this.items.push(item);
    return item;
  }

  async run() {
    const items = this.items.reverse();
    this.items = [];
    const errors = [];
    for (const item of items) {
      try {
        await withTimeout(closeItem(item), `cleanup of ${describeItem(item)}`);
      } catch (err) {
        errors.push(err);
      }
    }
    // Reported, not thrown: a throwing afterEach would make mocha skip the rest of the suite.
    for (const err of errors) console.error(`    cleanup: ${err.message}`);
  }
}

async function closeItem(item) {
  if (item instanceof net.Socket) {
    item.destroy();
  } else if (typeof item.terminate === 'function') {
    item.terminate(); // a WebSocket
  } else if (typeof item.handleUpgrade === 'function') {
    await closeWss(item);
  } else if (typeof item.close === 'function' && 'listening' in item) {
    await closeServer(item);
  } else if (typeof item === 'function') {
    await item();
  }
}

function describeItem(item) {
  if (typeof item === 'function') return 'a cleanup function';
  return (item && item.constructor && item.constructor.name) || typeof item;
}

module.exports = {
  Cleanup,
  DEFAULT_TIMEOUT,
  acceptKey,
  randomKey,
  once,
  withTimeout,
  closed,
  listen,
  createHttpServer,
  closeServer,
  upgradeRequest,
  parseHead,
  rawRequest,
  readAll,
  httpGet,
  OP,
  frame,
  maskedFrame,
  mask,
  closePayload,
  closeFrame,
  parseHeader,
  parseFrame,
  readFrame,
  wssPort,
  closeWss,
  openWsClient,
  nextMessage
};
