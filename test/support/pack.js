'use strict';

// The package as npm packs it, shared by every test file that installs the tarball into a
// fresh app (test/package.test.js, test/consumers/overrides.test.js): packing builds the six
// prebuilds (scripts/prebuild-all.js), which takes most of a minute, so it happens once per mocha process,
// on first use, and the tarball's folder is removed when the process exits.
//
// The tarball is packed from a staging copy of the files npm would pack, not from the repo
// itself, so that nothing of the repo's own build can be picked up or disturbed.

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..', '..');
const npmCli = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath)
  ? [process.execPath, process.env.npm_execpath]
  : ['npm'];
// What npm and the installed copies run with: not WS_NATIVE_PREBUILD, which points this
// suite's own require at a build elsewhere (scripts/test-emulated.sh, asan-mocha.sh) and would
// do the same to an installed copy and to its install script.
const appEnv = { ...process.env };
delete appEnv.WS_NATIVE_PREBUILD;

// npm's cache for the installs into fresh apps (the tarball's dependency node-gyp-build, the
// consumer packages): kept between runs under node_modules/, so that later runs need no network.
const npmCache = path.join(root, 'node_modules', '.cache', 'ws-native-package-test');

/** Runs npm with `args` in `cwd` (npm's own settings, errors only) and returns its stdout. */
function npm(args, cwd, { timeout = 300000 } = {}) {
  const [cmd, ...pre] = npmCli;
  return execFileSync(cmd, [...pre, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...appEnv, npm_config_loglevel: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 16 * 1024 * 1024,
    timeout
  });
}

/**
 * `npm install <specs>` into `app` with npm's defaults, from the shared cache (offline when
 * the cache already holds what is asked for).
 */
function npmInstall(app, specs = []) {
  return npm(['install', ...specs, '--cache', npmCache, '--prefer-offline', '--no-audit', '--no-fund'], app);
}

let result = null;

/**
 * Packs the package once per process and returns { tarball, packed }, `packed` being npm's
 * JSON report for it (filename, size, files...).
 */
function packOnce() {
  if (result) return result;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-native-pack-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

  // Stage what npm would pack (as listed by a dry run, which skips prepack), then pack that.
  const staging = path.join(dir, 'staging');
  const [dryRun] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root));
  for (const { path: file } of dryRun.files) {
    if (file.startsWith('prebuilds/')) continue; // rebuilt by prepack
    fs.mkdirSync(path.join(staging, path.dirname(file)), { recursive: true });
    fs.copyFileSync(path.join(root, file), path.join(staging, file));
  }
  // prepack (scripts/prebuild-all.js) builds the prebuilds from the staged sources.
  fs.cpSync(path.join(root, 'scripts'), path.join(staging, 'scripts'), { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(staging, 'node_modules'), 'dir');
  // The build's output comes first on stdout; npm's JSON report is last.
  const output = npm(['pack', '--json', '--pack-destination', dir], staging);
  const [packed] = JSON.parse(output.slice(output.search(/^\[$/m)));
  fs.rmSync(staging, { recursive: true, force: true });
  result = { tarball: path.join(dir, packed.filename), packed };
  return result;
}

module.exports = { appEnv, root, npm, npmInstall, npmCache, packOnce };
