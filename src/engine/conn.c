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
  frame_parser_init(&c->parser, config->is_server, config->deflate);
}

static void message_reset(conn *c) {
  free(c->fragment_ends);
  c->fragment_ends = NULL;
  c->fragment_count = 0;
  c->fragment_cap = 0;
  free(c->message_buf);
  c->message_buf = NULL;
  c->message_len = 0;
  c->message_cap = 0;
  c->message_size = 0;
  c->in_message = false;
  c->message_direct = false;
  c->message_compressed = false;
  utf8_state_init(&c->utf8);
}

static void stream_free(pmd_stream **s) {
  if (*s == NULL) return;
  pmd_stream_end(*s);
  free(*s);
  *s = NULL;
}

void conn_release(conn *c) {
  message_reset(c);
  free(c->pending_inflate.data);
  c->pending_inflate = (pmd_buffer){0};
  stream_free(&c->inflater);
  stream_free(&c->deflater);
  free(c->out);
  c->out = NULL;
  c->out_len = 0;
  c->out_cap = 0;
  free(c->control);
  c->control = NULL;
  c->control_len = 0;
  free(c->random_pool);
  c->random_pool = NULL;
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

#define RANDOM_POOL_SIZE 64 /* 16 mask keys per system call */

static bool next_mask_key(conn *c, uint8_t key[4]) {
  if (c->random_pool == NULL) {
    if ((c->random_pool = malloc(RANDOM_POOL_SIZE)) == NULL) return false;
    c->random_used = RANDOM_POOL_SIZE;
  }
  if (c->random_used + 4 > RANDOM_POOL_SIZE) {
    if (!random_fill(c->random_pool, RANDOM_POOL_SIZE)) return false;
    c->random_used = 0;
  }
  memcpy(key, c->random_pool + c->random_used, 4);
  c->random_used += 4;
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
  else if (len) memcpy(dst, payload, len);
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
  if (c->deflater == NULL) {
    c->deflater = malloc(sizeof(*c->deflater));
    if (c->deflater)
      pmd_deflater_init(c->deflater, c->config->deflate_window_bits, c->config->deflate_level,
                        c->config->deflate_mem_level);
  }
  return c->deflater;
}

/* The stream this connection compresses its next message with, if it owns one (context
 * takeover), after restarting it when frames compressed elsewhere went out. NULL when it uses
 * the shared stream (no context takeover) or memory runs out. */
static pmd_stream *own_deflater(conn *c) {
  if (c->config->deflate_reset && c->config->shared_deflater) return NULL;
  pmd_stream *s = deflater_for(c);
  if (s && c->deflater_stale && s->started) deflateReset(&s->zs);
  c->deflater_stale = false;
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
  } else if (!conn_send_frame(c, task->opcode, true, true, task->output.data,
                              task->output.len)) {
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
  const pmd_stream *in = c->inflater, *out = c->deflater;
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
  if (c->deflater_stale && s == c->deflater && s->started) deflateReset(&s->zs);
  c->deflater_stale = false;
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

static bool emit(conn *c, conn_event_cb cb, void *ctx, const conn_event *ev) {
  c->events_this_feed++;
  return cb(ctx, ev);
}

/* Fails the connection: queues a close frame with the error's status (as ws does) and
 * reports the error. Returns what the event callback returned (false when deferred). */
static bool fail_connection(conn *c, conn_error err, int detail, conn_event_cb cb, void *ctx) {
  if (c->events_this_feed > 0) {
    c->deferred = DEFERRED_FAILURE;
    c->deferred_error = err;
    c->deferred_detail = detail;
    return false;
  }
  c->error = err;
  c->error_detail = detail;
  c->close_state |= CONN_CLOSE_FAILED;
  int status = conn_error_info(err)->status;
  conn_send_close(c, status, NULL, 0);
  message_reset(c);
  conn_event ev = {.kind = CONN_EV_ERROR, .close_code = status};
  return emit(c, cb, ctx, &ev);
}

/* Up to this size a single-frame message gets its whole buffer at once. Beyond it the buffer
 * grows with the bytes that actually arrive, so a peer announcing a huge frame and sending a
 * few bytes does not make us allocate what it announced. (Pages of a large allocation that are
 * never written cost no resident memory, so even this much is cheap when unused.) */
#define MESSAGE_PREALLOC_MAX (1024 * 1024)

/* Appends a piece of payload, unmasking it on the way when key is given (offset: its
 * position in the frame). frame_left counts this piece and the rest of its frame. */
static bool message_append(conn *c, const uint8_t *data, size_t len, uint64_t frame_left,
                           const uint8_t *key, uint64_t offset) {
  if (c->message_len + len > c->message_cap) {
    size_t need = c->message_len + len;
    size_t frame_end = c->message_len + (size_t)frame_left;
    size_t cap = c->message_cap * 2;
    if (cap < MESSAGE_PREALLOC_MAX) cap = MESSAGE_PREALLOC_MAX;
    if (cap > frame_end) cap = frame_end;
    if (cap < need) cap = need;
    uint8_t *grown = realloc(c->message_buf, cap);
    if (!grown) return false;
    c->message_buf = grown;
    c->message_cap = cap;
  }
  uint8_t *dst = c->message_buf + c->message_len;
  if (key) mask_copy(dst, data, len, key, offset);
  else memcpy(dst, data, len);
  c->message_len += len;
  return true;
}

/* Checks a data or continuation frame's header against the message state. */
static conn_error on_data_header(conn *c, const frame_info *f) {
  if (f->opcode == OP_CONTINUATION) {
    if (!c->in_message) return CONN_ERR_OPCODE;
  } else {
    if (c->in_message) return CONN_ERR_OPCODE;
    c->in_message = true;
    c->message_binary = f->opcode == OP_BINARY;
    c->message_compressed = f->rsv1; /* the parser allows RSV1 only when negotiated */
    c->message_size = 0;
    c->message_frames = 0;
    utf8_state_init(&c->utf8);
  }
  if (c->config->max_fragments && ++c->message_frames > c->config->max_fragments)
    return CONN_ERR_TOO_MANY_FRAGMENTS;
  uint64_t limit = c->config->max_payload ? c->config->max_payload : FRAME_MAX_SAFE_LENGTH;
  if (f->payload_len > limit - c->message_size) return CONN_ERR_MAX_PAYLOAD;
  c->message_size += f->payload_len;
  return CONN_OK;
}

static bool deliver_message(conn *c, conn_event_cb cb, void *ctx) {
  conn_event ev = {.kind = CONN_EV_MESSAGE, .binary = c->message_binary};
  if (c->fragment_count > 1) {
    ev.fragment_ends = c->fragment_ends;
    ev.fragment_count = c->fragment_count;
  }
  if (c->message_direct) {
    ev.data = c->direct_data;
    ev.len = c->direct_len;
  } else {
    ev.data = c->message_buf;
    ev.len = c->message_len;
    ev.owned = c->message_buf;
    c->message_buf = NULL; /* ownership passes to the receiver */
    c->message_cap = 0;
  }
  c->message_len = 0;
  c->message_size = 0;
  c->message_direct = false;
  c->in_message = false;
  bool more = emit(c, cb, ctx, &ev);
  c->fragment_count = 0;
  return more;
}

static pmd_stream *inflater_for(conn *c) {
  if (c->config->inflate_reset && c->config->shared_inflater) return c->config->shared_inflater;
  if (c->inflater == NULL) {
    c->inflater = malloc(sizeof(*c->inflater));
    if (c->inflater) pmd_inflater_init(c->inflater, c->config->inflate_window_bits);
  }
  return c->inflater;
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
static conn_error inflate_message(conn *c) {
  pmd_stream *s = inflater_for(c);
  if (s == NULL) return CONN_ERR_NO_MEMORY;
  pmd_buffer out = {0};
  conn_error err = inflate_into(s, c->message_buf, c->message_len, c->config->max_payload,
                                c->config->inflate_reset, validates_utf8(c, c->message_binary),
                                &out);
  if (err != CONN_OK) return err;
  free(c->message_buf);
  c->message_buf = out.data;
  c->message_len = out.len;
  c->message_cap = out.cap;
  /* Fragment boundaries describe compressed bytes: they mean nothing for the inflated ones. */
  c->fragment_count = 0;
  return CONN_OK;
}

/* Records where a non-empty data frame ended within the message being assembled. */
static bool fragment_record(conn *c) {
  if (c->fragment_count == c->fragment_cap) {
    size_t cap = c->fragment_cap ? c->fragment_cap * 2 : 8;
    size_t *grown = realloc(c->fragment_ends, cap * sizeof(*grown));
    if (!grown) return false;
    c->fragment_ends = grown;
    c->fragment_cap = cap;
  }
  c->fragment_ends[c->fragment_count++] = c->message_len;
  return true;
}

/* Handles a complete control frame. Returns what the event callback returned. */
static bool on_control(conn *c, uint8_t opcode, const uint8_t *data, size_t len,
                       conn_event_cb cb, void *ctx) {
  if (opcode == OP_PING || opcode == OP_PONG) {
    if (opcode == OP_PING && c->config->auto_pong && !(c->close_state & CONN_CLOSE_SENT) &&
        !conn_send_frame(c, OP_PONG, true, false, data, len))
      return fail_connection(c, CONN_ERR_NO_MEMORY, 0, cb, ctx);
    conn_event ev = {.kind = opcode == OP_PING ? CONN_EV_PING : CONN_EV_PONG,
                     .data = data,
                     .len = len};
    return emit(c, cb, ctx, &ev);
  }

  /* close */
  int code = 1005;
  const uint8_t *reason = NULL;
  size_t reason_len = 0;
  if (len == 1) return fail_connection(c, CONN_ERR_CONTROL_LENGTH, 1, cb, ctx);
  if (len >= 2) {
    code = (data[0] << 8) | data[1];
    if (!close_code_is_valid(code)) return fail_connection(c, CONN_ERR_CLOSE_CODE, code, cb, ctx);
    reason = data + 2;
    reason_len = len - 2;
    if (validates_utf8(c, false) && !utf8_is_valid(reason, reason_len))
      return fail_connection(c, CONN_ERR_UTF8, 0, cb, ctx);
  }
  c->close_state |= CONN_CLOSE_RECEIVED;
  message_reset(c);
  /* Echo the peer's close (RFC 6455 5.5.1) unless we already sent ours. */
  conn_send_close(c, code == 1005 ? 0 : code, reason, reason_len);
  conn_event ev = {.kind = CONN_EV_CLOSE, .close_code = code, .data = reason, .len = reason_len};
  return emit(c, cb, ctx, &ev);
}

/* Handles the control frame collected in c->control, then frees that buffer. */
static bool handle_control(conn *c, uint8_t opcode, conn_event_cb cb, void *ctx) {
  static const uint8_t empty[1];
  bool more = on_control(c, opcode, c->control ? c->control : empty, c->control_len, cb, ctx);
  free(c->control);
  c->control = NULL;
  c->control_len = 0;
  return more;
}

/* Does the work a previous call deferred; it is the first event of this call. */
static bool run_deferred(conn *c, conn_event_cb cb, void *ctx) {
  uint8_t what = c->deferred;
  c->deferred = DEFERRED_NONE;
  if (what == DEFERRED_CONTROL) return handle_control(c, c->deferred_opcode, cb, ctx);
  return fail_connection(c, c->deferred_error, c->deferred_detail, cb, ctx);
}

void conn_fail(conn *c, conn_error err) {
  if (err == CONN_OK || conn_input_done(c)) return;
  c->error = err;
  c->error_detail = 0;
  c->close_state |= CONN_CLOSE_FAILED;
  conn_send_close(c, conn_error_info(err)->status, NULL, 0);
}

void conn_inflate_begin(conn *c, conn_inflate_task *task) {
  memset(task, 0, sizeof(*task));
  task->input = c->pending_inflate;
  c->pending_inflate = (pmd_buffer){0};
  task->cap = c->config->max_payload;
  task->reset = c->config->inflate_reset;
  task->binary = c->pending_binary;
  task->check_utf8 = validates_utf8(c, c->pending_binary);
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
  c->inflate_busy = false;
  conn_fail(c, err);
  return err;
}

unsigned conn_park_idle_streams(conn *c, unsigned periods) {
  /* (A parked inflater holds no message: each message is inflated whole, in one call. A
   * deflater in the middle of a fragmented message could be parked too, since a fresh stream
   * never refers back, but there is no need to.) */
  unsigned parked = 0;
  if (c->inflater && !c->inflate_busy && pmd_stream_idle(c->inflater, periods))
    parked += pmd_stream_park(c->inflater);
  if (c->deflater && !c->out_fragmenting && pmd_stream_idle(c->deflater, periods))
    parked += pmd_stream_park(c->deflater);
  return parked;
}


size_t conn_feed(conn *c, uint8_t *buf, size_t len, conn_event_cb cb, void *ctx) {
  size_t pos = 0;
  if (c->inflate_busy) return 0; /* the caller holds the input until the message is done */
  c->events_this_feed = 0;
  if (c->deferred != DEFERRED_NONE && !run_deferred(c, cb, ctx))
    return conn_input_done(c) ? len : 0;
  while (!conn_input_done(c)) {
    size_t used;
    uint8_t *payload;
    size_t payload_len;
    frame_event fe = frame_parse(&c->parser, buf + pos, len - pos, &used, &payload, &payload_len);
    pos += used;
    const frame_info *f = &c->parser.frame;
    bool control = (f->opcode & 0x8) != 0;

    switch (fe) {
      case FRAME_NEED_MORE:
        return pos;

      case FRAME_ERROR:
        if (!fail_connection(c, from_frame_error(c->parser.error),
                             c->parser.error == FRAME_ERR_CONTROL_LENGTH ? (int)f->payload_len
                                                                         : f->opcode,
                             cb, ctx))
          return len;
        break;

      case FRAME_HEADER:
        if (control) {
          c->control_len = 0;
          if (f->payload_len > 0 && c->control == NULL &&
              (c->control = malloc(FRAME_MAX_CONTROL)) == NULL) {
            if (!fail_connection(c, CONN_ERR_NO_MEMORY, 0, cb, ctx)) return len;
            break;
          }
        } else {
          conn_error err = on_data_header(c, f);
          if (err != CONN_OK) {
            if (!fail_connection(c, err, f->opcode, cb, ctx)) return len;
            break;
          }
          /* A single-frame message whose payload is all in this input is delivered from the
           * input itself (unmasked in place); anything else is assembled in message_buf,
           * unmasked while it is copied there. */
          c->message_direct = !c->message_compressed && f->fin &&
                              c->message_size == f->payload_len && f->payload_len <= len - pos;
          c->direct_data = NULL; /* an empty frame has no FRAME_PAYLOAD to set it */
          c->direct_len = 0;
          if (!c->message_direct) c->parser.unmask_payload = false;
        }
        break;

      case FRAME_PAYLOAD: {
        if (control) {
          memcpy(c->control + c->control_len, payload, payload_len);
          c->control_len = (uint8_t)(c->control_len + payload_len); /* (<= 125: the parser checks) */
          break;
        }
        const uint8_t *text = payload;
        if (c->message_direct) {
          c->direct_data = payload;
          c->direct_len = payload_len;
        } else {
          size_t at = c->message_len;
          if (!message_append(c, payload, payload_len,
                              f->payload_len - c->parser.payload_done + payload_len,
                              f->masked ? f->mask_key : NULL,
                              c->parser.payload_done - payload_len)) {
            if (!fail_connection(c, CONN_ERR_NO_MEMORY, 0, cb, ctx)) return len;
            break;
          }
          text = c->message_buf + at;
        }
        /* Validated piece by piece, so invalid text fails where it appears (fail fast);
         * compressed text can only be checked once inflated. */
        if (validates_utf8(c, c->message_binary) && !c->message_compressed &&
            utf8_feed(&c->utf8, text, payload_len) == UTF8_INVALID) {
          if (!fail_connection(c, CONN_ERR_UTF8, 0, cb, ctx)) return len;
        }
        break;
      }

      case FRAME_END:
        if (control) {
          if (c->events_this_feed > 0) {
            c->deferred = DEFERRED_CONTROL;
            c->deferred_opcode = f->opcode;
            return pos;
          }
          bool more = handle_control(c, f->opcode, cb, ctx);
          if (!more) return conn_input_done(c) ? len : pos;
          break;
        }
        if (c->track_fragments && !c->message_direct && f->payload_len > 0 &&
            !fragment_record(c)) {
          if (!fail_connection(c, CONN_ERR_NO_MEMORY, 0, cb, ctx)) return len;
          break;
        }
        if (!f->fin) break;
        if (c->message_compressed && c->config->async_inflate_min &&
            c->message_len >= c->config->async_inflate_min) {
          /* Too big to inflate here without stalling everything else: hand it over. */
          c->pending_inflate = (pmd_buffer){c->message_buf, c->message_len, c->message_cap};
          c->pending_binary = c->message_binary;
          c->message_buf = NULL;
          message_reset(c);
          c->inflate_busy = true;
          conn_event ev = {.kind = CONN_EV_INFLATE, .binary = c->pending_binary};
          emit(c, cb, ctx, &ev);
          return pos;
        }
        if (c->message_compressed) {
          conn_error err = inflate_message(c);
          if (err != CONN_OK) {
            if (!fail_connection(c, err, 0, cb, ctx)) return len;
            break;
          }
        } else if (validates_utf8(c, c->message_binary) && !utf8_state_complete(&c->utf8)) {
          if (!fail_connection(c, CONN_ERR_UTF8, 0, cb, ctx)) return len;
          break;
        }
        if (!deliver_message(c, cb, ctx)) return pos;
        break;
    }
  }
  /* Nothing more is parsed once closed or failed: the rest is consumed and dropped. */
  return len;
}
