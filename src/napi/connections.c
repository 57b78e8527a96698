/* The connections of an environment (the main thread or a worker): the table that JS handles
 * index, the interned engine configurations, the zlib streams connections share, and
 * createConnection()/release(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "napi/addon.h"
#include "napi/register.h"

/* Connections are named in JS by a number, not an object: an index into this environment's
 * table of connections plus a generation that changes each time the slot is freed. A handle
 * costs JS nothing (it is a small integer), there is no finalizer per connection, and a
 * handle used after release() (its slot freed, perhaps reused) resolves to a connection that
 * behaves as released instead of to freed or foreign memory. Connections are freed by
 * release() (JS calls it once the transport closed), or when a thread-pool job still using one
 * ends, or with the environment. */
#define HANDLE_GENERATION_MASK ((1u << (31 - HANDLE_INDEX_BITS)) - 1)
#define NO_SLOT UINT32_MAX

/* Compressed messages this big are inflated in the thread pool. DEFLATE expands at most about
 * 1032:1, so below it a message inflates to at most ~16 MiB, ~16 ms at the ~1 GB/s measured
 * here; above it a peer could make one message stall every connection for up to maxPayload's
 * worth of inflating (100 ms per 100 MiB). */
#define ASYNC_INFLATE_MIN (16 * 1024)

typedef struct connection_slot {
  connection *c;       /* NULL when free */
  uint32_t generation; /* of the handle given out for this slot */
  uint32_t next_free;
} connection_slot;

/* A connection configuration and how many connections use it. The connections of a server
 * (or clients made with the same options) have equal configurations, so they share one. */
typedef struct shared_config {
  conn_config config;
  uint32_t users;
  struct shared_config *next;
} shared_config;

/* The zlib streams shared by every connection that takes over no context in that direction,
 * one per configuration. */
#define SHARED_STREAMS 32

typedef struct addon_state {
  pmd_stream *streams[SHARED_STREAMS];
  size_t stream_count;
  shared_config *configs;
  connection_slot *slots;
  uint32_t slot_count, slot_cap;
  uint32_t free_head, free_tail; /* freed slots, reused oldest first */
  connection released;           /* what a stale handle resolves to */
} addon_state;

static addon_state *state_of_env(napi_env env) {
  addon_state *state = NULL;
  napi_get_instance_data(env, (void **)&state);
  return state;
}

/* A connection is freed with its socket open only with its environment, whose native
 * transport has let go of every socket by then (its teardown runs first): closing the
 * descriptor is all that is left. */
static void connection_free(connection *c) {
#if WSN_HAVE_SOCKET_TRANSPORT
  socket_close(&c->socket, false);
#endif
  conn_release(&c->engine);
  free(c);
}

static void addon_state_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  addon_state *state = data;
  for (size_t i = 0; i < state->stream_count; i++) {
    pmd_stream_end(state->streams[i]);
    free(state->streams[i]);
  }
  for (uint32_t i = 0; i < state->slot_count; i++)
    if (state->slots[i].c) connection_free(state->slots[i].c);
  free(state->slots);
  while (state->configs) {
    shared_config *next = state->configs->next;
    free(state->configs);
    state->configs = next;
  }
  free(state);
}

/* A slot for c; its handle in *handle. False when memory or handle space runs out. */
static bool slot_take(addon_state *state, connection *c, uint32_t *handle) {
  uint32_t index;
  if (state->free_head != NO_SLOT) {
    index = state->free_head;
    state->free_head = state->slots[index].next_free;
    if (state->free_head == NO_SLOT) state->free_tail = NO_SLOT;
  } else {
    if (state->slot_count == (1u << HANDLE_INDEX_BITS)) return false;
    if (state->slot_count == state->slot_cap) {
      uint32_t cap = state->slot_cap ? state->slot_cap * 2 : 1024;
      connection_slot *grown = realloc(state->slots, cap * sizeof(*grown));
      if (!grown) return false;
      state->slots = grown;
      state->slot_cap = cap;
    }
    index = state->slot_count++;
    state->slots[index].generation = 0;
  }
  state->slots[index].c = c;
  state->slots[index].next_free = NO_SLOT;
  c->handle = index | (state->slots[index].generation << HANDLE_INDEX_BITS);
  *handle = c->handle;
  return true;
}

/* The shared copy of config (whose padding must be zeroed: it is compared bytewise), one
 * more user counted; NULL when memory runs out. */
static const conn_config *config_acquire(addon_state *state, const conn_config *config) {
  shared_config *s;
  for (s = state->configs; s; s = s->next)
    if (memcmp(&s->config, config, sizeof(*config)) == 0) break;
  if (!s) {
    if (!(s = malloc(sizeof(*s)))) return NULL;
    s->config = *config;
    s->users = 0;
    s->next = state->configs;
    state->configs = s;
  }
  s->users++;
  return &s->config;
}

/* One user fewer; the last one frees it. */
static void config_release(addon_state *state, const conn_config *config) {
  for (shared_config **at = &state->configs; *at; at = &(*at)->next) {
    shared_config *s = *at;
    if (&s->config != config) continue;
    if (--s->users == 0) {
      *at = s->next;
      free(s);
    }
    return;
  }
}

/* Frees c and its slot; handles to it now resolve to the released placeholder. */
static void connection_destroy(addon_state *state, connection *c) {
  const conn_config *config = c->engine.config;
  uint32_t index = c->handle & HANDLE_INDEX_MASK;
  connection_slot *slot = &state->slots[index];
  slot->c = NULL;
  slot->generation = (slot->generation + 1) & HANDLE_GENERATION_MASK;
  slot->next_free = NO_SLOT;
  if (state->free_tail == NO_SLOT) state->free_head = index;
  else
    state->slots[state->free_tail].next_free = index;
  state->free_tail = index;
  connection_free(c);
  config_release(state, config);
}

/* The shared stream for this direction and configuration, made on first use. Any inflater
 * with a window at least as large as the peer's decodes its messages, so one (15 bits) serves
 * every inflating connection; deflaters must match the negotiated window and options. NULL
 * when there is none (each connection then uses its own). */
static pmd_stream *shared_stream(addon_state *state, bool deflating, int window_bits, int level,
                                 int mem_level) {
  if (!deflating) window_bits = 15;
  for (size_t i = 0; i < state->stream_count; i++) {
    pmd_stream *s = state->streams[i];
    if (s->deflating == deflating && s->window_bits == window_bits &&
        (!deflating || (s->level == level && s->mem_level == mem_level)))
      return s;
  }
  if (state->stream_count == SHARED_STREAMS) return NULL;
  pmd_stream *s = malloc(sizeof(*s));
  if (!s) return NULL;
  if (deflating) pmd_deflater_init(s, window_bits, level, mem_level);
  else
    pmd_inflater_init(s, window_bits);
  state->streams[state->stream_count++] = s;
  return s;
}

static connection *connection_of_handle(const addon_state *state, uint32_t handle) {
  uint32_t index = handle & HANDLE_INDEX_MASK;
  uint32_t generation = handle >> HANDLE_INDEX_BITS;
  if (index >= state->slot_count || state->slots[index].c == NULL ||
      state->slots[index].generation != generation)
    return NULL;
  return state->slots[index].c;
}

connection *addon_connection_of_handle(napi_env env, uint32_t handle) {
  addon_state *state = state_of_env(env);
  connection *c = state ? connection_of_handle(state, handle) : NULL;
  return c && !c->released ? c : NULL;
}

connection *addon_connection(napi_env env, napi_value value) {
  double number = -1;
  addon_state *state = state_of_env(env);
  if (napi_get_value_double(env, value, &number) != napi_ok || !(number >= 0) ||
      number >= 2147483648.0 || number != (double)(uint32_t)number || state == NULL) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a ws-native connection handle");
    return NULL;
  }
  connection *c = connection_of_handle(state, (uint32_t)number);
  return c ? c : &state->released;
}

void connection_job_ended(napi_env env, connection *c) {
  c->jobs--;
  if (c->release_pending && c->jobs == 0) connection_destroy(state_of_env(env), c);
}

uint32_t connections_slot_count(napi_env env) {
  addon_state *state = state_of_env(env);
  return state ? state->slot_count : 0;
}

unsigned connections_visit(napi_env env, uint32_t *cursor, uint32_t *round_left, unsigned budget,
                           connection_visit_fn fn, void *arg) {
  addon_state *state = state_of_env(env);
  if (state == NULL) return 0;
  uint32_t i = *cursor;
  unsigned total = 0;
  for (; *round_left > 0 && total < budget; (*round_left)--) {
    if (i >= state->slot_count) i = 0;
    connection *c = state->slots[i++].c;
    if (c != NULL && !c->released) total += fn(c, arg);
  }
  *cursor = i;
  return total;
}

/* ---- functions for JS ---- */

/* A number property of the negotiated parameters, within [lo, hi]; false with a TypeError. */
static bool get_int_property(napi_env env, napi_value object, const char *name, int32_t lo,
                             int32_t hi, int32_t *out) {
  napi_value v;
  napi_valuetype type = napi_undefined;
  double d = 0;
  if (napi_get_named_property(env, object, name, &v) != napi_ok ||
      napi_typeof(env, v, &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, v, &d) != napi_ok || !(d >= lo && d <= hi)) {
    char message[96];
    snprintf(message, sizeof(message), "deflate.%s must be a number from %d to %d", name, lo, hi);
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  *out = (int32_t)d;
  return true;
}

static bool get_bool_property(napi_env env, napi_value object, const char *name) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, object, name, &v) == napi_ok) napi_get_value_bool(env, v, &b);
  return b;
}

/* Fills config's permessage-deflate part from the negotiated parameters JS passes (all of
 * them: the defaults are JS's, lib/permessage-deflate.js). False with an exception. */
static bool read_deflate_params(napi_env env, addon_state *state, napi_value d,
                                conn_config *config) {
  int32_t inflate_bits, deflate_bits, level, mem_level, limit, idle;
  if (!get_int_property(env, d, "inflateWindowBits", 8, 15, &inflate_bits) ||
      !get_int_property(env, d, "deflateWindowBits", 9, 15, &deflate_bits) ||
      !get_int_property(env, d, "level", -1, 9, &level) ||
      !get_int_property(env, d, "memLevel", 1, 9, &mem_level) ||
      !get_int_property(env, d, "threshold", 0, INT32_MAX, &limit) ||
      !get_int_property(env, d, "idleTimeout", 0, INT32_MAX, &idle))
    return false;
  config->deflate = true;
  config->inflate_window_bits = inflate_bits;
  config->inflate_reset = get_bool_property(env, d, "inflateReset");
  config->deflate_window_bits = deflate_bits;
  config->deflate_reset = get_bool_property(env, d, "deflateReset");
  config->deflate_level = level;
  config->deflate_mem_level = mem_level;
  config->zlib_idle_ms = (uint32_t)idle;
  config->async_inflate_min = ASYNC_INFLATE_MIN;
  if (config->inflate_reset) config->shared_inflater = shared_stream(state, false, 15, 0, 0);
  if (config->deflate_reset)
    config->shared_deflater = shared_stream(state, true, deflate_bits, level, mem_level);
  config->deflate_threshold = (uint32_t)limit;
  return true;
}

/* createConnection(isServer, maxPayload, skipUTF8Validation, autoPong, maxFragments, deflate)
 * deflate: undefined, or the negotiated permessage-deflate parameters { inflateWindowBits,
 * inflateReset, deflateWindowBits, deflateReset, level, memLevel, threshold, idleTimeout }. */
static napi_value create_connection(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  if (argc < 4) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "4 arguments expected");
  addon_state *state = state_of_env(env);
  if (state == NULL) return throw_error(env, "WS_ERR_NATIVE", "cannot create a connection");
  conn_config config;
  memset(&config, 0, sizeof(config)); /* padding too: configs are compared bytewise */
  config.is_server = get_bool(env, argv[0]);
  double max_payload = 0;
  if (napi_get_value_double(env, argv[1], &max_payload) != napi_ok || !(max_payload >= 0))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "maxPayload must be a number >= 0");
  config.max_payload = max_payload >= 9007199254740991.0 ? 0 : (uint64_t)max_payload;
  config.skip_utf8_validation = get_bool(env, argv[2]);
  config.auto_pong = get_bool(env, argv[3]);
  double max_fragments = 0;
  if (argc >= 5) napi_get_value_double(env, argv[4], &max_fragments);
  config.max_fragments = max_fragments >= 1 && max_fragments < 4294967295.0
                             ? (uint32_t)max_fragments
                             : 0;

  napi_valuetype deflate_type = napi_undefined;
  if (argc >= 6) napi_typeof(env, argv[5], &deflate_type);
  if (deflate_type == napi_object && !read_deflate_params(env, state, argv[5], &config))
    return NULL;

  const conn_config *shared = config_acquire(state, &config);
  connection *c = shared ? calloc(1, sizeof(*c)) : NULL;
  if (!c) {
    if (shared) config_release(state, shared);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  conn_init(&c->engine, shared);
  uint32_t id;
  if (!slot_take(state, c, &id)) {
    conn_release(&c->engine);
    free(c);
    config_release(state, shared);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "cannot create a connection");
  }
  napi_value handle;
  if (napi_create_uint32(env, id, &handle) != napi_ok) {
    connection_destroy(state, c);
    return throw_error(env, "WS_ERR_NATIVE", "cannot create a connection");
  }
  return handle;
}

/* release(handle): frees the connection; the handle then names a released one. Its socket, if
 * the native transport opened one, must be closed first. */
static napi_value release_connection(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  GET_CONNECTION(c);
  /* (Also what a stale handle resolves to: the released placeholder.) */
  if (c->released) return make_undefined(env);
  if (c->socket.flags & SOCKET_OPEN)
    return throw_error(env, "WS_ERR_NATIVE", "release(): the connection's socket is still open");
  c->released = true;
  /* A thread-pool job may be using this connection: free it when the job ends. */
  if (c->jobs > 0) c->release_pending = true;
  else
    connection_destroy(state_of_env(env), c);
  return make_undefined(env);
}

bool connections_register(napi_env env, napi_value exports, napi_value constants) {
  (void)constants;
  addon_state *state = calloc(1, sizeof(*state));
  if (state) {
    state->free_head = state->free_tail = NO_SLOT;
    /* The placeholder is a real (empty) connection, so code reading it finds a config. */
    static const conn_config released_config = {.is_server = true};
    conn_init(&state->released.engine, &released_config);
    state->released.released = true;
  }
  if (!state || napi_set_instance_data(env, state, addon_state_free, NULL) != napi_ok) {
    free(state);
    napi_throw_error(env, "WS_ERR_NATIVE", "ws-native: cannot set up the addon");
    return false;
  }
  napi_property_descriptor props[] = {
      {"createConnection", NULL, create_connection, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, release_connection, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok;
}
