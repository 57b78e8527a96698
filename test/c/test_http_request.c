/* Unit tests for http_request.c: what a valid head parses to, every split of it, each error
 * with the byte that decides it, the two limits, bare-LF refusal, and single-byte mutations of
 * a valid head against the parser's prefix promise. Every parse reads from a heap copy of
 * exactly the bytes given, so AddressSanitizer and valgrind catch any read past them. */
#include "check.h"
#include "codec/http_request.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define BIG ((size_t)1 << 20) /* a max_header_size that never matters */

static const char valid_head[] =
    "GET /chat?room=1 HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "X-Spaces: \t  a  b \t \r\n"
    "X-Empty:\r\n"
    "X-Empty-Ows:  \t \r\n"
    "x-odd!#$%&'*+-.^_`|~: v\r\n"
    "\r\n";

/* Parses a heap copy of buf[0, len) that ends exactly at len. */
static http_request_result parse(const void *buf, size_t len, size_t max_size, size_t max_headers,
                                 http_request *out) {
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) abort();
  if (len) memcpy(copy, buf, len);
  http_request_result r = http_request_parse(copy, len, max_size, max_headers, out);
  free(copy);
  return r;
}

static http_request_result parse_str(const char *s, http_request *out) {
  return parse(s, strlen(s), BIG, HTTP_REQUEST_MAX_HEADERS, out);
}

static int span_is(const char *buf, http_span span, const char *want) {
  return span.len == strlen(want) && memcmp(buf + span.off, want, span.len) == 0;
}

#define CHECK_SPAN(buf, span, want)                                                    \
  CHECKF(span_is((buf), (span), (want)), "got \"%.*s\", want \"%s\"", (int)(span).len, \
         (buf) + (span).off, (want))

static int same_request(const http_request *a, const http_request *b) {
  if (a->method.off != b->method.off || a->method.len != b->method.len) return 0;
  if (a->target.off != b->target.off || a->target.len != b->target.len) return 0;
  if (a->version_major != b->version_major || a->version_minor != b->version_minor) return 0;
  if (a->header_count != b->header_count || a->head_length != b->head_length) return 0;
  for (size_t i = 0; i < a->header_count; i++) {
    const http_header *x = &a->headers[i], *y = &b->headers[i];
    if (x->name.off != y->name.off || x->name.len != y->name.len) return 0;
    if (x->value.off != y->value.off || x->value.len != y->value.len) return 0;
  }
  return 1;
}

static void test_valid_request(void) {
  http_request req;
  const char *b = valid_head;
  CHECK_EQ_INT(parse_str(b, &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.head_length, strlen(b));
  CHECK_SPAN(b, req.method, "GET");
  CHECK_SPAN(b, req.target, "/chat?room=1");
  CHECK_EQ_INT(req.version_major, 1);
  CHECK_EQ_INT(req.version_minor, 1);
  CHECK_EQ_INT(req.header_count, 9);
  CHECK_SPAN(b, req.headers[0].name, "Host");
  CHECK_SPAN(b, req.headers[0].value, "example.com:8080");
  CHECK_SPAN(b, req.headers[2].name, "Connection");
  CHECK_SPAN(b, req.headers[2].value, "keep-alive, Upgrade");
  CHECK_SPAN(b, req.headers[3].value, "dGhlIHNhbXBsZSBub25jZQ==");
  /* OWS around a value is not part of it; whitespace inside it is. */
  CHECK_SPAN(b, req.headers[5].value, "a  b");
  CHECK_SPAN(b, req.headers[6].name, "X-Empty");
  CHECK_SPAN(b, req.headers[6].value, "");
  CHECK_SPAN(b, req.headers[7].value, "");
  /* Every tchar is allowed in a name. */
  CHECK_SPAN(b, req.headers[8].name, "x-odd!#$%&'*+-.^_`|~");
  CHECK_SPAN(b, req.headers[8].value, "v");
  /* An empty value still points into the buffer, at its line's CR. */
  CHECK(req.headers[6].value.off <= strlen(b) && b[req.headers[6].value.off] == '\r');
}

static void test_minimal_and_versions(void) {
  http_request req;
  const char *b = "GET / HTTP/1.1\r\n\r\n";
  CHECK_EQ_INT(parse_str(b, &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.header_count, 0);
  CHECK_EQ_INT(req.head_length, strlen(b));
  CHECK_SPAN(b, req.target, "/");

  /* HTTP/1.0 is valid HTTP (the upgrade glue refuses it, not the parser); so is 1.9. */
  CHECK_EQ_INT(parse_str("GET / HTTP/1.0\r\n\r\n", &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.version_minor, 0);
  CHECK_EQ_INT(parse_str("GET / HTTP/1.9\r\n\r\n", &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.version_minor, 9);

  /* Other methods, absolute-form and asterisk-form targets, obs-text in a target. */
  b = "M-SEARCH * HTTP/1.1\r\n\r\n";
  CHECK_EQ_INT(parse_str(b, &req), HTTP_REQUEST_OK);
  CHECK_SPAN(b, req.method, "M-SEARCH");
  CHECK_SPAN(b, req.target, "*");
  b = "GET http://h/p?q=\xc3\xa9 HTTP/1.1\r\n\r\n";
  CHECK_EQ_INT(parse_str(b, &req), HTTP_REQUEST_OK);
  CHECK_SPAN(b, req.target, "http://h/p?q=\xc3\xa9");

  /* obs-text and every VCHAR in a value. */
  char value[256];
  size_t n = 0;
  for (int c = 0x21; c <= 0xFF; c++)
    if (c != 0x7F) value[n++] = (char)c;
  value[n] = 0;
  char head[512];
  snprintf(head, sizeof head, "GET / HTTP/1.1\r\nX: %s\r\n\r\n", value);
  CHECK_EQ_INT(parse_str(head, &req), HTTP_REQUEST_OK);
  CHECK_SPAN(head, req.headers[0].value, value);
}

static void test_bytes_after_head(void) {
  /* A frame sent in the same segment as the head is not part of the head. */
  const char b[] = "GET / HTTP/1.1\r\nA: b\r\n\r\n\x81\x85\r\n\r\nxyz";
  size_t head = strlen("GET / HTTP/1.1\r\nA: b\r\n\r\n");
  http_request req;
  CHECK_EQ_INT(parse(b, sizeof b - 1, BIG, 100, &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.head_length, head);
  /* Garbage after the head does not matter either. */
  const char g[] = "GET / HTTP/1.1\r\n\r\n\0\n\r\x7f";
  CHECK_EQ_INT(parse(g, sizeof g - 1, BIG, 100, &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.head_length, 18);
}

/* Every prefix of a valid head (followed by a few bytes) is INCOMPLETE until the head is
 * whole, then OK with the same fields: the caller re-parsing what arrived at any split. */
static void test_every_split(void) {
  char buf[sizeof valid_head + 8];
  size_t head = strlen(valid_head);
  memcpy(buf, valid_head, head);
  memcpy(buf + head, "\x82\x80zzzz", 6);
  size_t total = head + 6;
  http_request whole;
  CHECK_EQ_INT(parse(buf, total, BIG, 100, &whole), HTTP_REQUEST_OK);
  for (size_t n = 0; n <= total; n++) {
    http_request req;
    http_request_result r = parse(buf, n, BIG, 100, &req);
    if (n < head) {
      if (!CHECKF(r == HTTP_REQUEST_INCOMPLETE, "prefix %zu: %d", n, r)) return;
    } else {
      if (!CHECKF(r == HTTP_REQUEST_OK && same_request(&req, &whole), "prefix %zu: %d", n, r))
        return;
    }
  }
  /* Also with a limit of exactly the head's size, which every prefix is within. */
  for (size_t n = 0; n <= total; n++) {
    http_request req;
    http_request_result r = parse(buf, n, head, 100, &req);
    http_request_result want = n < head ? HTTP_REQUEST_INCOMPLETE : HTTP_REQUEST_OK;
    if (!CHECKF(r == want, "limit %zu, prefix %zu: %d", head, n, r)) return;
  }
}

typedef struct error_case {
  const char *input;
  http_request_result result;
  size_t offset; /* of the deciding byte */
} error_case;

/* Checks a case whole, and that each prefix is INCOMPLETE before the deciding byte and the
 * same error from it on. */
static void check_error_case(const error_case *c, size_t max_size, size_t max_headers) {
  size_t len = strlen(c->input);
  for (size_t n = 0; n <= len; n++) {
    http_request req;
    http_request_result r = parse(c->input, n, max_size, max_headers, &req);
    if (n <= c->offset) {
      if (!CHECKF(r == HTTP_REQUEST_INCOMPLETE, "%s: prefix %zu gave %d", c->input, n, r)) return;
    } else if (!CHECKF(r == c->result && req.error_offset == c->offset,
                       "\"%s\" prefix %zu: result %d offset %zu, want %d at %zu", c->input, n, r,
                       req.error_offset, c->result, c->offset)) {
      return;
    }
  }
}

static void test_errors(void) {
  static const error_case cases[] = {
      /* request line */
      {"\r\nGET / HTTP/1.1\r\n\r\n", HTTP_REQUEST_ERR_METHOD, 0},
      {" GET / HTTP/1.1\r\n\r\n", HTTP_REQUEST_ERR_METHOD, 0},
      {"G(T / HTTP/1.1\r\n\r\n", HTTP_REQUEST_ERR_METHOD, 1},
      {"GET\t/ HTTP/1.1\r\n\r\n", HTTP_REQUEST_ERR_METHOD, 3},
      {"\x16\x03\x01\x02\x00\x01\x00", HTTP_REQUEST_ERR_METHOD, 0}, /* a TLS ClientHello */
      {"GET  / HTTP/1.1\r\n\r\n", HTTP_REQUEST_ERR_TARGET, 4},
      {"GET \r\n\r\n", HTTP_REQUEST_ERR_TARGET, 4},
      {"GET /a\x7f HTTP/1.1\r\n\r\n", HTTP_REQUEST_ERR_TARGET, 6},
      {"GET /a\tb HTTP/1.1\r\n\r\n", HTTP_REQUEST_ERR_TARGET, 6},
      {"GET /\r\n\r\n", HTTP_REQUEST_ERR_TARGET, 5}, /* HTTP/0.9 */
      {"GET / HTTP/1.1 \r\n\r\n", HTTP_REQUEST_ERR_VERSION, 14},
      {"GET / HTTP/1.11\r\n\r\n", HTTP_REQUEST_ERR_VERSION, 14},
      {"GET / http/1.1\r\n\r\n", HTTP_REQUEST_ERR_VERSION, 6},
      {"GET / HTTP/1\r\n\r\n", HTTP_REQUEST_ERR_VERSION, 12},
      {"GET / HTTP/1.x\r\n\r\n", HTTP_REQUEST_ERR_VERSION, 13},
      {"GET / HTTP/x.1\r\n\r\n", HTTP_REQUEST_ERR_VERSION, 11},
      {"GET / HTTP/1.1 extra\r\n\r\n", HTTP_REQUEST_ERR_VERSION, 14},
      {"GET / HTTP/2.0\r\n\r\n", HTTP_REQUEST_ERR_VERSION_UNSUPPORTED, 11},
      {"GET / HTTP/0.9\r\n\r\n", HTTP_REQUEST_ERR_VERSION_UNSUPPORTED, 11},
      {"GET / HTTP/3\r\n\r\n", HTTP_REQUEST_ERR_VERSION_UNSUPPORTED, 11},
      /* line ends: CRLF only */
      {"GET / HTTP/1.1\n\r\n", HTTP_REQUEST_ERR_LINE_ENDING, 14},
      {"GET / HTTP/1.1\rX\n", HTTP_REQUEST_ERR_LINE_ENDING, 15},
      {"GET / HTTP/1.1\r\nA: b\n\r\n", HTTP_REQUEST_ERR_LINE_ENDING, 20},
      {"GET / HTTP/1.1\r\nA:\n\r\n", HTTP_REQUEST_ERR_LINE_ENDING, 18},
      {"GET / HTTP/1.1\r\nA: b\r\n\n", HTTP_REQUEST_ERR_LINE_ENDING, 22},
      {"GET / HTTP/1.1\r\nA: b\r\n\r\r", HTTP_REQUEST_ERR_LINE_ENDING, 23},
      {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", HTTP_REQUEST_ERR_LINE_ENDING, 21}, /* bare CR */
      {"GET / HTTP/1.1\r\nA: b\r\r\n\r\n", HTTP_REQUEST_ERR_LINE_ENDING, 21},
      /* obs-fold, and whitespace before the first header */
      {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", HTTP_REQUEST_ERR_LINE_FOLDING, 22},
      {"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", HTTP_REQUEST_ERR_LINE_FOLDING, 22},
      {"GET / HTTP/1.1\r\n A: b\r\n\r\n", HTTP_REQUEST_ERR_LINE_FOLDING, 16},
      /* names */
      {"GET / HTTP/1.1\r\n: b\r\n\r\n", HTTP_REQUEST_ERR_HEADER_NAME, 16},
      {"GET / HTTP/1.1\r\nA : b\r\n\r\n", HTTP_REQUEST_ERR_HEADER_NAME, 17},
      {"GET / HTTP/1.1\r\nA\t: b\r\n\r\n", HTTP_REQUEST_ERR_HEADER_NAME, 17},
      {"GET / HTTP/1.1\r\nA b: c\r\n\r\n", HTTP_REQUEST_ERR_HEADER_NAME, 17},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", HTTP_REQUEST_ERR_HEADER_NAME, 23},
      {"GET / HTTP/1.1\r\nA(b): c\r\n\r\n", HTTP_REQUEST_ERR_HEADER_NAME, 17},
      {"GET / HTTP/1.1\r\n\xc3\xa9: c\r\n\r\n", HTTP_REQUEST_ERR_HEADER_NAME, 16},
      {"GET / HTTP/1.1\r\nA: b\r\n:\r\n\r\n", HTTP_REQUEST_ERR_HEADER_NAME, 22},
      /* values: control characters */
      {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", HTTP_REQUEST_ERR_HEADER_VALUE, 20},
      {"GET / HTTP/1.1\r\nA: \x7f\r\n\r\n", HTTP_REQUEST_ERR_HEADER_VALUE, 19},
      {"GET / HTTP/1.1\r\nA:\x1b[0m\r\n\r\n", HTTP_REQUEST_ERR_HEADER_VALUE, 18},
      {"GET / HTTP/1.1\r\nA: b \x0b\r\n\r\n", HTTP_REQUEST_ERR_HEADER_VALUE, 21},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_error_case(&cases[i], BIG, 100);

  /* NUL cannot be in a C string literal case; anywhere in a value, it is refused. */
  const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
  http_request req;
  CHECK_EQ_INT(parse(nul, sizeof nul - 1, BIG, 100, &req), HTTP_REQUEST_ERR_HEADER_VALUE);
  CHECK_EQ_INT(req.error_offset, 20);
  const char nul_target[] = "GET /\0 HTTP/1.1\r\n\r\n";
  CHECK_EQ_INT(parse(nul_target, sizeof nul_target - 1, BIG, 100, &req), HTTP_REQUEST_ERR_TARGET);
  const char nul_method[] = "G\0T / HTTP/1.1\r\n\r\n";
  CHECK_EQ_INT(parse(nul_method, sizeof nul_method - 1, BIG, 100, &req), HTTP_REQUEST_ERR_METHOD);
}

static void test_bare_lf_everywhere(void) {
  /* A whole head with LF-only line ends is refused at its first LF. */
  const char *lf = "GET / HTTP/1.1\nHost: a\nUpgrade: websocket\n\n";
  http_request req;
  CHECK_EQ_INT(parse_str(lf, &req), HTTP_REQUEST_ERR_LINE_ENDING);
  CHECK_EQ_INT(req.error_offset, 14);
  /* Replacing any one CRLF of a valid head by LF is refused at that LF. */
  size_t len = strlen(valid_head);
  for (size_t i = 0; i + 1 < len; i++) {
    if (valid_head[i] != '\r') continue;
    char buf[sizeof valid_head];
    memcpy(buf, valid_head, i);
    memcpy(buf + i, valid_head + i + 1, len - i - 1);
    http_request_result r = parse(buf, len - 1, BIG, 100, &req);
    if (!CHECKF(r == HTTP_REQUEST_ERR_LINE_ENDING && req.error_offset == i,
                "LF at %zu: result %d at %zu", i, r, req.error_offset))
      return;
  }
}

/* A head of exactly `size` bytes: a request line and padding in one header. */
static size_t make_head(char *buf, size_t size) {
  static const char start[] = "GET / HTTP/1.1\r\nX: ";
  static const char end[] = "\r\n\r\n";
  size_t fixed = strlen(start) + strlen(end);
  if (size < fixed + 1) return 0;
  memcpy(buf, start, strlen(start));
  memset(buf + strlen(start), 'a', size - fixed);
  memcpy(buf + size - strlen(end), end, strlen(end));
  return size;
}

static void test_header_size_limit(void) {
  char buf[4096];
  http_request req;
  size_t size = make_head(buf, 1000);
  CHECK_EQ_INT(parse(buf, size, 1000, 100, &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.head_length, 1000);
  /* One byte over: TOO_LARGE once max + 1 bytes are there, INCOMPLETE before. */
  CHECK_EQ_INT(parse(buf, size, 999, 100, &req), HTTP_REQUEST_ERR_TOO_LARGE);
  CHECK_EQ_INT(req.error_offset, 999);
  CHECK_EQ_INT(parse(buf, 999, 999, 100, &req), HTTP_REQUEST_INCOMPLETE);
  CHECK_EQ_INT(parse(buf, 1000, 999, 100, &req), HTTP_REQUEST_ERR_TOO_LARGE);

  /* A slowloris: an endless header is refused as soon as it passes the limit, though the
   * head is still incomplete; the bytes beyond the limit are not even looked at. */
  char endless[2000];
  memcpy(endless, "GET / HTTP/1.1\r\nX-Slow: ", 24);
  memset(endless + 24, 'z', sizeof endless - 24);
  CHECK_EQ_INT(parse(endless, 1024, 1024, 100, &req), HTTP_REQUEST_INCOMPLETE);
  CHECK_EQ_INT(parse(endless, 1025, 1024, 100, &req), HTTP_REQUEST_ERR_TOO_LARGE);
  CHECK_EQ_INT(req.error_offset, 1024);
  endless[1500] = '\0';
  CHECK_EQ_INT(parse(endless, sizeof endless, 1024, 100, &req), HTTP_REQUEST_ERR_TOO_LARGE);

  /* A syntax error within the limit is reported as such, even past the limit. */
  endless[500] = '\x01';
  CHECK_EQ_INT(parse(endless, sizeof endless, 1024, 100, &req), HTTP_REQUEST_ERR_HEADER_VALUE);
  CHECK_EQ_INT(req.error_offset, 500);

  /* The request line counts too: a long target alone is too large. */
  char target[300] = "GET /";
  memset(target + 5, 'p', 290);
  target[295] = 0;
  CHECK_EQ_INT(parse(target, strlen(target), 100, 100, &req), HTTP_REQUEST_ERR_TOO_LARGE);
  CHECK_EQ_INT(req.error_offset, 100);

  /* Limit 0: nothing fits, but no bytes yet is still just incomplete. */
  CHECK_EQ_INT(parse("", 0, 0, 100, &req), HTTP_REQUEST_INCOMPLETE);
  CHECK_EQ_INT(parse("G", 1, 0, 100, &req), HTTP_REQUEST_ERR_TOO_LARGE);
  CHECK_EQ_INT(req.error_offset, 0);
  CHECK_EQ_INT(parse("", 0, BIG, 100, &req), HTTP_REQUEST_INCOMPLETE);
  CHECK_EQ_INT(http_request_parse(NULL, 0, BIG, 100, &req), HTTP_REQUEST_INCOMPLETE);

  /* Every head size against every nearby limit. */
  for (size_t s = 25; s < 80; s++) {
    size = make_head(buf, s);
    for (size_t max = s - 3; max <= s + 3; max++) {
      http_request_result r = parse(buf, size, max, 100, &req);
      if (!CHECKF(r == (s <= max ? HTTP_REQUEST_OK : HTTP_REQUEST_ERR_TOO_LARGE),
                  "head %zu, limit %zu: %d", s, max, r))
        return;
    }
  }
}

/* A head with `count` headers "H<i>: <i>". */
static size_t make_headers(char *buf, size_t cap, size_t count) {
  size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
  for (size_t i = 0; i < count; i++) n += (size_t)snprintf(buf + n, cap - n, "H%zu: %zu\r\n", i, i);
  n += (size_t)snprintf(buf + n, cap - n, "\r\n");
  return n;
}

static void test_header_count_limit(void) {
  static char buf[8192];
  http_request req;
  size_t len = make_headers(buf, sizeof buf, 10);
  CHECK_EQ_INT(parse(buf, len, BIG, 10, &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.header_count, 10);
  CHECK_SPAN(buf, req.headers[9].name, "H9");
  CHECK_SPAN(buf, req.headers[9].value, "9");
  CHECK_EQ_INT(parse(buf, len, BIG, 9, &req), HTTP_REQUEST_ERR_TOO_MANY_HEADERS);
  /* Decided at the first byte of the tenth header line. */
  const char *tenth = strstr(buf, "H9:");
  CHECK_EQ_INT(req.error_offset, tenth - buf);
  CHECK_EQ_INT(parse(buf, (size_t)(tenth - buf), BIG, 9, &req), HTTP_REQUEST_INCOMPLETE);
  CHECK_EQ_INT(parse(buf, (size_t)(tenth - buf) + 1, BIG, 9, &req),
               HTTP_REQUEST_ERR_TOO_MANY_HEADERS);

  /* Zero allowed: a head without headers is fine, one header is not. */
  CHECK_EQ_INT(parse_str("GET / HTTP/1.1\r\n\r\n", &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\n\r\n", 18, BIG, 0, &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\r\n\r\n", 24, BIG, 0, &req),
               HTTP_REQUEST_ERR_TOO_MANY_HEADERS);
  CHECK_EQ_INT(req.error_offset, 16);

  /* The fixed array's size caps any larger limit. */
  len = make_headers(buf, sizeof buf, HTTP_REQUEST_MAX_HEADERS);
  CHECK_EQ_INT(parse(buf, len, BIG, 1000, &req), HTTP_REQUEST_OK);
  CHECK_EQ_INT(req.header_count, HTTP_REQUEST_MAX_HEADERS);
  CHECK_SPAN(buf, req.headers[HTTP_REQUEST_MAX_HEADERS - 1].name, "H99");
  len = make_headers(buf, sizeof buf, HTTP_REQUEST_MAX_HEADERS + 1);
  CHECK_EQ_INT(parse(buf, len, BIG, 1000, &req), HTTP_REQUEST_ERR_TOO_MANY_HEADERS);
  CHECK_EQ_INT(parse(buf, len, BIG, (size_t)-1, &req), HTTP_REQUEST_ERR_TOO_MANY_HEADERS);

  /* An obs-fold after the last allowed header is a fold, not a header too many. */
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 27, BIG, 1, &req),
               HTTP_REQUEST_ERR_LINE_FOLDING);
  /* The end of the head after the last allowed header is fine. */
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nA: b\r\n\r\n", 24, BIG, 1, &req), HTTP_REQUEST_OK);
}

static void test_status_and_message(void) {
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_OK), 0);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_INCOMPLETE), 0);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_METHOD), 400);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_TARGET), 400);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_VERSION), 400);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_VERSION_UNSUPPORTED), 505);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_LINE_ENDING), 400);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_LINE_FOLDING), 400);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_HEADER_NAME), 400);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_HEADER_VALUE), 400);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_TOO_LARGE), 431);
  CHECK_EQ_INT(http_request_status(HTTP_REQUEST_ERR_TOO_MANY_HEADERS), 431);
  for (int r = HTTP_REQUEST_OK; r <= HTTP_REQUEST_ERR_TOO_MANY_HEADERS; r++) {
    const char *m = http_request_message((http_request_result)r);
    CHECKF(m != NULL && strlen(m) > 0, "result %d", r);
  }
  CHECK(strcmp(http_request_message(HTTP_REQUEST_ERR_TOO_LARGE),
               http_request_message(HTTP_REQUEST_ERR_TOO_MANY_HEADERS)) != 0);
}

/* The parser's promises on an OK result, checked from the bytes themselves. */
static int ok_invariants(const uint8_t *b, size_t len, size_t max_size, size_t max_headers,
                         const http_request *req) {
  if (req->head_length > len || req->head_length > max_size || req->head_length < 4) return 0;
  if (memcmp(b + req->head_length - 4, "\r\n\r\n", 4) != 0) return 0;
  if (req->header_count > max_headers) return 0;
  if (req->method.off != 0 || req->method.len == 0) return 0;
  if (req->target.len == 0 || req->target.off + req->target.len > req->head_length) return 0;
  for (size_t i = 0; i < req->header_count; i++) {
    const http_header *h = &req->headers[i];
    if (h->name.len == 0 || h->name.off + h->name.len >= req->head_length) return 0;
    if (b[h->name.off + h->name.len] != ':') return 0;
    if (h->value.off + h->value.len > req->head_length) return 0;
    for (size_t k = 0; k < h->value.len; k++) {
      uint8_t c = b[h->value.off + k];
      if ((c < 0x20 && c != '\t') || c == 0x7F) return 0;
    }
    if (h->value.len && (b[h->value.off] == ' ' || b[h->value.off] == '\t')) return 0;
  }
  return 1;
}

/* Every single-byte change of a valid head, with a few interesting replacement bytes: the
 * results of its prefixes must go INCOMPLETE ... INCOMPLETE, then one fixed result. */
static void test_mutations(void) {
  static const uint8_t repl[] = {0, '\t', '\n', '\r', ' ', ':', 'a', 0x7F, 0x80, 0xFF, '1', '2'};
  size_t len = strlen(valid_head);
  uint8_t buf[sizeof valid_head];
  long ok_count = 0, error_count = 0;
  for (size_t pos = 0; pos < len; pos++) {
    for (size_t k = 0; k < sizeof repl; k++) {
      memcpy(buf, valid_head, len);
      buf[pos] = repl[k];
      size_t max_size = (pos * 7 + k) % 3 == 0 ? len - 1 : BIG;
      http_request whole;
      http_request_result final = parse(buf, len, max_size, 100, &whole);
      if (final == HTTP_REQUEST_OK) {
        ok_count++;
        if (!CHECKF(ok_invariants(buf, len, max_size, 100, &whole), "pos %zu byte %02x", pos,
                    repl[k]))
          return;
      } else if (final != HTTP_REQUEST_INCOMPLETE) {
        error_count++;
        if (!CHECKF(whole.error_offset < len, "pos %zu", pos)) return;
      }
      bool decided = false;
      for (size_t n = 0; n <= len; n++) {
        http_request req;
        http_request_result r = parse(buf, n, max_size, 100, &req);
        if (r == HTTP_REQUEST_INCOMPLETE) {
          if (!CHECKF(!decided, "pos %zu byte %02x: prefix %zu undecided again", pos, repl[k], n))
            return;
          continue;
        }
        decided = true;
        if (!CHECKF(r == final, "pos %zu byte %02x prefix %zu: %d vs %d", pos, repl[k], n, r,
                    final))
          return;
        if (r == HTTP_REQUEST_OK) {
          if (!CHECK(same_request(&req, &whole))) return;
        } else if (!CHECKF(req.error_offset == whole.error_offset && req.error_offset < n,
                           "pos %zu", pos)) {
          return;
        }
      }
    }
  }
  CHECK(ok_count > 0 && error_count > 0);
}

int main(void) {
  RUN(test_valid_request);
  RUN(test_minimal_and_versions);
  RUN(test_bytes_after_head);
  RUN(test_every_split);
  RUN(test_errors);
  RUN(test_bare_lf_everywhere);
  RUN(test_header_size_limit);
  RUN(test_header_count_limit);
  RUN(test_status_and_message);
  RUN(test_mutations);
  return CHECK_DONE();
}
