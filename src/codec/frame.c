/* RFC 6455 frame parsing (an incremental state machine over caller-owned bytes) and frame
 * header encoding. Message-level rules (fragment order, maxPayload, UTF-8) live in conn.c. */
#include "frame.h"

#include <string.h>

#include "mask.h"

enum parser_state { STATE_HEADER = 0, STATE_PAYLOAD, STATE_ERROR };

void frame_parser_init(frame_parser *p, bool expect_masked, bool allow_rsv1) {
  memset(p, 0, sizeof(*p));
  p->expect_masked = expect_masked;
  p->allow_rsv1 = allow_rsv1;
  p->state = STATE_HEADER;
}

bool frame_parser_idle(const frame_parser *p) {
  return p->state == STATE_HEADER && p->header_len == 0;
}

uint64_t frame_payload_left(const frame_parser *p) {
  return p->state == STATE_PAYLOAD ? p->frame.payload_len - p->payload_done : 0;
}

void frame_payload_skip(frame_parser *p, uint64_t n) {
  uint64_t left = frame_payload_left(p);
  p->payload_done += n < left ? n : left;
}

static frame_event fail(frame_parser *p, frame_error error) {
  p->state = STATE_ERROR;
  p->error = error;
  return FRAME_ERROR;
}

/* Everything that can be judged from the first two bytes is judged there, so a bad frame
 * fails before we wait for (or buffer) the rest of its header. The order of checks follows
 * ws so that the same frame yields the same error code. */
static frame_error check_first_two(frame_parser *p, uint8_t b0, uint8_t b1) {
  bool fin = (b0 & 0x80) != 0;
  bool rsv1 = (b0 & 0x40) != 0;
  uint8_t opcode = b0 & 0x0F;
  uint8_t len7 = b1 & 0x7F;
  bool masked = (b1 & 0x80) != 0;

  /* Recorded so an error message can name the offending opcode or length. */
  p->frame.opcode = opcode;
  p->frame.payload_len = len7;

  if (b0 & 0x30) return FRAME_ERR_RSV23;
  if (rsv1 && !p->allow_rsv1) return FRAME_ERR_RSV1;
  switch (opcode) {
    case OP_CONTINUATION:
      /* RFC 7692: only the first frame of a message may carry RSV1. */
      if (rsv1) return FRAME_ERR_RSV1;
      break;
    case OP_TEXT:
    case OP_BINARY: break;
    case OP_CLOSE:
    case OP_PING:
    case OP_PONG:
      if (!fin) return FRAME_ERR_CONTROL_FIN;
      if (rsv1) return FRAME_ERR_RSV1;
      if (len7 > FRAME_MAX_CONTROL) return FRAME_ERR_CONTROL_LENGTH;
      break;
    default: return FRAME_ERR_OPCODE;
  }
  if (masked != p->expect_masked)
    return p->expect_masked ? FRAME_ERR_MASK_EXPECTED : FRAME_ERR_MASK_UNEXPECTED;
  return FRAME_ERR_NONE;
}

static uint8_t header_size_from_first_two(uint8_t b1) {
  uint8_t len7 = b1 & 0x7F;
  uint8_t size = 2;
  if (len7 == 126) size += 2;
  else if (len7 == 127)
    size += 8;
  if (b1 & 0x80) size += 4;
  return size;
}

/* Decodes a complete header (already checked by check_first_two) into p->frame. */
static frame_event decode_header(frame_parser *p, const uint8_t *h) {
  frame_info *f = &p->frame;
  uint8_t len7 = h[1] & 0x7F;
  size_t pos = 2;

  f->fin = (h[0] & 0x80) != 0;
  f->rsv1 = (h[0] & 0x40) != 0;
  f->opcode = h[0] & 0x0F;
  f->masked = (h[1] & 0x80) != 0;

  if (len7 < 126) {
    f->payload_len = len7;
  } else if (len7 == 126) {
    f->payload_len = ((uint64_t)h[2] << 8) | h[3];
    pos = 4;
  } else {
    uint64_t len = 0;
    for (int i = 0; i < 8; i++) len = (len << 8) | h[2 + i];
    pos = 10;
    if (len >> 63) return fail(p, FRAME_ERR_LENGTH_MSB);
    if (len > FRAME_MAX_SAFE_LENGTH) return fail(p, FRAME_ERR_LENGTH_UNSAFE);
    f->payload_len = len;
  }
  if (f->masked) memcpy(f->mask_key, h + pos, 4);
  else
    memset(f->mask_key, 0, 4);

  p->payload_done = 0;
  p->unmask_payload = true;
  p->header_len = 0;
  p->header_need = 0;
  p->state = STATE_PAYLOAD;
  return FRAME_HEADER;
}

static frame_event parse_header(frame_parser *p, uint8_t *buf, size_t len, size_t *consumed) {
  /* Fast path: a whole header at the start of buf is decoded where it lies, no copy. */
  if (p->header_len == 0 && len >= 2) {
    frame_error err = check_first_two(p, buf[0], buf[1]);
    if (err != FRAME_ERR_NONE) return fail(p, err);
    uint8_t need = header_size_from_first_two(buf[1]);
    if (len >= need) {
      *consumed = need;
      return decode_header(p, buf);
    }
  }

  /* Slow path: the header is split across inputs; collect it byte by byte. */
  size_t used = 0;
  while (used < len) {
    p->header[p->header_len++] = buf[used++];
    if (p->header_len == 2) {
      frame_error err = check_first_two(p, p->header[0], p->header[1]);
      if (err != FRAME_ERR_NONE) {
        *consumed = used;
        return fail(p, err);
      }
      p->header_need = header_size_from_first_two(p->header[1]);
    }
    if (p->header_len >= 2 && p->header_len == p->header_need) {
      *consumed = used;
      return decode_header(p, p->header);
    }
  }
  *consumed = used;
  return FRAME_NEED_MORE;
}

frame_event frame_parse(frame_parser *p, uint8_t *buf, size_t len, size_t *consumed,
                        uint8_t **payload, size_t *payload_len) {
  *consumed = 0;
  *payload = NULL;
  *payload_len = 0;

  switch (p->state) {
    case STATE_HEADER:
      if (len == 0) return FRAME_NEED_MORE;
      return parse_header(p, buf, len, consumed);

    case STATE_PAYLOAD: {
      uint64_t remaining = p->frame.payload_len - p->payload_done;
      if (remaining == 0) {
        p->state = STATE_HEADER;
        return FRAME_END;
      }
      if (len == 0) return FRAME_NEED_MORE;
      size_t take = remaining < len ? (size_t)remaining : len;
      if (p->frame.masked && p->unmask_payload)
        mask_apply(buf, take, p->frame.mask_key, p->payload_done);
      p->payload_done += take;
      *consumed = take;
      *payload = buf;
      *payload_len = take;
      return FRAME_PAYLOAD;
    }

    default: return FRAME_ERROR;
  }
}

size_t frame_header_size(uint64_t payload_len, bool masked) {
  size_t size = 2;
  if (payload_len >= 126) size += payload_len <= 0xFFFF ? 2 : 8;
  if (masked) size += 4;
  return size;
}

size_t frame_header_encode(uint8_t *out, bool fin, bool rsv1, uint8_t opcode, uint64_t payload_len,
                           const uint8_t *mask_key) {
  size_t pos = 2;
  out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
  uint8_t mask_bit = mask_key ? 0x80 : 0;
  if (payload_len < 126) {
    out[1] = (uint8_t)(mask_bit | payload_len);
  } else if (payload_len <= 0xFFFF) {
    out[1] = (uint8_t)(mask_bit | 126);
    out[2] = (uint8_t)(payload_len >> 8);
    out[3] = (uint8_t)payload_len;
    pos = 4;
  } else {
    out[1] = (uint8_t)(mask_bit | 127);
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    pos = 10;
  }
  if (mask_key) {
    memcpy(out + pos, mask_key, 4);
    pos += 4;
  }
  return pos;
}
