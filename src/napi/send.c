/* What JavaScript sends: messages and control frames framed (and compressed, masked) by the
 * engine into the connection's output queue, frames built once for many connections, the
 * close frame, and the queue handed back to a transport. */
#include <stdlib.h>
#include <string.h>

#include "codec/close_code.h"
#include "napi/addon.h"
#include "napi/register.h"

#define MAX_CLOSE_REASON 123

static napi_value out_of_memory(napi_env env) {
  return throw_error(env, "WS_ERR_OUT_OF_MEMORY", "out of memory");
}

static napi_value queued(napi_env env, const connection *c) {
  return make_uint(env, conn_output_size(&c->engine));
}

/* What send() returns: the payload's size (what bufferedAmount counts of it). */
static napi_value payload_size(napi_env env, size_t len) { return make_uint(env, len); }

/* A string message: encoded straight into the frame unless it is compressed. */
static napi_value send_string(napi_env env, connection *c, napi_value data, uint8_t opcode,
                              bool fin, bool compress, bool control) {
  conn *e = &c->engine;
  size_t len;
  if (napi_get_value_string_utf8(env, data, NULL, 0, &len) != napi_ok)
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "cannot read string");
  if (control && len > FRAME_MAX_CONTROL)
    return throw_range_error(env, "WS_ERR_CONTROL_PAYLOAD_TOO_LARGE",
                             "The data size must not be greater than 125 bytes");
  if (!control && conn_should_compress(e, compress, fin, len)) {
    uint8_t *text = string_utf8_copy(env, data, &len);
    if (!text) return out_of_memory(env);
    bool ok = conn_send_compressed(e, opcode, text, len);
    free(text);
    return ok ? payload_size(env, len) : out_of_memory(env);
  }
  /* napi_get_value_string_utf8 always writes a NUL after the text: make room for it past the
   * frame so the frame itself is sized exactly and the string is encoded in place. */
  if (!conn_output_ensure(e, FRAME_MAX_HEADER + len + 1)) return out_of_memory(env);
  uint8_t *dst = conn_frame_reserve(e, opcode, fin, false, len);
  if (!dst) return out_of_memory(env);
  size_t written = 0;
  napi_get_value_string_utf8(env, data, (char *)dst, len + 1, &written);
  conn_frame_commit(e, dst, len);
  return payload_size(env, len);
}

/* send(handle, data, opcode, fin, compress) -> the payload's size in bytes (a string's UTF-8
 * length, a compressed message's size before compression; 0 once released): what
 * bufferedAmount counts of it, without JavaScript measuring a string again. data: string or
 * binary view. compress: compress it if permessage-deflate was negotiated and it is a whole
 * message of at least the threshold's size (conn_should_compress). */
static napi_value send_frame(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  GET_CONNECTION(c);
  int32_t opcode = 0;
  napi_get_value_int32(env, argv[2], &opcode);
  if (opcode != OP_TEXT && opcode != OP_BINARY && opcode != OP_PING && opcode != OP_PONG)
    return throw_range_error(env, "ERR_OUT_OF_RANGE", "invalid opcode");
  bool fin = get_bool(env, argv[3]);
  bool compress = get_bool(env, argv[4]);
  bool control = opcode == OP_PING || opcode == OP_PONG;
  if (control) fin = true;
  if (c->released) return make_uint(env, 0);

  napi_valuetype type;
  napi_typeof(env, argv[1], &type);
  if (type == napi_string)
    return send_string(env, c, argv[1], (uint8_t)opcode, fin, compress, control);
  const uint8_t *data = NULL;
  size_t len = 0;
  if (!get_bytes(env, argv[1], &data, &len))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "data must be a string, Buffer, TypedArray, DataView or ArrayBuffer");
  if (control && len > FRAME_MAX_CONTROL)
    return throw_range_error(env, "WS_ERR_CONTROL_PAYLOAD_TOO_LARGE",
                             "The data size must not be greater than 125 bytes");
  bool ok = !control && conn_should_compress(&c->engine, compress, fin, len)
                ? conn_send_compressed(&c->engine, (uint8_t)opcode, data, len)
                : conn_send_frame(&c->engine, (uint8_t)opcode, fin, false, data, len);
  return ok ? payload_size(env, len) : out_of_memory(env);
}

/* sendHeader(handle, opcode, fin, rsv1, length) -> bytes queued. Server only: queues the
 * header of a data frame whose payload JavaScript writes itself, right after the output. */
static napi_value send_header(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  GET_CONNECTION(c);
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
  return queued(env, c);
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
    if (!text) return out_of_memory(env);
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
    return out_of_memory(env);
  }
  size_t framed_len;
  uint8_t *bytes = conn_output_detach(&scratch, &framed_len);
  napi_value buffer;
  if (adopt_buffer(env, bytes, framed_len, EXTERNAL_BUFFER_MIN, &buffer) != napi_ok)
    return out_of_memory(env);
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
    if (!text) return out_of_memory(env);
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
    return out_of_memory(env);
  return buffer;
}

/* sendFramed(handle, frames, compressed) -> bytes queued: appends whole frames made by
 * frameOnce. compressed: they were compressed without this connection's deflater, which then
 * must not refer back past them (its next message starts from an empty window). Empty frames
 * with compressed set only do that, for frames written without the engine. */
static napi_value send_framed(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  GET_CONNECTION(c);
  const uint8_t *data;
  size_t len;
  if (!get_bytes(env, argv[1], &data, &len))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "frames must be a Buffer");
  if (c->released) return make_uint(env, 0);
  if (!conn_is_server(&c->engine) || conn_sending_fragments(&c->engine))
    return throw_error(env, "WS_ERR_NATIVE", "cannot insert whole frames here");
  if (argc >= 3 && get_bool(env, argv[2])) conn_deflater_invalidate(&c->engine);
  if (len > 0 && !conn_send_framed(&c->engine, data, len)) return out_of_memory(env);
  return queued(env, c);
}

/* sendFramedToEach(frames, handles, count) -> connections queued to: sendFramed() without
 * `compressed` for each connection of handles[0..count), in one call (publish()'s plain frame
 * for its subscribers: one call down instead of one per subscriber). JS has checked each one
 * may take whole frames; a connection that has gone since, or that cannot, is left out. */
static napi_value send_framed_to_each(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  const uint8_t *data;
  size_t len, count;
  uint32_t *handles;
  if (!get_bytes(env, argv[0], &data, &len))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE", "frames must be a Buffer");
  if (!get_handle_list(env, argv[1], argv[2], &handles, &count)) return NULL;
  uint32_t queued = 0;
  for (size_t i = 0; i < count; i++) {
    connection *c = addon_connection_of_handle(env, handles[i]);
    if (c == NULL || !conn_is_server(&c->engine) || conn_sending_fragments(&c->engine)) continue;
    if (len > 0 && !conn_send_framed(&c->engine, data, len)) return out_of_memory(env);
    queued++;
  }
  return make_uint(env, queued);
}

/* close(handle, code, reason) -> true if a close frame was queued (false: one was sent
 * already). code undefined sends no status. Throws ws's errors for a bad code or reason. */
static napi_value send_close(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  GET_CONNECTION(c);
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

  bool sent = !c->released && conn_send_close(&c->engine, code, reason, reason_len);
  return make_bool(env, sent);
}

/* isValidCloseCode(code) -> whether code may be sent in a close frame (the one table of
 * codes, codec/close_code.c, which the engine checks received ones against too). */
static napi_value is_valid_close_code(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  double d = 0;
  bool valid = napi_get_value_double(env, argv[0], &d) == napi_ok && d == (double)(int32_t)d &&
               close_code_is_valid((int)d);
  return make_bool(env, valid);
}

/* takeOutput(handle[, pool, offset]) -> Buffer with everything queued, or undefined when
 * nothing is. With a pool (a Buffer), output that fits in pool[offset..] is copied there and
 * its length returned instead, and -1 (nothing taken) when it does not fit there but would
 * in a pool of its own: the caller writes a view of the pool, which costs no allocation of
 * its own (a Buffer per flush was a malloc and an ArrayBuffer for V8 to sweep: about 4% of a
 * wss server's time with 1 KiB messages, perf). */
static napi_value take_output(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  GET_CONNECTION(c);
  conn *e = &c->engine;
  if (c->released || conn_output_size(e) == 0) return make_undefined(env);

  if (argc >= 3) {
    void *pool = NULL;
    size_t pool_len = 0;
    double offset = -1;
    if (napi_get_buffer_info(env, argv[1], &pool, &pool_len) != napi_ok ||
        napi_get_value_double(env, argv[2], &offset) != napi_ok || !(offset >= 0) ||
        offset > (double)pool_len)
      return throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                              "takeOutput(handle, pool, offset): a Buffer and an offset in it");
    size_t at = (size_t)offset;
    size_t len = conn_output_size(e);
    if (len <= pool_len - at) {
      memcpy((uint8_t *)pool + at, conn_output_data(e), len);
      conn_output_taken(e);
      return make_number(env, (double)len);
    }
    if (len <= pool_len && at > 0) return make_number(env, -1);
  }

  napi_value buffer;
  if (conn_output_size(e) >= CONN_OUTPUT_HANDOFF_MIN) {
    size_t len;
    uint8_t *data = conn_output_detach(e, &len);
    if (adopt_buffer(env, data, len, 0, &buffer) != napi_ok) return out_of_memory(env);
    return buffer;
  }
  if (napi_create_buffer_copy(env, conn_output_size(e), conn_output_data(e), NULL, &buffer) !=
      napi_ok)
    return out_of_memory(env);
  conn_output_taken(e);
  return buffer;
}

/* pendingOutput(handle) -> bytes queued and not yet taken. */
static napi_value pending_output(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  GET_CONNECTION(c);
  return make_uint(env, c->released ? 0 : conn_output_size(&c->engine));
}

bool send_register(napi_env env, napi_value exports, napi_value constants) {
  if (!set_uint_property(env, constants, "OP_TEXT", OP_TEXT) ||
      !set_uint_property(env, constants, "OP_BINARY", OP_BINARY) ||
      !set_uint_property(env, constants, "OP_PING", OP_PING) ||
      !set_uint_property(env, constants, "OP_PONG", OP_PONG))
    return false;
  napi_property_descriptor props[] = {
      {"send", NULL, send_frame, NULL, NULL, NULL, napi_default, NULL},
      {"sendHeader", NULL, send_header, NULL, NULL, NULL, napi_default, NULL},
      {"frameOnce", NULL, frame_once, NULL, NULL, NULL, napi_default, NULL},
      {"buildFrame", NULL, build_frame, NULL, NULL, NULL, napi_default, NULL},
      {"sendFramed", NULL, send_framed, NULL, NULL, NULL, napi_default, NULL},
      {"sendFramedToEach", NULL, send_framed_to_each, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, send_close, NULL, NULL, NULL, napi_default, NULL},
      {"isValidCloseCode", NULL, is_valid_close_code, NULL, NULL, NULL, napi_default, NULL},
      {"takeOutput", NULL, take_output, NULL, NULL, NULL, napi_default, NULL},
      {"pendingOutput", NULL, pending_output, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok;
}
