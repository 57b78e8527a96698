/* Received bytes to JavaScript: feed() runs the engine over a chunk and writes its events into
 * a table JS owns (one native call per chunk), and errorInfo() explains a failure. */
#include <string.h>

#include "napi/receive.h"
#include "napi/register.h"

/* feed()'s table: [0] events written, [1] input offset reached, [2] state flags, then
 * EVENT_WORDS words per event (receive.h). */
#define TABLE_HEADER 3

static bool store_object(event_sink *sink, napi_value value, uint32_t *index) {
  if (napi_set_element(sink->env, sink->objects, sink->object_count, value) != napi_ok)
    return false;
  *index = sink->object_count++;
  return true;
}

/* The frame boundaries of a message, as an array of end offsets stored after its payload. */
static bool store_fragment_ends(event_sink *sink, const conn_event *ev) {
  napi_value ends, end;
  uint32_t index;
  if (napi_create_array_with_length(sink->env, ev->fragment_count, &ends) != napi_ok) return false;
  for (size_t i = 0; i < ev->fragment_count; i++) {
    napi_create_double(sink->env, (double)ev->fragment_ends[i], &end);
    napi_set_element(sink->env, ends, (uint32_t)i, end);
  }
  return store_object(sink, ends, &index);
}

bool event_encode(event_sink *sink, const conn_event *ev, uint32_t *words) {
  uint32_t word0 = (uint32_t)ev->kind | (ev->binary ? EV_FLAG_BINARY : 0);
  uint32_t a = 0, b = 0;

  if (ev->kind == CONN_EV_INFLATE) {
    /* no payload: the compressed bytes stay in the engine for inflateAsync() */
  } else if (ev->owned) {
    napi_value buffer;
    if (adopt_buffer(sink->env, ev->owned, ev->len, EXTERNAL_BUFFER_MIN, &buffer) != napi_ok ||
        !store_object(sink, buffer, &a))
      goto failed;
    word0 |= EV_FLAG_OBJECT;
    if (ev->fragment_count > 1) {
      if (!store_fragment_ends(sink, ev)) goto failed;
      word0 |= EV_FLAG_FRAGMENTS;
    }
  } else if (ev->len == 0) {
    /* empty payload: offset/length 0 */
  } else if (ev->data >= sink->chunk && ev->data + ev->len <= sink->chunk + sink->chunk_len) {
    a = (uint32_t)(ev->data - sink->chunk);
    b = (uint32_t)ev->len;
  } else {
    /* Payload kept inside the connection (a control frame split across chunks). */
    napi_value buffer;
    if (napi_create_buffer_copy(sink->env, ev->len, ev->data, NULL, &buffer) != napi_ok ||
        !store_object(sink, buffer, &a))
      goto failed;
    word0 |= EV_FLAG_OBJECT;
  }
  words[0] = word0;
  words[1] = a;
  words[2] = b;
  words[3] = (uint32_t)ev->close_code;
  return true;
failed:
  sink->failed = true;
  return false;
}

uint32_t event_state_flags(const conn *e) {
  return conn_close_state(e) | (conn_has_deferred(e) ? STATE_CALL_AGAIN : 0);
}

typedef struct table_ctx {
  event_sink sink;
  uint32_t *table;
  uint32_t capacity; /* events the table holds */
  uint32_t count;
} table_ctx;

static bool on_event(void *opaque, const conn_event *ev) {
  table_ctx *ctx = opaque;
  if (!event_encode(&ctx->sink, ev, ctx->table + TABLE_HEADER + ctx->count * EVENT_WORDS))
    return false;
  ctx->count++;
  return ctx->count < ctx->capacity;
}

/* feed(handle, chunk, offset, table, objects) -> events written.
 * Parses chunk from offset on; stops early only when the table is full or the engine holds
 * back work (table[1] says where). */
static napi_value feed(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  GET_CONNECTION(c);

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
      table_type != napi_uint32_array || table_len < TABLE_HEADER + EVENT_WORDS)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "table must be a Uint32Array");

  table_ctx ctx = {.sink = {.env = env, .chunk = chunk, .chunk_len = chunk_len, .objects = argv[4]},
                   .table = table,
                   .capacity = (uint32_t)((table_len - TABLE_HEADER) / EVENT_WORDS)};

  size_t used = c->released
                    ? chunk_len - offset
                    : conn_feed(&c->engine, chunk + offset, chunk_len - offset, on_event, &ctx);
  table[0] = ctx.count;
  table[1] = (uint32_t)(offset + used);
  table[2] = event_state_flags(&c->engine);
  if (ctx.sink.failed) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending)
      return throw_error(env, "WS_ERR_NATIVE", "cannot deliver a message to JavaScript");
    return NULL;
  }
  return make_uint(env, ctx.count);
}

/* errorInfo(handle) -> [message, code, status] for the failure the last feed reported. */
static napi_value error_info(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  GET_CONNECTION(c);
  int detail = 0;
  conn_error err = conn_failure(&c->engine, &detail);
  const conn_error_desc *d = conn_error_info(err);
  char message[192];
  conn_error_message(err, detail, message, sizeof(message));
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

/* closeState(handle) -> the engine's CONN_CLOSE_* bits (the closing handshake's one record). */
static napi_value close_state(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  GET_CONNECTION(c);
  return make_uint(env, conn_close_state(&c->engine));
}

/* trackFragments(handle, on): whether messages report their frame boundaries. */
static napi_value track_fragments(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  GET_CONNECTION(c);
  if (!c->released) conn_track_fragments(&c->engine, get_bool(env, argv[1]));
  return make_undefined(env);
}

bool receive_register(napi_env env, napi_value exports, napi_value constants) {
  static const struct {
    const char *name;
    uint32_t value;
  } names[] = {
      {"TABLE_HEADER", TABLE_HEADER},
      {"TABLE_STRIDE", EVENT_WORDS},
      {"EV_MESSAGE", CONN_EV_MESSAGE},
      {"EV_PING", CONN_EV_PING},
      {"EV_PONG", CONN_EV_PONG},
      {"EV_CLOSE", CONN_EV_CLOSE},
      {"EV_ERROR", CONN_EV_ERROR},
      {"EV_INFLATE", CONN_EV_INFLATE},
      {"EV_FLAG_BINARY", EV_FLAG_BINARY},
      {"EV_FLAG_OBJECT", EV_FLAG_OBJECT},
      {"EV_FLAG_FRAGMENTS", EV_FLAG_FRAGMENTS},
      {"CLOSE_SENT", CONN_CLOSE_SENT},
      {"CLOSE_RECEIVED", CONN_CLOSE_RECEIVED},
      {"CLOSE_FAILED", CONN_CLOSE_FAILED},
      {"STATE_CALL_AGAIN", STATE_CALL_AGAIN},
  };
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (!set_uint_property(env, constants, names[i].name, names[i].value)) return false;
  napi_property_descriptor props[] = {
      {"feed", NULL, feed, NULL, NULL, NULL, napi_default, NULL},
      {"errorInfo", NULL, error_info, NULL, NULL, NULL, napi_default, NULL},
      {"closeState", NULL, close_state, NULL, NULL, NULL, napi_default, NULL},
      {"trackFragments", NULL, track_fragments, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok;
}
