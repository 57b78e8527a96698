'use strict';

// Where the benchmark's uWebSockets.js comes from: the npm package `uwebsockets` (a republish
// of uWS.js's binaries, about 260 MB, one .node per platform and Node ABI), installed on
// demand into a cache folder outside the repository, never a dependency of ws-native.

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const PACKAGE = 'uwebsockets';
const VERSION = '3.0.6';

/** The cache folder: $XDG_CACHE_HOME or ~/.cache, then ws-native-bench/uwebsockets-3.0.6. */
function cacheDir() {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'ws-native-bench', `${PACKAGE}-${VERSION}`);
}

const packageDir = () => path.join(cacheDir(), 'node_modules', PACKAGE);

/** The binary the package's uws.js picks for this process: platform, arch, Node's ABI. */
function binaryName() {
  return `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
}

/**
 * Loads uWS.js from the cache folder (its main, uws.js, requires binaryName()); throws with
 * what is missing when it cannot.
 */
function load() {
  const dir = packageDir();
  let pkg;
  try {
    pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  } catch {
    throw new Error(`${PACKAGE} is not installed in ${cacheDir()} (bench/run.js --with-uws installs it)`);
  }
  if (pkg.version !== VERSION) {
    throw new Error(`${dir} holds ${PACKAGE} ${pkg.version}, not ${VERSION}`);
  }
  if (!fs.existsSync(path.join(dir, binaryName()))) {
    throw new Error(`${PACKAGE} ${VERSION} has no ${binaryName()} for this Node (${process.version})`);
  }
  return require(dir);
}

/** What the banner says: the package, its version and the uWS.js commit it republishes. */
function describe() {
  let commit = '';
  try {
    commit = fs.readFileSync(path.join(packageDir(), 'source_commit'), 'utf8').trim().slice(0, 7);
  } catch {
    // an install without the file: the version alone
  }
  return `uWebSockets.js (npm ${PACKAGE} ${VERSION}${commit ? `, uWS.js ${commit}` : ''}, ${binaryName()})`;
}

/** Whether a fresh Node process can load it (checked apart, so this process never does). */
function loads() {
  try {
    execFileSync(process.execPath, ['-e', `require(${JSON.stringify(__filename)}).load()`], {
      stdio: 'ignore',
      timeout: 30000
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure the cache folder holds a copy that loads: reuses one that does, otherwise runs
 * `npm install` into it (no package.json of ours is touched, no install scripts run). Progress
 * goes to stderr; throws when the copy still does not load.
 */
function ensureInstalled() {
  if (loads()) return;
  const dir = cacheDir();
  fs.mkdirSync(dir, { recursive: true });
  console.error(`bench: installing ${PACKAGE}@${VERSION} (about 260 MB) into ${dir}`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  execFileSync(
    npm,
    ['install', '--prefix', dir, '--no-save', '--ignore-scripts', '--no-audit', '--no-fund',
      `${PACKAGE}@${VERSION}`],
    { stdio: ['ignore', 2, 2] }
  );
  if (!loads()) load(); // throws why
}

module.exports = { cacheDir, load, describe, ensureInstalled, VERSION };
