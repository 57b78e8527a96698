/* Incremental UTF-8 validation (RFC 3629 section 4 syntax) for text messages and close reasons.
 * Owns the byte-class and transition tables; the state survives across a message's fragments. */
#include "utf8.h"

#include <string.h>

/* Byte classes. Bytes in one class are interchangeable for every validity decision, which is
 * what keeps the transition table small: a lead byte's class also encodes which second-byte
 * range it allows (RFC 3629's special cases for E0, ED, F0 and F4). */
enum {
  C_ASCII, /* 00..7F */
  C_CONT8, /* 80..8F  continuation, low quarter */
  C_CONT9, /* 90..9F  continuation, second quarter */
  C_CONTA, /* A0..BF  continuation, upper half */
  C_BAD,   /* C0 C1 (always overlong), F5..FF (above U+10FFFF or not UTF-8 at all) */
  C_L2,    /* C2..DF */
  C_E0,    /* E0: second byte A0..BF, or it would be overlong */
  C_L3,    /* E1..EC, EE, EF */
  C_ED,    /* ED: second byte 80..9F, or it would be a surrogate */
  C_F0,    /* F0: second byte 90..BF, or it would be overlong */
  C_L4,    /* F1..F3 */
  C_F4,    /* F4: second byte 80..8F, or it would be above U+10FFFF */
  N_CLASSES
};

/* States. S_ACCEPT must be 0 (utf8.h promises that), and S_REJECT absorbs everything. */
enum {
  S_ACCEPT,
  S_NEED1, /* one more continuation, any */
  S_NEED2, /* two more, any */
  S_NEED3, /* three more, any */
  S_E0,    /* after E0: A0..BF, then one more */
  S_ED,    /* after ED: 80..9F, then one more */
  S_F0,    /* after F0: 90..BF, then two more */
  S_F4,    /* after F4: 80..8F, then two more */
  S_REJECT
};

/* Byte value -> class (the numbers are the C_ values above). */
static const uint8_t byte_class[256] = {
    /* 00..7F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 80..8F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 90..9F */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* A0..BF */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* C0 C1 */
    4, 4,
    /* C2..DF */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    /* E0, E1..EC, ED, EE..EF */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7,
    /* F0, F1..F3, F4 */
    9, 10, 10, 10, 11,
    /* F5..FF */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

/* The transition table, packed so that a step costs one shift: for each byte class, one
 * 64-bit row holding the next state for every current state, 6 bits per state. The state
 * itself is kept as its bit offset in the row (state number * 6), so the step is
 * `state = (row >> state) & 63` with no multiply and no dependent load: the row depends only
 * on the input byte and can be fetched ahead. That roughly doubles multi-byte throughput over
 * a two-dimensional table. Each PACK lists, for one class, the next state from each state. */
#define STATE_BITS 6
#define STATE(s) ((uint32_t)(s) * STATE_BITS)
#define PACK(from_accept, from_need1, from_need2, from_need3, from_e0, from_ed, from_f0,  \
             from_f4)                                                                     \
  ((uint64_t)STATE(from_accept) << STATE(S_ACCEPT) |                                      \
   (uint64_t)STATE(from_need1) << STATE(S_NEED1) |                                        \
   (uint64_t)STATE(from_need2) << STATE(S_NEED2) |                                        \
   (uint64_t)STATE(from_need3) << STATE(S_NEED3) |                                        \
   (uint64_t)STATE(from_e0) << STATE(S_E0) | (uint64_t)STATE(from_ed) << STATE(S_ED) |    \
   (uint64_t)STATE(from_f0) << STATE(S_F0) | (uint64_t)STATE(from_f4) << STATE(S_F4) |    \
   (uint64_t)STATE(S_REJECT) << STATE(S_REJECT))

#define R S_REJECT
static const uint64_t class_row[N_CLASSES] = {
    /*  from:       ACCEPT    NEED1     NEED2    NEED3    E0       ED       F0       F4 */
    [C_ASCII] = PACK(S_ACCEPT, R, R, R, R, R, R, R),
    [C_CONT8] = PACK(R, S_ACCEPT, S_NEED1, S_NEED2, R, S_NEED1, R, S_NEED2),
    [C_CONT9] = PACK(R, S_ACCEPT, S_NEED1, S_NEED2, R, S_NEED1, S_NEED2, R),
    [C_CONTA] = PACK(R, S_ACCEPT, S_NEED1, S_NEED2, S_NEED1, R, S_NEED2, R),
    [C_BAD] = PACK(R, R, R, R, R, R, R, R),
    [C_L2] = PACK(S_NEED1, R, R, R, R, R, R, R),
    [C_E0] = PACK(S_E0, R, R, R, R, R, R, R),
    [C_L3] = PACK(S_NEED2, R, R, R, R, R, R, R),
    [C_ED] = PACK(S_ED, R, R, R, R, R, R, R),
    [C_F0] = PACK(S_F0, R, R, R, R, R, R, R),
    [C_L4] = PACK(S_NEED3, R, R, R, R, R, R, R),
    [C_F4] = PACK(S_F4, R, R, R, R, R, R, R),
};
#undef R

_Static_assert(STATE(S_REJECT) + STATE_BITS <= 64, "every state must fit in a 64-bit row");
#define STATE_MASK ((UINT64_C(1) << STATE_BITS) - 1)
#define ACCEPT STATE(S_ACCEPT)
#define REJECT STATE(S_REJECT)

#define HIGH_BITS UINT64_C(0x8080808080808080)

static inline uint64_t load_u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Returns how many leading bytes of p[0..len) can be skipped as pure ASCII, in whole words.
 * Most text and JSON is ASCII, and a word test is far cheaper than a table step per byte. */
static inline size_t skip_ascii(const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i + 32 <= len &&
         ((load_u64(p + i) | load_u64(p + i + 8) | load_u64(p + i + 16) |
           load_u64(p + i + 24)) & HIGH_BITS) == 0)
    i += 32;
  while (i + 8 <= len && (load_u64(p + i) & HIGH_BITS) == 0) i += 8;
  return i;
}

static utf8_result result_of(uint32_t state) {
  if (state == ACCEPT) return UTF8_COMPLETE;
  return state == REJECT ? UTF8_INVALID : UTF8_PARTIAL;
}

/* Bytes stepped through the DFA between checks for rejection and for a new ASCII run: short
 * enough to stop soon after a bad byte, long enough to keep the step loop free of branches. */
#define DFA_BLOCK 16

utf8_result utf8_feed(utf8_state *s, const uint8_t *data, size_t len) {
  uint32_t state = s->dfa;
  /* A value that is not a state offset (a corrupted or uninitialised struct) would shift the
   * rows out of phase; treat it as invalid instead. */
  if (state > REJECT || state % STATE_BITS != 0) state = REJECT;
  size_t i = 0;
  while (i < len && state != REJECT) {
    if (state == ACCEPT) {
      i += skip_ascii(data + i, len - i);
      if (i == len) break;
    }
    size_t stop = len - i > DFA_BLOCK ? i + DFA_BLOCK : len;
    uint64_t st = state;
    for (; i < stop; i++) st = (class_row[byte_class[data[i]]] >> st) & STATE_MASK;
    state = (uint32_t)st;
  }
  /* The loop may step a few bytes past a bad one before noticing; REJECT absorbs, so they
   * cannot hide it, and the call that fed the bad byte is the one that reports it. */
  s->dfa = state;
  return result_of(state);
}

bool utf8_is_valid(const uint8_t *data, size_t len) {
  utf8_state s;
  utf8_state_init(&s);
  return utf8_feed(&s, data, len) == UTF8_COMPLETE;
}
