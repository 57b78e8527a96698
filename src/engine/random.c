/* The OS CSPRNG behind random_fill: getrandom(2) on Linux, arc4random_buf on the BSDs and
 * macOS, BCryptGenRandom on Windows, /dev/urandom elsewhere. */
#if defined(__linux__)
#define _GNU_SOURCE
#endif
#include "engine/random.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__linux__)
#include <sys/random.h>
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
#include <stdlib.h>
#define HAVE_ARC4RANDOM 1
#elif defined(_WIN32)
/* Windows has no /dev/urandom (only emulators such as wine pass one through). The system's
 * preferred RNG needs no algorithm handle; bcrypt.dll ships with every Windows since Vista. */
#include <windows.h>
#include <bcrypt.h>
#if defined(_MSC_VER)
#pragma comment(lib, "bcrypt.lib") /* node-gyp with MSVC; mingw builds pass -lbcrypt */
#endif
#endif

bool random_fill(void *buf, size_t len) {
#if defined(__linux__)
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= (size_t)n;
  }
  return true;
#elif defined(HAVE_ARC4RANDOM)
  arc4random_buf(buf, len);
  return true;
#elif defined(_WIN32)
  uint8_t *p = buf;
  while (len > 0) {
    ULONG n = len > 0x40000000u ? 0x40000000u : (ULONG)len; /* its length is a ULONG */
    if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, p, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG))) return false;
    p += n;
    len -= n;
  }
  return true;
#else
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f) return false;
  size_t got = fread(buf, 1, len, f);
  fclose(f);
  return got == len;
#endif
}
