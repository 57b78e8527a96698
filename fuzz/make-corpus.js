'use strict';
// Writes the seed inputs in fuzz/corpus/<target>/: a few dozen valid and edge-case inputs per
// target, each prefixed with the configuration bytes that target reads (see the comment at
// the top of fuzz_<target>.c). Deterministic, so re-running it changes nothing.
//
//   node fuzz/make-corpus.js

const fs = require('fs');
const path = require('path');

const CORPUS = path.join(__dirname, 'corpus');

// ---- frames ----

let keyCounter = 0x1234567;
function nextKey() {
  keyCounter = (keyCounter * 1103515245 + 12345) >>> 0;
  return Buffer.from([keyCounter >>> 24, keyCounter >>> 16, keyCounter >>> 8, keyCounter]);
}

// One frame. opts: fin (default true), rsv (bits 0x70 of byte 0), masked, lenForm (force 126
// or 127 length encoding), len (announce a different length than the payload has).
function frame(opcode, payload = Buffer.alloc(0), opts = {}) {
  payload = Buffer.from(payload);
  const fin = opts.fin !== false;
  const len = opts.len !== undefined ? opts.len : payload.length;
  const head = [(fin ? 0x80 : 0) | (opts.rsv || 0) | opcode];
  const maskBit = opts.masked ? 0x80 : 0;
  const form = opts.lenForm || (len < 126 ? 0 : len <= 0xffff ? 126 : 127);
  if (form === 0) head.push(maskBit | len);
  else if (form === 126) head.push(maskBit | 126, (len >> 8) & 0xff, len & 0xff);
  else {
    head.push(maskBit | 127);
    const big = BigInt(len);
    for (let i = 7; i >= 0; i--) head.push(Number((big >> BigInt(8 * i)) & 0xffn));
  }
  let body = payload;
  if (opts.masked) {
    const key = nextKey();
    head.push(...key);
    body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  }
  return Buffer.concat([Buffer.from(head), body]);
}

const TEXT = 1, BINARY = 2, CONT = 0, CLOSE = 8, PING = 9, PONG = 10;

function closeBody(code, reason = '') {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.from(reason)]);
}

// ---- writing ----

function write(target, name, bytes) {
  const dir = path.join(CORPUS, target);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), bytes);
}

// fuzz_frame: [flags][n][splits][data]; flags bit 0 expect_masked, 1 allow_rsv1, 2 copy mode.
function frameSeed(name, flags, splits, data) {
  write('fuzz_frame', name, Buffer.concat([Buffer.from([flags, splits.length, ...splits]), data]));
}

// fuzz_conn: [flags][max][n][m][splits][actions][data]; flags bit 0 server, 1 skip_utf8,
// 2 auto_pong, 3 track_fragments.
function connSeed(name, flags, max, splits, actions, data) {
  write(
    'fuzz_conn',
    name,
    Buffer.concat([
      Buffer.from([flags, max, splits.length, actions.length, ...splits, ...actions]),
      data,
    ]),
  );
}

// fuzz_utf8: [flags][n][splits][data]; flags bits 3-4 cap the SIMD level (0 DFA, 1, 2).
function utf8Seed(name, splits, data, level) {
  const flags = level << 3;
  write('fuzz_utf8', name, Buffer.concat([Buffer.from([flags, splits.length, ...splits]), data]));
}

// Seeds are written over in place: other files in corpus/ (fuzz_inflate's seeds, inputs kept
// from fuzzing runs) are left alone.

// ---- fuzz_frame seeds ----
{
  const m = { masked: true };
  const S = [1, 0, 2, 3]; // tiny pieces: headers and keys cut everywhere
  const L = [0xc1]; // one large piece
  const seeds = {
    'text-masked': [1, frame(TEXT, 'hello', m)],
    'text-unmasked': [0, frame(TEXT, 'hello')],
    'binary-len126': [1, frame(BINARY, Buffer.alloc(300, 7), m)],
    'binary-len127-short': [1, frame(BINARY, 'abc', { ...m, lenForm: 127 })],
    'len126-nonminimal': [0, frame(BINARY, 'xyz', { lenForm: 126 })],
    'empty-frames': [1, Buffer.concat([frame(TEXT, '', { ...m, fin: false }), frame(CONT, '', m)])],
    'fragmented': [
      1,
      Buffer.concat([
        frame(TEXT, 'ab', { ...m, fin: false }),
        frame(PING, 'p', m),
        frame(CONT, 'cd', m),
      ]),
    ],
    'controls': [
      0,
      Buffer.concat([frame(PING, 'x'), frame(PONG, ''), frame(CLOSE, closeBody(1000, 'bye'))]),
    ],
    'control-125': [1, frame(PING, Buffer.alloc(125, 1), m)],
    'rsv1-allowed': [3, frame(TEXT, 'z', { ...m, rsv: 0x40 })],
    'rsv1-refused': [1, frame(TEXT, 'z', { ...m, rsv: 0x40 })],
    'rsv1-continuation': [3, frame(CONT, 'z', { ...m, rsv: 0x40 })],
    'rsv2': [1, frame(TEXT, 'z', { ...m, rsv: 0x20 })],
    'rsv3': [1, frame(TEXT, 'z', { ...m, rsv: 0x10 })],
    'opcode-3': [1, frame(3, 'z', m)],
    'opcode-b': [1, frame(0xb, 'z', m)],
    'control-no-fin': [1, frame(PING, 'z', { ...m, fin: false })],
    'control-126': [1, frame(PING, Buffer.alloc(126), m)],
    'mask-expected': [1, frame(TEXT, 'z')],
    'mask-unexpected': [0, frame(TEXT, 'z', m)],
    'length-msb': [0, frame(BINARY, '', { len: 2n ** 63n })],
    'length-unsafe': [0, frame(BINARY, '', { len: 2n ** 53n })],
    'length-max-safe': [0, frame(BINARY, 'abc', { len: 2n ** 53n - 1n })],
    'truncated': [1, frame(BINARY, Buffer.alloc(40, 3), m).subarray(0, 30)],
    'copy-mode': [5, Buffer.concat([frame(BINARY, Buffer.alloc(70, 9), m), frame(TEXT, 'hi', m)])],
    'many-small': [
      1,
      Buffer.concat(Array.from({ length: 12 }, (_, i) => frame(BINARY, Buffer.alloc(i, i), m))),
    ],
  };
  for (const [name, [flags, data]] of Object.entries(seeds)) {
    frameSeed(name, flags, [], data);
    frameSeed(name + '-split', flags, S, data);
    if (data.length > 64) frameSeed(name + '-large', flags | 0x08, L, data);
  }
}

// ---- fuzz_conn seeds ----
{
  const SERVER = 1, SKIP = 2, PONGS = 4, TRACK = 8;
  const m = { masked: true };
  const um = {};
  // Actions: 0x00 none, 0x11 send text fin, 0x01 text no fin, 0x0a binary reserve, 0x03 ping,
  // 0x0b pong, 0x0c close 1000, 0x05 detach, 0x06 clear, 0x47 header-only (server) / ensure,
  // 0x50 prebuilt frames (server).
  const A = [0x11, 0x05, 0x50, 0x03, 0x01, 0x03, 0x19, 0x06, 0x47, 0x08, 0x0c, 0x05];
  const S = [1, 2, 0, 5, 3];
  const seeds = (o) => ({
    text: frame(TEXT, 'hello', o),
    'text-utf8': frame(TEXT, 'h\u00e9llo \u20ac \u{1F600}', o),
    binary: frame(BINARY, Buffer.from([0, 1, 2, 255]), o),
    'empty-message': frame(TEXT, '', o),
    fragmented: Buffer.concat([
      frame(TEXT, 'frag', { ...o, fin: false }),
      frame(PING, 'mid', o),
      frame(CONT, '', { ...o, fin: false }),
      frame(CONT, 'ment', o),
    ]),
    'utf8-across-frames': Buffer.concat([
      frame(TEXT, Buffer.from([0xe2, 0x82]), { ...o, fin: false }),
      frame(CONT, Buffer.from([0xac]), o),
    ]),
    'utf8-invalid': frame(TEXT, Buffer.from([0x61, 0xed, 0xa0, 0x80]), o),
    'utf8-truncated': frame(TEXT, Buffer.from([0x61, 0xe2, 0x82]), o),
    'two-then-ping': Buffer.concat([
      frame(TEXT, 'a', o),
      frame(BINARY, 'b', o),
      frame(PING, 'p', o),
      frame(PONG, 'q', o),
    ]),
    'message-then-error': Buffer.concat([frame(TEXT, 'a', o), frame(3, 'x', o)]),
    'close-reason': frame(CLOSE, closeBody(1000, 'bye'), o),
    'close-empty': frame(CLOSE, '', o),
    'close-one-byte': frame(CLOSE, Buffer.from([3]), o),
    'close-1005': frame(CLOSE, closeBody(1005), o),
    'close-4999': frame(CLOSE, closeBody(4999, '\u00e9'), o),
    'close-bad-utf8': frame(CLOSE, Buffer.concat([closeBody(1000), Buffer.from([0xff])]), o),
    'close-then-more': Buffer.concat([frame(CLOSE, closeBody(1001), o), frame(TEXT, 'late', o)]),
    'continuation-first': frame(CONT, 'x', o),
    'text-in-message': Buffer.concat([frame(TEXT, 'a', { ...o, fin: false }), frame(TEXT, 'b', o)]),
    'big-126': frame(BINARY, Buffer.alloc(1000, 0x41), o),
    'huge-announced': frame(BINARY, 'abc', { ...o, len: 2 ** 40 }),
    'ping-125': frame(PING, Buffer.alloc(125, 0x70), o),
  });
  for (const [side, flags, o] of [['server', SERVER, m], ['client', 0, um]]) {
    for (const [name, data] of Object.entries(seeds(o))) {
      connSeed(`${side}-${name}`, flags | PONGS, 0, [], [], data);
      connSeed(`${side}-${name}-split`, flags | TRACK, 0, S, A, data);
    }
    const many = Buffer.concat(
      Array.from({ length: 6 }, (_, i) =>
        frame(i === 0 ? TEXT : CONT, 'x'.repeat(i), { ...o, fin: i === 5 }),
      ),
    );
    connSeed(`${side}-max-payload`, flags, 3, [], A, frame(TEXT, 'toolong', o));
    connSeed(`${side}-max-payload-0`, flags, 0x80 | 0, S, [], frame(TEXT, 'ok', o));
    const badText = frame(TEXT, Buffer.from([0xff, 0xfe]), o);
    connSeed(`${side}-skip-utf8`, flags | SKIP, 0, S, [], badText);
    connSeed(`${side}-track`, flags | TRACK | PONGS, 0, [4], A, Buffer.concat([
      frame(TEXT, 'one', { ...o, fin: false }),
      frame(CONT, 'two', { ...o, fin: false }),
      frame(PING, '', o),
      frame(CONT, 'three', o),
    ]));
    connSeed(`${side}-many`, flags, 0, [1], [], many);
  }
}

// ---- fuzz_utf8 seeds ----
{
  const seqs = {
    ascii: Buffer.from('plain ascii text'),
    'ascii-long-then-multi': Buffer.from('a'.repeat(40) + '\u00e9' + 'b'.repeat(33) + '\u{10FFFF}'),
    boundaries: Buffer.from('\u007f\u0080\u07ff\u0800\ud7ff\ue000\uffff\u{10000}\u{10FFFF}'),
    mixed: Buffer.from('h\u00e9llo w\u00f6rld \u20ac\u{1F600} \u4e2d\u6587'),
    'overlong-2': Buffer.from([0xc0, 0x80]),
    'overlong-c1': Buffer.from([0xc1, 0xbf]),
    'overlong-3': Buffer.from([0xe0, 0x80, 0x80]),
    'overlong-3-max': Buffer.from([0xe0, 0x9f, 0xbf]),
    'overlong-4': Buffer.from([0xf0, 0x8f, 0xbf, 0xbf]),
    surrogate: Buffer.from([0xed, 0xa0, 0x80]),
    'surrogate-last': Buffer.from([0xed, 0xbf, 0xbf]),
    'above-max': Buffer.from([0xf4, 0x90, 0x80, 0x80]),
    f5: Buffer.from([0xf5, 0x80, 0x80, 0x80]),
    ff: Buffer.from([0x61, 0xff]),
    'lone-continuation': Buffer.from([0x80]),
    truncated: Buffer.from([0x61, 0xf0, 0x9f, 0x98]),
    'bad-second': Buffer.from([0xe2, 0x28, 0xa1]),
    'bad-after-ascii-run': Buffer.concat([Buffer.from('x'.repeat(70)), Buffer.from([0xc3, 0x28])]),
  };
  for (const [name, data] of Object.entries(seqs)) {
    for (const level of [0, 1, 2]) utf8Seed(`${name}-l${level}`, [], data, level);
    utf8Seed(name + '-split', [1, 2, 0, 3], data, 2);
  }
}

// ---- fuzz_http_request seeds ----
// [max_headers][max_header_size byte: 0-63 as is, 64-254 (b - 63) * 128, 255 none][n][splits][data]
function httpSeed(name, maxHeaders, sizeByte, splits, data) {
  write(
    'fuzz_http_request',
    name,
    Buffer.concat([Buffer.from([maxHeaders, sizeByte, splits.length, ...splits]), Buffer.from(data, 'latin1')])
  );
}
{
  const browser =
    'GET /chat?room=1 HTTP/1.1\r\nHost: localhost:3200\r\nConnection: Upgrade\r\n' +
    'Pragma: no-cache\r\nUpgrade: websocket\r\nOrigin: http://localhost:3201\r\n' +
    'Sec-WebSocket-Version: 13\r\nAccept-Language: zh-CN,zh;q=0.9\r\n' +
    'Sec-WebSocket-Key: BcVbtgbkG+YnCD9NRv23qA==\r\n' +
    'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n';
  const frame = '\x81\x85\x01\x02\x03\x04ig\x6f\x68n';
  const heads = {
    browser,
    'browser-then-frame': browser + frame,
    minimal: 'GET / HTTP/1.1\r\n\r\n',
    'http10': 'GET / HTTP/1.0\r\nHost: a\r\n\r\n',
    'ows-empty': 'GET * HTTP/1.1\r\nA:\r\nB: \t \r\nC:\t x y \t\r\nx-!#$%&\'*+-.^_`|~: \x80\xff\r\n\r\n',
    'absolute-form': 'OPTIONS http://h:1/p?q=\xe9 HTTP/1.9\r\nHost: h\r\n\r\n',
    'bare-lf': 'GET / HTTP/1.1\nHost: a\n\n',
    'bare-cr': 'GET / HTTP/1.1\r\nA: b\rc\r\n\r\n',
    'obs-fold': 'GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n',
    'space-before-colon': 'GET / HTTP/1.1\r\nA : b\r\n\r\n',
    'no-colon': 'GET / HTTP/1.1\r\nA\r\n\r\n',
    'nul-value': 'GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n',
    'http2': 'GET / HTTP/2.0\r\n\r\n',
    'http09': 'GET /\r\n\r\n',
    'tls-hello': '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
    'double-space': 'GET  / HTTP/1.1\r\n\r\n',
    'slowloris': 'GET / HTTP/1.1\r\nX-Slow: ' + 'z'.repeat(600),
  };
  for (const [name, data] of Object.entries(heads)) {
    httpSeed(name, 100, 255, [], data);
    httpSeed(name + '-split', 100, 255, [1, 3, 0, 7, 2], data);
  }
  // Limits: a head one byte over a 512-byte limit, at it, and too many headers.
  const padded = (size) => {
    const start = 'GET / HTTP/1.1\r\nX: ';
    return start + 'a'.repeat(size - start.length - 4) + '\r\n\r\n';
  };
  httpSeed('size-at-limit', 100, 63 + 4, [], padded(512));
  httpSeed('size-over-limit', 100, 63 + 4, [5, 60], padded(513));
  httpSeed('size-tiny-limit', 100, 20, [], browser);
  let many = 'GET / HTTP/1.1\r\n';
  for (let i = 0; i < 101; i++) many += `H${i}: ${i}\r\n`;
  httpSeed('headers-101', 100, 255, [], many + '\r\n');
  httpSeed('headers-over-3', 3, 255, [9], browser);
  httpSeed('headers-none-allowed', 0, 255, [], 'GET / HTTP/1.1\r\n\r\n');
}

// ---- fuzz_conn_deflate seeds ----
// [flags][windows][levels][max][async][n][m][splits][actions][script]: the script is the peer's
// messages, [kind][len][bytes], which the target compresses itself (see fuzz_conn_deflate.c).
function deflateSeed(name, header, splits, actions, messages) {
  write(
    'fuzz_conn_deflate',
    name,
    Buffer.concat([
      Buffer.from([...header, splits.length, actions.length, ...splits, ...actions]),
      ...messages.map(([kind, bytes]) => Buffer.concat([Buffer.from([kind, bytes.length]), Buffer.from(bytes)])),
    ]),
  );
}
{
  const SERVER = 1, PEER_RESET = 2, OUR_RESET = 4, SHARED = 8, ASYNC = 16, TRACK = 32, MAX = 128;
  const BINARY = 1, COMPRESSED = 2, FRAMES = (n) => (n - 1) << 2, PINGS = 16, REPEAT = 32, LAST = 64;
  const chat = '{"type":"chat","room":"lobby","user":"ada","text":"hello, hello again"}';
  const talk = [
    [COMPRESSED, chat],
    [COMPRESSED, chat],
    [COMPRESSED | BINARY, chat.slice(10)],
    [COMPRESSED | FRAMES(3) | PINGS, chat + chat],
    [0, 'plain text between compressed ones'],
    [COMPRESSED | REPEAT, chat.slice(0, 40)],
    [FRAMES(2) | PINGS, 'two plain frames'],
  ];
  // Actions: 0x01 compressed send, 0x11 the same, 0x00 park after 0 sweeps, 0x08 after 1,
  // 0x03 a shared (topic) frame, 0x02 plain frame without FIN, 0x12 with FIN, 0x05 drain,
  // 0x07 park + drain, 0x04 ping, 0x0e park after 1 sweep.
  const A = [0x01, 0x00, 0x11, 0x03, 0x02, 0x12, 0x05, 0x07, 0x01, 0x0e, 0x04, 0x09];
  const S = [1, 7, 0xc1, 3];
  const modes = {
    takeover: 0,
    'peer-reset': PEER_RESET,
    'our-reset': OUR_RESET,
    'both-reset-shared': PEER_RESET | OUR_RESET | SHARED,
    async: ASYNC,
    'async-shared': ASYNC | PEER_RESET | SHARED,
    track: TRACK,
    max: MAX,
  };
  for (const [name, mode] of Object.entries(modes)) {
    for (const [side, flags] of [['server', SERVER], ['client', 0]]) {
      // windows: peer 15 (7) and ours 15 (6 << 3); max 64 * 2 + 1 = 129 bytes; async from 17.
      deflateSeed(`${side}-${name}`, [flags | mode, 7 | (6 << 3), 1 << 2, 2, 2], S, A, talk);
    }
  }
  deflateSeed('server-windows-8-9', [SERVER, 0, 0, 0, 0], S, A, talk);
  deflateSeed('server-stored-blocks', [SERVER, 7 | (6 << 3), 3 | (3 << 2), 0, 0], [], A, talk);
  deflateSeed('server-garbage-last', [SERVER, 7, 0, 0, 0], [], [0x05], [
    [COMPRESSED, chat],
    [COMPRESSED | LAST, [0x4b, 0x4c, 0x04, 0x00]],
  ]);
  deflateSeed('server-close-last', [SERVER, 7, 0, 0, 0], [2], [0x01, 0x05], [
    [COMPRESSED, chat],
    [LAST, 'bye'],
  ]);
}

for (const t of fs.readdirSync(CORPUS)) {
  console.log(`${t}: ${fs.readdirSync(path.join(CORPUS, t)).length} seeds`);
}
