/* Unit tests for mask.c: the word-wide XOR against a byte-at-a-time reference, for every
 * length up to 300, every key phase and every misalignment, plus guard bytes around the buffer;
 * all of it with the SIMD loop (SSE2 or NEON) on and off, and the two against each other. */
#include "check.h"
#include "codec/mask.h"

/* mask.c's test hook (not in mask.h): turns the SIMD loop off (0) or on (1); returns whether it
 * is on. */
int mask_test_set_simd(int on);

#define MAX_LEN 300
#define GUARD 32
#define AREA (GUARD + 16 + MAX_LEN + GUARD)

static void mask_reference(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                           uint64_t offset) {
  for (size_t i = 0; i < len; i++) dst[i] = src[i] ^ key[(offset + i) % 4];
}

static uint8_t pseudo_random_byte(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return (uint8_t)(*x >> 8);
}

static const uint8_t keys[][4] = {
    {0x37, 0xfa, 0x21, 0x3d}, {0x00, 0x00, 0x00, 0x00}, {0xff, 0x01, 0x80, 0x7f}};

static void test_rfc6455_example(void) {
  /* RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d. */
  uint8_t buf[5] = {'H', 'e', 'l', 'l', 'o'};
  const uint8_t expect[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
  mask_apply(buf, 5, keys[0], 0);
  CHECK_MEM(buf, expect, 5);
}

static void test_apply_matches_reference(void) {
  _Alignas(64) uint8_t area[AREA];
  uint8_t original[AREA], expect[AREA];
  uint32_t seed = 0x9e3779b9u;
  for (size_t i = 0; i < AREA; i++) original[i] = pseudo_random_byte(&seed);

  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    for (size_t mis = 0; mis < 16; mis++) {
      for (uint64_t offset = 0; offset < 8; offset++) {
        for (size_t len = 0; len <= MAX_LEN; len++) {
          uint8_t *buf = area + GUARD + mis;
          memcpy(area, original, AREA);
          memcpy(expect, original, AREA);
          mask_reference(expect + GUARD + mis, original + GUARD + mis, len, keys[k], offset);
          mask_apply(buf, len, keys[k], offset);
          /* Comparing the whole area also proves nothing outside [buf, buf+len) was written. */
          if (!CHECKF(memcmp(area, expect, AREA) == 0, "key %zu mis %zu offset %u len %zu", k, mis,
                      (unsigned)offset, len))
            return;
          mask_apply(buf, len, keys[k], offset);
          if (!CHECKF(memcmp(area, original, AREA) == 0, "twice: key %zu mis %zu offset %u len %zu",
                      k, mis, (unsigned)offset, len))
            return;
        }
      }
    }
  }
}

static void test_copy_matches_reference(void) {
  _Alignas(64) uint8_t src_area[AREA];
  _Alignas(64) uint8_t dst_area[AREA];
  uint8_t expect[AREA], back[MAX_LEN];
  uint32_t seed = 12345;
  for (size_t i = 0; i < AREA; i++) src_area[i] = pseudo_random_byte(&seed);

  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    for (size_t mis = 0; mis < 16; mis++) {
      /* Source and destination misaligned differently, so neither can stand in for both. */
      size_t src_mis = (mis * 7 + 3) % 16;
      for (uint64_t offset = 0; offset < 8; offset++) {
        for (size_t len = 0; len <= MAX_LEN; len++) {
          const uint8_t *src = src_area + GUARD + src_mis;
          uint8_t *dst = dst_area + GUARD + mis;
          memset(dst_area, 0xA5, AREA);
          memset(expect, 0xA5, AREA);
          mask_reference(expect + GUARD + mis, src, len, keys[k], offset);
          mask_copy(dst, src, len, keys[k], offset);
          if (!CHECKF(memcmp(dst_area, expect, AREA) == 0, "key %zu mis %zu/%zu offset %u len %zu",
                      k, mis, src_mis, (unsigned)offset, len))
            return;
          mask_copy(back, dst, len, keys[k], offset);
          if (!CHECKF(memcmp(back, src, len) == 0, "twice: key %zu mis %zu offset %u len %zu", k,
                      mis, (unsigned)offset, len))
            return;
        }
      }
    }
  }
}

static void test_copy_in_place(void) {
  /* dst == src is allowed and must behave exactly like mask_apply. */
  uint8_t a[MAX_LEN + 16], b[MAX_LEN + 16];
  uint32_t seed = 777;
  for (size_t i = 0; i < sizeof a; i++) a[i] = b[i] = pseudo_random_byte(&seed);
  for (size_t mis = 0; mis < 16; mis++) {
    for (uint64_t offset = 0; offset < 4; offset++) {
      for (size_t len = 0; len <= MAX_LEN; len += 7) {
        mask_copy(a + mis, a + mis, len, keys[0], offset);
        mask_apply(b + mis, len, keys[0], offset);
        if (!CHECKF(memcmp(a, b, sizeof a) == 0, "mis %zu offset %u len %zu", mis, (unsigned)offset,
                    len))
          return;
      }
    }
  }
}

static void test_offset_is_key_phase(void) {
  /* Masking in two pieces, the second starting at offset = first piece's length, must equal
   * one pass: this is how the frame parser unmasks a payload that arrives in chunks. */
  uint8_t whole[MAX_LEN], pieces[MAX_LEN];
  uint32_t seed = 4242;
  for (size_t i = 0; i < MAX_LEN; i++) whole[i] = pseudo_random_byte(&seed);
  memcpy(pieces, whole, MAX_LEN);
  mask_apply(whole, MAX_LEN, keys[2], 0);
  for (size_t split = 0; split <= MAX_LEN; split++) {
    uint8_t tmp[MAX_LEN];
    memcpy(tmp, pieces, MAX_LEN);
    mask_apply(tmp, split, keys[2], 0);
    mask_apply(tmp + split, MAX_LEN - split, keys[2], split);
    if (!CHECKF(memcmp(tmp, whole, MAX_LEN) == 0, "split %zu", split)) return;
  }

  /* Only offset % 4 matters, including for offsets beyond 32 bits. */
  static const uint64_t big[] = {UINT64_C(4294967296), UINT64_C(4294967297),
                                 UINT64_C(9007199254740991), UINT64_MAX};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    uint8_t x[100], y[100];
    memcpy(x, pieces, 100);
    memcpy(y, pieces, 100);
    mask_apply(x, 100, keys[0], big[i]);
    mask_apply(y, 100, keys[0], big[i] % 4);
    CHECKF(memcmp(x, y, 100) == 0, "offset %llu", (unsigned long long)big[i]);
  }
}

static void test_zero_length(void) {
  /* len 0 must not touch the buffer at all, even a NULL one. */
  mask_apply(NULL, 0, keys[0], 3);
  mask_copy(NULL, NULL, 0, keys[0], 3);
  CHECK(1);
}

/* Large random buffers, lengths, phases and alignments: the SIMD loop and the word loop give
 * the same bytes, in place and copying. */
static void test_simd_matches_words(void) {
  enum { BIG = 70000 };
  static uint8_t src[BIG + 64], simd[BIG + 64], words[BIG + 64];
  uint32_t seed = 0xC0FFEEu;
  for (size_t i = 0; i < sizeof src; i++) src[i] = pseudo_random_byte(&seed);
  for (int iter = 0; iter < 400; iter++) {
    uint32_t r = seed;
    (void)pseudo_random_byte(&seed);
    size_t len = iter < 100 ? (size_t)iter * 17 : (r * 2654435761u) % BIG;
    size_t src_mis = r % 16, dst_mis = (r >> 4) % 16;
    uint8_t key[4] = {pseudo_random_byte(&seed), pseudo_random_byte(&seed),
                      pseudo_random_byte(&seed), pseudo_random_byte(&seed)};
    uint64_t offset = pseudo_random_byte(&seed);
    mask_test_set_simd(1);
    mask_copy(simd + dst_mis, src + src_mis, len, key, offset);
    mask_test_set_simd(0);
    mask_copy(words + dst_mis, src + src_mis, len, key, offset);
    if (!CHECKF(memcmp(simd + dst_mis, words + dst_mis, len) == 0, "copy: iter %d len %zu", iter,
                len))
      break;
    mask_apply(words + dst_mis, len, key, offset);
    mask_test_set_simd(1);
    mask_apply(simd + dst_mis, len, key, offset);
    if (!CHECKF(memcmp(simd + dst_mis, words + dst_mis, len) == 0 &&
                    memcmp(simd + dst_mis, src + src_mis, len) == 0,
                "apply: iter %d len %zu", iter, len))
      break;
  }
  mask_test_set_simd(1);
}

int main(void) {
  int simd = mask_test_set_simd(1);
  printf("  test_mask: SIMD loop %s\n", simd ? "compiled in (SSE2 or NEON)" : "not compiled in");
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(WSN_MASK_PORTABLE)
  CHECKF(simd, "x86-64 and arm64 always have a vector loop");
#endif
  for (int on = simd; on >= 0; on--) {
    mask_test_set_simd(on);
    RUN(test_rfc6455_example);
    RUN(test_apply_matches_reference);
    RUN(test_copy_matches_reference);
    RUN(test_copy_in_place);
    RUN(test_offset_is_key_phase);
    RUN(test_zero_length);
  }
  RUN(test_simd_matches_words);
  return CHECK_DONE();
}
