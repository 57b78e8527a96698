/* The RFC 6455 masking XOR (section 5.3), applied a word or SIMD vector at a time (SSE2 on
 * x86-64, NEON on arm64). Owns the key-phase rotation; frame parsing and encoding call in here. */
#include "mask.h"

#include <string.h>

#if defined(__SSE2__) && !defined(WSN_MASK_PORTABLE)
#define MASK_HAVE_SSE2 1
#include <emmintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON) && !defined(WSN_MASK_PORTABLE)
#define MASK_HAVE_NEON 1
#include <arm_neon.h>
#endif

/* SSE2 and NEON are part of the base x86-64 and arm64 instruction sets, so the vectors are on
 * wherever they were compiled in; only the tests switch them off (mask_test_set_simd), to
 * check them against the word loop. */
#if defined(MASK_HAVE_SSE2) || defined(MASK_HAVE_NEON)
static int simd_on = 1;
#else
static int simd_on = 0;
#endif

#if defined(__GNUC__)
#define LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#define LOAD_RELAXED(p) (*(p))
#define STORE_RELAXED(p, v) (*(p) = (v))
#endif

/* Test hook, not in mask.h: turns the SIMD loop off (0) or back on (1) and returns whether it
 * is on now (never, where none was compiled in). */
int mask_test_set_simd(int on);
int mask_test_set_simd(int on) {
#if defined(MASK_HAVE_SSE2) || defined(MASK_HAVE_NEON)
  STORE_RELAXED(&simd_on, on ? 1 : 0);
#else
  (void)on;
#endif
  return LOAD_RELAXED(&simd_on);
}

/* memcpy is how C11 spells an unaligned, alias-safe load; compilers turn it into one mov. */
static inline uint64_t load_u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, sizeof v); }

/* Each vector loop returns how many bytes it did, a multiple of 16. Four vectors per turn:
 * all loads before any store, because dst may equal src, and interleaving would make the
 * compiler assume a partial overlap it has to respect. */
#if defined(MASK_HAVE_SSE2)
static size_t mask_vectors(uint8_t *dst, const uint8_t *src, size_t len,
                           const uint8_t pattern[16]) {
  const __m128i k = _mm_loadu_si128((const __m128i *)pattern);
  size_t i = 0;
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
  return i;
}
#elif defined(MASK_HAVE_NEON)
static size_t mask_vectors(uint8_t *dst, const uint8_t *src, size_t len,
                           const uint8_t pattern[16]) {
  const uint8x16_t k = vld1q_u8(pattern);
  size_t i = 0;
  for (; i + 64 <= len; i += 64) {
    uint8x16_t a = vld1q_u8(src + i), b = vld1q_u8(src + i + 16);
    uint8x16_t c = vld1q_u8(src + i + 32), d = vld1q_u8(src + i + 48);
    vst1q_u8(dst + i, veorq_u8(a, k));
    vst1q_u8(dst + i + 16, veorq_u8(b, k));
    vst1q_u8(dst + i + 32, veorq_u8(c, k));
    vst1q_u8(dst + i + 48, veorq_u8(d, k));
  }
  for (; i + 16 <= len; i += 16) vst1q_u8(dst + i, veorq_u8(vld1q_u8(src + i), k));
  return i;
}
#endif

void mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
               uint64_t offset) {
  /* The key repeats every 4 bytes, so a 16-byte pattern rotated to the current phase stays
   * in phase at every multiple of 4 (and so of 8 and 16) bytes after it. */
  uint8_t pattern[16];
  for (unsigned i = 0; i < sizeof pattern; i++) pattern[i] = key[(offset + i) & 3];

  size_t i = 0;
#if defined(MASK_HAVE_SSE2) || defined(MASK_HAVE_NEON)
  if (len >= 16 && LOAD_RELAXED(&simd_on)) i = mask_vectors(dst, src, len, pattern);
#endif
  const uint64_t k64 = load_u64(pattern);
  for (; i + 32 <= len; i += 32) {
    uint64_t a = load_u64(src + i), b = load_u64(src + i + 8);
    uint64_t c = load_u64(src + i + 16), d = load_u64(src + i + 24);
    store_u64(dst + i, a ^ k64);
    store_u64(dst + i + 8, b ^ k64);
    store_u64(dst + i + 16, c ^ k64);
    store_u64(dst + i + 24, d ^ k64);
  }
  for (; i + 8 <= len; i += 8) store_u64(dst + i, load_u64(src + i) ^ k64);
  for (; i < len; i++) dst[i] = src[i] ^ pattern[i & 7];
}

void mask_apply(uint8_t *buf, size_t len, const uint8_t key[4], uint64_t offset) {
  mask_copy(buf, buf, len, key, offset);
}
