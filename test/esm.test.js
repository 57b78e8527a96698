'use strict';

// The ESM entry point: `import ... from 'ws-native'` resolves through package.json's exports
// (the package imports itself by name) to wrapper.mjs, whose exports are the very objects
// require() returns, and a round trip works through them.

const assert = require('assert');

const cjs = require('..');

describe('ESM entry point', function () {
  let esm;

  before(async function () {
    esm = await import('ws-native');
  });

  it('has named exports WebSocket, WebSocketServer, Sender, createWebSocketStream, createRedisBroker and a default', function () {
    assert.deepStrictEqual(Object.keys(esm).sort(), [
      'Sender',
      'WebSocket',
      'WebSocketServer',
      'createRedisBroker',
      'createWebSocketStream',
      'default'
    ]);
    assert.strictEqual(typeof esm.createWebSocketStream, 'function');
  });

  it('shares one module instance with require()', function () {
    assert.strictEqual(esm.default, cjs);
    assert.strictEqual(esm.WebSocket, cjs.WebSocket);
    assert.strictEqual(esm.WebSocketServer, cjs.WebSocketServer);
    assert.strictEqual(esm.createWebSocketStream, cjs.createWebSocketStream);
    assert.strictEqual(esm.createRedisBroker, cjs.createRedisBroker);
    assert.strictEqual(esm.Sender, cjs.Sender);
  });

  it('echoes a message through the imported classes', function (done) {
    const { WebSocket, WebSocketServer } = esm;
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
      const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}`);
      ws.on('open', () => ws.send('ping from ESM'));
      ws.on('message', (data, isBinary) => {
        assert.strictEqual(isBinary, false);
        assert.strictEqual(data.toString(), 'ping from ESM');
        ws.close(1000);
      });
      ws.on('close', (code) => {
        assert.strictEqual(code, 1000);
        wss.close(done);
      });
    });
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
});
