/* The listening socket: the system calls of opening, accepting and asking where it listens.
 * Nothing here knows of handshakes; src/napi/native_listener.c reads the requests. */
#if defined(__linux__)
#define _GNU_SOURCE /* accept4 */
#elif defined(__APPLE__)
#define _DARWIN_C_SOURCE
#endif
#include "transport/listener.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return errno;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return errno;
  return 0;
}

int listener_open(const struct sockaddr *addr, socklen_t addr_len, int backlog, int *fd_out) {
  int fd = socket(addr->sa_family, SOCK_STREAM, 0);
  if (fd < 0) return errno;
  int err = set_flags(fd);
  int on = 1, off = 0;
  if (err == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) err = errno;
  /* (Best effort: some systems have dual-stack sockets off by default, some cannot turn it on.) */
  if (err == 0 && addr->sa_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  if (err == 0 && bind(fd, addr, addr_len) != 0) err = errno;
  if (err == 0 && listen(fd, backlog) != 0) err = errno;
  if (err != 0) {
    close(fd);
    return err;
  }
  *fd_out = fd;
  return 0;
}

int listener_accept(int fd) {
  int client;
#if defined(__linux__)
  do client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (client < 0 && errno == EINTR);
  if (client < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
#else
  do client = accept(fd, NULL, NULL);
  while (client < 0 && errno == EINTR);
  if (client < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  int err = set_flags(client);
  if (err != 0) {
    close(client);
    return -err;
  }
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(client, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
#endif
  int on = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  return client;
}

bool listener_address(int fd, struct sockaddr_storage *local) {
  socklen_t len = sizeof(*local);
  memset(local, 0, sizeof(*local));
  return getsockname(fd, (struct sockaddr *)local, &len) == 0;
}

#else

typedef int listener_unavailable; /* (Windows: no native transport) */

#endif
