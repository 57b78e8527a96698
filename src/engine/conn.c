/* The per-connection protocol engine: turns frames into messages and control events, applies
 * the message-level rules of RFC 6455, answers pings and close frames, and queues output. */
#include "engine/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/close_code.h"
#include "codec/mask.h"
#include "engine/random.h"

enum { DEFERRED_NONE = 0, DEFERRED_CONTROL, DEFERRED_FAILURE };

static const conn_error_desc error_table[] = {
    [CONN_OK] = {"", 1000, "", false},
    [CONN_ERR_RSV1] = {"WS_ERR_UNEXPECTED_RSV_1", 1002, "RSV1 must be clear", true},
    [CONN_ERR_RSV23] = {"WS_ERR_UNEXPECTED_RSV_2_3", 1002, "RSV2 and RSV3 must be clear", true},
    [CONN_ERR_OPCODE] = {"WS_ERR_INVALID_OPCODE", 1002, "invalid opcode %d", true},
    [CONN_ERR_CONTROL_FIN] = {"WS_ERR_EXPECTED_FIN", 1002, "FIN must be set", true},
    [CONN_ERR_CONTROL_LENGTH] = {"WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH", 1002,
                                 "invalid payload length %d", true},
    [CONN_ERR_MASK_EXPECTED] = {"WS_ERR_EXPECTED_MASK", 1002, "MASK must be set", true},
    [CONN_ERR_MASK_UNEXPECTED] = {"WS_ERR_UNEXPECTED_MASK", 1002, "MASK must be clear", true},
    /* RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0, so it is a
     * protocol error (1002); a length that merely exceeds what we handle is 1009, as in ws. */
    [CONN_ERR_LENGTH_MSB] = {"WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH", 1002,
                             "Unsupported WebSocket frame: payload length > 2^53 - 1", false},
    [CONN_ERR_LENGTH_UNSAFE] = {"WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH", 1009,
                                "Unsupported WebSocket frame: payload length > 2^53 - 1", false},
    [CONN_ERR_MAX_PAYLOAD] = {"WS_ERR_UNSUPPORTED_MESSAGE_LENGTH", 1009,
                              "Max payload size exceeded", false},
    [CONN_ERR_CLOSE_CODE] = {"WS_ERR_INVALID_CLOSE_CODE", 1002, "invalid status code %d", true},
    [CONN_ERR_UTF8] = {"WS_ERR_INVALID_UTF8", 1007, "invalid UTF-8 sequence", true},
    /* Each fragment costs bookkeeping however small it is: a cap stops a peer from making a
     * message out of millions of empty frames. */
    [CONN_ERR_TOO_MANY_FRAGMENTS] = {"WS_ERR_TOO_MANY_BUFFERED_PARTS", 1008,
                                     "Too many message fragments", false},
    [CONN_ERR_INFLATE] = {"WS_ERR_INVALID_COMPRESSED_DATA", 1007,
                          "invalid compressed data (permessage-deflate)", true},
    [CONN_ERR_NO_MEMORY] = {"WS_ERR_OUT_OF_MEMORY", 1011, "out of memory", false},
};

const conn_error_desc *conn_error_info(conn_error err) {
  if ((size_t)err >= sizeof(error_table) / sizeof(error_table[0])) err = CONN_OK;
  return &error_table[err];
}

char *conn_error_message(conn_error err, int detail, char *out, size_t out_size) {
  const conn_error_desc *d = conn_error_info(err);
  char body[128];
  /* The table's formats are literals with at most one %d; the argument is ignored if unused. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
  snprintf(body, sizeof(body), d->format, detail);
#pragma GCC diagnostic pop
  snprintf(out, out_size, "%s%s", d->prefixed ? "Invalid WebSocket frame: " : "", body);
  return out;
}

void conn_init(conn *c, const conn_config *config) {
  memset(c, 0, sizeof(*c));
  c->config = config;
}

/* Frees what the message being received holds, and forgets it. */
static void message_reset(conn_progress *p) {
  free(p->fragment_ends);
  p->fragment_ends = NULL;
  p->fragment_count = 0;
  p->fragment_cap = 0;
  free(p->message_buf);
  p->message_buf = NULL;
  p->message_len = 0;
  p->message_cap = 0;
  p->message_size = 0;
  p->in_message = false;
  p->message_compressed = false;
  utf8_state_init(&p->utf8);
}

static void stream_free(pmd_stream **s) {
  if (*s == NULL) return;
  pmd_stream_end(*s);
  free(*s);
  *s = NULL;
}

void conn_release(conn *c) {
  if (c->progress) {
    message_reset(c->progress);
    free(c->progress);
    c->progress = NULL;
  }
  if (c->zlib) {
    free(c->zlib->pending_inflate.data);
    stream_free(&c->zlib->inflater);
    stream_free(&c->zlib->deflater);
    free(c->zlib);
    c->zlib = NULL;
  }
  free(c->out);
  c->out = NULL;
  c->out_len = 0;
  c->out_cap = 0;
  free(c->keys);
  c->keys = NULL;
}

/* The connection's permessage-deflate state, made on first use; NULL when memory runs out. */
static conn_zlib *zlib_of(conn *c) {
  if (c->zlib == NULL) c->zlib = calloc(1, sizeof(*c->zlib));
  return c->zlib;
}

/* ---- output queue ---- */

static bool out_reserve(conn *c, size_t extra) {
  if (extra > SIZE_MAX - c->out_len) return false;
  size_t need = c->out_len + extra;
  if (need <= c->out_cap) return true;
  size_t cap = c->out_cap ? c->out_cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  uint8_t *grown = realloc(c->out, cap);
  if (!grown) return false;
  c->out = grown;
  c->out_cap = cap;
  return true;
}

bool conn_output_ensure(conn *c, size_t extra) { return out_reserve(c, extra); }

static bool next_mask_key(conn *c, uint8_t key[4]) {
  conn_mask_keys *k = c->keys;
  if (k == NULL) {
    if ((k = c->keys = malloc(sizeof(*k))) == NULL) return false;
    k->used = sizeof(k->pool);
  }
  if (k->used + 4 > sizeof(k->pool)) {
    if (!random_fill(k->pool, sizeof(k->pool))) return false;
    k->used = 0;
  }
  memcpy(key, k->pool + k->used, 4);
  k->used += 4;
  return true;
}

/* Writes a header for a frame of len bytes and returns where its payload goes. */
static uint8_t *frame_reserve_raw(conn *c, uint8_t opcode, bool fin, bool rsv1, size_t len) {
  bool masked = !c->config->is_server;
  size_t header = frame_header_size(len, masked);
  if (!out_reserve(c, header + len)) return NULL;
  uint8_t key[4];
  if (masked && !next_mask_key(c, key)) return NULL;
  c->out_len += frame_header_encode(c->out + c->out_len, fin, rsv1, opcode, len,
                                    masked ? key : NULL);
  uint8_t *payload = c->out + c->out_len;
  c->out_len += len;
  return payload;
}

/* A data frame continues a message begun with fin = false; RSV1 belongs to the first only. */
static uint8_t wire_opcode(const conn *c, uint8_t opcode, bool *rsv1) {
  if ((opcode == OP_TEXT || opcode == OP_BINARY) && c->out_fragmenting) {
    *rsv1 = false;
    return OP_CONTINUATION;
  }
  return opcode;
}

static void after_frame(conn *c, uint8_t opcode, bool fin) {
  if (opcode == OP_TEXT || opcode == OP_BINARY) c->out_fragmenting = !fin;
}

uint8_t *conn_frame_reserve(conn *c, uint8_t opcode, bool fin, bool rsv1, size_t len) {
  /* wire_opcode may clear rsv1: evaluate it before rsv1 is read (argument order is unspecified). */
  uint8_t op = wire_opcode(c, opcode, &rsv1);
  uint8_t *payload = frame_reserve_raw(c, op, fin, rsv1, len);
  if (payload) after_frame(c, opcode, fin);
  return payload;
}

bool conn_send_header(conn *c, uint8_t opcode, bool fin, bool rsv1, uint64_t len) {
  if (!c->config->is_server || !out_reserve(c, FRAME_MAX_HEADER)) return false;
  uint8_t op = wire_opcode(c, opcode, &rsv1); /* before rsv1 is read, as above */
  c->out_len += frame_header_encode(c->out + c->out_len, fin, rsv1, op, len, NULL);
  after_frame(c, opcode, fin);
  return true;
}

void conn_frame_commit(conn *c, uint8_t *payload, size_t len) {
  /* The key sits in the 4 bytes right before the payload (frame_header_encode put it last). */
  if (!c->config->is_server) mask_apply(payload, len, payload - 4, 0);
}

bool conn_send_frame(conn *c, uint8_t opcode, bool fin, bool rsv1, const uint8_t *payload,
                     size_t len) {
  uint8_t *dst = conn_frame_reserve(c, opcode, fin, rsv1, len);
  if (!dst) return false;
  if (!c->config->is_server) mask_copy(dst, payload, len, dst - 4, 0); /* key precedes payload */
  else if (len)
    memcpy(dst, payload, len);
  return true;
}

bool conn_send_framed(conn *c, const uint8_t *frames, size_t len) {
  if (!out_reserve(c, len)) return false;
  memcpy(c->out + c->out_len, frames, len);
  c->out_len += len;
  return true;
}

static pmd_stream *deflater_for(conn *c) {
  if (c->config->deflate_reset && c->config->shared_deflater) return c->config->shared_deflater;
  conn_zlib *z = zlib_of(c);
  if (z == NULL) return NULL;
  if (z->deflater == NULL) {
    z->deflater = malloc(sizeof(*z->deflater));
    if (z->deflater)
      pmd_deflater_init(z->deflater, c->config->deflate_window_bits, c->config->deflate_level,
                        c->config->deflate_mem_level);
  }
  return z->deflater;
}

/* Restarts the connection's own deflater when frames compressed elsewhere went out. */
static void deflater_refresh(conn *c, pmd_stream *s) {
  conn_zlib *z = c->zlib;
  if (z == NULL) return;
  if (z->deflater_stale && s == z->deflater && s->started) deflateReset(&s->zs);
  z->deflater_stale = false;
}

/* The stream this connection compresses its next message with, if it owns one (context
 * takeover), after restarting it when frames compressed elsewhere went out. NULL when it uses
 * the shared stream (no context takeover) or memory runs out. */
static pmd_stream *own_deflater(conn *c) {
  if (c->config->deflate_reset && c->config->shared_deflater) return NULL;
  pmd_stream *s = deflater_for(c);
  if (s) deflater_refresh(c, s);
  return s;
}

void conn_deflate_begin(conn *c, conn_deflate_task *task, uint8_t opcode, uint8_t *input,
                        size_t len) {
  memset(task, 0, sizeof(*task));
  task->input = input;
  task->input_len = len;
  task->opcode = opcode;
  task->reset = c->config->deflate_reset;
  /* Without an own stream the task gets one: the shared one serves this thread meanwhile. */
  task->stream = own_deflater(c);
  if (task->stream == NULL) {
    pmd_deflater_init(&task->fresh, c->config->deflate_window_bits, c->config->deflate_level,
                      c->config->deflate_mem_level);
    task->stream = &task->fresh;
  }
}

void conn_deflate_run(conn_deflate_task *task) {
  task->result = pmd_deflate_message(task->stream, task->input, task->input_len, task->reset,
                                     &task->output);
}

conn_send_result conn_deflate_finish(conn *c, conn_deflate_task *task, bool released) {
  conn_send_result result = CONN_SENT;
  if (released || (c->close_state & CONN_CLOSE_SENT)) {
    /* A close frame went out meanwhile (perhaps an answer to the peer's): nothing may follow
     * it. */
    result = CONN_SEND_AFTER_CLOSE;
  } else if (task->result != PMD_OK) {
    result = task->result == PMD_NO_MEMORY ? CONN_SEND_NO_MEMORY : CONN_SEND_FAILED;
  } else if (!conn_send_frame(c, task->opcode, true, true, task->output.data, task->output.len)) {
    result = CONN_SEND_NO_MEMORY;
  }
  if (task->stream == &task->fresh) pmd_stream_end(&task->fresh);
  free(task->input);
  free(task->output.data);
  task->input = NULL;
  task->output = (pmd_buffer){0};
  return result;
}

unsigned conn_zlib_state(const conn *c) {
  const pmd_stream *in = c->zlib ? c->zlib->inflater : NULL;
  const pmd_stream *out = c->zlib ? c->zlib->deflater : NULL;
  return (in && in->started ? CONN_ZLIB_INFLATER : 0) |
         (in && in->window ? CONN_ZLIB_INFLATER_WINDOW : 0) |
         (out && out->started ? CONN_ZLIB_DEFLATER : 0);
}

bool conn_should_compress(const conn *c, bool requested, bool fin, size_t len) {
  return requested && c->config->deflate && fin && !c->out_fragmenting &&
         (len >= c->config->deflate_threshold || !c->config->deflate_reset);
}

bool conn_send_compressed(conn *c, uint8_t opcode, const uint8_t *data, size_t len) {
  pmd_stream *s = deflater_for(c);
  if (s == NULL) return false;
  deflater_refresh(c, s);
  pmd_buffer compressed = {0};
  bool ok = pmd_deflate_message(s, data, len, c->config->deflate_reset, &compressed) == PMD_OK &&
            conn_send_frame(c, opcode, true, true, compressed.data, compressed.len);
  free(compressed.data);
  return ok;
}

bool conn_send_close(conn *c, int code, const uint8_t *reason, size_t reason_len) {
  if (c->close_state & CONN_CLOSE_SENT) return false;
  uint8_t body[FRAME_MAX_CONTROL];
  size_t len = 0;
  if (code != 0) {
    if (reason_len > FRAME_MAX_CONTROL - 2) reason_len = FRAME_MAX_CONTROL - 2;
    body[0] = (uint8_t)(code >> 8);
    body[1] = (uint8_t)code;
    if (reason_len) memcpy(body + 2, reason, reason_len);
    len = 2 + reason_len;
  }
  if (!conn_send_frame(c, OP_CLOSE, true, false, body, len)) return false;
  c->close_state |= CONN_CLOSE_SENT;
  return true;
}

void conn_output_clear(conn *c) { c->out_len = 0; }

void conn_output_taken(conn *c) {
  if (c->out_cap > CONN_OUTPUT_HANDOFF_MIN) {
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  c->out_len = 0;
}

uint8_t *conn_output_detach(conn *c, size_t *len) {
  uint8_t *out = c->out;
  *len = c->out_len;
  c->out = NULL;
  c->out_len = 0;
  c->out_cap = 0;
  return out;
}

/* ---- input ---- */

/* One conn_feed call: where its events go, and what it works on. */
typedef struct feed {
  conn *c;
  conn_progress *p; /* c->progress, or one on the stack while nothing is kept */
  conn_event_cb cb;
  void *ctx;
  size_t events; /* reported by this call */
  /* The current frame is a whole message whose payload lies in the input: it is delivered
   * from there (direct_*), without being assembled. */
  bool direct;
  const uint8_t *direct_data;
  size_t direct_len;
} feed;

static void progress_init(conn_progress *p, const conn_config *config) {
  /* (control[] needs no clearing: control_len says what of it is valid) */
  memset(p, 0, offsetof(conn_progress, control));
  frame_parser_init(&p->parser, config->is_server, config->deflate);
}

static conn_error from_frame_error(frame_error e) {
  switch (e) {
    case FRAME_ERR_RSV1: return CONN_ERR_RSV1;
    case FRAME_ERR_RSV23: return CONN_ERR_RSV23;
    case FRAME_ERR_OPCODE: return CONN_ERR_OPCODE;
    case FRAME_ERR_CONTROL_FIN: return CONN_ERR_CONTROL_FIN;
    case FRAME_ERR_CONTROL_LENGTH: return CONN_ERR_CONTROL_LENGTH;
    case FRAME_ERR_MASK_EXPECTED: return CONN_ERR_MASK_EXPECTED;
    case FRAME_ERR_MASK_UNEXPECTED: return CONN_ERR_MASK_UNEXPECTED;
    case FRAME_ERR_LENGTH_MSB: return CONN_ERR_LENGTH_MSB;
    case FRAME_ERR_LENGTH_UNSAFE: return CONN_ERR_LENGTH_UNSAFE;
    default: return CONN_ERR_OPCODE;
  }
}

static bool emit(feed *f, const conn_event *ev) {
  f->events++;
  return f->cb(f->ctx, ev);
}

/* Fails the connection: queues a close frame with the error's status (as ws does) and
 * reports the error. Returns what the event callback returned (false when deferred). */
static bool fail_connection(feed *f, conn_error err, int detail) {
  conn *c = f->c;
  if (f->events > 0) {
    c->deferred = DEFERRED_FAILURE;
    c->deferred_error = (uint8_t)err;
    c->deferred_detail = detail;
    return false;
  }
  c->error = (uint8_t)err;
  c->error_detail = detail;
  c->close_state |= CONN_CLOSE_FAILED;
  int status = conn_error_info(err)->status;
  conn_send_close(c, status, NULL, 0);
  message_reset(f->p);
  conn_event ev = {.kind = CONN_EV_ERROR, .close_code = status};
  return emit(f, &ev);
}

/* Up to this size a single-frame message gets its whole buffer at once. Beyond it the buffer
 * grows with the bytes that actually arrive, so a peer announcing a huge frame and sending a
 * few bytes does not make us allocate what it announced. (Pages of a large allocation that are
 * never written cost no resident memory, so even this much is cheap when unused.) */
#define MESSAGE_PREALLOC_MAX (1024 * 1024)

/* Makes room for len more payload bytes in message_buf; frame_left counts them and the rest
 * of their frame. */
static bool message_reserve(conn_progress *p, size_t len, uint64_t frame_left) {
  if (p->message_len + len > p->message_cap) {
    size_t need = p->message_len + len;
    size_t frame_end = p->message_len + (size_t)frame_left;
    size_t cap = p->message_cap * 2;
    if (cap < MESSAGE_PREALLOC_MAX) cap = MESSAGE_PREALLOC_MAX;
    if (cap > frame_end) cap = frame_end;
    if (cap < need) cap = need;
    uint8_t *grown = realloc(p->message_buf, cap);
    if (!grown) return false;
    p->message_buf = grown;
    p->message_cap = cap;
  }
  return true;
}

/* Appends a piece of payload, unmasking it on the way when key is given (offset: its
 * position in the frame). frame_left counts this piece and the rest of its frame. */
static bool message_append(conn_progress *p, const uint8_t *data, size_t len, uint64_t frame_left,
                           const uint8_t *key, uint64_t offset) {
  if (!message_reserve(p, len, frame_left)) return false;
  uint8_t *dst = p->message_buf + p->message_len;
  if (key) mask_copy(dst, data, len, key, offset);
  else
    memcpy(dst, data, len);
  p->message_len += len;
  return true;
}

/* Checks a data or continuation frame's header against the message state. */
static conn_error on_data_header(const conn *c, conn_progress *p, const frame_info *f) {
  if (f->opcode == OP_CONTINUATION) {
    if (!p->in_message) return CONN_ERR_OPCODE;
  } else {
    if (p->in_message) return CONN_ERR_OPCODE;
    p->in_message = true;
    p->message_binary = f->opcode == OP_BINARY;
    p->message_compressed = f->rsv1; /* the parser allows RSV1 only when negotiated */
    p->message_size = 0;
    p->message_frames = 0;
    utf8_state_init(&p->utf8);
  }
  if (c->config->max_fragments && ++p->message_frames > c->config->max_fragments)
    return CONN_ERR_TOO_MANY_FRAGMENTS;
  uint64_t limit = c->config->max_payload ? c->config->max_payload : FRAME_MAX_SAFE_LENGTH;
  if (f->payload_len > limit - p->message_size) return CONN_ERR_MAX_PAYLOAD;
  p->message_size += f->payload_len;
  return CONN_OK;
}

static bool deliver_message(feed *f) {
  conn_progress *p = f->p;
  conn_event ev = {.kind = CONN_EV_MESSAGE, .binary = p->message_binary};
  if (p->fragment_count > 1) {
    ev.fragment_ends = p->fragment_ends;
    ev.fragment_count = p->fragment_count;
  }
  if (f->direct) {
    ev.data = f->direct_data;
    ev.len = f->direct_len;
  } else {
    ev.data = p->message_buf;
    ev.len = p->message_len;
    ev.owned = p->message_buf;
    p->message_buf = NULL; /* ownership passes to the receiver */
    p->message_cap = 0;
  }
  p->message_len = 0;
  p->message_size = 0;
  f->direct = false;
  p->in_message = false;
  bool more = emit(f, &ev);
  p->fragment_count = 0;
  return more;
}

static pmd_stream *inflater_for(conn *c) {
  if (c->config->inflate_reset && c->config->shared_inflater) return c->config->shared_inflater;
  conn_zlib *z = zlib_of(c);
  if (z == NULL) return NULL;
  if (z->inflater == NULL) {
    z->inflater = malloc(sizeof(*z->inflater));
    if (z->inflater) pmd_inflater_init(z->inflater, c->config->inflate_window_bits);
  }
  return z->inflater;
}

/* Inflates one whole message into *out (at most cap bytes, 0: no cap) and, when check_utf8,
 * validates it as text: the one place where inflate results become connection errors, for
 * messages inflated here and for those inflated by a task. On failure *out holds nothing. */
static conn_error inflate_into(pmd_stream *s, const uint8_t *in, size_t len, uint64_t cap,
                               bool reset, bool check_utf8, pmd_buffer *out) {
  pmd_result r = pmd_inflate_message(s, in, len, cap, reset, out);
  conn_error err = r == PMD_OK        ? CONN_OK
                   : r == PMD_TOO_BIG ? CONN_ERR_MAX_PAYLOAD
                   : r == PMD_CORRUPT ? CONN_ERR_INFLATE
                                      : CONN_ERR_NO_MEMORY;
  if (err == CONN_OK && check_utf8 && !utf8_is_valid(out->data, out->len)) err = CONN_ERR_UTF8;
  if (err != CONN_OK) {
    free(out->data);
    *out = (pmd_buffer){0};
  }
  return err;
}

/* Whether a message's bytes are to be validated as UTF-8 (text, unless told not to). */
static bool validates_utf8(const conn *c, bool binary) {
  return !binary && !c->config->skip_utf8_validation;
}

/* Replaces the assembled compressed message by its inflated bytes (at most maxPayload of
 * them), checked as UTF-8 when it is text. */
static conn_error inflate_message(conn *c, conn_progress *p) {
  pmd_stream *s = inflater_for(c);
  if (s == NULL) return CONN_ERR_NO_MEMORY;
  pmd_buffer out = {0};
  conn_error err = inflate_into(s, p->message_buf, p->message_len, c->config->max_payload,
                                c->config->inflate_reset, validates_utf8(c, p->message_binary),
                                &out);
  if (err != CONN_OK) return err;
  free(p->message_buf);
  p->message_buf = out.data;
  p->message_len = out.len;
  p->message_cap = out.cap;
  /* Fragment boundaries describe compressed bytes: they mean nothing for the inflated ones. */
  p->fragment_count = 0;
  return CONN_OK;
}

/* Records where a non-empty data frame ended within the message being assembled. */
static bool fragment_record(conn_progress *p) {
  if (p->fragment_count == p->fragment_cap) {
    size_t cap = p->fragment_cap ? p->fragment_cap * 2 : 8;
    size_t *grown = realloc(p->fragment_ends, cap * sizeof(*grown));
    if (!grown) return false;
    p->fragment_ends = grown;
    p->fragment_cap = cap;
  }
  p->fragment_ends[p->fragment_count++] = p->message_len;
  return true;
}

/* Handles a complete control frame. Returns what the event callback returned. */
static bool on_control(feed *f, uint8_t opcode, const uint8_t *data, size_t len) {
  conn *c = f->c;
  if (opcode == OP_PING || opcode == OP_PONG) {
    if (opcode == OP_PING && c->config->auto_pong && !(c->close_state & CONN_CLOSE_SENT) &&
        !conn_send_frame(c, OP_PONG, true, false, data, len))
      return fail_connection(f, CONN_ERR_NO_MEMORY, 0);
    conn_event ev = {
        .kind = opcode == OP_PING ? CONN_EV_PING : CONN_EV_PONG, .data = data, .len = len};
    return emit(f, &ev);
  }

  /* close */
  int code = 1005;
  const uint8_t *reason = NULL;
  size_t reason_len = 0;
  if (len == 1) return fail_connection(f, CONN_ERR_CONTROL_LENGTH, 1);
  if (len >= 2) {
    code = (data[0] << 8) | data[1];
    if (!close_code_is_valid(code)) return fail_connection(f, CONN_ERR_CLOSE_CODE, code);
    reason = data + 2;
    reason_len = len - 2;
    if (validates_utf8(c, false) && !utf8_is_valid(reason, reason_len))
      return fail_connection(f, CONN_ERR_UTF8, 0);
  }
  c->close_state |= CONN_CLOSE_RECEIVED;
  message_reset(f->p);
  /* Echo the peer's close (RFC 6455 5.5.1) unless we already sent ours. */
  conn_send_close(c, code == 1005 ? 0 : code, reason, reason_len);
  conn_event ev = {.kind = CONN_EV_CLOSE, .close_code = code, .data = reason, .len = reason_len};
  return emit(f, &ev);
}

/* Handles the control frame collected in progress->control. */
static bool handle_control(feed *f, uint8_t opcode) {
  conn_progress *p = f->p;
  uint8_t len = p->control_len;
  p->control_len = 0;
  return on_control(f, opcode, p->control, len);
}

/* Does the work a previous call deferred; it is the first event of this call. */
static bool run_deferred(feed *f) {
  conn *c = f->c;
  uint8_t what = c->deferred;
  c->deferred = DEFERRED_NONE;
  if (what == DEFERRED_CONTROL) return handle_control(f, c->deferred_opcode);
  return fail_connection(f, (conn_error)c->deferred_error, c->deferred_detail);
}

void conn_fail(conn *c, conn_error err) {
  if (err == CONN_OK || conn_input_done(c)) return;
  c->error = (uint8_t)err;
  c->error_detail = 0;
  c->close_state |= CONN_CLOSE_FAILED;
  conn_send_close(c, conn_error_info(err)->status, NULL, 0);
}

void conn_inflate_begin(conn *c, conn_inflate_task *task) {
  memset(task, 0, sizeof(*task));
  conn_zlib *z = c->zlib; /* (made when the message was handed out) */
  task->input = z->pending_inflate;
  z->pending_inflate = (pmd_buffer){0};
  task->cap = c->config->max_payload;
  task->reset = c->config->inflate_reset;
  task->binary = z->pending_binary;
  task->check_utf8 = validates_utf8(c, z->pending_binary);
  /* The shared stream serves this thread's other connections meanwhile: the task gets one of
   * its own, of the negotiated window. So does a connection short of memory for its own. */
  task->stream = (c->config->inflate_reset && c->config->shared_inflater) ? NULL : inflater_for(c);
  if (task->stream == NULL) {
    pmd_inflater_init(&task->fresh, c->config->inflate_window_bits);
    task->stream = &task->fresh;
  }
}

void conn_inflate_run(conn_inflate_task *task) {
  task->error = inflate_into(task->stream, task->input.data, task->input.len, task->cap,
                             task->reset, task->check_utf8, &task->output);
}

conn_error conn_inflate_finish(conn *c, conn_inflate_task *task, bool released) {
  if (task->stream == &task->fresh) pmd_stream_end(&task->fresh);
  free(task->input.data);
  task->input = (pmd_buffer){0};
  conn_error err = task->error;
  if (released || err != CONN_OK) {
    free(task->output.data);
    task->output = (pmd_buffer){0};
  }
  if (released) return err;
  c->zlib->inflate_busy = false;
  conn_fail(c, err);
  return err;
}

unsigned conn_park_idle_streams(conn *c, unsigned periods) {
  /* (A parked inflater holds no message: each message is inflated whole, in one call. A
   * deflater in the middle of a fragmented message could be parked too, since a fresh stream
   * never refers back, but there is no need to.) */
  conn_zlib *z = c->zlib;
  if (z == NULL) return 0;
  unsigned parked = 0;
  if (z->inflater && !z->inflate_busy && pmd_stream_idle(z->inflater, periods))
    parked += pmd_stream_park(z->inflater);
  if (z->deflater && !c->out_fragmenting && pmd_stream_idle(z->deflater, periods))
    parked += pmd_stream_park(z->deflater);
  return parked;
}

/* The work of conn_feed on f->p. */
static size_t feed_input(feed *f, uint8_t *buf, size_t len) {
  conn *c = f->c;
  conn_progress *p = f->p;
  size_t pos = 0;
  if (c->deferred != DEFERRED_NONE && !run_deferred(f)) return conn_input_done(c) ? len : 0;
  while (!conn_input_done(c)) {
    size_t used;
    uint8_t *payload;
    size_t payload_len;
    frame_event fe = frame_parse(&p->parser, buf + pos, len - pos, &used, &payload, &payload_len);
    pos += used;
    const frame_info *fi = &p->parser.frame;
    bool control = (fi->opcode & 0x8) != 0;

    switch (fe) {
      case FRAME_NEED_MORE: return pos;

      case FRAME_ERROR:
        if (!fail_connection(f, from_frame_error(p->parser.error),
                             p->parser.error == FRAME_ERR_CONTROL_LENGTH ? (int)fi->payload_len
                                                                         : fi->opcode))
          return len;
        break;

      case FRAME_HEADER:
        if (control) {
          p->control_len = 0;
        } else {
          conn_error err = on_data_header(c, p, fi);
          if (err != CONN_OK) {
            if (!fail_connection(f, err, fi->opcode)) return len;
            break;
          }
          /* A single-frame message whose payload is all in this input is delivered from the
           * input itself (unmasked in place); anything else is assembled in message_buf,
           * unmasked while it is copied there. */
          f->direct = !p->message_compressed && fi->fin && p->message_size == fi->payload_len &&
                      fi->payload_len <= len - pos;
          f->direct_data = NULL; /* an empty frame has no FRAME_PAYLOAD to set it */
          f->direct_len = 0;
          if (!f->direct) p->parser.unmask_payload = false;
        }
        break;

      case FRAME_PAYLOAD: {
        if (control) {
          memcpy(p->control + p->control_len, payload, payload_len);
          p->control_len = (uint8_t)(p->control_len +
                                     payload_len); /* (<= 125: the parser checks) */
          break;
        }
        const uint8_t *text = payload;
        if (f->direct) {
          f->direct_data = payload;
          f->direct_len = payload_len;
        } else {
          size_t at = p->message_len;
          if (!message_append(
                  p, payload, payload_len, fi->payload_len - p->parser.payload_done + payload_len,
                  fi->masked ? fi->mask_key : NULL, p->parser.payload_done - payload_len)) {
            if (!fail_connection(f, CONN_ERR_NO_MEMORY, 0)) return len;
            break;
          }
          text = p->message_buf + at;
        }
        /* Validated piece by piece, so invalid text fails where it appears (fail fast);
         * compressed text can only be checked once inflated. */
        if (validates_utf8(c, p->message_binary) && !p->message_compressed &&
            utf8_feed(&p->utf8, text, payload_len) == UTF8_INVALID) {
          if (!fail_connection(f, CONN_ERR_UTF8, 0)) return len;
        }
        break;
      }

      case FRAME_END:
        if (control) {
          if (f->events > 0) {
            c->deferred = DEFERRED_CONTROL;
            c->deferred_opcode = fi->opcode;
            return pos;
          }
          bool more = handle_control(f, fi->opcode);
          if (!more) return conn_input_done(c) ? len : pos;
          break;
        }
        if (c->track_fragments && !f->direct && fi->payload_len > 0 && !fragment_record(p)) {
          if (!fail_connection(f, CONN_ERR_NO_MEMORY, 0)) return len;
          break;
        }
        if (!fi->fin) break;
        if (p->message_compressed && c->config->async_inflate_min &&
            p->message_len >= c->config->async_inflate_min) {
          /* Too big to inflate here without stalling everything else: hand it over. */
          conn_zlib *z = zlib_of(c);
          if (z == NULL) {
            if (!fail_connection(f, CONN_ERR_NO_MEMORY, 0)) return len;
            break;
          }
          z->pending_inflate = (pmd_buffer){p->message_buf, p->message_len, p->message_cap};
          z->pending_binary = p->message_binary;
          p->message_buf = NULL;
          message_reset(p);
          z->inflate_busy = true;
          conn_event ev = {.kind = CONN_EV_INFLATE, .binary = z->pending_binary};
          emit(f, &ev);
          return pos;
        }
        if (p->message_compressed) {
          conn_error err = inflate_message(c, p);
          if (err != CONN_OK) {
            if (!fail_connection(f, err, 0)) return len;
            break;
          }
        } else if (validates_utf8(c, p->message_binary) && !utf8_state_complete(&p->utf8)) {
          if (!fail_connection(f, CONN_ERR_UTF8, 0)) return len;
          break;
        }
        if (!deliver_message(f)) return pos;
        break;
    }
  }
  /* Nothing more is parsed once closed or failed: the rest is consumed and dropped. */
  return len;
}

/* Whether what the last input left must be kept until the next: a frame or a message under
 * way, or a control frame waiting to be handled. */
static bool progress_needed(const conn *c, const conn_progress *p) {
  if (conn_input_done(c) || c->deferred == DEFERRED_FAILURE) return false;
  return p->in_message || c->deferred == DEFERRED_CONTROL || !frame_parser_idle(&p->parser);
}

uint8_t *conn_payload_target(conn *c, size_t min_room, size_t max_room, size_t *room) {
  conn_progress *p = c->progress;
  /* (A frame in progress across inputs is always assembled: see f->direct.) */
  if (p == NULL || conn_inflating(c) || c->deferred != DEFERRED_NONE || conn_input_done(c))
    return NULL;
  uint64_t left = frame_payload_left(&p->parser);
  if ((p->parser.frame.opcode & 0x8) != 0 || left < min_room || left == 0) return NULL;
  size_t want = left < max_room ? (size_t)left : max_room;
  if (!message_reserve(p, want, left)) return NULL;
  *room = want;
  return p->message_buf + p->message_len;
}

void conn_feed_landed(conn *c, size_t n, conn_event_cb cb, void *ctx) {
  conn_progress *p = c->progress;
  if (p == NULL || n == 0) return;
  const frame_info *fi = &p->parser.frame;
  uint8_t *landed = p->message_buf + p->message_len;
  if (fi->masked) mask_apply(landed, n, fi->mask_key, p->parser.payload_done);
  frame_payload_skip(&p->parser, n);
  p->message_len += n;
  if (validates_utf8(c, p->message_binary) && !p->message_compressed &&
      utf8_feed(&p->utf8, landed, n) == UTF8_INVALID) {
    feed f = {.c = c, .p = p, .cb = cb, .ctx = ctx};
    fail_connection(&f, CONN_ERR_UTF8, 0);
    return;
  }
  conn_feed(c, landed + n, 0, cb, ctx); /* the frame's end, and the message's if it is one */
}

size_t conn_feed(conn *c, uint8_t *buf, size_t len, conn_event_cb cb, void *ctx) {
  if (conn_inflating(c)) return 0; /* the caller holds the input until the message is done */
  conn_progress local;
  conn_progress *p = c->progress;
  if (p == NULL) {
    progress_init(&local, c->config);
    p = &local;
  }
  feed f = {.c = c, .p = p, .cb = cb, .ctx = ctx};
  size_t used = feed_input(&f, buf, len);

  if (!progress_needed(c, p)) {
    message_reset(p);
    if (p != &local) {
      free(p);
      c->progress = NULL;
    }
  } else if (p == &local) {
    /* Something spans inputs: it moves off the stack. */
    conn_progress *kept = malloc(sizeof(*kept));
    if (kept == NULL) {
      /* The connection fails: reported at the start of the next call (conn_has_deferred). */
      message_reset(p);
      c->deferred = DEFERRED_FAILURE;
      c->deferred_error = CONN_ERR_NO_MEMORY;
      c->deferred_detail = 0;
    } else {
      memcpy(kept, p, sizeof(*kept));
      c->progress = kept;
    }
  }
  return used;
}
