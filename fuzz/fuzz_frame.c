/* libFuzzer target for src/codec/frame.c (and mask.c through it): the frame parser over
 * arbitrary bytes cut at arbitrary points must keep its API promises and give, frame for
 * frame, the same headers and payload bytes as when it gets everything in one piece.
 *
 * Input: [flags][n][n split sizes][data]. flags: bit 0 expect_masked, bit 1 allow_rsv1,
 * bit 2 "copy mode" (clear unmask_payload and unmask with mask_copy, as conn.c does when it
 * assembles a message), bits 3-5 misalignment of each piece, bit 6 the word loop instead of
 * mask.c's SIMD one (SSE2 or NEON), so both unmask paths are fuzzed against the reference. */
#include <stdint.h>

#include "codec/frame.h"
#include "fuzz_util.h"
#include "codec/mask.h"

/* mask.c's test hook (not in mask.h). Weak, so this target still links against a mask.c
 * without one; then only the SIMD loop is fuzzed. */
__attribute__((weak)) int mask_test_set_simd(int on);

typedef struct frame_rec {
  frame_info info;
  size_t payload_off; /* into run_log.payload */
  uint64_t payload_got;
  bool ended;
} frame_rec;

typedef struct run_log {
  frame_rec *frames;
  size_t n, cap;
  byte_buf payload; /* every frame's unmasked payload bytes, back to back */
  bool failed;
  frame_error error;
  uint8_t error_opcode;
  uint64_t error_len;
} run_log;

typedef struct run_config {
  bool expect_masked;
  bool allow_rsv1;
  bool copy_mode;
  size_t shift;
} run_config;

static frame_rec *log_push(run_log *log) {
  if (log->n == log->cap) {
    log->cap = log->cap ? log->cap * 2 : 16;
    log->frames = realloc(log->frames, log->cap * sizeof(*log->frames));
    if (!log->frames) abort();
  }
  frame_rec *r = &log->frames[log->n++];
  memset(r, 0, sizeof(*r));
  r->payload_off = log->payload.len;
  return r;
}

static bool info_equal(const frame_info *a, const frame_info *b) {
  return a->fin == b->fin && a->rsv1 == b->rsv1 && a->masked == b->masked &&
         a->opcode == b->opcode && a->payload_len == b->payload_len &&
         memcmp(a->mask_key, b->mask_key, 4) == 0;
}

/* A header the parser accepted must satisfy the rules it enforces, and must survive
 * frame_header_encode and a second parse unchanged. raw is the header as it arrived when it
 * came in one piece (raw_len bytes), else NULL. */
static void check_header(const run_config *cfg, const frame_info *f, const uint8_t *raw,
                         size_t raw_len) {
  bool control = (f->opcode & 8) != 0;
  FUZZ_CHECK(f->opcode <= OP_BINARY || (f->opcode >= OP_CLOSE && f->opcode <= OP_PONG));
  FUZZ_CHECK(f->masked == cfg->expect_masked);
  FUZZ_CHECK(!f->rsv1 || (cfg->allow_rsv1 && f->opcode != OP_CONTINUATION && !control));
  FUZZ_CHECK(f->payload_len <= FRAME_MAX_SAFE_LENGTH);
  if (control) FUZZ_CHECK(f->fin && f->payload_len <= FRAME_MAX_CONTROL);
  if (!f->masked) {
    static const uint8_t zero[4];
    FUZZ_CHECK(memcmp(f->mask_key, zero, 4) == 0);
  }

  uint8_t out[FRAME_MAX_HEADER + 1];
  size_t n = frame_header_encode(out, f->fin, f->rsv1, f->opcode, f->payload_len,
                                 f->masked ? f->mask_key : NULL);
  FUZZ_CHECK(n == frame_header_size(f->payload_len, f->masked) && n <= FRAME_MAX_HEADER);
  if (raw) {
    /* The encoder picks the shortest length form; the input may have used a longer one. */
    FUZZ_CHECK(raw_len >= n);
    if (raw_len == n) FUZZ_CHECK(memcmp(raw, out, n) == 0);
  }
  frame_parser again;
  frame_parser_init(&again, f->masked, true);
  size_t used;
  uint8_t *pl;
  size_t pl_len;
  piece pc = piece_copy(out, n, 0);
  FUZZ_CHECK(frame_parse(&again, pc.data, n, &used, &pl, &pl_len) == FRAME_HEADER);
  piece_free(&pc);
  FUZZ_CHECK(used == n && info_equal(&again.frame, f));
}

static void run(const run_config *cfg, split_plan plan, const uint8_t *data, size_t len,
                run_log *log) {
  frame_parser p;
  frame_parser_init(&p, cfg->expect_masked, cfg->allow_rsv1);
  FUZZ_CHECK(p.expect_masked == cfg->expect_masked && p.allow_rsv1 == cfg->allow_rsv1);
  bool in_frame = false;
  frame_rec *cur = NULL;
  size_t pos = 0;

  do {
    size_t n = split_next(&plan, len - pos);
    piece pc = piece_copy(data + pos, n, cfg->shift);
    uint8_t *buf = pc.data;
    size_t off = 0;
    size_t calls = 0;

    for (;;) {
      FUZZ_CHECK(++calls <= 4 * n + 8); /* every call makes progress */
      size_t used = (size_t)-1;
      uint8_t *pl = (uint8_t *)1;
      size_t pl_len = (size_t)-1;
      frame_event ev = frame_parse(&p, buf + off, n - off, &used, &pl, &pl_len);
      FUZZ_CHECK(used <= n - off);

      if (log->failed) {
        /* The error state is final, whatever comes next. */
        FUZZ_CHECK(ev == FRAME_ERROR && used == 0);
        break;
      }

      switch (ev) {
        case FRAME_NEED_MORE: FUZZ_CHECK(used == n - off); break;

        case FRAME_HEADER: {
          FUZZ_CHECK(!in_frame && used > 0);
          const uint8_t *raw = plan.count == 0 ? data + pos + off : NULL;
          check_header(cfg, &p.frame, raw, used);
          in_frame = true;
          cur = log_push(log);
          cur->info = p.frame;
          if (cfg->copy_mode) p.unmask_payload = false;
          break;
        }

        case FRAME_PAYLOAD: {
          FUZZ_CHECK(in_frame && cur);
          /* Payload starts where this call started and is exactly what it consumed. */
          FUZZ_CHECK(pl == buf + off && pl_len == used && pl_len > 0);
          uint64_t at = cur->payload_got;
          cur->payload_got += pl_len;
          FUZZ_CHECK(cur->payload_got <= cur->info.payload_len);
          FUZZ_CHECK(p.payload_done == cur->payload_got);
          const uint8_t *key = cur->info.mask_key;
          buf_reserve(&log->payload, pl_len);
          uint8_t *dst = log->payload.p + log->payload.len;
          if (cfg->copy_mode) {
            /* Left masked: the parser must not have touched the bytes. */
            FUZZ_CHECK(memcmp(pl, data + pos + off, pl_len) == 0);
            if (cur->info.masked) mask_copy(dst, pl, pl_len, key, at);
            else
              memcpy(dst, pl, pl_len);
          } else {
            memcpy(dst, pl, pl_len);
          }
          /* Against a byte-at-a-time unmask of the original input. */
          for (size_t i = 0; i < pl_len; i++) {
            uint8_t want = data[pos + off + i];
            if (cur->info.masked) want ^= key[(at + i) & 3];
            FUZZ_CHECK(dst[i] == want);
          }
          log->payload.len += pl_len;
          break;
        }

        case FRAME_END:
          FUZZ_CHECK(in_frame && cur && used == 0);
          FUZZ_CHECK(cur->payload_got == cur->info.payload_len);
          cur->ended = true;
          in_frame = false;
          break;

        case FRAME_ERROR:
          FUZZ_CHECK(!in_frame && p.error != FRAME_ERR_NONE);
          log->failed = true;
          log->error = p.error;
          log->error_opcode = p.frame.opcode;
          log->error_len = p.frame.payload_len;
          break;

        default: FUZZ_CHECK(0);
      }
      off += used;
      if (ev == FRAME_NEED_MORE) break;
      /* After an error, one more call on the rest must repeat it (checked at the top). */
    }
    piece_free(&pc);
    pos += n;
  } while (pos < len);

  if (log->failed) {
    /* And on fresh input too. */
    uint8_t extra[3] = {0x81, 0x00, 0x00};
    size_t used;
    uint8_t *pl;
    size_t pl_len;
    FUZZ_CHECK(frame_parse(&p, extra, sizeof extra, &used, &pl, &pl_len) == FRAME_ERROR);
    FUZZ_CHECK(used == 0);
  }
}

static void compare(const run_log *a, const run_log *b) {
  FUZZ_CHECK(a->n == b->n);
  FUZZ_CHECK(a->failed == b->failed);
  if (a->failed)
    FUZZ_CHECK(a->error == b->error && a->error_opcode == b->error_opcode &&
               a->error_len == b->error_len);
  for (size_t i = 0; i < a->n; i++) {
    const frame_rec *x = &a->frames[i], *y = &b->frames[i];
    FUZZ_CHECK(info_equal(&x->info, &y->info));
    FUZZ_CHECK(x->payload_got == y->payload_got && x->ended == y->ended);
  }
  FUZZ_CHECK(a->payload.len == b->payload.len);
  if (a->payload.len) FUZZ_CHECK(memcmp(a->payload.p, b->payload.p, a->payload.len) == 0);
}

static void log_free(run_log *log) {
  free(log->frames);
  buf_free(&log->payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  if (size < 2) return 0;
  run_config cfg = {
      .expect_masked = in[0] & 1,
      .allow_rsv1 = (in[0] >> 1) & 1,
      .copy_mode = (in[0] >> 2) & 1,
      .shift = (in[0] >> 3) & 7,
  };
  if (mask_test_set_simd) mask_test_set_simd(!((in[0] >> 6) & 1));
  size_t nsplit = in[1] & 15;
  if (size < 2 + nsplit) return 0;
  const uint8_t *data = in + 2 + nsplit;
  size_t len = size - 2 - nsplit;

  run_log whole = {0}, split = {0};
  run(&cfg, (split_plan){.count = 0}, data, len, &whole);
  run(&cfg, (split_plan){.sizes = in + 2, .count = nsplit}, data, len, &split);
  compare(&whole, &split);
  log_free(&whole);
  log_free(&split);
  return 0;
}
