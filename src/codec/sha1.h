/* SHA-1 (FIPS 180-4), used only for the handshake's Sec-WebSocket-Accept value.
 * Streaming interface so callers never need to concatenate key and GUID. */
#ifndef WSN_SHA1_H
#define WSN_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_SIZE 20

typedef struct sha1_ctx {
  uint32_t state[5];
  uint64_t total_len; /* bytes hashed so far */
  uint8_t block[64];
  size_t block_len; /* bytes waiting in block */
} sha1_ctx;

void sha1_init(sha1_ctx *ctx);
void sha1_update(sha1_ctx *ctx, const void *data, size_t len);
void sha1_final(sha1_ctx *ctx, uint8_t digest[SHA1_DIGEST_SIZE]);

/* One-shot convenience. */
void sha1(const void *data, size_t len, uint8_t digest[SHA1_DIGEST_SIZE]);

#endif
