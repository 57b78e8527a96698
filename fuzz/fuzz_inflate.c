/* libFuzzer target for the permessage-deflate codec: arbitrary bytes inflated as messages
 * (output never past the cap, results agree with a plain zlib inflate of the same bytes), and
 * arbitrary plaintext deflated then inflated back, in both context-takeover modes, with the
 * streams parked (pmd_stream_park) between the messages or not. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "codec/deflate.h"

/* The reference: one raw inflate of in + 00 00 ff ff into a buffer of cap + 1 bytes. Returns
 * the output length, or (size_t)-1 when zlib reports an error. */
static size_t reference_inflate(const uint8_t *in, size_t len, int window_bits, uint8_t *out,
                                size_t room) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -window_bits) != Z_OK) return (size_t)-1;
  uint8_t *msg = malloc(len + 4);
  if (!msg) {
    inflateEnd(&zs);
    return (size_t)-1;
  }
  memcpy(msg, in, len);
  memcpy(msg + len, "\x00\x00\xff\xff", 4);
  zs.next_in = msg;
  zs.avail_in = (uInt)(len + 4);
  zs.next_out = out;
  zs.avail_out = (uInt)room;
  int rc = inflate(&zs, Z_SYNC_FLUSH);
  size_t produced = room - zs.avail_out;
  bool ended = rc == Z_STREAM_END;
  bool error = !(rc == Z_OK || rc == Z_BUF_ERROR || ended);
  /* Bytes after a final block, other than the tail, are an error for the codec. */
  if (ended && zs.avail_in > 4) error = true;
  inflateEnd(&zs);
  free(msg);
  return error ? (size_t)-1 : produced;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  int window_bits = 8 + (data[0] & 7);
  bool reset = data[0] & 8;
  bool park_inflater = data[0] & 16, park_deflater = data[0] & 32;
  size_t cap = 1 + (size_t)data[1] * 257; /* 1 .. 65536 */
  data += 2;
  size -= 2;

  /* 1. Arbitrary bytes as one compressed message, with a fresh stream each time so the
   * reference (which has no history) can be compared. */
  pmd_stream inflater;
  pmd_inflater_init(&inflater, window_bits);
  pmd_buffer out = {0};
  pmd_result r = pmd_inflate_message(&inflater, data, size, cap, reset, &out);
  if (out.len > cap + 1 || out.cap > cap + 1) __builtin_trap();
  uint8_t *ref = malloc(cap + 1);
  if (ref) {
    size_t expect = reference_inflate(data, size, window_bits, ref, cap + 1);
    if (r == PMD_OK) {
      if (expect == (size_t)-1 || expect != out.len || memcmp(ref, out.data, out.len) != 0)
        __builtin_trap();
    } else if (r == PMD_TOO_BIG) {
      /* The reference filled its cap + 1 bytes too (or found an error beyond the cap). */
      if (expect != (size_t)-1 && expect <= cap) __builtin_trap();
    }
    free(ref);
  }
  free(out.data);
  pmd_stream_end(&inflater);

  /* 2. The same bytes as plaintext: two messages deflated and inflated back in order. */
  pmd_stream deflater, back;
  pmd_deflater_init(&deflater, window_bits < 9 ? 9 : window_bits, Z_DEFAULT_COMPRESSION, 8);
  pmd_inflater_init(&back, 15);
  for (int round = 0; round < 2; round++) {
    pmd_buffer wire = {0}, plain = {0};
    if (pmd_deflate_message(&deflater, data, size, reset, &wire) != PMD_OK) __builtin_trap();
    if (pmd_inflate_message(&back, wire.data, wire.len, 0, reset, &plain) != PMD_OK)
      __builtin_trap();
    if (plain.len != size || (size && memcmp(plain.data, data, size) != 0)) __builtin_trap();
    free(wire.data);
    free(plain.data);
    /* Unless the deflater restarts, the second message refers back into the first: a parked
     * inflater resolves that only with its kept window. */
    if (park_inflater && !pmd_stream_park(&back)) __builtin_trap();
    if (park_deflater && !pmd_stream_park(&deflater)) __builtin_trap();
  }
  pmd_stream_end(&deflater);
  pmd_stream_end(&back);
  return 0;
}
