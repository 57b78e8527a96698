/* Shared by the fuzz targets: the input layout (how leading bytes choose splits), growable
 * byte buffers, a failure macro, the queue of frames a target expects in the engine's output,
 * and an independent reference UTF-8 decoder (RFC 3629). */
#ifndef WSN_FUZZ_UTIL_H
#define WSN_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An invariant broke. Never an assert on the input itself: only on what the code did with it. */
#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

/* ---- split plan ----
 * A target's input starts with a few configuration bytes, then `count` split-size bytes, then
 * the data. The sizes are used in turn, cycling; with count 0 the data goes in one piece. */
typedef struct split_plan {
  const uint8_t *sizes;
  size_t count;
  size_t next;
  bool last_was_empty;
} split_plan;

/* Mostly small pieces (0..63 bytes, so headers and UTF-8 sequences get cut everywhere), and
 * sometimes large ones (64 bytes to 64 KiB) so that whole frames also fit in one piece. */
static inline size_t split_piece_size(uint8_t b) {
  if (b < 0xC0) return b & 0x3F;
  return 64 + (size_t)(b & 0x3F) * 1024;
}

/* Size of the next piece, at most left. Two empty pieces in a row become one byte, so a plan
 * of zeros still makes progress. */
static inline size_t split_next(split_plan *s, size_t left) {
  if (s->count == 0) return left;
  size_t n = split_piece_size(s->sizes[s->next]);
  s->next = (s->next + 1) % s->count;
  if (n == 0 && s->last_was_empty) n = 1;
  s->last_was_empty = n == 0;
  return n < left ? n : left;
}

/* ---- action bytes ----
 * The bytes that choose what a target does between pieces (a send, a detach, a sweep...),
 * used in turn and cycling, like the split sizes. */
typedef struct byte_cycle {
  const uint8_t *bytes;
  size_t count; /* 0: no actions */
  size_t next;
} byte_cycle;

/* The next byte; only when count > 0. */
static inline uint8_t byte_cycle_next(byte_cycle *c) {
  uint8_t b = c->bytes[c->next];
  c->next = (c->next + 1) % c->count;
  return b;
}

/* A copy of a piece in its own allocation that ends exactly where the piece ends, so
 * AddressSanitizer catches any read past it; `shift` moves its start off alignment. */
typedef struct piece {
  uint8_t *alloc;
  uint8_t *data;
} piece;

static inline piece piece_copy(const uint8_t *src, size_t len, size_t shift) {
  piece p;
  p.alloc = malloc(shift + len); /* malloc(0) gives a unique pointer under ASan and glibc */
  if (!p.alloc) abort();
  p.data = p.alloc + shift;
  if (len) memcpy(p.data, src, len);
  return p;
}

static inline void piece_free(piece *p) {
  free(p->alloc);
  p->alloc = p->data = NULL;
}

/* ---- growable buffers ---- */
typedef struct byte_buf {
  uint8_t *p;
  size_t len, cap;
} byte_buf;

static inline void buf_reserve(byte_buf *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra) cap *= 2;
  uint8_t *grown = realloc(b->p, cap);
  if (!grown) abort();
  b->p = grown;
  b->cap = cap;
}

static inline void buf_put(byte_buf *b, const void *data, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
}

static inline void buf_free(byte_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* ---- expected output frames ----
 * The frames a target expects the engine to write, in order, with their payloads; a target's
 * checker takes them one by one as it parses the output. */
typedef struct want_frame {
  uint8_t opcode;
  bool fin, rsv1;
  size_t off, len; /* payload, into want_frames.bytes */
} want_frame;

typedef struct want_frames {
  want_frame *q;
  size_t n, cap, head;
  byte_buf bytes;
} want_frames;

static inline void want_frame_push(want_frames *w, uint8_t opcode, bool fin, bool rsv1,
                                   const uint8_t *payload, size_t len) {
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 16;
    w->q = realloc(w->q, w->cap * sizeof(*w->q));
    if (!w->q) abort();
  }
  w->q[w->n++] = (want_frame){opcode, fin, rsv1, w->bytes.len, len};
  buf_put(&w->bytes, payload, len);
}

static inline const uint8_t *want_frame_payload(const want_frames *w, const want_frame *f) {
  return w->bytes.p + f->off;
}

static inline void want_frames_free(want_frames *w) {
  free(w->q);
  buf_free(&w->bytes);
  memset(w, 0, sizeof(*w));
}

/* ---- reference UTF-8 decoder ----
 * Deliberately unlike src/codec/utf8.c (no tables, no DFA): it collects a sequence byte by
 * byte and, after each byte, asks whether any completion of the bytes so far could still
 * decode to a code point allowed for that sequence length (RFC 3629: shortest form only, no
 * surrogates, nothing above U+10FFFF). The first byte for which none can is the invalid one. */
typedef struct ref_utf8 {
  uint8_t seq[4];
  int have; /* bytes of the current sequence seen */
  int need; /* its total length */
  bool bad;
} ref_utf8;

static inline void ref_utf8_init(ref_utf8 *r) { memset(r, 0, sizeof(*r)); }

static inline bool ref_utf8_range_ok(int need, uint32_t lo, uint32_t hi) {
  switch (need) {
    case 2: return hi >= 0x80 && lo <= 0x7FF;
    case 3:
      if (hi < 0x800 || lo > 0xFFFF) return false;
      /* Allowed: 0800..D7FF and E000..FFFF; fails only if [lo, hi] lies inside D800..DFFF. */
      return !(lo >= 0xD800 && hi <= 0xDFFF);
    case 4: return hi >= 0x10000 && lo <= 0x10FFFF;
    default: return false;
  }
}

/* Feeds one byte; returns false once the input is invalid. */
static inline bool ref_utf8_byte(ref_utf8 *r, uint8_t b) {
  if (r->bad) return false;
  if (r->have == 0) {
    if (b < 0x80) return true;
    if (b >= 0xC0 && b < 0xE0) r->need = 2;
    else if (b >= 0xE0 && b < 0xF0)
      r->need = 3;
    else if (b >= 0xF0 && b < 0xF8)
      r->need = 4;
    else {
      r->bad = true; /* a continuation byte with no lead, or F8..FF */
      return false;
    }
  } else if ((b & 0xC0) != 0x80) {
    r->bad = true;
    return false;
  }
  r->seq[r->have++] = b;

  /* The code points reachable from this prefix form one interval: the unseen continuation
   * bytes contribute 6 bits each, all zero at the low end and all one at the high end. */
  static const uint8_t lead_mask[5] = {0, 0, 0x1F, 0x0F, 0x07};
  uint32_t lo = r->seq[0] & lead_mask[r->need];
  for (int i = 1; i < r->have; i++) lo = (lo << 6) | (r->seq[i] & 0x3F);
  uint32_t hi = lo;
  for (int i = r->have; i < r->need; i++) {
    lo <<= 6;
    hi = (hi << 6) | 0x3F;
  }
  if (!ref_utf8_range_ok(r->need, lo, hi)) {
    r->bad = true;
    return false;
  }
  if (r->have == r->need) r->have = 0;
  return true;
}

static inline bool ref_utf8_feed(ref_utf8 *r, const uint8_t *data, size_t len) {
  for (size_t i = 0; i < len && !r->bad; i++) ref_utf8_byte(r, data[i]);
  return !r->bad;
}

static inline bool ref_utf8_complete(const ref_utf8 *r) { return !r->bad && r->have == 0; }

#endif
