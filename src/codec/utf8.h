/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF). A message may arrive in many pieces; the state carries a partial sequence from one
 * piece to the next so an invalid byte is caught in the piece where it appears. */
#ifndef WSN_UTF8_H
#define WSN_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum utf8_result {
  UTF8_COMPLETE = 0, /* everything so far is valid and no sequence is left open */
  UTF8_PARTIAL = 1,  /* valid so far, but the last sequence is unfinished */
  UTF8_INVALID = 2   /* an invalid byte was seen; the state stays invalid */
} utf8_result;

typedef struct utf8_state {
  uint32_t dfa; /* 0 = between sequences; other values are mid-sequence or the reject state */
} utf8_state;

static inline void utf8_state_init(utf8_state *s) { s->dfa = 0; }

/* True when everything fed so far was valid and ended on a sequence boundary. */
static inline bool utf8_state_complete(const utf8_state *s) { return s->dfa == 0; }

/* Feeds len more bytes. Returns the state after them. Once UTF8_INVALID, it stays so. */
utf8_result utf8_feed(utf8_state *s, const uint8_t *data, size_t len);

/* One-shot check of a whole buffer. */
bool utf8_is_valid(const uint8_t *data, size_t len);

#endif
