/* Base64 encoding (RFC 4648, standard alphabet, padded) for the handshake's accept value.
 * Owns the alphabet; no decoder, because the protocol never needs one. */
#include "base64.h"

static const char base64_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const unsigned char *in, size_t len, char *out) {
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    unsigned long v = ((unsigned long)in[i] << 16) | ((unsigned long)in[i + 1] << 8) | in[i + 2];
    *o++ = base64_alphabet[(v >> 18) & 63];
    *o++ = base64_alphabet[(v >> 12) & 63];
    *o++ = base64_alphabet[(v >> 6) & 63];
    *o++ = base64_alphabet[v & 63];
  }
  size_t rest = len - i;
  if (rest > 0) {
    unsigned long v = (unsigned long)in[i] << 16;
    if (rest == 2) v |= (unsigned long)in[i + 1] << 8;
    *o++ = base64_alphabet[(v >> 18) & 63];
    *o++ = base64_alphabet[(v >> 12) & 63];
    *o++ = rest == 2 ? base64_alphabet[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  return (size_t)(o - out);
}
