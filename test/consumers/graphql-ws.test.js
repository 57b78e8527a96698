'use strict';

// graphql-ws (the GraphQL over WebSocket protocol, subprotocol graphql-transport-ws) served by
// graphql-ws/use/ws's useServer on a ws-native WebSocketServer, with graphql-ws's own client on
// ws-native's WebSocket (webSocketImpl), as a user of both would write it. Real sockets on
// 127.0.0.1; WS_IMPL=ws runs the same with ws on both ends.

const assert = require('assert');
const {
  GraphQLSchema,
  GraphQLObjectType,
  GraphQLString,
  GraphQLInt
} = require('graphql');
const { createClient } = require('graphql-ws');
const { useServer } = require('graphql-ws/use/ws');

const impl = require('../support/impl');
const { once, withTimeout, wssPort, closeWss } = require('../support/net-helpers');

const { WebSocket, WebSocketServer } = impl;

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: { hello: { type: GraphQLString, resolve: () => 'world' } }
  }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      count: {
        type: GraphQLInt,
        args: { to: { type: GraphQLInt } },
        subscribe: async function* count(_, { to }) {
          for (let i = 0; i < to; i++) yield { count: i };
        }
      }
    }
  })
});

describe('consumers: graphql-ws on a ws-native WebSocketServer', function () {
  let wss;
  let disposable;
  let url;
  let clients;

  async function start(serverOptions = {}, keepAlive) {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/graphql' });
    disposable = useServer({ schema, ...serverOptions }, wss, keepAlive);
    url = `ws://127.0.0.1:${await wssPort(wss)}/graphql`;
  }

  function client(options = {}) {
    const c = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, ...options });
    clients.push(c);
    return c;
  }

  /** The results of one operation, until it completes (or rejects with the error it got). */
  function collect(c, payload) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const results = [];
        c.subscribe(payload, {
          next: (result) => results.push(result),
          error: reject,
          complete: () => resolve(results)
        });
      }),
      'the operation to complete',
      15000
    );
  }

  beforeEach(function () {
    clients = [];
  });

  afterEach(async function () {
    for (const c of clients) await c.dispose();
    if (disposable) await disposable.dispose().catch(() => {});
    if (wss) await closeWss(wss);
    wss = null;
    disposable = null;
  });

  it('a subscription streams 1,000 events, all in order, then completes', async function () {
    await start();
    const results = await collect(client(), { query: 'subscription { count(to: 1000) }' });
    assert.strictEqual(results.length, 1000);
    results.forEach((result, i) => assert.deepStrictEqual(result, { data: { count: i } }));
  });

  it('negotiates graphql-transport-ws, and queries and subscriptions share the connection', async function () {
    const protocols = [];
    await start({ onConnect: (ctx) => void protocols.push(ctx.extra.socket.protocol) });
    const c = client();
    const [query, sub] = await Promise.all([
      collect(c, { query: '{ hello }' }),
      collect(c, { query: 'subscription { count(to: 3) }' })
    ]);
    assert.deepStrictEqual(query, [{ data: { hello: 'world' } }]);
    assert.deepStrictEqual(sub.map((r) => r.data.count), [0, 1, 2]);
    assert.deepStrictEqual(protocols, ['graphql-transport-ws']);
    assert.strictEqual(wss.clients.size, 1);
  });

  it('an onConnect that refuses closes the connection with 4403 Forbidden', async function () {
    await start({ onConnect: (ctx) => ctx.connectionParams && ctx.connectionParams.token === 'good' });
    const closes = [];
    const c = client({ connectionParams: { token: 'bad' }, on: { closed: (event) => closes.push(event) } });
    await assert.rejects(collect(c, { query: '{ hello }' }), (event) => {
      assert.strictEqual(event.code, 4403);
      assert.strictEqual(event.reason, 'Forbidden');
      return true;
    });
    assert.strictEqual(closes.length, 1);

    const ok = client({ connectionParams: { token: 'good' } });
    assert.deepStrictEqual(await collect(ok, { query: '{ hello }' }), [{ data: { hello: 'world' } }]);
  });

  it("useServer's keep-alive: a peer that answers pings stays, one that does not is dropped", async function () {
    // Ping every 300 ms, drop a peer whose pong has not come 300 ms after the ping (generous for
    // a loaded machine: the answering peer must never miss it).
    await start({}, 300);
    const ping = (ws) => new Promise((resolve) => ws.once('ping', resolve));

    // Answers pings (the default), across many keep-alive rounds.
    const alive = new WebSocket(url, 'graphql-transport-ws');
    await once(alive, 'open');
    alive.send(JSON.stringify({ type: 'connection_init' }));
    const [ack] = await once(alive, 'message');
    assert.strictEqual(JSON.parse(ack).type, 'connection_ack');
    for (let i = 0; i < 3; i++) await withTimeout(ping(alive), 'a keep-alive ping');
    assert.strictEqual(alive.readyState, WebSocket.OPEN);

    // autoPong: false leaves the ping unanswered; useServer must terminate the connection.
    const silent = new WebSocket(url, 'graphql-transport-ws', { autoPong: false });
    await once(silent, 'open');
    silent.send(JSON.stringify({ type: 'connection_init' }));
    await once(silent, 'message');
    const [code] = await once(silent, 'close');
    assert.strictEqual(code, 1006);
    assert.strictEqual(alive.readyState, WebSocket.OPEN);
    alive.close();
    await once(alive, 'close');
  });
});
