'use strict';

// Topics, a ws-native extension: ws.subscribe()/unsubscribe()/isSubscribed()/topics and
// wss.publish()/subscriberCount(). Subscribers are clients of the `ws` package (independent of
// the code under test) over real sockets; a slow subscriber is a raw TCP client that stops
// reading.

const assert = require('assert');
const WsClient = require('ws').WebSocket;

const Native = require('..');
const { WebSocketServer, nativeOnly } = require('./support/impl');
const { connect, serve, cleanup } = require('./support/raw');
const { OP, Cleanup, once, withTimeout } = require('./support/net-helpers');

const clients = new Cleanup();

/** Collects every message of a `ws` client as { text, isBinary, data }. */
function record(client) {
  const messages = [];
  const waiters = [];
  client.on('message', (data, isBinary) => {
    messages.push({ data, isBinary, text: isBinary ? null : data.toString() });
    for (const w of waiters.slice()) {
      if (w.done()) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  /** Resolves once `predicate(messages)` holds (checked on each message). */
  messages.until = (predicate, what = 'messages') => {
    if (predicate(messages)) return Promise.resolve();
    return withTimeout(
      new Promise((resolve) => waiters.push({ done: () => predicate(messages), resolve })),
      `${what} (got ${messages.length}: ${JSON.stringify(messages.slice(-5).map((m) => m.text))})`
    );
  };
  /** Resolves once a text message equal to `text` arrived; returns the texts up to it. */
  messages.untilText = async (text) => {
    await messages.until((m) => m.some((x) => x.text === text), `'${text}'`);
    const texts = messages.map((m) => (m.isBinary ? m.data : m.text));
    return texts.slice(0, texts.indexOf(text) + 1);
  };
  return messages;
}

/**
 * A server (options as for WebSocketServer) and n `ws` clients connected to it.
 * Returns { server, wss, conns (server side), clients, messages (one recording per client) }.
 */
async function setup(options, n) {
  const server = await serve(options);
  const conns = [];
  const list = [];
  const messages = [];
  for (let i = 0; i < n; i++) {
    const client = clients.add(new WsClient(`ws://127.0.0.1:${server.port}`));
    messages.push(record(client));
    const [ws] = await Promise.all([
      server.nextConnection(),
      once(client, 'open', { rejectOnError: true })
    ]);
    conns.push(ws);
    list.push(client);
  }
  return { server, wss: server.wss, conns, clients: list, messages };
}

function tick() {
  return new Promise((resolve) => setImmediate(resolve));
}

nativeOnly.describe('topics (subscribe / publish)', function () {
  afterEach(async function () {
    await clients.run();
    await cleanup();
  });

  it('publish reaches exactly the subscribers of the topic', async function () {
    const { wss, conns, messages } = await setup({}, 3);
    assert.strictEqual(conns[0].subscribe('news'), true);
    assert.strictEqual(conns[1].subscribe('news'), true);
    assert.strictEqual(conns[2].subscribe('sport'), true);

    assert.strictEqual(wss.publish('news', 'headline'), 2);
    assert.strictEqual(wss.publish('sport', 'score'), 1);
    // A direct send queued after the publish arrives after it: the marker bounds what arrived.
    for (const ws of conns) ws.send('end');

    assert.deepStrictEqual(await messages[0].untilText('end'), ['headline', 'end']);
    assert.deepStrictEqual(await messages[1].untilText('end'), ['headline', 'end']);
    assert.deepStrictEqual(await messages[2].untilText('end'), ['score', 'end']);
  });

  it('return values: subscribe/unsubscribe/isSubscribed/topics/subscriberCount/publish', async function () {
    const { wss, conns } = await setup({}, 2);
    const [a, b] = conns;

    assert.strictEqual(wss.subscriberCount('t'), 0);
    assert.strictEqual(wss.publish('t', 'nobody'), 0, 'a topic without subscribers reaches 0');
    assert.deepStrictEqual(a.topics, []);
    assert.strictEqual(a.isSubscribed('t'), false);

    assert.strictEqual(a.subscribe('t'), true);
    assert.strictEqual(a.subscribe('t'), false, 'subscribing twice returns false');
    assert.strictEqual(a.subscribe('u'), true);
    assert.strictEqual(b.subscribe('t'), true);
    assert.strictEqual(a.isSubscribed('t'), true);
    assert.strictEqual(b.isSubscribed('u'), false);
    assert.deepStrictEqual(a.topics.sort(), ['t', 'u']);
    assert.deepStrictEqual(b.topics, ['t']);
    assert.ok(Array.isArray(a.topics));
    a.topics.push('not-a-topic'); // a copy: changing it changes nothing
    assert.strictEqual(a.isSubscribed('not-a-topic'), false);

    assert.strictEqual(wss.subscriberCount('t'), 2);
    assert.strictEqual(wss.subscriberCount('u'), 1);
    assert.strictEqual(wss.publish('t', 'x'), 2);
    assert.strictEqual(wss.publish('u', 'x'), 1);
    assert.strictEqual(wss.publish('', 'x'), 0, "'' is a topic like any other");
    assert.strictEqual(a.subscribe(''), true);
    assert.strictEqual(wss.publish('', 'x'), 1);
  });

  it('order is kept per subscriber: 1,000 publishes mixed with its own echo traffic', async function () {
    const N = 1000;
    const { wss, conns, clients: list, messages } = await setup({}, 2);
    for (const ws of conns) {
      ws.subscribe('seq');
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    }

    const sending = list.map(async (client, c) => {
      for (let i = 0; i < N; i++) {
        client.send(`e${c}:${i}`);
        if (i % 7 === 0) await tick();
      }
    });
    for (let i = 0; i < N; i++) {
      assert.strictEqual(wss.publish('seq', `p:${i}`), 2);
      if (i % 5 === 0) await tick();
    }
    await Promise.all(sending);

    for (let c = 0; c < 2; c++) {
      await messages[c].until((m) => m.length === 2 * N, `${2 * N} messages on client ${c}`);
      const texts = messages[c].map((m) => m.text);
      const published = texts.filter((t) => t.startsWith('p:'));
      const echoed = texts.filter((t) => t.startsWith(`e${c}:`));
      assert.deepStrictEqual(published, Array.from({ length: N }, (_, i) => `p:${i}`));
      assert.deepStrictEqual(echoed, Array.from({ length: N }, (_, i) => `e${c}:${i}`));
      assert.strictEqual(published.length + echoed.length, texts.length, 'nothing else arrived');
      // The two streams really were interleaved, not one after the other.
      const firstEcho = texts.findIndex((t) => t.startsWith('e'));
      assert.ok(firstEcho < texts.indexOf(`p:${N - 1}`), 'echoes arrive between publishes');
    }
  });

  it('unsubscribe removes a subscriber', async function () {
    const { wss, conns, messages } = await setup({}, 2);
    const [a, b] = conns;
    a.subscribe('t');
    b.subscribe('t');
    assert.strictEqual(a.unsubscribe('t'), true);
    assert.strictEqual(a.unsubscribe('t'), false, 'unsubscribing twice returns false');
    assert.strictEqual(a.unsubscribe('never'), false);
    assert.strictEqual(a.isSubscribed('t'), false);
    assert.deepStrictEqual(a.topics, []);
    assert.strictEqual(wss.subscriberCount('t'), 1);
    assert.strictEqual(wss.publish('t', 'only b'), 1);
    a.send('end');
    b.send('end');
    assert.deepStrictEqual(await messages[0].untilText('end'), ['end']);
    assert.deepStrictEqual(await messages[1].untilText('end'), ['only b', 'end']);

    assert.strictEqual(b.unsubscribe('t'), true);
    assert.strictEqual(wss.subscriberCount('t'), 0);
    assert.strictEqual(wss.publish('t', 'nobody'), 0);
    assert.strictEqual(a.subscribe('t'), true, 'subscribing again after unsubscribe');
    assert.strictEqual(wss.publish('t', 'a again'), 1);
    assert.deepStrictEqual((await messages[0].untilText('a again')).slice(-1), ['a again']);
  });

  it('the end of a connection ends its subscriptions (close handshake, reset, server close)', async function () {
    const { wss, conns, clients: list } = await setup({}, 4);
    for (const ws of conns) {
      ws.subscribe('t');
      ws.subscribe(`own:${conns.indexOf(ws)}`);
    }
    assert.strictEqual(wss.subscriberCount('t'), 4);

    // 0: the client closes (closing handshake).
    list[0].close(1000);
    await once(conns[0], 'close');
    assert.strictEqual(wss.subscriberCount('t'), 3);
    assert.strictEqual(wss.subscriberCount('own:0'), 0);
    assert.deepStrictEqual(conns[0].topics, []);
    assert.strictEqual(conns[0].isSubscribed('t'), false);
    assert.strictEqual(conns[0].subscribe('t'), false, 'a closed connection cannot subscribe');
    assert.strictEqual(wss.subscriberCount('t'), 3);

    // 1: the TCP connection is reset.
    list[1].terminate();
    await once(conns[1], 'close');
    assert.strictEqual(wss.subscriberCount('t'), 2);

    // 2: the server starts closing: it is no longer reached, and is removed once closed.
    conns[2].close(1001);
    assert.strictEqual(wss.publish('t', 'x'), 1, 'a closing subscriber is not reached');
    assert.strictEqual(conns[2].subscribe('other'), false, 'a closing connection cannot subscribe');
    await once(conns[2], 'close');
    assert.strictEqual(wss.subscriberCount('t'), 1);
    assert.strictEqual(wss.subscriberCount('own:2'), 0);

    assert.strictEqual(wss.publish('t', 'x'), 1);
    conns[3].terminate();
    await once(conns[3], 'close');
    assert.strictEqual(wss.subscriberCount('t'), 0);
    assert.strictEqual(wss.publish('t', 'x'), 0);
  });

  it('text and binary: the client sees isBinary as published, bytes intact at every length encoding', async function () {
    const { wss, conns, messages } = await setup({}, 1);
    conns[0].subscribe('t');
    const bytes = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

    const cases = [
      ['text', 'hello ✓ 𝄞', undefined, false, Buffer.from('hello ✓ 𝄞')],
      ['Buffer', bytes(10, 1), undefined, true, bytes(10, 1)],
      ['Uint8Array', new Uint8Array(bytes(5, 2)), undefined, true, bytes(5, 2)],
      ['ArrayBuffer', new Uint8Array(bytes(7, 3)).buffer, undefined, true, bytes(7, 3)],
      ['number', 42, undefined, false, Buffer.from('42')],
      ['Buffer as text', Buffer.from('as text'), { binary: false }, false, Buffer.from('as text')],
      ['string as binary', 'as binary', { binary: true }, true, Buffer.from('as binary')],
      ['empty text', '', undefined, false, Buffer.alloc(0)],
      ['empty binary', Buffer.alloc(0), undefined, true, Buffer.alloc(0)],
      ['125 bytes', bytes(125, 4), undefined, true, bytes(125, 4)],
      ['126 bytes', bytes(126, 5), undefined, true, bytes(126, 5)],
      ['65535 bytes', bytes(65535, 6), undefined, true, bytes(65535, 6)],
      ['65536 bytes', bytes(65536, 7), undefined, true, bytes(65536, 7)],
      ['200000 bytes', bytes(200000, 8), undefined, true, bytes(200000, 8)],
      ['100000-char text', 'y'.repeat(100000), undefined, false, Buffer.from('y'.repeat(100000))]
    ];
    for (const [, data, options] of cases) assert.strictEqual(wss.publish('t', data, options), 1);

    await messages[0].until((m) => m.length === cases.length, `${cases.length} messages`);
    cases.forEach(([name, , , isBinary, expected], i) => {
      const m = messages[0][i];
      assert.strictEqual(m.isBinary, isBinary, `${name}: isBinary`);
      assert.ok(Buffer.from(m.data).equals(expected), `${name}: payload`);
    });
  });

  it('publish keeps its place among direct sends of every size', async function () {
    const { wss, conns, messages } = await setup({}, 1);
    const ws = conns[0];
    ws.subscribe('t');
    const big = (c) => Buffer.alloc(40000, c);

    ws.send('a');
    wss.publish('t', big('B')); // frames of 32 KiB and more are written from the shared frame
    ws.send('c');
    wss.publish('t', 'd');
    ws.send(big('E')); // a large direct send, written without a copy
    wss.publish('t', big('F'));
    wss.publish('t', 'g');
    ws.send('h');

    await messages[0].until((m) => m.length === 8, '8 messages');
    const got = messages[0].map((m) => (m.isBinary ? `${String.fromCharCode(m.data[0])}${m.data.length}` : m.text));
    assert.deepStrictEqual(got, ['a', 'B40000', 'c', 'd', 'E40000', 'F40000', 'g', 'h']);
  });

  // The native transport writes a tick's publishes to all its subscribers in one call: those
  // with nothing else to do in JS (a send callback, say) in C, the others in JS.
  it('a publish leaves for every subscriber in the same tick, bufferedAmount counts it until then, a send callback or a terminate() of one subscriber leaves the others alone', async function () {
    const { wss, conns, messages } = await setup({}, 4);
    for (const ws of conns) ws.subscribe('t');
    const [a, b, c, d] = conns;
    const ownWritten = new Promise((resolve) => a.send('own', resolve));
    assert.strictEqual(wss.publish('t', 'news'), 4);
    assert.ok(b.bufferedAmount >= 4 && d.bufferedAmount >= 4, 'counted until written');
    c.terminate();
    await tick();
    assert.deepStrictEqual([b.bufferedAmount, d.bufferedAmount], [0, 0]);
    assert.strictEqual(await ownWritten, null);
    assert.deepStrictEqual(await messages[0].untilText('news'), ['own', 'news']);
    assert.deepStrictEqual(await messages[1].untilText('news'), ['news']);
    assert.deepStrictEqual(await messages[3].untilText('news'), ['news']);
    assert.strictEqual(wss.publish('t', 'later'), 3, 'the terminated one is gone');
    await messages[3].untilText('later');
  });

  // More subscribers than the handle lists first hold (64): they grow within the publish.
  it('a publish reaches each of 100 subscribers once', async function () {
    const { wss, conns, messages } = await setup({}, 100);
    for (const ws of conns) ws.subscribe('many');
    assert.strictEqual(wss.publish('many', 'all of you'), 100);
    for (const m of messages) assert.deepStrictEqual(await m.untilText('all of you'), ['all of you']);
    assert.deepStrictEqual(conns.map((ws) => ws.bufferedAmount), new Array(100).fill(0));
  });

  it('publish from inside a message handler reaches every subscriber, the sender included', async function () {
    const { wss, conns, clients: list, messages } = await setup({}, 3);
    conns[0].subscribe('room');
    conns[1].subscribe('room');
    for (const ws of conns) {
      ws.on('message', (data) => {
        const n = wss.publish('room', `said:${data}`);
        ws.send(`ack:${data}:${n}`);
      });
    }
    // Several messages in one write, so that they are delivered in one receive loop.
    list[0].send('one');
    list[0].send('two');
    list[0].send('three');
    list[2].send('from-outside');

    const first = await messages[0].untilText('ack:three:2');
    assert.deepStrictEqual(first.filter((t) => t !== 'said:from-outside'), [
      'said:one',
      'ack:one:2',
      'said:two',
      'ack:two:2',
      'said:three',
      'ack:three:2'
    ]);
    await messages[0].untilText('said:from-outside');
    await messages[1].until((m) => m.length === 4, '4 messages on the other subscriber');
    const other = messages[1].map((m) => m.text);
    assert.deepStrictEqual(
      other.filter((t) => t !== 'said:from-outside'),
      ['said:one', 'said:two', 'said:three']
    );
    assert.ok(other.includes('said:from-outside'));
    assert.deepStrictEqual(await messages[2].untilText('ack:from-outside:2'), ['ack:from-outside:2']);
  });

  it('a publish during a fragmented send is not reached and does not break the message', async function () {
    const { wss, conns, messages } = await setup({}, 2);
    const [a, b] = conns;
    a.subscribe('t');
    b.subscribe('t');

    a.send('part1-', { fin: false });
    assert.strictEqual(wss.publish('t', 'small'), 1, 'only the subscriber not in a fragmented send');
    assert.strictEqual(wss.publish('t', Buffer.alloc(40000, 1)), 1, 'also for a large frame');
    a.send('part2', { fin: true });
    a.send('end');
    b.send('end');

    assert.deepStrictEqual(await messages[0].untilText('end'), ['part1-part2', 'end']);
    const got = (await messages[1].untilText('end')).map((x) => (Buffer.isBuffer(x) ? x.length : x));
    assert.deepStrictEqual(got, ['small', 40000, 'end']);
  });

  it('a subscriber that stops reading is skipped at maxBackpressure; others keep receiving; its memory stays bounded', async function () {
    this.timeout(60000);
    const MAX = 64 * 1024;
    const SIZE = 16 * 1024;
    const FRAME = SIZE + 4; // 2-byte header + 16-bit length
    const server = await serve({ maxBackpressure: MAX });
    const wss = server.wss;

    const fastClient = clients.add(new WsClient(`ws://127.0.0.1:${server.port}`));
    const fastMessages = record(fastClient);
    const [fast] = await Promise.all([server.nextConnection(), once(fastClient, 'open')]);
    const [slowClient, slow] = await Promise.all([connect(server.port), server.nextConnection()]);
    clients.add(slowClient.socket);
    slowClient.socket.pause(); // stops reading: the kernel buffers fill, then the server's
    fast.subscribe('t');
    slow.subscribe('t');

    const message = (seq) => {
      const buf = Buffer.alloc(SIZE, seq & 0xff);
      buf.writeUInt32BE(seq, 0);
      return buf;
    };
    const reachedSlow = [];
    const reachedFast = [];
    let skippedSlow = 0;
    let maxSlowBuffered = 0;
    let seq = 0;
    while (skippedSlow < 50) {
      assert.ok(seq < 8192, `the slow subscriber was never skipped (bufferedAmount ${slow.bufferedAmount})`);
      const slowFree = slow.bufferedAmount < MAX;
      const fastFree = fast.bufferedAmount < MAX;
      const n = wss.publish('t', message(seq));
      assert.strictEqual(n, slowFree + fastFree, `publish ${seq}: return value`);
      if (slowFree) reachedSlow.push(seq);
      else skippedSlow++;
      if (fastFree) reachedFast.push(seq);
      maxSlowBuffered = Math.max(maxSlowBuffered, slow.bufferedAmount);
      assert.ok(
        slow.bufferedAmount < MAX + FRAME,
        `publish ${seq}: the slow subscriber's bufferedAmount (${slow.bufferedAmount}) < maxBackpressure + one message`
      );
      seq++;
      await tick();
    }
    const total = seq;
    assert.ok(maxSlowBuffered >= MAX, 'the slow subscriber did reach maxBackpressure');
    assert.ok(reachedSlow.length < total);
    assert.ok(reachedFast.length > total - skippedSlow, 'the fast subscriber was reached while the slow one was skipped');

    // The fast subscriber got every message it was counted for, in order.
    await fastMessages.until((m) => m.length === reachedFast.length, `${reachedFast.length} messages`);
    assert.deepStrictEqual(
      fastMessages.map((m) => m.data.readUInt32BE(0)),
      reachedFast
    );

    // The slow one, once it reads, gets exactly the messages it was counted for, in order, intact.
    slowClient.socket.resume();
    for (const expected of reachedSlow) {
      const f = await withTimeout(slowClient.nextFrame(), `message ${expected} on the slow subscriber`);
      assert.strictEqual(f.opcode, OP.BINARY);
      assert.strictEqual(f.payload.readUInt32BE(0), expected);
      assert.ok(f.payload.equals(message(expected)), `message ${expected} intact`);
    }

    // Having caught up, it is reached again.
    await withTimeout(
      (async () => {
        while (slow.bufferedAmount >= MAX) await tick();
      })(),
      'the slow subscriber to drain'
    );
    assert.strictEqual(wss.publish('t', 'caught up'), 2);
    const f = await withTimeout(slowClient.nextFrame(), "'caught up'");
    assert.strictEqual(f.payload.toString(), 'caught up');
  });

  it('topic arguments must be strings (TypeError ERR_INVALID_ARG_TYPE)', async function () {
    const { wss, conns } = await setup({}, 1);
    const ws = conns[0];
    for (const topic of [undefined, null, 1, {}, ['t'], Symbol('t'), Buffer.from('t')]) {
      const expected = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };
      assert.throws(() => ws.subscribe(topic), expected, `subscribe(${String(topic)})`);
      assert.throws(() => ws.unsubscribe(topic), expected, `unsubscribe(${String(topic)})`);
      assert.throws(() => wss.publish(topic, 'x'), expected, `publish(${String(topic)})`);
    }
    assert.deepStrictEqual(ws.topics, []);
  });

  it('a client-side connection has no topics (WS_ERR_TOPICS_UNSUPPORTED)', async function () {
    const server = await serve({});
    const client = clients.add(new Native.WebSocket(`ws://127.0.0.1:${server.port}`));
    await once(client, 'open', { rejectOnError: true });
    for (const call of [() => client.subscribe('t'), () => client.unsubscribe('t')]) {
      assert.throws(call, (err) => err instanceof Error && err.code === 'WS_ERR_TOPICS_UNSUPPORTED');
    }
    assert.strictEqual(client.isSubscribed('t'), false);
    assert.deepStrictEqual(client.topics, []);
  });

  nativeOnly.it('publish with permessage-deflate: compressed once for those that negotiated it, and their own context stays right', async function () {
    const http = require('http');
    const WsClient = require('ws');
    const server = http.createServer();
    const wss = new WebSocketServer({ server, perMessageDeflate: { threshold: 0 } });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `ws://127.0.0.1:${server.address().port}`;
    const serverSide = [];
    wss.on('connection', (ws) => {
      ws.subscribe('news');
      serverSide.push(ws);
    });
    // Two subscribers with the extension (context takeover), one without.
    const clients = [
      new WsClient(url, { perMessageDeflate: { threshold: 0 } }),
      new WsClient(url, { perMessageDeflate: { threshold: 0 } }),
      new WsClient(url, { perMessageDeflate: false })
    ];
    await Promise.all(clients.map((c) => new Promise((resolve) => c.once('open', resolve))));
    while (serverSide.length < 3) await new Promise((resolve) => setImmediate(resolve));
    const got = clients.map(() => []);
    clients.forEach((c, i) => c.on('message', (data) => got[i].push(data.toString())));

    // M1 through each connection's own deflater, then a publish P compressed elsewhere, then
    // M1 again: its own deflater would refer back to M1, but the peer's window now ends with
    // P, so the deflater must have started over (or M1 would come out garbled).
    const m1 = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ i, text: 'own message' })));
    const p = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ i, text: 'published' })));
    for (const ws of serverSide) ws.send(m1);
    assert.strictEqual(wss.publish('news', p), 3);
    for (const ws of serverSide) ws.send(m1);
    for (let i = 0; i < 3; i++) {
      while (got[i].length < 3) await new Promise((resolve) => setImmediate(resolve));
      assert.deepStrictEqual(got[i], [m1, p, m1], `client ${i}`);
    }
    assert.strictEqual(clients[0].extensions, 'permessage-deflate');
    assert.strictEqual(clients[2].extensions, '');
    for (const c of clients) c.terminate();
    await new Promise((resolve) => wss.close(resolve));
    await new Promise((resolve) => server.close(resolve));
  });
});
