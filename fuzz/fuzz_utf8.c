/* libFuzzer target for src/codec/utf8.c: utf8_feed over random splits, utf8_is_valid in one
 * shot and the reference decoder in fuzz_util.h must agree, and fail fast in the right piece.
 *
 * Input: [flags][n][n split sizes][data]. flags bits 0-2: misalignment of each piece; bits
 * 3-4: the SIMD level to cap utf8.c at (0 DFA only, 1 SSSE3 or NEON, 2+ AVX2), so every path
 * the machine has is fuzzed, not only the one it would pick. */
#include <stdint.h>

#include "fuzz_util.h"
#include "codec/utf8.h"

/* utf8.c's test hook (not in utf8.h). Weak, so this target still links against a utf8.c
 * without one; then only the level the CPU picks is fuzzed. */
__attribute__((weak)) int utf8_test_set_simd_level(int level);

static utf8_result expected_result(const ref_utf8 *r) {
  if (r->bad) return UTF8_INVALID;
  return r->have == 0 ? UTF8_COMPLETE : UTF8_PARTIAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  if (size < 2) return 0;
  size_t shift = in[0] & 7;
  if (utf8_test_set_simd_level) utf8_test_set_simd_level((in[0] >> 3) & 3);
  size_t nsplit = in[1] & 15;
  if (size < 2 + nsplit) return 0;
  split_plan plan = {.sizes = in + 2, .count = nsplit};
  const uint8_t *data = in + 2 + nsplit;
  size_t len = size - 2 - nsplit;

  ref_utf8 ref;
  ref_utf8_init(&ref);
  utf8_state st;
  utf8_state_init(&st);

  /* Incremental: after each piece, the feed's verdict equals the reference's on the prefix.
   * Since the reference turns bad exactly at the first invalid byte, this is also the
   * fail-fast promise: the piece holding that byte is the one that reports it. */
  size_t pos = 0;
  do {
    size_t n = split_next(&plan, len - pos);
    piece pc = piece_copy(data + pos, n, shift);
    utf8_result got = utf8_feed(&st, pc.data, n);
    FUZZ_CHECK(memcmp(pc.data, data + pos, n) == 0); /* input is read only */
    piece_free(&pc);
    ref_utf8_feed(&ref, data + pos, n);
    FUZZ_CHECK(got == expected_result(&ref));
    FUZZ_CHECK(utf8_state_complete(&st) == (got == UTF8_COMPLETE));
    pos += n;
  } while (pos < len);

  /* An empty feed reports the state unchanged. */
  FUZZ_CHECK(utf8_feed(&st, in, 0) == expected_result(&ref));

  /* One shot over the whole input, also misaligned. */
  piece whole = piece_copy(data, len, shift);
  bool valid = utf8_is_valid(whole.data, len);
  utf8_state one;
  utf8_state_init(&one);
  utf8_result one_result = utf8_feed(&one, whole.data, len);
  piece_free(&whole);
  FUZZ_CHECK(valid == ref_utf8_complete(&ref));
  FUZZ_CHECK(one_result == expected_result(&ref));
  return 0;
}
