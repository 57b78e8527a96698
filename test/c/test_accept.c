/* Unit tests for accept.c and base64.c: the handshake's accept value and key-shape check.
 * Vectors are from RFC 6455 section 1.3, RFC 4648 section 10, and a widely quoted example. */
#include "codec/accept.h"
#include "codec/base64.h"
#include "check.h"

#include <stdint.h>

static void test_base64_rfc4648(void) {
  static const struct {
    const char *in, *out;
  } v[] = {{"", ""},
           {"f", "Zg=="},
           {"fo", "Zm8="},
           {"foo", "Zm9v"},
           {"foob", "Zm9vYg=="},
           {"fooba", "Zm9vYmE="},
           {"foobar", "Zm9vYmFy"}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char out[16];
    memset(out, 'X', sizeof out);
    size_t in_len = strlen(v[i].in);
    size_t n = base64_encode((const unsigned char *)v[i].in, in_len, out);
    CHECK_EQ_INT(n, strlen(v[i].out));
    CHECK_EQ_INT(n, BASE64_ENCODED_LEN(in_len));
    CHECKF(strcmp(out, v[i].out) == 0, "\"%s\" -> \"%s\"", v[i].in, out);
  }
  /* Every byte value in every position of a 3-byte group, against the alphabet's arithmetic. */
  static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int b = 0; b < 256; b++) {
    unsigned char in[3] = {(unsigned char)b, (unsigned char)(255 - b), (unsigned char)(b * 7)};
    char out[5];
    base64_encode(in, 3, out);
    unsigned long v24 = ((unsigned long)in[0] << 16) | ((unsigned long)in[1] << 8) | in[2];
    char expect[5] = {alpha[v24 >> 18], alpha[(v24 >> 12) & 63], alpha[(v24 >> 6) & 63],
                      alpha[v24 & 63], '\0'};
    CHECKF(strcmp(out, expect) == 0, "byte %d", b);
  }
}

static void test_accept_vectors(void) {
  char out[WS_ACCEPT_LEN + 1];
  memset(out, 'X', sizeof out);
  ws_accept_compute("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
  CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
  CHECK_EQ_INT(strlen(out), WS_ACCEPT_LEN);

  ws_accept_compute("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
  CHECK(strcmp(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0);

  /* key_len is honoured: bytes past it must not be hashed. */
  ws_accept_compute("dGhlIHNhbXBsZSBub25jZQ==garbage", 24, out);
  CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

static int is_b64(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

static void test_key_is_valid(void) {
  const char *good = "dGhlIHNhbXBsZSBub25jZQ==";
  CHECK(ws_key_is_valid(good, 24));
  CHECK(ws_key_is_valid("AAAAAAAAAAAAAAAAAAAAAA==", 24));
  CHECK(ws_key_is_valid("//////////////////////==", 24));
  CHECK(ws_key_is_valid("++++++++++++++++++++++==", 24));
  /* The last data character's unused bits are deliberately not checked, as in ws. */
  CHECK(ws_key_is_valid("dGhlIHNhbXBsZSBub25jZZ==", 24));

  CHECK(!ws_key_is_valid("dGhlIHNhbXBsZSBub25jZQ", 22));  /* no padding */
  CHECK(!ws_key_is_valid("dGhlIHNhbXBsZSBub25jZQ=", 23)); /* half the padding */
  CHECK(!ws_key_is_valid("dGhlIHNhbXBsZSBub25jZQ===", 25));
  CHECK(!ws_key_is_valid("dGhlIHNhbXBsZSBub25jZQAA", 24)); /* 24 chars, no padding */
  CHECK(!ws_key_is_valid("dGhlIHNhbXBsZSBub25jZ===", 24)); /* padding too early */
  CHECK(!ws_key_is_valid("dGhlIHNhbXBsZSBub25j-_==", 24)); /* base64url alphabet */
  CHECK(!ws_key_is_valid(" dGhlIHNhbXBsZSBub25jZQ==", 25));
  CHECK(!ws_key_is_valid("", 0));
  CHECK(!ws_key_is_valid(NULL, 0));

  /* Every prefix length of a longer valid-looking string: only 24 with "==" at the end. */
  const char *longer = "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==";
  for (size_t len = 0; len <= strlen(longer); len++)
    CHECKF(ws_key_is_valid(longer, len) == (len == 24), "len %zu", len);

  /* Every byte value at every position of the good key. */
  for (size_t pos = 0; pos < 24; pos++) {
    for (int c = 0; c < 256; c++) {
      char key[24];
      memcpy(key, good, 24);
      key[pos] = (char)c;
      int expect = pos < 22 ? is_b64(c) : c == '=';
      CHECKF(ws_key_is_valid(key, 24) == (expect != 0), "byte %d at %zu", c, pos);
    }
  }
}

static void test_random_keys_are_valid(void) {
  uint32_t x = 2463534242u;
  for (int i = 0; i < 1000; i++) {
    unsigned char raw[16];
    for (int j = 0; j < 16; j++) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      raw[j] = (unsigned char)x;
    }
    char key[25];
    CHECK_EQ_INT(base64_encode(raw, 16, key), 24);
    CHECKF(ws_key_is_valid(key, 24), "key %s", key);
  }
}

int main(void) {
  RUN(test_base64_rfc4648);
  RUN(test_accept_vectors);
  RUN(test_key_is_valid);
  RUN(test_random_keys_are_valid);
  return CHECK_DONE();
}
