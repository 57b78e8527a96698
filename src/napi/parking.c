/* Idle zlib streams parked (their state freed, an inflater's window kept): parkIdleStreams(),
 * which lib/permessage-deflate.js's timer calls, and zlibState() for the tests. */
#include <stdlib.h> /* (first: it defines __GLIBC__ where glibc is the C library) */
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

#include "napi/addon.h"
#include "napi/register.h"

#define PARK_BUDGET 256 /* streams parked per call: a few ms */

/* Where a round of parkIdleStreams is: the slot it visits next and how many are left (one per
 * environment: each registers its own). */
typedef struct park_round {
  uint32_t cursor;
  uint32_t left;
} park_round;

static unsigned park_connection(connection *c, void *arg) {
  uint64_t period_ms = *(const uint64_t *)arg;
  uint32_t idle_ms = conn_zlib_idle_ms(&c->engine);
  /* (Skipped while a thread-pool job may be using one of its streams.) */
  if (c->jobs > 0 || idle_ms == 0) return 0;
  uint64_t periods = (idle_ms + period_ms - 1) / period_ms;
  return conn_park_idle_streams(&c->engine, periods > UINT16_MAX ? UINT16_MAX : (unsigned)periods);
}

/* parkIdleStreams(periodMs, resume) -> whether it stopped early. Called every periodMs while
 * connections with an idle timeout for their zlib streams are open: counts one more idle
 * period for each connection's streams and parks those idle for at least their timeout.
 * Parking thousands at once (a burst of connections going quiet together) would stall the
 * loop for tens of ms, mostly the kernel taking back their pages, so a call parks at most
 * PARK_BUDGET streams and returns true; the caller then resumes the round soon after
 * (resume = true), letting I/O run in between. */
static napi_value park_idle_streams(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  park_round *round = NULL;
  napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&round);
  double period = 0;
  napi_get_value_double(env, argv[0], &period);
  if (round == NULL || !(period >= 1 && period <= UINT32_MAX)) return make_undefined(env);
  uint64_t period_ms = (uint64_t)period;
  if (!get_bool(env, argv[1])) round->left = connections_slot_count(env); /* a new round */
  unsigned parked = connections_visit(env, &round->cursor, &round->left, PARK_BUDGET,
                                      park_connection, &period_ms);
#ifdef __GLIBC__
  /* zlib's state is blocks of 5 to 64 KiB from the heap: freed between live blocks, they stay
   * in the process (resident) until reused. This gives their pages back to the system. */
  if (parked > 0) malloc_trim(0);
#else
  (void)parked;
#endif
  return make_bool(env, round->left > 0);
}

/* zlibState(handle) -> which of its own zlib streams hold state, for tests: 1 the inflater's
 * zlib state, 2 a parked inflater's window, 4 the deflater's zlib state. */
static napi_value zlib_state(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  GET_CONNECTION(c);
  return make_uint(env, conn_zlib_state(&c->engine));
}

static void free_round(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

bool parking_register(napi_env env, napi_value exports, napi_value constants) {
  (void)constants;
  park_round *round = calloc(1, sizeof(*round));
  if (!round) {
    napi_throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    return false;
  }
  napi_property_descriptor props[] = {
      {"parkIdleStreams", NULL, park_idle_streams, NULL, NULL, NULL, napi_default, round},
      {"zlibState", NULL, zlib_state, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) {
    free(round);
    return false;
  }
  /* Freed with the exports object (the environment's). */
  return napi_add_finalizer(env, exports, round, free_round, NULL, NULL) == napi_ok;
}
