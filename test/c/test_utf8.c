/* Unit tests for utf8.c: a table of boundary cases (after Markus Kuhn's UTF-8 stress test),
 * brute force against a simple reference decoder, every split of the input, and fail-fast;
 * then the SIMD paths against the DFA on random text, whole and in random pieces. */
#include "check.h"
#include "codec/utf8.h"

#include <stdlib.h>

/* utf8.c's test hook (not in utf8.h): caps the SIMD level, 0 = DFA only, 1 = SSSE3 or NEON,
 * 2 = AVX2, and returns the level actually in use on this CPU. */
int utf8_test_set_simd_level(int level);

/* ---- Reference: decodes sequence by sequence, straight from RFC 3629's definition. ---- */

/* A truncated final sequence is PARTIAL only if some continuation could still make it valid.
 * The code points reachable from the bytes seen form one interval [lo, hi]; it is hopeless
 * when the interval lies wholly below the length's minimum (overlong), above U+10FFFF, or
 * inside the surrogates. A complete sequence is the case lo == hi. */
static utf8_result reference_status(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t b = s[i++];
    int need;
    uint32_t cp, min;
    if (b < 0x80) continue;
    if ((b & 0xE0) == 0xC0) {
      need = 1, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      need = 2, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      need = 3, cp = b & 0x07, min = 0x10000;
    } else {
      return UTF8_INVALID; /* a continuation byte with no lead, or F8..FF */
    }
    int have = 0;
    while (have < need && i < n) {
      if ((s[i] & 0xC0) != 0x80) return UTF8_INVALID;
      cp = (cp << 6) | (s[i] & 0x3F);
      have++, i++;
    }
    uint32_t lo = cp, hi = cp;
    for (int k = have; k < need; k++) lo = lo << 6, hi = (hi << 6) | 0x3F;
    if (hi < min || lo > 0x10FFFF || (lo >= 0xD800 && hi <= 0xDFFF)) return UTF8_INVALID;
    if (have < need) return UTF8_PARTIAL;
  }
  return UTF8_COMPLETE;
}

/* Index of the byte at which the input first becomes hopeless, or n if it never does. */
static size_t reference_first_bad(const uint8_t *s, size_t n) {
  for (size_t k = 1; k <= n; k++)
    if (reference_status(s, k) == UTF8_INVALID) return k - 1;
  return n;
}

static utf8_result feed_once(const uint8_t *s, size_t n) {
  utf8_state st;
  utf8_state_init(&st);
  return utf8_feed(&st, s, n);
}

static const char *result_name(utf8_result r) {
  return r == UTF8_COMPLETE ? "COMPLETE" : r == UTF8_PARTIAL ? "PARTIAL" : "INVALID";
}

/* ---- The case table. ---- */

#define V UTF8_COMPLETE
#define P UTF8_PARTIAL
#define X UTF8_INVALID
static const struct {
  const char *bytes;
  utf8_result expect;
} cases[] = {
    {"", V},
    {"a", V},
    {"\x7f", V},
    {"hello, world", V},
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", V}, /* "kosme" in Greek */
    /* first and last code point of each length */
    {"\xc2\x80", V},
    {"\xdf\xbf", V},
    {"\xe0\xa0\x80", V},
    {"\xef\xbf\xbf", V},
    {"\xf0\x90\x80\x80", V},
    {"\xf4\x8f\xbf\xbf", V},
    /* around the surrogates, and noncharacters (valid UTF-8, whatever they mean) */
    {"\xed\x9f\xbf", V},
    {"\xee\x80\x80", V},
    {"\xef\xbf\xbd", V},
    {"\xef\xbf\xbe", V},
    {"\xef\xb7\x90", V},
    {"\xf3\xbf\xbf\xbf", V},
    /* just past U+10FFFF and the lead bytes that can only encode more */
    {"\xf4\x90\x80\x80", X},
    {"\xf4\xbf\xbf\xbf", X},
    {"\xf5\x80\x80\x80", X},
    {"\xf7\xbf\xbf\xbf", X},
    {"\xf8\x88\x80\x80\x80", X},
    {"\xfc\x84\x80\x80\x80\x80", X},
    {"\xfe", X},
    {"\xff", X},
    {"\xfe\xfe\xff\xff", X},
    /* stray continuation bytes */
    {"\x80", X},
    {"\xbf", X},
    {"\x80\xbf", X},
    {"a\x80", X},
    {"\xc2\x80\x80", X},
    {"\xe0\xa0\x80\xbf", X},
    /* lead bytes followed by something that is not a continuation */
    {"\xc2 ", X},
    {"\xe0\xa0 ", X},
    {"\xf0\x90\x80 ", X},
    {"\xc2\xc2\x80", X},
    {"\xe1\xc2\x80", X},
    {"\xdf\x7f", X},
    /* overlong encodings: '/' and NUL and the largest overlong of each length */
    {"\xc0\xaf", X},
    {"\xe0\x80\xaf", X},
    {"\xf0\x80\x80\xaf", X},
    {"\xc0\x80", X},
    {"\xe0\x80\x80", X},
    {"\xf0\x80\x80\x80", X},
    {"\xc1\xbf", X},
    {"\xe0\x9f\xbf", X},
    {"\xf0\x8f\xbf\xbf", X},
    {"\xc0", X},
    {"\xc1", X},
    {"\xe0\x80", X},
    {"\xe0\x9f", X},
    {"\xf0\x80", X},
    {"\xf0\x8f", X},
    /* surrogates, single and paired */
    {"\xed\xa0\x80", X},
    {"\xed\xad\xbf", X},
    {"\xed\xae\x80", X},
    {"\xed\xaf\xbf", X},
    {"\xed\xb0\x80", X},
    {"\xed\xbf\xbf", X},
    {"\xed\xa0\x80\xed\xb0\x80", X},
    {"\xed\xaf\xbf\xed\xbf\xbf", X},
    {"\xed\xa0", X},
    /* truncated sequences: valid so far, unfinished */
    {"\xc2", P},
    {"\xdf", P},
    {"\xe0", P},
    {"\xe0\xa0", P},
    {"\xe1", P},
    {"\xe1\x80", P},
    {"\xed", P},
    {"\xed\x9f", P},
    {"\xef\xbf", P},
    {"\xf0", P},
    {"\xf0\x90", P},
    {"\xf0\x90\x80", P},
    {"\xf1\x80\x80", P},
    {"\xf4", P},
    {"\xf4\x8f", P},
    {"\xf4\x8f\xbf", P},
    {"abc\xe2\x82", P},
    /* Autobahn 6.x style: valid text, then an error in the middle, then more valid text */
    /* clang-format off */
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", X},
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80" "edited", X},
    /* clang-format on */
};
#undef V
#undef P
#undef X
#define N_CASES (sizeof cases / sizeof cases[0])

static void test_case_table(void) {
  for (size_t c = 0; c < N_CASES; c++) {
    const uint8_t *s = (const uint8_t *)cases[c].bytes;
    size_t n = strlen(cases[c].bytes);
    utf8_result got = feed_once(s, n);
    CHECKF(got == cases[c].expect, "case %zu: got %s want %s", c, result_name(got),
           result_name(cases[c].expect));
    CHECKF(utf8_is_valid(s, n) == (cases[c].expect == UTF8_COMPLETE), "case %zu", c);
    /* The reference must agree with the table too, or the brute force below proves nothing. */
    CHECKF(reference_status(s, n) == cases[c].expect, "reference, case %zu", c);
  }
  /* NUL is a valid character; strlen-based cases cannot show it. */
  const uint8_t nul[3] = {'a', 0, 'b'};
  CHECK(utf8_is_valid(nul, 3));
}

/* Every split into two feeds and into single bytes agrees with one shot; an invalid byte is
 * reported by the very call that contains it. */
static void check_incremental(const uint8_t *s, size_t n, const char *what, size_t id) {
  utf8_result whole = feed_once(s, n);
  size_t bad = reference_first_bad(s, n);
  if (!CHECKF((whole == UTF8_INVALID) == (bad < n), "%s %zu: first bad %zu", what, id, bad)) return;

  for (size_t k = 0; k <= n; k++) {
    utf8_state st;
    utf8_state_init(&st);
    utf8_result r1 = utf8_feed(&st, s, k);
    CHECKF((r1 == UTF8_INVALID) == (bad < k), "%s %zu split %zu: first call %s", what, id, k,
           result_name(r1));
    utf8_result r2 = utf8_feed(&st, s + k, n - k);
    CHECKF(r2 == whole, "%s %zu split %zu: %s vs %s", what, id, k, result_name(r2),
           result_name(whole));
  }

  utf8_state st;
  utf8_state_init(&st);
  utf8_result r = UTF8_COMPLETE;
  for (size_t i = 0; i < n; i++) {
    r = utf8_feed(&st, s + i, 1);
    if (!CHECKF((r == UTF8_INVALID) == (i >= bad), "%s %zu byte %zu: %s", what, id, i,
                result_name(r)))
      return;
  }
  CHECKF(r == whole || n == 0, "%s %zu bytewise", what, id);
  /* Once invalid, always invalid, even when fed valid text or nothing. */
  if (whole == UTF8_INVALID) {
    CHECK(utf8_feed(&st, (const uint8_t *)"ok", 2) == UTF8_INVALID);
    CHECK(utf8_feed(&st, NULL, 0) == UTF8_INVALID);
  }
}

static void test_case_table_incremental(void) {
  for (size_t c = 0; c < N_CASES; c++)
    check_incremental((const uint8_t *)cases[c].bytes, strlen(cases[c].bytes), "case", c);
}

/* The same cases embedded in ASCII of every padding length, so that each falls at every
 * position relative to the 8- and 32-byte ASCII fast path. */
static void test_cases_in_ascii_padding(void) {
  uint8_t buf[128];
  for (size_t c = 0; c < N_CASES; c++) {
    size_t n = strlen(cases[c].bytes);
    for (size_t pre = 0; pre <= 40; pre++) {
      for (size_t post = 0; post <= 40; post += 13) {
        memset(buf, 'x', sizeof buf);
        memcpy(buf + pre, cases[c].bytes, n);
        size_t total = pre + n + post;
        utf8_result want = reference_status(buf, total);
        utf8_result got = feed_once(buf, total);
        if (!CHECKF(got == want, "case %zu pre %zu post %zu: %s vs %s", c, pre, post,
                    result_name(got), result_name(want)))
          return;
      }
    }
    memset(buf, 'x', sizeof buf);
    memcpy(buf + 37, cases[c].bytes, n);
    check_incremental(buf, 37 + n + 20, "padded case", c);
  }
}

static int compare_with_reference(const uint8_t *s, size_t n) {
  utf8_result want = reference_status(s, n);
  utf8_result got = feed_once(s, n);
  if (!CHECKF(got == want, "%zu bytes %02x %02x %02x %02x: %s vs %s", n, s[0], n > 1 ? s[1] : 0,
              n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, result_name(got), result_name(want)))
    return 0;
  /* Again between ASCII runs, so the sequence is reached through the word-at-a-time path. */
  uint8_t padded[9 + 4 + 9];
  memset(padded, 'x', sizeof padded);
  memcpy(padded + 9, s, n);
  want = reference_status(padded, 9 + n + 9);
  got = feed_once(padded, 9 + n + 9);
  return CHECKF(got == want, "padded %zu bytes %02x %02x %02x %02x: %s vs %s", n, s[0],
                n > 1 ? s[1] : 0, n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, result_name(got),
                result_name(want));
}

/* One or two bytes of every class edge stand in for a whole class in the deep positions. */
static const uint8_t edge_bytes[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                     0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee,
                                     0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
#define N_EDGE (sizeof edge_bytes / sizeof edge_bytes[0])

static void test_brute_force(void) {
  uint8_t s[4];
  /* every 1- and 2-byte string */
  for (int a = 0; a < 256; a++) {
    s[0] = (uint8_t)a;
    if (!compare_with_reference(s, 1)) return;
    for (int b = 0; b < 256; b++) {
      s[1] = (uint8_t)b;
      if (!compare_with_reference(s, 2)) return;
    }
  }
  /* every 3-byte string that starts with a 3-byte lead */
  for (int a = 0xE0; a <= 0xEF; a++)
    for (int b = 0; b < 256; b++)
      for (int c = 0; c < 256; c++) {
        s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = (uint8_t)c;
        if (!compare_with_reference(s, 3)) return;
      }
  /* every 4-byte lead with every second byte, edge bytes after */
  for (int a = 0xF0; a <= 0xF7; a++)
    for (int b = 0; b < 256; b++)
      for (size_t c = 0; c < N_EDGE; c++)
        for (size_t d = 0; d < N_EDGE; d++) {
          s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = edge_bytes[c], s[3] = edge_bytes[d];
          if (!compare_with_reference(s, 3) || !compare_with_reference(s, 4)) return;
        }
  /* edge bytes in all four positions */
  for (size_t a = 0; a < N_EDGE; a++)
    for (size_t b = 0; b < N_EDGE; b++)
      for (size_t c = 0; c < N_EDGE; c++)
        for (size_t d = 0; d < N_EDGE; d++) {
          s[0] = edge_bytes[a], s[1] = edge_bytes[b], s[2] = edge_bytes[c], s[3] = edge_bytes[d];
          if (!compare_with_reference(s, 4)) return;
        }
}

static size_t encode_utf8(uint32_t cp, uint8_t *out) {
  if (cp < 0x80) {
    out[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (uint8_t)(0xC0 | (cp >> 6));
    out[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (uint8_t)(0xE0 | (cp >> 12));
    out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (uint8_t)(0xF0 | (cp >> 18));
  out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

static uint32_t next_random(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* Random text of every kind of character, sometimes corrupted by one byte, checked against
 * the reference in one shot and at every split. */
static void test_random_text(void) {
  uint32_t seed = 0xC0FFEEu;
  uint8_t buf[256];
  for (int iter = 0; iter < 3000; iter++) {
    size_t n = 0;
    size_t target = next_random(&seed) % 200;
    while (n < target) {
      uint32_t cp;
      switch (next_random(&seed) % 5) {
        case 0: cp = next_random(&seed) % 0x80; break;
        case 1: cp = 0x80 + next_random(&seed) % (0x800 - 0x80); break;
        case 2: cp = 0x800 + next_random(&seed) % (0x10000 - 0x800); break;
        case 3: cp = 0x10000 + next_random(&seed) % (0x110000 - 0x10000); break;
        default: cp = 'a' + next_random(&seed) % 26; break;
      }
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      n += encode_utf8(cp, buf + n);
    }
    if (!CHECKF(utf8_is_valid(buf, n), "iter %d: generated text rejected", iter)) return;
    if (n > 0 && iter % 2 == 1) buf[next_random(&seed) % n] = (uint8_t)next_random(&seed);
    if (iter % 3 == 2 && n > 0) n -= next_random(&seed) % (n < 4 ? n : 4); /* maybe truncate */
    if (!CHECKF(feed_once(buf, n) == reference_status(buf, n), "iter %d", iter)) return;
    if (iter % 10 == 0) check_incremental(buf, n, "random", (size_t)iter);
  }
}

static void test_long_ascii_and_fast_path_exit(void) {
  /* A long ASCII run with one bad byte at each position: the fast path must notice it. */
  size_t n = 1000;
  uint8_t *buf = malloc(n);
  CHECK(buf != NULL);
  if (buf == NULL) return;
  memset(buf, 'A', n);
  CHECK(utf8_is_valid(buf, n));
  for (size_t i = 0; i < n; i++) {
    buf[i] = 0x80;
    if (!CHECKF(!utf8_is_valid(buf, n), "stray continuation at %zu", i)) break;
    buf[i] = 0xC3; /* a lead byte followed by 'A' */
    if (!CHECKF(feed_once(buf, n) == (i + 1 == n ? UTF8_PARTIAL : UTF8_INVALID), "lead at %zu", i))
      break;
    buf[i] = 'A';
  }
  free(buf);
  CHECK(utf8_is_valid(NULL, 0));
}

/* ---- SIMD against the DFA ---- */

/* A code point of the given UTF-8 width, often at an edge of its range (the first and last of
 * each length, around the surrogates, U+10FFFF) where the lookup tables change. */
static uint32_t random_code_point(int width, uint32_t *seed) {
  static const uint32_t lo[5] = {0, 0, 0x80, 0x800, 0x10000};
  static const uint32_t hi[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
  static const uint32_t edges[] = {0x80,   0x7FF,  0x800,   0xFFF,   0x1000,  0xD7FF,
                                   0xE000, 0xFFFF, 0x10000, 0x3FFFF, 0x40000, 0x10FFFF};
  for (;;) {
    uint32_t cp;
    if (width > 1 && next_random(seed) % 4 == 0)
      cp = edges[next_random(seed) % (sizeof edges / sizeof edges[0])];
    else
      cp = lo[width] + next_random(seed) % (hi[width] - lo[width] + 1);
    if (cp >= lo[width] && cp <= hi[width] && !(cp >= 0xD800 && cp <= 0xDFFF)) return cp;
  }
}

/* Valid text of about target bytes in one of several mixes: even, mostly ASCII, mostly one
 * width (Cyrillic-, CJK-, emoji-like), or long ASCII runs with a character now and then. */
static size_t random_valid_text(uint8_t *buf, size_t target, uint32_t *seed) {
  static const uint8_t weights[6][5] = {
      {0, 25, 25, 25, 25}, {0, 90, 4, 4, 2},  {0, 20, 70, 5, 5},
      {0, 10, 5, 80, 5},   {0, 10, 5, 5, 80}, {0, 97, 1, 1, 1},
  };
  const uint8_t *w = weights[next_random(seed) % 6];
  size_t n = 0;
  while (n < target) {
    uint32_t r = next_random(seed) % 100;
    int width = 1;
    while (width < 4 && r >= w[width]) r -= w[width], width++;
    n += encode_utf8(random_code_point(width, seed), buf + n);
  }
  return n;
}

/* Byte sequences that are wrong in each of the ways the lookup tables tell apart. */
/* clang-format off */
static const char *const bad_sequences[] = {
    "\xc0\x80",         "\xc1\xbf",         "\xe0\x80\x80",     "\xe0\x9f\xbf",
    "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xed\xa0\x80",     "\xed\xbf\xbf",
    "\xf4\x90\x80\x80", "\xf4\xbf\xbf\xbf", "\xf5\x80\x80\x80", "\xff",
    "\x80",             "\xbf\xbf",         "\xc2",             "\xe1\x80",
    "\xf1\x80\x80",     "\xc2\x80\x80",     "\xe1\x80\x80\x80", "\xf1\x80\x80\x80\x80",
    "\xf8\x88\x80\x80\x80",
};
/* clang-format on */
#define N_BAD_SEQUENCES (sizeof bad_sequences / sizeof bad_sequences[0])

/* What a corrupted byte was before, so the test can show every kind was hit. */
enum { AT_ASCII, AT_LEAD, AT_SECOND, AT_THIRD, AT_FOURTH, N_POSITION_KINDS };

static int position_kind(const uint8_t *s, size_t i) {
  if (s[i] < 0x80) return AT_ASCII;
  if (s[i] >= 0xC0) return AT_LEAD;
  size_t back = 1;
  while (back < 4 && back <= i && (s[i - back] & 0xC0) == 0x80) back++;
  return back == 1 ? AT_SECOND : back == 2 ? AT_THIRD : AT_FOURTH;
}

/* A position near a multiple of 16 (and so sometimes of 32 and 64): where the vectors meet. */
static size_t near_block_edge(size_t n, uint32_t *seed) {
  size_t edge = 16 * (next_random(seed) % (n / 16 + 1));
  size_t at = edge + next_random(seed) % 7;
  at = at >= 3 ? at - 3 : 0;
  return at < n ? at : n - 1;
}

/* Damages buf[0..n) in one random way and returns the new length (at most n + 5). */
static size_t corrupt(uint8_t *buf, size_t n, uint32_t *seed, long hits[N_POSITION_KINDS]) {
  size_t at = next_random(seed) % 2 ? near_block_edge(n, seed) : next_random(seed) % n;
  switch (next_random(seed) % 5) {
    case 0: /* replace with a byte of every class edge */
      hits[position_kind(buf, at)]++;
      buf[at] = edge_bytes[next_random(seed) % N_EDGE];
      return n;
    case 1: /* replace with any byte */
      hits[position_kind(buf, at)]++;
      buf[at] = (uint8_t)next_random(seed);
      return n;
    case 2: /* drop a byte */
      hits[position_kind(buf, at)]++;
      memmove(buf + at, buf + at + 1, n - at - 1);
      return n - 1;
    case 3: { /* insert a known-bad sequence */
      const char *bad = bad_sequences[next_random(seed) % N_BAD_SEQUENCES];
      size_t k = strlen(bad);
      memmove(buf + at + k, buf + at, n - at);
      memcpy(buf + at, bad, k);
      return n + k;
    }
    default: /* cut the text short, often inside a sequence */ return at;
  }
}

/* Feeds s[0..n) to utf8_feed in pieces cut at the given points; records each call's result
 * and the state after it. */
static void feed_pieces(const uint8_t *s, size_t n, const size_t *cuts, size_t n_cuts,
                        utf8_result *results, uint32_t *states) {
  utf8_state st;
  utf8_state_init(&st);
  size_t from = 0;
  for (size_t c = 0; c <= n_cuts; c++) {
    size_t to = c < n_cuts ? cuts[c] : n;
    results[c] = utf8_feed(&st, s + from, to - from);
    states[c] = st.dfa;
    from = to;
  }
}

#define MAX_CUTS 8

/* For random text, valid or damaged: each SIMD level gives the same answer as the DFA alone,
 * in one shot and in random pieces (each call's result and state), and both agree with the
 * reference decoder. */
static void test_simd_matches_dfa(void) {
  int best = utf8_test_set_simd_level(2);
  if (best == 0) printf("  (no SIMD on this CPU: the DFA is compared with itself)\n");
  uint32_t seed = 0x5EED1234u;
  static uint8_t buf[2000 + 64];
  long hits[N_POSITION_KINDS] = {0};
  long outcomes[3] = {0};
  for (int iter = 0; iter < 6000; iter++) {
    size_t target = next_random(&seed) % 2001;
    size_t n = target == 0 ? 0 : random_valid_text(buf, target, &seed);
    if (n > 2000) n = 2000; /* may cut the last character: the reference knows */
    int damage = (int)(next_random(&seed) % 4);
    for (int d = 0; d < damage && n > 0; d++) {
      n = corrupt(buf, n, &seed, hits);
      if (n > 2000) n = 2000;
    }
    utf8_result want = reference_status(buf, n);
    outcomes[want]++;

    size_t cuts[MAX_CUTS];
    size_t n_cuts = n == 0 ? 0 : next_random(&seed) % (MAX_CUTS + 1);
    for (size_t c = 0; c < n_cuts; c++) {
      /* sorted by construction: each cut at or after the one before */
      size_t from = c ? cuts[c - 1] : 0;
      cuts[c] = from + (next_random(&seed) % 3 == 0 ? next_random(&seed) % 5
                                                    : next_random(&seed) % (n - from + 1));
      if (cuts[c] > n) cuts[c] = n;
    }

    utf8_result dfa_results[MAX_CUTS + 1];
    uint32_t dfa_states[MAX_CUTS + 1];
    utf8_test_set_simd_level(0);
    bool dfa_valid = utf8_is_valid(buf, n);
    utf8_result dfa_whole = feed_once(buf, n);
    feed_pieces(buf, n, cuts, n_cuts, dfa_results, dfa_states);
    if (!CHECKF(dfa_whole == want && dfa_valid == (want == UTF8_COMPLETE) &&
                    dfa_results[n_cuts] == want,
                "iter %d: DFA %s, reference %s", iter, result_name(dfa_whole), result_name(want)))
      break;

    for (int level = 1; level <= best; level++) {
      utf8_test_set_simd_level(level);
      CHECKF(utf8_is_valid(buf, n) == dfa_valid, "iter %d level %d: is_valid", iter, level);
      CHECKF(feed_once(buf, n) == dfa_whole, "iter %d level %d: one shot", iter, level);
      utf8_result results[MAX_CUTS + 1];
      uint32_t states[MAX_CUTS + 1];
      feed_pieces(buf, n, cuts, n_cuts, results, states);
      for (size_t c = 0; c <= n_cuts; c++)
        if (!CHECKF(results[c] == dfa_results[c] && states[c] == dfa_states[c],
                    "iter %d level %d piece %zu of %zu: %s vs DFA %s", iter, level, c, n_cuts + 1,
                    result_name(results[c]), result_name(dfa_results[c])))
          break;
    }
  }
  utf8_test_set_simd_level(2);
  /* The mix must have reached every kind of byte and every outcome, or it tested less than
   * it claims. */
  for (int k = 0; k < N_POSITION_KINDS; k++)
    CHECKF(hits[k] > 100, "corruptions at position kind %d: %ld", k, hits[k]);
  for (int r = 0; r < 3; r++) CHECKF(outcomes[r] > 100, "outcome %d: %ld", r, outcomes[r]);
}

/* One bad byte at every offset of a long multi-byte text, so it lands at every position of a
 * 16-, 32- and 64-byte block, in every byte of a sequence; and a sequence cut at every
 * offset, which is PARTIAL only at the very end. */
static void test_simd_every_offset(void) {
  uint8_t buf[300];
  size_t n = 0;
  static const char unit[] = "a\xd0\xb0\xe4\xbd\xa0\xf0\x9f\x98\x80";
  while (n + sizeof unit - 1 <= sizeof buf) memcpy(buf + n, unit, sizeof unit - 1), n += 10;
  for (int level = utf8_test_set_simd_level(2); level >= 0; level--) {
    utf8_test_set_simd_level(level);
    CHECKF(utf8_is_valid(buf, n), "level %d", level);
    for (size_t i = 0; i < n; i++) {
      uint8_t keep = buf[i];
      static const uint8_t subst[] = {0x41, 0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xff};
      for (size_t k = 0; k < sizeof subst; k++) {
        if (subst[k] == keep) continue;
        buf[i] = subst[k];
        utf8_result want = reference_status(buf, n);
        if (!CHECKF(feed_once(buf, n) == want, "level %d: %02x at %zu", level, subst[k], i)) break;
      }
      buf[i] = keep;
      if (!CHECKF(feed_once(buf, i) == reference_status(buf, i), "level %d: cut at %zu", level, i))
        break;
    }
  }
  utf8_test_set_simd_level(2);
}

/* A sequence left open, or closed, just before a long ASCII run, at every offset: the
 * vectors skip all-ASCII blocks, and must not skip the end of a sequence begun before one. */
static void test_simd_sequence_before_ascii(void) {
  static const char *const tails[] = {
      "\xc2",     "\xe1",         "\xe1\x80",         "\xf1", "\xf1\x80", "\xf1\x80\x80", /* open */
      "\xc2\x80", "\xe1\x80\x80", "\xf1\x80\x80\x80", /* closed */
  };
  uint8_t buf[2 + 200 + 4 + 150];
  for (int level = utf8_test_set_simd_level(2); level >= 0; level--) {
    utf8_test_set_simd_level(level);
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
      size_t k = strlen(tails[t]);
      for (size_t at = 2; at <= 200; at++) {
        memset(buf, 'x', sizeof buf);
        memcpy(buf, "\xc3\xa9", 2); /* not ASCII, so the vectors start at byte 0 */
        memcpy(buf + at, tails[t], k);
        size_t n = at + k + 150;
        utf8_result want = reference_status(buf, n);
        if (!CHECKF(feed_once(buf, n) == want, "level %d tail %zu at %zu: %s vs %s", level, t, at,
                    result_name(feed_once(buf, n)), result_name(want)))
          break;
      }
    }
  }
  utf8_test_set_simd_level(2);
}

int main(void) {
  /* The DFA-level tests first at the best SIMD level this CPU has, then again at each lower
   * one (the brute force only once: its inputs are too short for the vectors). */
  int best = utf8_test_set_simd_level(2);
  printf("  test_utf8: SIMD level %d here (0 = none, 1 = SSSE3 or NEON, 2 = AVX2)\n", best);
#if defined(__aarch64__) && !defined(WSN_UTF8_PORTABLE)
  /* Every arm64 CPU Node runs on has NEON: level 0 here means the detection is broken. */
  CHECKF(best == 1, "arm64 without the NEON kernel (level %d)", best);
#endif
  RUN(test_brute_force);
  for (int level = best; level >= 0; level--) {
    utf8_test_set_simd_level(level);
    RUN(test_case_table);
    RUN(test_case_table_incremental);
    RUN(test_cases_in_ascii_padding);
    RUN(test_random_text);
    RUN(test_long_ascii_and_fast_path_exit);
  }
  RUN(test_simd_matches_dfa);
  RUN(test_simd_every_offset);
  RUN(test_simd_sequence_before_ascii);
  return CHECK_DONE();
}
