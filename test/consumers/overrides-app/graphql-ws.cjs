'use strict';

// graphql-ws's useServer on the app's require('ws').WebSocketServer (ws-native by the
// overrides) and graphql-ws's client on its WebSocket: a subscription of 1,000 events.

const { GraphQLSchema, GraphQLObjectType, GraphQLString, GraphQLInt } = require('graphql');
const { createClient } = require('graphql-ws');
const { useServer } = require('graphql-ws/use/ws');
const WebSocket = require('ws');
const { wsSeenBy, addonsLoaded, deadline, run } = require('./common.cjs');

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString, resolve: () => 'world' } } }),
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

run(async () => {
  const wss = new WebSocket.WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => wss.once('listening', resolve));
  const server = useServer({ schema }, wss);
  const client = createClient({ url: `ws://127.0.0.1:${wss.address().port}`, webSocketImpl: WebSocket, retryAttempts: 0 });
  const counts = [];
  await deadline(new Promise((resolve, reject) => {
    client.subscribe({ query: 'subscription { count(to: 1000) }' }, {
      next: (r) => counts.push(r.data.count),
      error: reject,
      complete: resolve
    });
  }), 'the subscription to complete');
  const inOrder = counts.length === 1000 && counts.every((n, i) => n === i);
  await client.dispose();
  await server.dispose();
  return { ws: wsSeenBy(), received: counts.length, inOrder, addons: addonsLoaded() };
});
