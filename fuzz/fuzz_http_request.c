/* libFuzzer target for src/codec/http_request.c: the request-head parser over arbitrary bytes,
 * re-parsed at arbitrary prefixes as the raw-socket path does, must keep its promises (one
 * fixed result from some prefix on, the same as for the whole input; spans inside the head;
 * the limits) and agree with an independent line-by-line reference on what is a valid head.
 *
 * Input: [headers][size][n][n split sizes][data]. headers: max_headers = headers % 104 (so
 * values past HTTP_REQUEST_MAX_HEADERS occur); size: max_header_size, see limit_from_byte. */
#include <stdint.h>

#include "fuzz_util.h"
#include "codec/http_request.h"

/* Incremental parses per input; the rest of the input then arrives in one piece, so a long
 * input split in tiny pieces costs a bounded number of quadratic re-parses. */
#define MAX_STEPS 64

/* 0-63: tiny limits, so the limit lands inside request lines and headers; then steps of 128
 * bytes up to 24 KiB; 255: no limit. */
static size_t limit_from_byte(uint8_t b) {
  if (b < 64) return b;
  if (b == 255) return SIZE_MAX;
  return (size_t)(b - 63) * 128;
}

static http_request_result parse_copy(const uint8_t *data, size_t len, size_t max_size,
                                      size_t max_headers, http_request *out) {
  piece pc = piece_copy(data, len, 0);
  http_request_result r = http_request_parse(pc.data, len, max_size, max_headers, out);
  piece_free(&pc);
  return r;
}

static bool same_result(http_request_result r, const http_request *a, const http_request *b) {
  if (r == HTTP_REQUEST_INCOMPLETE) return true;
  if (r != HTTP_REQUEST_OK) return a->error_offset == b->error_offset;
  if (a->method.off != b->method.off || a->method.len != b->method.len) return false;
  if (a->target.off != b->target.off || a->target.len != b->target.len) return false;
  if (a->version_major != b->version_major || a->version_minor != b->version_minor) return false;
  if (a->header_count != b->header_count || a->head_length != b->head_length) return false;
  return memcmp(a->headers, b->headers, a->header_count * sizeof(a->headers[0])) == 0;
}

/* ---- reference: split the head into CRLF lines, then check each line on its own ---- */

static bool ref_tchar(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool ref_vchar(uint8_t c) { return (c >= 0x21 && c <= 0x7E) || c >= 0x80; }

static bool ref_request_line(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n && ref_tchar(s[i])) i++;
  if (i == 0 || i == n || s[i] != ' ') return false;
  size_t t = ++i;
  while (i < n && ref_vchar(s[i])) i++;
  if (i == t || i == n || s[i] != ' ') return false;
  i++;
  return n - i == 8 && memcmp(s + i, "HTTP/1.", 7) == 0 && s[i + 7] >= '0' && s[i + 7] <= '9';
}

static bool ref_field_line(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n && ref_tchar(s[i])) i++;
  if (i == 0 || i == n || s[i] != ':') return false;
  for (i++; i < n; i++)
    if (!ref_vchar(s[i]) && s[i] != ' ' && s[i] != '\t') return false;
  return true;
}

/* Whether data starts with a valid head, and if so its length and field count. */
static bool ref_head(const uint8_t *data, size_t len, size_t *head_len, size_t *fields) {
  size_t end = SIZE_MAX;
  for (size_t i = 0; i + 3 < len; i++) {
    if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
      end = i;
      break;
    }
  }
  if (end == SIZE_MAX) return false;
  size_t start = 0, line = 0;
  /* Lines of [0, end + 2): each ends at a CRLF, none holds another CR or LF. */
  while (start < end + 2) {
    size_t stop = start;
    while (data[stop] != '\r' && data[stop] != '\n') stop++;
    if (data[stop] != '\r' || data[stop + 1] != '\n') return false;
    bool ok = line == 0 ? ref_request_line(data + start, stop - start)
                        : ref_field_line(data + start, stop - start);
    if (!ok) return false;
    line++;
    start = stop + 2;
  }
  *head_len = end + 4;
  *fields = line - 1;
  return true;
}

/* ---- checks of one result ---- */

static bool is_ows(uint8_t c) { return c == ' ' || c == '\t'; }

/* The head is exactly what the fields say: method SP target SP HTTP/1.d CRLF, then per field
 * name ":" OWS value OWS CRLF, then CRLF; walked from the start, nothing left over. */
static void check_ok(const uint8_t *d, size_t len, size_t max_size, size_t max_headers,
                     const http_request *req) {
  size_t cap = max_headers < HTTP_REQUEST_MAX_HEADERS ? max_headers : HTTP_REQUEST_MAX_HEADERS;
  FUZZ_CHECK(req->head_length <= len && req->head_length <= max_size);
  FUZZ_CHECK(req->header_count <= cap);
  FUZZ_CHECK(req->version_major == 1 && req->version_minor <= 9);

  size_t p = 0;
  FUZZ_CHECK(req->method.off == 0 && req->method.len > 0);
  for (; p < req->method.len; p++) FUZZ_CHECK(ref_tchar(d[p]));
  FUZZ_CHECK(d[p++] == ' ');
  FUZZ_CHECK(req->target.off == p && req->target.len > 0);
  for (; p < req->target.off + req->target.len; p++) FUZZ_CHECK(ref_vchar(d[p]));
  FUZZ_CHECK(p + 10 <= req->head_length);
  FUZZ_CHECK(memcmp(d + p, " HTTP/1.", 8) == 0 && d[p + 8] == '0' + req->version_minor);
  p += 9;
  FUZZ_CHECK(d[p] == '\r' && d[p + 1] == '\n');
  p += 2;
  for (size_t i = 0; i < req->header_count; i++) {
    const http_header *h = &req->headers[i];
    FUZZ_CHECK(h->name.off == p && h->name.len > 0);
    for (; p < h->name.off + h->name.len; p++) FUZZ_CHECK(ref_tchar(d[p]));
    FUZZ_CHECK(p < req->head_length && d[p++] == ':');
    if (h->value.len > 0) {
      for (; p < h->value.off; p++) FUZZ_CHECK(is_ows(d[p]));
      FUZZ_CHECK(p == h->value.off && h->value.off + h->value.len <= req->head_length);
      FUZZ_CHECK(!is_ows(d[p]) && !is_ows(d[p + h->value.len - 1]));
      for (; p < h->value.off + h->value.len; p++) FUZZ_CHECK(ref_vchar(d[p]) || is_ows(d[p]));
    } else {
      FUZZ_CHECK(h->value.off >= p && h->value.off < req->head_length);
    }
    while (p < req->head_length && is_ows(d[p])) p++;
    FUZZ_CHECK(p + 2 <= req->head_length && d[p] == '\r' && d[p + 1] == '\n');
    p += 2;
  }
  FUZZ_CHECK(p + 2 == req->head_length && d[p] == '\r' && d[p + 1] == '\n');
}

static void check_result(const uint8_t *d, size_t len, size_t max_size, size_t max_headers,
                         http_request_result r, const http_request *req) {
  switch (r) {
    case HTTP_REQUEST_OK:
      check_ok(d, len, max_size, max_headers, req);
      FUZZ_CHECK(http_request_status(r) == 0);
      break;
    case HTTP_REQUEST_INCOMPLETE:
      FUZZ_CHECK(len <= max_size);
      FUZZ_CHECK(http_request_status(r) == 0);
      break;
    case HTTP_REQUEST_ERR_TOO_LARGE:
      FUZZ_CHECK(len > max_size && req->error_offset == max_size);
      FUZZ_CHECK(http_request_status(r) == 431);
      break;
    case HTTP_REQUEST_ERR_METHOD:
    case HTTP_REQUEST_ERR_TARGET:
    case HTTP_REQUEST_ERR_VERSION:
    case HTTP_REQUEST_ERR_VERSION_UNSUPPORTED:
    case HTTP_REQUEST_ERR_LINE_ENDING:
    case HTTP_REQUEST_ERR_LINE_FOLDING:
    case HTTP_REQUEST_ERR_HEADER_NAME:
    case HTTP_REQUEST_ERR_HEADER_VALUE:
    case HTTP_REQUEST_ERR_TOO_MANY_HEADERS:
      FUZZ_CHECK(req->error_offset < len && req->error_offset < max_size);
      FUZZ_CHECK(http_request_status(r) == (r == HTTP_REQUEST_ERR_VERSION_UNSUPPORTED ? 505
                                            : r == HTTP_REQUEST_ERR_TOO_MANY_HEADERS  ? 431
                                                                                      : 400));
      break;
    default: FUZZ_CHECK(0);
  }
  const char *message = http_request_message(r);
  FUZZ_CHECK(message != NULL && message[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  if (size < 3) return 0;
  size_t max_headers = in[0] % 104;
  size_t max_size = limit_from_byte(in[1]);
  size_t nsplit = in[2] & 15;
  if (size < 3 + nsplit) return 0;
  const uint8_t *data = in + 3 + nsplit;
  size_t len = size - 3 - nsplit;

  http_request whole;
  http_request_result final = parse_copy(data, len, max_size, max_headers, &whole);
  check_result(data, len, max_size, max_headers, final, &whole);

  /* Against the reference: a valid head within both limits, and nothing else, is OK. */
  size_t ref_len = 0, ref_fields = 0;
  size_t cap = max_headers < HTTP_REQUEST_MAX_HEADERS ? max_headers : HTTP_REQUEST_MAX_HEADERS;
  bool valid = ref_head(data, len, &ref_len, &ref_fields);
  if (valid && ref_len <= max_size && ref_fields <= cap) {
    FUZZ_CHECK(final == HTTP_REQUEST_OK && whole.head_length == ref_len &&
               whole.header_count == ref_fields);
  } else {
    FUZZ_CHECK(final != HTTP_REQUEST_OK);
    if (valid && ref_fields <= cap) FUZZ_CHECK(final == HTTP_REQUEST_ERR_TOO_LARGE);
    if (valid && ref_len <= max_size && ref_fields > cap)
      FUZZ_CHECK(final == HTTP_REQUEST_ERR_TOO_MANY_HEADERS);
  }
  if (final == HTTP_REQUEST_INCOMPLETE) {
    for (size_t i = 0; i + 3 < len; i++) FUZZ_CHECK(memcmp(data + i, "\r\n\r\n", 4) != 0);
  }

  /* The result is decided at one prefix length: INCOMPLETE just before it, final from it on. */
  size_t decided_at = final == HTTP_REQUEST_OK           ? whole.head_length
                      : final == HTTP_REQUEST_INCOMPLETE ? len + 1
                                                         : whole.error_offset + 1;
  http_request req;
  if (decided_at <= len) {
    FUZZ_CHECK(parse_copy(data, decided_at - 1, max_size, max_headers, &req) ==
               HTTP_REQUEST_INCOMPLETE);
    FUZZ_CHECK(parse_copy(data, decided_at, max_size, max_headers, &req) == final);
    FUZZ_CHECK(same_result(final, &req, &whole));
  }

  /* Re-parsed after each piece, as the raw-socket path does with what has arrived. */
  split_plan plan = {.sizes = in + 3, .count = nsplit};
  size_t have = 0;
  for (int step = 0; have < len; step++) {
    have += step < MAX_STEPS ? split_next(&plan, len - have) : len - have;
    http_request_result r = parse_copy(data, have, max_size, max_headers, &req);
    check_result(data, have, max_size, max_headers, r, &req);
    if (have < decided_at) {
      FUZZ_CHECK(r == HTTP_REQUEST_INCOMPLETE);
    } else {
      FUZZ_CHECK(r == final && same_result(final, &req, &whole));
    }
  }
  return 0;
}
