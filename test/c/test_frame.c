/* Unit tests for frame.c: header encoding (sizes and exact bytes), every parse error with its
 * frame_error, and split invariance: any split of a stream gives the same frames and payloads. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "codec/frame.h"
#include "codec/mask.h"

static uint32_t next_random(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* Feeds buf[0..len) to a fresh parser until it stops; returns the last event and stores the
 * bytes consumed in *used. */
static frame_event parse_until_stop(frame_parser *p, uint8_t *buf, size_t len, size_t *used) {
  size_t pos = 0;
  frame_event ev;
  for (;;) {
    size_t consumed;
    uint8_t *payload;
    size_t payload_len;
    ev = frame_parse(p, buf + pos, len - pos, &consumed, &payload, &payload_len);
    pos += consumed;
    if (ev == FRAME_NEED_MORE || ev == FRAME_ERROR) break;
  }
  *used = pos;
  return ev;
}

/* ---- encoder ---- */

static void test_header_encode_bytes(void) {
  static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  static const struct {
    uint64_t len;
    size_t size; /* unmasked */
    uint8_t bytes[10];
  } cases[] = {
      {0, 2, {0x82, 0x00}},
      {125, 2, {0x82, 0x7D}},
      {126, 4, {0x82, 0x7E, 0x00, 0x7E}},
      {65535, 4, {0x82, 0x7E, 0xFF, 0xFF}},
      {65536, 10, {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
      {UINT64_C(1) << 32, 10, {0x82, 0x7F, 0, 0, 0, 0x01, 0, 0, 0, 0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t out[FRAME_MAX_HEADER];
    CHECKF(frame_header_size(cases[i].len, false) == cases[i].size, "len %llu",
           (unsigned long long)cases[i].len);
    CHECKF(frame_header_size(cases[i].len, true) == cases[i].size + 4, "len %llu masked",
           (unsigned long long)cases[i].len);

    memset(out, 0xEE, sizeof out);
    CHECK_EQ_INT(frame_header_encode(out, true, false, OP_BINARY, cases[i].len, NULL),
                 cases[i].size);
    CHECK_MEM(out, cases[i].bytes, cases[i].size);
    CHECK_EQ_INT(out[cases[i].size], 0xEE); /* nothing written past the header */

    memset(out, 0xEE, sizeof out);
    CHECK_EQ_INT(frame_header_encode(out, true, false, OP_BINARY, cases[i].len, key),
                 cases[i].size + 4);
    CHECK_EQ_INT(out[0], cases[i].bytes[0]);
    CHECK_EQ_INT(out[1], cases[i].bytes[1] | 0x80);
    CHECK_MEM(out + 2, cases[i].bytes + 2, cases[i].size - 2);
    CHECK_MEM(out + cases[i].size, key, 4);
  }

  /* The first byte: FIN, RSV1 and opcode bits. */
  uint8_t out[FRAME_MAX_HEADER];
  frame_header_encode(out, false, false, OP_TEXT, 0, NULL);
  CHECK_EQ_INT(out[0], 0x01);
  frame_header_encode(out, true, true, OP_TEXT, 0, NULL);
  CHECK_EQ_INT(out[0], 0xC1);
  frame_header_encode(out, false, false, OP_CONTINUATION, 0, NULL);
  CHECK_EQ_INT(out[0], 0x00);
  frame_header_encode(out, true, false, OP_CLOSE, 0, NULL);
  CHECK_EQ_INT(out[0], 0x88);
  frame_header_encode(out, true, false, OP_PONG, 0, NULL);
  CHECK_EQ_INT(out[0], 0x8A);
}

static void test_header_round_trip(void) {
  static const uint64_t lengths[] = {
      0, 1, 125, 126, 127, 65535, 65536, 65537, UINT64_C(1) << 32, FRAME_MAX_SAFE_LENGTH};
  static const uint8_t opcodes[] = {OP_CONTINUATION, OP_TEXT, OP_BINARY};
  uint32_t seed = 0xABCDEF01u;
  for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
    for (int masked = 0; masked < 2; masked++) {
      for (size_t oi = 0; oi < sizeof opcodes / sizeof opcodes[0]; oi++) {
        for (int bits = 0; bits < 4; bits++) {
          bool fin = bits & 1, rsv1 = (bits & 2) && opcodes[oi] != OP_CONTINUATION;
          uint32_t r = next_random(&seed);
          uint8_t key[4] = {(uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24)};
          uint8_t buf[FRAME_MAX_HEADER];
          size_t n = frame_header_encode(buf, fin, rsv1, opcodes[oi], lengths[li],
                                         masked ? key : NULL);
          frame_parser p;
          frame_parser_init(&p, masked, true);
          size_t used;
          uint8_t *payload;
          size_t payload_len;
          frame_event ev = frame_parse(&p, buf, n, &used, &payload, &payload_len);
          if (!CHECKF(ev == FRAME_HEADER && used == n, "len %llu masked %d opcode %d bits %d",
                      (unsigned long long)lengths[li], masked, opcodes[oi], bits))
            continue;
          CHECK_EQ_INT(p.frame.fin, fin);
          CHECK_EQ_INT(p.frame.rsv1, rsv1);
          CHECK_EQ_INT(p.frame.opcode, opcodes[oi]);
          CHECK_EQ_INT(p.frame.masked, masked);
          CHECK(p.frame.payload_len == lengths[li]);
          if (masked) CHECK_MEM(p.frame.mask_key, key, 4);
        }
      }
    }
  }

  /* Control frames up to 125 bytes. */
  for (uint8_t op = OP_CLOSE; op <= OP_PONG; op++) {
    uint8_t buf[FRAME_MAX_HEADER];
    size_t n = frame_header_encode(buf, true, false, op, 125, NULL);
    frame_parser p;
    frame_parser_init(&p, false, false);
    size_t used;
    CHECKF(parse_until_stop(&p, buf, n, &used) == FRAME_NEED_MORE && used == n, "op %d", op);
    CHECK_EQ_INT(p.frame.opcode, op);
    CHECK(p.frame.payload_len == 125);
  }
}

/* ---- errors ---- */

typedef struct {
  const char *name;
  bool expect_masked;
  bool allow_rsv1;
  uint8_t bytes[FRAME_MAX_HEADER];
  size_t len;
  frame_error error;
  size_t error_after; /* bytes the parser needs to see before it fails */
} error_case;

#define M 0x80 /* the mask bit in byte 1 */
/* clang-format off */
static const error_case error_cases[] = {
    {"RSV1 without extension", true, false, {0xC1, M | 0}, 6, FRAME_ERR_RSV1, 2},
    {"RSV1 on continuation", true, true, {0x40, M | 0}, 6, FRAME_ERR_RSV1, 2},
    {"RSV1 on ping", true, true, {0xC9, M | 0}, 6, FRAME_ERR_RSV1, 2},
    {"RSV1 on close", true, true, {0xC8, M | 0}, 6, FRAME_ERR_RSV1, 2},
    {"RSV2", true, true, {0xA1, M | 0}, 6, FRAME_ERR_RSV23, 2},
    {"RSV3", true, true, {0x91, M | 0}, 6, FRAME_ERR_RSV23, 2},
    {"RSV2 on client parser", false, false, {0xA2, 0}, 2, FRAME_ERR_RSV23, 2},
    {"opcode 3", true, false, {0x83, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 4", true, false, {0x84, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 5", true, false, {0x85, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 6", true, false, {0x86, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 7", true, false, {0x87, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 11", true, false, {0x8B, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 12", true, false, {0x8C, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 13", true, false, {0x8D, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 14", true, false, {0x8E, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 15", true, false, {0x8F, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"opcode 7 without FIN", true, false, {0x07, M | 0}, 6, FRAME_ERR_OPCODE, 2},
    {"ping without FIN", true, false, {0x09, M | 0}, 6, FRAME_ERR_CONTROL_FIN, 2},
    {"close without FIN", true, false, {0x08, M | 0}, 6, FRAME_ERR_CONTROL_FIN, 2},
    {"pong without FIN", false, false, {0x0A, 0}, 2, FRAME_ERR_CONTROL_FIN, 2},
    {"ping len7 126", true, false, {0x89, M | 126, 0, 126}, 8, FRAME_ERR_CONTROL_LENGTH, 2},
    {"close len7 127", true, false, {0x88, M | 127, 0, 0, 0, 0, 0, 0, 0, 200}, 14,
     FRAME_ERR_CONTROL_LENGTH, 2},
    {"unmasked to server", true, false, {0x81, 5}, 2, FRAME_ERR_MASK_EXPECTED, 2},
    {"unmasked control to server", true, false, {0x89, 0}, 2, FRAME_ERR_MASK_EXPECTED, 2},
    {"masked to client", false, false, {0x81, M | 5}, 6, FRAME_ERR_MASK_UNEXPECTED, 2},
    {"64-bit length MSB", true, false, {0x82, M | 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, 14,
     FRAME_ERR_LENGTH_MSB, 14},
    {"64-bit length all ones", false, false, {0x82, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
     0xFF, 0xFF}, 10, FRAME_ERR_LENGTH_MSB, 10},
    {"64-bit length 2^53", true, false, {0x82, M | 127, 0, 0x20, 0, 0, 0, 0, 0, 0}, 14,
     FRAME_ERR_LENGTH_UNSAFE, 14},
    {"64-bit length 2^62", false, false, {0x82, 127, 0x40, 0, 0, 0, 0, 0, 0, 0}, 10,
     FRAME_ERR_LENGTH_UNSAFE, 10},
};
/* clang-format on */
#undef M

static void check_error_case(const error_case *c, size_t piece) {
  frame_parser p;
  frame_parser_init(&p, c->expect_masked, c->allow_rsv1);
  uint8_t buf[FRAME_MAX_HEADER];
  memcpy(buf, c->bytes, c->len);
  size_t pos = 0, seen_error_at = 0;
  frame_event ev = FRAME_NEED_MORE;
  while (pos < c->len) {
    size_t n = c->len - pos < piece ? c->len - pos : piece;
    size_t used;
    ev = parse_until_stop(&p, buf + pos, n, &used);
    pos += used;
    if (ev == FRAME_ERROR) {
      seen_error_at = pos;
      break;
    }
    if (!CHECKF(used == n, "%s: piece %zu: consumed %zu of %zu", c->name, piece, used, n)) return;
  }
  if (!CHECKF(ev == FRAME_ERROR, "%s (piece %zu): event %d", c->name, piece, ev)) return;
  CHECKF(p.error == c->error, "%s (piece %zu): error %d, want %d", c->name, piece, p.error,
         c->error);
  /* With pieces of one byte, the error comes exactly when its deciding byte arrives. */
  if (piece == 1)
    CHECKF(seen_error_at == c->error_after, "%s: failed after %zu bytes, want %zu", c->name,
           seen_error_at, c->error_after);

  /* The state is final: any input, even a valid frame, gives FRAME_ERROR and consumes none. */
  uint8_t good[6] = {0x81, 0x80, 0, 0, 0, 0};
  size_t used;
  uint8_t *payload = (uint8_t *)1;
  size_t payload_len = 99;
  CHECKF(frame_parse(&p, good, sizeof good, &used, &payload, &payload_len) == FRAME_ERROR &&
             used == 0 && payload == NULL && payload_len == 0,
         "%s: not final", c->name);
  CHECKF(frame_parse(&p, good, 0, &used, &payload, &payload_len) == FRAME_ERROR,
         "%s: not final on empty input", c->name);
  CHECK(p.error == c->error);
}

static void test_errors(void) {
  for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
    check_error_case(&error_cases[i], FRAME_MAX_HEADER);
    check_error_case(&error_cases[i], 1);
    check_error_case(&error_cases[i], 3);
  }
}

static void test_error_names_culprit(void) {
  /* On FRAME_ERROR, frame.opcode and (for control lengths) frame.payload_len name the cause. */
  frame_parser p;
  size_t used;
  uint8_t op7[] = {0x87, 0x80};
  frame_parser_init(&p, true, false);
  CHECK(parse_until_stop(&p, op7, sizeof op7, &used) == FRAME_ERROR);
  CHECK_EQ_INT(p.frame.opcode, 7);

  uint8_t ping127[] = {0x89, 0xFF};
  frame_parser_init(&p, true, false);
  CHECK(parse_until_stop(&p, ping127, sizeof ping127, &used) == FRAME_ERROR);
  CHECK_EQ_INT(p.frame.opcode, OP_PING);
  CHECK_EQ_INT(p.frame.payload_len, 127);
}

static void test_length_limits_accepted(void) {
  /* 2^53 - 1 is the largest length accepted; RSV1 on a first data frame is fine with
   * allow_rsv1; a non-minimal length encoding is accepted (as ws does). */
  uint8_t max_safe[] = {0x82, 0x7F, 0x00, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  frame_parser p;
  frame_parser_init(&p, false, false);
  size_t used;
  uint8_t *payload;
  size_t payload_len;
  CHECK(frame_parse(&p, max_safe, sizeof max_safe, &used, &payload, &payload_len) == FRAME_HEADER);
  CHECK_EQ_INT(used, sizeof max_safe);
  CHECK(p.frame.payload_len == FRAME_MAX_SAFE_LENGTH);
  uint8_t some[3] = {1, 2, 3};
  CHECK(frame_parse(&p, some, 3, &used, &payload, &payload_len) == FRAME_PAYLOAD);
  CHECK(used == 3 && payload == some && payload_len == 3);
  CHECK(p.payload_done == 3);

  uint8_t rsv1_text[] = {0xC1, 0x00};
  frame_parser_init(&p, false, true);
  CHECK(frame_parse(&p, rsv1_text, 2, &used, &payload, &payload_len) == FRAME_HEADER);
  CHECK(p.frame.rsv1 && p.frame.opcode == OP_TEXT);

  uint8_t long_short[] = {0x81, 0x7E, 0x00, 0x03, 'a', 'b', 'c'};
  frame_parser_init(&p, false, false);
  CHECK(frame_parse(&p, long_short, sizeof long_short, &used, &payload, &payload_len) ==
        FRAME_HEADER);
  CHECK(used == 4 && p.frame.payload_len == 3);

  /* Empty input in the header state asks for more and consumes nothing. */
  frame_parser_init(&p, false, false);
  CHECK(frame_parse(&p, some, 0, &used, &payload, &payload_len) == FRAME_NEED_MORE);
  CHECK(used == 0);
}

static void test_payload_unmasked_in_place(void) {
  /* RFC 6455 5.7: a masked "Hello" from a client. */
  uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  frame_parser p;
  frame_parser_init(&p, true, false);
  size_t used;
  uint8_t *payload;
  size_t payload_len;
  CHECK(frame_parse(&p, frame, sizeof frame, &used, &payload, &payload_len) == FRAME_HEADER);
  CHECK(used == 6 && p.frame.masked && p.frame.fin && p.frame.payload_len == 5);
  CHECK(frame_parse(&p, frame + 6, 5, &used, &payload, &payload_len) == FRAME_PAYLOAD);
  CHECK(used == 5 && payload == frame + 6 && payload_len == 5);
  CHECK_MEM(payload, "Hello", 5);
  CHECK(frame_parse(&p, frame + 11, 0, &used, &payload, &payload_len) == FRAME_END);
  CHECK(used == 0);
  CHECK(frame_parse(&p, frame + 11, 0, &used, &payload, &payload_len) == FRAME_NEED_MORE);
}

/* ---- split invariance ---- */

typedef struct {
  bool fin, rsv1, masked;
  uint8_t opcode;
  uint8_t key[4];
  uint64_t len;
  size_t offset; /* of the unmasked payload in the stream's plain-text copy */
} gen_frame;

typedef struct {
  uint8_t *wire; /* encoded (masked) stream, never modified */
  size_t wire_len;
  uint8_t *plain; /* every frame's unmasked payload, back to back */
  size_t plain_len;
  gen_frame *frames;
  size_t n_frames;
} stream;

typedef struct {
  gen_frame *frames; /* offset here indexes got */
  size_t n_frames, cap_frames;
  uint8_t *got;
  size_t got_len, got_cap;
  bool in_frame;
  int order_errors; /* events out of order: payload outside a frame, header inside one */
} recording;

static size_t random_size(uint32_t *seed, bool control) {
  static const size_t edges[] = {0, 1, 2, 3, 4, 5, 7, 8, 124, 125, 126, 127, 65535, 65536};
  uint32_t r = next_random(seed) % 1000;
  if (control) return r < 300 ? edges[next_random(seed) % 10] : next_random(seed) % 126;
  if (r < 200) return edges[next_random(seed) % 12];
  if (r < 212) return edges[12 + next_random(seed) % 2]; /* 65535 or 65536 */
  if (r < 215) return 65537 + next_random(seed) % 40000;
  if (r < 800) return next_random(seed) % 64;
  return next_random(seed) % 2000;
}

static void grow(uint8_t **p, size_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  *p = realloc(*p, c);
  if (*p == NULL) abort();
  *cap = c;
}

static void stream_add(stream *s, size_t *wire_cap, size_t *plain_cap, size_t *frames_cap,
                       uint32_t *seed, bool fin, uint8_t opcode, size_t len) {
  if (s->n_frames == *frames_cap) {
    *frames_cap = *frames_cap ? *frames_cap * 2 : 256;
    s->frames = realloc(s->frames, *frames_cap * sizeof *s->frames);
    if (s->frames == NULL) abort();
  }
  gen_frame *f = &s->frames[s->n_frames++];
  uint32_t r = next_random(seed);
  f->fin = fin;
  f->opcode = opcode;
  f->rsv1 = (opcode == OP_TEXT || opcode == OP_BINARY) && (next_random(seed) & 1);
  f->masked = true;
  memcpy(f->key, &r, 4);
  if (next_random(seed) % 8 == 0) memset(f->key, 0, 4); /* a zero key is legal too */
  f->len = len;
  f->offset = s->plain_len;

  grow(&s->plain, plain_cap, s->plain_len + len);
  for (size_t i = 0; i < len; i++) s->plain[s->plain_len + i] = (uint8_t)next_random(seed);
  grow(&s->wire, wire_cap, s->wire_len + FRAME_MAX_HEADER + len);
  s->wire_len += frame_header_encode(s->wire + s->wire_len, fin, f->rsv1, opcode, len, f->key);
  mask_copy(s->wire + s->wire_len, s->plain + s->plain_len, len, f->key, 0);
  s->wire_len += len;
  s->plain_len += len;
}

static uint8_t random_control(uint32_t *seed) {
  static const uint8_t ops[] = {OP_PING, OP_PONG, OP_CLOSE};
  return ops[next_random(seed) % 3];
}

/* The seed is drawn in a fixed order (never twice in one argument list, whose evaluation
 * order differs between compilers), so every build tests the same stream. */
static void add_control(stream *s, size_t *wire_cap, size_t *plain_cap, size_t *frames_cap,
                        uint32_t *seed) {
  uint8_t op = random_control(seed);
  size_t len = random_size(seed, true);
  stream_add(s, wire_cap, plain_cap, frames_cap, seed, true, op, len);
}

/* About `target` frames: single-frame messages, fragmented ones (control frames may sit
 * between their fragments) and lone control frames. */
static void stream_generate(stream *s, size_t target, uint32_t seed) {
  memset(s, 0, sizeof *s);
  size_t wire_cap = 0, plain_cap = 0, frames_cap = 0;
  while (s->n_frames < target) {
    uint32_t r = next_random(&seed) % 10;
    if (r < 2) {
      add_control(s, &wire_cap, &plain_cap, &frames_cap, &seed);
      continue;
    }
    uint8_t op = next_random(&seed) & 1 ? OP_TEXT : OP_BINARY;
    size_t fragments = r < 6 ? 1 : 2 + next_random(&seed) % 5;
    for (size_t i = 0; i < fragments; i++) {
      if (i > 0 && next_random(&seed) % 4 == 0)
        add_control(s, &wire_cap, &plain_cap, &frames_cap, &seed);
      size_t len = random_size(&seed, false);
      stream_add(s, &wire_cap, &plain_cap, &frames_cap, &seed, i + 1 == fragments,
                 i == 0 ? op : OP_CONTINUATION, len);
    }
  }
}

static void stream_free(stream *s) {
  free(s->wire);
  free(s->plain);
  free(s->frames);
}

static void recording_free(recording *r) {
  free(r->frames);
  free(r->got);
}

/* Parses one piece to its end, recording every event. Returns false on an unexpected stop. */
static bool record_piece(frame_parser *p, recording *rec, uint8_t *piece, size_t len) {
  size_t pos = 0;
  for (;;) {
    size_t used;
    uint8_t *payload;
    size_t payload_len;
    frame_event ev = frame_parse(p, piece + pos, len - pos, &used, &payload, &payload_len);
    if (used > len - pos) return false;
    pos += used;
    switch (ev) {
      case FRAME_NEED_MORE: return pos == len;
      case FRAME_ERROR: return false;
      case FRAME_HEADER:
        if (rec->in_frame) rec->order_errors++;
        rec->in_frame = true;
        if (rec->n_frames == rec->cap_frames) {
          rec->cap_frames = rec->cap_frames ? rec->cap_frames * 2 : 256;
          rec->frames = realloc(rec->frames, rec->cap_frames * sizeof *rec->frames);
          if (rec->frames == NULL) abort();
        }
        gen_frame *f = &rec->frames[rec->n_frames++];
        f->fin = p->frame.fin;
        f->rsv1 = p->frame.rsv1;
        f->masked = p->frame.masked;
        f->opcode = p->frame.opcode;
        memcpy(f->key, p->frame.mask_key, 4);
        f->len = p->frame.payload_len;
        f->offset = rec->got_len;
        break;
      case FRAME_PAYLOAD:
        if (!rec->in_frame || payload_len == 0 || payload != piece + pos - used ||
            payload_len != used)
          rec->order_errors++;
        grow(&rec->got, &rec->got_cap, rec->got_len + payload_len);
        memcpy(rec->got + rec->got_len, payload, payload_len);
        rec->got_len += payload_len;
        break;
      case FRAME_END:
        if (!rec->in_frame || used != 0) rec->order_errors++;
        else if (rec->got_len - rec->frames[rec->n_frames - 1].offset !=
                 rec->frames[rec->n_frames - 1].len)
          rec->order_errors++;
        rec->in_frame = false;
        break;
    }
  }
}

/* Feeds the stream in pieces whose sizes come from next_piece; each piece is a fresh heap copy
 * (so a sanitizer sees any read past it). */
typedef size_t (*piece_size_fn)(uint32_t *seed, size_t left);

static bool record_stream(const stream *s, recording *rec, piece_size_fn next_piece,
                          uint32_t seed) {
  memset(rec, 0, sizeof *rec);
  frame_parser p;
  frame_parser_init(&p, true, true);
  size_t pos = 0;
  uint8_t *one = malloc(1); /* pieces of one byte reuse this buffer */
  bool ok = true;
  while (ok && pos < s->wire_len) {
    size_t n = next_piece(&seed, s->wire_len - pos);
    if (n == 0) n = 1;
    if (n > s->wire_len - pos) n = s->wire_len - pos;
    uint8_t *piece = n == 1 ? one : malloc(n);
    memcpy(piece, s->wire + pos, n);
    ok = record_piece(&p, rec, piece, n);
    if (piece != one) free(piece);
    pos += n;
  }
  free(one);
  /* The last frame's FRAME_END comes on the next call, even with no more input. */
  static uint8_t nothing[1];
  if (ok) ok = record_piece(&p, rec, nothing, 0);
  return ok && !rec->in_frame;
}

static bool recordings_equal(const recording *a, const recording *b) {
  if (a->n_frames != b->n_frames || a->got_len != b->got_len) return false;
  for (size_t i = 0; i < a->n_frames; i++) {
    const gen_frame *x = &a->frames[i], *y = &b->frames[i];
    if (x->fin != y->fin || x->rsv1 != y->rsv1 || x->masked != y->masked ||
        x->opcode != y->opcode || memcmp(x->key, y->key, 4) != 0 || x->len != y->len ||
        x->offset != y->offset)
      return false;
  }
  return memcmp(a->got, b->got, a->got_len) == 0;
}

static size_t piece_whole(uint32_t *seed, size_t left) {
  (void)seed;
  return left;
}

static size_t piece_one(uint32_t *seed, size_t left) {
  (void)seed;
  (void)left;
  return 1;
}

/* Mixes tiny pieces (splitting headers and the key phase) with medium and large ones. */
static size_t piece_random(uint32_t *seed, size_t left) {
  (void)left;
  uint32_t r = next_random(seed) % 100;
  if (r < 40) return 1 + next_random(seed) % 16;
  if (r < 85) return 1 + next_random(seed) % 1500;
  return 1 + next_random(seed) % 100000;
}

static void test_split_invariance(void) {
  stream s;
  stream_generate(&s, 2000, 0x5EED1234u);
  CHECK(s.n_frames >= 2000);

  recording whole;
  if (!CHECK(record_stream(&s, &whole, piece_whole, 1))) {
    recording_free(&whole);
    stream_free(&s);
    return;
  }
  CHECK_EQ_INT(whole.order_errors, 0);
  /* The one-call recording matches what was generated. */
  CHECK_EQ_INT(whole.n_frames, s.n_frames);
  CHECK_EQ_INT(whole.got_len, s.plain_len);
  if (whole.n_frames == s.n_frames) {
    for (size_t i = 0; i < s.n_frames; i++) {
      const gen_frame *x = &whole.frames[i], *y = &s.frames[i];
      if (!CHECKF(x->fin == y->fin && x->rsv1 == y->rsv1 && x->masked && x->opcode == y->opcode &&
                      memcmp(x->key, y->key, 4) == 0 && x->len == y->len && x->offset == y->offset,
                  "frame %zu", i))
        break;
    }
  }
  if (whole.got_len == s.plain_len) CHECK_MEM(whole.got, s.plain, s.plain_len);

  recording r;
  bool ok = record_stream(&s, &r, piece_one, 1);
  CHECK(ok);
  CHECK_EQ_INT(r.order_errors, 0);
  CHECK(recordings_equal(&whole, &r));
  recording_free(&r);

  for (uint32_t pattern = 0; pattern < 200; pattern++) {
    ok = record_stream(&s, &r, piece_random, 0x9E3779B9u * (pattern + 1));
    bool same = ok && r.order_errors == 0 && recordings_equal(&whole, &r);
    recording_free(&r);
    if (!CHECKF(same, "split pattern %u", pattern)) break;
  }
  recording_free(&whole);
  stream_free(&s);
}

int main(void) {
  RUN(test_header_encode_bytes);
  RUN(test_header_round_trip);
  RUN(test_errors);
  RUN(test_error_names_culprit);
  RUN(test_length_limits_accepted);
  RUN(test_payload_unmasked_in_place);
  RUN(test_split_invariance);
  return CHECK_DONE();
}
