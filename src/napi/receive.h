/* The event table: how the engine's events (conn_feed) reach JavaScript. Each event is four
 * words -- kind | EV_FLAG_*, a, b, code -- where the payload is chunk[a, a + b) or, with
 * EV_FLAG_OBJECT, objects[a] (a Buffer made here). Used by feed() (receive.c) and by the
 * native transport's receive path. */
#ifndef WSN_NAPI_RECEIVE_H
#define WSN_NAPI_RECEIVE_H

#include "napi/addon.h"

#define EV_FLAG_BINARY 0x100
#define EV_FLAG_OBJECT 0x200
#define EV_FLAG_FRAGMENTS 0x400 /* objects[a + 1] is an array of fragment end offsets */
#define EVENT_WORDS 4

/* State flags JS reads after a feed: the engine's CONN_CLOSE_* bits, and this one. */
#define STATE_CALL_AGAIN 8 /* deferred work waits: call feed again even with no input left */

typedef struct event_sink {
  napi_env env;
  const uint8_t *chunk; /* payloads within it are given as offsets */
  size_t chunk_len;
  napi_value objects; /* a JS array: Buffers made for payloads outside the chunk */
  uint32_t object_count;
  bool failed; /* a Node-API call failed (an exception may be pending) */
} event_sink;

/* Encodes ev into words[0..EVENT_WORDS); false when a Buffer for its payload could not be
 * made (sink->failed is set then). */
bool event_encode(event_sink *sink, const conn_event *ev, uint32_t *words);

/* The state word: CONN_CLOSE_* | STATE_CALL_AGAIN. */
uint32_t event_state_flags(const conn *e);

#endif
