/* What the Node-API glue files share: a connection (the engine and its socket) behind a JS
 * handle, and small helpers for reading arguments and making values. */
#ifndef WSN_NAPI_ADDON_H
#define WSN_NAPI_ADDON_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/conn.h"
#include "transport/socket.h"

/* A connection's handle (its name in JS) is its index in the environment's connection table
 * (the low HANDLE_INDEX_BITS) and the generation of that slot (see connections.c). */
#define HANDLE_INDEX_BITS 21 /* 2M connections per thread; the handle stays a 31-bit integer */
#define HANDLE_INDEX_MASK ((1u << HANDLE_INDEX_BITS) - 1)

typedef struct connection {
  conn engine;
  transport_socket socket; /* the socket it owns (native transport), if opened */
  uint32_t jobs;           /* thread-pool jobs using it */
  uint32_t handle;         /* its handle; the index part is its slot in the table */
  bool released;
  bool release_pending; /* release() came while a job used the connection */
} connection;

/* ---- connections.c ---- */

/* The connection of a handle made by createConnection(): the connection, a released
 * placeholder for a stale handle (its `released` is set), or NULL with a TypeError thrown
 * when value is not a handle at all. */
connection *addon_connection(napi_env env, napi_value value);

/* The connection a handle names, or NULL when it was released (the handle is stale). */
connection *addon_connection_of_handle(napi_env env, uint32_t handle);

/* A thread-pool job starts or stops using c: a connection released meanwhile is freed when
 * its last job ends (nothing may use c after connection_job_ended). */
static inline void connection_job_started(connection *c) { c->jobs++; }
void connection_job_ended(napi_env env, connection *c);

/* Calls fn for every open (unreleased) connection of the environment, from slot *cursor on,
 * until fn has returned a total of `budget` or every slot was visited once since *round_left
 * was set; returns that total. For work spread over many calls (parking idle streams). */
typedef unsigned (*connection_visit_fn)(connection *c, void *arg);
unsigned connections_visit(napi_env env, uint32_t *cursor, uint32_t *round_left, unsigned budget,
                           connection_visit_fn fn, void *arg);
uint32_t connections_slot_count(napi_env env);

/* ---- helpers (napi_helpers.c) ---- */

/* Throw and return NULL, so that a function can `return throw_type_error(...)`. */
static inline napi_value throw_error(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
  return NULL;
}

static inline napi_value throw_type_error(napi_env env, const char *code, const char *message) {
  napi_throw_type_error(env, code, message);
  return NULL;
}

static inline napi_value throw_range_error(napi_env env, const char *code, const char *message) {
  napi_throw_range_error(env, code, message);
  return NULL;
}

static inline napi_value make_number(napi_env env, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  return v;
}

static inline napi_value make_uint(napi_env env, uint64_t value) {
  return make_number(env, (double)value);
}

static inline napi_value make_bool(napi_env env, bool value) {
  napi_value v;
  napi_get_boolean(env, value, &v);
  return v;
}

static inline napi_value make_undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* Reads up to n arguments into argv (the missing ones are undefined); argc is how many were
 * given. */
#define GET_ARGS(n)                                                    \
  size_t argc = n;                                                     \
  napi_value argv[n];                                                  \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) \
    return throw_error(env, "WS_ERR_NATIVE", "cannot read arguments");

/* The connection named by argv[0] of a function whose usage is (handle, ...); NULL with a
 * TypeError thrown when it is not a handle. */
#define GET_CONNECTION(c)                         \
  connection *c = addon_connection(env, argv[0]); \
  if (!c) return NULL;

bool get_bool(napi_env env, napi_value value);

/* handles[0..count) of a (Uint32Array, count) pair of arguments: a list of connection handles
 * (publish's subscribers, a tick's flushes). False with a TypeError/RangeError thrown. */
bool get_handle_list(napi_env env, napi_value array, napi_value count, uint32_t **handles,
                     size_t *n);

/* Bytes of any binary view: Buffer/TypedArray, DataView or ArrayBuffer. */
bool get_bytes(napi_env env, napi_value value, const uint8_t **data, size_t *len);

/* A JS string's UTF-8 bytes in a new malloc'd buffer (NUL-terminated; *len excludes it), or
 * NULL when memory runs out. */
uint8_t *string_utf8_copy(napi_env env, napi_value value, size_t *len);

/* Makes a Buffer of a malloc'd block, taking ownership of it in every case: the block itself
 * (external) from external_min bytes on, a copy below. */
napi_status adopt_buffer(napi_env env, uint8_t *data, size_t len, size_t external_min,
                         napi_value *result);

/* Below this size a received message is copied into a V8-managed buffer; above it, the
 * engine's malloc'd buffer is handed over as is (an external buffer costs more to create
 * and to collect than a small copy). */
#define EXTERNAL_BUFFER_MIN 4096

/* Sets name = value on an object (a number, a function...); false with an exception. */
bool set_uint_property(napi_env env, napi_value object, const char *name, uint32_t value);

#endif
