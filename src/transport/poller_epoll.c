/* The epoll backend of the poller: one epoll set for every socket of a thread. Its descriptor
 * is what the caller's event loop watches, so the sockets themselves need no loop handle. */
#if defined(__linux__)
#define _GNU_SOURCE
#endif
#include "transport/poller.h"

#if defined(__linux__)

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Events taken per dispatch (the stack array below). */
#define EVENTS_MAX 128

typedef struct epoll_poller {
  poller base;
  int fd;
  poller_event_fn fn;
  void *ctx;
} epoll_poller;

static uint32_t epoll_mask(unsigned want) {
  return (want & SOCKET_WANT_READ ? EPOLLIN : 0) | (want & SOCKET_WANT_WRITE ? EPOLLOUT : 0);
}

/* With nothing to wait for, the entry is removed: an entry always reports errors and
 * hang-ups, even with an empty mask, and a paused socket must not be reported. */
static int epoll_watch(poller *base, transport_socket *s, uint32_t token, unsigned want) {
  epoll_poller *p = (epoll_poller *)base;
  struct epoll_event ev = {.events = epoll_mask(want), .data.u32 = token};
  int op = want == 0 ? EPOLL_CTL_DEL : s->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (op == EPOLL_CTL_DEL && s->events == 0) return 0;
  if (epoll_ctl(p->fd, op, s->fd, &ev) != 0) return errno;
  s->events = (uint8_t)want;
  return 0;
}

static void epoll_forget(poller *base, transport_socket *s) {
  epoll_poller *p = (epoll_poller *)base;
  if (s->events != 0 && p->fd >= 0) epoll_ctl(p->fd, EPOLL_CTL_DEL, s->fd, NULL);
  s->events = 0;
}

static void epoll_destroy(poller *base) {
  epoll_poller *p = (epoll_poller *)base;
  /* (Closing the set drops whatever entries it still has.) */
  if (p->fd >= 0) close(p->fd);
  free(p);
}

static const poller_backend epoll_backend = {"epoll", epoll_watch, epoll_forget, NULL,
                                             epoll_destroy};

poller *poller_epoll_create(poller_event_fn fn, void *ctx) {
  epoll_poller *p = calloc(1, sizeof(*p));
  if (!p) {
    errno = ENOMEM;
    return NULL;
  }
  p->fd = epoll_create1(EPOLL_CLOEXEC);
  if (p->fd < 0) {
    int err = errno;
    free(p);
    errno = err;
    return NULL;
  }
  p->base.backend = &epoll_backend;
  p->fn = fn;
  p->ctx = ctx;
  return &p->base;
}

int poller_epoll_fd(const poller *base) { return ((const epoll_poller *)base)->fd; }

int poller_epoll_dispatch(poller *base, int max) {
  epoll_poller *p = (epoll_poller *)base;
  struct epoll_event ready[EVENTS_MAX];
  if (max > EVENTS_MAX) max = EVENTS_MAX;
  int n;
  do n = epoll_wait(p->fd, ready, max, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  for (int i = 0; i < n; i++) {
    uint32_t events = ready[i].events;
    unsigned report = (events & EPOLLIN ? SOCKET_WANT_READ : 0) |
                      (events & EPOLLOUT ? SOCKET_WANT_WRITE : 0);
    /* An error or hang-up: whatever the socket waits for will find out. */
    if (events & (EPOLLERR | EPOLLHUP)) report |= SOCKET_WANT_READ | SOCKET_WANT_WRITE;
    p->fn(p->ctx, ready[i].data.u32, report, i < n - 1);
  }
  return n;
}

#else

typedef int poller_epoll_unavailable; /* (not Linux: this backend does not exist) */

#endif
