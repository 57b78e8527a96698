'use strict';

// ws-native as a user switches a whole dependency tree to it: a fresh app, npm's default
// settings, the consumer packages as dependencies (at the versions this repo's devDependencies
// installed) and npm `overrides` replacing every ws with the packed ws-native tarball:
//   "overrides": { "ws": "file:<ws-native-x.y.z.tgz>" }
// Then the scripts in overrides-app/ run there (each prints one JSON line of results) on the
// transport this mocha run uses (WS_NATIVE_TRANSPORT is inherited). The tarball is packed once
// per mocha run and shared with test/package.test.js; npm's cache (test/support/pack.js) makes
// later installs work offline.

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const { nativeOnly } = require('../support/impl');
const { appEnv, root, npmInstall, packOnce } = require('../support/pack');

const CONSUMERS = [
  'socket.io',
  'socket.io-client',
  'graphql',
  'graphql-ws',
  'fastify',
  '@fastify/websocket',
  'express',
  'express-ws',
  'puppeteer-core'
];
const CHROMIUM = '/usr/bin/chromium';

/** Every package.json of a package named `ws` (by folder) under `dir`/node_modules. */
function wsManifests(dir) {
  const found = [];
  const walk = (modules) => {
    if (!fs.existsSync(modules)) return;
    for (const entry of fs.readdirSync(modules, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const full = path.join(modules, entry.name);
      if (entry.name.startsWith('@')) {
        for (const scoped of fs.readdirSync(full)) walk2(path.join(full, scoped));
      } else {
        if (entry.name === 'ws') found.push(path.join(full, 'package.json'));
        walk2(full);
      }
    }
  };
  const walk2 = (pkg) => walk(path.join(pkg, 'node_modules'));
  walk(path.join(dir, 'node_modules'));
  return found;
}

nativeOnly.describe('consumers: npm overrides replace ws with the packed ws-native', function () {
  this.timeout(120000);

  let tmp;
  let app;

  /** Runs a script of the app (in its own process group, killed on the deadline); its JSON. */
  function runApp(script, { timeout = 60000 } = {}) {
    return new Promise((resolve, reject) => {
      // appEnv: the installed copy must load its own prebuild, not WS_NATIVE_PREBUILD's.
      const child = spawn(process.execPath, [script], { cwd: app, env: appEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
        reject(new Error(`${script} did not finish within ${timeout} ms:\n${stdout}\n${stderr}`));
      }, timeout);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code !== 0) return reject(new Error(`${script} exited with ${code} ${signal || ''}:\n${stdout}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop()));
        } catch (err) {
          reject(new Error(`${script} printed no JSON result:\n${stdout}\n${stderr}`));
        }
      });
    });
  }

  /** The addon of the installed ws-native (node_modules/ws, ws-native by the overrides). */
  function assertLoadsInstalledAddon(addons) {
    assert.strictEqual(addons.length, 1, `addons loaded: ${addons}`);
    assert.match(addons[0], /^node_modules\/ws\/prebuilds\//);
  }

  const WS_NATIVE = { name: 'ws-native', dir: 'node_modules/ws' };
  const seenAsWsNative = (seen) => assert.deepStrictEqual({ name: seen.name, dir: seen.dir }, WS_NATIVE);

  before(function () {
    this.timeout(600000);
    const { tarball } = packOnce();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-native-overrides-'));
    app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    const dependencies = {};
    for (const name of CONSUMERS) {
      dependencies[name] = require(path.join(root, 'node_modules', name, 'package.json')).version;
    }
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies, overrides: { ws: `file:${tarball}` } }, null, 2)
    );
    npmInstall(app);
    const fixtures = path.join(__dirname, 'overrides-app');
    for (const file of fs.readdirSync(fixtures)) fs.copyFileSync(path.join(fixtures, file), path.join(app, file));
  });

  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('leaves no ws but ws-native in the tree, with its prebuild and no build', function () {
    const manifests = wsManifests(app);
    assert.ok(manifests.length >= 1);
    for (const manifest of manifests) {
      const { name } = JSON.parse(fs.readFileSync(manifest, 'utf8'));
      assert.strictEqual(name, 'ws-native', `${path.relative(app, manifest)} is ${name}`);
    }
    const installed = path.join(app, 'node_modules', 'ws');
    assert.ok(fs.existsSync(path.join(installed, 'prebuilds')));
    assert.ok(!fs.existsSync(path.join(installed, 'build')), 'a build/ folder was created');
  });

  it('socket.io + socket.io-client: rooms, broadcast, binary and reconnection, ws-native on both sides', async function () {
    const r = await runApp('socket.io.cjs');
    for (const seen of Object.values(r.ws)) seenAsWsNative(seen);
    assert.strictEqual(r.serverIsWsNative, true);
    assert.strictEqual(r.clientIsWsNative, true);
    assert.deepStrictEqual(r.rooms, { a: ['all 70000'], b: ['news 1', 'all 70000'] });
    assert.strictEqual(r.binaryEchoed, true);
    assert.match(r.reconnection.reason, /^transport (close|error)$/);
    assert.strictEqual(r.reconnection.newSession, true);
    assertLoadsInstalledAddon(r.addons);
  });

  // Issue 17 point 3: socket.io-adapter pre-encodes a broadcast once when
  // require('ws').Sender.frame exists (and engine.io then writes it with ws._sender.sendFrame).
  // Fails while ws-native has no WebSocket.Sender.
  it("socket.io's broadcast is pre-encoded once (WebSocket.Sender.frame; issue 17 point 3)", async function () {
    const r = await runApp('socket.io.cjs');
    assert.strictEqual(r.senderFrame, 'function');
    assert.strictEqual(r.broadcastPreEncoded, true);
  });

  // Issue 17 point 1: fails on the native transport while destroy() on the socket handed to
  // handleUpgrade does nothing (engine.io rejects the EIO=3 upgrade that way).
  it('socket.io: a rejected Engine.IO 3 upgrade gets its connection closed (issue 17 point 1)', async function () {
    const r = await runApp('socket.io-eio3.cjs');
    assert.deepStrictEqual(r, { status: 'HTTP/1.1 101 Switching Protocols', code: 5, serverClosed: true });
  });

  // Issue 17 point 2: fails on the native transport while ws._socket has no unref().
  it("socket.io-client's autoUnref: true lets the client's process exit (issue 17 point 2)", async function () {
    const r = await runApp('socket.io-autounref.cjs');
    assert.deepStrictEqual(r, { exit: 0, stdout: JSON.stringify({ connected: true, wsNative: true }), stderr: '' });
  });

  it('graphql-ws: a subscription streams 1,000 events in order', async function () {
    const r = await runApp('graphql-ws.cjs');
    seenAsWsNative(r.ws);
    assert.strictEqual(r.received, 1000);
    assert.strictEqual(r.inOrder, true);
    assertLoadsInstalledAddon(r.addons);
  });

  it('@fastify/websocket on fastify 5: echo, and the route gets a ws-native socket', async function () {
    const r = await runApp('fastify.cjs');
    seenAsWsNative(r.ws);
    assert.deepStrictEqual(r.messages, ['hello ann', 'ping', 'binary 100000']);
    assert.strictEqual(r.routeSocketIsWsNative, true);
    assertLoadsInstalledAddon(r.addons);
  });

  it('express-ws (which asks for ws 7): echo on an express app', async function () {
    const r = await runApp('express-ws.cjs');
    seenAsWsNative(r.ws);
    assert.strictEqual(r.message, 'over express-ws');
    assert.strictEqual(r.routeSocketIsWsNative, true);
    assertLoadsInstalledAddon(r.addons);
  });

  it("puppeteer-core drives Chromium over ws-native (its CDP client): page, evaluate, close", async function () {
    if (process.env.WS_NATIVE_SKIP_BROWSER) return this.skip();
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install chromium, or WS_NATIVE_SKIP_BROWSER=1)`);
    const r = await runApp('puppeteer.mjs');
    seenAsWsNative(r.ws);
    assert.deepStrictEqual(r.evaluated, ['ws-native', 84]);
    assert.ok(r.sendsThroughWsNative > 0, 'no CDP message went through ws-native');
    assertLoadsInstalledAddon(r.addons);
  });
});
