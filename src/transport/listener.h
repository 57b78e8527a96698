/* The listening socket of the native listener (port mode): open, accept, close. No Node-API
 * and no event loop; a poller says when connections wait to be accepted. Unix only, like the
 * socket core. */
#ifndef WSN_TRANSPORT_LISTENER_H
#define WSN_TRANSPORT_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "transport/socket.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <sys/socket.h>

/* A non-blocking, close-on-exec socket listening on addr (SO_REUSEADDR, as Node's servers;
 * an IPv6 wildcard accepts IPv4 too). *fd on success; returns 0 or an errno value. */
int listener_open(const struct sockaddr *addr, socklen_t addr_len, int backlog, int *fd);

/* Accepts one waiting connection as a non-blocking, close-on-exec socket with Nagle off.
 * Returns its fd, -EAGAIN when none waits, or another -errno (EMFILE, ECONNABORTED...). */
int listener_accept(int fd);

/* Where it listens. */
bool listener_address(int fd, struct sockaddr_storage *local);

#endif

#endif
