/* The per-connection part of the native transport (native_transport.c), kept inside each
 * connection so that an idle connection's socket costs these 16 bytes and nothing else in
 * this process: no libuv handle, no allocation. */
#ifndef WS_NATIVE_NATIVE_TRANSPORT_H
#define WS_NATIVE_NATIVE_TRANSPORT_H

#include <stdint.h>

struct pending_output;

typedef struct native_transport {
  int fd;          /* the socket (ours, a dup of Node's); meaningful while T_OPEN is set */
  uint16_t error;  /* errno that ended the connection, or 0 (16 bits: 8 bytes less in all) */
  uint8_t events;  /* the epoll mask registered for it (EPOLLIN/EPOLLOUT); 0: not registered */
  uint8_t flags;   /* T_* in native_transport.c; 0 (calloc) means never opened */
  struct pending_output *pending; /* output the kernel did not take yet; NULL when none */
} native_transport;

#endif
