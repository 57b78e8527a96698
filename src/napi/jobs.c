/* Thread-pool jobs of a connection: compressing a large message and inflating a large
 * compressed one, each an engine task (conn_deflate_task, conn_inflate_task) run off the main
 * thread, so that zlib's milliseconds per message do not stall every other connection. */
#include <stdlib.h>
#include <string.h>

#include "napi/addon.h"
#include "napi/register.h"

/* Below this size compressing on the main thread is cheaper than a thread-pool round trip
 * (measured with zlib level 6 on JSON-like text: 16 KiB 0.27 ms, 64 KiB 2.4 ms, 1 MiB 29 ms;
 * a round trip costs tens of microseconds). JavaScript sends larger messages here. */
#define ASYNC_DEFLATE_MIN (64 * 1024)

/* What every job of a connection has. It is the first member of each job, so a job pointer is
 * also a job_base pointer. */
typedef struct job_base {
  napi_async_work work;
  napi_ref callback_ref;
  connection *c; /* not freed before the job ends (connection_job_started) */
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
  connection_job_started(c);
  return true;
}

/* Ends a job (on the main thread): the connection is freed now if release() came meanwhile
 * (nothing may use job->c after this call), then the job's callback gets argv, and what the
 * job held of the environment is dropped. */
static void job_finish(napi_env env, job_base *job, size_t argc, napi_value *argv) {
  connection_job_ended(env, job->c);
  napi_value callback, global;
  if (napi_get_reference_value(env, job->callback_ref, &callback) == napi_ok && callback) {
    napi_get_global(env, &global);
    napi_call_function(env, global, callback, argc, argv, NULL);
  }
  napi_delete_reference(env, job->callback_ref);
  napi_delete_async_work(env, job->work);
}

/* ---- compressing ---- */

typedef struct deflate_job {
  job_base base;
  conn_deflate_task task;
} deflate_job;

static void deflate_job_execute(napi_env env, void *data) {
  (void)env;
  conn_deflate_run(&((deflate_job *)data)->task);
}

/* What the caller's callback is told when the message could not be queued. */
static const char *send_failure_message(conn_send_result result) {
  switch (result) {
    case CONN_SEND_AFTER_CLOSE: return "WebSocket is not open: readyState 2 (CLOSING)";
    case CONN_SEND_NO_MEMORY: return "out of memory";
    default: return "compression failed";
  }
}

static void deflate_job_complete(napi_env env, napi_status status, void *data) {
  deflate_job *job = data;
  connection *c = job->base.c;
  if (status != napi_ok) job->task.result = PMD_NO_MEMORY;
  conn_send_result result = conn_deflate_finish(&c->engine, &job->task, c->released);
  napi_value argv[2];
  napi_get_undefined(env, &argv[0]);
  /* (A released connection's caller is gone: it needs no error.) */
  if (result != CONN_SENT && !c->released) {
    napi_value message;
    napi_create_string_utf8(env, send_failure_message(result), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &argv[0]);
  }
  argv[1] = make_uint(env, result == CONN_SENT ? conn_output_size(&c->engine) : 0);
  job_finish(env, &job->base, 2, argv);
  free(job);
}

/* compressAsync(handle, data, opcode, callback(err, queuedBytes)): compresses one whole
 * message in the thread pool, then queues it. The caller sends nothing else on this
 * connection until the callback, so messages keep their order and the deflater is used by
 * one thread at a time. */
static napi_value compress_async(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  GET_CONNECTION(c);
  int32_t opcode = 0;
  napi_get_value_int32(env, argv[2], &opcode);
  napi_valuetype cb_type;
  napi_typeof(env, argv[3], &cb_type);
  if ((opcode != OP_TEXT && opcode != OP_BINARY) || cb_type != napi_function)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "opcode and callback expected");
  if (c->released || !conn_deflate_negotiated(&c->engine) || conn_sending_fragments(&c->engine))
    return throw_error(env, "WS_ERR_NATIVE", "cannot compress on this connection now");

  /* The input is copied: the caller may change its buffer before the job runs. */
  uint8_t *input = NULL;
  size_t len = 0;
  napi_valuetype type;
  napi_typeof(env, argv[1], &type);
  if (type == napi_string) {
    input = string_utf8_copy(env, argv[1], &len);
  } else {
    const uint8_t *data;
    if (!get_bytes(env, argv[1], &data, &len))
      return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "data must be a string or bytes");
    input = malloc(len ? len : 1);
    if (input && len) memcpy(input, data, len);
  }
  deflate_job *job = input ? calloc(1, sizeof(*job)) : NULL;
  if (!job) {
    free(input);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  }
  conn_deflate_begin(&c->engine, &job->task, (uint8_t)opcode, input, len);
  if (!job_queue(env, &job->base, c, argv[3], "ws-native:deflate", deflate_job_execute,
                 deflate_job_complete)) {
    job->task.result = PMD_NO_MEMORY;
    conn_deflate_finish(&c->engine, &job->task, true);
    free(job);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "cannot start compression");
  }
  return make_undefined(env);
}

/* ---- inflating ---- */

typedef struct inflate_job {
  job_base base;
  conn_inflate_task task;
} inflate_job;

static void inflate_job_execute(napi_env env, void *data) {
  (void)env;
  conn_inflate_run(&((inflate_job *)data)->task);
}

static void inflate_job_complete(napi_env env, napi_status status, void *data) {
  inflate_job *job = data;
  connection *c = job->base.c;
  if (status != napi_ok) job->task.error = CONN_ERR_NO_MEMORY;
  bool ok = conn_inflate_finish(&c->engine, &job->task, c->released) == CONN_OK && !c->released;
  napi_value argv[2];
  napi_get_undefined(env, &argv[1]);
  if (ok && adopt_buffer(env, job->task.output.data, job->task.output.len, EXTERNAL_BUFFER_MIN,
                         &argv[1]) != napi_ok) {
    /* (adopt_buffer freed it.) The connection fails as for any lack of memory. */
    conn_fail(&c->engine, CONN_ERR_NO_MEMORY);
    ok = false;
  }
  argv[0] = make_bool(env, ok);
  job_finish(env, &job->base, 2, argv);
  free(job);
}

/* inflateAsync(handle, callback(ok, buffer)): inflates, in the thread pool, the message the
 * last EV_INFLATE event announced. The engine parses nothing more until it ends; when ok is
 * false, the connection failed (errorInfo() says why; its close frame is queued). */
static napi_value inflate_async(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  GET_CONNECTION(c);
  napi_valuetype cb_type;
  napi_typeof(env, argv[1], &cb_type);
  if (cb_type != napi_function)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback expected");
  if (c->released || !conn_inflating(&c->engine))
    return throw_error(env, "WS_ERR_NATIVE", "no message waits to be inflated");

  inflate_job *job = calloc(1, sizeof(*job));
  if (!job) return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
  conn_inflate_begin(&c->engine, &job->task);
  if (!job_queue(env, &job->base, c, argv[1], "ws-native:inflate", inflate_job_execute,
                 inflate_job_complete)) {
    job->task.error = CONN_ERR_NO_MEMORY;
    conn_inflate_finish(&c->engine, &job->task, false);
    free(job);
    return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "cannot start inflating");
  }
  return make_undefined(env);
}

bool jobs_register(napi_env env, napi_value exports, napi_value constants) {
  if (!set_uint_property(env, constants, "ASYNC_DEFLATE_MIN", ASYNC_DEFLATE_MIN)) return false;
  napi_property_descriptor props[] = {
      {"compressAsync", NULL, compress_async, NULL, NULL, NULL, napi_default, NULL},
      {"inflateAsync", NULL, inflate_async, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok;
}
