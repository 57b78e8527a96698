/* Unit tests for utf8.c: a table of boundary cases (after Markus Kuhn's UTF-8 stress test),
 * brute force against a simple reference decoder, every split of the input, and fail-fast. */
#include "check.h"
#include "utf8.h"

#include <stdlib.h>

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
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", X},
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80" "edited", X},
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
  if (!CHECKF((whole == UTF8_INVALID) == (bad < n), "%s %zu: first bad %zu", what, id, bad))
    return;

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
static const uint8_t edge_bytes[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                     0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec,
                                     0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
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
    if (!CHECKF(feed_once(buf, n) == (i + 1 == n ? UTF8_PARTIAL : UTF8_INVALID), "lead at %zu",
                i))
      break;
    buf[i] = 'A';
  }
  free(buf);
  CHECK(utf8_is_valid(NULL, 0));
}

int main(void) {
  RUN(test_case_table);
  RUN(test_case_table_incremental);
  RUN(test_cases_in_ascii_padding);
  RUN(test_brute_force);
  RUN(test_random_text);
  RUN(test_long_ascii_and_fast_path_exit);
  return CHECK_DONE();
}
