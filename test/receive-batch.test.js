'use strict';

// The native transport's receive path: C reads every ready socket, parses in place and hands
// JS the events of a whole turn at once (src/napi/native_receive.c, dispatchBatch in
// lib/native-transport.js). Many connections per batch, listeners that throw, control frames
// right behind data, and bytes that arrive while a large message is inflated elsewhere. (They
// hold on the stream transport too, where each chunk is parsed by one call.)

const assert = require('assert');
const { execFile } = require('child_process');
const crypto = require('crypto');
const http = require('http');
const net = require('net');
const path = require('path');
const zlib = require('zlib');

const { WebSocket, WebSocketServer, nativeOnly } = require('./support/impl');
const { Cleanup, listen, once, upgradeRequest, maskedFrame, parseFrame } = require('./support/net-helpers');

const ROOT = path.join(__dirname, '..');
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

nativeOnly.describe('receiving many connections at once', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a listener that throws does not stop other connections, nor its own later messages; each error is reported once, after', async function () {
    // In a child process, so that the uncaught exceptions can be counted.
    const script = `
      const http = require('http');
      const { WebSocket, WebSocketServer } = require(${JSON.stringify(ROOT)});
      const CLIENTS = 40;
      const server = http.createServer();
      const wss = new WebSocketServer({ server });
      const got = new Map();
      let errors = 0;
      process.on('uncaughtException', (err) => { if (err.message === 'boom') errors++; else throw err; });
      wss.on('connection', (ws) => {
        const list = [];
        got.set(ws, list);
        ws.on('message', (data) => {
          list.push(data.toString());
          if (data.toString() === 'boom') throw new Error('boom');
          if (list.length === 4) ws.send('done');
        });
      });
      server.listen(0, '127.0.0.1', () => {
        let done = 0;
        for (let i = 0; i < CLIENTS; i++) {
          const ws = new WebSocket('ws://127.0.0.1:' + server.address().port);
          ws.on('open', () => { for (const m of ['a', 'boom', 'b', 'c']) ws.send(m); });
          ws.on('message', () => {
            ws.close();
            if (++done === CLIENTS) {
              const lists = [...got.values()].map((l) => l.join(','));
              console.log(JSON.stringify({ errors, lists, transport: [...got.keys()][0].transport }));
              process.exit(0);
            }
          });
        }
      });
      setTimeout(() => { console.log(JSON.stringify({ timeout: true, errors })); process.exit(1); }, 8000);
    `;
    const out = await new Promise((resolve, reject) =>
      execFile(process.execPath, ['-e', script], { timeout: 15000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout)
      )
    );
    const result = JSON.parse(out.trim().split('\n').pop());
    assert.strictEqual(result.errors, 40);
    assert.deepStrictEqual(result.lists, Array(40).fill('a,boom,b,c'));
  });

  it('a ping right behind messages in one read is answered after the replies to them', async function () {
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new WebSocketServer({ server }));
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`re:${data}`)));
    const port = await listen(server);
    const socket = cleanup.add(net.connect(port, '127.0.0.1'));
    await once(socket, 'connect');
    socket.write(upgradeRequest());
    const frames = [];
    let buffered = Buffer.alloc(0);
    let upgraded = false;
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!upgraded) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        upgraded = true;
        buffered = buffered.subarray(end + 4);
      }
      for (let f; (f = parseFrame(buffered)) !== null; buffered = buffered.subarray(f.length)) {
        frames.push([f.opcode, f.payload.toString()]);
      }
    });
    while (!upgraded) await delay(5);
    // Two messages, a ping, a third message: one write.
    socket.write(
      Buffer.concat([
        maskedFrame(0x1, Buffer.from('one')),
        maskedFrame(0x1, Buffer.from('two')),
        maskedFrame(0x9, Buffer.from('p')),
        maskedFrame(0x1, Buffer.from('three'))
      ])
    );
    while (frames.length < 4) await delay(5);
    assert.deepStrictEqual(frames, [
      [0x1, 're:one'],
      [0x1, 're:two'],
      [0xa, 'p'],
      [0x1, 're:three']
    ]);
  });

  it('messages behind a large compressed one (inflated in the thread pool) in the same read wait for it, in order', async function () {
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new WebSocketServer({ server, perMessageDeflate: true }));
    const received = [];
    wss.on('connection', (ws) => ws.on('message', (data) => received.push(data.length)));
    const port = await listen(server);
    const socket = cleanup.add(net.connect(port, '127.0.0.1'));
    await once(socket, 'connect');
    socket.write(upgradeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_no_context_takeover' } }));
    const [head] = await once(socket, 'data');
    assert.match(head.toString(), /permessage-deflate/);
    // 1 MiB of random bytes compresses to about 1 MiB: far over the 16 KiB that goes to the
    // thread pool. Raw deflate without the 00 00 ff ff tail (RFC 7692 7.2.1).
    const big = crypto.randomBytes(1024 * 1024);
    const deflated = zlib.deflateRawSync(big, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const body = deflated.subarray(0, deflated.length - 4);
    const first = maskedFrame(0x2, body);
    first[0] |= 0x40; // RSV1: compressed
    const small = [1, 2, 3].map((n) => maskedFrame(0x2, Buffer.alloc(n)));
    socket.write(Buffer.concat([first, ...small]));
    for (let i = 0; i < 400 && received.length < 4; i++) await delay(10);
    assert.deepStrictEqual(received, [big.length, 1, 2, 3]);
    // Reading went on after it: another message arrives.
    socket.write(maskedFrame(0x2, Buffer.alloc(7)));
    for (let i = 0; i < 200 && received.length < 5; i++) await delay(10);
    assert.deepStrictEqual(received, [big.length, 1, 2, 3, 7]);
  });

  it('200 connections echo 50 messages each, all interleaved, every byte in order', async function () {
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new WebSocketServer({ server }));
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    const port = await listen(server);
    const clients = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const ws = cleanup.add(new WebSocket(`ws://127.0.0.1:${port}`));
        await once(ws, 'open');
        return ws;
      })
    );
    await Promise.all(
      clients.map(
        (ws, c) =>
          new Promise((resolve, reject) => {
            let next = 0;
            ws.on('message', (data) => {
              const want = `${c}:${next}:${'x'.repeat((c * 7 + next) % 300)}`;
              if (data.toString() !== want) reject(new Error(`client ${c}: got ${data}, want ${want}`));
              if (++next === 50) resolve();
            });
            for (let i = 0; i < 50; i++) ws.send(`${c}:${i}:${'x'.repeat((c * 7 + i) % 300)}`);
          })
      )
    );
  });

  it('large messages kept by the application stay intact while later reads arrive (they are views of a read buffer the transport then gives up)', async function () {
    const server = cleanup.add(http.createServer());
    const wss = cleanup.add(new WebSocketServer({ server }));
    const kept = [];
    let transport;
    wss.on('connection', (ws) =>
      ws.on('message', (data) => {
        transport = ws.transport;
        kept.push(data); // held past its delivery, as an application that queues work would
        if (data.length === 5) ws.send(`ack ${kept.length}`);
      })
    );
    const port = await listen(server);
    const socket = cleanup.add(net.connect(port, '127.0.0.1'));
    await once(socket, 'connect');
    socket.write(upgradeRequest());
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    while (!text.includes('\r\n\r\n')) await delay(5);
    // Each round, one write: three 48 KiB messages, a small one, and a 5-byte marker the
    // server acknowledges; every message's bytes differ from every other's.
    const sent = [];
    for (let round = 0; round < 20; round++) {
      const frames = [];
      for (const size of [48 * 1024, 48 * 1024, 100, 48 * 1024, 5]) {
        const payload = crypto.randomBytes(size);
        sent.push(payload);
        frames.push(maskedFrame(0x2, payload));
      }
      socket.write(Buffer.concat(frames));
      while (!text.includes(`ack ${sent.length}`)) await delay(2);
    }
    assert.strictEqual(kept.length, sent.length);
    for (let i = 0; i < sent.length; i++) assert.ok(kept[i].equals(sent[i]), `message ${i} changed after delivery`);
    // The path under test was taken: some large messages are views of a 256 KiB read buffer,
    // while no small one is (they are copied: a kept small message never pins the buffer).
    // (The stream transport delivers views of Node's own reads instead.)
    if (transport !== 'native') return;
    const views = kept.filter((m) => m.buffer.byteLength === 256 * 1024);
    assert.ok(views.length > 0, 'no large message was delivered in place');
    assert.ok(views.every((m) => m.length >= 32 * 1024));
  });
});
