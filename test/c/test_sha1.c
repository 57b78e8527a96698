/* Unit tests for sha1.c: FIPS 180 vectors, padding boundaries and streaming splits.
 * Digests of runs of 'a' were produced with coreutils sha1sum, an independent implementation. */
#include "check.h"
#include "codec/sha1.h"

#include <stdlib.h>

static void hex_digest(const uint8_t d[SHA1_DIGEST_SIZE], char out[2 * SHA1_DIGEST_SIZE + 1]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < SHA1_DIGEST_SIZE; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[2 * SHA1_DIGEST_SIZE] = '\0';
}

static int check_digest(const void *msg, size_t len, const char *expect_hex) {
  uint8_t d[SHA1_DIGEST_SIZE];
  char hex[2 * SHA1_DIGEST_SIZE + 1];
  sha1(msg, len, d);
  hex_digest(d, hex);
  return CHECKF(strcmp(hex, expect_hex) == 0, "len %zu: got %s want %s", len, hex, expect_hex);
}

static const char msg448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char msg896[] =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlm"
    "nopqrsmnopqrstnopqrstu";

static void test_fips_vectors(void) {
  check_digest("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  check_digest("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
  check_digest(msg448, sizeof msg448 - 1, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  check_digest(msg896, sizeof msg896 - 1, "a49b2446a02c645bf419f995b67091253a04a259");
}

static void test_million_a(void) {
  size_t n = 1000000;
  uint8_t *buf = malloc(n);
  CHECK(buf != NULL);
  if (buf == NULL) return;
  memset(buf, 'a', n);
  const char *expect = "34aa973cd4c4daa4f61eeb2bdbad27316534016f";
  check_digest(buf, n, expect);

  /* Odd chunk sizes so block boundaries fall everywhere inside the chunks. */
  static const size_t chunks[] = {1, 3, 63, 64, 65, 1000, 4097};
  for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
    sha1_ctx ctx;
    uint8_t d[SHA1_DIGEST_SIZE];
    char hex[2 * SHA1_DIGEST_SIZE + 1];
    sha1_init(&ctx);
    for (size_t off = 0; off < n; off += chunks[c]) {
      size_t take = n - off < chunks[c] ? n - off : chunks[c];
      sha1_update(&ctx, buf + off, take);
    }
    sha1_final(&ctx, d);
    hex_digest(d, hex);
    CHECKF(strcmp(hex, expect) == 0, "chunk size %zu: got %s", chunks[c], hex);
  }
  free(buf);
}

/* 55/56 and 119/120 bytes are where the length field stops fitting in the final block. */
static void test_padding_boundaries(void) {
  static const struct {
    size_t len;
    const char *hex;
  } cases[] = {
      {55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
      {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
      {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},
      {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
      {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},
      {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"},
      {120, "f34c1488385346a55709ba056ddd08280dd4c6d6"},
      {127, "89d95fa32ed44a7c610b7ee38517ddf57e0bb975"},
      {128, "ad5b3fdbcb526778c2839d2f151ea753995e26a0"},
  };
  uint8_t buf[128];
  memset(buf, 'a', sizeof buf);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_digest(buf, cases[i].len, cases[i].hex);
}

static void digest_split(const uint8_t *msg, size_t len, size_t split1, size_t split2,
                         uint8_t out[SHA1_DIGEST_SIZE]) {
  sha1_ctx ctx;
  sha1_init(&ctx);
  sha1_update(&ctx, msg, split1);
  sha1_update(&ctx, msg + split1, split2 - split1);
  sha1_update(&ctx, msg + split2, len - split2);
  sha1_final(&ctx, out);
}

static void test_streaming_splits(void) {
  uint8_t msg[300];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 131 + 7);

  static const size_t lens[] = {0, 1, 3, 55, 56, 63, 64, 65, 127, 128, 129, 300};
  for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
    size_t len = lens[l];
    uint8_t whole[SHA1_DIGEST_SIZE], part[SHA1_DIGEST_SIZE];
    sha1(msg, len, whole);
    for (size_t a = 0; a <= len; a++) {
      for (size_t b = a; b <= len; b++) {
        digest_split(msg, len, a, b, part);
        if (!CHECKF(memcmp(whole, part, sizeof whole) == 0, "len %zu split at %zu,%zu", len, a, b))
          return;
      }
    }
  }

  /* The named vector, split at every offset, and fed one byte at a time. */
  size_t n = sizeof msg448 - 1;
  for (size_t a = 0; a <= n; a++) {
    uint8_t d[SHA1_DIGEST_SIZE];
    char hex[2 * SHA1_DIGEST_SIZE + 1];
    digest_split((const uint8_t *)msg448, n, a, a, d);
    hex_digest(d, hex);
    CHECKF(strcmp(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1") == 0, "split at %zu", a);
  }
  sha1_ctx ctx;
  uint8_t d[SHA1_DIGEST_SIZE], whole[SHA1_DIGEST_SIZE];
  sha1_init(&ctx);
  for (size_t i = 0; i < n; i++) sha1_update(&ctx, msg448 + i, 1);
  sha1_final(&ctx, d);
  sha1(msg448, n, whole);
  CHECK_MEM(d, whole, SHA1_DIGEST_SIZE);
}

static void test_context_reuse(void) {
  /* sha1_final leaves the context cleared; re-initialising must give a fresh hash. */
  sha1_ctx ctx;
  uint8_t d1[SHA1_DIGEST_SIZE], d2[SHA1_DIGEST_SIZE];
  sha1_init(&ctx);
  sha1_update(&ctx, "abc", 3);
  sha1_final(&ctx, d1);
  sha1_init(&ctx);
  sha1_update(&ctx, "abc", 3);
  sha1_final(&ctx, d2);
  CHECK_MEM(d1, d2, SHA1_DIGEST_SIZE);
}

int main(void) {
  RUN(test_fips_vectors);
  RUN(test_million_a);
  RUN(test_padding_boundaries);
  RUN(test_streaming_splits);
  RUN(test_context_reuse);
  return CHECK_DONE();
}
