'use strict';

// createWebSocketStream(): one WebSocket as a stream.Duplex. Messages become readable chunks
// and written chunks become messages; a write is acknowledged as soon as the connection takes
// it below its high-water mark, so stream backpressure follows send() and 'drain'.

const { Duplex } = require('stream');

const { CONNECTING, OPEN, CLOSED, READY_STATES } = require('./constants');

/**
 * Wraps a WebSocket (client or server side, open or still connecting) in a Duplex stream.
 *
 * Each message is one readable chunk: a Buffer, or a string for a text message when the
 * readable side is in object mode (`readableObjectMode`; `objectMode` is always false, as in
 * ws). Each written chunk is sent as one message; a Buffer is sent as a
 * binary message. Writes made before the connection opens are sent once it opens.
 *
 * Ending the writable side closes the WebSocket with the closing handshake (no status code,
 * so the peer sees 1005); destroying the stream terminates it. The stream emits 'close' once
 * the WebSocket has closed. An error on the WebSocket destroys the stream with that error.
 *
 * @param {import('./websocket')} ws the WebSocket to wrap
 * @param {import('stream').DuplexOptions} [options] options for the Duplex constructor;
 *   `autoDestroy`, `emitClose` and `writableObjectMode` are always false
 * @returns {Duplex}
 * @public
 */
function createWebSocketStream(ws, options) {
  const readableObjectMode = !!(options && options.readableObjectMode);
  const duplex = new Duplex({
    ...options,
    autoDestroy: false,
    emitClose: false,
    objectMode: false,
    readableObjectMode,
    writableObjectMode: false
  });

  // At most one of each is outstanding: Writable calls _write()/_final() one at a time.
  let waitingForOpen = null; // { run, callback }: a write or the end, made while connecting
  let waitingForDrain = null; // the callback of a write that send() took above the mark
  let waitingForClose = null; // the callback of _final() after ws.close()
  let destroyCallback = null; // the callback of _destroy(), called once the WebSocket closed
  let destroyError = null; // the error _destroy() was given, reported then
  // An error the WebSocket emits while the destroy waits for its close is reported at once
  // instead (as ws's stream does): an inflate failure found in data read just before.
  let destroyReported = false;
  // An error on the WebSocket already started its closing handshake (a close frame with the
  // error's status): terminating it as well could cut that frame off.
  let terminateOnDestroy = true;

  /** Destroys the stream with err, then reports err to the pending Writable callback. */
  function fail(callback, err) {
    duplex.destroy(err);
    callback(err);
  }

  ws.on('message', function onMessage(data, isBinary) {
    if (duplex.destroyed) return;
    if (!isBinary && readableObjectMode) data = data.toString();
    if (!duplex.push(data)) ws.pause();
  });

  ws.on('open', function onOpen() {
    const waiting = waitingForOpen;
    waitingForOpen = null;
    if (waiting !== null) waiting.run();
  });

  ws.on('drain', function onDrain() {
    const callback = waitingForDrain;
    waitingForDrain = null;
    if (callback !== null) callback();
  });

  ws.on('error', function onError(err) {
    if (duplex.destroyed) {
      if (destroyCallback !== null && !destroyReported) {
        destroyReported = true;
        destroyCallback(err);
      }
      return;
    }
    terminateOnDestroy = false;
    duplex.destroy(err);
  });

  ws.on('close', function onClose(code) {
    if (waitingForOpen !== null) {
      const { callback } = waitingForOpen;
      waitingForOpen = null;
      fail(callback, new Error('WebSocket was closed before the connection was established'));
    }
    if (waitingForDrain !== null) {
      const callback = waitingForDrain;
      waitingForDrain = null;
      fail(callback, notOpenError(ws));
    }
    if (waitingForClose !== null) {
      const callback = waitingForClose;
      waitingForClose = null;
      if (code === 1006) {
        fail(callback, new Error('WebSocket closed before the closing handshake completed'));
      } else {
        callback();
      }
    }
    if (destroyCallback !== null) {
      const callback = destroyCallback;
      destroyCallback = null;
      if (!destroyReported) callback(destroyError);
      process.nextTick(emitClose, duplex);
    } else if (!duplex.destroyed) {
      duplex.push(null);
    }
  });

  duplex._read = function () {
    if (ws.isPaused) ws.resume();
  };

  duplex._write = function (chunk, encoding, callback) {
    if (ws.readyState === CONNECTING) {
      waitingForOpen = { run: () => duplex._write(chunk, encoding, callback), callback };
      return;
    }
    if (ws.readyState !== OPEN) {
      fail(callback, notOpenError(ws));
      return;
    }
    if (ws.send(chunk)) callback();
    else waitingForDrain = callback;
  };

  duplex._final = function (callback) {
    if (ws.readyState === CONNECTING) {
      waitingForOpen = { run: () => duplex._final(callback), callback };
      return;
    }
    if (ws.readyState === CLOSED) {
      callback();
      return;
    }
    waitingForClose = callback;
    ws.close();
  };

  duplex._destroy = function (err, callback) {
    if (ws.readyState === CLOSED) {
      callback(err);
      process.nextTick(emitClose, duplex);
      return;
    }
    destroyCallback = callback;
    destroyError = err;
    if (terminateOnDestroy) ws.terminate();
  };

  duplex.on('end', destroyWhenDone);
  duplex.on('finish', destroyWhenDone);
  return duplex;
}

/** Both sides are done: release the stream (the WebSocket has closed or is closing). */
function destroyWhenDone() {
  if (!this.destroyed && this.readableEnded && this.writableFinished) this.destroy();
}

function emitClose(stream) {
  stream.emit('close');
}

function notOpenError(ws) {
  const state = ws.readyState;
  return new Error(`WebSocket is not open: readyState ${state} (${READY_STATES[state]})`);
}

module.exports = createWebSocketStream;
