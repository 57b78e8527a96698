'use strict';

// The package as a user gets it: `npm pack` (whose prepack script builds the six prebuilds), then
// `npm install <tarball>` into a fresh app with npm's default settings, then an echo round
// trip, the ESM import and the types through the installed copy. The installed copy must load
// the prebuilt binary: no build/ folder may appear in it, whether or not npm ran its install
// script. The tarball comes from test/support/pack.js (packed once per mocha run, from a
// staging copy, and shared with test/consumers/overrides.test.js).
//
// WS_NATIVE_TEST_NODES (paths separated by ':') names more node binaries to run the installed
// copy's round trip with (see `npm run test:node-versions`).

const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { appEnv, npmInstall, packOnce, root } = require('./support/pack');
const platforms = require('../scripts/platforms');
const { TARGETS } = platforms;
const platformDir = `${process.platform}-${process.arch}`;

/** Runs a script of the app with node and returns what it printed as JSON. */
function runApp(app, script, nodeBinary = process.execPath) {
  const result = spawnSync(nodeBinary, [script], { cwd: app, env: appEnv, encoding: 'utf8', timeout: 60000 });
  assert.strictEqual(result.status, 0, `${script} failed:\n${result.stdout}\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

function commandExists(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Runs a script of the app with another platform's node under an emulator (qemu-user, or
 * wine, whose node.exe cannot write to a pipe: its output goes through a file). */
function runEmulated(emulator, nodeBinary, app, script) {
  const out = path.join(app, `${script}.${emulator}.out`);
  const fd = fs.openSync(out, 'w');
  try {
    const env = { ...appEnv, WINEDEBUG: '-all', NODE_SKIP_PLATFORM_CHECK: '1' };
    const result = spawnSync(emulator, [nodeBinary, script], {
      cwd: app, env, stdio: ['ignore', fd, fd], timeout: 150000
    });
    const text = fs.readFileSync(out, 'utf8');
    assert.strictEqual(result.status, 0, `${emulator} ${script} failed (${result.error || result.signal || result.status}):\n${text}`);
    return JSON.parse(text.trim().split('\n').pop());
  } finally {
    fs.closeSync(fd);
  }
}

function listFiles(dir, base = dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full, base));
    else out.push(path.relative(base, full).split(path.sep).join('/'));
  }
  return out;
}

// Text, binary, and a compressed (permessage-deflate) text message, echoed by the server.
const ECHO_CJS = `'use strict';
const { WebSocket, WebSocketServer } = require('ws-native');
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { threshold: 0 } }, () => {
  const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
  const echoed = [];
  ws.on('open', () => {
    ws.send('hello');
    ws.send(Buffer.from([0, 1, 2, 255]));
    ws.send('compressible '.repeat(100), { compress: true });
  });
  ws.on('message', (data, isBinary) => {
    echoed.push([isBinary, data.toString('hex')]);
    if (echoed.length === 3) ws.close(1000, 'done');
  });
  ws.on('close', (code, reason) => {
    wss.close();
    const addons = Object.keys(require.cache).filter((file) => file.endsWith('.node'));
    console.log(JSON.stringify({
      node: process.version, platform: process.platform + '-' + process.arch,
      extensions: ws.extensions, code, reason: reason.toString(), echoed, addons
    }));
  });
});
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
`;

const ECHOED = [
  [false, Buffer.from('hello').toString('hex')],
  [true, '000102ff'],
  [false, Buffer.from('compressible '.repeat(100)).toString('hex')]
];

const ECHO_ESM = `import WebSocket, { WebSocketServer, createWebSocketStream } from 'ws-native';
import { createRequire } from 'module';

const required = createRequire(import.meta.url)('ws-native');
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
  const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port);
  ws.on('open', () => ws.send('over ESM'));
  ws.on('message', (data) => {
    console.log(JSON.stringify({
      echoed: data.toString(),
      sameAsRequire: required === WebSocket && required.WebSocketServer === WebSocketServer,
      createWebSocketStream: typeof createWebSocketStream
    }));
    ws.terminate();
    wss.close();
  });
});
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
`;

const TYPED_APP = `import WebSocket = require('ws-native');
import { WebSocketServer, type RawData } from 'ws-native';

const wss = new WebSocketServer({ port: 0, highWaterMark: 1024 });
wss.on('connection', (ws: WebSocket) => {
  ws.on('message', (data: RawData, isBinary: boolean) => {
    // An array of Buffers (binaryType 'fragments') is not sendable as it is.
    const queued: boolean = ws.send(Array.isArray(data) ? Buffer.concat(data) : data, { binary: isBinary });
    if (!queued) ws.once('drain', () => ws.resume());
  });
});
// @ts-expect-error binaryType is checked, so the types were found and are not any
new WebSocket('ws://localhost').binaryType = 'text';
`;

describe('the packed package', function () {
  this.timeout(120000);

  let tmp;
  let tarball;
  let packed;
  let app;
  let installed;

  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-native-package-'));

    ({ tarball, packed } = packOnce());

    app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', private: true })
    );
    npmInstall(app, [tarball]);
    installed = path.join(app, 'node_modules', 'ws-native');
    fs.writeFileSync(path.join(app, 'echo.js'), ECHO_CJS);
    fs.writeFileSync(path.join(app, 'echo.mjs'), ECHO_ESM);
  });

  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('holds only what runs: code, types, sources to build from, the prebuild and docs', function () {
    const files = packed.files.map((f) => f.path).sort();
    const allowed = [
      /^package\.json$/,
      /^(README\.md|LICENSE|CHANGELOG\.md)$/,
      /^(index\.js|index\.d\.ts|wrapper\.mjs)$/,
      /^lib\/[\w-]+\.js$/,
      /^binding\.gyp$/,
      /^src\/([\w-]+\/)*[\w-]+\.[ch]$/,
      /^prebuilds\/[\w-]+\/ws-native(\.[\w]+)*\.node$/
    ];
    for (const file of files) {
      assert(allowed.some((re) => re.test(file)), `${file} should not be in the tarball`);
    }
    for (const file of [
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'index.js',
      'index.d.ts',
      'wrapper.mjs',
      'binding.gyp',
      'lib/binding.js',
      'src/napi/module.c'
    ]) {
      assert(files.includes(file), `${file} is missing from the tarball`);
    }
    for (const target of TARGETS) {
      assert(files.includes(target.file), `no prebuild for ${target.id} (${target.file}) in the tarball`);
    }
    assert.strictEqual(files.filter((f) => f.startsWith('prebuilds/')).length, TARGETS.length);
    for (const f of files.filter((f) => f.startsWith('prebuilds/'))) {
      const kb = packed.files.find((x) => x.path === f).size / 1024;
      console.log(`      ${f}: ${kb.toFixed(1)} KiB`);
    }
    console.log(
      `      tarball: ${packed.filename}, ${(packed.size / 1024).toFixed(1)} KiB packed, ` +
        `${(packed.unpackedSize / 1024).toFixed(1)} KiB unpacked, ${files.length} files`
    );
  });

  it('installs into a fresh app and loads the prebuild, without building', function () {
    assert(fs.existsSync(path.join(installed, 'package.json')));
    assert(!fs.existsSync(path.join(installed, 'build')), 'a build/ folder was created');
    const result = runApp(app, 'echo.js');
    assert.deepStrictEqual(result.echoed, ECHOED);
    assert.match(result.extensions, /^permessage-deflate/);
    assert.strictEqual(result.code, 1000);
    assert.strictEqual(result.reason, 'done');
    assert.strictEqual(result.addons.length, 1);
    assert.strictEqual(
      path.relative(fs.realpathSync(installed), result.addons[0]).split(path.sep)[0],
      'prebuilds'
    );
    assert(!fs.existsSync(path.join(installed, 'build')), 'a build/ folder was created');
  });

  it('works through import (ESM) in the installed copy', function () {
    assert.deepStrictEqual(runApp(app, 'echo.mjs'), {
      echoed: 'over ESM',
      sameAsRequire: true,
      createWebSocketStream: 'function'
    });
  });

  it('gives its types to a TypeScript app (CommonJS settings)', function () {
    fs.writeFileSync(path.join(app, 'app.ts'), TYPED_APP);
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = spawnSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'commonjs',
        '--target',
        'es2022',
        '--typeRoots',
        path.join(root, 'node_modules', '@types'),
        '--types',
        'node',
        'app.ts'
      ],
      { cwd: app, encoding: 'utf8' }
    );
    assert.strictEqual(result.status, 0, result.stdout + result.stderr);
  });

  it('says which platform lacks a binary, and how to fix it, when there is none', function () {
    fs.renameSync(path.join(installed, 'prebuilds'), path.join(tmp, 'prebuilds-moved'));
    try {
      const result = spawnSync(
        process.execPath,
        ['-e', "try { require('ws-native') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }"],
        { cwd: app, env: appEnv, encoding: 'utf8' }
      );
      const { code, message } = JSON.parse(result.stdout);
      assert.strictEqual(code, 'WS_ERR_ADDON_NOT_FOUND');
      assert(message.includes(platformDir), message);
      assert(message.includes('npm rebuild ws-native'), message);
    } finally {
      fs.renameSync(path.join(tmp, 'prebuilds-moved'), path.join(installed, 'prebuilds'));
    }
  });

  // The same app on the other platforms' official Node binaries, emulated here: each must
  // load its own prebuild from the tarball. Skipped (saying why) where the emulator is missing,
  // unless WS_NATIVE_EMULATORS=required (CI), where that fails.
  const emulated = [
    { platform: 'linux-arm64', prebuild: 'linux-arm64/ws-native.glibc.node', emulator: 'qemu-aarch64-static' },
    { platform: 'win32-x64', prebuild: 'win32-x64/ws-native.node', emulator: 'wine' }
  ];
  for (const { platform, prebuild, emulator } of emulated) {
    it(`installed on Linux, runs on ${platform} (${emulator}) from its own prebuild: text, binary, compressed`, function () {
      this.timeout(180000);
      if (!commandExists(emulator)) {
        assert.notStrictEqual(process.env.WS_NATIVE_EMULATORS, 'required', `${emulator} is not installed`);
        console.log(`      (skipped: ${emulator} is not installed; scripts/install-emulators.sh installs it)`);
        this.skip();
      }
      const node = platforms.nodeBinary(platform);
      const result = runEmulated(emulator, node, app, 'echo.js');
      assert.strictEqual(result.platform, platform);
      assert.deepStrictEqual(result.echoed, ECHOED);
      assert.match(result.extensions, /^permessage-deflate/);
      assert.strictEqual(result.code, 1000);
      assert.strictEqual(result.addons.length, 1);
      assert(result.addons[0].replace(/\\/g, '/').endsWith(`prebuilds/${prebuild}`), result.addons[0]);
      console.log(`      ${result.node} on ${platform}: loaded ${prebuild}`);
    });
  }

  const otherNodes = (process.env.WS_NATIVE_TEST_NODES || '').split(':').filter(Boolean);
  for (const node of otherNodes) {
    it(`loads the prebuild and echoes (require and import) under ${node}`, function () {
      const result = runApp(app, 'echo.js', node);
      assert.deepStrictEqual(result.echoed, ECHOED);
      assert.strictEqual(result.code, 1000);
      assert.match(result.addons[0], /prebuilds/);
      assert.strictEqual(runApp(app, 'echo.mjs', node).echoed, 'over ESM');
      console.log(`      ${result.node}: loaded ${path.basename(result.addons[0])}`);
    });
  }
});

// index.d.ts and doc/API.md must keep up with the code: every error code the sources can
// produce and every server option (with its default) is declared and documented.
describe('types and docs in step with the code', function () {
  const types = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8');
  const api = fs.readFileSync(path.join(root, 'doc', 'API.md'), 'utf8');

  function sourceFiles(dir) {
    return listFiles(dir)
      .filter((f) => /\.(c|h|js)$/.test(f))
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
  }

  it('declares and documents every WS_ERR_* code', function () {
    const codes = new Set();
    for (const text of [...sourceFiles(path.join(root, 'src')), ...sourceFiles(path.join(root, 'lib'))]) {
      for (const [code] of text.matchAll(/WS_ERR_[A-Z0-9_]+/g)) codes.add(code);
    }
    const start = types.indexOf('type ErrorCode');
    const errorCodeType = types.slice(start, types.indexOf('\n\n', start));
    for (const code of codes) {
      assert(errorCodeType.includes(`'${code}'`), `${code} is missing from ErrorCode in index.d.ts`);
      assert(api.includes(`\`${code}\``), `${code} is missing from doc/API.md`);
    }
  });

  it('declares and documents every WebSocketServer option', function () {
    const { WebSocketServer } = require('..');
    const wss = new WebSocketServer({ noServer: true });
    const serverOptions = types.slice(types.indexOf('interface LimitOptions'), types.indexOf('interface VerifyClientInfo'));
    for (const name of Object.keys(wss.options)) {
      assert(new RegExp(`\\b${name}\\?:`).test(serverOptions), `${name} is missing from ServerOptions`);
      assert(api.includes(`| \`${name}\` |`), `${name} is missing from the options table of doc/API.md`);
    }
    wss.close();
  });
});
