/* The poller interface: what tells the native transport that a socket can be read or written.
 * One backend per file: poller_epoll.c (Linux: one epoll set per thread, itself watched by
 * Node's loop as a single handle, so an idle socket costs no libuv handle) and, in src/napi/
 * because it is libuv's, poller_uv.c (a uv_poll_t per socket on Node's own loop: kqueue on
 * macOS and the BSDs, epoll on Linux). */
#ifndef WSN_TRANSPORT_POLLER_H
#define WSN_TRANSPORT_POLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/socket.h"

#if WSN_HAVE_SOCKET_TRANSPORT

/* Called for each socket with something to do. events: SOCKET_WANT_READ / _WRITE (an error
 * or a hang-up reports both, so that whichever read or write the socket is ready for finds
 * out; the caller reads only when it wants to and writes only what is pending). more: other sockets
 * of the same batch follow (the caller may hold replies until the batch ends). token: what the
 * socket was registered with. */
typedef void (*poller_event_fn)(void *ctx, uint32_t token, unsigned events, bool more);

typedef struct poller poller;

typedef struct poller_backend {
  const char *name;
  /* Makes the poller watch s->fd for want (SOCKET_WANT_*; 0: nothing) and report token with
   * its events; s->events (what is registered now) is updated on success. Returns 0 or an
   * errno value. */
  int (*watch)(poller *p, transport_socket *s, uint32_t token, unsigned want);
  /* Stops watching s for good, before its descriptor is closed. */
  void (*forget)(poller *p, transport_socket *s);
  /* Whether watching s keeps the event loop alive (SOCKET_UNREF clear), where the backend has
   * a loop handle per socket; NULL where the caller's single handle speaks for all. */
  void (*ref)(poller *p, transport_socket *s);
  void (*destroy)(poller *p);
} poller_backend;

struct poller {
  const poller_backend *backend;
};

/* Registers what s wants now (socket_wanted), touching the poller only when that changed. */
static inline int poller_update(poller *p, transport_socket *s, uint32_t token) {
  unsigned want = socket_wanted(s);
  if (want == s->events) return 0;
  return p->backend->watch(p, s, token, want);
}

/* Stops polling s and closes it (with reset: by RST). */
static inline void poller_close_socket(poller *p, transport_socket *s, bool reset) {
  if (!(s->flags & SOCKET_OPEN)) return;
  p->backend->forget(p, s);
  socket_close(s, reset);
}

#if defined(__linux__)
/* The epoll backend. poller_epoll_fd() becomes readable when sockets have events;
 * poller_epoll_dispatch() then takes at most max of them (the set is level-triggered: the
 * rest wait for the next call, so one busy thread of sockets cannot starve other I/O) and
 * reports each through fn. Returns how many were taken, or -errno. */
poller *poller_epoll_create(poller_event_fn fn, void *ctx);
int poller_epoll_fd(const poller *p);
int poller_epoll_dispatch(poller *p, int max);
#endif

#endif /* WSN_HAVE_SOCKET_TRANSPORT */

#endif
