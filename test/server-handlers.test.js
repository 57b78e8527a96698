'use strict';

// Server-level handlers, a ws-native extension: wss.on('message', (ws, data, isBinary)) hears
// every connection's messages, so an application needs no closure per connection. Clients are
// the `ws` package's (independent of the code under test), over real sockets, on a server in
// port mode (the native listener where the native transport is on) and on one attached to an
// http.Server.

const assert = require('assert');

const { WebSocketServer, nativeOnly } = require('./support/impl');
const { serve, cleanup } = require('./support/raw');
const { Cleanup, once, withTimeout, openWsClient, nextMessage } = require('./support/net-helpers');

const clients = new Cleanup();

const client = async (port) => clients.add(await openWsClient(`ws://127.0.0.1:${port}`));

/** The next message a `ws` client gets, as { text, isBinary }. */
async function nextText(c) {
  const [data, isBinary] = await nextMessage(c);
  return { text: data.toString(), isBinary };
}

nativeOnly.describe("server-level handlers (wss.on('message'))", function () {
  afterEach(async function () {
    await clients.run();
    await cleanup();
  });

  it('hears every connection with (ws, data, isBinary) and can answer on that ws', async function () {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    clients.add(wss);
    await once(wss, 'listening');
    const heard = [];
    wss.on('message', (ws, data, isBinary) => {
      heard.push({ ws, text: data.toString(), isBinary });
      ws.send(`echo ${data}`, { binary: isBinary });
    });
    const connected = [];
    wss.on('connection', (ws) => connected.push(ws));
    const port = wss.address().port;
    const [a, b] = [await client(port), await client(port)];

    const answers = Promise.all([nextText(a), nextText(b)]);
    a.send('from a');
    b.send(Buffer.from('from b'));
    const [toA, toB] = await answers;
    assert.deepStrictEqual(toA, { text: 'echo from a', isBinary: false });
    assert.deepStrictEqual(toB, { text: 'echo from b', isBinary: true });

    assert.strictEqual(heard.length, 2);
    const byText = Object.fromEntries(heard.map((h) => [h.text, h]));
    assert.strictEqual(byText['from a'].isBinary, false);
    assert.strictEqual(byText['from b'].isBinary, true);
    // the ws passed is the server's connection object, the one 'connection' gave
    assert.notStrictEqual(byText['from a'].ws, byText['from b'].ws);
    for (const h of heard) assert.ok(connected.includes(h.ws));
  });

  it("comes after the connection's own 'message' listeners, with the data they got", async function () {
    const server = await serve();
    const order = [];
    let seenByConnection = null;
    server.wss.on('connection', (ws) => {
      ws.binaryType = 'arraybuffer';
      ws.on('message', (data) => {
        order.push('connection');
        seenByConnection = data;
      });
    });
    const done = new Promise((resolve) =>
      server.wss.on('message', (ws, data, isBinary) => {
        order.push('server');
        resolve({ data, isBinary });
      })
    );
    const c = await client(server.port);
    c.send(Buffer.from([1, 2, 3]));
    const { data, isBinary } = await withTimeout(done, "the server's 'message'");
    assert.deepStrictEqual(order, ['connection', 'server']);
    assert.strictEqual(isBinary, true);
    // binaryType applies: both listeners get the same ArrayBuffer
    assert.ok(data instanceof ArrayBuffer);
    assert.strictEqual(data, seenByConnection);
    assert.deepStrictEqual([...new Uint8Array(data)], [1, 2, 3]);
  });

  it('stops hearing once the listener is removed; the connections still get their messages', async function () {
    const server = await serve();
    const heard = [];
    const listener = (ws, data) => heard.push(data.toString());
    server.wss.on('message', listener);
    const c = await client(server.port);
    const ws = await server.nextConnection();
    // the server's listeners run in the same emit, right after the connection's
    c.send('one');
    assert.deepStrictEqual((await nextMessage(ws))[0].toString(), 'one');
    server.wss.off('message', listener);
    c.send('two');
    assert.deepStrictEqual((await nextMessage(ws))[0].toString(), 'two');
    assert.deepStrictEqual(heard, ['one']);
  });
});
