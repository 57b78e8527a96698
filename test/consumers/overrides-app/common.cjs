'use strict';

// Shared by the scripts of the overrides app (copied into a fresh app whose package.json
// replaces ws with the packed ws-native through npm `overrides`). Each script prints one JSON
// line of results for test/consumers/overrides.test.js to check; nothing here decides pass/fail.

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

/** The package that `require('ws')` gives inside `pkg` (or in the app with no argument). */
function wsSeenBy(pkg) {
  const from = pkg ? path.join(__dirname, 'node_modules', pkg, 'package.json') : path.join(__dirname, 'package.json');
  const manifest = createRequire(from).resolve('ws/package.json');
  const { name, version } = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  return { name, version, dir: path.relative(__dirname, fs.realpathSync(path.dirname(manifest))) };
}

/** The ws-native addons mapped into this process (paths relative to the app). */
function addonsLoaded() {
  return [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\n')
    .map((line) => line.slice(line.indexOf('/')))
    .filter((file) => file.endsWith('.node') && file.includes('ws-native')))]
    .map((file) => path.relative(__dirname, file));
}

/** `promise`, or a rejection naming `what` after `ms`. */
function deadline(promise, what, ms = 10000) {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    })
  ]).finally(() => clearTimeout(timer));
}

/** Prints the results and exits (0; a thrown error exits 1 with its stack on stderr). */
function report(results) {
  process.stdout.write(JSON.stringify(results) + '\n', () => process.exit(0));
}

function run(main) {
  main().then(report, (err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}

module.exports = { wsSeenBy, addonsLoaded, deadline, run };
