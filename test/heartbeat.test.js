'use strict';

// The built-in heartbeat, a ws-native extension (server option `heartbeat`): connections silent
// for `interval` ms are pinged, and terminated if still silent `timeout` ms after the ping.
// Any bytes from the peer count as alive. The only timing assertion is the upper bound on when
// a silent peer is dropped, which is the feature itself; its slack is generous.

const assert = require('assert');
const http = require('http');
const path = require('path');
const { spawn } = require('child_process');
const WsClient = require('ws').WebSocket;

const Native = require('..');
const { nativeOnly } = require('./support/impl');
const { connect } = require('./support/raw');
const { OP, Cleanup, frame, listen, once, withTimeout } = require('./support/net-helpers');

const clients = new Cleanup();
const SLACK = 500;

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How late, at most, a silent connection is closed after the last byte it sent. */
function bound({ interval, timeout }) {
  const tick = Math.max(1, Math.floor(Math.min(interval, timeout) / 4));
  return interval + timeout + 2 * tick + SLACK;
}

/**
 * A WebSocketServer (options) on an http.Server on 127.0.0.1, port 0, closed after the test
 * (clientTracking: false included). nextConnection() resolves with the next connection.
 */
async function serve(options) {
  const httpServer = http.createServer();
  const wss = new Native.WebSocketServer({ ...options, server: httpServer });
  const ready = [];
  const waiting = [];
  wss.on('connection', (ws) => (waiting.length ? waiting.shift()(ws) : ready.push(ws)));
  clients.add(() => new Promise((resolve) => wss.close(() => resolve())));
  clients.add(httpServer); // closed first: destroys every connection it accepted
  const port = await listen(httpServer);
  return {
    wss,
    port,
    nextConnection: () =>
      ready.length ? Promise.resolve(ready.shift()) : new Promise((resolve) => waiting.push(resolve))
  };
}

/** A server with a heartbeat and one raw client that never answers anything. */
async function silentPeer(options) {
  const server = await serve(options);
  const started = Date.now(); // before the handshake: its last byte is sent after this
  const [client, ws] = await Promise.all([connect(server.port), server.nextConnection()]);
  clients.add(client.socket);
  return { server, client, ws, started };
}

/** Resolves with { code, at } when ws emits 'close'. */
function closeOf(ws, timeout) {
  return once(ws, 'close', { timeout }).then(([code]) => ({ code, at: Date.now() }));
}

nativeOnly.describe('heartbeat', function () {
  afterEach(() => clients.run());

  for (const clientTracking of [true, false]) {
    it(`a peer that never answers is pinged, then terminated (1006) in time (clientTracking: ${clientTracking})`, async function () {
      const heartbeat = { interval: 400, timeout: 200 };
      const { client, ws, started } = await silentPeer({ heartbeat, clientTracking });
      const closed = closeOf(ws, 10000);

      const { code, at } = await closed;
      assert.strictEqual(code, 1006);
      const late = at - started;
      assert.ok(late <= bound(heartbeat), `closed ${late} ms after the last byte; bound ${bound(heartbeat)} ms`);
      await withTimeout(client.awaitClose(), 'the TCP connection to close');
      const pings = client.frames.filter((f) => f.opcode === OP.PING);
      assert.strictEqual(pings.length, 1, 'pinged once before being terminated');
      assert.ok(!client.frames.some((f) => f.opcode === OP.CLOSE), 'terminated, no closing handshake');
    });
  }

  it('the bound counts from the last byte: a peer that answers one ping, then falls silent', async function () {
    const heartbeat = { interval: 300, timeout: 200 };
    const { client, ws } = await silentPeer({ heartbeat });
    const closed = closeOf(ws, 10000);

    const ping = await withTimeout(client.nextFrame(), 'the first ping', 5000);
    assert.strictEqual(ping.opcode, OP.PING);
    await client.send(frame({ opcode: OP.PONG, payload: ping.payload }));
    const lastByte = Date.now();

    const { code, at } = await closed;
    assert.strictEqual(code, 1006);
    assert.ok(at - lastByte <= bound(heartbeat), `closed ${at - lastByte} ms after the pong; bound ${bound(heartbeat)} ms`);
    assert.strictEqual(
      client.frames.filter((f) => f.opcode === OP.PING).length,
      2,
      'answered the first ping, terminated after the second'
    );
  });

  it('a ws-native client (autoPong) stays connected across several intervals', async function () {
    const heartbeat = { interval: 100, timeout: 100 };
    const server = await serve({ heartbeat });
    const client = clients.add(new Native.WebSocket(`ws://127.0.0.1:${server.port}`));
    const [ws] = await Promise.all([server.nextConnection(), once(client, 'open', { rejectOnError: true })]);
    let pings = 0;
    let pongs = 0;
    client.on('ping', () => pings++);
    ws.on('pong', () => pongs++);
    let closed = false;
    ws.on('close', () => (closed = true));

    await delay(10 * (heartbeat.interval + heartbeat.timeout));
    assert.strictEqual(closed, false, 'still connected');
    assert.strictEqual(ws.readyState, ws.OPEN);
    assert.ok(pings >= 3, `pinged repeatedly (${pings} pings)`);
    assert.ok(pongs >= 3, `answered (${pongs} pongs)`);

    // Still a working connection.
    ws.on('message', (data) => ws.send(data));
    client.send('still here');
    const [data] = await once(client, 'message');
    assert.strictEqual(data.toString(), 'still here');
  });

  it('any data counts as alive: a client with autoPong off stays while it keeps sending, and is dropped when it stops', async function () {
    const heartbeat = { interval: 200, timeout: 100 };
    const server = await serve({ heartbeat });
    const client = clients.add(new WsClient(`ws://127.0.0.1:${server.port}`, { autoPong: false }));
    const [ws] = await Promise.all([server.nextConnection(), once(client, 'open', { rejectOnError: true })]);
    let closed = false;
    ws.on('close', () => (closed = true));

    const sender = setInterval(() => client.send('tick'), 30);
    try {
      await delay(10 * (heartbeat.interval + heartbeat.timeout));
    } finally {
      clearInterval(sender);
    }
    const lastByte = Date.now();
    assert.strictEqual(closed, false, 'still connected while it sends');
    assert.strictEqual(ws.readyState, ws.OPEN);

    // It does not answer pings, so once it stops sending it is dropped.
    const [code] = await once(ws, 'close', { timeout: 10000 });
    assert.strictEqual(code, 1006);
    assert.ok(Date.now() - lastByte <= bound(heartbeat), 'dropped in time once silent');
  });

  it('invalid heartbeat options throw RangeError ERR_OUT_OF_RANGE', function () {
    const invalid = [
      0,
      -1,
      NaN,
      Infinity,
      { interval: 0 },
      { interval: -100 },
      { timeout: 0 },
      { timeout: -1 },
      { interval: NaN },
      { timeout: Infinity },
      { interval: '1000' },
      { timeout: null }
    ];
    for (const heartbeat of invalid) {
      assert.throws(
        () => new Native.WebSocketServer({ noServer: true, heartbeat }),
        (err) => err instanceof RangeError && err.code === 'ERR_OUT_OF_RANGE',
        `heartbeat: ${JSON.stringify(heartbeat)} (${typeof heartbeat})`
      );
    }
  });

  it('heartbeat values of the wrong type are refused (TypeError ERR_INVALID_ARG_TYPE), not read as the defaults', function () {
    for (const heartbeat of ['yes', '1000', 'false', [], [1000], () => {}]) {
      assert.throws(
        () => {
          const wss = new Native.WebSocketServer({ noServer: true, heartbeat });
          wss.close();
        },
        (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE',
        `heartbeat: ${typeof heartbeat} ${JSON.stringify(heartbeat)}`
      );
    }
  });

  it('a huge interval is refused or capped, never turned into a 1 ms timer by setInterval overflow', async function () {
    const warnings = [];
    const onWarning = (warning) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      let wss;
      try {
        wss = new Native.WebSocketServer({ noServer: true, heartbeat: { interval: 2 ** 33, timeout: 2 ** 33 } });
      } catch (err) {
        assert.ok(err instanceof RangeError && err.code === 'ERR_OUT_OF_RANGE', `refused with ${err}`);
        return;
      }
      wss.close();
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepStrictEqual(warnings, [], 'no TimeoutOverflowWarning (Node then fires every 1 ms)');
    } finally {
      process.removeListener('warning', onWarning);
    }
  });

  it('valid heartbeat options are accepted', function () {
    for (const heartbeat of [undefined, false, null, true, 1000, {}, { interval: 1000 }, { timeout: 50 }, { interval: 1.5, timeout: 2 }]) {
      const wss = new Native.WebSocketServer({ noServer: true, heartbeat });
      wss.close();
    }
  });

  it('wss.close() stops the heartbeat: connections that remain are no longer pinged', async function () {
    const heartbeat = { interval: 100, timeout: 100 };
    const { server, client, ws } = await silentPeer({ heartbeat });
    server.wss.close(); // in `server` mode, open connections stay (as in ws 8)
    let closed = false;
    ws.on('close', () => (closed = true));

    await delay(10 * (heartbeat.interval + heartbeat.timeout));
    assert.deepStrictEqual(
      client.frames.map((f) => f.opcode),
      [],
      'no ping after close()'
    );
    assert.strictEqual(closed, false, 'not terminated after close()');
  });

  it('a process with a heartbeat server exits once the server and its connections are closed', async function () {
    const script = `
      const http = require('http');
      const { WebSocketServer, WebSocket } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const server = http.createServer();
      const wss = new WebSocketServer({ server, heartbeat: { interval: 50, timeout: 50 } });
      server.listen(0, '127.0.0.1', () => {
        const ws = new WebSocket('ws://127.0.0.1:' + server.address().port);
        ws.once('ping', () => {
          ws.close();
          ws.on('close', () => { wss.close(); server.close(() => console.log('closed')); });
        });
      });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    try {
      const [code] = await once(child, 'exit', { timeout: 10000 });
      assert.strictEqual(code, 0, output);
      assert.strictEqual(output.trim(), 'closed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
