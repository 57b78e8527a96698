/* codec-bench: throughput of the codec's per-byte work (masking, UTF-8 validation) on this
 * machine, with memcpy as the yardstick for "as fast as memory allows". */
#define _POSIX_C_SOURCE 199309L

#include "engine/conn.h"
#include "codec/frame.h"
#include "codec/mask.h"
#include "codec/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_SECONDS 0.5
#define MIB (1024u * 1024u)

/* Results land here so no measured call can be proven dead and removed. */
static volatile uint64_t sink;

/* Called through a volatile pointer so the compiler can neither inline nor elide the copy. */
static void *(*volatile memcpy_fn)(void *, const void *, size_t) = memcpy;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef void (*bench_fn)(void *arg);

/* Runs fn in growing batches until MIN_SECONDS have passed; returns GB/s (10^9 bytes/s). */
static double measure(bench_fn fn, void *arg, size_t bytes_per_call) {
  fn(arg); /* warm-up: page faults and caches should not count */
  uint64_t calls = 0, batch = 1;
  double start = now_seconds(), elapsed = 0;
  while (elapsed < MIN_SECONDS) {
    for (uint64_t i = 0; i < batch; i++) fn(arg);
    calls += batch;
    batch *= 2;
    elapsed = now_seconds() - start;
  }
  return (double)calls * (double)bytes_per_call / elapsed / 1e9;
}

/* ---- masking ---- */

typedef struct {
  uint8_t *dst;
  uint8_t *src;
  size_t len;
} buffers;

static const uint8_t bench_key[4] = {0x37, 0xfa, 0x21, 0x3d};

static void run_mask_apply(void *arg) {
  buffers *b = arg;
  mask_apply(b->src, b->len, bench_key, 0);
  sink += b->src[b->len - 1];
}

static void run_mask_copy(void *arg) {
  buffers *b = arg;
  mask_copy(b->dst, b->src, b->len, bench_key, 0);
  sink += b->dst[b->len - 1];
}

static void run_memcpy(void *arg) {
  buffers *b = arg;
  memcpy_fn(b->dst, b->src, b->len);
  sink += b->dst[b->len - 1];
}

static void bench_mask(void) {
  static const size_t sizes[] = {1 * MIB, 16 * MIB};
  printf(
      "masking (GB/s; mask_apply is in place, mask_copy and memcpy read one buffer and "
      "write another)\n");
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    buffers b = {malloc(sizes[s]), malloc(sizes[s]), sizes[s]};
    if (b.dst == NULL || b.src == NULL) {
      fprintf(stderr, "out of memory\n");
      exit(1);
    }
    for (size_t i = 0; i < b.len; i++) b.src[i] = (uint8_t)(i * 31 + 7);
    memset(b.dst, 0, b.len);
    double apply = measure(run_mask_apply, &b, b.len);
    double copy = measure(run_mask_copy, &b, b.len);
    double mem = measure(run_memcpy, &b, b.len);
    printf("  %2zu MiB  mask_apply %6.2f   mask_copy %6.2f   memcpy %6.2f\n", sizes[s] / MIB, apply,
           copy, mem);
    free(b.dst);
    free(b.src);
  }
}

/* ---- UTF-8 validation ---- */

typedef struct {
  const uint8_t *data;
  size_t len;
} text;

static void run_utf8(void *arg) {
  text *t = arg;
  sink += utf8_is_valid(t->data, t->len);
}

static uint32_t next_random(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* Appends one word from `script` at p (stopping short of end); returns the new end. */
static uint8_t *append_word(uint8_t *p, const uint8_t *end, const char *const *chars,
                            size_t n_chars, uint32_t *seed) {
  size_t letters = 2 + next_random(seed) % 7;
  for (size_t i = 0; i < letters; i++) {
    const char *c = chars[next_random(seed) % n_chars];
    size_t n = strlen(c);
    if ((size_t)(end - p) < n + 1) return p;
    memcpy(p, c, n);
    p += n;
  }
  *p++ = ' ';
  return p;
}

/* Random words whose scripts are picked at random, so the validator's branches cannot learn
 * a period. The weights put about a third of the bytes in ASCII. */
static size_t fill_mixed(uint8_t *buf, size_t len, size_t bytes_by_width[5]) {
  static const char *const latin[] = {"a", "e", "t", "o", "n", "s", "r", "h", "l", "d"};
  static const char *const cyrillic[] = {"\xd0\xb0", "\xd0\xb5", "\xd0\xbe", "\xd0\xb8",
                                         "\xd1\x82", "\xd0\xbd", "\xd1\x81", "\xd1\x8f"};
  static const char *const cjk[] = {"\xe4\xbd\xa0", "\xe5\xa5\xbd", "\xe4\xb8\x96",
                                    "\xe7\x95\x8c", "\xe6\x95\x8f", "\xe7\x8b\x90"};
  static const char *const emoji[] = {"\xf0\x9f\x98\x80", "\xf0\x9f\x9a\x80", "\xf0\x9f\xa6\x8a",
                                      "\xf0\x9f\x90\xb6"};
  uint32_t seed = 0x12345678u;
  uint8_t *p = buf, *end = buf + len;
  while ((size_t)(end - p) > 64) {
    uint32_t r = next_random(&seed) % 100;
    if (r < 45) p = append_word(p, end, latin, sizeof latin / sizeof latin[0], &seed);
    else if (r < 70)
      p = append_word(p, end, cyrillic, sizeof cyrillic / sizeof cyrillic[0], &seed);
    else if (r < 90)
      p = append_word(p, end, cjk, sizeof cjk / sizeof cjk[0], &seed);
    else
      p = append_word(p, end, emoji, sizeof emoji / sizeof emoji[0], &seed);
  }
  while (p < end) *p++ = ' ';
  for (size_t i = 0; i < 5; i++) bytes_by_width[i] = 0;
  for (size_t i = 0; i < len;) {
    size_t w = buf[i] < 0x80 ? 1 : buf[i] < 0xE0 ? 2 : buf[i] < 0xF0 ? 3 : 4;
    bytes_by_width[w] += w;
    i += w;
  }
  return len;
}

static void bench_utf8(void) {
  size_t len = 16 * MIB;
  uint8_t *buf = malloc(len);
  if (buf == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  static const char sentence[] = "The quick brown fox jumps over the lazy dog; {\"id\":42}\n";
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)sentence[i % (sizeof sentence - 1)];
  text t = {buf, len};
  if (!utf8_is_valid(buf, len)) fprintf(stderr, "bench bug: ASCII text rejected\n");
  printf("utf8_is_valid (GB/s, 16 MiB)\n");
  printf("  ASCII                    %6.2f\n", measure(run_utf8, &t, len));

  size_t by_width[5];
  fill_mixed(buf, len, by_width);
  if (!utf8_is_valid(buf, len)) fprintf(stderr, "bench bug: mixed text rejected\n");
  printf("  mixed (bytes: %.0f%% ASCII, %.0f%% 2-byte, %.0f%% 3-byte, %.0f%% 4-byte)  %6.2f\n",
         100.0 * (double)by_width[1] / (double)len, 100.0 * (double)by_width[2] / (double)len,
         100.0 * (double)by_width[3] / (double)len, 100.0 * (double)by_width[4] / (double)len,
         measure(run_utf8, &t, len));
  free(buf);
}

/* ---- frame parser ---- */

/* What a server spends turning client frames into messages: conn_feed (frame_parse, in-place
 * unmasking, UTF-8 validation, zero-copy delivery) with a callback that does nothing. conn_feed
 * unmasks the input in place, so every pass starts from a fresh copy of the masked stream;
 * that copy is not timed, only conn_feed is (one clock pair per pass of >= 1 MiB). The copy
 * leaves the stream in cache, as a socket read just before would. */

typedef struct {
  uint64_t messages;
  uint64_t bytes;
} parse_count;

static bool count_event(void *ctx, const conn_event *ev) {
  parse_count *n = ctx;
  n->messages += ev->kind == CONN_EV_MESSAGE;
  n->bytes += ev->len;
  return true;
}

static void bench_parser(void) {
  static const struct {
    const char *name;
    size_t payload;
    size_t frames;
  } cases[] = {
      {"16 B", 16, 47662},   /* 22-byte frames: ~1 MiB of them */
      {"1 KiB", 1024, 1016}, /* ~1 MiB */
      {"64 KiB", 64 * 1024, 16},
      {"1 MiB", MIB, 4},
  };
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  printf(
      "frame parser: conn_feed, server, masked text frames, no-op callback; only conn_feed\n"
      "is timed (a fresh masked copy of the stream is made before each pass, untimed)\n");
  printf("  payload    frames/pass     frames/s     MB/s (wire)\n");
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    size_t payload = cases[k].payload, frames = cases[k].frames;
    size_t frame_size = frame_header_size(payload, true) + payload;
    size_t len = frame_size * frames;
    uint8_t *wire = malloc(len), *work = malloc(len), *text = malloc(payload);
    if (wire == NULL || work == NULL || text == NULL) {
      fprintf(stderr, "out of memory\n");
      exit(1);
    }
    for (size_t i = 0; i < payload; i++) text[i] = (uint8_t)('a' + i % 26);
    for (size_t f = 0; f < frames; f++) {
      uint8_t *p = wire + f * frame_size;
      size_t h = frame_header_encode(p, true, false, OP_TEXT, payload, key);
      mask_copy(p + h, text, payload, key, 0);
    }

    conn_config cfg = {.is_server = true, .auto_pong = true};
    conn c;
    conn_init(&c, &cfg);
    parse_count n = {0, 0};
    double timed = 0;
    uint64_t passes = 0;
    for (int warm = 1; timed < MIN_SECONDS; warm = 0) {
      memcpy(work, wire, len);
      double start = now_seconds();
      size_t used = conn_feed(&c, work, len, count_event, &n);
      double elapsed = now_seconds() - start;
      if (used != len || c.error != CONN_OK) {
        fprintf(stderr, "bench bug: conn_feed failed (error %d)\n", (int)c.error);
        exit(1);
      }
      if (!warm) timed += elapsed, passes++;
    }
    if (n.messages != (passes + 1) * frames || n.bytes != n.messages * payload)
      fprintf(stderr, "bench bug: %llu messages, expected %llu\n", (unsigned long long)n.messages,
              (unsigned long long)((passes + 1) * frames));
    sink += n.bytes;
    double frames_per_s = (double)(passes * frames) / timed;
    printf("  %-8s %13zu %12.0f %12.0f\n", cases[k].name, frames, frames_per_s,
           (double)(passes * len) / timed / 1e6);
    conn_release(&c);
    free(wire);
    free(work);
    free(text);
  }
}

int main(void) {
  bench_mask();
  bench_utf8();
  bench_parser();
  return 0;
}
