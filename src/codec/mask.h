/* The RFC 6455 masking XOR, done a machine word (or SIMD vector) at a time. The same
 * operation masks and unmasks. */
#ifndef WSN_MASK_H
#define WSN_MASK_H

#include <stddef.h>
#include <stdint.h>

/* XORs len bytes of buf in place with key, starting at position `offset` of the 4-byte key
 * cycle (offset is the number of payload bytes already processed; only offset % 4 matters).
 * Works for any alignment of buf and any len, including 0. */
void mask_apply(uint8_t *buf, size_t len, const uint8_t key[4], uint64_t offset);

/* Same, but reads src and writes dst (they may be the same pointer but must not otherwise
 * overlap). Used when the masked bytes go into a new buffer, so we copy and mask in one pass. */
void mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4], uint64_t offset);

#endif
