/* The portable backend of the poller (transport/poller.h): a uv_poll_t per socket on Node's
 * own loop, which is kqueue on macOS and the BSDs and epoll on Linux. In src/napi/ because
 * libuv is Node's. */
#ifndef WSN_NAPI_POLLER_UV_H
#define WSN_NAPI_POLLER_UV_H

#include "transport/poller.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <uv.h>

/* NULL when memory runs out. */
poller *poller_uv_create(uv_loop_t *loop, poller_event_fn fn, void *ctx);

/* Lets go of every socket (their handles are closed; the sockets stay open, to be closed by
 * their owners) and frees the poller once libuv has closed them all, then calls done(arg),
 * perhaps before returning. */
void poller_uv_shutdown(poller *p, void (*done)(void *arg), void *arg);

#endif

#endif
