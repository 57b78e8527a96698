'use strict';

// Loads an installed package whose own `require('ws')` is the implementation under test
// (ws-native; ws itself with WS_IMPL=ws): for consumers that require ws directly and take no
// WebSocketServer from the app (@fastify/websocket, express-ws). It is the in-process form of
// npm `overrides` ("ws": ws-native), scoped to that package's own files; the overrides install
// itself is tested in test/consumers/overrides.test.js.

const Module = require('module');
const path = require('path');

const target = process.env.WS_IMPL === 'ws' ? require.resolve('ws') : require.resolve('../../..');
const dirs = new Set();
let installed = false;

function isInside(file) {
  for (const dir of dirs) {
    const rel = path.relative(dir, file);
    // The package's own files, not a ws nested under its node_modules.
    if (!rel.startsWith('..') && !path.isAbsolute(rel) && !rel.split(path.sep).includes('node_modules')) return true;
  }
  return false;
}

/** require(name), with 'ws' inside that package resolving to the implementation under test. */
function requireWithWs(name) {
  const dir = path.dirname(require.resolve(`${name}/package.json`));
  for (const file of Object.keys(require.cache)) {
    if (file.startsWith(dir + path.sep)) throw new Error(`${name} was loaded before requireWithWs('${name}')`);
  }
  dirs.add(dir);
  if (!installed) {
    installed = true;
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function resolveWs(request, parent, ...rest) {
      if (request === 'ws' && parent && parent.filename && isInside(parent.filename)) return target;
      return resolve.call(this, request, parent, ...rest);
    };
  }
  return require(name);
}

module.exports = { requireWithWs };
