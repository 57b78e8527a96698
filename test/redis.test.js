'use strict';

// Scale-out through Redis (wss.useBroker(createRedisBroker())): a real redis-server (the Debian
// package) started on a free loopback port, servers joined through it, clients of the `ws`
// package over real sockets. Waits poll for a state with a deadline; no test asserts on time.
// A missing redis-server fails the suite unless WS_NATIVE_SKIP_REDIS=1.

const assert = require('assert');
const { spawn, spawnSync } = require('child_process');
const path = require('path');
const WsClient = require('ws').WebSocket;
const { createClient } = require('redis');

const { WebSocketServer, createRedisBroker } = require('..');
const { nativeOnly } = require('./support/impl');
const redisServer = require('./support/redis-server');

const DEADLINE = 10000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves once check() returns truthy (polled); rejects after DEADLINE naming `what`. */
async function until(check, what) {
  const end = Date.now() + DEADLINE;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A `ws` client whose messages are recorded as { text, isBinary, data }. */
async function connect(url) {
  const client = new WsClient(url);
  client.messages = [];
  client.on('message', (data, isBinary) =>
    client.messages.push({ data, isBinary, text: isBinary ? null : data.toString() })
  );
  await new Promise((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  return client;
}

/** The texts a client got, probes left out. */
function texts(client) {
  return client.messages.filter((m) => !m.isBinary && !m.text.startsWith('probe')).map((m) => m.text);
}

/**
 * Publishes probes with send(i) until one reaches `client` (a broker subscription that was just
 * asked for becomes active asynchronously).
 */
async function probe(send, client, what) {
  const end = Date.now() + DEADLINE;
  for (let i = 0; ; i++) {
    send(`probe-${i}`);
    const seen = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 100);
      const check = () => {
        if (client.messages.some((m) => !m.isBinary && m.text.startsWith('probe'))) {
          clearTimeout(timer);
          resolve(true);
        } else setTimeout(check, 5);
      };
      check();
    });
    if (seen) return;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
  }
}

function listening(options = {}) {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options }, () => resolve(wss));
    wss.on('error', reject);
  });
}

nativeOnly.describe('Redis broker (scale-out)', function () {
  this.timeout(30000);
  let redis = null;
  const cleanups = [];

  before(async function () {
    if (!redisServer.available()) {
      if (process.env.WS_NATIVE_SKIP_REDIS === '1') {
        console.log(`      skipped: no ${redisServer.REDIS_SERVER} and WS_NATIVE_SKIP_REDIS=1`);
        this.skip();
      }
      throw new Error(
        `${redisServer.REDIS_SERVER} not found: apt-get install redis-server ` +
          '(or set WS_NATIVE_SKIP_REDIS=1 to skip these tests)'
      );
    }
    redis = await redisServer.startRedis();
  });

  after(async function () {
    if (redis) await redis.destroy();
  });

  afterEach(async function () {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  /** A server on its own port joined to the test Redis; subscribes connections to `topic`. */
  async function server(topic = 'room') {
    const wss = await listening();
    const broker = createRedisBroker({ url: redis.url });
    broker.errors = [];
    broker.on('error', (err) => broker.errors.push(err));
    wss.useBroker(broker);
    wss.on('connection', (ws) => ws.subscribe(topic));
    cleanups.push(async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await broker.close();
    });
    await broker.ready();
    wss.url = `ws://127.0.0.1:${wss.address().port}`;
    wss.broker = broker;
    return wss;
  }

  async function client(wss) {
    const c = await connect(wss.url);
    cleanups.push(() => c.terminate());
    await until(() => wss.subscriberCount('room') >= 1, 'the subscription');
    return c;
  }

  /** A plain node-redis client for looking at Redis itself. */
  async function inspector() {
    const c = createClient({ url: redis.url });
    c.on('error', () => {});
    await c.connect();
    cleanups.push(() => c.destroy());
    return c;
  }

  it('requiring ws-native does not load redis; without it createRedisBroker throws WS_ERR_BROKER_UNAVAILABLE', function () {
    const script = `
      const Module = require('module');
      const ws = require(${JSON.stringify(path.join(__dirname, '..'))});
      const loaded = Object.keys(require.cache).some((f) => f.includes('node_modules/redis/'));
      const load = Module._load;
      Module._load = function (request) {
        if (request === 'redis') throw Object.assign(new Error('Cannot find module'), { code: 'MODULE_NOT_FOUND' });
        return load.apply(this, arguments);
      };
      let code = null;
      try { ws.createRedisBroker({}); } catch (err) { code = err.code; }
      console.log(JSON.stringify({ loaded, code }));`;
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.strictEqual(result.status, 0, result.stderr);
    assert.deepStrictEqual(JSON.parse(result.stdout), { loaded: false, code: 'WS_ERR_BROKER_UNAVAILABLE' });
  });

  it('useBroker() checks its argument', async function () {
    const wss = new WebSocketServer({ noServer: true });
    assert.throws(() => wss.useBroker({ subscribe() {} }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    const fake = { subscribe() {}, unsubscribe() {}, publish: async () => true, onMessage() {}, close: async () => {} };
    assert.strictEqual(wss.useBroker(fake), wss);
    assert.throws(() => wss.useBroker(fake), /already uses a broker/);
    wss.close();
  });

  it('a publish on one server reaches the subscriber of another, in order, once each', async function () {
    const a = await server();
    const b = await server();
    const ca = await client(a);
    const cb = await client(b);
    await probe((text) => a.publish('room', text), cb, 'a message from a reaching b');

    const expected = [];
    for (let i = 0; i < 200; i++) {
      const text = `m${i}`;
      expected.push(text);
      assert.strictEqual(a.publish('room', text), 1); // local subscribers only
    }
    assert.strictEqual(a.publish('room', Buffer.from([1, 2, 3])), 1);
    assert.strictEqual(b.publish('room', 'from b'), 1);

    await until(() => texts(cb).length === 201 && cb.messages.some((m) => m.isBinary), 'b to get everything');
    await until(() => texts(ca).length === 201, 'a to get everything');
    await sleep(100); // anything delivered twice would have come by now
    // Local deliveries are immediate, remote ones follow in publish order.
    assert.deepStrictEqual(texts(cb).filter((t) => t !== 'from b'), expected);
    assert.strictEqual(texts(cb).filter((t) => t === 'from b').length, 1);
    assert.deepStrictEqual(texts(ca), [...expected, 'from b']);
    const binary = cb.messages.filter((m) => m.isBinary);
    assert.strictEqual(binary.length, 1);
    assert.deepStrictEqual([...binary[0].data], [1, 2, 3]);
    await until(() => a.brokerStats.published >= 201, "a's broker to confirm its publishes");
    assert.strictEqual(a.brokerStats.lost, 0);
    assert(b.brokerStats.received >= 201);
  });

  it('subscribes a topic on Redis only while it has local subscribers', async function () {
    const a = await server();
    const redisClient = await inspector();
    const channels = () => redisClient.sendCommand(['PUBSUB', 'CHANNELS', 'ws-native:*']);
    assert.deepStrictEqual(await channels(), []);
    const c1 = await client(a);
    await until(async () => (await channels()).includes('ws-native:room'), 'the channel to be subscribed');
    const c2 = await connect(a.url);
    cleanups.push(() => c2.terminate());
    await until(() => a.subscriberCount('room') === 2, 'two subscribers');
    c1.close();
    await until(() => a.subscriberCount('room') === 1, 'one subscriber left');
    assert((await channels()).includes('ws-native:room'));
    c2.close();
    await until(async () => (await channels()).length === 0, 'the channel to be unsubscribed');
  });

  it('survives a Redis restart: local delivery continues, the gap is reported lost, topics are resubscribed', async function () {
    const a = await server();
    const b = await server();
    const ca = await client(a);
    const cb = await client(b);
    await probe((text) => a.publish('room', text), cb, 'the first cross-server message');

    await redis.stop();
    await until(() => !a.broker.connected && !b.broker.connected, 'both brokers to see the loss');
    const lostBefore = a.brokerStats.lost;
    assert.strictEqual(a.publish('room', 'during the gap'), 1);
    await until(() => texts(ca).includes('during the gap'), 'local delivery during the gap');
    await until(() => a.brokerStats.lost === lostBefore + 1, 'the publish to be reported lost');
    // A topic that gains its first subscriber during the gap is subscribed after it.
    b.on('connection', (ws) => ws.subscribe('late'));
    const late = await connect(b.url);
    cleanups.push(() => late.terminate());
    await until(() => b.subscriberCount('late') === 1, 'the late subscription');

    await redis.start();
    await probe((text) => a.publish('room', text), cb, 'delivery after the restart');
    await probe((text) => a.publish('late', text), late, 'the topic subscribed during the gap');
    for (let i = 0; i < 50; i++) a.publish('room', `after ${i}`);
    const expected = Array.from({ length: 50 }, (_, i) => `after ${i}`);
    await until(() => texts(cb).length >= 50, 'the messages after the restart');
    assert.deepStrictEqual(texts(cb), expected); // nothing from the gap claimed or replayed
    assert(a.broker.errors.length > 0, 'the connection loss was reported as an error event');
  });

  it('examples/cluster/server.js: two worker processes on one port, joined through Redis', async function () {
    const child = spawn(
      process.execPath,
      [path.join(__dirname, '..', 'examples', 'cluster', 'server.js'), '--port', '0', '--workers', '2', '--redis', redis.url],
      { stdio: ['ignore', 'pipe', 'pipe'] }
    );
    let output = '';
    child.stderr.on('data', (chunk) => (output += chunk));
    cleanups.push(
      () =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', resolve);
          child.kill('SIGTERM');
        })
    );
    const url = await new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        output += chunk;
        const match = /listening (\S+)/.exec(output);
        if (match) resolve(match[1]);
      });
      child.on('exit', (code) => reject(new Error(`the example exited with ${code}: ${output}`)));
    });

    // Connections are spread over the workers (round robin): keep two on different ones.
    const byWorker = new Map();
    for (let i = 0; i < 8 && byWorker.size < 2; i++) {
      const c = await connect(`${url}/room`);
      cleanups.push(() => c.terminate());
      const hello = await until(() => c.messages[0], 'the hello');
      const { worker } = JSON.parse(hello.text);
      if (!byWorker.has(worker)) byWorker.set(worker, c);
    }
    assert.strictEqual(byWorker.size, 2, 'connections landed on two workers');
    const [first, second] = [...byWorker.values()];
    const words = (c) => texts(c).filter((t) => !t.startsWith('{'));

    await probe((text) => first.send(text), second, 'a message from worker 1 reaching worker 2');
    const expected = Array.from({ length: 100 }, (_, i) => `w${i}`);
    for (const text of expected) first.send(text);
    await until(() => words(second).length >= 100, 'the messages on the other worker');
    await until(() => words(first).length >= 100, 'the messages on the sender (its own worker)');
    await sleep(100);
    assert.deepStrictEqual(words(second), expected);
    assert.deepStrictEqual(words(first), expected);
  });
});
