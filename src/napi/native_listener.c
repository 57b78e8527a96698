/* The native listener (port mode: a WebSocketServer with no http.Server of the application's):
 * the addon owns the listening socket, accepts connections, reads and parses each request head
 * in C (codec/http_request.c), answers what is not an upgrade (426, or 400/408/431/505 for a
 * request it cannot take) without JavaScript, and hands each upgrade request to JS in the
 * batch table (EV_HANDSHAKE). JS checks it as handleUpgrade() does and either accepts it --
 * the socket becomes the connection's, the 101 written from C -- or answers it. No net.Socket
 * is ever made. */
#if !defined(_WIN32)
#define _GNU_SOURCE
#endif
#include "napi/native_transport.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http_request.h"
#include "napi/upgrade.h"
#include "transport/listener.h"

/* Connections accepted per listener per turn: more wait for the next one (the backlog holds
 * them), so that a burst of connections cannot starve established ones. */
#define ACCEPT_PER_TURN 64

/* How long an answered request's socket goes on reading (and dropping) what the peer still
 * sends before it is closed: closing with unread input makes the kernel send a reset, and the
 * peer could lose the answer to it (as lib/raw-upgrade.js does). */
#define LINGER_MS 1000

/* How often unfinished handshakes are checked for their deadlines. */
#define SWEEP_MS 250

/* A head that does not come in one read is gathered in a buffer of its own, this big at
 * first (twice Node's default maxHeaderSize of 16 KiB fits after one doubling). */
#define HANDSHAKE_BUFFER (16 * 1024)

/* The most header fields a handshake may have (HTTP_REQUEST_MAX_HEADERS). */
#define MAX_HEADERS 100

/* Tokens: TOKEN_LISTENER_PART, then this bit for a listener (its index below it), or a
 * handshake's generation and index. */
#define TOKEN_IS_LISTENER (1u << 30)
#define HANDSHAKE_INDEX_BITS 20
#define HANDSHAKE_INDEX_MASK ((1u << HANDSHAKE_INDEX_BITS) - 1)
#define HANDSHAKE_GENERATION_MASK ((1u << (30 - HANDSHAKE_INDEX_BITS)) - 1)
#define NO_HANDSHAKE UINT32_MAX

enum {
  HS_FREE = 0,
  HS_READING, /* the request head is arriving */
  HS_WAITING, /* JS decides (the socket is not polled meanwhile: what follows waits in the
                 kernel for the connection to read it) */
  HS_ANSWERED /* an answer was written: draining until the peer leaves or LINGER_MS pass */
};

typedef struct handshake {
  transport_socket socket;
  uint8_t *buf; /* the head so far, when it did not come in one read */
  size_t len, cap;
  uint64_t deadline; /* uv_now() ms: the head's (headersTimeout) or the linger's end; 0: none */
  uint32_t listener;
  uint32_t generation;
  uint32_t next_free;
  uint8_t state;
} handshake;

typedef struct native_listener {
  transport_socket socket; /* the listening fd, polled for reading like any socket */
  size_t max_header_size;
  uint64_t headers_timeout_ms; /* 0: none */
  bool in_use;
} native_listener;

typedef struct listener_state {
  native_listener *listeners;
  uint32_t listener_count, listener_cap;
  handshake *handshakes;
  uint32_t handshake_count, handshake_cap; /* slots made / allocated */
  uint32_t free_head;
  uint32_t live; /* handshakes not free (the state's handshake_sweep runs meanwhile) */
} listener_state;

/* ---- tokens ---- */

static uint32_t listener_token(uint32_t index) {
  return TOKEN_LISTENER_PART | TOKEN_IS_LISTENER | index;
}

static uint32_t handshake_token(const listener_state *ls, const handshake *h) {
  uint32_t index = (uint32_t)(h - ls->handshakes);
  return TOKEN_LISTENER_PART | (h->generation << HANDSHAKE_INDEX_BITS) | index;
}

static handshake *handshake_of_token(const listener_state *ls, uint32_t token) {
  if (!(token & TOKEN_LISTENER_PART) || (token & TOKEN_IS_LISTENER)) return NULL;
  uint32_t index = token & HANDSHAKE_INDEX_MASK;
  uint32_t generation = (token >> HANDSHAKE_INDEX_BITS) & HANDSHAKE_GENERATION_MASK;
  if (index >= ls->handshake_count) return NULL;
  handshake *h = &ls->handshakes[index];
  return h->state != HS_FREE && h->generation == generation ? h : NULL;
}

/* ---- handshakes ---- */

static void on_sweep(uv_timer_t *timer);

static handshake *handshake_new(transport_state *s, listener_state *ls) {
  uint32_t index;
  if (ls->free_head != NO_HANDSHAKE) {
    index = ls->free_head;
    ls->free_head = ls->handshakes[index].next_free;
  } else {
    if (ls->handshake_count == HANDSHAKE_INDEX_MASK + 1) return NULL;
    if (ls->handshake_count == ls->handshake_cap) {
      uint32_t cap = ls->handshake_cap ? ls->handshake_cap * 2 : 256;
      handshake *grown = realloc(ls->handshakes, cap * sizeof(*grown));
      if (!grown) return NULL;
      ls->handshakes = grown;
      ls->handshake_cap = cap;
    }
    index = ls->handshake_count++;
    ls->handshakes[index].generation = 0;
  }
  handshake *h = &ls->handshakes[index];
  uint32_t generation = h->generation;
  memset(h, 0, sizeof(*h));
  h->generation = generation;
  h->next_free = NO_HANDSHAKE;
  h->state = HS_READING;
  if (ls->live++ == 0) uv_timer_start(&s->handshake_sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  return h;
}

static void handshake_free(transport_state *s, listener_state *ls, handshake *h) {
  free(h->buf);
  h->buf = NULL;
  h->state = HS_FREE;
  h->generation = (h->generation + 1) & HANDSHAKE_GENERATION_MASK;
  h->next_free = ls->free_head;
  ls->free_head = (uint32_t)(h - ls->handshakes);
  if (--ls->live == 0) uv_timer_stop(&s->handshake_sweep);
}

/* Closes a handshake's socket (unless it became a connection's) and frees it. */
static void handshake_close(transport_state *s, listener_state *ls, handshake *h) {
  if (h->socket.flags & SOCKET_OPEN) {
    poller_close_socket(s->poller, &h->socket, false);
    transport_socket_closed(s, true);
  }
  handshake_free(s, ls, h);
}

static void handshake_poll(transport_state *s, listener_state *ls, handshake *h) {
  int err = poller_update(s->poller, &h->socket, handshake_token(ls, h));
  if (err != 0) handshake_close(s, ls, h);
}

/* Writes an answer (then FIN, once written) and drains the socket until the peer leaves. */
static void handshake_answer(transport_state *s, listener_state *ls, handshake *h,
                             const uint8_t *bytes, size_t len) {
  struct iovec piece = {(void *)bytes, len};
  if (socket_write(&h->socket, &piece, 1) == SOCKET_FAILED) {
    handshake_close(s, ls, h);
    return;
  }
  h->state = HS_ANSWERED;
  h->deadline = uv_now(s->loop) + LINGER_MS;
  h->socket.flags &= (uint16_t)~SOCKET_PAUSED;
  if (socket_pending_size(&h->socket) == 0) socket_shutdown_write(&h->socket);
  else
    h->socket.flags |= SOCKET_END_REQUESTED;
  free(h->buf);
  h->buf = NULL;
  h->len = h->cap = 0;
  handshake_poll(s, ls, h);
}

static const char *status_reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

/* A plain-text answer, as an http.Server answering with res.end(message) would (and ws's port
 * mode does for requests that are not upgrades). HEAD gets no body. */
static void handshake_refuse(transport_state *s, listener_state *ls, handshake *h, int status,
                             const char *message, bool head_request) {
  char response[512];
  int n = snprintf(response, sizeof(response),
                   "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   status, status_reason(status), strlen(message), head_request ? "" : message);
  if (n < 0 || (size_t)n >= sizeof(response)) n = 0;
  handshake_answer(s, ls, h, (const uint8_t *)response, (size_t)n);
}

static uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

static bool span_is(const uint8_t *buf, http_span span, const char *word) {
  size_t n = strlen(word);
  if (span.len != n) return false;
  for (size_t i = 0; i < n; i++)
    if (lower(buf[span.off + i]) != (uint8_t)word[i]) return false;
  return true;
}

/* Whether a comma-separated field value holds token (case-insensitively). */
static bool has_token(const uint8_t *buf, http_span value, const char *token) {
  size_t i = value.off, end = value.off + value.len;
  while (i < end) {
    size_t start = i;
    while (i < end && buf[i] != ',') i++;
    size_t a = start, b = i;
    while (a < b && (buf[a] == ' ' || buf[a] == '\t')) a++;
    while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t')) b--;
    if (span_is(buf, (http_span){a, b - a}, token)) return true;
    i++;
  }
  return false;
}

/* What Node's HTTP parser calls an upgrade: an Upgrade field and "upgrade" in Connection. */
static void classify(const uint8_t *buf, const http_request *req, bool *upgrade,
                     bool *asks_websocket) {
  bool has_upgrade = false, connection_upgrade = false;
  *asks_websocket = false;
  for (size_t i = 0; i < req->header_count; i++) {
    const http_header *f = &req->headers[i];
    if (span_is(buf, f->name, "upgrade")) {
      has_upgrade = true;
      if (span_is(buf, f->value, "websocket")) *asks_websocket = true;
    } else if (span_is(buf, f->name, "connection") && has_token(buf, f->value, "upgrade")) {
      connection_upgrade = true;
    }
  }
  *upgrade = has_upgrade && connection_upgrade;
}

/* A complete head at buf[0, len): answered here, or handed to JS. */
static void handshake_parsed(transport_state *s, listener_state *ls, handshake *h,
                             const uint8_t *buf, size_t len, const http_request *req) {
  bool upgrade, asks_websocket;
  classify(buf, req, &upgrade, &asks_websocket);
  if (!upgrade) {
    /* A request that asks for websocket without Connection: upgrade is a malformed handshake
     * (400); anything else is a plain request to a WebSocket-only server (426). */
    bool head_request = span_is(buf, req->method, "head");
    if (asks_websocket) handshake_refuse(s, ls, h, 400, "Invalid Connection header", head_request);
    else
      handshake_refuse(s, ls, h, 426, "Upgrade Required", head_request);
    return;
  }
  napi_value request = upgrade_request_object(s->env, buf, req);
  napi_value head = NULL;
  if (request != NULL && len > req->head_length &&
      napi_create_buffer_copy(s->env, len - req->head_length, buf + req->head_length, NULL,
                              &head) != napi_ok)
    request = NULL;
  if (request == NULL) {
    bool pending = false;
    napi_is_exception_pending(s->env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(s->env, &ignored);
    }
    handshake_close(s, ls, h);
    return;
  }
  h->state = HS_WAITING;
  h->deadline = 0;
  free(h->buf);
  h->buf = NULL;
  h->len = h->cap = 0;
  h->socket.flags |= SOCKET_PAUSED;
  handshake_poll(s, ls, h);
  transport_batch_handshake(s, h->listener, handshake_token(ls, h), request, head);
}

/* Reads what has arrived of a request head and acts on it once it is complete. */
static void handshake_read(transport_state *s, listener_state *ls, handshake *h) {
  native_listener *l = &ls->listeners[h->listener];
  /* The usual head comes in one read: it is parsed where it landed, in the free part of the
   * read buffer (not taken from the batch: a head becomes JS values, or is answered, before
   * anything else can land there). Only one that comes in pieces gets a buffer of its own. */
  bool own = h->len > 0 || s->read_buffer_size - s->read_used < HANDSHAKE_BUFFER;
  if (own && h->cap - h->len < 4096) {
    size_t cap = h->cap ? h->cap * 2 : HANDSHAKE_BUFFER;
    uint8_t *grown = realloc(h->buf, cap);
    if (!grown) {
      handshake_close(s, ls, h);
      return;
    }
    h->buf = grown;
    h->cap = cap;
  }
  uint8_t *at = own ? h->buf + h->len : s->read_buffer + s->read_used;
  size_t room = own ? h->cap - h->len : s->read_buffer_size - s->read_used;
  size_t n = 0;
  switch (socket_read(&h->socket, at, room, &n)) {
    case SOCKET_DONE: break;
    case SOCKET_AGAIN: return;
    default: /* the peer left, or the socket broke, before the head was complete */
      handshake_close(s, ls, h);
      return;
  }
  const uint8_t *data = own ? h->buf : at;
  size_t len = own ? h->len + n : n;
  http_request req;
  http_request_result result = http_request_parse(data, len, l->max_header_size, MAX_HEADERS, &req);
  if (result == HTTP_REQUEST_OK) {
    handshake_parsed(s, ls, h, data, len, &req);
    return;
  }
  if (result != HTTP_REQUEST_INCOMPLETE) {
    handshake_refuse(s, ls, h, http_request_status(result), http_request_message(result), false);
    return;
  }
  if (!own) {
    /* The rest of the head comes later: what came is kept. */
    size_t cap = HANDSHAKE_BUFFER;
    while (cap < len + 4096) cap *= 2;
    if ((h->buf = malloc(cap)) == NULL) {
      handshake_close(s, ls, h);
      return;
    }
    memcpy(h->buf, at, len);
    h->cap = cap;
  }
  h->len = len;
}

/* An answered handshake: writes what is pending, then reads and drops until the peer leaves. */
static void handshake_drain(transport_state *s, listener_state *ls, handshake *h, unsigned events) {
  transport_socket *t = &h->socket;
  if ((events & SOCKET_WANT_WRITE) && t->pending) {
    socket_status status = socket_write_pending(t);
    if (status == SOCKET_FAILED) {
      handshake_close(s, ls, h);
      return;
    }
    if (status == SOCKET_DONE && (t->flags & SOCKET_END_REQUESTED)) socket_shutdown_write(t);
  }
  if (events & SOCKET_WANT_READ) {
    uint8_t scratch[4096];
    size_t n;
    for (;;) {
      socket_status status = socket_read(t, scratch, sizeof(scratch), &n);
      if (status == SOCKET_AGAIN) break;
      if (status != SOCKET_DONE) {
        handshake_close(s, ls, h);
        return;
      }
    }
  }
  handshake_poll(s, ls, h);
}

static void on_sweep(uv_timer_t *timer) {
  transport_state *s = timer->data;
  listener_state *ls = s->listening;
  uint64_t now = uv_now(s->loop);
  for (uint32_t i = 0; i < ls->handshake_count; i++) {
    handshake *h = &ls->handshakes[i];
    if (h->deadline == 0 || h->deadline > now) continue;
    if (h->state == HS_READING) {
      handshake_refuse(s, ls, h, 408, "Timed out waiting for the request headers", false);
    } else if (h->state == HS_ANSWERED) {
      handshake_close(s, ls, h);
    }
  }
}

/* ---- listening ---- */

static void accept_connections(transport_state *s, listener_state *ls, uint32_t index) {
  for (int i = 0; i < ACCEPT_PER_TURN; i++) {
    native_listener *l = &ls->listeners[index];
    if (!(l->socket.flags & SOCKET_OPEN)) return;
    int fd = listener_accept(l->socket.fd);
    if (fd < 0) return; /* (none waits; or EMFILE and the like: the next turn tries again) */
    handshake *h = handshake_new(s, ls);
    if (h == NULL) {
      close(fd);
      return;
    }
    socket_open(&h->socket, fd);
    h->listener = index;
    if (l->headers_timeout_ms > 0) h->deadline = uv_now(s->loop) + l->headers_timeout_ms;
    transport_socket_opened(s, true);
    /* The request is often there already: try before waiting for the poller. */
    handshake_read(s, ls, h);
    if (h->state == HS_READING) handshake_poll(s, ls, h);
  }
}

void listener_on_event(transport_state *s, uint32_t token, unsigned events) {
  listener_state *ls = s->listening;
  if (ls == NULL) return;
  if (token & TOKEN_IS_LISTENER) {
    uint32_t index = token & ~(TOKEN_LISTENER_PART | TOKEN_IS_LISTENER);
    if (index < ls->listener_count && ls->listeners[index].in_use) accept_connections(s, ls, index);
    return;
  }
  handshake *h = handshake_of_token(ls, token);
  if (h == NULL) return;
  if (h->state == HS_READING) handshake_read(s, ls, h);
  else if (h->state == HS_ANSWERED)
    handshake_drain(s, ls, h, events);
}

void listener_teardown(transport_state *s) {
  listener_state *ls = s->listening;
  if (ls == NULL) return;
  for (uint32_t i = 0; i < ls->listener_count; i++)
    if (ls->listeners[i].socket.flags & SOCKET_OPEN)
      poller_close_socket(s->poller, &ls->listeners[i].socket, false);
  for (uint32_t i = 0; i < ls->handshake_count; i++) {
    handshake *h = &ls->handshakes[i];
    if (h->state == HS_FREE) continue;
    if (h->socket.flags & SOCKET_OPEN) poller_close_socket(s->poller, &h->socket, false);
    free(h->buf);
  }
  free(ls->listeners);
  free(ls->handshakes);
  free(ls);
  s->listening = NULL;
}

/* ---- functions for JS ---- */

static listener_state *listener_state_of(transport_state *s) {
  if (s->listening != NULL) return s->listening;
  listener_state *ls = calloc(1, sizeof(*ls));
  if (!ls) return NULL;
  ls->free_head = NO_HANDSHAKE;
  s->listening = ls;
  return ls;
}

static transport_state *state_of(napi_env env, napi_callback_info info, size_t *argc,
                                 napi_value *argv) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, NULL, &data) != napi_ok) return NULL;
  return data;
}

/* listenerOpen(address, port, backlog, maxHeaderSize, headersTimeout) -> id, or -errno
 * (EADDRINUSE, EACCES, ...) for JS to report as net.Server does. address: a numeric IPv4 or
 * IPv6 address. */
static napi_value listener_open_js(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  transport_state *s = state_of(env, info, &argc, argv);
  char address[64] = "";
  size_t address_len = 0;
  int32_t port = -1, backlog = 511;
  double max_header = 0, timeout = 0;
  if (!s || argc < 5 ||
      napi_get_value_string_utf8(env, argv[0], address, sizeof(address), &address_len) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535 ||
      napi_get_value_int32(env, argv[2], &backlog) != napi_ok ||
      napi_get_value_double(env, argv[3], &max_header) != napi_ok || !(max_header >= 0) ||
      napi_get_value_double(env, argv[4], &timeout) != napi_ok || !(timeout >= 0))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "listenerOpen(address, port, backlog, maxHeaderSize, "
                            "headersTimeout) expects a numeric address and numbers");
  if (s->poller == NULL || s->tearing_down)
    return throw_error(env, "WS_ERR_NATIVE", "transportInit() first");
  listener_state *ls = listener_state_of(s);
  if (ls == NULL) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");

  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof(addr));
  socklen_t addr_len;
  if (uv_ip4_addr(address, port, (struct sockaddr_in *)&addr) == 0) {
    addr_len = sizeof(struct sockaddr_in);
  } else if (uv_ip6_addr(address, port, (struct sockaddr_in6 *)&addr) == 0) {
    addr_len = sizeof(struct sockaddr_in6);
  } else {
    return throw_type_error(env, "ERR_INVALID_ARG_VALUE", "listenerOpen(): not a numeric address");
  }
  uint32_t index = 0;
  while (index < ls->listener_count && ls->listeners[index].in_use) index++;
  if (index == ls->listener_count) {
    if (ls->listener_count == ls->listener_cap) {
      uint32_t cap = ls->listener_cap ? ls->listener_cap * 2 : 4;
      native_listener *grown = realloc(ls->listeners, cap * sizeof(*grown));
      if (!grown) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
      ls->listeners = grown;
      ls->listener_cap = cap;
    }
    ls->listener_count++;
  }
  int fd = -1;
  int err = listener_open((struct sockaddr *)&addr, addr_len, backlog > 0 ? backlog : 511, &fd);
  if (err != 0) {
    if (index == ls->listener_count - 1) ls->listener_count--;
    return make_number(env, -err);
  }
  native_listener *l = &ls->listeners[index];
  memset(l, 0, sizeof(*l));
  socket_open(&l->socket, fd);
  l->in_use = true;
  l->max_header_size = max_header >= 9007199254740992.0 ? SIZE_MAX : (size_t)max_header;
  l->headers_timeout_ms = timeout >= 2147483648.0 ? 0 : (uint64_t)timeout;
  err = poller_update(s->poller, &l->socket, listener_token(index));
  if (err != 0) {
    poller_close_socket(s->poller, &l->socket, false);
    l->in_use = false;
    return make_number(env, -err);
  }
  transport_socket_opened(s, true);
  return make_number(env, index);
}

static native_listener *listener_arg(napi_env env, transport_state *s, napi_value value) {
  uint32_t index = UINT32_MAX;
  napi_get_value_uint32(env, value, &index);
  listener_state *ls = s ? s->listening : NULL;
  if (ls == NULL || index >= ls->listener_count || !ls->listeners[index].in_use) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected an open listener's id");
    return NULL;
  }
  return &ls->listeners[index];
}

/* listenerClose(id): stops listening (handshakes under way go on). */
static napi_value listener_close_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  transport_state *s = state_of(env, info, &argc, argv);
  native_listener *l = listener_arg(env, s, argv[0]);
  if (!l) return NULL;
  poller_close_socket(s->poller, &l->socket, false);
  transport_socket_closed(s, !(l->socket.flags & SOCKET_UNREF));
  l->in_use = false;
  return make_undefined(env);
}

/* listenerRef(id, ref): whether the listener keeps the event loop alive (server.unref()). */
static napi_value listener_ref_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  transport_state *s = state_of(env, info, &argc, argv);
  native_listener *l = listener_arg(env, s, argv[0]);
  if (!l) return NULL;
  bool ref = get_bool(env, argv[1]);
  if (ref == ((l->socket.flags & SOCKET_UNREF) != 0)) {
    /* (One referenced socket more or fewer: the open count is left as it is.) */
    transport_socket_closed(s, !ref);
    l->socket.flags = (uint16_t)(ref ? l->socket.flags & ~SOCKET_UNREF
                                     : l->socket.flags | SOCKET_UNREF);
    transport_socket_opened(s, ref);
    if (s->poller->backend->ref) s->poller->backend->ref(s->poller, &l->socket);
  }
  return make_undefined(env);
}

static napi_value address_array(napi_env env, const struct sockaddr_storage *ss) {
  char name[INET6_ADDRSTRLEN] = "";
  int port = 0;
  const char *family = NULL;
  if (ss->ss_family == AF_INET) {
    uv_ip4_name((const struct sockaddr_in *)ss, name, sizeof(name));
    port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    family = "IPv4";
  } else if (ss->ss_family == AF_INET6) {
    uv_ip6_name((const struct sockaddr_in6 *)ss, name, sizeof(name));
    port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    family = "IPv6";
  } else {
    return make_undefined(env);
  }
  napi_value result, v;
  napi_create_array_with_length(env, 3, &result);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, result, 0, v);
  napi_create_string_utf8(env, family, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, result, 1, v);
  napi_set_element(env, result, 2, make_number(env, port));
  return result;
}

/* listenerAddress(id) -> [address, family, port]. */
static napi_value listener_address_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  transport_state *s = state_of(env, info, &argc, argv);
  native_listener *l = listener_arg(env, s, argv[0]);
  if (!l) return NULL;
  struct sockaddr_storage local;
  if (!listener_address(l->socket.fd, &local)) return make_undefined(env);
  return address_array(env, &local);
}

/* The handshake a token names; NULL (nothing thrown) once it is gone. */
static handshake *handshake_arg(napi_env env, transport_state *s, napi_value value) {
  uint32_t token = 0;
  napi_get_value_uint32(env, value, &token);
  return s && s->listening ? handshake_of_token(s->listening, token) : NULL;
}

/* handshakeAccept(token, connection, response) -> the connection's id (its slot index), or -1
 * when the handshake is gone: the socket becomes the connection's (polled under its handle),
 * and the response (the 101, latin1) is written first. */
static napi_value handshake_accept_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  transport_state *s = state_of(env, info, &argc, argv);
  if (!s || argc < 3) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "3 arguments expected");
  connection *c = addon_connection(env, argv[1]);
  if (!c) return NULL;
  if (c->socket.flags != 0 || c->released)
    return throw_error(env, "WS_ERR_NATIVE",
                       "the connection is released or has had a transport already");
  handshake *h = handshake_arg(env, s, argv[0]);
  if (h == NULL || h->state != HS_WAITING || !(h->socket.flags & SOCKET_OPEN))
    return make_number(env, -1);
  size_t len = 0;
  napi_get_value_string_latin1(env, argv[2], NULL, 0, &len);
  uint8_t *response = malloc(len + 1);
  if (!response) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  napi_get_value_string_latin1(env, argv[2], (char *)response, len + 1, &len);

  listener_state *ls = s->listening;
  transport_socket socket = h->socket;
  s->poller->backend->forget(s->poller, &h->socket);
  socket.events = 0;
  socket.poll_slot = NULL;
  socket.flags &= (uint16_t)~SOCKET_PAUSED;
  h->socket.flags = 0; /* (the socket is the connection's now) */
  transport_socket_closed(s, true);
  handshake_free(s, ls, h);
  int err = transport_adopt_socket(s, c, &socket);
  if (err != 0) {
    socket_close(&socket, false);
    free(response);
    return throw_error(env, "WS_ERR_NATIVE", strerror(err));
  }
  struct iovec piece = {response, len};
  if (socket_write(&c->socket, &piece, 1) == SOCKET_FAILED) transport_close(s, c, false);
  else
    transport_update_poll(s, c);
  free(response);
  return make_number(env, c->handle & HANDLE_INDEX_MASK);
}

/* handshakeWrite(token, bytes[, end]): writes bytes on a handshake's socket (an answer the
 * application makes, e.g. from 'wsClientError'); with end, that is its answer: FIN follows and
 * the socket drains until the peer leaves. */
static napi_value handshake_write_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  transport_state *s = state_of(env, info, &argc, argv);
  if (!s || argc < 2) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "2 arguments expected");
  handshake *h = handshake_arg(env, s, argv[0]);
  const uint8_t *data = NULL;
  size_t len = 0;
  if (!get_bytes(env, argv[1], &data, &len))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "bytes must be a Buffer");
  if (h == NULL || h->state == HS_ANSWERED) return make_bool(env, false);
  bool end = argc >= 3 && get_bool(env, argv[2]);
  if (end) {
    handshake_answer(s, s->listening, h, data, len);
  } else {
    struct iovec piece = {(void *)data, len};
    if (socket_write(&h->socket, &piece, 1) == SOCKET_FAILED) handshake_close(s, s->listening, h);
  }
  return make_bool(env, true);
}

/* handshakeDestroy(token): closes a handshake's socket now. */
static napi_value handshake_destroy_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  transport_state *s = state_of(env, info, &argc, argv);
  handshake *h = handshake_arg(env, s, argv[0]);
  if (h != NULL) handshake_close(s, s->listening, h);
  return make_undefined(env);
}

/* handshakeAddress(token) -> [remoteAddress, remoteFamily, remotePort, localAddress,
 * localFamily, localPort], or undefined once it is gone. */
static napi_value handshake_address_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  transport_state *s = state_of(env, info, &argc, argv);
  handshake *h = handshake_arg(env, s, argv[0]);
  struct sockaddr_storage peer, local;
  if (h == NULL || !socket_addresses(&h->socket, &peer, &local)) return make_undefined(env);
  napi_value result, remote_part, local_part, v;
  remote_part = address_array(env, &peer);
  local_part = address_array(env, &local);
  napi_create_array_with_length(env, 6, &result);
  for (uint32_t i = 0; i < 3; i++) {
    if (napi_get_element(env, remote_part, i, &v) == napi_ok) napi_set_element(env, result, i, v);
    if (napi_get_element(env, local_part, i, &v) == napi_ok)
      napi_set_element(env, result, 3 + i, v);
  }
  return result;
}

bool native_listener_register(transport_state *s, napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listenerOpen", NULL, listener_open_js, NULL, NULL, NULL, napi_default, s},
      {"listenerClose", NULL, listener_close_js, NULL, NULL, NULL, napi_default, s},
      {"listenerRef", NULL, listener_ref_js, NULL, NULL, NULL, napi_default, s},
      {"listenerAddress", NULL, listener_address_js, NULL, NULL, NULL, napi_default, s},
      {"handshakeAccept", NULL, handshake_accept_js, NULL, NULL, NULL, napi_default, s},
      {"handshakeWrite", NULL, handshake_write_js, NULL, NULL, NULL, napi_default, s},
      {"handshakeDestroy", NULL, handshake_destroy_js, NULL, NULL, NULL, napi_default, s},
      {"handshakeAddress", NULL, handshake_address_js, NULL, NULL, NULL, napi_default, s},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok;
}

#else

typedef int native_listener_unavailable; /* (Windows: no native transport) */

#endif
