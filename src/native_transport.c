/* The native transport: after the upgrade the addon owns the TCP socket (a close-on-exec dup of
 * the fd Node's socket had; Node's socket is then destroyed). The fd is polled on Node's own
 * libuv loop. Reads go into one buffer shared by every connection of the thread and each read
 * reaches JavaScript in one call; a connection's output (the engine's queue plus any payloads
 * written without a copy) leaves in one send/sendmsg per flush, and whatever the kernel does
 * not take is kept here until the socket is writable again.
 *
 * A transport belongs to a connection (the handle createConnection() made), so it costs no JS
 * object, reference or finalizer of its own: JS names it by a small integer id (an index into
 * its table of open transports) and passes the connection's handle to every function here.
 *
 * Lifetimes: the transport's memory is freed by the libuv close callback, after it told JS
 * (whose table entry keeps the connection alive until then, and calls release() then). If the
 * connection is freed first (only at an environment's teardown), it detaches and closes its
 * transport. An async cleanup hook closes every socket when the environment (the
 * main thread or a worker) goes away; JS is not called then. */
/* uv.h needs POSIX types (pthread_rwlock_t) that -std=c11 hides; F_DUPFD_CLOEXEC too. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include "addon.h"
#include "register.h"

/* sendmsg takes at most this many pieces per call (IOV_MAX is 1024 on Linux). */
#define MAX_IOV 64

/* What JS is told (the dispatch function's second argument). */
enum { EV_READ = 1, EV_END = 2, EV_DRAIN = 3, EV_CLOSE = 4 };

typedef struct native_transport native_transport;

typedef struct transport_state {
  napi_env env;
  /* Every read of the thread goes here: a Buffer JS made (transportInit()), so that a read
   * costs no Buffer of its own; JS copies the bytes out before anything else can read. */
  uint8_t *read_buffer;
  size_t read_buffer_size;
  napi_ref read_buffer_ref;
  napi_ref dispatch;        /* dispatch(id, event, argument), set by transportInit() */
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup;
  uv_loop_t *loop;          /* the environment's (Node's) event loop */
  size_t open_count;        /* transports whose handle has not finished closing */
  bool tearing_down;        /* the environment is going away: JS is not called any more */
} transport_state;

/* Every byte here is carried by every idle connection: the environment's state is the poll
 * handle's data, and teardown finds the open transports with uv_walk rather than a list. */
struct native_transport {
  uv_poll_t poll;      /* first: a transport is its handle (its data is the transport_state) */
  connection *owner;   /* NULL once the connection was freed first (environment teardown) */
  uint32_t id;         /* JS's name for it: dispatch()'s first argument */
  int fd;
  int events;          /* the poll mask in effect */
  int error;           /* errno that ended the connection, or 0 */
  bool paused;         /* JS asked not to read */
  bool eof;            /* the peer sent FIN */
  bool end_requested;  /* send FIN once the pending output is written */
  bool shut;           /* FIN sent */
  bool closing;        /* uv_close was called */
  uint8_t *pending;    /* output the kernel did not take yet: pending[pending_off, pending_len) */
  size_t pending_off, pending_len, pending_cap;
};

static transport_state *state_of_transport(const native_transport *t) { return t->poll.data; }

/* ---- helpers ---- */

/* A call that does not match its signature: a TypeError naming the signature. */
static napi_value usage_error(napi_env env, const char *usage) {
  return throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
}

/* Reads the arguments of a function taking (connection, ...): argc of them into argv, and
 * the connection's transport, NULL once it has closed. False with an exception pending. */
static bool transport_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv,
                           const char *usage, connection **c, native_transport **t) {
  size_t given = argc;
  if (napi_get_cb_info(env, info, &given, argv, NULL, NULL) != napi_ok || given < argc) {
    usage_error(env, usage);
    return false;
  }
  if ((*c = addon_connection(env, argv[0])) == NULL) return false;
  *t = (*c)->transport;
  return true;
}

static size_t pending_size(const native_transport *t) { return t->pending_len - t->pending_off; }

/* Calls dispatch(id, event, arg) as a libuv callback should: through
 * napi_make_callback, so the nextTick and microtask queues run after it, and with an exception
 * reported like any uncaught one. The caller holds a handle scope. */
static void emit(native_transport *t, int event, napi_value arg) {
  transport_state *s = state_of_transport(t);
  napi_env env = s->env;
  if (s->tearing_down || s->dispatch == NULL) return;
  napi_value fn, global, result;
  if (napi_get_reference_value(env, s->dispatch, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &global);
  napi_value argv[3] = {make_number(env, t->id), make_number(env, event),
                        arg ? arg : make_undefined(env)};
  napi_status status = napi_make_callback(env, s->async_context, global, fn, 3, argv, &result);
  if (status == napi_pending_exception) {
    napi_value exception;
    if (napi_get_and_clear_last_exception(env, &exception) == napi_ok)
      napi_fatal_exception(env, exception);
  }
}

static void emit_in_scope(native_transport *t, int event, double arg) {
  napi_env env = state_of_transport(t)->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  emit(t, event, make_number(env, arg));
  napi_close_handle_scope(env, scope);
}

/* ---- closing ---- */

static void finish_teardown(transport_state *s) {
  napi_remove_async_cleanup_hook(s->cleanup);
  free(s);
}

static void on_closed(uv_handle_t *handle) {
  native_transport *t = (native_transport *)handle;
  transport_state *s = state_of_transport(t);
  close(t->fd);
  t->fd = -1;
  s->open_count--;
  free(t->pending);

  emit_in_scope(t, EV_CLOSE, t->error); /* not while the environment is torn down */
  if (t->owner) t->owner->transport = NULL;
  bool last = s->tearing_down && s->open_count == 0;
  free(t);
  if (last) finish_teardown(s);
}

static void close_transport(native_transport *t) {
  if (t->closing) return;
  t->closing = true;
  uv_close((uv_handle_t *)&t->poll, on_closed);
}

static void fail(native_transport *t, int err) {
  if (t->error == 0) t->error = err;
  close_transport(t);
}

/* ---- polling ---- */

static void on_poll(uv_poll_t *handle, int status, int events);

/* Reads while JS wants data and the peer has not ended; waits for writability while output
 * is pending. The mask is changed only when it changes. */
static void update_poll(native_transport *t) {
  if (t->closing) return;
  int want = 0;
  if (!t->paused && !t->eof) want |= UV_READABLE;
  if (pending_size(t) > 0) want |= UV_WRITABLE;
  if (want == t->events) return;
  t->events = want;
  int rc = want == 0 ? uv_poll_stop(&t->poll) : uv_poll_start(&t->poll, want, on_poll);
  if (rc != 0) fail(t, -rc);
}

static void shut_write(native_transport *t) {
  if (t->shut || t->closing) return;
  t->shut = true;
  shutdown(t->fd, SHUT_WR);
  /* Both directions are done: nothing more can happen on this socket. */
  if (t->eof) close_transport(t);
}

/* Writes pending output; returns false when the connection failed. */
static bool write_pending(native_transport *t) {
  while (pending_size(t) > 0) {
    ssize_t n = send(t->fd, t->pending + t->pending_off, pending_size(t), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      fail(t, errno);
      return false;
    }
    t->pending_off += (size_t)n;
  }
  /* All written: free the buffer, an idle connection keeps nothing. */
  free(t->pending);
  t->pending = NULL;
  t->pending_off = t->pending_len = t->pending_cap = 0;
  return true;
}

static void read_once(native_transport *t) {
  transport_state *s = state_of_transport(t);
  ssize_t n;
  do n = recv(t->fd, s->read_buffer, s->read_buffer_size, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) fail(t, errno);
    return;
  }
  if (n == 0) {
    t->eof = true;
    update_poll(t);
    if (t->shut) close_transport(t);
    else emit_in_scope(t, EV_END, 0);
    return;
  }
  emit_in_scope(t, EV_READ, (double)n); /* the bytes are at the start of the read buffer */
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  native_transport *t = (native_transport *)handle;
  if (t->closing) return;
  if (status < 0) {
    fail(t, -status);
    return;
  }
  if (events & UV_WRITABLE) {
    bool had = pending_size(t) > 0;
    if (!write_pending(t)) return;
    if (had && pending_size(t) == 0) {
      update_poll(t);
      if (t->end_requested) shut_write(t);
      emit_in_scope(t, EV_DRAIN, 0);
      if (t->closing) return;
    }
  }
  if ((events & UV_READABLE) && !t->paused && !t->eof) read_once(t);
}

/* ---- teardown of an environment ---- */

/* uv_walk callback: closes the handle if it is one of this environment's transports. */
static void close_if_ours(uv_handle_t *handle, void *arg) {
  if (handle->type == UV_POLL && handle->data == arg) close_transport((native_transport *)handle);
}

static void teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  transport_state *s = arg;
  s->tearing_down = true;
  if (s->dispatch) napi_delete_reference(s->env, s->dispatch);
  s->dispatch = NULL;
  /* Nothing reads any more: every transport is closing from here on. */
  if (s->read_buffer_ref) napi_delete_reference(s->env, s->read_buffer_ref);
  s->read_buffer_ref = NULL;
  s->read_buffer = NULL;
  napi_async_destroy(s->env, s->async_context);
  if (s->open_count == 0) {
    finish_teardown(s);
    return;
  }
  uv_walk(s->loop, close_if_ours, s);
}

void native_transport_detach(connection *c) {
  native_transport *t = c->transport;
  if (!t) return;
  t->owner = NULL;
  c->transport = NULL;
  close_transport(t);
}

static transport_state *state_of(napi_env env, napi_callback_info info, size_t *argc,
                                 napi_value *argv) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, NULL, &data) != napi_ok) return NULL;
  return data;
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
  if (s->dispatch || s->tearing_down)
    return throw_error(env, "WS_ERR_NATIVE", "the native transport is set up already");
  if (napi_create_reference(env, argv[0], 1, &s->dispatch) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &s->read_buffer_ref) != napi_ok)
    return throw_error(env, "WS_ERR_NATIVE", "cannot set up the native transport");
  s->read_buffer = data;
  s->read_buffer_size = size;
  return make_undefined(env);
}

/* transportOpen(fd, connection, id[, setNoDelay]): duplicates fd (close-on-exec), so the
 * caller can then destroy its own socket, turns Nagle off unless told it is off already, and
 * starts reading. From then on the connection's output goes to the socket with
 * transportFlush() and its events reach dispatch(id, ...). */
static napi_value transport_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  transport_state *s = state_of(env, info, &argc, argv);
  int32_t fd = -1;
  uint32_t id = 0;
  if (!s || argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_uint32(env, argv[2], &id) != napi_ok)
    return usage_error(env, "transportOpen(fd, connection, id[, setNoDelay]) expects a file "
                            "descriptor, a connection handle and an id");
  connection *c = addon_connection(env, argv[1]);
  if (!c) return NULL;
  if (c->transport != NULL || c->released)
    return throw_error(env, "WS_ERR_NATIVE",
                       "the connection is released or has a transport already");
  if (s->tearing_down) return throw_error(env, "WS_ERR_NATIVE", "the environment is shutting down");
  if (s->read_buffer == NULL) return throw_error(env, "WS_ERR_NATIVE", "transportInit() first");

  int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (own < 0) return throw_error(env, "WS_ERR_NATIVE", strerror(errno));
  /* (Non-blocking already: the open file is shared with Node's fd, and uv_poll_init sets it.)
   * Small frames must not wait for Nagle; Node may have set that already (setNoDelay). */
  bool no_delay = true;
  if (argc >= 4) napi_get_value_bool(env, argv[3], &no_delay);
  if (no_delay) {
    int one = 1;
    setsockopt(own, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }

  native_transport *t = calloc(1, sizeof(*t));
  if (!t) {
    close(own);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  t->fd = own;
  int rc = uv_poll_init_socket(s->loop, &t->poll, own);
  if (rc != 0) {
    close(own);
    free(t);
    return throw_error(env, "WS_ERR_NATIVE", uv_strerror(rc));
  }
  t->poll.data = s;
  s->open_count++;
  t->owner = c;
  t->id = id;
  c->transport = t;
  update_poll(t);
  return make_undefined(env);
}

/* Appends bytes to the pending output. */
static bool pending_append(native_transport *t, const uint8_t *data, size_t len) {
  if (len == 0) return true;
  if (t->pending_len + len > t->pending_cap) {
    /* Compact first: what was written already is not kept. */
    if (t->pending_off > 0) {
      memmove(t->pending, t->pending + t->pending_off, pending_size(t));
      t->pending_len -= t->pending_off;
      t->pending_off = 0;
    }
    size_t cap = t->pending_cap ? t->pending_cap : 4096;
    while (cap < t->pending_len + len) cap *= 2;
    uint8_t *grown = realloc(t->pending, cap);
    if (!grown) return false;
    t->pending = grown;
    t->pending_cap = cap;
  }
  memcpy(t->pending + t->pending_len, data, len);
  t->pending_len += len;
  return true;
}

/* Sends iov[0..count) with as few calls as the kernel allows, keeping what it does not take
 * (in order) as pending output; behind output already pending, it is all kept. */
static void write_pieces(native_transport *t, struct iovec *iov, size_t count) {
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
      fail(t, errno);
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
      fail(t, ENOMEM);
      return;
    }
  }
}

/* transportFlush(connection, buffers?) -> bytes still pending, or -1 when the socket no longer
 * takes output. Writes buffers (in order), then the connection's queued output, in one
 * sendmsg, and empties that queue. */
static napi_value transport_flush(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 2, argv, "transportFlush(connection, buffers)", &c, &t))
    return NULL;
  conn *e = c->released ? NULL : &c->engine;
  if (t == NULL) {
    if (e) conn_output_clear(e);
    return make_number(env, -1);
  }
  uint32_t buffer_count = 0;
  bool is_array = false;
  if (napi_is_array(env, argv[1], &is_array) == napi_ok && is_array)
    napi_get_array_length(env, argv[1], &buffer_count);

  bool writable = !t->closing && !t->end_requested;
  struct iovec stack_iov[MAX_IOV];
  struct iovec *iov = stack_iov;
  size_t pieces = buffer_count + 1;
  if (writable && pieces > MAX_IOV) {
    iov = malloc(pieces * sizeof(*iov));
    if (!iov) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  size_t count = 0;
  for (uint32_t i = 0; writable && i < buffer_count; i++) {
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
  if (writable && e != NULL && e->out_len > 0)
    iov[count++] = (struct iovec){e->out, e->out_len};
  write_pieces(t, iov, count);
  if (iov != stack_iov) free(iov);
  /* The engine's queue was written or copied. */
  if (e != NULL) connection_output_taken(e);
  update_poll(t);
  if (!writable || t->closing) return make_number(env, -1);
  return make_number(env, (double)pending_size(t));
}

/* transportEnd(connection): sends FIN once the pending output is written. */
static napi_value transport_end(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 1, argv, "transportEnd(connection)", &c, &t)) return NULL;
  if (t) {
    t->end_requested = true;
    if (pending_size(t) == 0) shut_write(t);
  }
  return make_undefined(env);
}

/* transportDestroy(connection): closes the socket now; 'close' follows from the loop. */
static napi_value transport_destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 1, argv, "transportDestroy(connection)", &c, &t)) return NULL;
  if (t) close_transport(t);
  return make_undefined(env);
}

/* transportPause(connection, paused): stops or restarts reading. */
static napi_value transport_pause(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 2, argv, "transportPause(connection, paused)", &c, &t))
    return NULL;
  if (t) {
    napi_get_value_bool(env, argv[1], &t->paused);
    update_poll(t);
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
  connection *c;
  native_transport *t;
  if (!transport_args(env, info, 1, argv, "transportAddress(connection)", &c, &t)) return NULL;
  if (!t || t->closing) return make_undefined(env);
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
      {"READ", EV_READ}, {"END", EV_END}, {"DRAIN", EV_DRAIN}, {"CLOSE", EV_CLOSE}};
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
