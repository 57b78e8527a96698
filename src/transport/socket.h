/* The socket core of the native transport: one non-blocking stream socket the addon owns after
 * the upgrade -- reads, output the kernel did not take yet, writes, half-close and closing.
 * No Node-API and no event loop: a poller (poller.h) says when to read or write, and the
 * caller (src/napi/native_transport.c) decides what the bytes mean. Unix only: on Windows
 * Node does not hand out its sockets' descriptors, so there is nothing here to build. */
#ifndef WSN_TRANSPORT_SOCKET_H
#define WSN_TRANSPORT_SOCKET_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define WSN_HAVE_SOCKET_TRANSPORT 0
#else
#define WSN_HAVE_SOCKET_TRANSPORT 1
#include <sys/socket.h>
#include <sys/uio.h>
#endif

struct socket_output;

/* socket.flags */
enum {
  SOCKET_OPEN = 1,          /* the fd is ours and open */
  SOCKET_PAUSED = 2,        /* the owner asked not to read */
  SOCKET_EOF = 4,           /* the peer sent FIN */
  SOCKET_END_REQUESTED = 8, /* send FIN once the pending output is written */
  SOCKET_SHUT = 16,         /* FIN sent */
  SOCKET_CLOSED = 32,       /* closed (after having been open) */
  SOCKET_UNREF = 64,        /* does not keep the event loop alive (net.Socket's unref()) */
  /* 128: the caller's own (src/napi/native_transport.h) */
  SOCKET_OBSERVED = 256, /* the owner wants each read's raw bytes too (a 'data' listener) */
};

/* What a socket wants its poller to report (and what the poller reports). */
enum { SOCKET_WANT_READ = 1, SOCKET_WANT_WRITE = 2 };

/* Kept inside each connection, so that an idle connection's socket costs these bytes and no
 * allocation: pending output exists only while the kernel's buffer is full. */
typedef struct transport_socket {
  int fd;         /* meaningful while SOCKET_OPEN is set */
  uint8_t error;  /* errno that ended the socket, or 0 (errno values are below 256) */
  uint8_t events; /* SOCKET_WANT_* registered with the poller; 0: not registered */
  uint16_t flags; /* SOCKET_*; 0 (zeroed memory) means never opened */
  struct socket_output *pending;      /* output the kernel did not take yet; NULL when none */
  void *poll_slot;                    /* the poller's per-socket data, if its backend needs any */
  uint64_t bytes_read, bytes_written; /* as net.Socket counts them (written: taken by the kernel) */
} transport_socket;

/* What a read or write did. */
typedef enum socket_status {
  SOCKET_DONE = 0, /* read: bytes arrived; write: everything was written */
  SOCKET_AGAIN,    /* nothing to read now / the kernel's buffer is full (output kept) */
  SOCKET_END,      /* read: the peer sent FIN */
  SOCKET_FAILED,   /* the socket is broken (socket.error says why); the caller closes it */
} socket_status;

#if WSN_HAVE_SOCKET_TRANSPORT

/* A descriptor of our own for fd (close-on-exec, at least 3; fd itself is left to its owner),
 * with Nagle off when no_delay is set. Returns it, or -errno. Reads and writes never block:
 * they pass MSG_DONTWAIT, or, where there is no such flag, the file is made non-blocking. */
int socket_take(int fd, bool no_delay);

/* Starts owning fd (from socket_take). */
void socket_open(transport_socket *s, int fd);

/* Reads at most cap bytes into buf; *n is how many on SOCKET_DONE. EOF sets SOCKET_EOF. */
socket_status socket_read(transport_socket *s, uint8_t *buf, size_t cap, size_t *n);

/* Writes pieces[0..count) in order with as few system calls as the kernel allows; what it
 * does not take is kept (in order) as pending output. Behind output already pending, it is
 * all kept. The pieces may be modified. SOCKET_FAILED when the socket broke or memory for
 * the rest ran out (socket.error says which). */
socket_status socket_write(transport_socket *s, struct iovec *pieces, size_t count);

/* Writes pending output: SOCKET_DONE once none is left (its memory is freed), SOCKET_AGAIN
 * while some is, SOCKET_FAILED. */
socket_status socket_write_pending(transport_socket *s);

/* The events the socket should be polled for now: reading unless paused or at EOF, writing
 * while output is pending. */
unsigned socket_wanted(const transport_socket *s);

/* Sends FIN now (once). Returns true when both directions are then done, so nothing more can
 * happen on the socket and the caller should close it. */
bool socket_shutdown_write(transport_socket *s);

/* Closes the descriptor and frees pending output. With reset, the close sends RST instead of
 * FIN (net.Socket's resetAndDestroy()). The caller removes it from its poller first. */
void socket_close(transport_socket *s, bool reset);

/* Records err as why the socket ended (the first reason counts). */
static inline void socket_set_error(transport_socket *s, int err) {
  if (s->error == 0) s->error = (uint8_t)(err > 0 && err < 256 ? err : EIO);
}

/* Socket options, as net.Socket has them. Each returns 0 or an errno value. idle_seconds 0
 * leaves the system's keep-alive idle time as it is. */
int socket_set_no_delay(transport_socket *s, bool on);
int socket_set_keep_alive(transport_socket *s, bool on, unsigned idle_seconds);

/* The peer's and our own address (false once the peer is gone). */
bool socket_addresses(const transport_socket *s, struct sockaddr_storage *peer,
                      struct sockaddr_storage *local);

/* Output the kernel did not take yet: data[off, len). Allocated on the first short write and
 * freed once written. */
typedef struct socket_output {
  size_t off, len, cap;
  uint8_t data[];
} socket_output;

/* Bytes of pending output. */
static inline size_t socket_pending_size(const transport_socket *s) {
  return s->pending ? s->pending->len - s->pending->off : 0;
}

#endif /* WSN_HAVE_SOCKET_TRANSPORT */

#endif
