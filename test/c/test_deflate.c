/* permessage-deflate codec: round trips in both context modes and every window size, the
 * stripped 00 00 ff ff tail, the output cap (zip bombs), corrupt input and BFINAL endings,
 * and streams parked between messages. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "codec/deflate.h"

/* JSON-like text that compresses the way real messages do. */
static size_t make_text(uint8_t *out, size_t len, unsigned seed) {
  size_t n = 0;
  while (n < len) {
    char item[64];
    int k = snprintf(item, sizeof item, "{\"id\":%u,\"name\":\"user%u\",\"ok\":true},", seed,
                     seed * 7 % 1000);
    seed++;
    for (int i = 0; i < k && n < len; i++) out[n++] = (uint8_t)item[i];
  }
  return n;
}

static void round_trip(int deflate_bits, int inflate_bits, bool reset, size_t len) {
  pmd_stream d, i;
  pmd_deflater_init(&d, deflate_bits, Z_DEFAULT_COMPRESSION, 8);
  pmd_inflater_init(&i, inflate_bits);
  uint8_t *text = malloc(len + 1);
  for (unsigned msg = 0; msg < 5; msg++) {
    make_text(text, len, msg * 13);
    pmd_buffer wire = {0}, back = {0};
    CHECK(pmd_deflate_message(&d, text, len, reset, &wire) == PMD_OK);
    /* The wire form never ends with the empty block's 00 00 ff ff. */
    CHECK(wire.len < 4 || memcmp(wire.data + wire.len - 4, "\x00\x00\xff\xff", 4) != 0);
    if (len > 200) CHECKF(wire.len < len / 2, "compressed %zu of %zu", wire.len, len);
    CHECK(pmd_inflate_message(&i, wire.data, wire.len, 0, reset, &back) == PMD_OK);
    CHECKF(back.len == len, "bits %d/%d reset %d len %zu msg %u: got %zu", deflate_bits,
           inflate_bits, reset, len, msg, back.len);
    if (back.len == len) CHECK_MEM(back.data, text, len);
    free(wire.data);
    free(back.data);
  }
  free(text);
  pmd_stream_end(&d);
  pmd_stream_end(&i);
}

static void test_round_trips(void) {
  for (int bits = 9; bits <= 15; bits++) {
    round_trip(bits, bits, false, 5000);
    round_trip(bits, bits, true, 5000);
    round_trip(bits, 15, false, 3000); /* a larger inflate window decodes a smaller one */
  }
  round_trip(15, 15, false, 0);
  round_trip(15, 15, true, 1);
  round_trip(15, 15, false, 300000);
}

/* Context takeover: the second identical message compresses to far less than the first. */
static void test_context_takeover(void) {
  pmd_stream d;
  pmd_deflater_init(&d, 15, Z_DEFAULT_COMPRESSION, 8);
  uint8_t text[2000];
  make_text(text, sizeof text, 5);
  pmd_buffer first = {0}, second = {0};
  CHECK(pmd_deflate_message(&d, text, sizeof text, false, &first) == PMD_OK);
  CHECK(pmd_deflate_message(&d, text, sizeof text, false, &second) == PMD_OK);
  CHECKF(second.len * 4 < first.len, "first %zu, second %zu", first.len, second.len);
  free(first.data);
  free(second.data);
  pmd_stream_end(&d);
}

/* A tiny message that would inflate to 1 GiB stops at the cap with bounded memory. */
static void test_cap(void) {
  pmd_stream d, i;
  pmd_deflater_init(&d, 15, 9, 9);
  pmd_inflater_init(&i, 15);
  size_t len = 16 * 1024 * 1024;
  uint8_t *zeros = calloc(len, 1);
  pmd_buffer wire = {0};
  CHECK(pmd_deflate_message(&d, zeros, len, false, &wire) == PMD_OK);
  free(zeros);
  CHECKF(wire.len < 32 * 1024, "16 MiB of zeros compress to %zu bytes", wire.len);
  /* Repeat the compressed block: each copy inflates to 16 MiB more. */
  size_t copies = 64;
  uint8_t *bomb = malloc(wire.len * copies);
  for (size_t k = 0; k < copies; k++) memcpy(bomb + k * wire.len, wire.data, wire.len);
  pmd_buffer out = {0};
  uint64_t cap = 1024 * 1024;
  CHECK(pmd_inflate_message(&i, bomb, wire.len * copies, cap, false, &out) == PMD_TOO_BIG);
  CHECKF(out.cap <= cap + 1, "buffer grew to %zu", out.cap);
  free(out.data);
  /* The same stream works again afterwards (it restarts). */
  pmd_buffer again = {0};
  pmd_buffer small = {0};
  pmd_stream d2;
  pmd_deflater_init(&d2, 15, 6, 8);
  CHECK(pmd_deflate_message(&d2, (const uint8_t *)"hello", 5, true, &small) == PMD_OK);
  CHECK(pmd_inflate_message(&i, small.data, small.len, cap, true, &again) == PMD_OK);
  CHECK(again.len == 5 && memcmp(again.data, "hello", 5) == 0);
  free(again.data);
  free(small.data);
  free(bomb);
  free(wire.data);
  pmd_stream_end(&d);
  pmd_stream_end(&d2);
  pmd_stream_end(&i);
}

static void test_corrupt(void) {
  pmd_stream i;
  pmd_inflater_init(&i, 15);
  const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x13, 0x37};
  pmd_buffer out = {0};
  CHECK(pmd_inflate_message(&i, garbage, sizeof garbage, 0, false, &out) == PMD_CORRUPT);
  free(out.data);
  pmd_stream_end(&i);
}

/* A message may end with a final (BFINAL) block; the tail we add then goes unused, and the
 * next message starts a new stream. Bytes after the final block are corrupt. */
static void test_bfinal(void) {
  z_stream zs = {0};
  CHECK(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  uint8_t wire[256];
  zs.next_in = (Bytef *)"final block";
  zs.avail_in = 11;
  zs.next_out = wire;
  zs.avail_out = sizeof wire;
  CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  size_t n = sizeof wire - zs.avail_out;
  deflateEnd(&zs);

  pmd_stream i;
  pmd_inflater_init(&i, 15);
  for (int k = 0; k < 2; k++) {
    pmd_buffer out = {0};
    CHECK(pmd_inflate_message(&i, wire, n, 0, false, &out) == PMD_OK);
    CHECK(out.len == 11 && memcmp(out.data, "final block", 11) == 0);
    free(out.data);
  }
  uint8_t extra[260];
  memcpy(extra, wire, n);
  extra[n] = 0x01;
  pmd_buffer out = {0};
  CHECK(pmd_inflate_message(&i, extra, n + 1, 0, false, &out) == PMD_CORRUPT);
  free(out.data);
  pmd_stream_end(&i);
}

/* Context takeover across parking: each message repeats much of the one before, so it is
 * mostly back-references that a restarted inflater resolves only with its parked window. */
static void park_round_trip(int bits, size_t len) {
  pmd_stream d, i;
  pmd_deflater_init(&d, bits, Z_DEFAULT_COMPRESSION, 8);
  pmd_inflater_init(&i, bits);
  uint8_t *text = malloc(len + 1);
  size_t received = 0;
  for (unsigned msg = 0; msg < 6; msg++) {
    make_text(text, len, msg % 2); /* (seeds 0 and 1 overlap almost entirely) */
    pmd_buffer wire = {0}, back = {0};
    CHECK(pmd_deflate_message(&d, text, len, false, &wire) == PMD_OK);
    /* (The deflater is parked after odd messages, so even ones start from nothing.) */
    if (msg % 2 == 1 && len <= (1u << bits) / 2) {
      CHECKF(wire.len < len / 4, "bits %d msg %u: %zu bytes for %zu, not back-references", bits,
             msg, wire.len, len);
    }
    CHECK(pmd_inflate_message(&i, wire.data, wire.len, 0, false, &back) == PMD_OK);
    CHECKF(back.len == len, "bits %d len %zu msg %u: got %zu", bits, len, msg, back.len);
    if (back.len == len) CHECK_MEM(back.data, text, len);
    received += len;
    free(wire.data);
    free(back.data);

    CHECK(pmd_stream_park(&i));
    CHECK(!i.started);
    size_t window = received < (1u << bits) ? received : (1u << bits);
    CHECKF(i.window_len == window, "bits %d: window %u, expected %zu", bits, i.window_len, window);
    if (msg % 2) {
      /* A parked deflater restarts from an empty window: still a valid stream to continue. */
      CHECK(pmd_stream_park(&d));
      CHECK(!d.started && d.window == NULL);
    }
  }
  free(text);
  pmd_stream_end(&d);
  pmd_stream_end(&i);
  CHECK(i.window == NULL);
}

static void test_park(void) {
  for (int bits = 9; bits <= 15; bits += 3) {
    park_round_trip(bits, 100);
    park_round_trip(bits, 3000);
  }
  park_round_trip(15, 100000); /* more than the window: the last 32 KiB are kept */

  /* Idle counting: started streams only, reset by any message. */
  pmd_stream i;
  pmd_inflater_init(&i, 15);
  CHECK(!pmd_stream_idle(&i, 1)); /* never started */
  pmd_buffer back = {0};
  static const uint8_t empty_message[1] = {0x00};
  CHECK(pmd_inflate_message(&i, empty_message, 1, 0, false, &back) == PMD_OK);
  CHECK(!pmd_stream_idle(&i, 2));
  CHECK(pmd_stream_idle(&i, 2));
  CHECK(pmd_inflate_message(&i, empty_message, 1, 0, false, &back) == PMD_OK);
  CHECK(!pmd_stream_idle(&i, 2));
  CHECK(pmd_stream_park(&i));
  CHECK(!pmd_stream_idle(&i, 1)); /* parked: nothing to count */
  pmd_stream_end(&i);
  free(back.data);
}

int main(void) {
  RUN(test_round_trips);
  RUN(test_context_takeover);
  RUN(test_cap);
  RUN(test_corrupt);
  RUN(test_bfinal);
  RUN(test_park);
  return CHECK_DONE();
}
