'use strict';

// The examples run as real processes, as a user would start them, and are driven through
// real sockets.

const assert = require('assert');
const { spawn } = require('child_process');
const net = require('net');
const path = require('path');
const WebSocket = require('ws'); // an independent client

const examples = path.join(__dirname, '..', 'examples');

/** Starts an example and resolves with { child, url } once it prints its listening line. */
function start(file, args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(examples, file), ...args], {
      stdio: ['ignore', 'pipe', 'pipe']
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening (\S+)/.exec(output);
      if (match) resolve({ child, url: match[1] });
    });
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code}: ${output}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

function run(file, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(examples, file), ...args], {
      stdio: ['ignore', 'pipe', 'pipe']
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

/** Writes `text` on a new TCP connection and resolves with everything read until it closes. */
function rawExchange(port, text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => (got += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(got));
  });
}

function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data, isBinary }));
    ws.once('error', reject);
  });
}

function opened(ws) {
  return new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
}

describe('examples', function () {
  this.timeout(15000);
  const children = [];
  afterEach(async () => {
    await Promise.all(children.splice(0).map(stop));
  });

  it('echo-server.js echoes text as text and binary as binary', async () => {
    const { child, url } = await start('echo-server.js', ['--port', '0']);
    children.push(child);
    const ws = new WebSocket(url);
    await opened(ws);
    ws.send('héllo');
    const text = await nextMessage(ws);
    assert.strictEqual(text.isBinary, false);
    assert.strictEqual(text.data.toString(), 'héllo');
    const blob = Buffer.alloc(200000, 7);
    ws.send(blob);
    const binary = await nextMessage(ws);
    assert.strictEqual(binary.isBinary, true);
    assert.ok(binary.data.equals(blob));
    ws.close();
  });

  it('echo-server.js refuses an unknown --transport with a non-zero exit and says why', async () => {
    const bad = await run('echo-server.js', ['--port', '0', '--transport', 'carrier-pigeon']);
    assert.notStrictEqual(bad.code, 0);
    assert.match(bad.stderr, /"transport" option must be 'auto', 'native' or 'stream'/);
  });

  for (const transport of ['native', 'stream']) {
    it(`echo-server.js --transport ${transport} echoes`, async () => {
      const { child, url } = await start('echo-server.js', ['--port', '0', '--transport', transport]);
      children.push(child);
      const ws = new WebSocket(url);
      await opened(ws);
      ws.send(Buffer.alloc(100000, 3));
      const echoed = await nextMessage(ws);
      assert.ok(echoed.data.equals(Buffer.alloc(100000, 3)));
      ws.close();
    });
  }

  it('echo-server.js --deflate negotiates permessage-deflate and echoes compressed messages', async () => {
    const { child, url } = await start('echo-server.js', ['--port', '0', '--deflate']);
    children.push(child);
    const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0 } });
    await opened(ws);
    assert.strictEqual(ws.extensions, 'permessage-deflate');
    const json = JSON.stringify(Array.from({ length: 500 }, (_, id) => ({ id, ok: true })));
    ws.send(json);
    const echo = await nextMessage(ws);
    assert.strictEqual(echo.isBinary, false);
    assert.strictEqual(echo.data.toString(), json);
    ws.close();
  });

  it('routing.js serves two paths with their own subprotocols on one http.Server', async () => {
    const { child, url } = await start('routing.js', ['--port', '0']);
    children.push(child);
    const base = url.replace(/^http/, 'ws');

    const chat = new WebSocket(`${base}/chat`, ['chat.v1', 'chat.v2']);
    const welcome = nextMessage(chat);
    await opened(chat);
    assert.strictEqual(chat.protocol, 'chat.v2');
    assert.strictEqual((await welcome).data.toString(), 'welcome to chat (protocol: chat.v2)');
    chat.send('hi');
    assert.strictEqual((await nextMessage(chat)).data.toString(), 'chat: hi');

    const echo = new WebSocket(`${base}/echo`);
    await opened(echo);
    assert.strictEqual(echo.protocol, '');
    echo.send('ping');
    assert.strictEqual((await nextMessage(echo)).data.toString(), 'ping');

    const unknown = new WebSocket(`${base}/nope`);
    const status = await new Promise((resolve) => {
      unknown.on('unexpected-response', (req, res) => resolve(res.statusCode));
      unknown.on('error', () => {});
    });
    assert.strictEqual(status, 404);
    chat.close();
    echo.close();
  });

  it('raw-net-server.js does the handshake on a plain net.Server and echoes', async () => {
    const { child, url } = await start('raw-net-server.js', ['0']);
    children.push(child);
    const ws = new WebSocket(`${url}/seed?n=3`);
    await opened(ws);
    ws.send('abc');
    const text = await nextMessage(ws);
    assert.strictEqual(text.isBinary, false);
    assert.strictEqual(text.data.toString(), 'abc');
    ws.send(Buffer.from([0, 1, 2, 255]));
    const binary = await nextMessage(ws);
    assert.strictEqual(binary.isBinary, true);
    assert.deepStrictEqual([...binary.data], [0, 1, 2, 255]);
    ws.close();

    // A plain GET is refused by handleUpgrade's checks; garbage by the HTTP parser.
    const { port } = new URL(url);
    assert.match(await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await rawExchange(port, 'hello\r\n\r\n'), /^HTTP\/1\.1 400 /);
  });

  it('echo-server.js --tls echoes over wss:// (an https.Server with examples/tls/), and refuses --port-mode with it', async () => {
    const { child, url } = await start('echo-server.js', ['--port', '0', '--tls']);
    children.push(child);
    assert.match(url, /^wss:\/\//);
    const ws = new WebSocket(url, { rejectUnauthorized: false });
    await opened(ws);
    ws.send(Buffer.alloc(70000, 9));
    const echoed = await nextMessage(ws);
    assert.ok(echoed.isBinary && echoed.data.equals(Buffer.alloc(70000, 9)));
    ws.close();
    const bad = await run('echo-server.js', ['--port', '0', '--tls', '--port-mode']);
    assert.strictEqual(bad.code, 2);
    assert.match(bad.stderr, /--tls needs an https.Server/);
  });

  it('wss-server.js serves wss:// with its self-signed certificate', async () => {
    const { child, url } = await start('wss-server.js', ['--port', '0']);
    children.push(child);
    const ws = new WebSocket(url, { rejectUnauthorized: false });
    const greeting = nextMessage(ws);
    await opened(ws);
    assert.match((await greeting).data.toString(), /this connection is encrypted/);
    ws.send(Buffer.from([1, 2, 3]));
    const echoed = await nextMessage(ws);
    assert.deepStrictEqual([...echoed.data], [1, 2, 3]);
    ws.close();
  });
});
