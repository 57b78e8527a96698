/* The native transport's glue: after the upgrade the addon owns the connection's socket (a
 * close-on-exec dup of the fd Node's socket had; Node's socket is then released). The socket
 * itself is src/transport/socket.c; the receive path (reads, the engine, the batch JS is
 * handed) is native_receive.c; this file sets the transport up and tears it down, and has the
 * functions JS calls on a connection's socket: writing its output, ending, destroying, pausing,
 * its addresses and socket options.
 *
 * Polling goes through a poller (src/transport/poller.h): on Linux by default one epoll set
 * per environment, which Node's loop watches as a single uv_poll_t (an idle socket then costs
 * no libuv handle); elsewhere, or when asked, a uv_poll_t per socket on Node's own loop
 * (poller_uv.c: kqueue on macOS and the BSDs). Windows has no native transport: Node does not
 * hand out its sockets there, and JS keeps every socket on the stream transport.
 *
 * JS names a transport by its connection's slot index (in the batch table) and passes the
 * connection's handle to every function here. The poller reports the handle with each event,
 * so an event for a connection released meanwhile (its slot freed or reused) is recognised as
 * stale and dropped.
 *
 * Lifetimes: closing a socket is synchronous (poller entry removed, fd closed, pending output
 * freed), but JS is told from the loop, by an idle handle, never from inside the call that
 * closed it; JS releases the connection after that. An async cleanup hook closes the libuv
 * handles and the poller when the environment goes away; JS is not called then, and the
 * sockets still open are closed with their connections. */
#if !defined(_WIN32)
#define _GNU_SOURCE /* uv.h needs POSIX types (pthread_rwlock_t) that -std=c11 hides */
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "napi/native_transport.h"
#include "napi/poller_uv.h"
#include "napi/register.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <unistd.h>
#include <uv.h>

/* sendmsg takes at most this many pieces per call; more wait in the socket's pending output. */
#define MAX_IOV 64

/* ---- helpers ---- */

/* A call that does not match its signature: a TypeError naming the signature. */
static napi_value usage_error(napi_env env, const char *usage) {
  return throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
}

static transport_state *state_of(napi_env env, napi_callback_info info, size_t *argc,
                                 napi_value *argv) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, NULL, &data) != napi_ok) return NULL;
  return data;
}

/* Reads the arguments of a function taking (connection, ...): argc of them into argv, and
 * the connection's socket, NULL unless it is open. False with an exception pending. */
static bool transport_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv,
                           const char *usage, transport_state **s, connection **c,
                           transport_socket **t) {
  size_t given = argc;
  *s = state_of(env, info, &given, argv);
  if (*s == NULL || given < argc) {
    usage_error(env, usage);
    return false;
  }
  if ((*c = addon_connection(env, argv[0])) == NULL) return false;
  *t = (*c)->socket.flags & SOCKET_OPEN && !(*s)->tearing_down ? &(*c)->socket : NULL;
  return true;
}

/* Whether the open sockets keep Node's loop alive: with the epoll backend one handle speaks
 * for all of them (referenced while any socket is); otherwise each socket's own does. */
static void apply_ref(transport_state *s, connection *c) {
  if (s->epoll) {
    if (s->ref_count == 0) uv_unref((uv_handle_t *)&s->epoll_watch);
    else
      uv_ref((uv_handle_t *)&s->epoll_watch);
  } else if (c != NULL && s->poller->backend->ref) {
    s->poller->backend->ref(s->poller, &c->socket);
  }
}

/* ---- closing ---- */

/* The epoll fd's watch starts with the first socket and stays started: an epoll fd with no
 * sockets in it never wakes the loop, and with no referenced socket the watch is unref'd, so
 * it does not keep the loop alive. Stopping it whenever the last socket closed cost a server
 * with one connection at a time three system calls per connection (libuv's epoll_ctl DEL on
 * stop, and DEL + ADD on the next start). */
void transport_socket_opened(transport_state *s, bool referenced) {
  s->open_count++;
  if (s->epoll && !uv_is_active((uv_handle_t *)&s->epoll_watch))
    uv_poll_start(&s->epoll_watch, UV_READABLE, transport_on_epoll_readable);
  if (referenced) s->ref_count++;
  if (s->epoll) apply_ref(s, NULL);
}

void transport_socket_closed(transport_state *s, bool referenced) {
  if (referenced) s->ref_count--;
  s->open_count--;
  if (s->epoll) apply_ref(s, NULL);
}

bool transport_reserve_close(transport_state *s) {
  /* Room for one more close report, besides every open socket's and those not told yet. */
  if (s->open_count + s->closed_len + 1 > s->closed_cap) {
    size_t cap = s->closed_cap ? s->closed_cap * 2 : 64;
    uint32_t *grown = realloc(s->closed, cap * sizeof(*grown));
    if (!grown) return false;
    s->closed = grown;
    s->closed_cap = cap;
  }
  return transport_reserve_touched(s);
}

int transport_adopt_socket(transport_state *s, connection *c, const transport_socket *from) {
  if (!transport_reserve_close(s)) return ENOMEM;
  c->socket = *from;
  c->socket.events = 0;
  c->socket.poll_slot = NULL;
  int err = poller_update(s->poller, &c->socket, c->handle);
  if (err != 0) {
    poller_close_socket(s->poller, &c->socket, false);
    c->socket.flags = 0;
    return err;
  }
  transport_socket_opened(s, true);
  return 0;
}

void transport_close(transport_state *s, connection *c, bool reset) {
  transport_socket *t = &c->socket;
  if (!(t->flags & SOCKET_OPEN)) return;
  poller_close_socket(s->poller, t, reset);
  transport_socket_closed(s, !(t->flags & SOCKET_UNREF));
  s->closed[s->closed_len++] = c->handle; /* (room made by transport_open) */
  uv_idle_start(&s->report, transport_report_closes);
}

void transport_update_poll(transport_state *s, connection *c) {
  int err = poller_update(s->poller, &c->socket, c->handle);
  if (err != 0) {
    socket_set_error(&c->socket, err);
    transport_close(s, c, false);
  }
}

void transport_shut_write(transport_state *s, connection *c) {
  /* Both directions are done: nothing more can happen on this socket. */
  if (socket_shutdown_write(&c->socket)) transport_close(s, c, false);
}

void transport_write_output(transport_state *s, connection *c, struct iovec *pieces, size_t count) {
  conn *e = &c->engine;
  struct iovec one;
  if (conn_output_size(e) > 0) {
    /* (pieces, when given, has room for one more: see transport_flush) */
    struct iovec *slot = pieces ? &pieces[count] : &one;
    *slot = (struct iovec){(void *)conn_output_data(e), conn_output_size(e)};
    if (!pieces) pieces = &one;
    count++;
  }
  socket_status status = count > 0 ? socket_write(&c->socket, pieces, count) : SOCKET_DONE;
  /* The engine's queue was written or copied. */
  conn_output_taken(e);
  if (status == SOCKET_FAILED) transport_close(s, c, false);
  else
    transport_update_poll(s, c);
}

int64_t transport_flush_output(transport_state *s, connection *c) {
  transport_socket *t = &c->socket;
  if (!(t->flags & SOCKET_OPEN) || s->tearing_down) return -1;
  if (t->flags & SOCKET_END_REQUESTED) {
    conn_output_clear(&c->engine); /* (nothing may follow the FIN) */
    return -1;
  }
  if (conn_output_size(&c->engine) > 0) transport_write_output(s, c, NULL, 0);
  return t->flags & SOCKET_OPEN ? (int64_t)socket_pending_size(t) : -1;
}

/* ---- teardown of an environment ---- */

static void finish_teardown(transport_state *s) {
  napi_remove_async_cleanup_hook(s->cleanup);
  free(s->closed);
  free(s->touched);
  free(s);
}

static void on_handle_closed(uv_handle_t *handle) {
  transport_state *s = handle->data;
  if (--s->handles_closing == 0) finish_teardown(s);
}

static void on_poller_closed(void *arg) {
  transport_state *s = arg;
  if (--s->handles_closing == 0) finish_teardown(s);
}

static void teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  transport_state *s = arg;
  s->tearing_down = true;
  if (s->dispatch) napi_delete_reference(s->env, s->dispatch);
  s->dispatch = NULL;
  for (napi_ref *ref = &s->read_buffer_ref; ref != NULL;
       ref = ref == &s->read_buffer_ref ? &s->table_ref
             : ref == &s->table_ref     ? &s->objects_ref
                                        : NULL) {
    if (*ref) napi_delete_reference(s->env, *ref);
    *ref = NULL;
  }
  s->read_buffer = NULL;
  s->table = NULL;
  napi_async_destroy(s->env, s->async_context);
  if (s->poller == NULL) {
    finish_teardown(s);
    return;
  }
  /* The sockets themselves are closed when their connections are freed, with the addon's
   * instance data; the poller lets go of them here. */
  listener_teardown(s);
  s->handles_closing = 4;
  uv_close((uv_handle_t *)&s->report, on_handle_closed);
  uv_close((uv_handle_t *)&s->handshake_sweep, on_handle_closed);
  uv_close((uv_handle_t *)&s->batch_end, on_handle_closed);
  poller *p = s->poller;
  s->poller = NULL;
  if (s->epoll) {
    uv_close((uv_handle_t *)&s->epoll_watch, on_handle_closed);
    p->backend->destroy(p);
  } else {
    poller_uv_shutdown(p, on_poller_closed, s);
  }
}

/* ---- functions for JS ---- */

/* The poller backends this build has, in order of preference. */
static const char *const backends[] = {
#if defined(__linux__)
    "epoll",
#endif
    "uv"};

/* A read buffer's bytes from a JS value: a Buffer of at least 128 KiB (two of Node's 64 KiB
 * reads) whose offsets fit the table's 32-bit words. */
static bool read_buffer_of(napi_env env, napi_value value, void **data, size_t *size) {
  return napi_get_buffer_info(env, value, data, size) == napi_ok && *size >= 2 * 64 * 1024 &&
         *size <= UINT32_MAX;
}

/* Reads go into this buffer from now on; the reference keeps it alive. */
static void read_buffer_use(transport_state *s, napi_ref ref, void *data, size_t size) {
  s->read_buffer_ref = ref;
  s->read_buffer = data;
  s->read_buffer_size = size;
  s->read_used = 0;
  s->sink.chunk = data;
  s->sink.chunk_len = size;
}

/* transportInit(dispatchBatch, readBuffer, table, objects[, poller]): every read goes into
 * readBuffer; the events of a batch go into table (a Uint32Array: BATCH_* in
 * native_transport.h), with the Buffers they need in the objects array, and dispatchBatch()
 * is called once per batch to handle them (it ends by calling transportFlushBatch()). All of
 * them are kept alive from here on. poller names the backend (transportPollers lists them;
 * default: the first). Called once, before the first transportOpen(). */
static napi_value transport_init(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  transport_state *s = state_of(env, info, &argc, argv);
  napi_valuetype type = napi_undefined;
  void *data = NULL, *table = NULL;
  size_t size = 0, table_len = 0;
  napi_typedarray_type table_type = napi_int8_array;
  bool objects_ok = false;
  if (argc >= 1) napi_typeof(env, argv[0], &type);
  if (argc >= 4) napi_is_array(env, argv[3], &objects_ok);
  if (!s || type != napi_function || argc < 4 || !read_buffer_of(env, argv[1], &data, &size) ||
      napi_get_typedarray_info(env, argv[2], &table_type, &table_len, &table, NULL, NULL) !=
          napi_ok ||
      table_type != napi_uint32_array || table_len < BATCH_HEADER + 16 * BATCH_STRIDE ||
      !objects_ok)
    return usage_error(env,
                       "transportInit(dispatchBatch, readBuffer, table, objects[, poller]) "
                       "expects a function, a Buffer of at least 128 KiB, a Uint32Array "
                       "and an array");
  char name[16] = "";
  napi_valuetype name_type = napi_undefined;
  if (argc >= 5) napi_typeof(env, argv[4], &name_type);
  if (name_type == napi_string) {
    size_t len = 0;
    napi_get_value_string_utf8(env, argv[4], name, sizeof(name), &len);
  } else if (name_type != napi_undefined) {
    return usage_error(env, "transportInit(): poller must be a string");
  } else {
    strcpy(name, backends[0]);
  }
  if (s->poller != NULL || s->tearing_down)
    return throw_error(env, "WS_ERR_NATIVE", "the native transport is set up already");

  poller *p = NULL;
  bool epoll = false;
#if defined(__linux__)
  if (strcmp(name, "epoll") == 0) {
    p = poller_epoll_create(transport_on_poller_event, s);
    if (!p) return throw_error(env, "WS_ERR_NATIVE", strerror(errno));
    int rc = uv_poll_init(s->loop, &s->epoll_watch, poller_epoll_fd(p));
    if (rc != 0) {
      p->backend->destroy(p);
      return throw_error(env, "WS_ERR_NATIVE", uv_strerror(rc));
    }
    s->epoll_watch.data = s;
    epoll = true;
  }
#endif
  if (strcmp(name, "uv") == 0) {
    p = poller_uv_create(s->loop, transport_on_poller_event, s);
    if (!p) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  if (p == NULL) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "transportInit(): unknown poller");
    return NULL;
  }
  uv_idle_init(s->loop, &s->report);
  s->report.data = s;
  uv_timer_init(s->loop, &s->handshake_sweep);
  uv_unref((uv_handle_t *)&s->handshake_sweep); /* (the sockets it watches keep the loop alive) */
  s->handshake_sweep.data = s;
  uv_check_init(s->loop, &s->batch_end);
  uv_unref((uv_handle_t *)&s->batch_end); /* (it runs within a turn that is happening anyway) */
  s->batch_end.data = s;
  s->poller = p;
  s->epoll = epoll;
  napi_create_reference(env, argv[0], 1, &s->dispatch);
  napi_ref read_buffer_ref = NULL;
  napi_create_reference(env, argv[1], 1, &read_buffer_ref);
  napi_create_reference(env, argv[2], 1, &s->table_ref);
  napi_create_reference(env, argv[3], 1, &s->objects_ref);
  s->table = table;
  s->table_capacity = (uint32_t)((table_len - BATCH_HEADER) / BATCH_STRIDE);
  memset(table, 0, BATCH_HEADER * sizeof(uint32_t));
  s->sink = (event_sink){.env = env};
  read_buffer_use(s, read_buffer_ref, data, size);
  return make_undefined(env);
}

/* transportReadBuffer(buffer): the reads from now on go into buffer, which is kept alive from
 * here on, and the old read buffer is let go (the payloads JS kept as views of it keep it).
 * Only from a dispatchBatch() whose table says BATCH_HANDOFF: then no read is in progress
 * in the old buffer, and the next one starts at the new buffer's beginning. */
static napi_value transport_read_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  transport_state *s = state_of(env, info, &argc, argv);
  void *data = NULL;
  size_t size = 0;
  if (!s || argc < 1 || !read_buffer_of(env, argv[0], &data, &size))
    return usage_error(env, "transportReadBuffer(buffer) expects a Buffer of at least 128 KiB");
  if (s->table == NULL || !s->dispatching || s->table[BATCH_HANDOFF] != 1)
    return throw_error(env, "WS_ERR_NATIVE",
                       "transportReadBuffer(): only within a batch that hands the buffer off");
  napi_ref ref = NULL;
  if (napi_create_reference(env, argv[0], 1, &ref) != napi_ok) return NULL;
  napi_delete_reference(env, s->read_buffer_ref);
  read_buffer_use(s, ref, data, size);
  return make_undefined(env);
}

/* Writes a latin1 string (a server's 101 response) ahead of the connection's output. Read
 * straight out of the string: a Buffer made for it in JS would be one more allocation and
 * one more call on every handshake. */
static void write_response(napi_env env, transport_state *s, connection *c, napi_value text) {
  char stack[1024];
  char *bytes = stack;
  size_t len = 0;
  if (napi_get_value_string_latin1(env, text, stack, sizeof(stack), &len) != napi_ok) return;
  if (len == sizeof(stack) - 1) { /* (it may not have fit) */
    if (napi_get_value_string_latin1(env, text, NULL, 0, &len) != napi_ok) return;
    if (len >= sizeof(stack) && (bytes = malloc(len + 1)) == NULL) {
      transport_close(s, c, true); /* (the client never gets its answer: reported as a close) */
      return;
    }
    if (bytes != stack) napi_get_value_string_latin1(env, text, bytes, len + 1, &len);
  }
  struct iovec pieces[2] = {{bytes, len}}; /* (room for the engine's output after it) */
  transport_write_output(s, c, pieces, 1);
  if (bytes != stack) free(bytes);
}

/* transportOpen(fd, connection[, setNoDelay[, response]]) -> id: duplicates fd (close-on-exec),
 * so the caller can then destroy its own socket, turns Nagle off unless told it is off
 * already, writes response (a string, latin1) if given, and starts reading. From then on the
 * connection's output goes to the socket with transportFlush() (or at the end of a batch)
 * and its events reach dispatchBatch() under id, its slot index. */
static napi_value transport_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  transport_state *s = state_of(env, info, &argc, argv);
  int32_t fd = -1;
  if (!s || argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
    return usage_error(env,
                       "transportOpen(fd, connection[, setNoDelay[, response]]) expects a file "
                       "descriptor and a connection handle");
  connection *c = addon_connection(env, argv[1]);
  if (!c) return NULL;
  if (c->socket.flags != 0 || c->released)
    return throw_error(env, "WS_ERR_NATIVE",
                       "the connection is released or has had a transport already");
  if (s->tearing_down) return throw_error(env, "WS_ERR_NATIVE", "the environment is shutting down");
  if (s->poller == NULL) return throw_error(env, "WS_ERR_NATIVE", "transportInit() first");
  if (!transport_reserve_close(s)) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");

  /* Small frames must not wait for Nagle; Node may have set that already (setNoDelay). */
  bool no_delay = true;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &no_delay);
  int own = socket_take(fd, no_delay);
  if (own < 0) return throw_error(env, "WS_ERR_NATIVE", strerror(-own));
  transport_socket fresh;
  socket_open(&fresh, own);
  int err = transport_adopt_socket(s, c, &fresh);
  if (err != 0) return throw_error(env, "WS_ERR_NATIVE", strerror(err));
  napi_valuetype response_type = napi_undefined;
  if (argc >= 4) napi_typeof(env, argv[3], &response_type);
  if (response_type == napi_string) write_response(env, s, c, argv[3]);
  return make_number(env, c->handle & HANDLE_INDEX_MASK);
}

/* transportFlush(connection, buffers?) -> bytes still pending, or -1 when the socket no longer
 * takes output. Writes buffers (in order), then the connection's queued output, in one send
 * or sendmsg (socket_write), and empties that queue. */
static napi_value transport_flush(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 2, argv, "transportFlush(connection, buffers)", &s, &c, &t))
    return NULL;
  conn *e = c->released ? NULL : &c->engine;
  if (t == NULL || (t->flags & SOCKET_END_REQUESTED)) {
    if (e) conn_output_clear(e);
    return make_number(env, -1);
  }
  uint32_t buffer_count = 0;
  bool is_array = false;
  if (napi_is_array(env, argv[1], &is_array) == napi_ok && is_array)
    napi_get_array_length(env, argv[1], &buffer_count);

  struct iovec stack_iov[MAX_IOV];
  struct iovec *iov = stack_iov;
  size_t pieces = (size_t)buffer_count + 1;
  if (pieces > MAX_IOV) {
    iov = malloc(pieces * sizeof(*iov));
    if (!iov) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  size_t count = 0;
  for (uint32_t i = 0; i < buffer_count; i++) {
    napi_value element;
    void *data = NULL;
    size_t len = 0;
    if (napi_get_element(env, argv[1], i, &element) != napi_ok ||
        napi_get_buffer_info(env, element, &data, &len) != napi_ok) {
      if (iov != stack_iov) free(iov);
      return usage_error(env, "buffers must be an array of Buffers");
    }
    if (len > 0) iov[count++] = (struct iovec){data, len};
  }
  if (e != NULL) {
    transport_write_output(s, c, iov, count); /* (iov has room for the engine's piece) */
  } else if (socket_write(t, iov, count) == SOCKET_FAILED) {
    transport_close(s, c, false);
  } else {
    transport_update_poll(s, c);
  }
  if (iov != stack_iov) free(iov);
  if (!(t->flags & SOCKET_OPEN)) return make_number(env, -1);
  return make_number(env, (double)socket_pending_size(t));
}

/* transportFlushEach(handles, count): transportFlush() without buffers for each connection of
 * handles[0..count), in one call (the connections sender.js scheduled a flush for in one
 * tick: a publish to 1,000 subscribers took 1,000 ticks and calls before). Then handles[i]
 * holds the bytes its socket still has pending, or FLUSH_CLOSED when it is closed or ending. */
static napi_value transport_flush_each(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  transport_state *s = state_of(env, info, &argc, argv);
  uint32_t *handles;
  size_t count;
  if (s == NULL || argc < 2) return usage_error(env, "transportFlushEach(handles, count)");
  if (!get_handle_list(env, argv[0], argv[1], &handles, &count)) return NULL;
  for (size_t i = 0; i < count; i++) {
    connection *c = addon_connection_of_handle(env, handles[i]);
    int64_t pending = c == NULL ? -1 : transport_flush_output(s, c);
    handles[i] = pending < 0               ? FLUSH_CLOSED
                 : pending >= FLUSH_CLOSED ? FLUSH_CLOSED - 1
                                           : (uint32_t)pending;
  }
  return make_undefined(env);
}

/* transportEnd(connection): sends FIN once the pending output is written. */
static napi_value transport_end(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 1, argv, "transportEnd(connection)", &s, &c, &t)) return NULL;
  if (t) {
    t->flags |= SOCKET_END_REQUESTED;
    if (socket_pending_size(t) == 0) transport_shut_write(s, c);
  }
  return make_undefined(env);
}

/* transportDestroy(connection, reset): closes the socket now (with reset, by RST); EV_CLOSE
 * follows from the loop. */
static napi_value transport_destroy(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 2, argv, "transportDestroy(connection, reset)", &s, &c, &t))
    return NULL;
  if (t) transport_close(s, c, get_bool(env, argv[1]));
  return make_undefined(env);
}

/* transportPause(connection, paused): stops or restarts reading. */
static napi_value transport_pause(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 2, argv, "transportPause(connection, paused)", &s, &c, &t))
    return NULL;
  if (t) {
    t->flags = (uint16_t)(get_bool(env, argv[1]) ? t->flags | SOCKET_PAUSED
                                                 : t->flags & ~SOCKET_PAUSED);
    transport_update_poll(s, c);
  }
  return make_undefined(env);
}

static napi_value address_value(napi_env env, const struct sockaddr_storage *ss, int *port,
                                const char **family) {
  char name[INET6_ADDRSTRLEN] = "";
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    uv_ip4_name(in, name, sizeof(name));
    *port = ntohs(in->sin_port);
    *family = "IPv4";
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(in6, name, sizeof(name));
    *port = ntohs(in6->sin6_port);
    *family = "IPv6";
  } else {
    return make_undefined(env);
  }
  napi_value v;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* transportRef(connection, ref): whether the socket keeps the event loop alive, as
 * net.Socket's ref() and unref(). */
static napi_value transport_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 2, argv, "transportRef(connection, ref)", &s, &c, &t)) return NULL;
  bool ref = get_bool(env, argv[1]);
  if (t && ref == ((t->flags & SOCKET_UNREF) != 0)) {
    t->flags = (uint16_t)(ref ? t->flags & ~SOCKET_UNREF : t->flags | SOCKET_UNREF);
    if (ref) s->ref_count++;
    else
      s->ref_count--;
    apply_ref(s, c);
  }
  return make_undefined(env);
}

/* transportObserve(connection, on): whether JS is given each read's raw bytes too (EV_DATA),
 * for a 'data' listener on ws._socket. */
static napi_value transport_observe(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 2, argv, "transportObserve(connection, on)", &s, &c, &t))
    return NULL;
  if (t) {
    t->flags = (uint16_t)(get_bool(env, argv[1]) ? t->flags | SOCKET_OBSERVED
                                                 : t->flags & ~SOCKET_OBSERVED);
  }
  return make_undefined(env);
}

/* transportNoDelay(connection, on) / transportKeepAlive(connection, on, idleSeconds): the
 * socket options net.Socket's setNoDelay() and setKeepAlive() set. Return 0 or an errno value
 * (a Unix-domain socket has no Nagle); nothing once the socket is closed. */
static napi_value transport_no_delay(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 2, argv, "transportNoDelay(connection, on)", &s, &c, &t))
    return NULL;
  return make_number(env, t ? socket_set_no_delay(t, get_bool(env, argv[1])) : 0);
}

static napi_value transport_keep_alive(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 3, argv, "transportKeepAlive(connection, on, idleSeconds)", &s, &c,
                      &t))
    return NULL;
  double idle = 0;
  napi_get_value_double(env, argv[2], &idle);
  unsigned seconds = idle >= 1 && idle < 4294967295.0 ? (unsigned)idle : 0;
  return make_number(env, t ? socket_set_keep_alive(t, get_bool(env, argv[1]), seconds) : 0);
}

/* transportStats(connection) -> [bytesRead, bytesWritten], counted while the socket was open
 * (kept after it closed, until the connection is released). */
static napi_value transport_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 1, argv, "transportStats(connection)", &s, &c, &t)) return NULL;
  napi_value result;
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, make_uint(env, c->socket.bytes_read));
  napi_set_element(env, result, 1, make_uint(env, c->socket.bytes_written));
  return result;
}

/* transportAddress(connection) -> [remoteAddress, remotePort, remoteFamily, localAddress,
 * localPort, localFamily], or undefined once the socket is closed. */
static napi_value transport_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  transport_state *s;
  connection *c;
  transport_socket *t;
  if (!transport_args(env, info, 1, argv, "transportAddress(connection)", &s, &c, &t)) return NULL;
  struct sockaddr_storage peer, local;
  if (!t || !socket_addresses(t, &peer, &local)) return make_undefined(env);
  int remote_port = 0, local_port = 0;
  const char *remote_family = NULL, *local_family = NULL;
  napi_value result;
  napi_create_array_with_length(env, 6, &result);
  napi_set_element(env, result, 0, address_value(env, &peer, &remote_port, &remote_family));
  napi_set_element(env, result, 1,
                   remote_family ? make_number(env, remote_port) : make_undefined(env));
  napi_value family = make_undefined(env);
  if (remote_family) napi_create_string_utf8(env, remote_family, NAPI_AUTO_LENGTH, &family);
  napi_set_element(env, result, 2, family);
  napi_set_element(env, result, 3, address_value(env, &local, &local_port, &local_family));
  napi_set_element(env, result, 4,
                   local_family ? make_number(env, local_port) : make_undefined(env));
  family = make_undefined(env);
  if (local_family) napi_create_string_utf8(env, local_family, NAPI_AUTO_LENGTH, &family);
  napi_set_element(env, result, 5, family);
  return result;
}

bool native_transport_register(napi_env env, napi_value exports, napi_value constants) {
  (void)constants;
  transport_state *s = calloc(1, sizeof(*s));
  if (!s) {
    napi_throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    return false;
  }
  s->env = env;
  if (napi_get_uv_event_loop(env, &s->loop) != napi_ok || s->loop == NULL) {
    free(s);
    napi_throw_error(env, "WS_ERR_NATIVE", "ws-native: no event loop");
    return false;
  }
  napi_value resource_name;
  napi_create_string_utf8(env, "ws-native:transport", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_async_init(env, NULL, resource_name, &s->async_context) != napi_ok ||
      napi_add_async_cleanup_hook(env, teardown, s, &s->cleanup) != napi_ok) {
    free(s);
    napi_throw_error(env, "WS_ERR_NATIVE", "ws-native: cannot set up the native transport");
    return false;
  }
  /* The batch table's layout and the transport's event kinds, for lib/native-transport.js. */
  static const struct {
    const char *name;
    uint32_t value;
  } names[] = {{"REST", EV_REST},
               {"END", EV_END},
               {"DRAIN", EV_DRAIN},
               {"CLOSE", EV_CLOSE},
               {"HANDSHAKE", EV_HANDSHAKE},
               {"DATA", EV_DATA},
               {"BATCH_HEADER", BATCH_HEADER},
               {"BATCH_STRIDE", BATCH_STRIDE},
               {"BATCH_COUNT", BATCH_COUNT},
               {"BATCH_SPAN_START", BATCH_SPAN_START},
               {"BATCH_SPAN_END", BATCH_SPAN_END},
               {"BATCH_IN_PLACE", BATCH_IN_PLACE},
               {"BATCH_HANDOFF", BATCH_HANDOFF},
               {"FLUSH_CLOSED", FLUSH_CLOSED}};
  napi_value events, pollers, name;
  if (napi_create_object(env, &events) != napi_ok) return false;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (!set_uint_property(env, events, names[i].name, names[i].value)) return false;
  size_t backend_count = sizeof(backends) / sizeof(backends[0]);
  if (napi_create_array_with_length(env, backend_count, &pollers) != napi_ok) return false;
  for (size_t i = 0; i < backend_count; i++) {
    if (napi_create_string_utf8(env, backends[i], NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_set_element(env, pollers, (uint32_t)i, name) != napi_ok)
      return false;
  }
  napi_property_descriptor props[] = {
      {"transportEvents", NULL, NULL, NULL, NULL, events, napi_enumerable, NULL},
      {"transportPollers", NULL, NULL, NULL, NULL, pollers, napi_enumerable, NULL},
      {"transportInit", NULL, transport_init, NULL, NULL, NULL, napi_default, s},
      {"transportReadBuffer", NULL, transport_read_buffer, NULL, NULL, NULL, napi_default, s},
      {"transportOpen", NULL, transport_open, NULL, NULL, NULL, napi_default, s},
      {"transportFlush", NULL, transport_flush, NULL, NULL, NULL, napi_default, s},
      {"transportFlushBatch", NULL, transport_flush_batch, NULL, NULL, NULL, napi_default, s},
      {"transportFlushEach", NULL, transport_flush_each, NULL, NULL, NULL, napi_default, s},
      {"transportEnd", NULL, transport_end, NULL, NULL, NULL, napi_default, s},
      {"transportDestroy", NULL, transport_destroy, NULL, NULL, NULL, napi_default, s},
      {"transportPause", NULL, transport_pause, NULL, NULL, NULL, napi_default, s},
      {"transportAddress", NULL, transport_address, NULL, NULL, NULL, napi_default, s},
      {"transportRef", NULL, transport_ref, NULL, NULL, NULL, napi_default, s},
      {"transportObserve", NULL, transport_observe, NULL, NULL, NULL, napi_default, s},
      {"transportNoDelay", NULL, transport_no_delay, NULL, NULL, NULL, napi_default, s},
      {"transportKeepAlive", NULL, transport_keep_alive, NULL, NULL, NULL, napi_default, s},
      {"transportStats", NULL, transport_stats, NULL, NULL, NULL, napi_default, s},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok &&
         native_listener_register(s, env, exports);
}

#else /* Windows: no native transport; JS sees no transport functions */

bool native_transport_register(napi_env env, napi_value exports, napi_value constants) {
  (void)env;
  (void)exports;
  (void)constants;
  return true;
}

#endif
