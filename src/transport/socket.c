/* The socket core: system calls on one owned, non-blocking stream socket, and the output the
 * kernel did not take yet. No polling and no callbacks: the caller acts on what each returns. */
#if defined(__linux__)
#define _GNU_SOURCE /* F_DUPFD_CLOEXEC and TCP_KEEPIDLE under -std=c11 */
#elif defined(__APPLE__)
#define _DARWIN_C_SOURCE
#endif
#include "transport/socket.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every read and write says MSG_DONTWAIT (Linux, macOS, the BSDs): the socket never blocks
 * the thread whatever the open file's O_NONBLOCK, which libuv sets and socket_take then need
 * not check (a system call per adopted connection). */
#ifdef MSG_DONTWAIT
#define DONTWAIT_FLAG MSG_DONTWAIT
#else
#define DONTWAIT_FLAG 0
#endif

/* MSG_NOSIGNAL keeps a write to a reset socket from raising SIGPIPE. macOS has no such flag;
 * there SO_NOSIGPIPE is set on the socket instead (socket_take). */
#ifdef MSG_NOSIGNAL
#define SEND_FLAGS (MSG_NOSIGNAL | DONTWAIT_FLAG)
#else
#define SEND_FLAGS DONTWAIT_FLAG
#endif

/* One sendmsg takes at most this many pieces (IOV_MAX is 1024 on Linux and macOS). */
#define MAX_PIECES 64

int socket_take(int fd, bool no_delay) {
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (own < 0) return -errno;
#if !defined(MSG_DONTWAIT)
  /* The open file is shared with the caller's fd, which its owner (libuv) made non-blocking;
   * made sure of here (MSG_DONTWAIT makes sure elsewhere), as one blocking read would stall
   * the thread. */
  int fl = fcntl(own, F_GETFL);
  if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(own, F_SETFL, fl | O_NONBLOCK) != 0)) {
    int err = errno;
    close(own);
    return -err;
  }
#endif
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(own, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
  if (no_delay) {
    int on = 1;
    /* (Fails harmlessly on a Unix-domain socket, which has no Nagle.) */
    setsockopt(own, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  }
  return own;
}

void socket_open(transport_socket *s, int fd) {
  s->fd = fd;
  s->error = 0;
  s->events = 0;
  s->flags = SOCKET_OPEN;
  s->pending = NULL;
  s->poll_slot = NULL;
  s->bytes_read = s->bytes_written = 0;
}

socket_status socket_read(transport_socket *s, uint8_t *buf, size_t cap, size_t *n) {
  ssize_t got;
  do got = recv(s->fd, buf, cap, DONTWAIT_FLAG);
  while (got < 0 && errno == EINTR);
  if (got > 0) {
    *n = (size_t)got;
    s->bytes_read += (size_t)got;
    return SOCKET_DONE;
  }
  if (got == 0) {
    s->flags |= SOCKET_EOF;
    return SOCKET_END;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) return SOCKET_AGAIN;
  socket_set_error(s, errno);
  return SOCKET_FAILED;
}

/* Appends bytes to the pending output. */
static bool pending_append(transport_socket *s, const uint8_t *data, size_t len) {
  if (len == 0) return true;
  socket_output *p = s->pending;
  if (p == NULL || p->len + len > p->cap) {
    size_t kept = p ? p->len - p->off : 0;
    size_t cap = p && p->cap ? p->cap : 4096;
    while (cap < kept + len) cap *= 2;
    if (p && p->off > 0 && kept + len <= p->cap) {
      /* Room once what was written is dropped. */
      memmove(p->data, p->data + p->off, kept);
    } else {
      socket_output *grown = malloc(sizeof(*grown) + cap);
      if (!grown) return false;
      if (p) memcpy(grown->data, p->data + p->off, kept);
      free(p);
      grown->cap = cap;
      s->pending = p = grown;
    }
    p->off = 0;
    p->len = kept;
  }
  memcpy(p->data + p->len, data, len);
  p->len += len;
  return true;
}

socket_status socket_write(transport_socket *s, struct iovec *pieces, size_t count) {
  size_t i = 0;
  while (i < count && socket_pending_size(s) == 0) {
    ssize_t n;
    if (count - i == 1) {
      /* The usual case (a reply, the engine's queue): send() spares the kernel the message
       * header and the iovec it would copy in. */
      n = send(s->fd, pieces[i].iov_base, pieces[i].iov_len, SEND_FLAGS);
    } else {
      struct msghdr msg;
      memset(&msg, 0, sizeof(msg));
      msg.msg_iov = pieces + i;
      msg.msg_iovlen = (int)(count - i < MAX_PIECES ? count - i : MAX_PIECES);
      n = sendmsg(s->fd, &msg, SEND_FLAGS);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      socket_set_error(s, errno);
      return SOCKET_FAILED;
    }
    size_t left = (size_t)n;
    s->bytes_written += (size_t)n;
    while (i < count && left >= pieces[i].iov_len) left -= pieces[i++].iov_len;
    if (i < count && left > 0) {
      pieces[i].iov_base = (uint8_t *)pieces[i].iov_base + left;
      pieces[i].iov_len -= left;
      break; /* the kernel's buffer is full */
    }
  }
  for (; i < count; i++) {
    if (!pending_append(s, pieces[i].iov_base, pieces[i].iov_len)) {
      socket_set_error(s, ENOMEM);
      return SOCKET_FAILED;
    }
  }
  return socket_pending_size(s) == 0 ? SOCKET_DONE : SOCKET_AGAIN;
}

socket_status socket_write_pending(transport_socket *s) {
  socket_output *p = s->pending;
  if (p == NULL) return SOCKET_DONE;
  while (p->off < p->len) {
    ssize_t n = send(s->fd, p->data + p->off, p->len - p->off, SEND_FLAGS);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return SOCKET_AGAIN;
      socket_set_error(s, errno);
      return SOCKET_FAILED;
    }
    p->off += (size_t)n;
    s->bytes_written += (size_t)n;
  }
  /* All written: free the buffer, an idle connection keeps nothing. */
  free(p);
  s->pending = NULL;
  return SOCKET_DONE;
}

unsigned socket_wanted(const transport_socket *s) {
  if (!(s->flags & SOCKET_OPEN)) return 0;
  unsigned want = 0;
  if (!(s->flags & (SOCKET_PAUSED | SOCKET_EOF))) want |= SOCKET_WANT_READ;
  if (socket_pending_size(s) > 0) want |= SOCKET_WANT_WRITE;
  return want;
}

bool socket_shutdown_write(transport_socket *s) {
  if (!(s->flags & SOCKET_OPEN)) return false;
  if (!(s->flags & SOCKET_SHUT)) {
    s->flags |= SOCKET_SHUT;
    shutdown(s->fd, SHUT_WR);
  }
  return (s->flags & SOCKET_EOF) != 0;
}

void socket_close(transport_socket *s, bool reset) {
  if (!(s->flags & SOCKET_OPEN)) return;
  if (reset) {
    /* A zero linger time makes close() send RST instead of FIN. */
    struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
    setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
  }
  close(s->fd);
  free(s->pending);
  s->pending = NULL;
  s->events = 0;
  s->flags = (uint16_t)((s->flags & ~SOCKET_OPEN) | SOCKET_CLOSED);
}

int socket_set_no_delay(transport_socket *s, bool on) {
  int value = on;
  return setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value)) == 0 ? 0 : errno;
}

int socket_set_keep_alive(transport_socket *s, bool on, unsigned idle_seconds) {
  int value = on;
  if (setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &value, sizeof(value)) != 0) return errno;
  if (!on || idle_seconds == 0) return 0;
  int idle = idle_seconds > 0x7fffffff ? 0x7fffffff : (int)idle_seconds;
#if defined(TCP_KEEPIDLE)
  if (setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0) return errno;
#elif defined(TCP_KEEPALIVE) /* macOS names it so */
  if (setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPALIVE, &idle, sizeof(idle)) != 0) return errno;
#else
  (void)idle;
#endif
  return 0;
}

bool socket_addresses(const transport_socket *s, struct sockaddr_storage *peer,
                      struct sockaddr_storage *local) {
  socklen_t peer_len = sizeof(*peer), local_len = sizeof(*local);
  memset(peer, 0, sizeof(*peer));
  memset(local, 0, sizeof(*local));
  if (!(s->flags & SOCKET_OPEN)) return false;
  if (getpeername(s->fd, (struct sockaddr *)peer, &peer_len) != 0) return false;
  getsockname(s->fd, (struct sockaddr *)local, &local_len);
  return true;
}

#else /* Windows: no socket core (see socket.h) */

typedef int socket_core_unavailable; /* (ISO C wants a translation unit to declare something) */

#endif
