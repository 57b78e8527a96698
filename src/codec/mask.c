/* The RFC 6455 masking XOR (section 5.3), applied a word or SIMD vector at a time.
 * Owns the key-phase rotation; frame parsing and encoding only call in here. */
#include "mask.h"

#include <string.h>

#if defined(__SSE2__) && !defined(WSN_MASK_PORTABLE)
#include <emmintrin.h>
#endif

/* memcpy is how C11 spells an unaligned, alias-safe load; compilers turn it into one mov. */
static inline uint64_t load_u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, sizeof v); }

void mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
               uint64_t offset) {
  /* The key repeats every 4 bytes, so a 16-byte pattern rotated to the current phase stays
   * in phase at every multiple of 4 (and so of 8 and 16) bytes after it. */
  uint8_t pattern[16];
  for (unsigned i = 0; i < sizeof pattern; i++) pattern[i] = key[(offset + i) & 3];

  size_t i = 0;
#if defined(__SSE2__) && !defined(WSN_MASK_PORTABLE)
  /* Four vectors per turn: all loads before any store, because dst may equal src, and
   * interleaving would make the compiler assume a partial overlap it has to respect. */
  const __m128i k = _mm_loadu_si128((const __m128i *)pattern);
  for (; i + 64 <= len; i += 64) {
    __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
    __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
    _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
    _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
    _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
    _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
  }
  for (; i + 16 <= len; i += 16) {
    __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
    _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
  }
#else
  const uint64_t k64 = load_u64(pattern);
  for (; i + 32 <= len; i += 32) {
    uint64_t a = load_u64(src + i), b = load_u64(src + i + 8);
    uint64_t c = load_u64(src + i + 16), d = load_u64(src + i + 24);
    store_u64(dst + i, a ^ k64);
    store_u64(dst + i + 8, b ^ k64);
    store_u64(dst + i + 16, c ^ k64);
    store_u64(dst + i + 24, d ^ k64);
  }
#endif
  for (; i + 8 <= len; i += 8) store_u64(dst + i, load_u64(src + i) ^ load_u64(pattern));
  for (; i < len; i++) dst[i] = src[i] ^ pattern[i & 7];
}

void mask_apply(uint8_t *buf, size_t len, const uint8_t key[4], uint64_t offset) {
  mask_copy(buf, buf, len, key, offset);
}
