/* The Sec-WebSocket-Accept computation of RFC 6455 section 4.2.2:
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). */
#ifndef WSN_ACCEPT_H
#define WSN_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>

#define WS_ACCEPT_LEN 28 /* base64 of a 20-byte digest */

/* Writes the 28-character accept value and a NUL into out (29 bytes). */
void ws_accept_compute(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1]);

/* True when key has the shape RFC 6455 requires of Sec-WebSocket-Key: the base64 encoding
 * of 16 bytes, i.e. 22 base64 characters followed by "==". */
bool ws_key_is_valid(const char *key, size_t key_len);

#endif
