/* The opening handshake's glue: acceptKey() (codec/accept.c) and, for wss.handleSocket()
 * (lib/raw-upgrade.js), parseUpgradeRequest() (codec/http_request.c) and the request it builds. */
#include <math.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/accept.h"
#include "codec/http_request.h"
#include "napi/addon.h"
#include "napi/register.h"
#include "napi/upgrade.h"

/* How repeated header fields are combined into `headers`, as Node's http.IncomingMessage does
 * it, so that a request reads the same as from an http.Server. */
typedef enum duplicate_rule {
  DUP_JOIN_COMMA = 0, /* "a, b" (RFC 9110 5.3) */
  DUP_JOIN_SEMICOLON, /* cookie: "a; b" (RFC 6265 5.4) */
  DUP_ARRAY,          /* set-cookie: ["a", "b"] (its values may contain commas) */
  DUP_KEEP_FIRST      /* fields that cannot meaningfully repeat: the first one counts */
} duplicate_rule;

static const char *const keep_first_fields[] = {"age",
                                                "authorization",
                                                "content-length",
                                                "content-type",
                                                "etag",
                                                "expires",
                                                "from",
                                                "host",
                                                "if-modified-since",
                                                "if-unmodified-since",
                                                "last-modified",
                                                "location",
                                                "max-forwards",
                                                "proxy-authorization",
                                                "referer",
                                                "retry-after",
                                                "server",
                                                "user-agent"};

static bool name_is(const uint8_t *lower, size_t len, const char *name) {
  return strlen(name) == len && memcmp(lower, name, len) == 0;
}

static duplicate_rule rule_for(const uint8_t *lower, size_t len) {
  if (name_is(lower, len, "set-cookie")) return DUP_ARRAY;
  if (name_is(lower, len, "cookie")) return DUP_JOIN_SEMICOLON;
  for (size_t i = 0; i < sizeof(keep_first_fields) / sizeof(keep_first_fields[0]); i++)
    if (name_is(lower, len, keep_first_fields[i])) return DUP_KEEP_FIRST;
  return DUP_JOIN_COMMA;
}

static uint8_t ascii_lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

/* Header names are tokens (ASCII), so ASCII case folding is all there is. */
static bool same_name(const uint8_t *buf, http_span a, http_span b) {
  if (a.len != b.len) return false;
  for (size_t i = 0; i < a.len; i++)
    if (ascii_lower(buf[a.off + i]) != ascii_lower(buf[b.off + i])) return false;
  return true;
}

/* ---- errors ---- */

/* A Node-API call failed while building the result; throws unless it already did. */
static napi_value fail_native(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending)
    napi_throw_error(env, "WS_ERR_NATIVE", "parseUpgradeRequest: cannot build the request");
  return NULL;
}

/* ---- arguments ---- */

static bool get_uint8_array(napi_env env, napi_value value, const uint8_t **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is) return false;
  if (napi_get_typedarray_info(env, value, &type, len, &ptr, NULL, NULL) != napi_ok) return false;
  if (type != napi_uint8_array) return false;
  *data = ptr;
  return true;
}

/* A number >= 0 (Infinity allowed: no limit), as a size_t; false with an exception thrown
 * otherwise. */
static bool get_limit(napi_env env, napi_value value, const char *type_message,
                      const char *range_message, double max, size_t *out) {
  napi_valuetype type;
  double d = 0;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, value, &d) != napi_ok) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", type_message);
    return false;
  }
  if (!(d >= 0 && d <= max)) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", range_message);
    return false;
  }
  /* Past 2^53 a double no longer counts bytes one by one; any such limit is no limit. */
  *out = d >= 9007199254740992.0 ? SIZE_MAX : (size_t)d;
  return true;
}

/* ---- the result ---- */

static napi_value make_error(napi_env env, int status, const char *message) {
  napi_value result, v;
  if (napi_create_object(env, &result) != napi_ok) return fail_native(env);
  if (napi_create_int32(env, status, &v) != napi_ok ||
      napi_set_named_property(env, result, "status", v) != napi_ok)
    return fail_native(env);
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, result, "message", v) != napi_ok)
    return fail_native(env);
  return result;
}

/* Node's http module decodes the request line and header fields as latin1; so do we. */
static bool make_latin1(napi_env env, const uint8_t *data, size_t len, napi_value *out) {
  return napi_create_string_latin1(env, (const char *)data, len, out) == napi_ok;
}

static bool set_named(napi_env env, napi_value object, const char *name, napi_value value) {
  return napi_set_named_property(env, object, name, value) == napi_ok;
}

/* Defines an own, enumerable, writable data property. Unlike a plain set, a peer's header
 * named "__proto__" becomes a property rather than reaching the prototype setter. */
static bool define_own(napi_env env, napi_value object, napi_value key, napi_value value) {
  napi_property_descriptor d = {
      NULL, key, NULL, NULL, NULL, value, napi_writable | napi_enumerable | napi_configurable,
      NULL};
  return napi_define_properties(env, object, 1, &d) == napi_ok;
}

/* headers: lower-cased name -> value (repeats combined per rule_for). scratch holds at least
 * req->head_length bytes: any one name or combined value fits, as each field line carries
 * more bytes of syntax (": " and CRLF) than a separator costs. */
static bool build_headers(napi_env env, const uint8_t *buf, const http_request *req,
                          uint8_t *scratch, napi_value *headers) {
  if (napi_create_object(env, headers) != napi_ok) return false;
  for (size_t i = 0; i < req->header_count; i++) {
    const http_header *h = &req->headers[i];
    bool seen = false;
    for (size_t k = 0; k < i && !seen; k++) seen = same_name(buf, req->headers[k].name, h->name);
    if (seen) continue; /* combined with the first field of that name */

    for (size_t k = 0; k < h->name.len; k++) scratch[k] = ascii_lower(buf[h->name.off + k]);
    duplicate_rule rule = rule_for(scratch, h->name.len);
    napi_value key, value;
    if (!make_latin1(env, scratch, h->name.len, &key)) return false;

    if (rule == DUP_ARRAY) {
      if (napi_create_array(env, &value) != napi_ok) return false;
      uint32_t n = 0;
      for (size_t k = i; k < req->header_count; k++) {
        const http_header *f = &req->headers[k];
        napi_value item;
        if (!same_name(buf, f->name, h->name)) continue;
        if (!make_latin1(env, buf + f->value.off, f->value.len, &item) ||
            napi_set_element(env, value, n++, item) != napi_ok)
          return false;
      }
    } else {
      const char *sep = rule == DUP_JOIN_SEMICOLON ? "; " : ", ";
      size_t len = 0;
      for (size_t k = i; k < req->header_count; k++) {
        const http_header *f = &req->headers[k];
        if (k != i && !same_name(buf, f->name, h->name)) continue;
        if (k != i) {
          memcpy(scratch + len, sep, 2);
          len += 2;
        }
        memcpy(scratch + len, buf + f->value.off, f->value.len);
        len += f->value.len;
        if (rule == DUP_KEEP_FIRST) break;
      }
      if (!make_latin1(env, scratch, len, &value)) return false;
    }
    if (!define_own(env, *headers, key, value)) return false;
  }
  return true;
}

/* rawHeaders: [name, value, name, value, ...] as sent. */
static bool build_raw_headers(napi_env env, const uint8_t *buf, const http_request *req,
                              napi_value *raw) {
  if (napi_create_array_with_length(env, req->header_count * 2, raw) != napi_ok) return false;
  for (size_t i = 0; i < req->header_count; i++) {
    const http_header *h = &req->headers[i];
    napi_value name, value;
    if (!make_latin1(env, buf + h->name.off, h->name.len, &name) ||
        !make_latin1(env, buf + h->value.off, h->value.len, &value) ||
        napi_set_element(env, *raw, (uint32_t)(2 * i), name) != napi_ok ||
        napi_set_element(env, *raw, (uint32_t)(2 * i + 1), value) != napi_ok)
      return false;
  }
  return true;
}

napi_value upgrade_request_object(napi_env env, const uint8_t *buf, const http_request *req) {
  napi_value result, method, url, version, major, minor, headers, raw, head_length;
  char version_text[4] = {'1', '.', (char)('0' + req->version_minor), 0};
  if (napi_create_object(env, &result) != napi_ok ||
      !make_latin1(env, buf + req->method.off, req->method.len, &method) ||
      !make_latin1(env, buf + req->target.off, req->target.len, &url) ||
      napi_create_string_utf8(env, version_text, 3, &version) != napi_ok ||
      napi_create_uint32(env, req->version_major, &major) != napi_ok ||
      napi_create_uint32(env, req->version_minor, &minor) != napi_ok ||
      napi_create_double(env, (double)req->head_length, &head_length) != napi_ok)
    return fail_native(env);

  uint8_t *scratch = malloc(req->head_length);
  if (!scratch) {
    napi_throw_error(env, "WS_ERR_NATIVE", "parseUpgradeRequest: out of memory");
    return NULL;
  }
  bool ok = build_headers(env, buf, req, scratch, &headers);
  free(scratch);
  if (!ok || !build_raw_headers(env, buf, req, &raw)) return fail_native(env);

  if (!set_named(env, result, "method", method) || !set_named(env, result, "url", url) ||
      !set_named(env, result, "httpVersion", version) ||
      !set_named(env, result, "httpVersionMajor", major) ||
      !set_named(env, result, "httpVersionMinor", minor) ||
      !set_named(env, result, "headers", headers) || !set_named(env, result, "rawHeaders", raw) ||
      !set_named(env, result, "headLength", head_length))
    return fail_native(env);
  return result;
}

/* parseUpgradeRequest(buffer, maxHeaderSize, maxHeaders) parses the request head at the
 * start of buffer (a Uint8Array) and returns
 *   null while it is incomplete (within the limits: parse again when more bytes arrived),
 *   { status, message } for a request to refuse with that HTTP status (400, 431, 505),
 *   { method, url, httpVersion, httpVersionMajor, httpVersionMinor, headers, rawHeaders,
 *     headLength } for a complete head, whose bytes are buffer[0, headLength).
 * maxHeaderSize: bytes the head may take (>= 0, Infinity for no limit); maxHeaders: header
 * fields it may have (0 to HTTP_REQUEST_MAX_HEADERS). */
static napi_value parse_upgrade_request(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return fail_native(env);
  if (argc < 3)
    return throw_type_error(env, "ERR_MISSING_ARGS",
                            "parseUpgradeRequest(buffer, maxHeaderSize, maxHeaders) expected");

  const uint8_t *data = NULL;
  size_t len = 0;
  if (!get_uint8_array(env, argv[0], &data, &len))
    return throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "The \"buffer\" argument must be a Buffer or Uint8Array");
  size_t max_size, max_headers;
  if (!get_limit(env, argv[1], "The \"maxHeaderSize\" argument must be a number",
                 "The \"maxHeaderSize\" argument must be >= 0", INFINITY, &max_size) ||
      !get_limit(env, argv[2], "The \"maxHeaders\" argument must be a number",
                 "The \"maxHeaders\" argument must be >= 0 and <= 100", HTTP_REQUEST_MAX_HEADERS,
                 &max_headers))
    return NULL;

  http_request req;
  http_request_result r = http_request_parse(data, len, max_size, max_headers, &req);
  if (r == HTTP_REQUEST_INCOMPLETE) {
    napi_value null;
    napi_get_null(env, &null);
    return null;
  }
  if (r != HTTP_REQUEST_OK) return make_error(env, http_request_status(r), http_request_message(r));
  /* RFC 6455 4.1: the opening handshake is an HTTP/1.1 (or later) request. */
  if (req.version_minor < 1)
    return make_error(env, 400, "A WebSocket handshake needs HTTP/1.1 or later");
  return upgrade_request_object(env, data, &req);
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

bool upgrade_register(napi_env env, napi_value exports, napi_value constants) {
  (void)constants;
  napi_property_descriptor props[] = {
      {"acceptKey", NULL, accept_key, NULL, NULL, NULL, napi_default, NULL},
      {"parseUpgradeRequest", NULL, parse_upgrade_request, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok;
}
