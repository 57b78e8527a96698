/* The HTTP/1.1 request-head parser of the raw-socket handshake path: one left-to-right pass
 * over the bytes that arrived, a state per syntactic position; what is accepted is in the .h. */
#include "http_request.h"

#include <stdbool.h>

enum parse_state {
  S_METHOD,
  S_TARGET_START,
  S_TARGET,
  S_VERSION, /* matching "HTTP/" DIGIT "." DIGIT, then the CR; version_pos says where */
  S_REQUEST_LINE_LF,
  S_LINE_START, /* a header line or the empty line that ends the head */
  S_NAME,
  S_VALUE, /* the value and the OWS around it */
  S_HEADER_LF,
  S_HEAD_LF
};

static const char version_prefix[] = "HTTP/";
#define VERSION_PREFIX_LEN (sizeof(version_prefix) - 1)

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(uint8_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

/* VCHAR or obs-text: what a field value (between its whitespace) and a target are made of. */
static bool is_visible(uint8_t c) { return c > 0x20 && c != 0x7F; }

static bool is_ows(uint8_t c) { return c == ' ' || c == '\t'; }

static http_request_result fail(http_request *out, http_request_result result, size_t at) {
  out->error_offset = at;
  return result;
}

http_request_result http_request_parse(const uint8_t *buf, size_t len, size_t max_header_size,
                                       size_t max_headers, http_request *out) {
  if (max_headers > HTTP_REQUEST_MAX_HEADERS) max_headers = HTTP_REQUEST_MAX_HEADERS;
  size_t limit = len < max_header_size ? len : max_header_size;
  enum parse_state state = S_METHOD;
  size_t version_pos = 0;
  size_t value_end = 0;
  http_header *h = NULL;

  out->method.off = 0;
  out->method.len = 0;
  out->header_count = 0;

  for (size_t i = 0; i < limit; i++) {
    uint8_t c = buf[i];
    switch (state) {
      case S_METHOD:
        if (is_tchar(c)) break;
        if (c != ' ' || i == 0) return fail(out, HTTP_REQUEST_ERR_METHOD, i);
        out->method.len = i;
        state = S_TARGET_START;
        break;

      case S_TARGET_START:
        if (!is_visible(c)) return fail(out, HTTP_REQUEST_ERR_TARGET, i);
        out->target.off = i;
        state = S_TARGET;
        break;

      case S_TARGET:
        if (is_visible(c)) break;
        if (c != ' ') return fail(out, HTTP_REQUEST_ERR_TARGET, i);
        out->target.len = i - out->target.off;
        state = S_VERSION;
        version_pos = 0;
        break;

      case S_VERSION:
        if (version_pos < VERSION_PREFIX_LEN) {
          if (c != (uint8_t)version_prefix[version_pos])
            return fail(out, HTTP_REQUEST_ERR_VERSION, i);
        } else if (version_pos == VERSION_PREFIX_LEN) {
          if (c < '0' || c > '9') return fail(out, HTTP_REQUEST_ERR_VERSION, i);
          if (c != '1') return fail(out, HTTP_REQUEST_ERR_VERSION_UNSUPPORTED, i);
          out->version_major = 1;
        } else if (version_pos == VERSION_PREFIX_LEN + 1) {
          if (c != '.') return fail(out, HTTP_REQUEST_ERR_VERSION, i);
        } else if (version_pos == VERSION_PREFIX_LEN + 2) {
          if (c < '0' || c > '9') return fail(out, HTTP_REQUEST_ERR_VERSION, i);
          out->version_minor = (uint8_t)(c - '0');
        } else {
          if (c == '\n') return fail(out, HTTP_REQUEST_ERR_LINE_ENDING, i);
          if (c != '\r') return fail(out, HTTP_REQUEST_ERR_VERSION, i);
          state = S_REQUEST_LINE_LF;
        }
        version_pos++;
        break;

      case S_REQUEST_LINE_LF:
      case S_HEADER_LF:
        if (c != '\n') return fail(out, HTTP_REQUEST_ERR_LINE_ENDING, i);
        if (state == S_HEADER_LF) out->header_count++;
        state = S_LINE_START;
        break;

      case S_LINE_START:
        if (c == '\r') {
          state = S_HEAD_LF;
          break;
        }
        if (c == '\n') return fail(out, HTTP_REQUEST_ERR_LINE_ENDING, i);
        if (is_ows(c)) return fail(out, HTTP_REQUEST_ERR_LINE_FOLDING, i);
        /* Decided here, at the first byte of the line, so a syntax error further on in a
         * header that is one too many does not change the answer. */
        if (out->header_count == max_headers)
          return fail(out, HTTP_REQUEST_ERR_TOO_MANY_HEADERS, i);
        if (!is_tchar(c)) return fail(out, HTTP_REQUEST_ERR_HEADER_NAME, i);
        h = &out->headers[out->header_count];
        h->name.off = i;
        state = S_NAME;
        break;

      case S_NAME:
        if (is_tchar(c)) break;
        if (c != ':') return fail(out, HTTP_REQUEST_ERR_HEADER_NAME, i);
        h->name.len = i - h->name.off;
        value_end = 0;
        state = S_VALUE;
        break;

      case S_VALUE:
        /* value_end == 0: only OWS so far (a value's first byte is never at offset 0). */
        if (is_visible(c)) {
          if (value_end == 0) h->value.off = i;
          value_end = i + 1;
        } else if (c == '\r') {
          if (value_end == 0) h->value.off = value_end = i;
          h->value.len = value_end - h->value.off;
          state = S_HEADER_LF;
        } else if (c == '\n') {
          return fail(out, HTTP_REQUEST_ERR_LINE_ENDING, i);
        } else if (!is_ows(c)) {
          return fail(out, HTTP_REQUEST_ERR_HEADER_VALUE, i);
        }
        break;

      case S_HEAD_LF:
        if (c != '\n') return fail(out, HTTP_REQUEST_ERR_LINE_ENDING, i);
        out->head_length = i + 1;
        return HTTP_REQUEST_OK;
    }
  }
  /* No complete head in the first max_header_size bytes: it cannot fit once more arrived. */
  if (len > max_header_size) return fail(out, HTTP_REQUEST_ERR_TOO_LARGE, max_header_size);
  return HTTP_REQUEST_INCOMPLETE;
}

int http_request_status(http_request_result result) {
  switch (result) {
    case HTTP_REQUEST_OK:
    case HTTP_REQUEST_INCOMPLETE: return 0;
    case HTTP_REQUEST_ERR_VERSION_UNSUPPORTED: return 505;
    case HTTP_REQUEST_ERR_TOO_LARGE:
    case HTTP_REQUEST_ERR_TOO_MANY_HEADERS: return 431;
    default: return 400;
  }
}

const char *http_request_message(http_request_result result) {
  switch (result) {
    case HTTP_REQUEST_OK: return "OK";
    case HTTP_REQUEST_INCOMPLETE: return "Incomplete request";
    case HTTP_REQUEST_ERR_METHOD: return "Invalid HTTP method";
    case HTTP_REQUEST_ERR_TARGET: return "Invalid request target";
    case HTTP_REQUEST_ERR_VERSION: return "Invalid HTTP version";
    case HTTP_REQUEST_ERR_VERSION_UNSUPPORTED: return "HTTP version not supported";
    case HTTP_REQUEST_ERR_LINE_ENDING: return "Invalid line ending (CRLF expected)";
    case HTTP_REQUEST_ERR_LINE_FOLDING: return "Header line folding is not allowed";
    case HTTP_REQUEST_ERR_HEADER_NAME: return "Invalid header name";
    case HTTP_REQUEST_ERR_HEADER_VALUE: return "Invalid character in header value";
    case HTTP_REQUEST_ERR_TOO_LARGE: return "Request header fields too large";
    case HTTP_REQUEST_ERR_TOO_MANY_HEADERS: return "Too many header fields";
  }
  return "Bad request";
}
