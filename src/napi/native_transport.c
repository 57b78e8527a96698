/* The native transport: after the upgrade the addon owns the TCP socket (a close-on-exec dup of
 * the fd Node's socket had; Node's socket is then destroyed).
 *
 * Polling: the sockets of an environment (the main thread or a worker) are registered with one
 * epoll instance of its own, and Node's libuv loop polls that epoll fd with a single uv_poll_t.
 * A libuv handle per socket would cost every idle connection ~220 bytes; this way a socket
 * costs the 16-byte native_transport inside its connection (and the kernel's epoll entry).
 * Linux only: elsewhere nothing is registered and JS keeps every socket on the stream
 * transport.
 *
 * Reads go into one buffer shared by every connection of the thread (made by JS, see
 * transportInit) and each read reaches JavaScript in one call; a connection's output (the
 * engine's queue plus any payloads written without a copy) leaves in one send/sendmsg per
 * flush, and whatever the kernel does not take is kept here until the socket is writable.
 *
 * JS names a transport by its connection's slot index (dispatch()'s first argument) and passes
 * the connection's handle to every function here. The kernel's epoll entry carries the handle,
 * so an event for a connection released meanwhile (its slot freed or reused) is recognised as
 * stale and dropped.
 *
 * Lifetimes: closing a socket is synchronous (epoll entry removed, fd closed, pending output
 * freed), but JS is told from the loop, by an idle handle, never from inside the call that
 * closed it; JS releases the connection after that. A connection freed first (only at an
 * environment's teardown) just closes its fd. An async cleanup hook closes the libuv handles
 * and the epoll fd when the environment goes away; JS is not called then. */
/* uv.h needs POSIX types (pthread_rwlock_t) that -std=c11 hides; F_DUPFD_CLOEXEC too. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "napi/addon.h"
#include "napi/register.h"

#ifdef __linux__
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

/* sendmsg takes at most this many pieces per call (IOV_MAX is 1024 on Linux). */
#define MAX_IOV 64

/* Events taken from the epoll set per turn of Node's loop; more wait for the next turn (the
 * set is level-triggered), so other I/O is not starved. */
#define EVENTS_PER_TURN 128

/* What JS is told (the dispatch function's second argument). */
enum { EV_READ = 1, EV_END = 2, EV_DRAIN = 3, EV_CLOSE = 4, EV_READ_MORE = 5, EV_FLUSH = 6 };

/* native_transport.flags */
enum {
  T_OPEN = 1,          /* the fd is ours and open */
  T_PAUSED = 2,        /* JS asked not to read */
  T_EOF = 4,           /* the peer sent FIN */
  T_END_REQUESTED = 8, /* send FIN once the pending output is written */
  T_SHUT = 16,         /* FIN sent */
  T_CLOSED = 32,       /* closed; JS is told (or was) */
};

/* Output the kernel did not take yet: data[off, len). Allocated on the first short write and
 * freed once written, so an idle connection keeps none. */
typedef struct pending_output {
  size_t off, len, cap;
  uint8_t data[];
} pending_output;

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
  int epoll_fd;     /* every open socket of the environment; -1 before transportInit() */
  uv_poll_t poll;   /* Node's loop watching epoll_fd, active while sockets are open */
  uv_idle_t report; /* active while closes wait to be told to JS */
  /* Handles of connections whose close JS was not told yet. transportOpen() makes room for
   * its socket's close here, so that closing never allocates (and cannot fail to tell JS). */
  uint32_t *closed;
  size_t closed_len, closed_cap;
  size_t open_count;   /* sockets open */
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
 * the connection's transport, NULL unless its socket is open. False with an exception
 * pending. */
static bool transport_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv,
                           const char *usage, transport_state **s, connection **c,
                           native_transport **t) {
  size_t given = argc;
  *s = state_of(env, info, &given, argv);
  if (*s == NULL || given < argc) {
    usage_error(env, usage);
    return false;
  }
  if ((*c = addon_connection(env, argv[0])) == NULL) return false;
  *t = (*c)->transport.flags & T_OPEN && !(*s)->tearing_down ? &(*c)->transport : NULL;
  return true;
}

static size_t pending_size(const native_transport *t) {
  return t->pending ? t->pending->len - t->pending->off : 0;
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

/* ---- closing ---- */

static void report_closes(uv_idle_t *idle);

/* Closes the socket now; JS hears of it from the loop (report_closes). */
static void close_transport(transport_state *s, connection *c) {
  native_transport *t = &c->transport;
  if (!(t->flags & T_OPEN)) return;
  if (t->events) epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, t->fd, NULL);
  close(t->fd);
  free(t->pending);
  t->pending = NULL;
  t->events = 0;
  t->flags = (uint8_t)((t->flags & ~T_OPEN) | T_CLOSED);
  if (--s->open_count == 0) uv_poll_stop(&s->poll);

  s->closed[s->closed_len++] = c->handle; /* (room made by transport_open) */
  uv_idle_start(&s->report, report_closes);
}

static void fail(transport_state *s, connection *c, int err) {
  if (c->transport.error == 0) c->transport.error = (uint16_t)err; /* (errno values are small) */
  close_transport(s, c);
}

/* Tells JS of the closes since the last turn, in the order they happened. */
static void report_closes(uv_idle_t *idle) {
  transport_state *s = idle->data;
  uv_idle_stop(idle);
  /* JS may close more meanwhile: those are appended and told in this same loop. */
  for (size_t i = 0; i < s->closed_len; i++) {
    connection *c = addon_connection_of_handle(s->env, s->closed[i]);
    if (c) emit(s, c, EV_CLOSE, c->transport.error);
  }
  s->closed_len = 0;
}

void native_transport_detach(connection *c) {
  native_transport *t = &c->transport;
  /* (The environment's epoll fd is closed already: it took its entries with it.) */
  if (t->flags & T_OPEN) close(t->fd);
  free(t->pending);
  t->pending = NULL;
  t->flags = T_CLOSED;
}

/* ---- polling ---- */

/* Reads while JS wants data and the peer has not ended; waits for writability while output
 * is pending. The epoll entry is changed only when the mask changes; with nothing to wait
 * for it is removed (an entry always reports errors and hang-ups, even with an empty mask). */
static void update_poll(transport_state *s, connection *c) {
  native_transport *t = &c->transport;
  if (!(t->flags & T_OPEN)) return;
  uint8_t want = 0;
  if (!(t->flags & (T_PAUSED | T_EOF))) want |= EPOLLIN;
  if (pending_size(t) > 0) want |= EPOLLOUT;
  if (want == t->events) return;
  struct epoll_event ev = {.events = want, .data.u32 = c->handle};
  int op = want == 0 ? EPOLL_CTL_DEL : t->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(s->epoll_fd, op, t->fd, &ev) != 0) {
    fail(s, c, errno);
    return;
  }
  t->events = want;
}

static void shut_write(transport_state *s, connection *c) {
  native_transport *t = &c->transport;
  if (!(t->flags & T_OPEN) || (t->flags & T_SHUT)) return;
  t->flags |= T_SHUT;
  shutdown(t->fd, SHUT_WR);
  /* Both directions are done: nothing more can happen on this socket. */
  if (t->flags & T_EOF) close_transport(s, c);
}

/* Writes pending output; returns false when the connection failed. */
static bool write_pending(transport_state *s, connection *c) {
  native_transport *t = &c->transport;
  pending_output *p = t->pending;
  while (p->off < p->len) {
    ssize_t n = send(t->fd, p->data + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      fail(s, c, errno);
      return false;
    }
    p->off += (size_t)n;
  }
  /* All written: free the buffer, an idle connection keeps nothing. */
  free(p);
  t->pending = NULL;
  return true;
}

/* Reads once; returns whether JS was given bytes. With more set, other sockets of this batch
 * are still to be read: JS may hold this connection's reply back until the batch's last read
 * (or EV_FLUSH), so the replies of a batch leave together, back to back. A peer sleeping in
 * its poll is then woken once per batch rather than once per reply. */
static bool read_once(transport_state *s, connection *c, bool more) {
  native_transport *t = &c->transport;
  ssize_t n;
  do n = recv(t->fd, s->read_buffer, s->read_buffer_size, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) fail(s, c, errno);
    return false;
  }
  if (n == 0) {
    t->flags |= T_EOF;
    update_poll(s, c);
    if (t->flags & T_SHUT) close_transport(s, c);
    else emit(s, c, EV_END, 0);
    return false;
  }
  /* The bytes are at the start of the read buffer. */
  emit(s, c, more ? EV_READ_MORE : EV_READ, (double)n);
  return true;
}

/* One socket's events; returns whether JS was given bytes (see read_once for more). JS may run
 * (and close this socket) in each emit. */
static bool on_socket_events(transport_state *s, connection *c, uint32_t events, bool more) {
  native_transport *t = &c->transport;
  /* Errors and hang-ups are found by the read or write they make fail. */
  if (events & (EPOLLERR | EPOLLHUP)) events |= t->events;
  if ((events & EPOLLOUT) && t->pending) {
    if (!write_pending(s, c)) return false;
    if (t->pending == NULL) {
      update_poll(s, c);
      if (t->flags & T_END_REQUESTED) shut_write(s, c);
      emit(s, c, EV_DRAIN, 0);
      if (!(t->flags & T_OPEN)) return false;
    }
  }
  return (events & EPOLLIN) && !(t->flags & (T_PAUSED | T_EOF)) && read_once(s, c, more);
}

static void on_epoll_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  transport_state *s = handle->data;
  if (status < 0) return; /* (not expected of an epoll fd; the next turn tries again) */
  struct epoll_event ready[EVENTS_PER_TURN];
  int n;
  do n = epoll_wait(s->epoll_fd, ready, EVENTS_PER_TURN, 0);
  while (n < 0 && errno == EINTR);
  bool held = false; /* JS was told EV_READ_MORE last: it holds replies back */
  for (int i = 0; i < n && !s->tearing_down; i++) {
    /* The connection may have been closed or released by JS since the wait. */
    connection *c = addon_connection_of_handle(s->env, ready[i].data.u32);
    if (c && (c->transport.flags & T_OPEN) && on_socket_events(s, c, ready[i].events, i < n - 1))
      held = i < n - 1;
  }
  /* The batch's last socket gave no bytes: the replies held back go now. */
  if (held) call_dispatch(s, 0, EV_FLUSH, 0);
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
  if (s->epoll_fd < 0) {
    finish_teardown(s);
    return;
  }
  /* The sockets themselves are closed when their connections are freed, with the addon's
   * instance data; closing the epoll fd drops their entries. */
  s->handles_closing = 2;
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  uv_close((uv_handle_t *)&s->report, on_handle_closed);
  close(s->epoll_fd);
  s->epoll_fd = -1;
}

/* ---- functions for JS ---- */

/* transportInit(dispatch, readBuffer): dispatch(id, event, arg) receives every event; every
 * read goes into readBuffer (EV_READ's arg is the byte count), which is kept alive from here
 * on. Called once, before the first transportOpen(). */
static napi_value transport_init(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  transport_state *s = state_of(env, info, &argc, argv);
  napi_valuetype type = napi_undefined;
  void *data = NULL;
  size_t size = 0;
  if (argc >= 1) napi_typeof(env, argv[0], &type);
  if (!s || type != napi_function || argc < 2 ||
      napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok || size < 4096)
    return usage_error(env, "transportInit(dispatch, readBuffer) expects a function and a "
                            "Buffer of at least 4 KiB");
  if (s->epoll_fd >= 0 || s->tearing_down)
    return throw_error(env, "WS_ERR_NATIVE", "the native transport is set up already");

  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return throw_error(env, "WS_ERR_NATIVE", strerror(errno));
  int rc = uv_poll_init(s->loop, &s->poll, epoll_fd);
  if (rc != 0) {
    close(epoll_fd);
    return throw_error(env, "WS_ERR_NATIVE", uv_strerror(rc));
  }
  uv_idle_init(s->loop, &s->report);
  s->poll.data = s->report.data = s;
  s->epoll_fd = epoll_fd;
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
  if (c->transport.flags != 0 || c->released)
    return throw_error(env, "WS_ERR_NATIVE",
                       "the connection is released or has had a transport already");
  if (s->tearing_down) return throw_error(env, "WS_ERR_NATIVE", "the environment is shutting down");
  if (s->epoll_fd < 0) return throw_error(env, "WS_ERR_NATIVE", "transportInit() first");
  /* Room for this socket's close report, besides every open socket's and those not told yet. */
  if (s->open_count + s->closed_len + 1 > s->closed_cap) {
    size_t cap = s->closed_cap ? s->closed_cap * 2 : 64;
    uint32_t *grown = realloc(s->closed, cap * sizeof(*grown));
    if (!grown) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    s->closed = grown;
    s->closed_cap = cap;
  }

  int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (own < 0) return throw_error(env, "WS_ERR_NATIVE", strerror(errno));
  /* The open file is shared with Node's fd, which libuv made non-blocking; made sure of here,
   * as a blocking read would stall the thread. */
  int fl = fcntl(own, F_GETFL);
  if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(own, F_SETFL, fl | O_NONBLOCK) != 0)) {
    int err = errno;
    close(own);
    return throw_error(env, "WS_ERR_NATIVE", strerror(err));
  }
  /* Small frames must not wait for Nagle; Node may have set that already (setNoDelay). */
  bool no_delay = true;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &no_delay);
  if (no_delay) {
    int one = 1;
    setsockopt(own, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }

  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c->handle};
  if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, own, &ev) != 0) {
    int err = errno;
    close(own);
    return throw_error(env, "WS_ERR_NATIVE", strerror(err));
  }
  if (s->open_count == 0) {
    int rc = uv_poll_start(&s->poll, UV_READABLE, on_epoll_readable);
    if (rc != 0) {
      epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, own, NULL);
      close(own);
      return throw_error(env, "WS_ERR_NATIVE", uv_strerror(rc));
    }
  }
  s->open_count++;
  c->transport.fd = own;
  c->transport.events = EPOLLIN;
  c->transport.flags = T_OPEN;
  return make_number(env, c->handle & HANDLE_INDEX_MASK);
}

/* Appends bytes to the pending output. */
static bool pending_append(native_transport *t, const uint8_t *data, size_t len) {
  if (len == 0) return true;
  pending_output *p = t->pending;
  if (p == NULL || p->len + len > p->cap) {
    size_t kept = p ? p->len - p->off : 0;
    size_t cap = p && p->cap ? p->cap : 4096;
    while (cap < kept + len) cap *= 2;
    if (p && p->off > 0 && kept + len <= p->cap) {
      /* Room once what was written is dropped. */
      memmove(p->data, p->data + p->off, kept);
    } else {
      pending_output *grown = malloc(sizeof(*grown) + cap);
      if (!grown) return false;
      if (p) memcpy(grown->data, p->data + p->off, kept);
      free(p);
      grown->cap = cap;
      t->pending = p = grown;
    }
    p->off = 0;
    p->len = kept;
  }
  memcpy(p->data + p->len, data, len);
  p->len += len;
  return true;
}

/* Sends iov[0..count) with as few calls as the kernel allows, keeping what it does not take
 * (in order) as pending output; behind output already pending, it is all kept. */
static void write_pieces(transport_state *s, connection *c, struct iovec *iov, size_t count) {
  native_transport *t = &c->transport;
  size_t i = 0;
  while (i < count && pending_size(t) == 0) {
    ssize_t n;
    if (count - i == 1) {
      /* The usual case (a reply, the engine's queue): send() spares the kernel the message
       * header and the iovec it would copy in. */
      n = send(t->fd, iov[i].iov_base, iov[i].iov_len, MSG_NOSIGNAL);
    } else {
      struct msghdr msg = {0};
      msg.msg_iov = iov + i;
      msg.msg_iovlen = count - i < MAX_IOV ? count - i : MAX_IOV;
      n = sendmsg(t->fd, &msg, MSG_NOSIGNAL);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail(s, c, errno);
      return;
    }
    size_t left = (size_t)n;
    while (i < count && left >= iov[i].iov_len) left -= iov[i++].iov_len;
    if (i < count && left > 0) {
      iov[i].iov_base = (uint8_t *)iov[i].iov_base + left;
      iov[i].iov_len -= left;
      break; /* the kernel's buffer is full */
    }
  }
  for (; i < count; i++) {
    if (!pending_append(t, iov[i].iov_base, iov[i].iov_len)) {
      fail(s, c, ENOMEM);
      return;
    }
  }
}

/* transportFlush(connection, buffers?) -> bytes still pending, or -1 when the socket no longer
 * takes output. Writes buffers (in order), then the connection's queued output, in one send
 * or sendmsg (see write_pieces), and empties that queue. */
static napi_value transport_flush(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 2, argv, "transportFlush(connection, buffers)", &s, &c, &t))
    return NULL;
  conn *e = c->released ? NULL : &c->engine;
  if (t == NULL || (t->flags & T_END_REQUESTED)) {
    if (e) conn_output_clear(e);
    return make_number(env, -1);
  }
  uint32_t buffer_count = 0;
  bool is_array = false;
  if (napi_is_array(env, argv[1], &is_array) == napi_ok && is_array)
    napi_get_array_length(env, argv[1], &buffer_count);

  struct iovec stack_iov[MAX_IOV];
  struct iovec *iov = stack_iov;
  size_t pieces = buffer_count + 1;
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
  if (e != NULL && e->out_len > 0) iov[count++] = (struct iovec){e->out, e->out_len};
  write_pieces(s, c, iov, count);
  if (iov != stack_iov) free(iov);
  /* The engine's queue was written or copied. */
  if (e != NULL) connection_output_taken(e);
  update_poll(s, c);
  if (!(t->flags & T_OPEN)) return make_number(env, -1);
  return make_number(env, (double)pending_size(t));
}

/* transportEnd(connection): sends FIN once the pending output is written. */
static napi_value transport_end(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  transport_state *s;
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 1, argv, "transportEnd(connection)", &s, &c, &t)) return NULL;
  if (t) {
    t->flags |= T_END_REQUESTED;
    if (pending_size(t) == 0) shut_write(s, c);
  }
  return make_undefined(env);
}

/* transportDestroy(connection, reset): closes the socket now (with reset, by RST); EV_CLOSE
 * follows from the loop. */
static napi_value transport_destroy(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 2, argv, "transportDestroy(connection, reset)", &s, &c, &t))
    return NULL;
  bool reset = false;
  napi_get_value_bool(env, argv[1], &reset);
  if (t) {
    if (reset) {
      /* net.Socket's resetAndDestroy(): a zero linger time makes close() send RST, not FIN. */
      struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
      setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    }
    close_transport(s, c);
  }
  return make_undefined(env);
}

/* transportPause(connection, paused): stops or restarts reading. */
static napi_value transport_pause(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  transport_state *s;
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 2, argv, "transportPause(connection, paused)", &s, &c, &t))
    return NULL;
  if (t) {
    bool paused = false;
    napi_get_value_bool(env, argv[1], &paused);
    t->flags = (uint8_t)(paused ? t->flags | T_PAUSED : t->flags & ~T_PAUSED);
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

/* transportAddress(connection) -> [remoteAddress, remotePort, remoteFamily, localAddress,
 * localPort], or undefined once the socket is closed. */
static napi_value transport_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  transport_state *s;
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 1, argv, "transportAddress(connection)", &s, &c, &t))
    return NULL;
  if (!t) return make_undefined(env);
  struct sockaddr_storage peer, local;
  socklen_t peer_len = sizeof(peer), local_len = sizeof(local);
  memset(&peer, 0, sizeof(peer));
  memset(&local, 0, sizeof(local));
  if (getpeername(t->fd, (struct sockaddr *)&peer, &peer_len) != 0) return make_undefined(env);
  getsockname(t->fd, (struct sockaddr *)&local, &local_len);
  int remote_port = 0, local_port = 0;
  const char *remote_family = NULL, *local_family = NULL;
  napi_value result;
  napi_create_array_with_length(env, 5, &result);
  napi_set_element(env, result, 0, address_value(env, &peer, &remote_port, &remote_family));
  napi_set_element(env, result, 1,
                   remote_family ? make_number(env, remote_port) : make_undefined(env));
  napi_value family = make_undefined(env);
  if (remote_family) napi_create_string_utf8(env, remote_family, NAPI_AUTO_LENGTH, &family);
  napi_set_element(env, result, 2, family);
  napi_set_element(env, result, 3, address_value(env, &local, &local_port, &local_family));
  napi_set_element(env, result, 4,
                   local_family ? make_number(env, local_port) : make_undefined(env));
  return result;
}

bool native_transport_register(napi_env env, napi_value exports) {
  transport_state *s = calloc(1, sizeof(*s));
  if (!s) {
    napi_throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    return false;
  }
  s->env = env;
  s->epoll_fd = -1;
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
  static const struct { const char *name; int value; } event_names[] = {
      {"READ", EV_READ}, {"END", EV_END}, {"DRAIN", EV_DRAIN}, {"CLOSE", EV_CLOSE},
      {"READ_MORE", EV_READ_MORE}, {"FLUSH", EV_FLUSH}};
  napi_value events;
  if (napi_create_object(env, &events) != napi_ok) return false;
  for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++) {
    if (napi_set_named_property(env, events, event_names[i].name,
                                make_number(env, event_names[i].value)) != napi_ok)
      return false;
  }
  napi_property_descriptor props[] = {
      {"transportEvents", NULL, NULL, NULL, NULL, events, napi_enumerable, NULL},
      {"transportInit", NULL, transport_init, NULL, NULL, NULL, napi_default, s},
      {"transportOpen", NULL, transport_open, NULL, NULL, NULL, napi_default, s},
      {"transportFlush", NULL, transport_flush, NULL, NULL, NULL, napi_default, s},
      {"transportEnd", NULL, transport_end, NULL, NULL, NULL, napi_default, s},
      {"transportDestroy", NULL, transport_destroy, NULL, NULL, NULL, napi_default, s},
      {"transportPause", NULL, transport_pause, NULL, NULL, NULL, napi_default, s},
      {"transportAddress", NULL, transport_address, NULL, NULL, NULL, napi_default, s},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) ==
         napi_ok;
}

#else /* not Linux: no native transport; JS sees no transport functions */

void native_transport_detach(connection *c) { (void)c; }

bool native_transport_register(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return true;
}

#endif
