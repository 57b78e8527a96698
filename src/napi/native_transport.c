/* The native transport's glue: after the upgrade the addon owns the connection's socket (a
 * close-on-exec dup of the fd Node's socket had; Node's socket is then destroyed). The socket
 * itself is src/transport/socket.c; this file polls it on Node's loop, reads into the buffer
 * JS shares, writes the connection's output and tells JS what happened.
 *
 * Polling goes through a poller (src/transport/poller.h): on Linux by default one epoll set
 * per environment, which Node's loop watches as a single uv_poll_t (an idle socket then costs
 * no libuv handle); elsewhere, or when asked, a uv_poll_t per socket on Node's own loop
 * (poller_uv.c: kqueue on macOS and the BSDs). Windows has no native transport: Node does not
 * hand out its sockets there, and JS keeps every socket on the stream transport.
 *
 * Reads go into one buffer shared by every connection of the thread (made by JS, see
 * transportInit) and each read reaches JavaScript in one call; a connection's output (the
 * engine's queue plus any payloads written without a copy) leaves in one send/sendmsg per
 * flush, and whatever the kernel does not take is kept by the socket until it is writable.
 *
 * JS names a transport by its connection's slot index (dispatch()'s first argument) and passes
 * the connection's handle to every function here. The poller reports the handle with each
 * event, so an event for a connection released meanwhile (its slot freed or reused) is
 * recognised as stale and dropped.
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

#include "napi/addon.h"
#include "napi/poller_uv.h"
#include "napi/register.h"
#include "transport/poller.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <unistd.h>
#include <uv.h>

/* sendmsg takes at most this many pieces per call; more wait in the socket's pending output. */
#define MAX_IOV 64

/* Events taken from the epoll set per turn of Node's loop; more wait for the next turn (the
 * set is level-triggered), so other I/O is not starved. */
#define EVENTS_PER_TURN 128

/* What JS is told (the dispatch function's second argument). */
enum { EV_READ = 1, EV_END = 2, EV_DRAIN = 3, EV_CLOSE = 4, EV_READ_MORE = 5, EV_FLUSH = 6 };

/* Per environment. */
typedef struct transport_state {
  napi_env env;
  uv_loop_t *loop; /* the environment's (Node's) event loop */
  /* Every read of the thread goes here: a Buffer JS made (transportInit()), so that a read
   * costs no Buffer of its own; JS copies the bytes out, or parses them in place, before its
   * dispatch returns and the next read can land. */
  uint8_t *read_buffer;
  size_t read_buffer_size;
  napi_ref read_buffer_ref;
  napi_ref dispatch; /* dispatch(id, event, argument), set by transportInit() */
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup;
  poller *poller;       /* NULL before transportInit() */
  bool epoll;           /* the poller is the epoll backend, watched through epoll_watch */
  uv_poll_t epoll_watch; /* Node's loop watching the epoll fd, active while sockets are open */
  uv_idle_t report;     /* active while closes wait to be told to JS */
  /* Handles of connections whose close JS was not told yet. transportOpen() makes room for
   * its socket's close here, so that closing never allocates (and cannot fail to tell JS). */
  uint32_t *closed;
  size_t closed_len, closed_cap;
  size_t open_count;   /* sockets open */
  size_t ref_count;    /* sockets open that keep the loop alive (not unref()'d) */
  bool batch_held;     /* JS was told EV_READ_MORE last: it holds replies back */
  int handles_closing; /* at teardown: libuv handles whose close callback is to come */
  bool tearing_down;   /* the environment is going away: JS is not called any more */
} transport_state;

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

/* Calls dispatch(id, event, arg) as a libuv callback should: through napi_make_callback, so
 * the nextTick and microtask queues run after it, and with an exception reported like any
 * uncaught one. */
static void call_dispatch(transport_state *s, uint32_t id, int event, double arg) {
  napi_env env = s->env;
  if (s->tearing_down || s->dispatch == NULL) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, global, result;
  if (napi_get_reference_value(env, s->dispatch, &fn) == napi_ok && fn != NULL) {
    napi_get_global(env, &global);
    napi_value argv[3] = {make_number(env, id), make_number(env, event), make_number(env, arg)};
    napi_status status = napi_make_callback(env, s->async_context, global, fn, 3, argv, &result);
    if (status == napi_pending_exception) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok)
        napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* An event of a connection's transport: JS names it by its slot index. */
static void emit(transport_state *s, const connection *c, int event, double arg) {
  call_dispatch(s, c->handle & HANDLE_INDEX_MASK, event, arg);
}

/* Whether the open sockets keep Node's loop alive: with the epoll backend one handle speaks
 * for all of them (referenced while any socket is); otherwise each socket's own does. */
static void apply_ref(transport_state *s, connection *c) {
  if (s->epoll) {
    if (s->ref_count == 0) uv_unref((uv_handle_t *)&s->epoll_watch);
    else uv_ref((uv_handle_t *)&s->epoll_watch);
  } else if (c != NULL && s->poller->backend->ref) {
    s->poller->backend->ref(s->poller, &c->socket);
  }
}

/* ---- closing ---- */

static void report_closes(uv_idle_t *idle);

/* Closes the socket now (with reset: by RST); JS hears of it from the loop (report_closes). */
static void close_transport(transport_state *s, connection *c, bool reset) {
  transport_socket *t = &c->socket;
  if (!(t->flags & SOCKET_OPEN)) return;
  poller_close_socket(s->poller, t, reset);
  if (!(t->flags & SOCKET_UNREF)) s->ref_count--;
  if (--s->open_count == 0 && s->epoll) uv_poll_stop(&s->epoll_watch);
  s->closed[s->closed_len++] = c->handle; /* (room made by transport_open) */
  uv_idle_start(&s->report, report_closes);
}

/* Tells JS of the closes since the last turn, in the order they happened. */
static void report_closes(uv_idle_t *idle) {
  transport_state *s = idle->data;
  uv_idle_stop(idle);
  /* JS may close more meanwhile: those are appended and told in this same loop. */
  for (size_t i = 0; i < s->closed_len; i++) {
    connection *c = addon_connection_of_handle(s->env, s->closed[i]);
    if (c) emit(s, c, EV_CLOSE, c->socket.error);
  }
  s->closed_len = 0;
}

/* Makes the poller wait for what the socket wants now; a poller that fails ends the socket. */
static void update_poll(transport_state *s, connection *c) {
  int err = poller_update(s->poller, &c->socket, c->handle);
  if (err != 0) {
    socket_set_error(&c->socket, err);
    close_transport(s, c, false);
  }
}

static void shut_write(transport_state *s, connection *c) {
  /* Both directions are done: nothing more can happen on this socket. */
  if (socket_shutdown_write(&c->socket)) close_transport(s, c, false);
}

/* ---- polling ---- */

/* Reads once; returns whether JS was given bytes. With more set, other sockets of this batch
 * are still to be read: JS may hold this connection's reply back until the batch's last read
 * (or EV_FLUSH), so the replies of a batch leave together, back to back. A peer sleeping in
 * its poll is then woken once per batch rather than once per reply. */
static bool read_once(transport_state *s, connection *c, bool more) {
  transport_socket *t = &c->socket;
  size_t n = 0;
  switch (socket_read(t, s->read_buffer, s->read_buffer_size, &n)) {
    case SOCKET_DONE:
      /* The bytes are at the start of the read buffer. */
      emit(s, c, more ? EV_READ_MORE : EV_READ, (double)n);
      return true;
    case SOCKET_END:
      update_poll(s, c);
      /* Told even after our own FIN (as a net.Socket emits 'end'); then both ways are done. */
      emit(s, c, EV_END, 0);
      if (t->flags & SOCKET_SHUT) close_transport(s, c, false);
      return false;
    case SOCKET_FAILED:
      close_transport(s, c, false);
      return false;
    default:
      return false;
  }
}

/* One socket's events; returns whether JS was given bytes (see read_once for more). JS may
 * run (and close this socket) in each emit. */
static bool on_socket_events(transport_state *s, connection *c, unsigned events, bool more) {
  transport_socket *t = &c->socket;
  if ((events & SOCKET_WANT_WRITE) && t->pending) {
    socket_status status = socket_write_pending(t);
    if (status == SOCKET_FAILED) {
      close_transport(s, c, false);
      return false;
    }
    if (status == SOCKET_DONE) {
      update_poll(s, c);
      if (t->flags & SOCKET_END_REQUESTED) shut_write(s, c);
      emit(s, c, EV_DRAIN, 0);
      if (!(t->flags & SOCKET_OPEN)) return false;
    }
  }
  return (events & SOCKET_WANT_READ) && !(t->flags & (SOCKET_PAUSED | SOCKET_EOF)) &&
         read_once(s, c, more);
}

/* The poller's report for one socket (poller_event_fn). */
static void on_poller_event(void *ctx, uint32_t token, unsigned events, bool more) {
  transport_state *s = ctx;
  if (s->tearing_down) return;
  /* The connection may have been closed or released by JS since the poller looked. */
  connection *c = addon_connection_of_handle(s->env, token);
  if (!c || !(c->socket.flags & SOCKET_OPEN)) return;
  bool gave = on_socket_events(s, c, events, more);
  if (gave) s->batch_held = more;
}

/* The epoll set is readable: its sockets have events. */
static void on_epoll_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  transport_state *s = handle->data;
  if (status < 0) return; /* (not expected of an epoll fd; the next turn tries again) */
  s->batch_held = false;
  poller_epoll_dispatch(s->poller, EVENTS_PER_TURN);
  /* The batch's last socket gave no bytes: the replies held back go now. */
  if (s->batch_held && !s->tearing_down) call_dispatch(s, 0, EV_FLUSH, 0);
  s->batch_held = false;
}

/* ---- teardown of an environment ---- */

static void finish_teardown(transport_state *s) {
  napi_remove_async_cleanup_hook(s->cleanup);
  free(s->closed);
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
  if (s->read_buffer_ref) napi_delete_reference(s->env, s->read_buffer_ref);
  s->read_buffer_ref = NULL;
  s->read_buffer = NULL;
  napi_async_destroy(s->env, s->async_context);
  if (s->poller == NULL) {
    finish_teardown(s);
    return;
  }
  /* The sockets themselves are closed when their connections are freed, with the addon's
   * instance data; the poller lets go of them here. */
  s->handles_closing = 2;
  uv_close((uv_handle_t *)&s->report, on_handle_closed);
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

/* transportInit(dispatch, readBuffer[, poller]): dispatch(id, event, arg) receives every
 * event; every read goes into readBuffer (EV_READ's arg is the byte count), which is kept
 * alive from here on. poller names the backend (transportPollers lists them; default: the
 * first). Called once, before the first transportOpen(). */
static napi_value transport_init(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  transport_state *s = state_of(env, info, &argc, argv);
  napi_valuetype type = napi_undefined;
  void *data = NULL;
  size_t size = 0;
  if (argc >= 1) napi_typeof(env, argv[0], &type);
  if (!s || type != napi_function || argc < 2 ||
      napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok || size < 4096)
    return usage_error(env, "transportInit(dispatch, readBuffer[, poller]) expects a function "
                            "and a Buffer of at least 4 KiB");
  char name[16] = "";
  napi_valuetype name_type = napi_undefined;
  if (argc >= 3) napi_typeof(env, argv[2], &name_type);
  if (name_type == napi_string) {
    size_t len = 0;
    napi_get_value_string_utf8(env, argv[2], name, sizeof(name), &len);
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
    p = poller_epoll_create(on_poller_event, s);
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
    p = poller_uv_create(s->loop, on_poller_event, s);
    if (!p) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  if (p == NULL) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "transportInit(): unknown poller");
    return NULL;
  }
  uv_idle_init(s->loop, &s->report);
  s->report.data = s;
  s->poller = p;
  s->epoll = epoll;
  napi_create_reference(env, argv[0], 1, &s->dispatch);
  napi_create_reference(env, argv[1], 1, &s->read_buffer_ref);
  s->read_buffer = data;
  s->read_buffer_size = size;
  return make_undefined(env);
}

/* transportOpen(fd, connection[, setNoDelay]) -> id: duplicates fd (close-on-exec), so the
 * caller can then destroy its own socket, turns Nagle off unless told it is off already, and
 * starts reading. From then on the connection's output goes to the socket with
 * transportFlush() and its events reach dispatch(id, ...). */
static napi_value transport_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  transport_state *s = state_of(env, info, &argc, argv);
  int32_t fd = -1;
  if (!s || argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
    return usage_error(env, "transportOpen(fd, connection[, setNoDelay]) expects a file "
                            "descriptor and a connection handle");
  connection *c = addon_connection(env, argv[1]);
  if (!c) return NULL;
  if (c->socket.flags != 0 || c->released)
    return throw_error(env, "WS_ERR_NATIVE",
                       "the connection is released or has had a transport already");
  if (s->tearing_down) return throw_error(env, "WS_ERR_NATIVE", "the environment is shutting down");
  if (s->poller == NULL) return throw_error(env, "WS_ERR_NATIVE", "transportInit() first");
  /* Room for this socket's close report, besides every open socket's and those not told yet. */
  if (s->open_count + s->closed_len + 1 > s->closed_cap) {
    size_t cap = s->closed_cap ? s->closed_cap * 2 : 64;
    uint32_t *grown = realloc(s->closed, cap * sizeof(*grown));
    if (!grown) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    s->closed = grown;
    s->closed_cap = cap;
  }

  /* Small frames must not wait for Nagle; Node may have set that already (setNoDelay). */
  bool no_delay = true;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &no_delay);
  int own = socket_take(fd, no_delay);
  if (own < 0) return throw_error(env, "WS_ERR_NATIVE", strerror(-own));
  if (s->open_count == 0 && s->epoll) {
    int rc = uv_poll_start(&s->epoll_watch, UV_READABLE, on_epoll_readable);
    if (rc != 0) {
      close(own);
      return throw_error(env, "WS_ERR_NATIVE", uv_strerror(rc));
    }
  }
  socket_open(&c->socket, own);
  int err = poller_update(s->poller, &c->socket, c->handle);
  if (err != 0) {
    poller_close_socket(s->poller, &c->socket, false);
    c->socket.flags = 0; /* never opened, as far as anyone can tell */
    if (s->open_count == 0 && s->epoll) uv_poll_stop(&s->epoll_watch);
    return throw_error(env, "WS_ERR_NATIVE", strerror(err));
  }
  s->open_count++;
  s->ref_count++;
  apply_ref(s, c);
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
  if (e != NULL && conn_output_size(e) > 0)
    iov[count++] = (struct iovec){(void *)conn_output_data(e), conn_output_size(e)};
  socket_status status = socket_write(t, iov, count);
  if (iov != stack_iov) free(iov);
  /* The engine's queue was written or copied. */
  if (e != NULL) conn_output_taken(e);
  if (status == SOCKET_FAILED) close_transport(s, c, false);
  else update_poll(s, c);
  if (!(t->flags & SOCKET_OPEN)) return make_number(env, -1);
  return make_number(env, (double)socket_pending_size(t));
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
    if (socket_pending_size(t) == 0) shut_write(s, c);
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
  if (t) close_transport(s, c, get_bool(env, argv[1]));
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
    t->flags = (uint8_t)(get_bool(env, argv[1]) ? t->flags | SOCKET_PAUSED
                                                 : t->flags & ~SOCKET_PAUSED);
    update_poll(s, c);
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
  if (!transport_args(env, info, 2, argv, "transportRef(connection, ref)", &s, &c, &t))
    return NULL;
  bool ref = get_bool(env, argv[1]);
  if (t && ref == ((t->flags & SOCKET_UNREF) != 0)) {
    t->flags = (uint8_t)(ref ? t->flags & ~SOCKET_UNREF : t->flags | SOCKET_UNREF);
    if (ref) s->ref_count++;
    else s->ref_count--;
    apply_ref(s, c);
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
  if (!transport_args(env, info, 3, argv, "transportKeepAlive(connection, on, idleSeconds)", &s,
                      &c, &t))
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
  if (!transport_args(env, info, 1, argv, "transportAddress(connection)", &s, &c, &t))
    return NULL;
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
  /* What dispatch()'s second argument means, for lib/native-transport.js. */
  static const struct {
    const char *name;
    uint32_t value;
  } event_names[] = {{"READ", EV_READ},   {"END", EV_END},           {"DRAIN", EV_DRAIN},
                     {"CLOSE", EV_CLOSE}, {"READ_MORE", EV_READ_MORE}, {"FLUSH", EV_FLUSH}};
  napi_value events, pollers, name;
  if (napi_create_object(env, &events) != napi_ok) return false;
  for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++)
    if (!set_uint_property(env, events, event_names[i].name, event_names[i].value)) return false;
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
      {"transportOpen", NULL, transport_open, NULL, NULL, NULL, napi_default, s},
      {"transportFlush", NULL, transport_flush, NULL, NULL, NULL, napi_default, s},
      {"transportEnd", NULL, transport_end, NULL, NULL, NULL, napi_default, s},
      {"transportDestroy", NULL, transport_destroy, NULL, NULL, NULL, napi_default, s},
      {"transportPause", NULL, transport_pause, NULL, NULL, NULL, napi_default, s},
      {"transportAddress", NULL, transport_address, NULL, NULL, NULL, napi_default, s},
      {"transportRef", NULL, transport_ref, NULL, NULL, NULL, napi_default, s},
      {"transportNoDelay", NULL, transport_no_delay, NULL, NULL, NULL, napi_default, s},
      {"transportKeepAlive", NULL, transport_keep_alive, NULL, NULL, NULL, napi_default, s},
      {"transportStats", NULL, transport_stats, NULL, NULL, NULL, napi_default, s},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) ==
         napi_ok;
}

#else /* Windows: no native transport; JS sees no transport functions */

bool native_transport_register(napi_env env, napi_value exports, napi_value constants) {
  (void)env;
  (void)exports;
  (void)constants;
  return true;
}

#endif
