/* What the Node-API glue files share: the connection behind a JS handle. */
#ifndef WS_NATIVE_ADDON_H
#define WS_NATIVE_ADDON_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/conn.h"
#include "napi/native_transport.h"

/* Output at or above this size is handed to JS without a copy; smaller output is copied so
 * the connection keeps (and reuses) its small buffer. A transport that writes the output
 * itself gives a buffer this big back once written, so idle connections stay small. */
#define OUTPUT_HANDOFF_MIN 65536

/* A connection's handle (its name in JS) is its index in the environment's connection table
 * (the low HANDLE_INDEX_BITS) and the generation of that slot (see addon.c). */
#define HANDLE_INDEX_BITS 21 /* 2M connections per thread; the handle stays a 31-bit integer */
#define HANDLE_INDEX_MASK ((1u << HANDLE_INDEX_BITS) - 1)

typedef struct connection {
  conn engine;
  native_transport transport; /* the socket it owns (native transport), if opened */
  uint32_t deflate_threshold; /* messages shorter than this are sent uncompressed */
  uint32_t jobs;              /* compressions running in the thread pool */
  uint32_t handle;            /* its handle; the index part is its slot in the table */
  bool released;
  bool release_pending;       /* release() came while a job used the connection */
} connection;

/* Small Node-API helpers every glue file uses. The throw_* ones return NULL, so a function
 * can `return throw_type_error(...)`. */
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

static inline napi_value make_undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* The engine's queued output was taken (handed to JS or written): empty the queue, keeping a
 * small buffer for the next turn and giving a large one back so idle connections stay small. */
void connection_output_taken(conn *e);

/* Closes the connection's socket, if the native transport has one open, without telling JS:
 * for a connection freed with its environment (native_transport.c). */
void native_transport_detach(connection *c);

/* The connection of a handle made by createConnection(), or NULL with a TypeError thrown. */
connection *addon_connection(napi_env env, napi_value value);

/* The connection a handle names, or NULL when it was released (the handle is stale). */
connection *addon_connection_of_handle(napi_env env, uint32_t handle);

#endif
