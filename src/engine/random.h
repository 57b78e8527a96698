/* Bytes from the operating system's CSPRNG, for client mask keys (RFC 6455 section 5.3 asks
 * for unpredictable ones). Callers batch requests; this is one system call per fill. */
#ifndef WSN_RANDOM_H
#define WSN_RANDOM_H

#include <stdbool.h>
#include <stddef.h>

bool random_fill(void *buf, size_t len);

#endif
