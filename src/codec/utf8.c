/* Incremental UTF-8 validation (RFC 3629 section 4 syntax) for text messages and close reasons.
 * Owns the DFA tables, the SIMD (SSSE3/AVX2 on x86, NEON on arm64) block validators and the
 * choice between them at run time. */
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

/* clang-format off */
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
/* clang-format on */

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
         ((load_u64(p + i) | load_u64(p + i + 8) | load_u64(p + i + 16) | load_u64(p + i + 24)) &
          HIGH_BITS) == 0)
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

/* Runs the DFA over data[0..len) from state (a valid state offset) and returns the state after. */
static uint32_t dfa_run(uint32_t state, const uint8_t *data, size_t len) {
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
  return state;
}

/* ---- SIMD block validation ----
 *
 * The lookup-table method of Keiser and Lemire ("Validating UTF-8 In Less Than One Instruction
 * Per Byte", 2021). Every error in UTF-8 shows in some pair of adjacent bytes, except a missing
 * third or fourth byte. A pair's error classes are the AND of three 16-entry tables indexed by
 * the first byte's high nibble, its low nibble and the second byte's high nibble, so one vector
 * of pairs costs three byte shuffles. A separate check then demands a continuation byte wherever
 * the byte two back is a 3- or 4-byte lead (or three back a 4-byte lead); it is folded in by
 * XOR with the "two continuations in a row" class, which is an error everywhere else. The
 * method answers only "is this whole block of sequences valid and complete", which is why
 * utf8_feed hands it only whole sequences (see there). */

/* Bytes per turn of the block loops: enough vectors that the ASCII test and the early exit on
 * an error are paid once per 64 bytes. */
#define SIMD_BLOCK 64

/* How often (in bytes, a power of two) the block loops stop to see whether an error was
 * found. Only speed depends on it: the call reports the error either way. Testing at every
 * block costs about 8% on valid text; every 1 KiB wastes at most that much after garbage. */
#define EXIT_CHECK_EVERY 1024

/* Below this many bytes of whole sequences, the DFA is as quick as setting up the vectors. */
#define SIMD_MIN_LEN 16

/* Levels, as the test hook numbers them: 1 is a 16-byte kernel (SSSE3 or NEON), 2 a 32-byte
 * one (AVX2). WSN_UTF8_PORTABLE at compile time leaves only the DFA. */
enum { SIMD_NONE = 0, SIMD_SSSE3 = 1, SIMD_NEON = 1, SIMD_AVX2 = 2 };

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(WSN_UTF8_PORTABLE)
#define UTF8_HAVE_X86_SIMD 1
#include <cpuid.h>
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON) && !defined(WSN_UTF8_PORTABLE)
#define UTF8_HAVE_NEON 1
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

#if defined(UTF8_HAVE_X86_SIMD) || defined(UTF8_HAVE_NEON)

/* Error classes of a byte pair (first byte, second byte). */
enum {
  E_TOO_SHORT = 1 << 0,    /* lead, then no continuation: 11xxxxxx 0xxxxxxx or 11xxxxxx 11xxxxxx */
  E_TOO_LONG = 1 << 1,     /* continuation after ASCII: 0xxxxxxx 10xxxxxx */
  E_OVERLONG3 = 1 << 2,    /* E0 80..9F */
  E_TOO_LARGE = 1 << 3,    /* F4 90..BF, and F5..FF 90..BF */
  E_SURROGATE = 1 << 4,    /* ED A0..BF */
  E_OVERLONG2 = 1 << 5,    /* C0 or C1, then a continuation */
  E_OVERLONG4 = 1 << 6,    /* F0 80..8F; shares its bit with the next, as no lead has both */
  E_TOO_LARGE_80 = 1 << 6, /* F5..FF 80..8F */
  E_TWO_CONTS = 1 << 7,    /* 10xxxxxx 10xxxxxx: an error unless a 3rd or 4th byte is due */
  /* Classes decided by the first byte's high nibble alone: every low nibble must pass them. */
  E_ANY_LOW = E_TOO_SHORT | E_TOO_LONG | E_TWO_CONTS
};

/* clang-format off */
/* Indexed by the first byte's high nibble: the classes that byte can start. */
static const uint8_t pair_first_high[16] = {
    E_TOO_LONG, E_TOO_LONG, E_TOO_LONG, E_TOO_LONG, E_TOO_LONG, E_TOO_LONG, E_TOO_LONG,
    E_TOO_LONG,                                                        /* 0..7: ASCII */
    E_TWO_CONTS, E_TWO_CONTS, E_TWO_CONTS, E_TWO_CONTS,                /* 8..B: continuation */
    E_TOO_SHORT | E_OVERLONG2,                                         /* C */
    E_TOO_SHORT,                                                       /* D */
    E_TOO_SHORT | E_OVERLONG3 | E_SURROGATE,                           /* E */
    E_TOO_SHORT | E_TOO_LARGE | E_TOO_LARGE_80 | E_OVERLONG4,          /* F */
};

/* Indexed by the first byte's low nibble. */
static const uint8_t pair_first_low[16] = {
    E_ANY_LOW | E_OVERLONG2 | E_OVERLONG3 | E_OVERLONG4, /* C0 E0 F0 */
    E_ANY_LOW | E_OVERLONG2,                             /* C1 */
    E_ANY_LOW,
    E_ANY_LOW,
    E_ANY_LOW | E_TOO_LARGE, /* F4 */
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80 | E_SURROGATE, /* ED (and FD) */
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
    E_ANY_LOW | E_TOO_LARGE | E_TOO_LARGE_80,
};

/* Indexed by the second byte's high nibble. */
#define CONT_ERRORS (E_TOO_LONG | E_OVERLONG2 | E_TWO_CONTS)
static const uint8_t pair_second_high[16] = {
    E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT,
    E_TOO_SHORT,                                                   /* 0..7: ASCII */
    CONT_ERRORS | E_OVERLONG3 | E_OVERLONG4 | E_TOO_LARGE_80,      /* 80..8F */
    CONT_ERRORS | E_OVERLONG3 | E_TOO_LARGE,                       /* 90..9F */
    CONT_ERRORS | E_SURROGATE | E_TOO_LARGE,                       /* A0..AF */
    CONT_ERRORS | E_SURROGATE | E_TOO_LARGE,                       /* B0..BF */
    E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT, E_TOO_SHORT,            /* C0..FF: a lead */
};
#undef CONT_ERRORS

/* A block ending with one of these is cut inside a sequence: the last byte is a lead of any
 * length, the one before a 3- or 4-byte lead, or the one before that a 4-byte lead. A saturating
 * subtraction of these limits leaves nonzero bytes exactly there. */
static const uint8_t block_end_limit[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0 - 1, 0xE0 - 1, 0xC0 - 1,
};
/* clang-format on */

#endif /* the tables */

#if defined(UTF8_HAVE_X86_SIMD)
#define TARGET_SSSE3 __attribute__((target("ssse3")))
#define TARGET_AVX2 __attribute__((target("avx2")))

/* The error bits of 16 byte pairs: cur, and the 16 bytes before each of its bytes (prev holds
 * the block before cur; zeros, which are ASCII, at the start of a run of whole sequences). */
TARGET_SSSE3 static inline __m128i errors_ssse3(__m128i cur, __m128i prev, __m128i first_high,
                                                __m128i first_low, __m128i second_high) {
  const __m128i nibble = _mm_set1_epi8(0x0F);
  __m128i prev1 = _mm_alignr_epi8(cur, prev, 15);
  __m128i pairs = _mm_and_si128(
      _mm_and_si128(_mm_shuffle_epi8(first_high, _mm_and_si128(_mm_srli_epi16(prev1, 4), nibble)),
                    _mm_shuffle_epi8(first_low, _mm_and_si128(prev1, nibble))),
      _mm_shuffle_epi8(second_high, _mm_and_si128(_mm_srli_epi16(cur, 4), nibble)));
  /* High bit set where the byte two back is E0..FF or three back is F0..FF. */
  __m128i third = _mm_subs_epu8(_mm_alignr_epi8(cur, prev, 14), _mm_set1_epi8(0xE0 - 0x80));
  __m128i fourth = _mm_subs_epu8(_mm_alignr_epi8(cur, prev, 13), _mm_set1_epi8(0xF0 - 0x80));
  __m128i due = _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8((char)0x80));
  return _mm_xor_si128(pairs, due);
}

TARGET_SSSE3 static inline bool any_set_ssse3(__m128i v) {
  return _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) != 0xFFFF;
}

/* True when p[0..n) is valid UTF-8 made of whole sequences. The last, short block is copied
 * into zeros: a sequence cut at n then meets ASCII and shows as an error. */
TARGET_SSSE3 static bool valid_ssse3(const uint8_t *p, size_t n) {
  const __m128i first_high = _mm_loadu_si128((const __m128i *)pair_first_high);
  const __m128i first_low = _mm_loadu_si128((const __m128i *)pair_first_low);
  const __m128i second_high = _mm_loadu_si128((const __m128i *)pair_second_high);
  const __m128i end_limit = _mm_loadu_si128((const __m128i *)(block_end_limit + 16));
  __m128i prev = _mm_setzero_si128(), error = _mm_setzero_si128();
  __m128i cut = _mm_setzero_si128(); /* the previous block ended inside a sequence */
  uint8_t last[SIMD_BLOCK];
  for (size_t i = 0; i < n; i += SIMD_BLOCK) {
    const uint8_t *b = p + i;
    if (n - i < SIMD_BLOCK) {
      memset(last, 0, sizeof last);
      memcpy(last, b, n - i);
      b = last;
    }
    __m128i v0 = _mm_loadu_si128((const __m128i *)b);
    __m128i v1 = _mm_loadu_si128((const __m128i *)(b + 16));
    __m128i v2 = _mm_loadu_si128((const __m128i *)(b + 32));
    __m128i v3 = _mm_loadu_si128((const __m128i *)(b + 48));
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3))) == 0) {
      /* All ASCII: the only possible error is a sequence left open by the block before. */
      error = _mm_or_si128(error, cut);
      cut = _mm_setzero_si128();
    } else {
      error = _mm_or_si128(error, errors_ssse3(v0, prev, first_high, first_low, second_high));
      error = _mm_or_si128(error, errors_ssse3(v1, v0, first_high, first_low, second_high));
      error = _mm_or_si128(error, errors_ssse3(v2, v1, first_high, first_low, second_high));
      error = _mm_or_si128(error, errors_ssse3(v3, v2, first_high, first_low, second_high));
      cut = _mm_subs_epu8(v3, end_limit);
      if ((i & (EXIT_CHECK_EVERY - 1)) == 0 && any_set_ssse3(error)) return false;
    }
    prev = v3;
  }
  return !any_set_ssse3(_mm_or_si128(error, cut));
}

/* The bytes N before each byte of cur, for N in 1..3, across the two 128-bit lanes: alignr
 * works within a lane, so the lane it reaches back into is built first. */
#define PREV_AVX2(cur, prev, n) \
  _mm256_alignr_epi8((cur), _mm256_permute2x128_si256((prev), (cur), 0x21), 16 - (n))

TARGET_AVX2 static inline __m256i errors_avx2(__m256i cur, __m256i prev, __m256i first_high,
                                              __m256i first_low, __m256i second_high) {
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  __m256i prev1 = PREV_AVX2(cur, prev, 1);
  __m256i pairs = _mm256_and_si256(
      _mm256_and_si256(
          _mm256_shuffle_epi8(first_high, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nibble)),
          _mm256_shuffle_epi8(first_low, _mm256_and_si256(prev1, nibble))),
      _mm256_shuffle_epi8(second_high, _mm256_and_si256(_mm256_srli_epi16(cur, 4), nibble)));
  __m256i third = _mm256_subs_epu8(PREV_AVX2(cur, prev, 2), _mm256_set1_epi8(0xE0 - 0x80));
  __m256i fourth = _mm256_subs_epu8(PREV_AVX2(cur, prev, 3), _mm256_set1_epi8(0xF0 - 0x80));
  __m256i due = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
  return _mm256_xor_si256(pairs, due);
}

TARGET_AVX2 static inline __m256i table_avx2(const uint8_t table[16]) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)table));
}

/* valid_ssse3 with 32-byte vectors. */
TARGET_AVX2 static bool valid_avx2(const uint8_t *p, size_t n) {
  const __m256i first_high = table_avx2(pair_first_high);
  const __m256i first_low = table_avx2(pair_first_low);
  const __m256i second_high = table_avx2(pair_second_high);
  const __m256i end_limit = _mm256_loadu_si256((const __m256i *)block_end_limit);
  __m256i prev = _mm256_setzero_si256(), error = _mm256_setzero_si256();
  __m256i cut = _mm256_setzero_si256();
  uint8_t last[SIMD_BLOCK];
  for (size_t i = 0; i < n; i += SIMD_BLOCK) {
    const uint8_t *b = p + i;
    if (n - i < SIMD_BLOCK) {
      memset(last, 0, sizeof last);
      memcpy(last, b, n - i);
      b = last;
    }
    __m256i v0 = _mm256_loadu_si256((const __m256i *)b);
    __m256i v1 = _mm256_loadu_si256((const __m256i *)(b + 32));
    if (_mm256_movemask_epi8(_mm256_or_si256(v0, v1)) == 0) {
      error = _mm256_or_si256(error, cut);
      cut = _mm256_setzero_si256();
    } else {
      error = _mm256_or_si256(error, errors_avx2(v0, prev, first_high, first_low, second_high));
      error = _mm256_or_si256(error, errors_avx2(v1, v0, first_high, first_low, second_high));
      cut = _mm256_subs_epu8(v1, end_limit);
      if ((i & (EXIT_CHECK_EVERY - 1)) == 0 && !_mm256_testz_si256(error, error)) return false;
    }
    prev = v1;
  }
  error = _mm256_or_si256(error, cut);
  return _mm256_testz_si256(error, error);
}

/* CPUID and XGETBV asked directly rather than through __builtin_cpu_supports, which needs
 * libgcc's __cpu_model: clang and zig do not link it for musl, and on macOS it becomes an import
 * (___cpu_model) that Node does not export. AVX2 also needs the OS to save the YMM registers
 * across context switches, which XGETBV's XCR0 bits 1 and 2 say. */
#define CPUID1_ECX_SSSE3 (1u << 9)
#define CPUID1_ECX_OSXSAVE (1u << 27)
#define CPUID1_ECX_AVX (1u << 28)
#define CPUID7_EBX_AVX2 (1u << 5)
#define XCR0_SSE_AND_AVX_STATE 6u

static uint32_t xcr0_low(void) {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  (void)edx;
  return eax;
}

static int detect_simd(void) {
  unsigned int eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return SIMD_NONE;
  int level = (ecx & CPUID1_ECX_SSSE3) ? SIMD_SSSE3 : SIMD_NONE;
  bool os_saves_ymm = (ecx & CPUID1_ECX_OSXSAVE) && (ecx & CPUID1_ECX_AVX) &&
                      (xcr0_low() & XCR0_SSE_AND_AVX_STATE) == XCR0_SSE_AND_AVX_STATE;
  if (os_saves_ymm && __get_cpuid_max(0, NULL) >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if (ebx & CPUID7_EBX_AVX2) level = SIMD_AVX2;
  }
  return level;
}

#elif defined(UTF8_HAVE_NEON)

/* The same method with NEON: TBL is the 16-entry byte shuffle, EXT joins the previous vector
 * to the current one to reach the bytes 1 to 3 back, and UMAXV reduces a vector to "any byte
 * set". The tables and the XOR with the "continuation due" bits are exactly those above. */
static inline uint8x16_t errors_neon(uint8x16_t cur, uint8x16_t prev, uint8x16_t first_high,
                                     uint8x16_t first_low, uint8x16_t second_high) {
  const uint8x16_t nibble = vdupq_n_u8(0x0F);
  uint8x16_t prev1 = vextq_u8(prev, cur, 15);
  uint8x16_t pairs = vandq_u8(vandq_u8(vqtbl1q_u8(first_high, vshrq_n_u8(prev1, 4)),
                                       vqtbl1q_u8(first_low, vandq_u8(prev1, nibble))),
                              vqtbl1q_u8(second_high, vshrq_n_u8(cur, 4)));
  /* All ones where the byte two back is E0..FF or three back is F0..FF; only bit 7 is kept. */
  uint8x16_t third = vcgeq_u8(vextq_u8(prev, cur, 14), vdupq_n_u8(0xE0));
  uint8x16_t fourth = vcgeq_u8(vextq_u8(prev, cur, 13), vdupq_n_u8(0xF0));
  uint8x16_t due = vandq_u8(vorrq_u8(third, fourth), vdupq_n_u8(0x80));
  return veorq_u8(pairs, due);
}

static inline bool any_set_neon(uint8x16_t v) { return vmaxvq_u8(v) != 0; }

/* valid_ssse3's loop, with NEON. */
static bool valid_neon(const uint8_t *p, size_t n) {
  const uint8x16_t first_high = vld1q_u8(pair_first_high);
  const uint8x16_t first_low = vld1q_u8(pair_first_low);
  const uint8x16_t second_high = vld1q_u8(pair_second_high);
  const uint8x16_t end_limit = vld1q_u8(block_end_limit + 16);
  uint8x16_t prev = vdupq_n_u8(0), error = vdupq_n_u8(0), cut = vdupq_n_u8(0);
  uint8_t last[SIMD_BLOCK];
  for (size_t i = 0; i < n; i += SIMD_BLOCK) {
    const uint8_t *b = p + i;
    if (n - i < SIMD_BLOCK) {
      memset(last, 0, sizeof last);
      memcpy(last, b, n - i);
      b = last;
    }
    uint8x16_t v0 = vld1q_u8(b), v1 = vld1q_u8(b + 16);
    uint8x16_t v2 = vld1q_u8(b + 32), v3 = vld1q_u8(b + 48);
    if (vmaxvq_u8(vorrq_u8(vorrq_u8(v0, v1), vorrq_u8(v2, v3))) < 0x80) {
      error = vorrq_u8(error, cut);
      cut = vdupq_n_u8(0);
    } else {
      error = vorrq_u8(error, errors_neon(v0, prev, first_high, first_low, second_high));
      error = vorrq_u8(error, errors_neon(v1, v0, first_high, first_low, second_high));
      error = vorrq_u8(error, errors_neon(v2, v1, first_high, first_low, second_high));
      error = vorrq_u8(error, errors_neon(v3, v2, first_high, first_low, second_high));
      cut = vqsubq_u8(v3, end_limit);
      if ((i & (EXIT_CHECK_EVERY - 1)) == 0 && any_set_neon(error)) return false;
    }
    prev = v3;
  }
  return !any_set_neon(vorrq_u8(error, cut));
}

/* Advanced SIMD is part of every arm64 target Node supports (Linux and macOS both require
 * it); Linux still says so in AT_HWCAP, so it is asked there rather than assumed. */
static int detect_simd(void) {
#if defined(__linux__)
  const unsigned long hwcap_asimd = 1ul << 1; /* HWCAP_ASIMD in <asm/hwcap.h> */
  return (getauxval(AT_HWCAP) & hwcap_asimd) ? SIMD_NEON : SIMD_NONE;
#else
  return SIMD_NEON;
#endif
}

#else
static int detect_simd(void) { return SIMD_NONE; }
#endif

/* What the CPU supports, found once (-1 until then), and the level in use, which the tests
 * may lower. Racing first calls compute the same value, so relaxed atomics suffice. */
static int simd_supported = -1;
static int simd_in_use = -1;

#if defined(__GNUC__)
#define LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#define LOAD_RELAXED(p) (*(p))
#define STORE_RELAXED(p, v) (*(p) = (v))
#endif

static int simd_level(void) {
  int level = LOAD_RELAXED(&simd_in_use);
  if (level < 0) {
    level = detect_simd();
    STORE_RELAXED(&simd_supported, level);
    STORE_RELAXED(&simd_in_use, level);
  }
  return level;
}

/* Test hook, not in utf8.h: caps the SIMD level (0 = DFA only, 1 = SSSE3 or NEON, 2 = AVX2)
 * so the paths can be checked against each other on one machine; returns the level now in
 * use, which is lower than asked when the CPU lacks it. */
int utf8_test_set_simd_level(int level);
int utf8_test_set_simd_level(int level) {
  simd_level();
  int supported = LOAD_RELAXED(&simd_supported);
  if (level > supported) level = supported;
  if (level < 0) level = 0;
  STORE_RELAXED(&simd_in_use, level);
  return level;
}

/* The end of the last whole sequence in data[start..len), assuming the text is valid: the
 * last sequence is unfinished only if a lead byte among the last three bytes wants more bytes
 * than there are after it. When the text is not valid the answer is still safe to split at:
 * the byte there is a lead (or C0, C1, F5..FF), which is an error unless everything before it
 * is whole sequences, so the part before is valid and complete exactly when the DFA would
 * stand in its accept state there; and when no cut is found, the DFA could not end mid-
 * sequence (an ASCII last byte, or a lead with its bytes all present, or three continuation
 * bytes with no lead among them), so "not valid and complete" means invalid. */
static size_t whole_sequences_end(const uint8_t *data, size_t start, size_t len) {
  for (size_t k = 1; k <= 3 && k <= len - start; k++) {
    uint8_t b = data[len - k];
    if (b < 0x80) return len;
    if (b >= 0xC0) {
      size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
      return need > k ? len - k : len;
    }
  }
  return len;
}

static bool simd_valid(int level, const uint8_t *data, size_t len) {
#if defined(UTF8_HAVE_X86_SIMD)
  if (level == SIMD_AVX2) return valid_avx2(data, len);
  if (level == SIMD_SSSE3) return valid_ssse3(data, len);
#elif defined(UTF8_HAVE_NEON)
  if (level == SIMD_NEON) return valid_neon(data, len);
#endif
  (void)level, (void)data, (void)len;
  return false; /* unreachable: simd_level() is SIMD_NONE without the code above */
}

utf8_result utf8_feed(utf8_state *s, const uint8_t *data, size_t len) {
  uint32_t state = s->dfa;
  /* A value that is not a state offset (a corrupted or uninitialised struct) would shift the
   * rows out of phase; treat it as invalid instead. */
  if (state > REJECT || state % STATE_BITS != 0) state = REJECT;
  size_t i = 0;
  int level = len >= SIMD_MIN_LEN && state != REJECT ? simd_level() : SIMD_NONE;
  if (level != SIMD_NONE) {
    /* The SIMD validator can only say whether a run of whole sequences is valid; it has no
     * notion of a sequence begun in the previous piece, or of one cut at the end of this one
     * (PARTIAL, not INVALID). So the DFA finishes the sequence carried in (at most 3 bytes),
     * the vectors take everything from there to the start of the unfinished last sequence,
     * and the DFA takes that tail (at most 3 bytes) and leaves its state in s->dfa. The
     * whole piece is still checked within this call, so an invalid byte is reported by the
     * call that contains it. Leading ASCII goes through the DFA's word-at-a-time skip, which
     * is as fast as the vectors and cheaper to start. */
    for (; i < len && state != ACCEPT && state != REJECT; i++)
      state = (uint32_t)((class_row[byte_class[data[i]]] >> state) & STATE_MASK);
    if (state == ACCEPT) {
      i += skip_ascii(data + i, len - i);
      size_t end = whole_sequences_end(data, i, len);
      if (end - i >= SIMD_MIN_LEN) {
        if (!simd_valid(level, data + i, end - i)) {
          s->dfa = REJECT;
          return UTF8_INVALID;
        }
        i = end;
      }
    }
  }
  if (i < len) state = dfa_run(state, data + i, len - i); /* data may be NULL when len is 0 */
  s->dfa = state;
  return result_of(state);
}

bool utf8_is_valid(const uint8_t *data, size_t len) {
  utf8_state s;
  utf8_state_init(&s);
  return utf8_feed(&s, data, len) == UTF8_COMPLETE;
}
