'use strict';

// Just enough of the PE (Windows) and Mach-O (macOS) formats to list what a binary exports and
// imports, and which macOS version it asks for; ELF goes through readelf, which reads every
// architecture. Used by prebuild-all.js (node.exe's exports, for the import library) and by
// check-binaries.js. Written from the formats' published layouts (Microsoft's PE/COFF
// specification; Apple's <mach-o/loader.h> and <mach-o/nlist.h>).

const { execFileSync } = require('child_process');
const fs = require('fs');

// ---- PE/COFF ----

function peSections(buf) {
  if (buf.readUInt16LE(0) !== 0x5a4d) throw new Error('not a PE file (no MZ header)');
  const pe = buf.readUInt32LE(0x3c);
  if (buf.readUInt32LE(pe) !== 0x00004550) throw new Error('not a PE file (no PE signature)');
  const coff = pe + 4;
  const machine = buf.readUInt16LE(coff);
  const nSections = buf.readUInt16LE(coff + 2);
  const optSize = buf.readUInt16LE(coff + 16);
  const opt = coff + 20;
  const magic = buf.readUInt16LE(opt);
  if (magic !== 0x20b) throw new Error('not a PE32+ (64-bit) file');
  const dirs = opt + 112; // data directories in PE32+
  const dir = (i) => ({ rva: buf.readUInt32LE(dirs + 8 * i), size: buf.readUInt32LE(dirs + 8 * i + 4) });
  const sections = [];
  for (let i = 0, s = opt + optSize; i < nSections; i++, s += 40) {
    sections.push({
      name: buf.toString('latin1', s, s + 8).replace(/\0+$/, ''),
      vsize: buf.readUInt32LE(s + 8),
      rva: buf.readUInt32LE(s + 12),
      rawSize: buf.readUInt32LE(s + 16),
      raw: buf.readUInt32LE(s + 20)
    });
  }
  const offset = (rva) => {
    const s = sections.find((x) => rva >= x.rva && rva < x.rva + Math.max(x.vsize, x.rawSize));
    if (!s) throw new Error(`RVA ${rva.toString(16)} is in no section`);
    return rva - s.rva + s.raw;
  };
  const cstr = (off) => buf.toString('latin1', off, buf.indexOf(0, off));
  return { machine, dir, offset, cstr };
}

/** Names a PE file exports. */
function peExports(file) {
  const buf = fs.readFileSync(file);
  const { dir, offset, cstr } = peSections(buf);
  const { rva, size } = dir(0);
  if (size === 0) return [];
  const ed = offset(rva);
  const count = buf.readUInt32LE(ed + 24);
  const names = offset(buf.readUInt32LE(ed + 32));
  const out = [];
  for (let i = 0; i < count; i++) out.push(cstr(offset(buf.readUInt32LE(names + 4 * i))));
  return out;
}

/** { dll: [imported names] } of a PE file (names by ordinal show as '#<n>'). */
function peImports(file) {
  const buf = fs.readFileSync(file);
  const { dir, offset, cstr } = peSections(buf);
  const { rva, size } = dir(1);
  const out = {};
  if (size === 0) return out;
  for (let d = offset(rva); ; d += 20) {
    const lookup = buf.readUInt32LE(d);
    const nameRva = buf.readUInt32LE(d + 12);
    const thunkRva = buf.readUInt32LE(d + 16);
    if (nameRva === 0) break;
    const names = (out[cstr(offset(nameRva))] = []);
    for (let t = offset(lookup || thunkRva); ; t += 8) {
      const entry = buf.readBigUInt64LE(t);
      if (entry === 0n) break;
      if (entry >> 63n) names.push(`#${Number(entry & 0xffffn)}`);
      else names.push(cstr(offset(Number(entry & 0x7fffffffn)) + 2));
    }
  }
  return out;
}

// ---- Mach-O (64-bit, little-endian; not fat files) ----

const LC_REQ_DYLD = 0x80000000;
const LC_SYMTAB = 0x2;
const LC_LOAD_DYLIB = 0xc;
const LC_LOAD_WEAK_DYLIB = (0x18 | LC_REQ_DYLD) >>> 0; // (>>> 0: unsigned, as read)
const LC_REEXPORT_DYLIB = (0x1f | LC_REQ_DYLD) >>> 0;
const LC_DYLD_INFO = 0x22;
const LC_DYLD_INFO_ONLY = (0x22 | LC_REQ_DYLD) >>> 0;
const LC_CODE_SIGNATURE = 0x1d;
const LC_VERSION_MIN_MACOSX = 0x24;
const LC_BUILD_VERSION = 0x32;
const LC_DYLD_EXPORTS_TRIE = (0x33 | LC_REQ_DYLD) >>> 0;
const N_EXT = 0x01;
const N_TYPE = 0x0e;
const N_UNDF = 0x0;
const DYNAMIC_LOOKUP_ORDINAL = 0xfe;
const CPU = { 0x01000007: 'x64', 0x0100000c: 'arm64' };

function version(v) {
  const patch = v & 0xff;
  return `${v >>> 16}.${(v >> 8) & 0xff}${patch ? `.${patch}` : ''}`;
}

function uleb(buf, pos) {
  let result = 0;
  let shift = 0;
  let byte;
  do {
    byte = buf[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [result, pos];
}

/** Every name in a dyld export trie (what other images can bind to). */
function trieNames(buf, start, size) {
  const names = [];
  const stack = [[0, '']];
  const seen = new Set();
  while (stack.length) {
    const [node, prefix] = stack.pop();
    if (seen.has(node) || node >= size) continue;
    seen.add(node);
    let [terminal, pos] = uleb(buf, start + node);
    if (terminal > 0) names.push(prefix);
    pos += terminal;
    const children = buf[pos++];
    for (let i = 0; i < children; i++) {
      const end = buf.indexOf(0, pos);
      const edge = buf.toString('latin1', pos, end);
      let child;
      [child, pos] = uleb(buf, end + 1);
      stack.push([child, prefix + edge]);
    }
  }
  return names;
}

/** A Mach-O file's CPU, minimum macOS, linked dylibs, exports (its export trie), imports
 * (undefined external symbols, each with the dylib it binds to or 'dynamic lookup') and
 * whether it carries a code signature. */
function machO(file) {
  const buf = fs.readFileSync(file);
  if (buf.readUInt32LE(0) !== 0xfeedfacf) throw new Error(`${file}: not a 64-bit Mach-O file`);
  const info = {
    cpu: CPU[buf.readUInt32LE(4)] || `cputype ${buf.readUInt32LE(4)}`,
    minos: null,
    sdk: null,
    dylibs: [],
    exports: [],
    imports: [],
    signed: false
  };
  const ncmds = buf.readUInt32LE(16);
  let symtab = null;
  let trie = null;
  for (let i = 0, lc = 32; i < ncmds; i++) {
    const cmd = buf.readUInt32LE(lc);
    const size = buf.readUInt32LE(lc + 4);
    if (cmd === LC_BUILD_VERSION) {
      info.minos = version(buf.readUInt32LE(lc + 12));
      info.sdk = version(buf.readUInt32LE(lc + 16));
    } else if (cmd === LC_VERSION_MIN_MACOSX) {
      info.minos = version(buf.readUInt32LE(lc + 8));
      info.sdk = version(buf.readUInt32LE(lc + 12));
    } else if (cmd === LC_LOAD_DYLIB || cmd === LC_LOAD_WEAK_DYLIB || cmd === LC_REEXPORT_DYLIB) {
      const nameOff = buf.readUInt32LE(lc + 8);
      info.dylibs.push(buf.toString('latin1', lc + nameOff, buf.indexOf(0, lc + nameOff)));
    } else if (cmd === LC_SYMTAB) {
      symtab = {
        symoff: buf.readUInt32LE(lc + 8),
        nsyms: buf.readUInt32LE(lc + 12),
        stroff: buf.readUInt32LE(lc + 16)
      };
    } else if (cmd === LC_DYLD_INFO || cmd === LC_DYLD_INFO_ONLY) {
      const off = buf.readUInt32LE(lc + 40);
      const sz = buf.readUInt32LE(lc + 44);
      if (sz) trie = [off, sz];
    } else if (cmd === LC_DYLD_EXPORTS_TRIE) {
      trie = [buf.readUInt32LE(lc + 8), buf.readUInt32LE(lc + 12)];
    } else if (cmd === LC_CODE_SIGNATURE) {
      info.signed = true;
    }
    lc += size;
  }
  if (trie) info.exports = trieNames(buf, trie[0], trie[1]);
  if (symtab) {
    for (let i = 0; i < symtab.nsyms; i++) {
      const n = symtab.symoff + 16 * i;
      const type = buf[n + 4];
      if (!(type & N_EXT) || (type & N_TYPE) !== N_UNDF) continue;
      const strx = buf.readUInt32LE(n);
      const name = buf.toString('latin1', symtab.stroff + strx, buf.indexOf(0, symtab.stroff + strx));
      const ordinal = (buf.readUInt16LE(n + 6) >> 8) & 0xff;
      const from = ordinal === DYNAMIC_LOOKUP_ORDINAL ? 'dynamic lookup'
        : ordinal >= 1 && ordinal <= info.dylibs.length ? info.dylibs[ordinal - 1]
          : `ordinal ${ordinal}`;
      info.imports.push({ name, from });
    }
  }
  return info;
}

// ---- ELF, through readelf ----

/** An ELF file's machine, NEEDED libraries, undefined dynamic symbols (name and version) and
 * defined dynamic symbols. */
function elf(file) {
  const header = execFileSync('readelf', ['-hW', file], { encoding: 'utf8' });
  const machine = (/Machine:\s+(.*)/.exec(header) || [])[1];
  const dynamic = execFileSync('readelf', ['-dW', file], { encoding: 'utf8' });
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const syms = execFileSync('readelf', ['--dyn-syms', '-W', file], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024
  });
  const imports = [];
  const exports = [];
  for (const line of syms.split('\n')) {
    // Num: Value Size Type Bind Vis Ndx Name
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !/^\d+:$/.test(f[0])) continue;
    const [name, ver] = f[7].split(/@+/);
    if (!name) continue;
    if (f[6] === 'UND') imports.push({ name, version: ver || null, weak: f[4] === 'WEAK' });
    else if (f[4] === 'GLOBAL' || f[4] === 'WEAK') exports.push(name);
  }
  return { machine, needed, imports, exports };
}

module.exports = { peExports, peImports, machO, elf };
