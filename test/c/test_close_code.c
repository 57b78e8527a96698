/* Unit tests for close_code.c: every integer from -1 to 6000 against the RFC 6455 / IANA
 * list, written out independently here, plus the extremes of int. */
#include "check.h"
#include "codec/close_code.h"

#include <limits.h>

static int expected_valid(int code) {
  switch (code) {
    case 1000: /* normal closure */
    case 1001: /* going away */
    case 1002: /* protocol error */
    case 1003: /* unsupported data */
    case 1007: /* invalid payload data */
    case 1008: /* policy violation */
    case 1009: /* message too big */
    case 1010: /* mandatory extension */
    case 1011: /* internal error */
    case 1012: /* service restart */
    case 1013: /* try again later */
    case 1014: /* bad gateway */ return 1;
    default: return code >= 3000 && code <= 4999;
  }
}

static void test_every_code(void) {
  for (int code = -1; code <= 6000; code++)
    CHECKF(close_code_is_valid(code) == (expected_valid(code) != 0), "code %d", code);
}

static void test_named_edges(void) {
  CHECK(!close_code_is_valid(999));
  CHECK(close_code_is_valid(1000));
  CHECK(!close_code_is_valid(1004));
  CHECK(!close_code_is_valid(1005));
  CHECK(!close_code_is_valid(1006));
  CHECK(close_code_is_valid(1014));
  CHECK(!close_code_is_valid(1015));
  CHECK(!close_code_is_valid(1016));
  CHECK(!close_code_is_valid(2999));
  CHECK(close_code_is_valid(3000));
  CHECK(close_code_is_valid(4999));
  CHECK(!close_code_is_valid(5000));
  CHECK(!close_code_is_valid(65535));
  CHECK(!close_code_is_valid(65536 + 1000)); /* a 16-bit truncation would make this 1000 */
  CHECK(!close_code_is_valid(INT_MIN));
  CHECK(!close_code_is_valid(INT_MAX));
}

int main(void) {
  RUN(test_every_code);
  RUN(test_named_edges);
  return CHECK_DONE();
}
