/* The native transport's per-environment state, shared by its two glue files:
 * native_transport.c (set-up, teardown and the functions JS calls on a connection's socket)
 * and native_receive.c (the receive path: the poller's events, reads, the engine, and the
 * batch of events JS is handed once per turn). */
#ifndef WSN_NAPI_NATIVE_TRANSPORT_H
#define WSN_NAPI_NATIVE_TRANSPORT_H

#include "napi/addon.h"
#include "napi/receive.h"
#include "transport/poller.h"

#if WSN_HAVE_SOCKET_TRANSPORT

#include <uv.h>

/* The batch table JS reads (a Uint32Array it made): a header, then per event BATCH_STRIDE
 * words -- the connection's slot index, then the EVENT_WORDS of receive.h. Payloads in place
 * are offsets into the read buffer, all within [span_start, span_end), which JS copies once. */
enum {
  BATCH_COUNT = 0,      /* events in the table */
  BATCH_SPAN_START = 1, /* payloads in place lie within [start, end) of the read buffer */
  BATCH_SPAN_END = 2,
  BATCH_IN_PLACE = 3, /* bytes of those payloads (JS copies them one by one when sparse) */
  /* 1 when nothing more is read into the read buffer before the next batch starts over: JS
   * may then keep the payloads in place as views (large ones: no copy) and hand C a fresh
   * buffer with transportReadBuffer(). 0 in a batch dispatched mid-read (a full table, work
   * deferred), where C still parses the rest of that read where it landed. */
  BATCH_HANDOFF = 4,
  BATCH_HEADER = 5,
  BATCH_STRIDE = 1 + EVENT_WORDS,
};

/* What the transport adds to the engine's event kinds (receive.h). */
enum {
  EV_REST = 16,  /* a: offset, b: bytes of a read the engine could not take (it is inflating
                    a message); the socket is paused until JS has parsed them */
  EV_END = 17,   /* the peer sent FIN */
  EV_DRAIN = 18, /* output the kernel had refused is written */
  EV_CLOSE = 19, /* the socket closed; code: the errno that ended it, or 0 */
  EV_DATA = 21,  /* a: offset, b: bytes of a read, as it came (SOCKET_OBSERVED), before its
                    events */
};

/* The native listener's events in the batch table: a: objects index of the request (and,
 * when code is 1, of the bytes that came after its head, at a + 1); b: the handshake's token,
 * for handshakeAccept() and the other handshake functions; row[0]: the listener's id. */
enum { EV_HANDSHAKE = 20 };

/* Poller tokens: a connection's handle, or with this bit one of the native listener's. */
#define TOKEN_LISTENER_PART (1u << 31)

/* A SOCKET_* bit left to the socket's owner: the connection had events in this batch, so its
 * replies are written when JS has handled them (transportFlushBatch). */
#define SOCKET_TOUCHED 128

struct listener_state;

typedef struct transport_state {
  napi_env env;
  uv_loop_t *loop; /* the environment's (Node's) event loop */
  /* Every read of the thread goes here, one after the other within a batch: a Buffer JS made
   * (transportInit()), whose payloads JS copies out before the next batch. */
  uint8_t *read_buffer;
  size_t read_buffer_size;
  size_t read_used;        /* bytes of it the current batch's reads took */
  uint32_t *table;         /* the batch table (BATCH_*) */
  uint32_t table_capacity; /* events it holds */
  napi_ref read_buffer_ref, table_ref, objects_ref;
  napi_ref dispatch; /* dispatchBatch(), set by transportInit() */
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup;
  event_sink sink;  /* objects: valid within the handle scope of one batch */
  bool in_batch;    /* a handle scope is open and sink.objects is set */
  bool dispatching; /* JS is handling the table: nothing is added to it meanwhile */
  /* Connections with events in this batch (SOCKET_TOUCHED), whose replies JS leaves to
   * transportFlushBatch(). */
  uint32_t *touched;
  size_t touched_len, touched_cap;
  poller *poller;        /* NULL before transportInit() */
  bool epoll;            /* the poller is the epoll backend, watched through epoll_watch */
  uv_poll_t epoll_watch; /* Node's loop watching the epoll fd, from the first socket on */
  uv_check_t batch_end;  /* the uv poller: ends a batch after libuv's poll phase */
  uv_idle_t report;      /* active while closes wait to be told to JS */
  /* Handles of connections whose close JS was not told yet. transportOpen() makes room for
   * its socket's close here, so that closing never allocates (and cannot fail to tell JS). */
  uint32_t *closed;
  size_t closed_len, closed_cap;
  size_t open_count;                /* sockets open */
  size_t ref_count;                 /* sockets open that keep the loop alive (not unref()'d) */
  struct listener_state *listening; /* the native listener's state, made on first use */
  uv_timer_t handshake_sweep;       /* active while the native listener has handshakes under way */
  int handles_closing;              /* at teardown: libuv handles whose close callback is to come */
  bool tearing_down;                /* the environment is going away: JS is not called any more */
} transport_state;

/* native_listener.c */
void listener_on_event(transport_state *s, uint32_t token, unsigned events);
/* At teardown: closes every listening socket and unfinished handshake (before the poller
 * goes) and frees the listener's state. */
void listener_teardown(transport_state *s);
bool native_listener_register(transport_state *s, napi_env env, napi_value exports);

/* native_receive.c */
void transport_on_poller_event(void *ctx, uint32_t token, unsigned events, bool more);
void transport_on_epoll_readable(uv_poll_t *handle, int status, int events);
void transport_on_batch_end(uv_check_t *check);
void transport_report_closes(uv_idle_t *idle);
/* Makes room in `touched` for every open socket (transportOpen calls it). */
bool transport_reserve_touched(transport_state *s);
/* A handshake's row (EV_HANDSHAKE) with its request and head (NULL: none) as objects. */
void transport_batch_handshake(transport_state *s, uint32_t listener, uint32_t token,
                               napi_value request, napi_value head);
/* Whether the handle scope of a batch is open (the listener makes its objects in it). */
static inline bool transport_in_batch(const transport_state *s) { return s->in_batch; }
napi_value transport_flush_batch(napi_env env, napi_callback_info info);

/* native_transport.c */
/* A socket of the transport (a connection's, a listener's, a handshake's) starts or stops
 * being polled: Node's loop is kept alive while any referenced one is. */
void transport_socket_opened(transport_state *s, bool referenced);
void transport_socket_closed(transport_state *s, bool referenced);
/* Makes room to report one more connection's close (transport_close never allocates). */
bool transport_reserve_close(transport_state *s);
/* A socket already open (a handshake's) becomes c's: polled under its handle from now on. */
int transport_adopt_socket(transport_state *s, connection *c, const transport_socket *from);
void transport_close(transport_state *s, connection *c, bool reset);
void transport_update_poll(transport_state *s, connection *c);
void transport_shut_write(transport_state *s, connection *c);
/* Writes the engine's queued output (after pieces[0..count)) and empties that queue. */
void transport_write_output(transport_state *s, connection *c, struct iovec *pieces, size_t count);
/* Writes what c's engine has queued, if its socket is open and not ending (then the queue is
 * dropped: nothing may follow the FIN); returns the bytes the socket then has pending, or -1
 * when it is closed or ending. */
int64_t transport_flush_output(transport_state *s, connection *c);
/* transportFlushEach()'s mark for a connection whose socket is closed or ending. */
#define FLUSH_CLOSED UINT32_MAX

#endif

#endif
