'use strict';

// The browser examples, run as a user runs them: each server is a child process, and a real
// browser (headless Chromium, Debian's /usr/bin/chromium, driven by playwright-core) uses the
// pages. Chromium's WebSocket is an independent client: its own handshake, masking, framing
// and close handling.
//
// Chromium is required: without /usr/bin/chromium these tests fail (CI installs it), unless
// WS_NATIVE_SKIP_BROWSER=1 is set, which skips them. The chat protocol tests at the end need
// no browser and always run.

const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { spawn } = require('child_process');
const WsClient = require('ws').WebSocket;

const { once, withTimeout } = require('./support/net-helpers');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
];
const examples = path.join(__dirname, '..', 'examples');
const children = new Set();

/**
 * Starts an example server and resolves with { child, output, lines } once it printed its
 * `listening URL` line; `output` is everything it printed up to then.
 */
function start(file, args) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(examples, file), ...args], {
        stdio: ['ignore', 'pipe', 'pipe']
      });
      children.add(child);
      let output = '';
      child.stdout.on('data', (chunk) => {
        output += chunk;
        if (/^listening \S+$/m.test(output)) resolve({ child, output });
      });
      child.stderr.on('data', (chunk) => (output += chunk));
      child.on('exit', (code) => reject(new Error(`${file} exited with ${code}: ${output}`)));
    }),
    `${file} to listen`
  );
}

/** The URL printed after `label ` on a line of the output. */
function printed(output, label) {
  const match = new RegExp(`^${label} (\\S+)$`, 'm').exec(output);
  assert.ok(match, `no '${label} URL' line in: ${output}`);
  return match[1];
}

async function stopChildren() {
  await Promise.all(
    [...children].map((child) => {
      children.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      return exited;
    })
  );
}

describe('browser: headless Chromium against the examples', function () {
  let browser = null;
  let contexts = [];
  let pageErrors = [];

  before(async function () {
    if (process.env.WS_NATIVE_SKIP_BROWSER === '1') this.skip();
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} not found: the browser tests need Debian's chromium ` +
          '(apt-get install -y chromium); set WS_NATIVE_SKIP_BROWSER=1 to skip them'
      );
    }
    let chromium;
    try {
      ({ chromium } = require('playwright-core'));
    } catch (err) {
      throw new Error(`playwright-core is missing (npm install): ${err.message}`, { cause: err });
    }
    // launch() gives the browser a fresh temporary profile, removed on close().
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async function () {
    if (browser !== null) await browser.close();
  });

  afterEach(async function () {
    await Promise.all(contexts.map((context) => context.close().catch(() => {})));
    contexts = [];
    await stopChildren();
  });

  /** A page in a context of its own (its own cookies and storage: another user). */
  async function newPage() {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
    });
    return page;
  }

  beforeEach(() => {
    pageErrors = [];
  });

  function assertNoPageErrors() {
    assert.deepStrictEqual(pageErrors, [], 'the pages logged no errors');
  }

  async function join(page, url, nick, room) {
    await page.goto(url);
    await page.fill('#nick', nick);
    await page.fill('#room', room);
    await page.click('#join-form button');
    await page.locator('#messages li.notice', { hasText: `${nick} joined` }).waitFor();
    assert.strictEqual(await page.textContent('#status'), `in room ${room} as ${nick}`);
  }

  async function say(page, text) {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
  }

  /** [nick, text] of every message line on the page. */
  function lines(page) {
    return page.$$eval('#messages li.message', (items) =>
      items.map((li) => [li.querySelector('.nick').textContent, li.querySelector('.text').textContent])
    );
  }

  it('chat: two pages in one room see each other\'s lines, joins and leaves; history for late joiners', async function () {
    const { output } = await start('chat/server.js', ['--port', '0']);
    const url = printed(output, 'listening');

    const alice = await newPage();
    const bob = await newPage();
    await join(alice, url, 'alice', 'lobby');
    await join(bob, url, 'bob', 'lobby');
    await alice.locator('#messages li.notice', { hasText: 'bob joined' }).waitFor();

    await say(alice, 'hello from alice');
    await bob.locator('#messages li.message', { hasText: 'hello from alice' }).waitFor();
    await alice.locator('#messages li.message', { hasText: 'hello from alice' }).waitFor();
    assert.deepStrictEqual(await lines(bob), [['alice', 'hello from alice']]);

    // Text is shown as text, never as markup.
    await say(bob, '<b>not bold</b> ✓');
    await alice.locator('#messages li.message', { hasText: 'not bold' }).waitFor();
    assert.deepStrictEqual(await lines(alice), [
      ['alice', 'hello from alice'],
      ['bob', '<b>not bold</b> ✓']
    ]);
    assert.strictEqual(await alice.locator('#messages b').count(), 0);

    // Chromium offers permessage-deflate (Sec-WebSocket-Extensions: permessage-deflate;
    // client_max_window_bits) and the chat server accepts it without context takeover on
    // its side: everything above ran compressed.
    assert.strictEqual(
      await alice.evaluate(() => window.chatSocket.extensions),
      'permessage-deflate; server_no_context_takeover'
    );
    assert.strictEqual(await alice.evaluate(() => window.chatSocket.protocol), '');

    // A user who arrives later gets the room's history.
    const carol = await newPage();
    await join(carol, url, 'carol', 'lobby');
    assert.deepStrictEqual(await lines(carol), [
      ['alice', 'hello from alice'],
      ['bob', '<b>not bold</b> ✓']
    ]);
    await bob.locator('#messages li.notice', { hasText: 'carol joined' }).waitFor();

    // Another room hears nothing of this one.
    const dave = await newPage();
    await join(dave, url, 'dave', 'other');
    assert.deepStrictEqual(await lines(dave), []);

    // Closing alice's page closes her socket: the others see her leave.
    await alice.context().close();
    await bob.locator('#messages li.notice', { hasText: 'alice left' }).waitFor();
    await carol.locator('#messages li.notice', { hasText: 'alice left' }).waitFor();
    await say(bob, 'bye alice');
    await carol.locator('#messages li.message', { hasText: 'bye alice' }).waitFor();
    const daveNotices = await dave.$$eval('#messages li.notice', (items) => items.map((li) => li.textContent));
    assert.deepStrictEqual(daveNotices, ['dave joined']);
    assertNoPageErrors();
  });

  it('browser-echo: a page from one origin exchanges text and binary with the server on another port', async function () {
    const { output } = await start('browser-echo/server.js', ['--page-port', '0', '--ws-port', '0']);
    const pageUrl = printed(output, 'listening');
    const wsUrl = printed(output, 'websocket');
    assert.notStrictEqual(new URL(pageUrl).port, new URL(wsUrl).port, 'two ports: two origins');

    const page = await newPage();
    await page.goto(pageUrl);
    await page.locator('#status', { hasText: 'open' }).waitFor();
    assert.strictEqual(await page.evaluate(() => window.echoSocket.url), `${wsUrl}/`);
    // Offered by Chromium and accepted: the exchanges below run compressed.
    assert.strictEqual(await page.evaluate(() => window.echoSocket.extensions), 'permessage-deflate');

    // Through the page's own controls, as a user would.
    await page.fill('#input', 'héllo ✓ 𝄞');
    await page.click('#send-text');
    await page.locator('#log li.echo', { hasText: 'echo text: héllo ✓ 𝄞' }).waitFor();
    await page.fill('#input', 'hi!');
    await page.click('#send-binary');
    await page.locator('#log li.echo', { hasText: 'echo binary (3 bytes): 68 69 21' }).waitFor();
    assert.deepStrictEqual(await page.$$eval('#log li.echo', (items) => items.map((li) => li.textContent)), [
      'echo text: héllo ✓ 𝄞',
      'echo binary (3 bytes): 68 69 21'
    ]);

    // Every length encoding, both directions, checked byte for byte in the page.
    const results = await page.evaluate(async (url) => {
      const socket = new WebSocket(url);
      socket.binaryType = 'arraybuffer';
      await new Promise((resolve, reject) => {
        socket.onopen = resolve;
        socket.onerror = () => reject(new Error('could not connect'));
      });
      const roundTrip = (data) =>
        new Promise((resolve) => {
          socket.onmessage = (event) => resolve(event.data);
          socket.send(data);
        });
      const out = [];
      for (const size of [0, 125, 126, 65535, 65536, 300000]) {
        const bytes = new Uint8Array(size);
        for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
        const echoed = await roundTrip(bytes.buffer);
        const back = new Uint8Array(echoed);
        const same = echoed instanceof ArrayBuffer && back.length === size && back.every((b, i) => b === bytes[i]);
        out.push([`binary ${size}`, same]);
      }
      const text = 'ws-native ✓ 𝄞 '.repeat(5000);
      out.push(['text 75000', (await roundTrip(text)) === text]);
      const closed = new Promise((resolve) => (socket.onclose = (event) => resolve(event)));
      socket.close(1000, 'done');
      const event = await closed;
      out.push([`close ${event.code} ${event.reason} clean=${event.wasClean}`, true]);
      return out;
    }, wsUrl);
    assert.deepStrictEqual(results, [
      ['binary 0', true],
      ['binary 125', true],
      ['binary 126', true],
      ['binary 65535', true],
      ['binary 65536', true],
      ['binary 300000', true],
      ['text 75000', true],
      ['close 1000 done clean=true', true]
    ]);
    assertNoPageErrors();
  });

  it('browser-echo: a page from another origin is refused (the server checks Origin)', async function () {
    const echo = await start('browser-echo/server.js', ['--page-port', '0', '--ws-port', '0']);
    const wsUrl = printed(echo.output, 'websocket');
    const chat = await start('chat/server.js', ['--port', '0']);

    const page = await newPage();
    await page.goto(printed(chat.output, 'listening')); // any page of another origin
    const outcome = await page.evaluate(
      (url) =>
        new Promise((resolve) => {
          const socket = new WebSocket(url);
          let opened = false;
          socket.onopen = () => (opened = true);
          socket.onclose = (event) => resolve({ opened, code: event.code });
        }),
      wsUrl
    );
    assert.deepStrictEqual(outcome, { opened: false, code: 1006 });
    // Chromium reports the refused handshake on the console; that is expected here.
    pageErrors = pageErrors.filter((e) => !/WebSocket connection to .* failed/.test(e));
    assertNoPageErrors();
  });
});

describe('examples/chat/server.js protocol (no browser)', function () {
  let base;

  before(async function () {
    const { output } = await start('chat/server.js', ['--port', '0']);
    base = printed(output, 'listening');
  });

  after(stopChildren);

  const sockets = [];
  afterEach(() => {
    for (const ws of sockets.splice(0)) ws.terminate();
  });

  /** An open `ws` client of /chat that records the events it receives. */
  async function client() {
    const ws = new WsClient(`${base.replace(/^http/, 'ws')}/chat`);
    sockets.push(ws);
    ws.events = [];
    ws.waiters = [];
    ws.on('message', (data) => {
      ws.events.push(JSON.parse(data.toString()));
      for (const w of ws.waiters.splice(0)) w();
    });
    await once(ws, 'open', { rejectOnError: true });
    return ws;
  }

  /** Resolves with the next received envelope for which predicate is true (oldest first). */
  function next(ws, predicate) {
    const found = new Promise((resolve) => {
      const check = () => {
        const index = ws.events.findIndex(predicate);
        if (index !== -1) resolve(ws.events.splice(index, 1)[0]);
        else ws.waiters.push(check);
      };
      check();
    });
    return withTimeout(found, `a chat event (received so far: ${JSON.stringify(ws.events)})`);
  }

  function send(ws, event, data) {
    ws.send(JSON.stringify({ event, data }));
  }

  async function joined(nick, room) {
    const ws = await client();
    send(ws, 'join', { nick, room });
    const event = await next(ws, (e) => e.event === 'joined');
    await next(ws, (e) => e.event === 'notice' && e.data.text === `${nick.trim()} joined`);
    ws.history = event.data.history;
    return ws;
  }

  /** Sends raw data and resolves with [code, reason] of the close that follows. */
  async function closedAfter(ws, data, options) {
    const closed = once(ws, 'close');
    ws.send(data, options);
    const [code, reason] = await closed;
    return [code, reason.toString()];
  }

  it('serves the page and its script; nothing else', async function () {
    const get = (p) =>
      new Promise((resolve, reject) => {
        http.get(new URL(p, base), (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
        }).on('error', reject);
      });
    const index = await get('/');
    assert.strictEqual(index.status, 200);
    assert.match(index.type, /^text\/html/);
    assert.match(index.body, /<script src="chat.js">/);
    const script = await get('/chat.js');
    assert.strictEqual(script.status, 200);
    assert.match(script.type, /^text\/javascript/);
    for (const p of ['/server.js', '/../server.js', '/%2e%2e/server.js', '/public/index.html']) {
      assert.strictEqual((await get(p)).status, 404, p);
    }
  });

  it('join, message, notices: the envelope format', async function () {
    const alice = await joined('alice', 'proto');
    assert.deepStrictEqual(alice.history, []);
    const bob = await joined('  bob  ', 'proto');
    assert.deepStrictEqual(await next(alice, () => true), { event: 'notice', data: { text: 'bob joined' } });

    const before = Date.now();
    send(bob, 'message', { text: '  hi  ' });
    for (const ws of [alice, bob]) {
      const { event, data } = await next(ws, () => true);
      assert.strictEqual(event, 'message');
      assert.deepStrictEqual(Object.keys(data).sort(), ['at', 'nick', 'text']);
      assert.strictEqual(data.nick, 'bob');
      assert.strictEqual(data.text, 'hi');
      assert.ok(data.at >= before - 1000 && data.at <= Date.now() + 1000, 'at is a timestamp in ms');
    }

    bob.close();
    assert.deepStrictEqual(await next(alice, () => true), { event: 'notice', data: { text: 'bob left' } });
  });

  it('history: the last 50 lines of the room', async function () {
    const alice = await joined('alice', 'history');
    for (let i = 0; i < 55; i++) send(alice, 'message', { text: `line ${i}` });
    await next(alice, (e) => e.event === 'message' && e.data.text === 'line 54');
    const bob = await joined('bob', 'history');
    assert.deepStrictEqual(
      bob.history.map((line) => line.text),
      Array.from({ length: 50 }, (_, i) => `line ${i + 5}`)
    );
    assert.ok(bob.history.every((line) => line.nick === 'alice'));
  });

  it('bad input closes the connection with 1003/1008 and a reason', async function () {
    const cases = [
      ['binary', false, Buffer.from([1, 2, 3]), 1003, /binary/],
      ['not JSON', false, '{nope', 1008, /JSON/],
      ['JSON without data', false, JSON.stringify({ event: 'join' }), 1008, /data/],
      ['unknown event', false, JSON.stringify({ event: 'shout', data: {} }), 1008, /unknown event/],
      ['message before join', false, JSON.stringify({ event: 'message', data: { text: 'x' } }), 1008, /join first/],
      ['empty nick', false, JSON.stringify({ event: 'join', data: { nick: '  ', room: 'r' } }), 1008, /nick/],
      ['long nick', false, JSON.stringify({ event: 'join', data: { nick: 'n'.repeat(33), room: 'r' } }), 1008, /nick/],
      ['nick with a control character', false, JSON.stringify({ event: 'join', data: { nick: 'a\u0000b', room: 'r' } }), 1008, /nick/],
      ['bad room', false, JSON.stringify({ event: 'join', data: { nick: 'a', room: '../x' } }), 1008, /room/],
      ['long room', false, JSON.stringify({ event: 'join', data: { nick: 'a', room: 'r'.repeat(33) } }), 1008, /room/],
      ['long text', true, JSON.stringify({ event: 'message', data: { text: 't'.repeat(501) } }), 1008, /text/],
      ['empty text', true, JSON.stringify({ event: 'message', data: { text: '' } }), 1008, /text/],
      ['non-string text', true, JSON.stringify({ event: 'message', data: { text: 42 } }), 1008, /text/],
      ['second join', true, JSON.stringify({ event: 'join', data: { nick: 'b', room: 'r' } }), 1008, /already joined/]
    ];
    for (const [name, afterJoin, data, code, reason] of cases) {
      const ws = afterJoin ? await joined('tester', 'bad-input') : await client();
      const [gotCode, gotReason] = await closedAfter(ws, data);
      assert.strictEqual(gotCode, code, `${name}: close code`);
      assert.match(gotReason, reason, `${name}: close reason`);
    }
    // A message longer than maxPayload (16 KiB) is refused before it is buffered.
    const ws = await client();
    const [code] = await closedAfter(ws, 'x'.repeat(17 * 1024));
    assert.strictEqual(code, 1009);
  });
});
