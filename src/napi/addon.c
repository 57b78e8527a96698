/* The Node-API glue: argument checks, wrapping a conn in a JS external, and translating the
 * engine's events into a table that JavaScript reads after one native call per socket chunk. */
#include <node_api.h>
#include <stdint.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif
#include <stdlib.h>
#include <string.h>

#include "codec/accept.h"
#include "codec/close_code.h"
#include "codec/utf8.h"
#include "engine/conn.h"
#include "napi/register.h"
#include "napi/addon.h"

/* Event table layout (a Uint32Array owned by JS):
 *   [0] events written, [1] input offset reached, [2] state flags, [3] queued output bytes
 *   then per event 4 words: kind | EV_FLAG_*, a, b, code
 *   where the payload is chunk[a, a + b) or, with EV_FLAG_OBJECT, objects[a]. */
#define TABLE_HEADER 4
#define TABLE_STRIDE 4
#define EV_FLAG_BINARY 0x100
#define EV_FLAG_OBJECT 0x200
#define EV_FLAG_FRAGMENTS 0x400 /* objects[a + 1] is an array of fragment end offsets */

#define STATE_CLOSE_SENT 1
#define STATE_CLOSE_RECEIVED 2
#define STATE_FAILED 4
#define STATE_CALL_AGAIN 8 /* deferred work waits: call feed again even with no input left */

/* Below this size a received message is copied into a V8-managed buffer; above it, the
 * engine's malloc'd buffer is handed over as is (an external buffer costs more to create
 * and to collect than a small copy). */
#define EXTERNAL_BUFFER_MIN 4096

/* Output at or above this size is handed to JS without a copy; smaller output is copied so
 * the connection keeps (and reuses) its small buffer. */

#define MAX_CLOSE_REASON 123

/* Compressed messages this big are inflated in the thread pool. DEFLATE expands at most about
 * 1032:1, so below it a message inflates to at most ~16 MiB, ~16 ms at the ~1 GB/s measured
 * here; above it a peer could make one message stall every connection for up to maxPayload's
 * worth of inflating (100 ms per 100 MiB). */
#define ASYNC_INFLATE_MIN (16 * 1024)


/* Connections are named in JS by a number, not an object: an index into this environment's
 * table of connections plus a generation that changes each time the slot is freed. A handle
 * costs JS nothing (it is a small integer), there is no finalizer per connection, and a
 * handle used after release() (its slot freed, perhaps reused) resolves to a connection that
 * behaves as released instead of to freed or foreign memory. Connections are freed by
 * release() (JS calls it when the transport closes), or when a thread-pool job still using one
 * ends, or with the environment. */
#define HANDLE_GENERATION_MASK ((1u << (31 - HANDLE_INDEX_BITS)) - 1)
#define NO_SLOT UINT32_MAX

typedef struct connection_slot {
  connection *c;       /* NULL when free */
  uint32_t generation; /* of the handle given out for this slot */
  uint32_t next_free;
} connection_slot;

/* Per-environment state (a worker thread has its own): the connection table, and the zlib
 * streams shared by every connection that takes over no context in that direction, one per
 * configuration. */
#define SHARED_STREAMS 32
/* A connection configuration and how many connections use it. The connections of a server
 * (or clients made with the same options) have equal configurations, so they share one. */
typedef struct shared_config {
  conn_config config;
  uint32_t users;
  struct shared_config *next;
} shared_config;

typedef struct addon_state {
  pmd_stream *streams[SHARED_STREAMS];
  shared_config *configs;
  size_t count;
  connection_slot *slots;
  uint32_t slot_count, slot_cap;
  uint32_t free_head, free_tail; /* freed slots, reused oldest first */
  connection released;           /* what a stale handle resolves to */
  uint32_t park_cursor;          /* the slot parkIdleStreams visits next */
  uint32_t park_left;            /* slots left to visit in its round */
} addon_state;

#define PARK_BUDGET 256 /* streams parked per call: a few ms */

static void connection_free(connection *c) {
  native_transport_detach(c); /* (only ever open here at an environment's teardown) */
  conn_release(&c->engine);
  free(c);
}

static void addon_state_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  addon_state *state = data;
  for (size_t i = 0; i < state->count; i++) {
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

static addon_state *state_of_env(napi_env env) {
  addon_state *state = NULL;
  napi_get_instance_data(env, (void **)&state);
  return state;
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
  else state->slots[state->free_tail].next_free = index;
  state->free_tail = index;
  connection_free(c);
  config_release(state, config);
}

/* The shared stream for this direction and configuration, made on first use. Any inflater
 * with a window at least as large as the peer's decodes its messages, so one (15 bits) serves
 * every inflating connection; deflaters must match the negotiated window and options. */
static pmd_stream *shared_stream(napi_env env, bool deflating, int window_bits, int level,
                                 int mem_level) {
  addon_state *state = state_of_env(env);
  if (state == NULL) return NULL;
  if (!deflating) window_bits = 15;
  for (size_t i = 0; i < state->count; i++) {
    pmd_stream *s = state->streams[i];
    if (s->deflating == deflating && s->window_bits == window_bits &&
        (!deflating || (s->level == level && s->mem_level == mem_level)))
      return s;
  }
  if (state->count == SHARED_STREAMS) return NULL; /* each connection uses its own then */
  pmd_stream *s = malloc(sizeof(*s));
  if (!s) return NULL;
  if (deflating) pmd_deflater_init(s, window_bits, level, mem_level);
  else pmd_inflater_init(s, window_bits);
  state->streams[state->count++] = s;
  return s;
}

/* ---- helpers ---- */

#define GET_ARGS(n)                                                            \
  size_t argc = n;                                                             \
  napi_value argv[n];                                                          \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)         \
    return throw_error(env, "WS_ERR_NATIVE", "cannot read arguments");

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

static bool get_bool(napi_env env, napi_value value) {
  bool b = false;
  napi_get_value_bool(env, value, &b);
  return b;
}

/* Bytes of any binary view: Buffer/TypedArray, DataView or ArrayBuffer. */
static bool get_bytes(napi_env env, napi_value value, const uint8_t **data, size_t *len) {
  bool is;
  void *ptr = NULL;
  if (napi_is_typedarray(env, value, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length;
    if (napi_get_typedarray_info(env, value, &type, &length, &ptr, NULL, NULL) != napi_ok)
      return false;
    static const size_t element_size[] = {
        [napi_int8_array] = 1,    [napi_uint8_array] = 1,         [napi_uint8_clamped_array] = 1,
        [napi_int16_array] = 2,   [napi_uint16_array] = 2,        [napi_int32_array] = 4,
        [napi_uint32_array] = 4,  [napi_float32_array] = 4,       [napi_float64_array] = 8,
        [napi_bigint64_array] = 8, [napi_biguint64_array] = 8};
    size_t size = (size_t)type < sizeof(element_size) / sizeof(element_size[0])
                      ? element_size[type] : 1;
    *data = ptr;
    *len = length * size;
    return true;
  }
  if (napi_is_dataview(env, value, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, value, len, &ptr, NULL, NULL) != napi_ok) return false;
    *data = ptr;
    return true;
  }
  if (napi_is_arraybuffer(env, value, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, value, &ptr, len) != napi_ok) return false;
    *data = ptr;
    return true;
  }
  return false;
}

/* A JS string's UTF-8 bytes in a new malloc'd buffer (NUL-terminated; *len excludes it), or
 * NULL when memory runs out. */
static uint8_t *string_utf8_copy(napi_env env, napi_value value, size_t *len) {
  napi_get_value_string_utf8(env, value, NULL, 0, len);
  char *copy = malloc(*len + 1);
  if (copy) napi_get_value_string_utf8(env, value, copy, *len + 1, len);
  return (uint8_t *)copy;
}

static void free_finalizer(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* Makes a Buffer of a malloc'd block, taking ownership of it in every case. */
static napi_status adopt_buffer(napi_env env, uint8_t *data, size_t len, size_t external_min,
                                napi_value *result) {
  napi_status status = napi_generic_failure;
  if (len >= external_min && data != NULL) {
    status = napi_create_external_buffer(env, len, data, free_finalizer, NULL, result);
    if (status == napi_ok) return napi_ok;
    /* Some runtimes forbid external buffers; fall back to a copy. */
  }
  status = napi_create_buffer_copy(env, len, data, NULL, result);
  free(data);
  return status;
}

/* ---- connection lifetime ---- */

static int32_t get_int_property(napi_env env, napi_value object, const char *name, int32_t dflt) {
  napi_value v;
  int32_t n = dflt;
  napi_valuetype type;
  if (napi_get_named_property(env, object, name, &v) == napi_ok &&
      napi_typeof(env, v, &type) == napi_ok && type == napi_number)
    napi_get_value_int32(env, v, &n);
  return n;
}

static bool get_bool_property(napi_env env, napi_value object, const char *name) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, object, name, &v) == napi_ok) napi_get_value_bool(env, v, &b);
  return b;
}

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* createConnection(isServer, maxPayload, skipUTF8Validation, autoPong, maxFragments, deflate)
 * deflate: undefined, or the negotiated permessage-deflate parameters { inflateWindowBits,
 * inflateReset, deflateWindowBits, deflateReset, level, memLevel, threshold }. */
static napi_value create_connection(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  if (argc < 4) return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "4 arguments expected");
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
                             ? (uint32_t)max_fragments : 0;

  uint32_t threshold = 0;
  napi_valuetype deflate_type = napi_undefined;
  if (argc >= 6) napi_typeof(env, argv[5], &deflate_type);
  if (deflate_type == napi_object) {
    napi_value d = argv[5];
    config.deflate = true;
    config.inflate_window_bits = clamp_int(get_int_property(env, d, "inflateWindowBits", 15), 8, 15);
    config.inflate_reset = get_bool_property(env, d, "inflateReset");
    config.deflate_window_bits = clamp_int(get_int_property(env, d, "deflateWindowBits", 15), 9, 15);
    config.deflate_reset = get_bool_property(env, d, "deflateReset");
    config.deflate_level = clamp_int(get_int_property(env, d, "level", Z_DEFAULT_COMPRESSION), -1, 9);
    config.deflate_mem_level = clamp_int(get_int_property(env, d, "memLevel", 8), 1, 9);
    threshold = (uint32_t)clamp_int(get_int_property(env, d, "threshold", 1024), 0, INT32_MAX);
    config.zlib_idle_ms = (uint32_t)clamp_int(get_int_property(env, d, "idleTimeout", 0), 0, INT32_MAX);
    if (config.inflate_reset) config.shared_inflater = shared_stream(env, false, 15, 0, 0);
    config.async_inflate_min = ASYNC_INFLATE_MIN;
    if (config.deflate_reset)
      config.shared_deflater = shared_stream(env, true, config.deflate_window_bits,
                                             config.deflate_level, config.deflate_mem_level);
  }

  addon_state *state = state_of_env(env);
  if (state == NULL) return throw_error(env, "WS_ERR_NATIVE", "cannot create a connection");
  const conn_config *shared = config_acquire(state, &config);
  connection *c = shared ? calloc(1, sizeof(*c)) : NULL;
  if (!c) {
    if (shared) config_release(state, shared);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  c->deflate_threshold = threshold;
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

/* release(handle): frees the connection; the handle then names a released one. */
static napi_value release_connection(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  /* (Also what a stale handle resolves to: the released placeholder.) */
  if (c->released) return make_undefined(env);
  c->released = true;
  /* A thread-pool job may be using this connection: free it when the job ends. */
  if (c->jobs > 0) c->release_pending = true;
  else connection_destroy(state_of_env(env), c);
  return make_undefined(env);
}

/* ---- input ---- */

typedef struct feed_ctx {
  napi_env env;
  uint32_t *table;
  uint32_t capacity; /* events the table holds */
  uint32_t count;
  const uint8_t *chunk;
  size_t chunk_len;
  napi_value objects;
  uint32_t object_count;
  bool failed;
} feed_ctx;

static bool store_object(feed_ctx *ctx, napi_value value, uint32_t *index) {
  if (napi_set_element(ctx->env, ctx->objects, ctx->object_count, value) != napi_ok) return false;
  *index = ctx->object_count++;
  return true;
}

static bool on_event(void *opaque, const conn_event *ev) {
  feed_ctx *ctx = opaque;
  uint32_t *slot = ctx->table + TABLE_HEADER + ctx->count * TABLE_STRIDE;
  uint32_t word0 = (uint32_t)ev->kind | (ev->binary ? EV_FLAG_BINARY : 0);
  uint32_t a = 0, b = 0;

  if (ev->kind == CONN_EV_INFLATE) {
    /* no payload: the compressed bytes stay in the engine for inflateAsync() */
  } else if (ev->owned) {
    napi_value buffer;
    if (adopt_buffer(ctx->env, ev->owned, ev->len, EXTERNAL_BUFFER_MIN, &buffer) != napi_ok ||
        !store_object(ctx, buffer, &a)) {
      ctx->failed = true;
      return false;
    }
    word0 |= EV_FLAG_OBJECT;
    if (ev->fragment_count > 1) {
      napi_value ends, end;
      uint32_t ends_index;
      if (napi_create_array_with_length(ctx->env, ev->fragment_count, &ends) != napi_ok) {
        ctx->failed = true;
        return false;
      }
      for (size_t i = 0; i < ev->fragment_count; i++) {
        napi_create_double(ctx->env, (double)ev->fragment_ends[i], &end);
        napi_set_element(ctx->env, ends, (uint32_t)i, end);
      }
      if (!store_object(ctx, ends, &ends_index)) {
        ctx->failed = true;
        return false;
      }
      word0 |= EV_FLAG_FRAGMENTS;
    }
  } else if (ev->len == 0) {
    /* empty payload: offset/length 0 */
  } else if (ev->data >= ctx->chunk && ev->data + ev->len <= ctx->chunk + ctx->chunk_len) {
    a = (uint32_t)(ev->data - ctx->chunk);
    b = (uint32_t)ev->len;
  } else {
    /* Payload kept inside the connection (a control frame split across chunks). */
    napi_value buffer;
    if (napi_create_buffer_copy(ctx->env, ev->len, ev->data, NULL, &buffer) != napi_ok ||
        !store_object(ctx, buffer, &a)) {
      ctx->failed = true;
      return false;
    }
    word0 |= EV_FLAG_OBJECT;
  }
  slot[0] = word0;
  slot[1] = a;
  slot[2] = b;
  slot[3] = (uint32_t)ev->close_code;
  ctx->count++;
  return ctx->count < ctx->capacity;
}

static uint32_t state_flags(const conn *e) {
  return (e->close_sent ? STATE_CLOSE_SENT : 0) | (e->close_received ? STATE_CLOSE_RECEIVED : 0) |
         (e->error != CONN_OK ? STATE_FAILED : 0) | (conn_has_deferred(e) ? STATE_CALL_AGAIN : 0);
}

static void write_table_header(uint32_t *table, uint32_t count, size_t offset, const conn *e) {
  table[0] = count;
  table[1] = (uint32_t)offset;
  table[2] = state_flags(e);
  table[3] = e->out_len > UINT32_MAX ? UINT32_MAX : (uint32_t)e->out_len;
}

/* feed(handle, chunk, offset, table, objects) -> events written.
 * Parses chunk from offset on; stops early only when the table is full (table[1] says where). */
static napi_value feed(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;

  uint8_t *chunk;
  size_t chunk_len;
  bool is_typed = false;
  napi_typedarray_type chunk_type;
  if (napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[1], &chunk_type, &chunk_len, (void **)&chunk, NULL,
                               NULL) != napi_ok ||
      chunk_type != napi_uint8_array)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "chunk must be a Buffer");

  double offset_d = 0;
  napi_get_value_double(env, argv[2], &offset_d);
  size_t offset = offset_d > 0 ? (size_t)offset_d : 0;
  if (offset > chunk_len) offset = chunk_len;
  if (chunk_len > UINT32_MAX)
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "chunk larger than 4 GiB");

  uint32_t *table;
  size_t table_len;
  napi_typedarray_type table_type;
  if (napi_get_typedarray_info(env, argv[3], &table_type, &table_len, (void **)&table, NULL,
                               NULL) != napi_ok ||
      table_type != napi_uint32_array || table_len < TABLE_HEADER + TABLE_STRIDE)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "table must be a Uint32Array");

  feed_ctx ctx = {.env = env,
                  .table = table,
                  .capacity = (uint32_t)((table_len - TABLE_HEADER) / TABLE_STRIDE),
                  .chunk = chunk,
                  .chunk_len = chunk_len,
                  .objects = argv[4]};

  size_t used = 0;
  if (!c->released)
    used = conn_feed(&c->engine, chunk + offset, chunk_len - offset, on_event, &ctx);
  else
    used = chunk_len - offset;
  write_table_header(table, ctx.count, offset + used, &c->engine);
  if (ctx.failed) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) return throw_error(env, "WS_ERR_NATIVE", "cannot deliver a message to JavaScript");
    return NULL;
  }
  return make_uint(env, ctx.count);
}

/* errorInfo(handle) -> [message, code, status] for the failure the last feed reported. */
static napi_value error_info(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  const conn_error_desc *d = conn_error_info(c->engine.error);
  char message[192];
  conn_error_message(c->engine.error, c->engine.error_detail, message, sizeof(message));
  napi_value result, v;
  napi_create_array_with_length(env, 3, &result);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, result, 0, v);
  napi_create_string_utf8(env, d->code, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, result, 1, v);
  napi_create_int32(env, d->status, &v);
  napi_set_element(env, result, 2, v);
  return result;
}

/* ---- output ---- */

/* Whether a message of len bytes goes out compressed. As in ws, the threshold applies only
 * without context takeover: with it, even a short message compresses well against history. */
static bool should_compress(const connection *c, bool requested, bool fin, size_t len) {
  return requested && c->engine.config->deflate && fin && !c->engine.out_fragmenting &&
         (len >= c->deflate_threshold || !c->engine.config->deflate_reset);
}

/* send(handle, data, opcode, fin, compress) -> the payload's size in bytes (a string's UTF-8
 * length, a compressed message's size before compression; 0 once released): what
 * bufferedAmount counts of it, without JavaScript measuring a string again. data: string or
 * binary view. compress: compress it if permessage-deflate was negotiated and it is a whole
 * message of at least the threshold's size. */
static napi_value send_frame(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  int32_t opcode = 0;
  napi_get_value_int32(env, argv[2], &opcode);
  if (opcode != OP_TEXT && opcode != OP_BINARY && opcode != OP_PING && opcode != OP_PONG)
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "invalid opcode");
  bool fin = get_bool(env, argv[3]);
  bool rsv1 = get_bool(env, argv[4]);
  bool control = opcode == OP_PING || opcode == OP_PONG;
  if (control) fin = true;
  if (c->released) return make_uint(env, 0);

  napi_valuetype type;
  napi_typeof(env, argv[1], &type);
  if (type == napi_string) {
    size_t len;
    if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok)
      return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "cannot read string");
    if (control && len > FRAME_MAX_CONTROL)
      return throw_range_error(env, "WS_ERR_CONTROL_PAYLOAD_TOO_LARGE",
                               "The data size must not be greater than 125 bytes");
    if (!control && should_compress(c, rsv1, fin, len)) {
      uint8_t *text = string_utf8_copy(env, argv[1], &len);
      if (!text) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
      bool ok = conn_send_compressed(&c->engine, (uint8_t)opcode, text, len);
      free(text);
      if (!ok) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
      return make_uint(env, len);
    }
    rsv1 = false;
    /* napi_get_value_string_utf8 always writes a NUL after the text: make room for it past
     * the frame so the frame itself is sized exactly and the string is encoded in place. */
    if (!conn_output_ensure(&c->engine, FRAME_MAX_HEADER + len + 1))
      return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    uint8_t *dst = conn_frame_reserve(&c->engine, (uint8_t)opcode, fin, rsv1, len);
    if (!dst) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    size_t written = 0;
    napi_get_value_string_utf8(env, argv[1], (char *)dst, len + 1, &written);
    conn_frame_commit(&c->engine, dst, len);
    return make_uint(env, len);
  }
  const uint8_t *data = NULL;
  size_t len = 0;
  if (!get_bytes(env, argv[1], &data, &len))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "data must be a string, Buffer, TypedArray, DataView or ArrayBuffer");
  if (control && len > FRAME_MAX_CONTROL)
    return throw_range_error(env, "WS_ERR_CONTROL_PAYLOAD_TOO_LARGE",
                             "The data size must not be greater than 125 bytes");
  if (!control && should_compress(c, rsv1, fin, len)) {
    if (!conn_send_compressed(&c->engine, (uint8_t)opcode, data, len))
      return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    return make_uint(env, len);
  }
  if (!conn_send_frame(&c->engine, (uint8_t)opcode, fin, false, data, len))
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  return make_uint(env, len);
}

/* sendHeader(handle, opcode, fin, rsv1, length) -> bytes queued. Server only: queues the
 * header of a data frame whose payload JavaScript writes itself, right after the output. */
static napi_value send_header(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  int32_t opcode = 0;
  double length = -1;
  napi_get_value_int32(env, argv[1], &opcode);
  napi_get_value_double(env, argv[4], &length);
  if ((opcode != OP_TEXT && opcode != OP_BINARY) || !(length >= 0))
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "invalid opcode or length");
  if (c->released) return make_uint(env, 0);
  if (!conn_send_header(&c->engine, (uint8_t)opcode, get_bool(env, argv[2]), false,
                        (uint64_t)length))
    return throw_error(env, "WS_ERR_NATIVE", "header-only frames are for servers only");
  return make_uint(env, c->engine.out_len);
}

/* frameOnce(data, opcode, windowBits) -> Buffer holding one whole unmasked (server) frame of
 * data, for sending the same bytes to many connections with sendFramed. windowBits 9..15:
 * compressed (RSV1) from an empty window, so any peer that negotiated at least that window
 * can inflate it, whatever its context; 0: not compressed. */
static napi_value frame_once(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t opcode = 0;
  int32_t window_bits = 0;
  napi_get_value_int32(env, argv[1], &opcode);
  if (argc >= 3) napi_get_value_int32(env, argv[2], &window_bits);
  if (opcode != OP_TEXT && opcode != OP_BINARY)
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "invalid opcode");

  const uint8_t *payload;
  size_t len;
  uint8_t *text = NULL;
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  if (type == napi_string) {
    text = string_utf8_copy(env, argv[0], &len);
    if (!text) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    payload = text;
  } else if (!get_bytes(env, argv[0], &payload, &len)) {
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "data must be a string, Buffer, TypedArray, DataView or ArrayBuffer");
  }

  /* A scratch server connection does the framing, so there is one encoder. */
  conn scratch;
  conn_config config = {.is_server = true};
  conn_init(&scratch, &config);
  bool ok;
  if (window_bits >= 9 && window_bits <= 15) {
    pmd_stream stream;
    pmd_deflater_init(&stream, window_bits, Z_DEFAULT_COMPRESSION, 8);
    pmd_buffer compressed = {0};
    ok = pmd_deflate_message(&stream, payload, len, true, &compressed) == PMD_OK &&
         conn_send_frame(&scratch, (uint8_t)opcode, true, true, compressed.data, compressed.len);
    pmd_stream_end(&stream);
    free(compressed.data);
  } else {
    ok = conn_send_frame(&scratch, (uint8_t)opcode, true, false, payload, len);
  }
  free(text);
  if (!ok) {
    conn_release(&scratch);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  size_t framed_len;
  uint8_t *bytes = conn_output_detach(&scratch, &framed_len);
  napi_value buffer;
  if (adopt_buffer(env, bytes, framed_len, EXTERNAL_BUFFER_MIN, &buffer) != napi_ok)
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  return buffer;
}

/* buildFrame(data, opcode, fin, rsv1, mask) -> Buffer holding one frame of data exactly as
 * asked: any opcode 0..15, FIN and RSV1 as given (nothing is compressed here), masked with a
 * key from the CSPRNG when mask is true. What WebSocket.Sender.frame() (ws's signature)
 * returns; the engine's own encoder builds it on a scratch connection, as frameOnce does. */
static napi_value build_frame(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t opcode = -1;
  if (napi_get_value_int32(env, argv[1], &opcode) != napi_ok || opcode < 0 || opcode > 15)
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "opcode must be 0..15");
  bool fin = get_bool(env, argv[2]);
  bool rsv1 = get_bool(env, argv[3]);
  bool mask = get_bool(env, argv[4]);

  const uint8_t *payload;
  size_t len;
  uint8_t *text = NULL;
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  if (type == napi_string) {
    text = string_utf8_copy(env, argv[0], &len);
    if (!text) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    payload = text;
  } else if (!get_bytes(env, argv[0], &payload, &len)) {
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "data must be a string, Buffer, TypedArray, DataView or ArrayBuffer");
  }

  /* A client connection masks what it frames, a server's does not. */
  conn scratch;
  conn_config config = {.is_server = !mask};
  conn_init(&scratch, &config);
  bool ok = conn_send_frame(&scratch, (uint8_t)opcode, fin, rsv1, payload, len);
  free(text);
  size_t framed_len = 0;
  uint8_t *bytes = ok ? conn_output_detach(&scratch, &framed_len) : NULL;
  conn_release(&scratch);
  napi_value buffer;
  if (!ok || adopt_buffer(env, bytes, framed_len, EXTERNAL_BUFFER_MIN, &buffer) != napi_ok)
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  return buffer;
}

/* sendFramed(handle, frames, compressed) -> bytes queued: appends whole frames made by
 * frameOnce. compressed: they were compressed without this connection's deflater, which then
 * must not refer back past them (its next message starts from an empty window). Empty frames
 * with compressed set only do that, for frames written without the engine. */
static napi_value send_framed(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  const uint8_t *data;
  size_t len;
  if (!get_bytes(env, argv[1], &data, &len))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "frames must be a Buffer");
  if (c->released) return make_uint(env, 0);
  if (!c->engine.config->is_server || c->engine.out_fragmenting)
    return throw_error(env, "WS_ERR_NATIVE", "cannot insert whole frames here");
  if (argc >= 3 && get_bool(env, argv[2])) conn_deflater_invalidate(&c->engine);
  if (len > 0 && !conn_send_framed(&c->engine, data, len))
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  return make_uint(env, c->engine.out_len);
}

/* ---- compression in the thread pool ---- */

/* Below this size compressing on the main thread is cheaper than a thread-pool round trip
 * (measured with zlib level 6 on JSON-like text: 16 KiB 0.27 ms, 64 KiB 2.4 ms, 1 MiB 29 ms;
 * a round trip costs tens of microseconds). JavaScript sends larger messages here. */
#define ASYNC_DEFLATE_MIN (64 * 1024)

/* What every thread-pool job of a connection has. It is the first member of each job, so a
 * job pointer is also a job_base pointer. */
typedef struct job_base {
  napi_async_work work;
  napi_ref callback_ref;
  connection *c; /* not freed before the job ends (jobs counts it) */
} job_base;

/* Queues job (whose base is filled in here); false when that fails, nothing queued. */
static bool job_queue(napi_env env, job_base *job, connection *c, napi_value callback,
                      const char *name, napi_async_execute_callback execute,
                      napi_async_complete_callback complete) {
  napi_value resource_name;
  job->c = c;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  /* (References made before a failure are reclaimed with the environment.) */
  if (napi_create_reference(env, callback, 1, &job->callback_ref) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, job, &job->work) !=
          napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok)
    return false;
  c->jobs++;
  return true;
}

/* Ends a job (on the main thread): the connection is freed now if release() came meanwhile
 * (nothing may use job->c after this call), then the job's callback gets argv, and what the
 * job held of the environment is dropped. */
static void job_finish(napi_env env, job_base *job, size_t argc, napi_value *argv) {
  connection *c = job->c;
  c->jobs--;
  if (c->release_pending && c->jobs == 0) connection_destroy(state_of_env(env), c);
  napi_value callback, global;
  if (napi_get_reference_value(env, job->callback_ref, &callback) == napi_ok && callback) {
    napi_get_global(env, &global);
    napi_call_function(env, global, callback, argc, argv, NULL);
  }
  napi_delete_reference(env, job->callback_ref);
  napi_delete_async_work(env, job->work);
}

typedef struct deflate_job {
  job_base base;
  uint8_t *input;
  size_t input_len;
  uint8_t opcode;
  pmd_stream *stream; /* the connection's own, or `fresh` */
  pmd_stream fresh;   /* a stream for this job when the connection shares one */
  bool reset;
  pmd_buffer output;
  pmd_result result;
} deflate_job;

static void deflate_job_execute(napi_env env, void *data) {
  (void)env;
  deflate_job *job = data;
  job->result = pmd_deflate_message(job->stream, job->input, job->input_len, job->reset,
                                    &job->output);
}

static void deflate_job_complete(napi_env env, napi_status status, void *data) {
  deflate_job *job = data;
  connection *c = job->base.c;
  napi_value error = NULL;
  bool queued = false;
  if (c->engine.close_sent && !c->released) {
    /* A close frame went out meanwhile (an answer to the peer's): nothing may follow it. */
    napi_create_string_utf8(env, "WebSocket is not open: readyState 2 (CLOSING)",
                            NAPI_AUTO_LENGTH, &error);
  } else if (status == napi_ok && job->result == PMD_OK && !c->released) {
    queued = conn_send_frame(&c->engine, job->opcode, true, true, job->output.data,
                             job->output.len);
    if (!queued) napi_create_string_utf8(env, "out of memory", NAPI_AUTO_LENGTH, &error);
  } else if (!c->released) {
    napi_create_string_utf8(env, "compression failed", NAPI_AUTO_LENGTH, &error);
  }
  if (job->stream == &job->fresh) pmd_stream_end(&job->fresh);
  napi_value argv[2];
  if (error) napi_create_error(env, NULL, error, &argv[0]);
  else napi_get_undefined(env, &argv[0]);
  argv[1] = make_uint(env, queued ? c->engine.out_len : 0);
  job_finish(env, &job->base, 2, argv);
  free(job->input);
  free(job->output.data);
  free(job);
}

/* compressAsync(handle, data, opcode, callback(err, queuedBytes)): compresses one whole
 * message in the thread pool, then queues it. The caller sends nothing else on this
 * connection until the callback, so messages keep their order and the deflater is used by
 * one thread at a time. */
static napi_value compress_async(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  int32_t opcode = 0;
  napi_get_value_int32(env, argv[2], &opcode);
  napi_valuetype cb_type;
  napi_typeof(env, argv[3], &cb_type);
  if ((opcode != OP_TEXT && opcode != OP_BINARY) || cb_type != napi_function)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "opcode and callback expected");
  if (c->released || !c->engine.config->deflate || c->engine.out_fragmenting)
    return throw_error(env, "WS_ERR_NATIVE", "cannot compress on this connection now");

  deflate_job *job = calloc(1, sizeof(*job));
  if (!job) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  job->opcode = (uint8_t)opcode;
  job->reset = c->engine.config->deflate_reset;

  /* The input is copied: the caller may change its buffer before the job runs. */
  napi_valuetype type;
  napi_typeof(env, argv[1], &type);
  if (type == napi_string) {
    job->input = string_utf8_copy(env, argv[1], &job->input_len);
  } else {
    const uint8_t *data;
    size_t len;
    if (!get_bytes(env, argv[1], &data, &len)) {
      free(job);
      return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "data must be a string or bytes");
    }
    job->input = malloc(len ? len : 1);
    if (job->input && len) memcpy(job->input, data, len);
    job->input_len = len;
  }
  job->stream = conn_own_deflater(&c->engine);
  if (job->stream == NULL) {
    conn_deflater_params(&c->engine, &job->fresh);
    job->stream = &job->fresh;
  }

  if (!job->input || !job_queue(env, &job->base, c, argv[3], "ws-native:deflate",
                                 deflate_job_execute, deflate_job_complete)) {
    if (job->stream == &job->fresh) pmd_stream_end(&job->fresh);
    free(job->input);
    free(job);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "cannot start compression");
  }
  return make_undefined(env);
}

/* ---- inflating in the thread pool ---- */

typedef struct inflate_job {
  job_base base;
  pmd_buffer input;
  pmd_stream *stream;
  pmd_stream fresh;
  bool reset;
  bool text;
  bool check_utf8;
  uint64_t cap;
  pmd_buffer output;
  conn_error error;
} inflate_job;

static void inflate_job_execute(napi_env env, void *data) {
  (void)env;
  inflate_job *job = data;
  pmd_result r = pmd_inflate_message(job->stream, job->input.data, job->input.len, job->cap,
                                     job->reset, &job->output);
  job->error = r == PMD_OK        ? CONN_OK
               : r == PMD_TOO_BIG ? CONN_ERR_MAX_PAYLOAD
               : r == PMD_CORRUPT ? CONN_ERR_INFLATE
                                  : CONN_ERR_NO_MEMORY;
  if (job->error == CONN_OK && job->text && job->check_utf8 &&
      !utf8_is_valid(job->output.data, job->output.len))
    job->error = CONN_ERR_UTF8;
}

static void inflate_job_complete(napi_env env, napi_status status, void *data) {
  inflate_job *job = data;
  connection *c = job->base.c;
  if (job->stream == &job->fresh) pmd_stream_end(&job->fresh);
  napi_value argv[2];
  napi_get_undefined(env, &argv[1]);
  if (c->released) {
    napi_get_boolean(env, false, &argv[0]);
    free(job->output.data);
  } else {
    conn_error err = status == napi_ok ? job->error : CONN_ERR_NO_MEMORY;
    conn_inflate_done(&c->engine, err, 0);
    if (err == CONN_OK && adopt_buffer(env, job->output.data, job->output.len,
                                       EXTERNAL_BUFFER_MIN, &argv[1]) != napi_ok) {
      conn_inflate_done(&c->engine, CONN_ERR_NO_MEMORY, 0);
      err = CONN_ERR_NO_MEMORY;
    } else if (err != CONN_OK) {
      free(job->output.data);
    }
    napi_get_boolean(env, err == CONN_OK, &argv[0]);
  }
  job_finish(env, &job->base, 2, argv);
  free(job->input.data);
  free(job);
}

/* inflateAsync(handle, callback(ok, buffer)): inflates, in the thread pool, the message the
 * last EV_INFLATE event announced. The engine parses nothing more until it ends; when ok is
 * false, the connection failed (errorInfo() says why; its close frame is queued). */
static napi_value inflate_async(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  napi_valuetype cb_type;
  napi_typeof(env, argv[1], &cb_type);
  if (cb_type != napi_function)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback expected");
  if (c->released || !c->engine.inflate_busy)
    return throw_error(env, "WS_ERR_NATIVE", "no message waits to be inflated");

  inflate_job *job = calloc(1, sizeof(*job));
  if (!job) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  job->text = !c->engine.pending_binary;
  job->check_utf8 = !c->engine.config->skip_utf8_validation;
  job->reset = c->engine.config->inflate_reset;
  job->cap = c->engine.config->max_payload;
  job->input = conn_take_inflate(&c->engine, &job->stream);
  if (job->stream == NULL) {
    /* The shared stream serves the main thread; this job gets one of its own. */
    pmd_inflater_init(&job->fresh, 15);
    job->stream = &job->fresh;
  }
  if (!job_queue(env, &job->base, c, argv[1], "ws-native:inflate",
                 inflate_job_execute, inflate_job_complete)) {
    if (job->stream == &job->fresh) pmd_stream_end(&job->fresh);
    free(job->input.data);
    free(job);
    conn_inflate_done(&c->engine, CONN_ERR_NO_MEMORY, 0);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "cannot start inflating");
  }
  return make_undefined(env);
}

/* close(handle, code, reason) -> true if a close frame was queued (false: one was sent
 * already). code undefined sends no status. Throws ws's errors for a bad code or reason. */
static napi_value send_close(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  napi_valuetype code_type, reason_type;
  napi_typeof(env, argv[1], &code_type);
  napi_typeof(env, argv[2], &reason_type);

  int32_t code = 0;
  if (code_type != napi_undefined) {
    double d = 0;
    if (code_type != napi_number || napi_get_value_double(env, argv[1], &d) != napi_ok ||
        d != (double)(int32_t)d || !close_code_is_valid((int)d))
      return throw_type_error(env, "WS_ERR_INVALID_CLOSE_CODE",
                              "First argument must be a valid error code number");
    code = (int32_t)d;
  }

  uint8_t reason[MAX_CLOSE_REASON + 1];
  size_t reason_len = 0;
  if (reason_type == napi_string) {
    size_t len;
    napi_get_value_string_utf8(env, argv[2], NULL, 0, &len);
    if (len > MAX_CLOSE_REASON)
      return throw_range_error(env, "WS_ERR_CLOSE_REASON_TOO_LONG",
                               "The message must not be greater than 123 bytes");
    napi_get_value_string_utf8(env, argv[2], (char *)reason, sizeof(reason), &reason_len);
  } else if (reason_type != napi_undefined && reason_type != napi_null) {
    const uint8_t *data;
    if (!get_bytes(env, argv[2], &data, &reason_len))
      return throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                              "The reason must be a string or a Buffer");
    if (reason_len > MAX_CLOSE_REASON)
      return throw_range_error(env, "WS_ERR_CLOSE_REASON_TOO_LONG",
                               "The message must not be greater than 123 bytes");
    memcpy(reason, data, reason_len);
  }
  if (code == 0 && reason_len > 0) code = 1000; /* a reason needs a status before it */

  napi_value result;
  bool queued = !c->released && conn_send_close(&c->engine, code, reason, reason_len);
  napi_get_boolean(env, queued, &result);
  return result;
}

/* takeOutput(handle) -> Buffer with everything queued, or undefined when nothing is. */
static napi_value take_output(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  conn *e = &c->engine;
  if (c->released || e->out_len == 0) return make_undefined(env);

  napi_value buffer;
  if (e->out_len >= OUTPUT_HANDOFF_MIN) {
    size_t len;
    uint8_t *data = conn_output_detach(e, &len);
    if (adopt_buffer(env, data, len, 0, &buffer) != napi_ok)
      return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
    return buffer;
  }
  if (napi_create_buffer_copy(env, e->out_len, e->out, NULL, &buffer) != napi_ok)
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  connection_output_taken(e);
  return buffer;
}

void connection_output_taken(conn *e) {
  if (e->out_cap > OUTPUT_HANDOFF_MIN) {
    size_t len;
    free(conn_output_detach(e, &len));
  } else {
    conn_output_clear(e);
  }
}

/* trackFragments(handle, on): whether messages report their frame boundaries. */
static napi_value track_fragments(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  c->engine.track_fragments = get_bool(env, argv[1]);
  return make_undefined(env);
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
  double period = 0;
  napi_get_value_double(env, argv[0], &period);
  addon_state *state = state_of_env(env);
  if (state == NULL || !(period >= 1 && period <= UINT32_MAX)) return make_undefined(env);
  uint64_t period_ms = (uint64_t)period;
  if (!get_bool(env, argv[1])) state->park_left = state->slot_count; /* a new round */
  uint32_t i = state->park_cursor;
  unsigned parked = 0;
  for (; state->park_left > 0 && parked < PARK_BUDGET; state->park_left--) {
    if (i >= state->slot_count) i = 0;
    connection *c = state->slots[i++].c;
    /* (Skipped while a thread-pool job may be using one of its streams.) */
    if (c == NULL || c->released || c->jobs > 0 || c->engine.config->zlib_idle_ms == 0) continue;
    uint64_t periods = (c->engine.config->zlib_idle_ms + period_ms - 1) / period_ms;
    parked += conn_park_idle_streams(&c->engine,
                                     periods > UINT16_MAX ? UINT16_MAX : (unsigned)periods);
  }
  state->park_cursor = i;
#ifdef __GLIBC__
  /* zlib's state is blocks of 5 to 64 KiB from the heap: freed between live blocks, they stay
   * in the process (resident) until reused. This gives their pages back to the system. */
  if (parked > 0) malloc_trim(0);
#endif
  napi_value more;
  napi_get_boolean(env, state->park_left > 0, &more);
  return more;
}

/* zlibState(handle) -> which of its own zlib streams hold state, for tests: 1 the inflater's
 * zlib state, 2 a parked inflater's window, 4 the deflater's zlib state. */
static napi_value zlib_state(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  const pmd_stream *in = c->engine.inflater, *out = c->engine.deflater;
  unsigned bits = (in && in->started ? 1 : 0) | (in && in->window ? 2 : 0) |
                  (out && out->started ? 4 : 0);
  return make_uint(env, bits);
}

/* pendingOutput(handle) -> bytes queued and not yet taken. */
static napi_value pending_output(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  connection *c = addon_connection(env, argv[0]);
  if (!c) return NULL;
  return make_uint(env, c->released ? 0 : c->engine.out_len);
}

/* acceptKey(key) -> the Sec-WebSocket-Accept value, or null when key is not a valid
 * Sec-WebSocket-Key (22 base64 characters and "=="). */
static napi_value accept_key(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char key[64];
  size_t key_len = 0;
  napi_value result;
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  if (type != napi_string ||
      napi_get_value_string_latin1(env, argv[0], key, sizeof(key), &key_len) != napi_ok ||
      !ws_key_is_valid(key, key_len)) {
    napi_get_null(env, &result);
    return result;
  }
  char accept[WS_ACCEPT_LEN + 1];
  ws_accept_compute(key, key_len, accept);
  napi_create_string_latin1(env, accept, WS_ACCEPT_LEN, &result);
  return result;
}

/* isValidCloseCode(code) -> boolean */
static napi_value is_valid_close_code(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  double d = 0;
  bool valid = napi_get_value_double(env, argv[0], &d) == napi_ok && d == (double)(int32_t)d &&
               close_code_is_valid((int)d);
  napi_value result;
  napi_get_boolean(env, valid, &result);
  return result;
}

static napi_value make_constants(napi_env env) {
  napi_value constants;
  napi_create_object(env, &constants);
  struct { const char *name; uint32_t value; } list[] = {
      {"TABLE_HEADER", TABLE_HEADER},       {"TABLE_STRIDE", TABLE_STRIDE},
      {"EV_MESSAGE", CONN_EV_MESSAGE},      {"EV_PING", CONN_EV_PING},
      {"EV_PONG", CONN_EV_PONG},            {"EV_CLOSE", CONN_EV_CLOSE},
      {"EV_ERROR", CONN_EV_ERROR},          {"EV_INFLATE", CONN_EV_INFLATE},          {"EV_FLAG_BINARY", EV_FLAG_BINARY},
      {"EV_FLAG_OBJECT", EV_FLAG_OBJECT},   {"EV_FLAG_FRAGMENTS", EV_FLAG_FRAGMENTS},   {"STATE_CLOSE_SENT", STATE_CLOSE_SENT},
      {"STATE_CLOSE_RECEIVED", STATE_CLOSE_RECEIVED}, {"STATE_FAILED", STATE_FAILED},
      {"STATE_CALL_AGAIN", STATE_CALL_AGAIN},
      {"OP_TEXT", OP_TEXT},                 {"OP_BINARY", OP_BINARY},
      {"OP_PING", OP_PING},                 {"OP_PONG", OP_PONG},
      {"ASYNC_DEFLATE_MIN", ASYNC_DEFLATE_MIN},
  };
  for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
    napi_value v;
    napi_create_uint32(env, list[i].value, &v);
    napi_set_named_property(env, constants, list[i].name, v);
  }
  return constants;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
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
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"createConnection", NULL, create_connection, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, release_connection, NULL, NULL, NULL, napi_default, NULL},
      {"feed", NULL, feed, NULL, NULL, NULL, napi_default, NULL},
      {"errorInfo", NULL, error_info, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, send_frame, NULL, NULL, NULL, napi_default, NULL},
      {"inflateAsync", NULL, inflate_async, NULL, NULL, NULL, napi_default, NULL},
      {"compressAsync", NULL, compress_async, NULL, NULL, NULL, napi_default, NULL},
      {"frameOnce", NULL, frame_once, NULL, NULL, NULL, napi_default, NULL},
      {"buildFrame", NULL, build_frame, NULL, NULL, NULL, napi_default, NULL},
      {"sendFramed", NULL, send_framed, NULL, NULL, NULL, napi_default, NULL},
      {"sendHeader", NULL, send_header, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, send_close, NULL, NULL, NULL, napi_default, NULL},
      {"takeOutput", NULL, take_output, NULL, NULL, NULL, napi_default, NULL},
      {"trackFragments", NULL, track_fragments, NULL, NULL, NULL, napi_default, NULL},
      {"pendingOutput", NULL, pending_output, NULL, NULL, NULL, napi_default, NULL},
      {"parkIdleStreams", NULL, park_idle_streams, NULL, NULL, NULL, napi_default, NULL},
      {"zlibState", NULL, zlib_state, NULL, NULL, NULL, napi_default, NULL},
      {"acceptKey", NULL, accept_key, NULL, NULL, NULL, napi_default, NULL},
      {"isValidCloseCode", NULL, is_valid_close_code, NULL, NULL, NULL, napi_default, NULL},
      {"constants", NULL, NULL, NULL, NULL, make_constants(env), napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok)
    return NULL;
  if (!native_transport_register(env, exports) || !upgrade_register(env, exports)) return NULL;
  return exports;
}
