/* The native transport's receive path, in C end to end: when the poller says sockets are
 * readable, each is read into the thread's read buffer (one read after another), the bytes go
 * straight into its connection's engine, and the engine's events fill one table for the whole
 * batch. JavaScript is then called once, dispatchBatch(), to emit them all; the replies its
 * listeners queued leave together when it calls transportFlushBatch() at the end. So a turn
 * of the loop costs one C -> JS call, one JS -> C call, and a send() per reply, however many
 * sockets and messages it carries (before: a C -> JS, a feed and a flush call per read). */
#if !defined(_WIN32)
#define _GNU_SOURCE /* uv.h needs POSIX types (pthread_rwlock_t) that -std=c11 hides */
#endif
#include "napi/native_transport.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <errno.h>
#include <stdlib.h>

/* A read is only started with at least this much room left in the read buffer (Node reads
 * 64 KiB at a time); with less, the batch so far is handed to JS first and the buffer reused. */
#define READ_MIN (64 * 1024)

/* The rest of a frame is read straight into its message (conn_payload_target) when at least
 * this much of it is still to come: below it, a read into the shared buffer that also takes
 * the frames behind it is worth the copy. At most LAND_MAX per read, as for any read. */
#define LAND_MIN (16 * 1024)
#define LAND_MAX (1024 * 1024)

/* Events taken from the epoll set per turn of Node's loop; more wait for the next turn (the
 * set is level-triggered), so other I/O is not starved. */
#define EVENTS_PER_TURN 128

/* ---- the batch ---- */

/* Opens the handle scope the events of a batch are made in (Buffers for payloads the engine
 * assembled); false when it cannot (nothing is read then: the poller reports it again). */
static bool batch_open(transport_state *s, napi_handle_scope *scope) {
  if (napi_open_handle_scope(s->env, scope) != napi_ok) return false;
  if (napi_get_reference_value(s->env, s->objects_ref, &s->sink.objects) != napi_ok) {
    napi_close_handle_scope(s->env, *scope);
    return false;
  }
  s->in_batch = true;
  return true;
}

static void batch_close(transport_state *s, napi_handle_scope scope) {
  s->in_batch = false;
  s->sink.objects = NULL;
  napi_close_handle_scope(s->env, scope);
}

static uint32_t batch_count(const transport_state *s) { return s->table[BATCH_COUNT]; }

static void span_add(transport_state *s, uint32_t offset, uint32_t len) {
  uint32_t *t = s->table;
  if (t[BATCH_IN_PLACE] == 0 && t[BATCH_SPAN_END] == t[BATCH_SPAN_START]) {
    t[BATCH_SPAN_START] = offset;
    t[BATCH_SPAN_END] = offset + len;
  } else {
    if (offset < t[BATCH_SPAN_START]) t[BATCH_SPAN_START] = offset;
    if (offset + len > t[BATCH_SPAN_END]) t[BATCH_SPAN_END] = offset + len;
  }
  t[BATCH_IN_PLACE] += len;
}

/* The connection has events in this batch: its replies are written at the batch's end. */
static void touch(transport_state *s, connection *c) {
  if (c->socket.flags & SOCKET_TOUCHED) return;
  c->socket.flags |= SOCKET_TOUCHED;
  s->touched[s->touched_len++] = c->handle; /* (room made by transportOpen) */
}

static void flush_touched(transport_state *s, uint32_t *left, uint32_t *left_count);

/* Hands the table to JS (dispatchBatch()), as a libuv callback should call JS: through
 * napi_make_callback, so the nextTick and microtask queues run after it, and with an
 * exception reported like any uncaught one. Then the table is empty again. */
static void batch_dispatch(transport_state *s) {
  if (batch_count(s) == 0 || s->tearing_down || s->dispatch == NULL) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, global, result;
  s->dispatching = true;
  if (napi_get_reference_value(env, s->dispatch, &fn) == napi_ok && fn != NULL) {
    napi_get_global(env, &global);
    napi_status status = napi_make_callback(env, s->async_context, global, fn, 0, NULL, &result);
    if (status == napi_pending_exception) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok)
        napi_fatal_exception(env, exception);
    }
  }
  s->dispatching = false;
  napi_close_handle_scope(env, scope);
  s->table[BATCH_COUNT] = 0;
  s->table[BATCH_SPAN_START] = s->table[BATCH_SPAN_END] = s->table[BATCH_IN_PLACE] = 0;
  s->sink.object_count = 0;
  /* JS ends each batch with transportFlushBatch(); if it could not, the replies go anyway. */
  if (s->touched_len > 0) flush_touched(s, NULL, NULL);
}

/* A batch after which the read buffer starts over (read_used = 0): JS may keep it. */
static void batch_dispatch_last(transport_state *s) {
  s->table[BATCH_HANDOFF] = 1;
  batch_dispatch(s);
  s->table[BATCH_HANDOFF] = 0;
  s->read_used = 0;
}

/* A free row of the table for c, after handing a full table to JS; NULL when there is none
 * (JS is handling the table: only possible if it reached C from inside dispatchBatch). */
static uint32_t *batch_row(transport_state *s, connection *c) {
  if (batch_count(s) == s->table_capacity) batch_dispatch(s);
  if (batch_count(s) == s->table_capacity || s->dispatching) return NULL;
  uint32_t *row = s->table + BATCH_HEADER + (size_t)batch_count(s) * BATCH_STRIDE;
  row[0] = c->handle & HANDLE_INDEX_MASK;
  return row;
}

/* A transport event (EV_END, EV_DRAIN, EV_CLOSE, EV_REST) of c. */
static void batch_add(transport_state *s, connection *c, uint32_t kind, uint32_t a, uint32_t b,
                      uint32_t code) {
  uint32_t *row = batch_row(s, c);
  if (row == NULL) return;
  row[1] = kind;
  row[2] = a;
  row[3] = b;
  row[4] = code;
  s->table[BATCH_COUNT]++;
  if (kind != EV_CLOSE) touch(s, c);
}

/* ---- the engine, fed from the read buffer ---- */

typedef struct feed_ctx {
  transport_state *s;
  connection *c;
  bool failed; /* a Buffer for a payload could not be made */
} feed_ctx;

/* A Buffer for a payload could not be made (feed_ctx.failed): the connection ends. */
static void close_out_of_memory(transport_state *s, connection *c) {
  socket_set_error(&c->socket, ENOMEM);
  transport_close(s, c, false);
}

/* The engine's events go into the batch table (conn_event_cb). */
static bool on_engine_event(void *opaque, const conn_event *ev) {
  feed_ctx *f = opaque;
  transport_state *s = f->s;
  uint32_t *row = s->table + BATCH_HEADER + (size_t)batch_count(s) * BATCH_STRIDE;
  row[0] = f->c->handle & HANDLE_INDEX_MASK;
  if (!event_encode(&s->sink, ev, row + 1)) {
    f->failed = true;
    return false;
  }
  if (!(row[1] & EV_FLAG_OBJECT) && row[3] > 0) span_add(s, row[2], row[3]);
  touch(s, f->c);
  return ++s->table[BATCH_COUNT] < s->table_capacity;
}

/* Runs the engine over n bytes the read put at `at` in the read buffer. It stops early when
 * the table is full, or when it holds a control frame back until the events before it are
 * handled (so that replies keep wire order): the table goes to JS then, and the engine goes
 * on with the rest. While the engine inflates a large message elsewhere it takes nothing:
 * what is left goes to JS (EV_REST), which parses it once the message is delivered, and the
 * socket is paused until then. */
static void feed_read(transport_state *s, connection *c, uint8_t *at, size_t n) {
  size_t pos = 0;
  for (;;) {
    if (batch_count(s) == s->table_capacity) batch_dispatch(s);
    if (c->released || !(c->socket.flags & SOCKET_OPEN)) return;
    feed_ctx f = {s, c, false};
    pos += conn_feed(&c->engine, at + pos, n - pos, on_engine_event, &f);
    if (f.failed) {
      close_out_of_memory(s, c);
      return;
    }
    if (conn_inflating(&c->engine)) {
      if (pos < n) {
        uint32_t offset = (uint32_t)(at + pos - s->read_buffer);
        span_add(s, offset, (uint32_t)(n - pos));
        batch_add(s, c, EV_REST, offset, (uint32_t)(n - pos), 0);
        c->socket.flags |= SOCKET_PAUSED;
        transport_update_poll(s, c);
      }
      return;
    }
    if (pos >= n && !conn_has_deferred(&c->engine)) return;
    batch_dispatch(s);
  }
}

/* The engine's events after n bytes were read straight into the message it assembles. */
static void feed_landed(transport_state *s, connection *c, size_t n) {
  if (batch_count(s) == s->table_capacity) batch_dispatch(s);
  if (c->released || !(c->socket.flags & SOCKET_OPEN)) return;
  feed_ctx f = {s, c, false};
  conn_feed_landed(&c->engine, n, on_engine_event, &f);
  if (f.failed) {
    close_out_of_memory(s, c);
    return;
  }
  /* work the engine deferred until these events were handled: as after any read */
  if (conn_has_deferred(&c->engine)) feed_read(s, c, s->read_buffer + s->read_used, 0);
}

/* A read that found the peer's end or a broken socket. */
static void read_ended(transport_state *s, connection *c, socket_status status) {
  if (status == SOCKET_FAILED) {
    transport_close(s, c, false);
    return;
  }
  transport_update_poll(s, c);
  /* Told even after our own FIN (as a net.Socket emits 'end'); then both ways are done. */
  batch_add(s, c, EV_END, 0, 0, 0);
  if (c->socket.flags & SOCKET_SHUT) transport_close(s, c, false);
}

/* Reads once into the batch's part of the read buffer and feeds the engine. The rest of a
 * large frame (LAND_MIN bytes or more) is read straight into the message the engine
 * assembles instead: the bytes are then copied once (by the kernel), not twice. */
static void read_socket(transport_state *s, connection *c) {
  transport_socket *t = &c->socket;
  size_t room = 0;
  uint8_t *into = (t->flags & SOCKET_OBSERVED)
                      ? NULL /* ('data' listeners see each read as it came) */
                      : conn_payload_target(&c->engine, LAND_MIN, LAND_MAX, &room);
  if (into != NULL) {
    size_t n = 0;
    socket_status status = socket_read(t, into, room, &n);
    if (status == SOCKET_DONE) {
      feed_landed(s, c, n);
      /* the socket had no more, or the connection ended, or has more landing to do */
      if (n < room || !(t->flags & SOCKET_OPEN) || (t->flags & (SOCKET_PAUSED | SOCKET_EOF)))
        return;
      if (conn_payload_target(&c->engine, LAND_MIN, LAND_MAX, &room) != NULL) return;
    } else {
      if (status != SOCKET_AGAIN) read_ended(s, c, status);
      return;
    }
  }
  if (s->read_buffer_size - s->read_used < READ_MIN) {
    batch_dispatch_last(s);
    if (!(t->flags & SOCKET_OPEN) || (t->flags & (SOCKET_PAUSED | SOCKET_EOF))) return;
  }
  uint8_t *at = s->read_buffer + s->read_used;
  size_t n = 0;
  socket_status status = socket_read(t, at, s->read_buffer_size - s->read_used, &n);
  switch (status) {
    case SOCKET_DONE:
      s->read_used += n;
      if (t->flags & SOCKET_OBSERVED) {
        uint32_t offset = (uint32_t)(at - s->read_buffer);
        span_add(s, offset, (uint32_t)n);
        batch_add(s, c, EV_DATA, offset, (uint32_t)n, 0);
      }
      feed_read(s, c, at, n);
      break;
    case SOCKET_END:
    case SOCKET_FAILED: read_ended(s, c, status); break;
    default: break;
  }
}

/* One socket's events. */
static void on_socket_events(transport_state *s, connection *c, unsigned events) {
  transport_socket *t = &c->socket;
  if ((events & SOCKET_WANT_WRITE) && t->pending) {
    socket_status status = socket_write_pending(t);
    if (status == SOCKET_FAILED) {
      transport_close(s, c, false);
      return;
    }
    if (status == SOCKET_DONE) {
      transport_update_poll(s, c);
      if (t->flags & SOCKET_END_REQUESTED) transport_shut_write(s, c);
      batch_add(s, c, EV_DRAIN, 0, 0, 0);
      if (!(t->flags & SOCKET_OPEN)) return;
    }
  }
  if ((events & SOCKET_WANT_READ) && !(t->flags & (SOCKET_PAUSED | SOCKET_EOF))) read_socket(s, c);
}

void transport_on_poller_event(void *ctx, uint32_t token, unsigned events, bool more) {
  (void)more; /* (a batch ends when the poller's turn does: see below) */
  transport_state *s = ctx;
  if (s->tearing_down) return;
  /* The uv poller calls here once per socket, outside any batch: the batch then ends in
   * libuv's check phase, right after its poll phase (transport_on_batch_end). */
  napi_handle_scope scope = NULL;
  bool own = !s->in_batch;
  if (own && !batch_open(s, &scope)) return;
  if (token & TOKEN_LISTENER_PART) {
    listener_on_event(s, token, events);
  } else {
    /* The connection may have been closed or released by JS since the poller looked. */
    connection *c = addon_connection_of_handle(s->env, token);
    if (c && (c->socket.flags & SOCKET_OPEN)) on_socket_events(s, c, events);
  }
  if (own) {
    batch_close(s, scope);
    if (batch_count(s) > 0 || s->touched_len > 0)
      uv_check_start(&s->batch_end, transport_on_batch_end);
  }
}

void transport_on_batch_end(uv_check_t *check) {
  transport_state *s = check->data;
  uv_check_stop(check);
  if (s->tearing_down) return;
  batch_dispatch_last(s);
}

/* The epoll set is readable: its sockets have events, read in one batch. */
void transport_on_epoll_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  transport_state *s = handle->data;
  if (status < 0 || s->tearing_down) return; /* (not expected of an epoll fd) */
  napi_handle_scope scope;
  if (!batch_open(s, &scope)) return;
#if defined(__linux__)
  poller_epoll_dispatch(s->poller, EVENTS_PER_TURN);
#endif
  batch_close(s, scope);
  batch_dispatch_last(s);
}

/* Tells JS of the closes since the last turn, in the order they happened. */
void transport_report_closes(uv_idle_t *idle) {
  transport_state *s = idle->data;
  uv_idle_stop(idle);
  if (s->tearing_down) return;
  napi_handle_scope scope;
  if (!batch_open(s, &scope)) {
    uv_idle_start(idle, transport_report_closes); /* (the next turn tries again) */
    return;
  }
  /* JS may close more meanwhile: those are appended and told in this same loop. */
  for (size_t i = 0; i < s->closed_len; i++) {
    connection *c = addon_connection_of_handle(s->env, s->closed[i]);
    if (c) batch_add(s, c, EV_CLOSE, 0, 0, c->socket.error);
    if (batch_count(s) == s->table_capacity) batch_dispatch(s);
  }
  s->closed_len = 0;
  batch_close(s, scope);
  batch_dispatch(s);
}

void transport_batch_handshake(transport_state *s, uint32_t listener, uint32_t token,
                               napi_value request, napi_value head) {
  if (batch_count(s) == s->table_capacity) batch_dispatch(s);
  if (batch_count(s) == s->table_capacity || s->dispatching) return;
  uint32_t index = s->sink.object_count;
  if (napi_set_element(s->env, s->sink.objects, index, request) != napi_ok) return;
  s->sink.object_count++;
  if (head != NULL) {
    if (napi_set_element(s->env, s->sink.objects, index + 1, head) != napi_ok) return;
    s->sink.object_count++;
  }
  uint32_t *row = s->table + BATCH_HEADER + (size_t)batch_count(s) * BATCH_STRIDE;
  row[0] = listener;
  row[1] = EV_HANDSHAKE;
  row[2] = index;
  row[3] = token;
  row[4] = head != NULL;
  s->table[BATCH_COUNT]++;
}

/* ---- replies ---- */

bool transport_reserve_touched(transport_state *s) {
  if (s->open_count + 1 <= s->touched_cap) return true;
  size_t cap = s->touched_cap ? s->touched_cap * 2 : 64;
  uint32_t *grown = realloc(s->touched, cap * sizeof(*grown));
  if (!grown) return false;
  s->touched = grown;
  s->touched_cap = cap;
  return true;
}

/* Writes what the engines of the batch's connections queued (those JS flushed itself have
 * nothing left); left[] gets (slot, bytes) of each whose socket then still has output
 * pending, when asked for. */
static void flush_touched(transport_state *s, uint32_t *left, uint32_t *left_count) {
  uint32_t kept = 0;
  for (size_t i = 0; i < s->touched_len; i++) {
    connection *c = addon_connection_of_handle(s->env, s->touched[i]);
    if (c == NULL) continue;
    c->socket.flags &= (uint16_t)~SOCKET_TOUCHED;
    int64_t pending = transport_flush_output(s, c);
    if (left != NULL && pending > 0) {
      left[2 * kept] = c->handle & HANDLE_INDEX_MASK;
      left[2 * kept + 1] = pending > UINT32_MAX ? UINT32_MAX : (uint32_t)pending;
      kept++;
    }
  }
  s->touched_len = 0;
  if (left_count) *left_count = kept;
}

/* transportFlushBatch() -> n: writes the replies of the batch's connections that JS did not
 * flush itself; the table then holds n pairs (slot, bytes still pending) after its header,
 * for the connections whose socket did not take everything. Called by dispatchBatch() once
 * it has handled the table. */
napi_value transport_flush_batch(napi_env env, napi_callback_info info) {
  transport_state *s = NULL;
  if (napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&s) != napi_ok || s == NULL ||
      s->table == NULL)
    return throw_error(env, "WS_ERR_NATIVE", "transportInit() first");
  uint32_t kept = 0;
  flush_touched(s, s->table + BATCH_HEADER, &kept);
  return make_uint(env, kept);
}

#else

typedef int native_receive_unavailable; /* (Windows: no native transport) */

#endif
