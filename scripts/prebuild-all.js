'use strict';

// Builds the addon for the six prebuilt targets into prebuilds/ (`npm run prebuild:all`, and
// `prepack`): linux-x64 glibc and musl, linux-arm64 glibc, darwin-x64, darwin-arm64 and
// win32-x64, each cross-compiled here against the local Node's headers with the sources,
// include folders, defines and flags binding.gyp lists. Toolchains it lacks it installs itself:
// Debian packages with apt-get (as root), and from the npm registry a zig toolchain (for
// macOS) and node.exe (whose exports make the Windows import library), into
// node_modules/.cache/ws-native-platforms.
//
// Every source in binding.gyp compiles on every target (platform differences are #ifdef'd
// inside the files). A binary is rebuilt only when its inputs changed: the build is keyed by a
// hash of the sources, every header under src/, Node's version, this script and the target's
// settings, and kept in the cache folder.
//
//   node scripts/prebuild-all.js                          all six, into ./prebuilds
//   node scripts/prebuild-all.js linux-arm64-glibc ...    some of them
//   WS_NATIVE_PREBUILD_OUT=dir node scripts/prebuild-all.js     into dir/prebuilds

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const formats = require('./binary-formats');
const platforms = require('./platforms');

const { root, cacheDir, TARGETS, log } = platforms;

function listFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else out.push(full);
  }
  return out.sort();
}

function run(cmd, args) {
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (r.error) throw r.error;
    if (r.status !== 0) throw Object.assign(new Error(`exit ${r.status}`), r);
    if (r.stderr.trim()) log(`${path.basename(cmd)}: ${r.stderr.trim()}`); // warnings
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')}\n${err.stdout || ''}${err.stderr || err.message}`, {
      cause: err
    });
  }
}

/** An import library for node.exe, made from its own exports (C names only: Node-API, libuv,
 * zlib, OpenSSL), so the DLL binds to the running node.exe. */
function nodeImportLib() {
  const nodeExe = platforms.nodeBinary('win32-x64');
  const lib = path.join(path.dirname(nodeExe), 'libnode.a');
  if (!fs.existsSync(lib)) {
    const names = formats.peExports(nodeExe).filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
    const def = path.join(path.dirname(nodeExe), 'node.def');
    fs.writeFileSync(def, `LIBRARY node.exe\nEXPORTS\n${names.join('\n')}\n`);
    run('x86_64-w64-mingw32-dlltool', ['-d', def, '-D', 'node.exe', '-l', lib]);
  }
  return lib;
}

/** The tools and values a target's command lines refer to as {name}. */
function toolValues(target, nodeInclude) {
  const values = { nodeInclude };
  if (target.apt) platforms.ensureApt(target.apt);
  if (target.zig) {
    const zig = platforms.zig();
    values.zig = zig.bin;
    values.zigLibc = zig.libc;
    values.zigDarwin = zig.darwin;
  }
  if (target.id === 'win32-x64') values.nodeImportLib = nodeImportLib();
  return values;
}

function expand(list, values) {
  return (list || []).map((arg) => arg === '{objects}' ? arg : arg.replace(/\{(\w+)\}/g, (_, k) => {
    if (!(k in values)) throw new Error(`no value for {${k}}`);
    return values[k];
  }));
}

function buildKey(target, gyp, nodeInclude) {
  const hash = crypto.createHash('sha256');
  hash.update(JSON.stringify({ target, gyp, node: process.versions.node }));
  hash.update(fs.readFileSync(__filename));
  hash.update(fs.readFileSync(path.join(__dirname, 'platforms.js')));
  for (const file of listFiles(path.join(root, 'src'))) {
    hash.update(path.relative(root, file));
    hash.update(fs.readFileSync(file));
  }
  hash.update(fs.readFileSync(path.join(nodeInclude, 'node_version.h')));
  return hash.digest('hex').slice(0, 24);
}

function build(target, gyp, nodeInclude) {
  const key = buildKey(target, gyp, nodeInclude);
  const cached = path.join(cacheDir, 'prebuilds', target.id, key, path.basename(target.file));
  if (fs.existsSync(cached)) return { file: cached, fromCache: true };

  const values = toolValues(target, nodeInclude);
  const [cc, ...ccArgs] = expand(target.cc, values);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `ws-native-${target.id}-`));
  try {
    const common = [
      ...ccArgs,
      ...gyp.cflags,
      ...gyp.defines.map((d) => `-D${d}`),
      '-DBUILDING_NODE_EXTENSION',
      `-DNODE_GYP_MODULE_NAME=${gyp.name}`,
      ...gyp.includeDirs.map((d) => `-I${path.join(root, d)}`),
      ...(target.format === 'pe' ? [] : ['-fPIC']),
      ...expand(target.cflags, values),
      // Node's headers last (they hold a zlib.h), as -isystem so their warnings stay theirs.
      '-isystem',
      nodeInclude
    ];
    const objects = gyp.sources.map((src, i) => {
      const obj = path.join(work, `${i}-${path.basename(src, '.c')}.o`);
      run(cc, [...common, '-c', path.join(root, src), '-o', obj]);
      return obj;
    });
    const out = path.join(work, path.basename(target.file));
    const link = target.link ||
      [...target.cc, '-shared', '-s', '-o', '{out}', '{objects}', ...(target.ldflags || [])];
    const [linker, ...linkArgs] = expand(link, { ...values, out }).flatMap((arg) =>
      arg === '{objects}' ? objects : [arg]);
    run(linker, linkArgs);
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    fs.copyFileSync(out, cached);
    return { file: cached, fromCache: false };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function main() {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((id) => !TARGETS.some((t) => t.id === id));
  if (unknown.length) {
    throw new Error(`unknown target(s) ${unknown.join(', ')}; known: ${TARGETS.map((t) => t.id).join(', ')}`);
  }
  const targets = wanted.length ? TARGETS.filter((t) => wanted.includes(t.id)) : TARGETS;
  const outRoot = path.resolve(process.env.WS_NATIVE_PREBUILD_OUT || process.cwd());
  const gyp = platforms.bindingTarget();
  const nodeInclude = platforms.nodeInclude();
  if (!wanted.length) fs.rmSync(path.join(outRoot, 'prebuilds'), { recursive: true, force: true });

  for (const target of targets) {
    const started = Date.now();
    const { file, fromCache } = build(target, gyp, nodeInclude);
    const dest = path.join(outRoot, target.file);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(file, dest);
    const kb = (fs.statSync(dest).size / 1024).toFixed(1);
    const how = fromCache ? 'unchanged, from the cache' : `built in ${((Date.now() - started) / 1000).toFixed(1)} s`;
    log(`prebuild ${target.id}: ${target.file} (${kb} KiB, ${how})`);
  }
}

try {
  main();
} catch (err) {
  log(`prebuild-all: ${err.message}`);
  process.exit(1);
}
