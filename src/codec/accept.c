/* The opening handshake's key check and Sec-WebSocket-Accept value (RFC 6455 section 4).
 * Owns the protocol GUID; the hashing and encoding live in sha1.c and base64.c. */
#include "accept.h"

#include "base64.h"
#include "sha1.h"

#include <stdint.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_accept_compute(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1]) {
  /* Streaming the key and GUID into one hash avoids building the concatenation. */
  sha1_ctx ctx;
  uint8_t digest[SHA1_DIGEST_SIZE];
  sha1_init(&ctx);
  sha1_update(&ctx, key, key_len);
  sha1_update(&ctx, ws_guid, sizeof ws_guid - 1);
  sha1_final(&ctx, digest);
  base64_encode(digest, sizeof digest, out);
}

static bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

bool ws_key_is_valid(const char *key, size_t key_len) {
  /* Same rule as ws: shape only. The last data character's unused low bits are not checked
   * (a strict decoder would demand one of "AQgw"), matching what browsers and ws accept. */
  if (key == NULL || key_len != 24) return false;
  for (size_t i = 0; i < 22; i++) {
    if (!is_base64_char(key[i])) return false;
  }
  return key[22] == '=' && key[23] == '=';
}
