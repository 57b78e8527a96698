/* HTTP/1.1 request-head parsing (RFC 9112 sections 2-5) for the raw-socket handshake path:
 * the request line and header fields, as offsets into the caller's bytes; no body, no I/O.
 *
 * The parser keeps no state between calls: the caller accumulates what has arrived and
 * parses it all again, until the result is no longer HTTP_REQUEST_INCOMPLETE. It reads
 * bytes strictly left to right and stops at the first one that decides the outcome, so for
 * any input the results of its prefixes are INCOMPLETE up to some length and then one fixed
 * result (the same error, or OK with the same head) for every longer prefix. It never reads
 * past len (nor past max_header_size), never allocates, and accepts any byte values.
 *
 * What it accepts, and why where it had a choice:
 * - request-line = method SP request-target SP "HTTP/" DIGIT "." DIGIT CRLF, with single
 *   spaces. No empty lines before it (RFC 9112 2.2 asks to ignore them between pipelined
 *   requests; a fresh connection has none, and refusing them bounds the work a peer can
 *   cause with line ends).
 * - method: a token. request-target: one or more bytes 0x21-0x7E or 0x80-0xFF (obs-text, as
 *   Node's parser accepts); its form is the application's business.
 * - version: "HTTP/1.x" for any digit x; another major version is 505.
 * - field-line = field-name ":" OWS field-value OWS CRLF. The name is a token (so no
 *   whitespace before the colon, RFC 9112 5.1); the value may hold SP, HTAB, VCHAR and
 *   obs-text, without its leading and trailing OWS. Line folding (obs-fold), NUL, DEL and
 *   other control characters are refused (RFC 9112 5.2 and 5.5 allow refusing them).
 * - Line ends are CRLF only. RFC 9112 2.2 lets a recipient accept a bare LF; we do not, as
 *   Node's own HTTP parser does not (a bare LF is a known request-smuggling vector), so a
 *   request refused by an http.Server is refused here too.
 * - The head, request line included, may be at most max_header_size bytes (431 past it,
 *   decided as soon as max_header_size + 1 bytes have arrived without a complete head), and
 *   have at most max_headers header fields (431). */
#ifndef WSN_HTTP_REQUEST_H
#define WSN_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/* The most header fields a request can have; a larger max_headers is taken as this. */
#define HTTP_REQUEST_MAX_HEADERS 100

typedef enum http_request_result {
  HTTP_REQUEST_OK = 0,      /* a complete head; out describes it */
  HTTP_REQUEST_INCOMPLETE,  /* valid so far; parse again with more bytes */
  HTTP_REQUEST_ERR_METHOD,  /* 400: the method is empty or not a token */
  HTTP_REQUEST_ERR_TARGET,  /* 400: the request-target is empty or has a forbidden byte */
  HTTP_REQUEST_ERR_VERSION, /* 400: not "HTTP/" DIGIT "." DIGIT followed by CRLF */
  HTTP_REQUEST_ERR_VERSION_UNSUPPORTED, /* 505: HTTP/x.y with x other than 1 */
  HTTP_REQUEST_ERR_LINE_ENDING,         /* 400: a CR not followed by LF, or a LF without CR */
  HTTP_REQUEST_ERR_LINE_FOLDING,        /* 400: a header line starting with SP or HTAB (obs-fold) */
  HTTP_REQUEST_ERR_HEADER_NAME,         /* 400: empty name, a non-token byte in it (whitespace
                                           before the colon included), or no colon */
  HTTP_REQUEST_ERR_HEADER_VALUE,        /* 400: a control character (NUL, DEL, ...) in a value */
  HTTP_REQUEST_ERR_TOO_LARGE,           /* 431: the head is longer than max_header_size */
  HTTP_REQUEST_ERR_TOO_MANY_HEADERS     /* 431: more than max_headers header fields */
} http_request_result;

/* A part of the parsed bytes: buf[off, off + len). */
typedef struct http_span {
  size_t off;
  size_t len;
} http_span;

typedef struct http_header {
  http_span name;  /* as sent (case preserved) */
  http_span value; /* without leading and trailing SP/HTAB; may be empty */
} http_header;

typedef struct http_request {
  http_span method;
  http_span target;
  uint8_t version_major; /* 1 */
  uint8_t version_minor; /* 0-9 */
  size_t header_count;
  http_header headers[HTTP_REQUEST_MAX_HEADERS];
  size_t head_length;  /* OK: bytes of the head, the final CRLF CRLF included; what follows
                          (buf[head_length, len)) is not part of it */
  size_t error_offset; /* an error: the index of the byte that decided it (for TOO_LARGE,
                          max_header_size: the first byte past the limit) */
} http_request;

/* Parses the request head at the start of buf[0, len). Returns HTTP_REQUEST_OK with *out
 * filled in, HTTP_REQUEST_INCOMPLETE, or an error with out->error_offset set; other fields
 * of *out are unspecified unless the result is OK. */
http_request_result http_request_parse(const uint8_t *buf, size_t len, size_t max_header_size,
                                       size_t max_headers, http_request *out);

/* The HTTP status that answers a result (400, 431 or 505; 0 for OK and INCOMPLETE). */
int http_request_status(http_request_result result);

/* A short English description of a result, for the body of the error response. */
const char *http_request_message(http_request_result result);

#endif
