/* permessage-deflate (RFC 7692): compressing and decompressing whole messages with zlib (the
 * copy Node itself carries). Output size is capped while inflating, so a small message that
 * would inflate to gigabytes stops at the cap. */
#ifndef WSN_DEFLATE_H
#define WSN_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

typedef enum pmd_result {
  PMD_OK = 0,
  PMD_TOO_BIG, /* the output would pass the cap */
  PMD_CORRUPT, /* not a valid DEFLATE stream */
  PMD_NO_MEMORY
} pmd_result;

/* One zlib stream, created on first use (an idle connection holds no zlib memory) and freed
 * again when parked (pmd_stream_park). */
typedef struct pmd_stream {
  z_stream zs;
  bool started;
  bool deflating;
  uint16_t idle_sweeps; /* pmd_stream_idle() calls since the stream last did any work */
  int window_bits;      /* 8..15 for inflating, 9..15 for deflating (zlib has no 256-byte window) */
  int level;
  int mem_level;
  /* A parked inflater's window: the bytes it produced last (at most 2^window_bits), which the
   * peer's next message may refer back to. Given to zlib as a preset dictionary when the
   * stream restarts, then freed. NULL when none. */
  uint8_t *window;
  uint32_t window_len;
} pmd_stream;

/* A growable malloc'd buffer the codec appends to. */
typedef struct pmd_buffer {
  uint8_t *data;
  size_t len;
  size_t cap;
} pmd_buffer;

void pmd_inflater_init(pmd_stream *s, int window_bits);
void pmd_deflater_init(pmd_stream *s, int window_bits, int level, int mem_level);
/* Frees the zlib state and any parked window (the stream may be used again: it restarts
 * lazily, from an empty window). */
void pmd_stream_end(pmd_stream *s);

/* Frees the zlib state of a stream between messages, keeping what the next message needs: an
 * inflater keeps its window (a few bytes to 32 KiB instead of zlib's ~44 KiB of state), a
 * deflater nothing (it restarts from an empty window, which every inflater accepts; only the
 * next message's compression ratio can suffer). Returns false if memory for the window ran
 * out; the stream is then left as it was. */
bool pmd_stream_park(pmd_stream *s);

/* Counts one more period without work (the caller calls it periodically); true once the
 * stream has been started and idle for `periods` of them, i.e. is worth parking. */
bool pmd_stream_idle(pmd_stream *s, unsigned periods);

/* Inflates one whole message (its compressed bytes, to which the 00 00 ff ff tail of RFC
 * 7692 7.2.2 is added here) and appends the result to out, never letting out pass `cap` bytes
 * (0: no cap). reset: the peer does not take over its context, so neither do we. */
pmd_result pmd_inflate_message(pmd_stream *s, const uint8_t *in, size_t len, uint64_t cap,
                               bool reset, pmd_buffer *out);

/* Deflates one whole message and appends it to out without the trailing 00 00 ff ff.
 * reset: start the next message from an empty window (no context takeover). */
pmd_result pmd_deflate_message(pmd_stream *s, const uint8_t *in, size_t len, bool reset,
                               pmd_buffer *out);

/* Most bytes pmd_deflate_message can append for len input bytes. */
size_t pmd_deflate_bound(const pmd_stream *s, size_t len);

#endif
