/* A minimal test harness for the C unit tests: CHECK macros, a test runner and the summary.
 * Each test binary is one translation unit, so the counters can live here as statics. */
#ifndef WSN_CHECK_H
#define WSN_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Brute-force tests can fail millions of times; past this many only the count grows. */
#define CHECK_MAX_REPORTED 20

static long check_passed_count;
static long check_failed_count;
static const char *check_current_test = "?";

static inline void check_report_start(const char *file, int line, const char *expr) {
  fprintf(stderr, "  FAIL %s (%s:%d): %s", check_current_test, file, line, expr);
}

/* Counts one check; the caller reports details only when the failure is to be shown. */
static inline int check_count(int ok) {
  if (ok) {
    check_passed_count++;
    return 1;
  }
  if (++check_failed_count == CHECK_MAX_REPORTED + 1)
    fprintf(stderr, "  (further failures counted, not shown)\n");
  return 0;
}

static inline int check_shown(void) { return check_failed_count <= CHECK_MAX_REPORTED; }

static inline int check_record(int ok, const char *file, int line, const char *expr) {
  if (check_count(ok)) return 1;
  if (check_shown()) {
    check_report_start(file, line, expr);
    fputc('\n', stderr);
  }
  return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static inline int
check_recordf(int ok, const char *file, int line, const char *expr, const char *fmt, ...) {
  if (check_count(ok)) return 1;
  if (check_shown()) {
    va_list ap;
    va_start(ap, fmt);
    check_report_start(file, line, expr);
    fputs(" -- ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
  return 0;
}

/* Each CHECK evaluates to 1 on success and 0 on failure, so a loop can stop on first failure. */
#define CHECK(cond) check_record((cond) ? 1 : 0, __FILE__, __LINE__, #cond)

/* CHECK with a printf-style note saying which iteration of a loop failed. */
#define CHECKF(cond, ...) check_recordf((cond) ? 1 : 0, __FILE__, __LINE__, #cond, __VA_ARGS__)

#define CHECK_EQ_INT(a, b) \
  check_eq_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a " == " #b)

static inline int check_eq_int(long long a, long long b, const char *file, int line,
                               const char *expr) {
  return check_recordf(a == b, file, line, expr, "%lld != %lld", a, b);
}

#define CHECK_MEM(a, b, n) check_mem((a), (b), (n), __FILE__, __LINE__, #a " == " #b)

static inline int check_mem(const void *a, const void *b, size_t n, const char *file, int line,
                            const char *expr) {
  const unsigned char *pa = a, *pb = b;
  size_t i = 0;
  while (i < n && pa[i] == pb[i]) i++;
  if (i == n) return check_record(1, file, line, expr);
  return check_recordf(0, file, line, expr, "first difference at byte %zu of %zu: %02x vs %02x", i,
                       n, pa[i], pb[i]);
}

#define RUN(test_fn)               \
  do {                             \
    check_current_test = #test_fn; \
    test_fn();                     \
    check_current_test = "?";      \
  } while (0)

/* Prints "c/<binary>: N passed, M failed" (binary named after the test's source file) and
 * returns the exit status: `return CHECK_DONE();` ends main. */
#define CHECK_DONE() check_done(__FILE__)

static inline int check_done(const char *source_file) {
  const char *base = strrchr(source_file, '/');
  base = base ? base + 1 : source_file;
  size_t n = strlen(base);
  if (n > 2 && strcmp(base + n - 2, ".c") == 0) n -= 2;
  printf("c/%.*s: %ld passed, %ld failed\n", (int)n, base, check_passed_count, check_failed_count);
  fflush(stdout);
  return check_failed_count > 0 ? 1 : 0;
}

#endif
