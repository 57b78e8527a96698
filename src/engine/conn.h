/* One WebSocket connection's protocol engine: frame parser + message assembly + control frames
 * + closing handshake state + the output queue. No I/O and no Node-API: a transport feeds it
 * bytes and takes its output, so the same engine serves every transport and the C tests. */
#ifndef WSN_CONN_H
#define WSN_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/deflate.h"
#include "codec/frame.h"
#include "codec/utf8.h"

/* Why the engine failed the connection. conn_error_info() gives each one's ws error code,
 * close status and message: the single table of receive errors. */
typedef enum conn_error {
  CONN_OK = 0,
  CONN_ERR_RSV1,
  CONN_ERR_RSV23,
  CONN_ERR_OPCODE,
  CONN_ERR_CONTROL_FIN,
  CONN_ERR_CONTROL_LENGTH,
  CONN_ERR_MASK_EXPECTED,
  CONN_ERR_MASK_UNEXPECTED,
  CONN_ERR_LENGTH_MSB,
  CONN_ERR_LENGTH_UNSAFE,
  CONN_ERR_MAX_PAYLOAD,
  CONN_ERR_CLOSE_CODE,
  CONN_ERR_UTF8,
  CONN_ERR_TOO_MANY_FRAGMENTS,
  CONN_ERR_INFLATE,
  CONN_ERR_NO_MEMORY
} conn_error;

typedef struct conn_error_desc {
  const char *code;   /* ws's error code, e.g. "WS_ERR_INVALID_OPCODE" */
  int status;         /* close status sent to the peer */
  const char *format; /* message; may contain one %d for the error's detail */
  bool prefixed;      /* message is prefixed with "Invalid WebSocket frame: " as in ws */
} conn_error_desc;

const conn_error_desc *conn_error_info(conn_error err);

/* Formats the full message of err (with detail) into out; returns out. */
char *conn_error_message(conn_error err, int detail, char *out, size_t out_size);

typedef struct conn_config {
  bool is_server; /* server: peer frames must be masked, ours are not; client: reverse */
  bool skip_utf8_validation;
  bool auto_pong;
  uint64_t max_payload;   /* largest message accepted; 0 = no limit beyond 2^53 - 1 */
  uint32_t max_fragments; /* data frames one message may have; 0 = no limit */

  /* permessage-deflate, when negotiated (RFC 7692). "inflate" is the peer's direction. */
  bool deflate;
  int inflate_window_bits; /* 8..15 */
  bool inflate_reset;      /* the peer takes over no context between messages */
  int deflate_window_bits; /* 9..15 */
  bool deflate_reset;      /* we take over no context */
  int deflate_level;
  int deflate_mem_level;
  uint32_t deflate_threshold; /* shorter messages go uncompressed (without context takeover) */
  /* When a *_reset flag is set, these streams (shared by connections, owned by the caller)
   * are used instead of one per connection: without context takeover nothing of a message
   * outlives it. NULL: each connection makes its own when it first needs one. */
  pmd_stream *shared_inflater;
  pmd_stream *shared_deflater;
  size_t async_inflate_min; /* compressed messages this big are left to the caller; 0: never */
  /* Own zlib streams unused this long are parked (by the caller); 0: never. */
  uint32_t zlib_idle_ms;
} conn_config;

/* The closing handshake (RFC 6455 7.1), as bits that accumulate: our close frame was queued,
 * the peer's arrived, we failed the connection (ours then carries the failure's status). Once
 * ours is queued and the peer's arrived (or we failed), the handshake is over and the TCP
 * connection may be ended as soon as the output is written (conn_close_complete). The JS
 * side reads these bits; it keeps no copy of its own. */
enum {
  CONN_CLOSE_SENT = 1,
  CONN_CLOSE_RECEIVED = 2,
  CONN_CLOSE_FAILED = 4,
};

/* Outcome of queueing a message, for the caller to report (conn_deflate_finish). */
typedef enum conn_send_result {
  CONN_SENT = 0,
  CONN_SEND_AFTER_CLOSE, /* a close frame went out first: nothing may follow it */
  CONN_SEND_FAILED,      /* compression failed */
  CONN_SEND_NO_MEMORY,
} conn_send_result;

typedef enum conn_event_kind {
  CONN_EV_MESSAGE = 1,
  CONN_EV_PING = 2,
  CONN_EV_PONG = 3,
  CONN_EV_CLOSE = 4, /* a valid close frame arrived; close_code is 1005 when it had none */
  CONN_EV_ERROR = 5, /* the connection failed; close_code is the status sent to the peer */
  /* A compressed message of at least config.async_inflate_min bytes is complete: its
   * compressed bytes wait in pending_inflate for the caller to inflate elsewhere (off the
   * main thread, conn_inflate_begin); conn_feed parses nothing more until conn_inflate_finish(). */
  CONN_EV_INFLATE = 6
} conn_event_kind;

typedef struct conn_event {
  conn_event_kind kind;
  bool binary;         /* MESSAGE: opcode was binary */
  int close_code;      /* CLOSE and ERROR */
  const uint8_t *data; /* payload (message, ping/pong data, close reason) */
  size_t len;
  /* MESSAGE only: when non-NULL, data == owned and the receiver takes ownership of this
   * malloc'd buffer (it must free it or adopt it). When NULL, data points into the input
   * given to conn_feed (zero copy) or into the connection, valid only during the callback. */
  uint8_t *owned;
  /* MESSAGE only, when conn.track_fragments is set and the message came in more than one
   * non-empty frame: where each frame's payload ends within data. Valid during the callback. */
  const size_t *fragment_ends;
  size_t fragment_count;
} conn_event;

/* Called once per event, in wire order. Return false to make conn_feed stop right after this
 * event (the caller then calls conn_feed again with the rest of the input). */
typedef bool (*conn_event_cb)(void *ctx, const conn_event *event);

/* What a connection keeps between inputs while a frame or a message is only partly received:
 * the parser in the middle of a frame, the message being assembled, a control frame's
 * payload. Allocated when an input ends with one of them unfinished and freed once none is,
 * so an idle connection, and one whose messages each come whole in one input (the usual
 * case), carry none of it: during conn_feed the engine works on one on the stack. */
typedef struct conn_progress {
  frame_parser parser;
  uint64_t message_size; /* payload bytes of the message so far, counted from headers */
  uint8_t *message_buf;  /* assembled payload when it could not be delivered in place */
  size_t message_len;
  size_t message_cap;
  size_t *fragment_ends; /* (track_fragments) where each frame ended in message_buf */
  size_t fragment_count;
  size_t fragment_cap;
  uint32_t message_frames; /* data frames of the message so far */
  utf8_state utf8;
  bool in_message; /* a data frame without FIN was seen; continuations expected */
  bool message_binary;
  bool message_compressed; /* RSV1 on its first frame: message_buf holds compressed bytes */
  uint8_t control_len;     /* bytes in control[] */
  /* The payload of the control frame being received, which may be split across inputs, or
   * whose handling is deferred (see conn.deferred). */
  uint8_t control[FRAME_MAX_CONTROL];
} conn_progress;

/* permessage-deflate state of a connection that negotiated it, made when it first compresses
 * or inflates a message. */
typedef struct conn_zlib {
  pmd_stream *inflater; /* this connection's own, created on first use */
  pmd_stream *deflater;
  pmd_buffer pending_inflate; /* a message's compressed bytes, taken by conn_inflate_begin() */
  bool inflate_busy;          /* a CONN_EV_INFLATE message is being inflated elsewhere */
  bool pending_binary;
  bool deflater_stale; /* frames compressed elsewhere went out: restart our window */
} conn_zlib;

/* Mask keys for a client's frames, refilled from the OS CSPRNG 16 at a time. */
typedef struct conn_mask_keys {
  size_t used;
  uint8_t pool[64];
} conn_mask_keys;

/* One connection. It is small on purpose (every idle connection carries it): what only some
 * connections need, some of the time, hangs off it in parts made on demand. */
typedef struct conn {
  /* Not a copy: the connections of one server share their configuration, and a pointer is
   * 64 bytes less per connection. It must outlive the connection. */
  const conn_config *config;

  /* outgoing */
  uint8_t *out;
  size_t out_len;
  size_t out_cap;

  conn_progress *progress; /* NULL when nothing is partly received */
  conn_zlib *zlib;         /* NULL until permessage-deflate is first used */
  conn_mask_keys *keys;    /* clients only, made by the first masked frame */

  /* Work that writes output (answering a ping or a close, failing the connection) waits
   * until the events before it were handled, so replies keep wire order: it is done at the
   * start of the next conn_feed call. */
  int32_t deferred_detail;
  int32_t error_detail;    /* closing handshake and failure */
  uint8_t deferred_error;  /* (a conn_error) */
  uint8_t error;           /* (a conn_error) */
  uint8_t deferred;        /* DEFERRED_* in conn.c */
  uint8_t deferred_opcode; /* the control frame waiting (its payload is in progress->control) */
  uint8_t close_state;     /* CONN_CLOSE_* bits */
  bool track_fragments;    /* record fragment_ends (the 'fragments' binaryType wants them) */
  bool out_fragmenting;    /* a message was started with fin = false and is not finished */
} conn;

/* config is kept by pointer (see conn.config): it must outlive the connection. */
void conn_init(conn *c, const conn_config *config);
/* Frees what the connection owns; it may be initialized again afterwards. */
void conn_release(conn *c);

/* Parses buf and calls cb for each event. buf is modified: payloads delivered from the input
 * are unmasked in place there (payloads that are copied are unmasked while copying).
 * Returns the number of bytes consumed: all of len unless cb returned false or the call
 * stopped for deferred work (conn_has_deferred). After a close frame was received or the
 * connection failed, further input is consumed and ignored.
 * Events that queue output (ping with auto_pong, close, error) are only ever the first event
 * of a call: whatever the receiver sends in answer to earlier events goes out before them. */
size_t conn_feed(conn *c, uint8_t *buf, size_t len, conn_event_cb cb, void *ctx);

/* Reading a large payload where it belongs: while a data frame's payload is assembled in the
 * connection (it did not all come in one input) and at least min_room bytes of it are still
 * to come, the caller may read them straight into the message instead of into its input and
 * have conn_feed copy them there. Returns where the next payload bytes go, with *room set to
 * how many may be written there (the rest of the frame, at most max_room); NULL when the
 * connection is not in such a frame, or memory for it ran out (conn_feed then reports that). */
uint8_t *conn_payload_target(conn *c, size_t min_room, size_t max_room, size_t *room);

/* n bytes were written where conn_payload_target said: they are unmasked and checked as
 * conn_feed would have done, and the events that follow (the message, once its last frame
 * is complete) are reported to cb as by conn_feed with no input. */
void conn_feed_landed(conn *c, size_t n, conn_event_cb cb, void *ctx);

/* True when conn_feed stopped before work that must follow the events it reported: call it
 * again (with the rest of the input, possibly none) once they have been handled. */
static inline bool conn_has_deferred(const conn *c) { return c->deferred != 0; }

/* True once no more input will be parsed (close frame received, or failure). */
static inline bool conn_input_done(const conn *c) {
  return (c->close_state & (CONN_CLOSE_RECEIVED | CONN_CLOSE_FAILED)) != 0;
}

/* CONN_CLOSE_* bits. */
static inline unsigned conn_close_state(const conn *c) { return c->close_state; }

/* The closing handshake is over (ours queued, and the peer's received or the connection
 * failed): once the output is written, the TCP connection ends. */
static inline bool conn_close_complete(const conn *c) {
  return (c->close_state & CONN_CLOSE_SENT) && conn_input_done(c);
}

/* Read-only views of the state callers act on. */
static inline bool conn_is_server(const conn *c) { return c->config->is_server; }
static inline bool conn_deflate_negotiated(const conn *c) { return c->config->deflate; }
static inline bool conn_sending_fragments(const conn *c) { return c->out_fragmenting; }
static inline bool conn_inflating(const conn *c) { return c->zlib && c->zlib->inflate_busy; }
static inline uint32_t conn_zlib_idle_ms(const conn *c) { return c->config->zlib_idle_ms; }
static inline conn_error conn_failure(const conn *c, int *detail) {
  *detail = c->error_detail;
  return (conn_error)c->error;
}

/* Whether messages report their frame boundaries (the 'fragments' binaryType wants them). */
static inline void conn_track_fragments(conn *c, bool on) { c->track_fragments = on; }

/* Which of the connection's own zlib streams hold state, for tests: CONN_ZLIB_* bits. */
enum { CONN_ZLIB_INFLATER = 1, CONN_ZLIB_INFLATER_WINDOW = 2, CONN_ZLIB_DEFLATER = 4 };
unsigned conn_zlib_state(const conn *c);

/* Queues one data frame. opcode is OP_TEXT or OP_BINARY; while a message started with
 * fin = false is open, the frame goes out as a continuation. Returns a pointer where the
 * caller writes exactly len payload bytes, then calls conn_frame_commit (which masks them on
 * a client). NULL when memory runs out. */
uint8_t *conn_frame_reserve(conn *c, uint8_t opcode, bool fin, bool rsv1, size_t len);
void conn_frame_commit(conn *c, uint8_t *payload, size_t len);

/* Makes room for extra more output bytes, so the next reservations within it cannot move
 * the buffer. Returns false when memory runs out. */
bool conn_output_ensure(conn *c, size_t extra);

/* Server only (no masking): queues just the header of a data frame of len bytes; the caller
 * writes the payload itself right after the queued output, without copying it here. */
bool conn_send_header(conn *c, uint8_t opcode, bool fin, bool rsv1, uint64_t len);

/* Appends bytes that are already whole frames (built once for many connections: topics).
 * Only for servers, whose frames are not masked, and never in the middle of a message this
 * connection is sending in fragments. Returns false when memory runs out. */
bool conn_send_framed(conn *c, const uint8_t *frames, size_t len);

/* Whether a message of len bytes goes out compressed when the sender asks for it: only a
 * whole message outside a fragmented send, on a connection that negotiated the extension.
 * As in ws, the size threshold applies only without context takeover: with it, even a short
 * message compresses well against the history. */
bool conn_should_compress(const conn *c, bool requested, bool fin, size_t len);

/* Queues one whole data message compressed (RSV1 set) with the connection's deflater (or
 * the shared one). Only for a negotiated extension and outside a fragmented send; returns
 * false when memory runs out. */
bool conn_send_compressed(conn *c, uint8_t opcode, const uint8_t *data, size_t len);

/* Inflating a message off the connection's thread (after CONN_EV_INFLATE), in three steps:
 * conn_inflate_begin moves the compressed message and everything the work needs into a task,
 * conn_inflate_run (on any thread) does the work touching only the task, and
 * conn_inflate_finish (back on the connection's thread) frees what the task held and records
 * its outcome: on failure the close frame with the status is queued, as for a failure found
 * by conn_feed. The inflated message stays in task->output for the caller to take (none on
 * failure). Parsing resumes after it. Until then the connection's own inflater, if the task
 * uses it, belongs to the task. */
typedef struct conn_inflate_task {
  pmd_buffer input;   /* the compressed message */
  pmd_stream *stream; /* the connection's own inflater, or &fresh */
  pmd_stream fresh;   /* when the connection shares its inflater with others */
  uint64_t cap;       /* maxPayload */
  bool reset;         /* the peer takes over no context */
  bool check_utf8;    /* a text message whose UTF-8 is to be validated */
  bool binary;
  pmd_buffer output;
  conn_error error;
} conn_inflate_task;

void conn_inflate_begin(conn *c, conn_inflate_task *task);
void conn_inflate_run(conn_inflate_task *task);
/* released: the connection went away meanwhile (c is not touched; no output is kept). */
conn_error conn_inflate_finish(conn *c, conn_inflate_task *task, bool released);

/* Fails the connection for a reason found outside conn_feed (memory ran out in the caller):
 * err is recorded and the close frame with its status queued, as conn_feed would. */
void conn_fail(conn *c, conn_error err);

/* Compressing one whole message off the connection's thread, in the same three steps. The
 * caller sends nothing else on the connection meanwhile, so messages keep their order and
 * the connection's own deflater is used by one thread at a time. begin takes ownership of
 * input (malloc'd). */
typedef struct conn_deflate_task {
  uint8_t *input;
  size_t input_len;
  uint8_t opcode;
  pmd_stream *stream; /* the connection's own deflater, or &fresh */
  pmd_stream fresh;
  bool reset;
  pmd_buffer output;
  pmd_result result;
} conn_deflate_task;

void conn_deflate_begin(conn *c, conn_deflate_task *task, uint8_t opcode, uint8_t *input,
                        size_t len);
void conn_deflate_run(conn_deflate_task *task);
/* Queues the compressed frame unless the task failed or a close frame went out meanwhile.
 * released: as for conn_inflate_finish. */
conn_send_result conn_deflate_finish(conn *c, conn_deflate_task *task, bool released);

/* Called periodically: parks (pmd_stream_park) this connection's own zlib streams that have
 * done no work for `periods` calls, so an idle connection keeps its inflater's window and no
 * zlib state. Not while a thread-pool job uses one of its streams (the caller knows).
 * Returns how many it parked. */
unsigned conn_park_idle_streams(conn *c, unsigned periods);

/* Frames compressed without this connection's deflater (a topic's shared frame) were queued:
 * the deflater must not refer back past them. */
static inline void conn_deflater_invalidate(conn *c) {
  if (c->zlib) c->zlib->deflater_stale = true; /* (without one, no deflater has a window yet) */
}

/* Copies payload into one queued frame; returns false when memory runs out. */
bool conn_send_frame(conn *c, uint8_t opcode, bool fin, bool rsv1, const uint8_t *payload,
                     size_t len);

/* Queues a close frame (code 0: none, an empty payload) unless one was sent already.
 * The caller validates code and reason. Returns false if none was queued. */
bool conn_send_close(conn *c, int code, const uint8_t *reason, size_t reason_len);

/* The queued output. conn_output_clear forgets it; conn_output_detach hands the malloc'd
 * buffer to the caller (who frees it) and leaves the queue empty. */
static inline size_t conn_output_size(const conn *c) { return c->out_len; }
static inline const uint8_t *conn_output_data(const conn *c) { return c->out; }
void conn_output_clear(conn *c);
uint8_t *conn_output_detach(conn *c, size_t *len);

/* Output at least this big is better handed over than copied (conn_output_detach); a buffer
 * grown past it is given back once its output was taken (conn_output_taken), so that idle
 * connections stay small. Below it the connection keeps (and reuses) its buffer. */
#define CONN_OUTPUT_HANDOFF_MIN 65536

/* The queued output was written or copied elsewhere: empties the queue, keeping a small
 * buffer for the next turn and freeing a large one. */
void conn_output_taken(conn *c);

#endif
