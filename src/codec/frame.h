/* RFC 6455 section 5 framing: an incremental frame parser and a frame-header encoder.
 * The parser is a pure state machine over caller-owned bytes: it never allocates, never
 * copies payload, and gives the same events for any split of the input. */
#ifndef WSN_FRAME_H
#define WSN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
  OP_CONTINUATION = 0x0,
  OP_TEXT = 0x1,
  OP_BINARY = 0x2,
  OP_CLOSE = 0x8,
  OP_PING = 0x9,
  OP_PONG = 0xA
};

#define FRAME_MAX_HEADER 14                             /* 2 + 8 (64-bit length) + 4 (mask key) */
#define FRAME_MAX_CONTROL 125                           /* control frame payload limit */
#define FRAME_MAX_SAFE_LENGTH ((UINT64_C(1) << 53) - 1) /* what a JS number holds exactly */

/* Why a frame was refused. Each maps to one error code and close status in conn.c. */
typedef enum frame_error {
  FRAME_ERR_NONE = 0,
  FRAME_ERR_RSV1,            /* RSV1 set, not negotiated (or on a control or continuation frame) */
  FRAME_ERR_RSV23,           /* RSV2 or RSV3 set */
  FRAME_ERR_OPCODE,          /* reserved opcode */
  FRAME_ERR_CONTROL_FIN,     /* fragmented control frame */
  FRAME_ERR_CONTROL_LENGTH,  /* control frame payload over 125 bytes */
  FRAME_ERR_MASK_EXPECTED,   /* server got an unmasked frame */
  FRAME_ERR_MASK_UNEXPECTED, /* client got a masked frame */
  FRAME_ERR_LENGTH_MSB,      /* 64-bit length with its most significant bit set */
  FRAME_ERR_LENGTH_UNSAFE    /* length above 2^53 - 1 */
} frame_error;

typedef enum frame_event {
  FRAME_NEED_MORE = 0, /* every byte given was consumed; call again with more */
  FRAME_HEADER,        /* a header was completed; its fields are in parser->frame */
  FRAME_PAYLOAD,       /* *payload / *payload_len hold unmasked payload bytes (in place) */
  FRAME_END,           /* the current frame's payload is complete */
  FRAME_ERROR          /* parser->error says why (frame.opcode and, for a control frame's
                          length, frame.payload_len name the culprit); the state is final */
} frame_event;

typedef struct frame_info {
  bool fin;
  bool rsv1;
  bool masked;
  uint8_t opcode;
  uint8_t mask_key[4];
  uint64_t payload_len;
} frame_info;

typedef struct frame_parser {
  /* configuration, set once */
  bool expect_masked; /* server side: client frames must be masked; client side: must not be */
  bool allow_rsv1;    /* an extension (permessage-deflate) gave RSV1 a meaning */

  /* Set true at every header. A caller that will copy the current frame's payload anyway
   * clears it after FRAME_HEADER and unmasks while copying (mask_copy with the frame's key,
   * at offset payload_done - payload_len), saving a pass over the bytes. */
  bool unmask_payload;

  /* state */
  uint8_t state;
  uint8_t header_len;  /* header bytes collected so far */
  uint8_t header_need; /* header bytes needed in total (known after the first two) */
  uint8_t header[FRAME_MAX_HEADER];
  uint64_t payload_done; /* payload bytes of the current frame already returned */
  frame_info frame;
  frame_error error;
} frame_parser;

void frame_parser_init(frame_parser *p, bool expect_masked, bool allow_rsv1);

/* True between frames: nothing of a frame has been parsed yet, so the parser holds nothing
 * but its configuration (a new one from frame_parser_init would do the same). */
bool frame_parser_idle(const frame_parser *p);

/* Payload bytes the current frame still has to come: 0 outside a frame's payload. */
uint64_t frame_payload_left(const frame_parser *p);

/* The caller took n (at most frame_payload_left) of those bytes itself, without frame_parse:
 * the parser counts them as returned (it neither sees nor unmasks them). */
void frame_payload_skip(frame_parser *p, uint64_t n);

/* Advances over buf[0..len). Returns one event and stores in *consumed how many bytes of buf
 * it used (possibly 0 for FRAME_END on an empty frame). For FRAME_PAYLOAD, the payload bytes
 * are returned through payload/payload_len (they lie within buf), unmasked in place unless
 * the caller cleared unmask_payload. The caller loops, advancing buf by *consumed, until
 * FRAME_NEED_MORE or FRAME_ERROR. */
frame_event frame_parse(frame_parser *p, uint8_t *buf, size_t len, size_t *consumed,
                        uint8_t **payload, size_t *payload_len);

/* Bytes of header frame_header_encode writes for this payload length and masking. */
size_t frame_header_size(uint64_t payload_len, bool masked);

/* Writes a frame header (first byte from fin/rsv1/opcode, the shortest length encoding, and
 * mask_key when non-NULL) into out, which holds FRAME_MAX_HEADER bytes. Returns its size.
 * The caller masks the payload itself (mask_apply) when mask_key is given. */
size_t frame_header_encode(uint8_t *out, bool fin, bool rsv1, uint8_t opcode, uint64_t payload_len,
                           const uint8_t *mask_key);

#endif
