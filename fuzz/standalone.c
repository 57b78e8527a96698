/* A driver for the fuzz targets where libFuzzer is not available: cross builds run under
 * emulation (arm64 under qemu-user, to fuzz the NEON kernels). It replays a seed corpus, then
 * mutates random seeds (byte flips, UTF-8 lead and continuation bytes, length-field values,
 * inserted and deleted runs, splices of two seeds) and calls LLVMFuzzerTestOneInput on each,
 * for a time budget. No coverage guidance: it is the same target code and checks, fed less
 * cleverly. A failed FUZZ_CHECK traps; the input is written to crash-<target>-<n> first.
 *
 *   standalone-<target> SECONDS SEED CORPUS_DIR...  */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);

#define MAX_INPUT 65536

typedef struct seed {
  uint8_t *data;
  size_t len;
} seed;

static seed *seeds;
static size_t n_seeds, cap_seeds;
static const uint8_t *current;
static size_t current_len;
static const char *target_name = "target";

static uint64_t rng_state;
static uint32_t next_random(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

static void add_seed(const uint8_t *data, size_t len) {
  if (n_seeds == cap_seeds) {
    cap_seeds = cap_seeds ? cap_seeds * 2 : 64;
    seeds = realloc(seeds, cap_seeds * sizeof *seeds);
    if (!seeds) abort();
  }
  seeds[n_seeds].data = malloc(len ? len : 1);
  if (!seeds[n_seeds].data) abort();
  memcpy(seeds[n_seeds].data, data, len);
  seeds[n_seeds++].len = len;
}

static void load_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  static uint8_t buf[MAX_INPUT];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    add_seed(buf, n);
  }
  closedir(d);
}

/* On a trap, keep the input that caused it. */
static void on_crash(int sig) {
  char name[256];
  snprintf(name, sizeof name, "crash-%s-%ld", target_name, (long)time(NULL));
  FILE *f = fopen(name, "wb");
  if (f) {
    fwrite(current, 1, current_len, f);
    fclose(f);
  }
  fprintf(stderr, "%s: signal %d, input (%zu bytes) written to %s\n", target_name, sig, current_len,
          name);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void run_one(const uint8_t *data, size_t len) {
  /* A copy of exactly len bytes, so an over-read shows under ASan as it would in libFuzzer. */
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) abort();
  memcpy(copy, data, len);
  current = copy, current_len = len;
  LLVMFuzzerTestOneInput(copy, len);
  free(copy);
}

static const uint8_t interesting[] = {0x00, 0x01, 0x7e, 0x7f, 0x80, 0x81, 0x88, 0x89, 0x8a,
                                      0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
                                      0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xfe, 0xff};

static size_t mutate(uint8_t *buf, size_t len) {
  int rounds = 1 + (int)(next_random() % 8);
  for (int r = 0; r < rounds; r++) {
    uint32_t op = next_random() % 7;
    size_t at = len ? next_random() % len : 0;
    switch (op) {
      case 0: /* flip a bit */
        if (len) buf[at] ^= (uint8_t)(1u << (next_random() % 8));
        break;
      case 1: /* an interesting byte */
        if (len) buf[at] = interesting[next_random() % sizeof interesting];
        break;
      case 2: /* a random byte */
        if (len) buf[at] = (uint8_t)next_random();
        break;
      case 3: { /* insert a run of one byte */
        size_t n = 1 + next_random() % 64;
        if (len + n > MAX_INPUT) break;
        memmove(buf + at + n, buf + at, len - at);
        memset(buf + at, interesting[next_random() % sizeof interesting], n);
        len += n;
        break;
      }
      case 4: { /* delete a run */
        size_t n = len - at ? 1 + next_random() % (len - at) : 0;
        if (n > 256) n = 256;
        memmove(buf + at, buf + at + n, len - at - n);
        len -= n;
        break;
      }
      case 5: { /* splice in part of another seed */
        const seed *s = &seeds[next_random() % n_seeds];
        if (!s->len) break;
        size_t from = next_random() % s->len, n = 1 + next_random() % (s->len - from);
        if (at + n > MAX_INPUT) n = MAX_INPUT - at;
        memcpy(buf + at, s->data + from, n);
        if (at + n > len) len = at + n;
        break;
      }
      default: /* duplicate a block (longer inputs reach the 64-byte vector loops) */
        if (len && len * 2 <= MAX_INPUT && next_random() % 4 == 0) {
          memcpy(buf + len, buf, len);
          len *= 2;
        }
        break;
    }
  }
  return len;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s SECONDS SEED CORPUS_DIR...\n", argv[0]);
    return 2;
  }
  const char *slash = strrchr(argv[0], '/');
  target_name = slash ? slash + 1 : argv[0];
  double seconds = atof(argv[1]);
  rng_state = strtoull(argv[2], NULL, 0) | 1;
  for (int i = 3; i < argc; i++) load_dir(argv[i]);
  if (n_seeds == 0) add_seed((const uint8_t *)"\0\0", 2);
  signal(SIGILL, on_crash);
  signal(SIGTRAP, on_crash);
  signal(SIGSEGV, on_crash);
  signal(SIGABRT, on_crash);
  signal(SIGBUS, on_crash);

  for (size_t i = 0; i < n_seeds; i++) run_one(seeds[i].data, seeds[i].len);

  static uint8_t buf[MAX_INPUT];
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  unsigned long execs = n_seeds;
  for (;;) {
    for (int k = 0; k < 64; k++) {
      const seed *s = &seeds[next_random() % n_seeds];
      memcpy(buf, s->data, s->len);
      size_t len = mutate(buf, s->len);
      run_one(buf, len);
      execs++;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
    if (elapsed >= seconds) {
      printf("%s: %lu executions in %.0f s (%.0f/s), %zu seeds, no failure\n", target_name, execs,
             elapsed, (double)execs / elapsed, n_seeds);
      return 0;
    }
  }
}
