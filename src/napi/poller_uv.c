/* The uv_poll_t-per-socket backend of the poller: each watched socket gets a libuv poll handle
 * (allocated on its first watch, freed once libuv has closed it), kept in a list so that the
 * environment's teardown can close them all. */
#if !defined(_WIN32)
#define _GNU_SOURCE /* uv.h needs POSIX types (pthread_rwlock_t) that -std=c11 hides */
#endif
#include "napi/poller_uv.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <stddef.h>
#include <stdlib.h>

typedef struct uv_poller uv_poller;

typedef struct poll_slot {
  uv_poll_t handle; /* its data is the slot */
  uv_poller *owner;
  transport_socket *socket;
  uint32_t token;
  struct poll_slot *prev, *next;
} poll_slot;

struct uv_poller {
  poller base;
  uv_loop_t *loop;
  poller_event_fn fn;
  void *ctx;
  poll_slot *slots; /* every slot with an open handle */
  /* At shutdown: handles whose close callback is to come, and who to tell after the last. */
  size_t closing;
  void (*done)(void *arg);
  void *done_arg;
};

static int uv_watch(poller *base, transport_socket *s, uint32_t token, unsigned want);

static void on_poll(uv_poll_t *handle, int status, int events) {
  poll_slot *slot = handle->data;
  uv_poller *p = slot->owner;
  if (status >= 0) {
    unsigned report = (events & (UV_READABLE | UV_DISCONNECT) ? SOCKET_WANT_READ : 0) |
                      (events & UV_WRITABLE ? SOCKET_WANT_WRITE : 0);
    p->fn(p->ctx, slot->token, report, false);
    return;
  }
  /* An error on the socket (a reset): libuv has stopped the handle. Whatever the socket waits
   * for finds out; but a read may still return bytes that came before the reset, and then the
   * socket must be polled again to learn of the error (poller_update sees the mask changed). */
  transport_socket *s = slot->socket;
  uint32_t token = slot->token;
  s->events = 0;
  p->fn(p->ctx, token, SOCKET_WANT_READ | SOCKET_WANT_WRITE, false);
  /* (fn may have closed the socket, freeing the slot: look again through the socket, which its
   * connection keeps until JS is told of the close.) */
  if ((s->flags & SOCKET_OPEN) && s->poll_slot != NULL && s->events == 0 && socket_wanted(s) != 0)
    uv_watch(&p->base, s, token, socket_wanted(s));
}

static void unlink_slot(uv_poller *p, poll_slot *slot) {
  if (slot->prev) slot->prev->next = slot->next;
  else
    p->slots = slot->next;
  if (slot->next) slot->next->prev = slot->prev;
  slot->prev = slot->next = NULL;
}

static void free_slot(uv_handle_t *handle) { free(handle->data); }

static int uv_watch(poller *base, transport_socket *s, uint32_t token, unsigned want) {
  uv_poller *p = (uv_poller *)base;
  poll_slot *slot = s->poll_slot;
  if (want == 0) {
    if (slot) uv_poll_stop(&slot->handle);
    s->events = 0;
    return 0;
  }
  if (slot == NULL) {
    slot = calloc(1, sizeof(*slot));
    if (!slot) return ENOMEM;
    int rc = uv_poll_init(p->loop, &slot->handle, s->fd);
    if (rc != 0) {
      free(slot);
      return -rc; /* (libuv's errors are negated errno values on Unix) */
    }
    slot->handle.data = slot;
    slot->owner = p;
    slot->socket = s;
    slot->next = p->slots;
    if (p->slots) p->slots->prev = slot;
    p->slots = slot;
    s->poll_slot = slot;
    if (s->flags & SOCKET_UNREF) uv_unref((uv_handle_t *)&slot->handle);
  }
  slot->token = token;
  int flags = (want & SOCKET_WANT_READ ? UV_READABLE : 0) |
              (want & SOCKET_WANT_WRITE ? UV_WRITABLE : 0);
  int rc = uv_poll_start(&slot->handle, flags, on_poll);
  if (rc != 0) return -rc;
  s->events = (uint8_t)want;
  return 0;
}

/* Stopped first: libuv must not poll a descriptor that is about to be closed. uv_close then
 * also drops libuv's own record of it, before the caller closes it. */
static void uv_forget(poller *base, transport_socket *s) {
  uv_poller *p = (uv_poller *)base;
  poll_slot *slot = s->poll_slot;
  s->events = 0;
  if (slot == NULL) return;
  uv_poll_stop(&slot->handle);
  unlink_slot(p, slot);
  s->poll_slot = NULL;
  uv_close((uv_handle_t *)&slot->handle, free_slot);
}

static void uv_ref_socket(poller *base, transport_socket *s) {
  (void)base;
  poll_slot *slot = s->poll_slot;
  if (slot == NULL) return; /* (applied when one is made) */
  if (s->flags & SOCKET_UNREF) uv_unref((uv_handle_t *)&slot->handle);
  else
    uv_ref((uv_handle_t *)&slot->handle);
}

static void uv_destroy(poller *base) { poller_uv_shutdown(base, NULL, NULL); }

static const poller_backend uv_backend = {"uv", uv_watch, uv_forget, uv_ref_socket, uv_destroy};

poller *poller_uv_create(uv_loop_t *loop, poller_event_fn fn, void *ctx) {
  uv_poller *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->base.backend = &uv_backend;
  p->loop = loop;
  p->fn = fn;
  p->ctx = ctx;
  return &p->base;
}

static void finish_shutdown(uv_poller *p) {
  void (*done)(void *) = p->done;
  void *arg = p->done_arg;
  free(p);
  if (done) done(arg);
}

static void on_shutdown_close(uv_handle_t *handle) {
  poll_slot *slot = handle->data;
  uv_poller *p = slot->owner;
  free(slot);
  if (--p->closing == 0) finish_shutdown(p);
}

void poller_uv_shutdown(poller *base, void (*done)(void *arg), void *arg) {
  uv_poller *p = (uv_poller *)base;
  p->done = done;
  p->done_arg = arg;
  p->closing = 1; /* held until every close below is started */
  while (p->slots) {
    poll_slot *slot = p->slots;
    unlink_slot(p, slot);
    slot->socket->poll_slot = NULL;
    slot->socket->events = 0;
    uv_poll_stop(&slot->handle);
    p->closing++;
    uv_close((uv_handle_t *)&slot->handle, on_shutdown_close);
  }
  if (--p->closing == 0) finish_shutdown(p);
}

#else

typedef int poller_uv_unavailable; /* (Windows: no native transport) */

#endif
