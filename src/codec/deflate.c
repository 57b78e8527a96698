/* permessage-deflate's two directions over zlib raw DEFLATE streams: lazy stream setup,
 * capped inflation, and the 00 00 ff ff tail that RFC 7692 strips on the wire. */
#include "deflate.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t EMPTY_BLOCK_TAIL[4] = {0x00, 0x00, 0xff, 0xff};

void pmd_inflater_init(pmd_stream *s, int window_bits) {
  memset(s, 0, sizeof(*s));
  s->window_bits = window_bits;
}

void pmd_deflater_init(pmd_stream *s, int window_bits, int level, int mem_level) {
  memset(s, 0, sizeof(*s));
  s->deflating = true;
  /* zlib's raw deflate cannot use a 256-byte window (it would silently use 512, which a peer
   * limited to 8 bits could not decode): negotiation never agrees to 8 for our side. */
  s->window_bits = window_bits < 9 ? 9 : window_bits;
  s->level = level;
  s->mem_level = mem_level;
}

static void zlib_end(pmd_stream *s) {
  if (s->deflating) deflateEnd(&s->zs);
  else
    inflateEnd(&s->zs);
  s->started = false;
}

void pmd_stream_end(pmd_stream *s) {
  free(s->window);
  s->window = NULL;
  s->window_len = 0;
  if (s->started) zlib_end(s);
}

bool pmd_stream_park(pmd_stream *s) {
  if (!s->started) return true;
  if (!s->deflating) {
    uInt len = 0;
    if (inflateGetDictionary(&s->zs, NULL, &len) != Z_OK) return false;
    if (len > 0) {
      uint8_t *window = malloc(len);
      if (!window) return false;
      inflateGetDictionary(&s->zs, window, &len);
      s->window = window;
      s->window_len = len;
    }
  }
  zlib_end(s);
  return true;
}

bool pmd_stream_idle(pmd_stream *s, unsigned periods) {
  if (!s->started) return false;
  if (s->idle_sweeps < UINT16_MAX) s->idle_sweeps++;
  return s->idle_sweeps >= periods;
}

static bool stream_start(pmd_stream *s) {
  s->idle_sweeps = 0; /* (called by every message: the stream is in use) */
  if (s->started) return true;
  memset(&s->zs, 0, sizeof(s->zs));
  int rc = s->deflating ? deflateInit2(&s->zs, s->level, Z_DEFLATED, -s->window_bits, s->mem_level,
                                       Z_DEFAULT_STRATEGY)
                        : inflateInit2(&s->zs, -s->window_bits);
  if (rc != Z_OK) return false;
  s->started = true;
  if (s->window != NULL) {
    /* A raw inflater takes a dictionary right after init: the parked window comes back. */
    rc = inflateSetDictionary(&s->zs, s->window, s->window_len);
    free(s->window);
    s->window = NULL;
    s->window_len = 0;
    if (rc != Z_OK) {
      zlib_end(s);
      return false;
    }
  }
  return true;
}

/* Makes room for at least `want` more bytes (capped at cap + 1 total when cap != 0, so that
 * passing the cap can be detected). Returns the room available. */
static size_t buffer_room(pmd_buffer *b, size_t want, uint64_t cap) {
  if (b->cap - b->len >= want && want > 0) return b->cap - b->len;
  size_t target = b->cap ? b->cap * 2 : 4096;
  if (target < b->len + want) target = b->len + want;
  if (cap && target > cap + 1) target = (size_t)cap + 1;
  if (target <= b->cap) return b->cap - b->len;
  uint8_t *grown = realloc(b->data, target);
  if (!grown) return 0;
  b->data = grown;
  b->cap = target;
  return b->cap - b->len;
}

pmd_result pmd_inflate_message(pmd_stream *s, const uint8_t *in, size_t len, uint64_t cap,
                               bool reset, pmd_buffer *out) {
  if (!stream_start(s)) return PMD_NO_MEMORY;
  z_stream *zs = &s->zs;
  pmd_result result = PMD_OK;
  /* Two inputs: the message, then the tail that makes the final empty block complete. */
  const uint8_t *inputs[2] = {in, EMPTY_BLOCK_TAIL};
  size_t lengths[2] = {len, sizeof(EMPTY_BLOCK_TAIL)};
  bool stream_ended = false;

  for (int part = 0; part < 2 && result == PMD_OK && !stream_ended; part++) {
    zs->next_in = (Bytef *)(uintptr_t)inputs[part];
    zs->avail_in = (uInt)lengths[part];
    for (;;) {
      size_t room = buffer_room(out, lengths[part] * 2 + 1024, cap);
      if (room == 0) {
        result = (cap && out->len > cap) ? PMD_TOO_BIG : PMD_NO_MEMORY;
        break;
      }
      if (room > UINT32_MAX) room = UINT32_MAX;
      zs->next_out = out->data + out->len;
      zs->avail_out = (uInt)room;
      int rc = inflate(zs, Z_SYNC_FLUSH);
      out->len += room - zs->avail_out;
      if (cap && out->len > cap) {
        result = PMD_TOO_BIG;
        break;
      }
      if (rc == Z_STREAM_END) {
        /* The peer ended its DEFLATE stream (BFINAL): only our own tail may follow it. */
        stream_ended = true;
        if (part == 0 && zs->avail_in > 0) result = PMD_CORRUPT;
        inflateReset(zs);
        break;
      }
      if (rc == Z_BUF_ERROR || (rc == Z_OK && zs->avail_in == 0 && zs->avail_out > 0)) {
        /* No progress possible without more input: this part is consumed. */
        if (zs->avail_in > 0 && zs->avail_out > 0) result = PMD_CORRUPT;
        break;
      }
      if (rc != Z_OK) {
        result = rc == Z_MEM_ERROR ? PMD_NO_MEMORY : PMD_CORRUPT;
        break;
      }
    }
  }
  if (result != PMD_OK) {
    /* The stream's state is unknown after a failure; the connection is failing anyway. */
    pmd_stream_end(s);
  } else if (reset) {
    inflateReset(zs);
  }
  return result;
}

size_t pmd_deflate_bound(const pmd_stream *s, size_t len) {
  (void)s;
  /* deflateBound() needs a started stream; this is zlib's documented worst case for stored
   * blocks plus room for the sync flush marker. */
  return len + (len >> 12) + (len >> 14) + (len >> 25) + 13 + 6 + 16;
}

pmd_result pmd_deflate_message(pmd_stream *s, const uint8_t *in, size_t len, bool reset,
                               pmd_buffer *out) {
  if (!stream_start(s)) return PMD_NO_MEMORY;
  z_stream *zs = &s->zs;
  zs->next_in = (Bytef *)(uintptr_t)in;
  zs->avail_in = (uInt)len;
  size_t start = out->len;
  for (;;) {
    size_t room = buffer_room(out, pmd_deflate_bound(s, zs->avail_in), 0);
    if (room == 0) return PMD_NO_MEMORY;
    if (room > UINT32_MAX) room = UINT32_MAX;
    zs->next_out = out->data + out->len;
    zs->avail_out = (uInt)room;
    int rc = deflate(zs, Z_SYNC_FLUSH);
    out->len += room - zs->avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return PMD_NO_MEMORY;
    /* Done when all input is in and the flush fit (zlib left output space unused). */
    if (zs->avail_in == 0 && zs->avail_out > 0) break;
  }
  /* A sync flush ends with an empty stored block, 00 00 ff ff, which the wire leaves out. */
  if (out->len - start >= 4 && memcmp(out->data + out->len - 4, EMPTY_BLOCK_TAIL, 4) == 0) {
    out->len -= 4;
  } else if (out->len == start) {
    /* An empty message with nothing pending makes zlib write nothing, not even the marker;
     * the receiver appends the tail regardless, so send the block header it completes: a
     * single 0x00 (RFC 7692 section 7.2.3.6). */
    if (buffer_room(out, 1, 0) == 0) return PMD_NO_MEMORY;
    out->data[out->len++] = 0x00;
  }
  if (reset) deflateReset(zs);
  return PMD_OK;
}
