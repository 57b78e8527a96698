'use strict';

// WebSocketServer on an https.Server (wss://). The peer is the `ws` package's client
// (ws-native's client comes later).

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const path = require('path');

const { WebSocket, WebSocketServer } = require('./support/impl');
const { Cleanup, listen, nextMessage, once, openWsClient } = require('./support/net-helpers');

const key = fs.readFileSync(path.join(__dirname, 'fixtures', 'key.pem'));
const cert = fs.readFileSync(path.join(__dirname, 'fixtures', 'cert.pem'));

describe('TLS (wss://)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup(options = {}) {
    const server = cleanup.add(
      https.createServer({ key, cert }, (req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '5' });
        res.end('https');
      })
    );
    const wss = cleanup.add(new WebSocketServer({ server, ...options }));
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    const port = await listen(server);
    return { server, wss, port };
  }

  async function client(port, options = { rejectUnauthorized: false }) {
    return cleanup.add(await openWsClient(`wss://127.0.0.1:${port}`, options));
  }

  it('echoes text and binary messages', async function () {
    const { port } = await setup();
    const c = await client(port);

    c.send('héllo wörld');
    const [text, textIsBinary] = await nextMessage(c);
    assert.strictEqual(textIsBinary, false);
    assert.strictEqual(text.toString(), 'héllo wörld');

    const bin = Buffer.from([0, 1, 2, 3, 254, 255]);
    c.send(bin);
    const [data, isBinary] = await nextMessage(c);
    assert.strictEqual(isBinary, true);
    assert.ok(Buffer.isBuffer(data));
    assert.ok(data.equals(bin));
  });

  it('echoes a 1 MiB binary message', async function () {
    const { port } = await setup();
    const c = await client(port);
    const big = crypto.randomBytes(1024 * 1024);
    c.send(big);
    const [data, isBinary] = await nextMessage(c);
    assert.strictEqual(isBinary, true);
    assert.strictEqual(data.length, big.length);
    assert.ok(data.equals(big));
  });

  it('works with a client that verifies the certificate (ca: cert.pem)', async function () {
    const { port } = await setup();
    const c = await client(port, { ca: cert });
    c.send('verified');
    const [data] = await nextMessage(c);
    assert.strictEqual(data.toString(), 'verified');
  });

  it('verifyClient sees info.secure === true', async function () {
    const infos = [];
    const { port } = await setup({
      verifyClient: (info) => {
        infos.push(info);
        return true;
      }
    });
    await client(port, { rejectUnauthorized: false, origin: 'https://example.org' });
    assert.strictEqual(infos.length, 1);
    assert.strictEqual(infos[0].secure, true);
    assert.strictEqual(infos[0].origin, 'https://example.org');
    assert.strictEqual(infos[0].req.socket.encrypted, true);
  });

  it('the server-side connection is a WebSocket and closes cleanly with code and reason', async function () {
    const { port, wss } = await setup();
    const connected = once(wss, 'connection');
    const c = await client(port);
    const [serverWs] = await connected;
    assert.ok(serverWs instanceof WebSocket);
    assert.strictEqual(serverWs.readyState, WebSocket.OPEN);

    const serverClosed = once(serverWs, 'close');
    const clientClosed = once(c, 'close');
    c.close(4001, 'tls bye');
    const [code, reason] = await serverClosed;
    assert.strictEqual(code, 4001);
    assert.ok(Buffer.isBuffer(reason));
    assert.strictEqual(reason.toString(), 'tls bye');
    const [ccode, creason] = await clientClosed;
    assert.strictEqual(ccode, 4001);
    assert.strictEqual(creason.toString(), 'tls bye');
  });

  it('normal HTTPS requests still reach the app', async function () {
    const { port } = await setup();
    const body = await new Promise((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port, path: '/', ca: cert, agent: false },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode, text }));
        }
      );
      req.on('error', reject);
    });
    assert.deepStrictEqual(body, { status: 200, text: 'https' });
  });
});
