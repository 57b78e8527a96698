/* Base64 (RFC 4648, standard alphabet, with padding). Encoding only: the handshake never
 * needs to decode, it only checks the shape of the client's key. */
#ifndef WSN_BASE64_H
#define WSN_BASE64_H

#include <stddef.h>

/* Characters base64_encode writes for len input bytes (no terminator counted). */
#define BASE64_ENCODED_LEN(len) ((((len) + 2) / 3) * 4)

/* Writes BASE64_ENCODED_LEN(len) characters to out followed by a NUL; returns the count
 * written, not counting the NUL. out must hold BASE64_ENCODED_LEN(len) + 1 bytes. */
size_t base64_encode(const unsigned char *in, size_t len, char *out);

#endif
