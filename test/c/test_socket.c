/* Unit tests for the socket core (transport/socket.c) and the epoll poller: over socketpair()
 * and loopback TCP pairs, partial writes, EAGAIN and resumption, a peer that stops reading,
 * half-close, errors mid-write, reset, options and addresses. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "transport/poller.h"
#include "transport/socket.h"

/* A connected pair: ours (taken over with socket_take, as the addon does) and the peer's. */
typedef struct pair {
  transport_socket ours;
  int peer;
} pair;

static void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* A Unix-domain pair with small kernel buffers, so that writes fill them quickly. */
static pair unix_pair(void) {
  int fds[2];
  pair p = {0};
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  int size = 4096;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  int own = socket_take(fds[0], true);
  CHECK(own >= 3);
  close(fds[0]); /* ours is a dup: the original may go, as Node's socket does */
  socket_open(&p.ours, own);
  p.peer = fds[1];
  set_nonblocking(p.peer);
  return p;
}

/* A loopback TCP pair (what resets, keep-alive, Nagle and addresses need). */
static pair tcp_pair(void) {
  pair p = {0};
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(addr);
  CHECK(bind(listener, (struct sockaddr *)&addr, sizeof(addr)) == 0);
  CHECK(listen(listener, 1) == 0);
  getsockname(listener, (struct sockaddr *)&addr, &len);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(connect(client, (struct sockaddr *)&addr, sizeof(addr)) == 0);
  int server = accept(listener, NULL, NULL);
  CHECK(server >= 0);
  close(listener);
  int own = socket_take(server, true);
  close(server);
  socket_open(&p.ours, own);
  p.peer = client;
  set_nonblocking(p.peer);
  return p;
}

static void pair_close(pair *p) {
  socket_close(&p->ours, false);
  if (p->peer >= 0) close(p->peer);
  p->peer = -1;
}

/* Reads everything the peer has now into out (appending at *got, at most cap). */
static void peer_drain(pair *p, uint8_t *out, size_t *got, size_t cap) {
  for (;;) {
    ssize_t n = recv(p->peer, out + *got, cap - *got, 0);
    if (n <= 0) return;
    *got += (size_t)n;
  }
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed) {
  for (size_t i = 0; i < len; i++) {
    seed = seed * 1103515245u + 12345u;
    buf[i] = (uint8_t)(seed >> 16);
  }
}

static void test_take(void) {
  int fds[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  int own = socket_take(fds[0], false);
  CHECK(own >= 3 && own != fds[0]);
  CHECK((fcntl(own, F_GETFD) & FD_CLOEXEC) != 0);
  /* fds[0] is a blocking socket: a read of ours with nothing to read still returns at once. */
  transport_socket s;
  socket_open(&s, own);
  uint8_t byte;
  size_t n = 0;
  CHECK(socket_read(&s, &byte, 1, &n) == SOCKET_AGAIN);
  /* and a write the peer's buffer cannot take keeps the rest instead of waiting for room */
  size_t big_len = 16u << 20;
  uint8_t *big = calloc(1, big_len);
  CHECK(big != NULL);
  struct iovec piece = {.iov_base = big, .iov_len = big_len};
  CHECK(socket_write(&s, &piece, 1) == SOCKET_AGAIN);
  CHECK(socket_pending_size(&s) > 0);
  free(big);
  /* The caller's descriptor stays its own (and open). */
  CHECK(fcntl(fds[0], F_GETFD) >= 0);
  CHECK(socket_take(-1, false) == -EBADF);
  socket_close(&s, false);
  close(fds[0]);
  close(fds[1]);
}

static void test_read(void) {
  pair p = unix_pair();
  uint8_t buf[64];
  size_t n = 0;
  CHECK(socket_read(&p.ours, buf, sizeof(buf), &n) == SOCKET_AGAIN);
  CHECK(send(p.peer, "hello", 5, 0) == 5);
  CHECK(socket_read(&p.ours, buf, sizeof(buf), &n) == SOCKET_DONE);
  CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
  /* A read never takes more than it was given room for. */
  CHECK(send(p.peer, "0123456789", 10, 0) == 10);
  CHECK(socket_read(&p.ours, buf, 4, &n) == SOCKET_DONE && n == 4);
  CHECK(socket_read(&p.ours, buf, sizeof(buf), &n) == SOCKET_DONE && n == 6);
  CHECK(memcmp(buf, "456789", 6) == 0);
  CHECK(p.ours.bytes_read == 15 && p.ours.bytes_written == 0);
  CHECK(socket_wanted(&p.ours) == SOCKET_WANT_READ);
  p.ours.flags |= SOCKET_PAUSED;
  CHECK(socket_wanted(&p.ours) == 0);
  p.ours.flags &= (uint8_t)~SOCKET_PAUSED;
  /* The peer's FIN: EOF, and nothing more to read for. */
  shutdown(p.peer, SHUT_WR);
  CHECK(socket_read(&p.ours, buf, sizeof(buf), &n) == SOCKET_END);
  CHECK(p.ours.flags & SOCKET_EOF);
  CHECK(socket_wanted(&p.ours) == 0);
  pair_close(&p);
  CHECK(!(p.ours.flags & SOCKET_OPEN) && (p.ours.flags & SOCKET_CLOSED) &&
        socket_wanted(&p.ours) == 0);
}

/* A peer that stops reading: what the kernel refuses is kept, in order, behind anything already
 * kept, and goes out once the peer reads again; its memory is freed then. */
static void test_write_backpressure(void) {
  pair p = unix_pair();
  enum { TOTAL = 1 << 20 };
  uint8_t *sent = malloc(TOTAL), *got = malloc(TOTAL);
  fill_pattern(sent, TOTAL, 7);
  size_t off = 0, received = 0;
  int agains = 0;
  /* Pieces of awkward sizes, several per write, until well past the kernel's buffers. */
  while (off < TOTAL / 2) {
    struct iovec iov[3];
    size_t count = 0;
    for (size_t k = 0; k < 3 && off < TOTAL / 2; k++) {
      size_t len = 1 + (off * 7 + k * 131) % 3001;
      if (off + len > TOTAL / 2) len = TOTAL / 2 - off;
      iov[count++] = (struct iovec){sent + off, len};
      off += len;
    }
    socket_status st = socket_write(&p.ours, iov, count);
    CHECK(st == SOCKET_DONE || st == SOCKET_AGAIN);
    if (st == SOCKET_AGAIN) agains++;
  }
  CHECK(agains > 0);
  CHECK(socket_pending_size(&p.ours) > 0);
  CHECK(socket_wanted(&p.ours) == (SOCKET_WANT_READ | SOCKET_WANT_WRITE));
  /* Behind pending output everything is kept, even when the kernel would take it. */
  peer_drain(&p, got, &received, TOTAL);
  size_t pending_before = socket_pending_size(&p.ours);
  struct iovec one = {sent + off, 100};
  CHECK(socket_write(&p.ours, &one, 1) == SOCKET_AGAIN);
  off += 100;
  CHECK(socket_pending_size(&p.ours) == pending_before + 100);
  /* Resumption: the peer reads, pending output is written in turns (partial writes, EAGAIN),
   * and grows again in between (its buffer reused, then moved). */
  int rounds = 0;
  socket_status st;
  while ((st = socket_write_pending(&p.ours)) == SOCKET_AGAIN) {
    peer_drain(&p, got, &received, TOTAL);
    if (off < TOTAL && rounds % 3 == 0) {
      struct iovec more = {sent + off, 5000};
      CHECK(socket_write(&p.ours, &more, 1) == SOCKET_AGAIN);
      off += 5000;
    }
    rounds++;
  }
  CHECK(st == SOCKET_DONE);
  CHECK(p.ours.pending == NULL && socket_pending_size(&p.ours) == 0);
  CHECK(socket_wanted(&p.ours) == SOCKET_WANT_READ);
  peer_drain(&p, got, &received, TOTAL);
  CHECK_EQ_INT(received, off);
  CHECK_MEM(got, sent, off);
  /* Counted as the kernel took them, pending ones included once written. */
  CHECK_EQ_INT(p.ours.bytes_written, off);
  free(sent);
  free(got);
  pair_close(&p);
}

/* The peer goes away while output waits: the write fails with the reason (no SIGPIPE). */
static void test_error_mid_write(void) {
  pair p = unix_pair();
  uint8_t block[8192];
  fill_pattern(block, sizeof(block), 3);
  socket_status st;
  do {
    struct iovec iov = {block, sizeof(block)};
    st = socket_write(&p.ours, &iov, 1);
  } while (st == SOCKET_DONE);
  CHECK(st == SOCKET_AGAIN);
  close(p.peer);
  p.peer = -1;
  st = socket_write_pending(&p.ours);
  CHECK(st == SOCKET_FAILED);
  CHECKF(p.ours.error == EPIPE || p.ours.error == ECONNRESET, "error %d", p.ours.error);
  /* The first reason counts. */
  socket_set_error(&p.ours, EIO);
  CHECK(p.ours.error == EPIPE || p.ours.error == ECONNRESET);
  /* A fresh write fails too, and keeps nothing. */
  pair q = unix_pair();
  close(q.peer);
  q.peer = -1;
  struct iovec iov = {block, 10};
  CHECK(socket_write(&q.ours, &iov, 1) == SOCKET_FAILED);
  CHECK(q.ours.error == EPIPE && socket_pending_size(&q.ours) == 0);
  pair_close(&q);
  pair_close(&p);
}

/* Half-close: our FIN reaches the peer, which can still send; once its FIN arrives too, both
 * directions are done. */
static void test_half_close(void) {
  pair p = unix_pair();
  uint8_t buf[16];
  size_t n;
  CHECK(!socket_shutdown_write(&p.ours));
  CHECK(p.ours.flags & SOCKET_SHUT);
  CHECK(recv(p.peer, buf, sizeof(buf), 0) == 0); /* the peer sees EOF */
  CHECK(send(p.peer, "late", 4, 0) == 4);
  CHECK(socket_read(&p.ours, buf, sizeof(buf), &n) == SOCKET_DONE && n == 4);
  CHECK(!socket_shutdown_write(&p.ours)); /* (again: nothing new) */
  shutdown(p.peer, SHUT_WR);
  CHECK(socket_read(&p.ours, buf, sizeof(buf), &n) == SOCKET_END);
  CHECK(socket_shutdown_write(&p.ours));
  pair_close(&p);
}

static void test_reset(void) {
  pair p = tcp_pair();
  CHECK(send(p.peer, "x", 1, 0) == 1);
  socket_close(&p.ours, true);
  CHECK(!(p.ours.flags & SOCKET_OPEN));
  uint8_t buf[4];
  /* (A blocking wait for the reset, which the kernel delivers at once on loopback.) */
  fcntl(p.peer, F_SETFL, fcntl(p.peer, F_GETFL) & ~O_NONBLOCK);
  ssize_t r = recv(p.peer, buf, sizeof(buf), 0);
  CHECKF(r < 0 && errno == ECONNRESET, "recv %zd errno %d", r, errno);
  close(p.peer);

  /* A peer's reset is reported as a failed read, with the reason. */
  pair q = tcp_pair();
  struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
  setsockopt(q.peer, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
  close(q.peer);
  q.peer = -1;
  size_t n;
  socket_status st;
  for (int i = 0; i < 1000 && (st = socket_read(&q.ours, buf, sizeof(buf), &n)) == SOCKET_AGAIN;
       i++)
    usleep(1000);
  CHECK(st == SOCKET_FAILED && q.ours.error == ECONNRESET);
  pair_close(&q);
}

static void test_options_and_addresses(void) {
  pair p = tcp_pair();
  int value = 0;
  socklen_t len = sizeof(value);
  getsockopt(p.ours.fd, IPPROTO_TCP, TCP_NODELAY, &value, &len);
  CHECK(value == 1); /* socket_take's no_delay */
  CHECK(socket_set_no_delay(&p.ours, false) == 0);
  getsockopt(p.ours.fd, IPPROTO_TCP, TCP_NODELAY, &value, &len);
  CHECK(value == 0);
  CHECK(socket_set_keep_alive(&p.ours, true, 42) == 0);
  getsockopt(p.ours.fd, SOL_SOCKET, SO_KEEPALIVE, &value, &len);
  CHECK(value == 1);
  getsockopt(p.ours.fd, IPPROTO_TCP, TCP_KEEPIDLE, &value, &len);
  CHECK(value == 42);
  CHECK(socket_set_keep_alive(&p.ours, false, 0) == 0);
  getsockopt(p.ours.fd, SOL_SOCKET, SO_KEEPALIVE, &value, &len);
  CHECK(value == 0);

  struct sockaddr_storage peer, local, expect_peer;
  CHECK(socket_addresses(&p.ours, &peer, &local));
  socklen_t elen = sizeof(expect_peer);
  getsockname(p.peer, (struct sockaddr *)&expect_peer, &elen);
  CHECK(peer.ss_family == AF_INET);
  CHECK(((struct sockaddr_in *)&peer)->sin_port == ((struct sockaddr_in *)&expect_peer)->sin_port);
  CHECK(((struct sockaddr_in *)&local)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
  pair_close(&p);
  CHECK(!socket_addresses(&p.ours, &peer, &local));
  /* Options on a Unix-domain socket fail with a reason rather than pretending. */
  pair u = unix_pair();
  CHECK(socket_set_no_delay(&u.ours, true) != 0);
  pair_close(&u);
}

/* ---- the epoll poller ---- */

#if defined(__linux__)
typedef struct seen {
  uint32_t token[8];
  unsigned events[8];
  bool more[8];
  int count;
} seen;

static void record(void *ctx, uint32_t token, unsigned events, bool more) {
  seen *s = ctx;
  if (s->count < 8) {
    s->token[s->count] = token;
    s->events[s->count] = events;
    s->more[s->count] = more;
  }
  s->count++;
}

static void test_epoll_poller(void) {
  seen s = {0};
  poller *p = poller_epoll_create(record, &s);
  CHECK(p != NULL && poller_epoll_fd(p) >= 0);
  pair a = unix_pair(), b = unix_pair();
  CHECK(poller_update(p, &a.ours, 11) == 0 && a.ours.events == SOCKET_WANT_READ);
  CHECK(poller_update(p, &b.ours, 22) == 0);
  CHECK(poller_epoll_dispatch(p, 128) == 0 && s.count == 0);

  send(a.peer, "a", 1, 0);
  send(b.peer, "b", 1, 0);
  CHECK(poller_epoll_dispatch(p, 128) == 2 && s.count == 2);
  CHECK((s.token[0] == 11 && s.token[1] == 22) || (s.token[0] == 22 && s.token[1] == 11));
  CHECK(s.events[0] == SOCKET_WANT_READ && s.more[0] && !s.more[1]);
  /* Level-triggered, and at most max per call. */
  s.count = 0;
  CHECK(poller_epoll_dispatch(p, 1) == 1 && s.count == 1 && !s.more[0]);

  /* Paused: no entry at all, so nothing is reported, not even the unread bytes. */
  a.ours.flags |= SOCKET_PAUSED;
  b.ours.flags |= SOCKET_PAUSED;
  CHECK(poller_update(p, &a.ours, 11) == 0 && a.ours.events == 0);
  CHECK(poller_update(p, &b.ours, 22) == 0);
  s.count = 0;
  CHECK(poller_epoll_dispatch(p, 128) == 0);
  /* Pending output makes it wait for writability. */
  uint8_t block[8192] = {0};
  socket_status st;
  do {
    struct iovec iov = {block, sizeof(block)};
    st = socket_write(&a.ours, &iov, 1);
  } while (st == SOCKET_DONE);
  CHECK(poller_update(p, &a.ours, 11) == 0 && a.ours.events == SOCKET_WANT_WRITE);
  CHECK(poller_epoll_dispatch(p, 128) == 0); /* (the peer reads nothing yet) */
  uint8_t sink[65536];
  while (recv(a.peer, sink, sizeof(sink), 0) > 0) {
  }
  s.count = 0;
  CHECK(poller_epoll_dispatch(p, 128) == 1 && s.token[0] == 11 && s.events[0] == SOCKET_WANT_WRITE);
  /* A hang-up reports everything, so whichever operation is due finds out. */
  close(a.peer);
  a.peer = -1;
  s.count = 0;
  CHECK(poller_epoll_dispatch(p, 128) == 1);
  CHECK(s.events[0] == (SOCKET_WANT_READ | SOCKET_WANT_WRITE));
  poller_close_socket(p, &a.ours, false);
  poller_close_socket(p, &b.ours, false);
  CHECK(a.ours.events == 0 && !(b.ours.flags & SOCKET_OPEN));
  s.count = 0;
  CHECK(poller_epoll_dispatch(p, 128) == 0);
  close(b.peer);
  p->backend->destroy(p);
}
#endif

int main(void) {
  /* SIGPIPE is left at its default: a write that raised it would end this test. */
  RUN(test_take);
  RUN(test_read);
  RUN(test_write_backpressure);
  RUN(test_error_mid_write);
  RUN(test_half_close);
  RUN(test_reset);
  RUN(test_options_and_addresses);
#if defined(__linux__)
  RUN(test_epoll_poller);
#endif
  return CHECK_DONE();
}
