'use strict';

// The raw-socket handshake path (wss.handleSocket()): reads the HTTP upgrade request from a
// socket that no http.Server has parsed (a net.Server's connection), parses its head in C
// (binding.parseUpgradeRequest, src/codec/http_request.c), and hands the socket to
// handleUpgrade() as an http.Server's 'upgrade' event would.

const http = require('http');

const binding = require('./binding');

/** Node's default for http.Server's maxHeaderSize (--max-http-header-size). */
const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
/** Node's default for http.Server's headersTimeout is 60 s; a handshake needs far less. */
const DEFAULT_HEADERS_TIMEOUT = 10 * 1000;

// The parser's fixed array (HTTP_REQUEST_MAX_HEADERS); a browser's handshake has about 15.
const MAX_HEADERS = 100;
// setTimeout() takes at most 2^31 - 1 ms; a longer headersTimeout means none.
const MAX_TIMER = 2 ** 31 - 1;
// After an error response, how long the socket goes on reading (and dropping) what the peer
// still sends before it is destroyed: closing a socket with unread input makes the kernel
// send a reset, and the peer could lose the response to it.
const LINGER_TIMEOUT = 1000;

const LF = 0x0a;

/**
 * Reads an upgrade request from `socket`, then calls server.handleUpgrade(req, socket, head,
 * cb) with an http.IncomingMessage made from it. A malformed request is answered 400 (431 when
 * the head is over `maxHeaderSize` bytes or has over 100 header fields, 505 for an HTTP
 * version other than 1.x), a head not complete within `headersTimeout` ms 408, and the socket
 * is closed; handleUpgrade answers a well-formed request that is not a valid handshake.
 *
 * @param {import('./websocket-server')} server
 * @param {import('net').Socket} socket
 * @param {(ws: import('./websocket'), req: http.IncomingMessage) => void} cb
 */
function handleSocket(server, socket, cb) {
  if (socket.destroyed || !socket.readable) {
    socket.destroy();
    return;
  }
  const { maxHeaderSize, headersTimeout } = server.options;
  let chunks = [];
  let received = 0;
  let timer = null;

  function cleanup() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('error', onError);
    socket.removeListener('close', cleanup);
  }

  function onData(chunk) {
    chunks.push(chunk);
    received += chunk.length;
    // A head ends with a LF, so between the first chunk (which shows a peer that does not
    // speak HTTP) and the size limit, only a chunk with a LF can change the answer. Parsing
    // just then costs a peer sending a byte at a time one parse per line (at most 102 of
    // them), not one per byte.
    if (chunks.length > 1 && chunk.indexOf(LF) === -1 && received <= maxHeaderSize) return;
    const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received);
    chunks = [data];

    const result = binding.parseUpgradeRequest(data, maxHeaderSize, MAX_HEADERS);
    if (result === null) return;
    cleanup();
    if (result.headLength === undefined) {
      refuse(socket, result.status, result.message);
      return;
    }
    // Removing the 'data' listener does not stop a flowing stream: pause it, and leave it as
    // Node's http server leaves an upgraded socket (readableFlowing null), so that the next
    // 'data' listener, the connection's transport, starts the flow again.
    socket.pause();
    socket.readableFlowing = null;
    const head = data.subarray(result.headLength);
    server.handleUpgrade(createRequest(socket, result), socket, head, cb);
  }

  function onEnd() {
    // The peer stopped sending before the end of the head. With allowHalfOpen off (net's
    // default), the socket has already ended its side too, so no answer can be written.
    cleanup();
    socket.destroy();
  }

  function onError() {
    cleanup();
    socket.destroy();
  }

  function onTimeout() {
    timer = null;
    cleanup();
    refuse(socket, 408, 'Timed out waiting for the request headers');
  }

  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
  socket.on('close', cleanup);
  if (headersTimeout > 0 && headersTimeout <= MAX_TIMER) {
    timer = setTimeout(onTimeout, headersTimeout);
    timer.unref();
  }
  // A net.Server with pauseOnConnect, or an application that paused the socket, would
  // otherwise never deliver the request.
  socket.resume();
}

/**
 * An http.IncomingMessage for the parsed head, as an http.Server would make it for an
 * 'upgrade' event; it has no body.
 */
function createRequest(socket, parsed) {
  const req = new http.IncomingMessage(socket);
  req.method = parsed.method;
  req.url = parsed.url;
  req.httpVersion = parsed.httpVersion;
  req.httpVersionMajor = parsed.httpVersionMajor;
  req.httpVersionMinor = parsed.httpVersionMinor;
  req.headers = parsed.headers;
  req.rawHeaders = parsed.rawHeaders;
  req.upgrade = true;
  req.complete = true;
  req.push(null);
  return req;
}

/** Answers with an HTTP error status and closes the socket. */
function refuse(socket, status, message) {
  socket.on('error', destroySocket);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain\r\n' +
      `Content-Length: ${Buffer.byteLength(message)}\r\n` +
      '\r\n' +
      message
  );
  // Drop whatever else arrives until the peer closes its side (which, with allowHalfOpen
  // off, closes the socket) or the linger time is over.
  socket.resume();
  const linger = setTimeout(destroySocket.bind(socket), LINGER_TIMEOUT);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}

function destroySocket() {
  this.destroy();
}

module.exports = { handleSocket, createRequest, DEFAULT_MAX_HEADER_SIZE, DEFAULT_HEADERS_TIMEOUT };
