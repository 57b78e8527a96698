/* SHA-1 (FIPS 180-4) for the handshake's Sec-WebSocket-Accept value.
 * Owns the compression function, buffering of partial blocks and the length padding. */
#include "sha1.h"

#include <string.h>

static uint32_t rol32(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

/* SHA-1 is defined over big-endian words; assembling bytes by hand keeps this independent
 * of host byte order and of the block's alignment. */
static uint32_t load_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void sha1_compress(uint32_t state[5], const uint8_t block[64]) {
  /* A 16-word ring instead of the 80-word schedule: each W[t] only needs W[t-3..t-16]. */
  uint32_t w[16];
  for (int i = 0; i < 16; i++) w[i] = load_be32(block + 4 * i);

  uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
  for (int t = 0; t < 80; t++) {
    if (t >= 16) {
      uint32_t x = w[(t - 3) & 15] ^ w[(t - 8) & 15] ^ w[(t - 14) & 15] ^ w[t & 15];
      w[t & 15] = rol32(x, 1);
    }
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999u;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1u;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDCu;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6u;
    }
    uint32_t tmp = rol32(a, 5) + f + e + k + w[t & 15];
    e = d;
    d = c;
    c = rol32(b, 30);
    b = a;
    a = tmp;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
}

void sha1_init(sha1_ctx *ctx) {
  ctx->state[0] = 0x67452301u;
  ctx->state[1] = 0xEFCDAB89u;
  ctx->state[2] = 0x98BADCFEu;
  ctx->state[3] = 0x10325476u;
  ctx->state[4] = 0xC3D2E1F0u;
  ctx->total_len = 0;
  ctx->block_len = 0;
}

void sha1_update(sha1_ctx *ctx, const void *data, size_t len) {
  const uint8_t *p = data;
  ctx->total_len += len;

  if (ctx->block_len > 0) {
    size_t take = 64 - ctx->block_len;
    if (take > len) take = len;
    memcpy(ctx->block + ctx->block_len, p, take);
    ctx->block_len += take;
    p += take;
    len -= take;
    if (ctx->block_len < 64) return;
    sha1_compress(ctx->state, ctx->block);
    ctx->block_len = 0;
  }
  /* Whole blocks straight from the caller's memory: no copy through ctx->block. */
  while (len >= 64) {
    sha1_compress(ctx->state, p);
    p += 64;
    len -= 64;
  }
  if (len > 0) {
    memcpy(ctx->block, p, len);
    ctx->block_len = len;
  }
}

void sha1_final(sha1_ctx *ctx, uint8_t digest[SHA1_DIGEST_SIZE]) {
  uint64_t bit_len = ctx->total_len * 8;

  ctx->block[ctx->block_len++] = 0x80;
  /* The 8-byte length must fit after the 0x80; if it does not, pad out a whole extra block. */
  if (ctx->block_len > 56) {
    memset(ctx->block + ctx->block_len, 0, 64 - ctx->block_len);
    sha1_compress(ctx->state, ctx->block);
    ctx->block_len = 0;
  }
  memset(ctx->block + ctx->block_len, 0, 56 - ctx->block_len);
  store_be32(ctx->block + 56, (uint32_t)(bit_len >> 32));
  store_be32(ctx->block + 60, (uint32_t)bit_len);
  sha1_compress(ctx->state, ctx->block);

  for (int i = 0; i < 5; i++) store_be32(digest + 4 * i, ctx->state[i]);
  /* Leave nothing of the message behind in a context the caller may reuse or free. */
  memset(ctx, 0, sizeof *ctx);
}

void sha1(const void *data, size_t len, uint8_t digest[SHA1_DIGEST_SIZE]) {
  sha1_ctx ctx;
  sha1_init(&ctx);
  sha1_update(&ctx, data, len);
  sha1_final(&ctx, digest);
}
