'use strict';

// Helpers for tests that speak raw HTTP/WebSocket over net sockets on 127.0.0.1.
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

/** A masked client-to-server frame (FIN set unless fin === false). */
function maskedFrame(opcode, payload, { fin = true, mask = crypto.randomBytes(4) } = {}) {
  payload = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.alloc(2);
    header[1] = 0x80 | len;
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 0x80 | 127;
    header.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    header.writeUInt32BE(len >>> 0, 6);
  }
  header[0] = (fin ? 0x80 : 0) | opcode;
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([header, mask, masked]);
}

/**
 * Parses one frame at the start of `buf`: a server's (unmasked; payload is a view into buf) or
 * a client's (masked; payload is an unmasked copy and maskKey the key). Returns null when
 * incomplete, else { fin, opcode, masked, maskKey, payload, length } (length = bytes consumed).
 */
function parseFrame(buf) {
  if (buf.length < 2) return null;
  const fin = (buf[0] & 0x80) !== 0;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = buf.readUInt32BE(2) * 2 ** 32 + buf.readUInt32BE(6);
    off = 10;
  }
  let maskKey = null;
  if (masked) {
    if (buf.length < off + 4) return null;
    maskKey = Buffer.from(buf.subarray(off, off + 4));
    off += 4;
  }
  if (buf.length < off + len) return null;
  let payload = buf.subarray(off, off + len);
  if (masked) {
    payload = Buffer.from(payload);
    for (let i = 0; i < len; i++) payload[i] ^= maskKey[i & 3];
  }
  return { fin, opcode, masked, maskKey, payload, length: off + len };
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
  GUID,
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
  maskedFrame,
  parseFrame,
  readFrame,
  wssPort,
  closeWss,
  openWsClient,
  nextMessage
};
