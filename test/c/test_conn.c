/* Unit tests for conn.c, through its API: message assembly (zero copy and owned), control
 * frames, fragments, UTF-8, maxPayload, every receive error and its message, the closing
 * handshake, client masking and the output queue. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "engine/conn.h"
#include "codec/mask.h"

/* ---- building input ---- */

typedef struct {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void bytes_put(bytes *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL) abort();
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
}

static uint32_t key_counter = 0x1234567u;

static uint32_t next_random(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* Appends one frame; masked with a fresh key when masked is set (what a client sends). */
static void put_frame_ex(bytes *b, bool fin, bool rsv1, uint8_t opcode, const void *payload,
                         size_t len, bool masked) {
  uint8_t header[FRAME_MAX_HEADER];
  uint32_t r = next_random(&key_counter);
  uint8_t key[4] = {(uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24)};
  size_t h = frame_header_encode(header, fin, rsv1, opcode, len, masked ? key : NULL);
  bytes_put(b, header, h);
  size_t at = b->len;
  bytes_put(b, payload, len);
  if (masked) mask_apply(b->p + at, len, key, 0);
}

static void put_frame(bytes *b, bool fin, uint8_t opcode, const void *payload, size_t len) {
  put_frame_ex(b, fin, false, opcode, payload, len, true);
}

static void put_str(bytes *b, bool fin, uint8_t opcode, const char *s) {
  put_frame(b, fin, opcode, s, strlen(s));
}

/* ---- recording events ---- */

typedef struct {
  conn_event_kind kind;
  bool binary;
  int close_code;
  uint8_t *data; /* a copy */
  size_t len;
  bool owned;    /* the event handed over a buffer (freed by the recorder) */
  bool in_input; /* data pointed into the buffer given to conn_feed */
  size_t frags[16];
  size_t n_frags;
} rec_event;

typedef struct {
  rec_event *ev;
  size_t n, cap;
  const uint8_t *lo, *hi; /* the current input */
  size_t pause_after;     /* return false after this many events in total (0: never) */
  int bad;                /* events that broke the API's promises */
} events;

static bool record_event(void *ctx, const conn_event *e) {
  events *r = ctx;
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 64;
    r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
    if (r->ev == NULL) abort();
  }
  rec_event *x = &r->ev[r->n++];
  memset(x, 0, sizeof *x);
  x->kind = e->kind;
  x->binary = e->binary;
  x->close_code = e->close_code;
  x->len = e->len;
  x->data = malloc(e->len + 1);
  if (x->data == NULL) abort();
  if (e->len) memcpy(x->data, e->data, e->len);
  x->data[e->len] = 0;
  x->in_input = e->data != NULL && e->data >= r->lo && e->data < r->hi;
  if (e->owned) {
    x->owned = true;
    if (e->kind != CONN_EV_MESSAGE || e->data != e->owned) r->bad++;
    free(e->owned);
  }
  if (e->fragment_ends) {
    if (e->fragment_count > 16 || e->fragment_count < 2) r->bad++;
    x->n_frags = e->fragment_count < 16 ? e->fragment_count : 16;
    memcpy(x->frags, e->fragment_ends, x->n_frags * sizeof(size_t));
  } else if (e->fragment_count) {
    r->bad++;
  }
  return !(r->pause_after && r->n == r->pause_after);
}

static void events_clear(events *r) {
  for (size_t i = 0; i < r->n; i++) free(r->ev[i].data);
  r->n = 0;
}

static void events_free(events *r) {
  events_clear(r);
  free(r->ev);
  r->ev = NULL;
  r->cap = 0;
}

/* Feeds a fresh heap copy of data (so a sanitizer sees any read past it). */
static size_t feed(conn *c, events *r, const uint8_t *data, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);
  if (copy == NULL) abort();
  if (len) memcpy(copy, data, len);
  r->lo = copy;
  r->hi = copy + len;
  /* Like the addon: call again while the engine deferred work (a reply that must follow
   * the events already reported), even with no input left. */
  size_t used = conn_feed(c, copy, len, record_event, r);
  while (conn_has_deferred(c)) used += conn_feed(c, copy + used, len - used, record_event, r);
  r->lo = r->hi = NULL;
  free(copy);
  return used;
}

/* Feeds data in pieces of `piece` bytes; returns false if some piece was not all consumed. */
static bool feed_pieces(conn *c, events *r, const uint8_t *data, size_t len, size_t piece) {
  bool all = true;
  for (size_t pos = 0; pos < len; pos += piece) {
    size_t n = len - pos < piece ? len - pos : piece;
    if (feed(c, r, data + pos, n) != n) all = false;
  }
  return all;
}

static conn_config server_config(void) {
  conn_config cfg = {.is_server = true, .auto_pong = true};
  return cfg;
}

static conn_config client_config(void) {
  conn_config cfg = {.is_server = false, .auto_pong = true};
  return cfg;
}

/* ---- reading output ---- */

typedef struct {
  bool fin, rsv1, masked;
  uint8_t opcode;
  uint8_t key[4];
  uint8_t payload[256];
  size_t len; /* full payload length; payload holds the first 256 bytes */
} out_frame;

/* Parses the output queue (a copy of it) into frames; returns their count, or -1 if it does
 * not parse as whole frames masked exactly when `masked`. */
static int parse_output(const conn *c, bool masked, out_frame *frames, int max) {
  size_t n = conn_output_size(c);
  if (n == 0) return 0;
  uint8_t *copy = malloc(n);
  if (copy == NULL) abort();
  memcpy(copy, conn_output_data(c), n);
  frame_parser p;
  frame_parser_init(&p, masked, true);
  int count = 0;
  size_t pos = 0;
  bool in_frame = false;
  for (;;) {
    size_t used;
    uint8_t *payload;
    size_t payload_len;
    frame_event ev = frame_parse(&p, copy + pos, n - pos, &used, &payload, &payload_len);
    pos += used;
    if (ev == FRAME_ERROR) {
      count = -1;
      break;
    }
    if (ev == FRAME_NEED_MORE) {
      if (in_frame || pos != n) count = -1;
      break;
    }
    if (ev == FRAME_HEADER) {
      if (count == max) {
        count = -1;
        break;
      }
      out_frame *f = &frames[count++];
      memset(f, 0, sizeof *f);
      f->fin = p.frame.fin;
      f->rsv1 = p.frame.rsv1;
      f->masked = p.frame.masked;
      f->opcode = p.frame.opcode;
      memcpy(f->key, p.frame.mask_key, 4);
      in_frame = true;
    } else if (ev == FRAME_PAYLOAD) {
      out_frame *f = &frames[count - 1];
      size_t room = f->len < sizeof f->payload ? sizeof f->payload - f->len : 0;
      memcpy(f->payload + f->len, payload, payload_len < room ? payload_len : room);
      f->len += payload_len;
    } else {
      in_frame = false;
    }
  }
  free(copy);
  return count;
}

/* True when the output holds exactly one close frame with code (0: empty) and reason. */
static bool output_is_close(const conn *c, bool masked, int code, const char *reason) {
  out_frame f[4];
  if (parse_output(c, masked, f, 4) != 1) return false;
  if (f[0].opcode != OP_CLOSE || !f[0].fin || f[0].masked != masked) return false;
  if (code == 0) return f[0].len == 0;
  size_t rl = strlen(reason);
  return f[0].len == 2 + rl && f[0].payload[0] == (uint8_t)(code >> 8) &&
         f[0].payload[1] == (uint8_t)code && memcmp(f[0].payload + 2, reason, rl) == 0;
}

/* ---- messages ---- */

static void test_single_message_zero_copy(void) {
  conn_config cfg = server_config();
  conn c;
  conn_init(&c, &cfg);
  events r = {0};
  bytes in = {0};
  put_str(&in, true, OP_TEXT, "hello");
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 1)) {
    CHECK(r.ev[0].kind == CONN_EV_MESSAGE && !r.ev[0].binary);
    CHECK(r.ev[0].in_input && !r.ev[0].owned);
    CHECK(r.ev[0].len == 5 && memcmp(r.ev[0].data, "hello", 5) == 0);
  }
  CHECK_EQ_INT(conn_output_size(&c), 0);
  CHECK_EQ_INT(r.bad, 0);

  /* An empty message and a binary one. */
  events_clear(&r);
  in.len = 0;
  put_str(&in, true, OP_TEXT, "");
  put_frame(&in, true, OP_BINARY, "\xff\x00\x01", 3);
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 2)) {
    CHECK(r.ev[0].kind == CONN_EV_MESSAGE && !r.ev[0].binary && r.ev[0].len == 0);
    CHECK(!r.ev[0].owned);
    CHECK(r.ev[1].kind == CONN_EV_MESSAGE && r.ev[1].binary && r.ev[1].len == 3);
    CHECK(r.ev[1].in_input && memcmp(r.ev[1].data, "\xff\x00\x01", 3) == 0);
  }
  events_free(&r);
  free(in.p);
  conn_release(&c);
}

static void test_message_split_owned(void) {
  bytes in = {0};
  put_str(&in, true, OP_TEXT, "hello, split world");
  /* Every split point, header ones included. */
  for (size_t cut = 1; cut < in.len; cut++) {
    conn_config cfg = server_config();
    conn c;
    conn_init(&c, &cfg);
    events r = {0};
    CHECK_EQ_INT(feed(&c, &r, in.p, cut), cut);
    CHECKF(r.n == 0, "cut %zu: event before the message was complete", cut);
    CHECK_EQ_INT(feed(&c, &r, in.p + cut, in.len - cut), in.len - cut);
    if (CHECKF(r.n == 1, "cut %zu: %zu events", cut, r.n)) {
      CHECK(r.ev[0].kind == CONN_EV_MESSAGE);
      CHECK(r.ev[0].len == 18 && memcmp(r.ev[0].data, "hello, split world", 18) == 0);
      /* Payload in two pieces: owned. Header and payload together in the second input:
       * zero copy again. (A cut right after the header may go either way.) */
      CHECKF(r.ev[0].owned != r.ev[0].in_input, "cut %zu", cut);
      if (cut < 6) CHECKF(r.ev[0].in_input, "cut %zu: not zero copy", cut);
      if (cut > 6) CHECKF(r.ev[0].owned, "cut %zu: not owned", cut);
    }
    CHECK_EQ_INT(r.bad, 0);
    events_free(&r);
    conn_release(&c);
  }
  free(in.p);
}

static void test_thousand_frames(void) {
  bytes in = {0};
  char payloads[1000][48];
  uint32_t seed = 77;
  for (int i = 0; i < 1000; i++) {
    int n = snprintf(payloads[i], sizeof payloads[i], "message %d", i);
    size_t len = (size_t)n - next_random(&seed) % 3 * (i % 5 == 0); /* some shorter */
    payloads[i][len] = 0;
    put_str(&in, true, i % 3 == 0 ? OP_BINARY : OP_TEXT, payloads[i]);
  }
  for (int mode = 0; mode < 2; mode++) {
    conn_config cfg = server_config();
    conn c;
    conn_init(&c, &cfg);
    events r = {0};
    if (mode == 0) CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
    else
      CHECK(feed_pieces(&c, &r, in.p, in.len, 1));
    if (CHECKF(r.n == 1000, "mode %d: %zu events", mode, r.n)) {
      for (int i = 0; i < 1000; i++) {
        rec_event *e = &r.ev[i];
        size_t len = strlen(payloads[i]);
        if (!CHECKF(e->kind == CONN_EV_MESSAGE && e->binary == (i % 3 == 0) && e->len == len &&
                        memcmp(e->data, payloads[i], len) == 0,
                    "mode %d message %d", mode, i))
          break;
        if (mode == 0 && !CHECKF(e->in_input && !e->owned, "message %d not zero copy", i)) break;
      }
    }
    CHECK_EQ_INT(r.bad, 0);
    events_free(&r);
    conn_release(&c);
  }
  free(in.p);
}

static void test_pause(void) {
  /* A callback returning false stops conn_feed right after that event. */
  bytes in = {0};
  put_str(&in, true, OP_TEXT, "one");
  size_t first = in.len;
  put_str(&in, true, OP_PING, "p");
  size_t second = in.len;
  put_str(&in, true, OP_TEXT, "three");
  conn_config cfg = server_config();
  conn c;
  conn_init(&c, &cfg);
  events r = {.pause_after = 1};
  uint8_t *buf = malloc(in.len);
  memcpy(buf, in.p, in.len);
  r.lo = buf, r.hi = buf + in.len;
  CHECK_EQ_INT(conn_feed(&c, buf, in.len, record_event, &r), first);
  CHECK_EQ_INT(r.n, 1);
  r.pause_after = 2;
  CHECK_EQ_INT(conn_feed(&c, buf + first, in.len - first, record_event, &r), second - first);
  CHECK_EQ_INT(r.n, 2);
  r.pause_after = 0;
  CHECK_EQ_INT(conn_feed(&c, buf + second, in.len - second, record_event, &r), in.len - second);
  if (CHECK_EQ_INT(r.n, 3)) {
    CHECK(r.ev[0].kind == CONN_EV_MESSAGE && strcmp((char *)r.ev[0].data, "one") == 0);
    CHECK(r.ev[1].kind == CONN_EV_PING && strcmp((char *)r.ev[1].data, "p") == 0);
    CHECK(r.ev[2].kind == CONN_EV_MESSAGE && strcmp((char *)r.ev[2].data, "three") == 0);
    CHECK(r.ev[2].in_input);
  }
  free(buf);
  events_free(&r);
  free(in.p);
  conn_release(&c);
}

static void test_fragmented_with_pings(void) {
  bytes in = {0};
  put_str(&in, false, OP_TEXT, "Hel");
  put_str(&in, true, OP_PING, "p1");
  put_str(&in, false, OP_CONTINUATION, "lo ");
  put_str(&in, true, OP_PING, "");
  put_str(&in, true, OP_PONG, "q");
  put_str(&in, true, OP_PING, "p3");
  put_str(&in, true, OP_CONTINUATION, "world");
  for (int mode = 0; mode < 4; mode++) {
    bool auto_pong = mode & 1;
    size_t piece = mode & 2 ? 1 : in.len;
    conn_config cfg = server_config();
    cfg.auto_pong = auto_pong;
    conn c;
    conn_init(&c, &cfg);
    events r = {0};
    CHECK(feed_pieces(&c, &r, in.p, in.len, piece));
    if (CHECKF(r.n == 5, "mode %d: %zu events", mode, r.n)) {
      CHECK(r.ev[0].kind == CONN_EV_PING && strcmp((char *)r.ev[0].data, "p1") == 0);
      CHECK(r.ev[1].kind == CONN_EV_PING && r.ev[1].len == 0);
      CHECK(r.ev[2].kind == CONN_EV_PONG && strcmp((char *)r.ev[2].data, "q") == 0);
      CHECK(r.ev[3].kind == CONN_EV_PING && strcmp((char *)r.ev[3].data, "p3") == 0);
      CHECK(r.ev[4].kind == CONN_EV_MESSAGE && !r.ev[4].binary && r.ev[4].owned);
      CHECK(r.ev[4].len == 11 && memcmp(r.ev[4].data, "Hello world", 11) == 0);
    }
    out_frame f[8];
    int n = parse_output(&c, false, f, 8);
    if (auto_pong) {
      static const char *const want[] = {"p1", "", "p3"};
      if (CHECKF(n == 3, "mode %d: %d output frames", mode, n)) {
        for (int i = 0; i < 3; i++) {
          CHECK(f[i].opcode == OP_PONG && f[i].fin && !f[i].masked && !f[i].rsv1);
          CHECK(f[i].len == strlen(want[i]) && memcmp(f[i].payload, want[i], f[i].len) == 0);
        }
      }
    } else {
      CHECKF(conn_output_size(&c) == 0, "mode %d: output without auto_pong", mode);
    }
    CHECK_EQ_INT(r.bad, 0);
    events_free(&r);
    conn_release(&c);
  }
  free(in.p);
}

static void test_track_fragments(void) {
  bytes in = {0};
  put_frame(&in, false, OP_BINARY, "abc", 3);
  put_frame(&in, false, OP_CONTINUATION, "", 0);
  put_str(&in, true, OP_PING, "x");
  put_frame(&in, false, OP_CONTINUATION, "de", 2);
  put_frame(&in, true, OP_CONTINUATION, "fghi", 4);
  /* then: a single-frame message, one whose only non-empty fragment is the last, and one of
   * three non-empty text fragments */
  put_frame(&in, true, OP_BINARY, "solo", 4);
  put_frame(&in, false, OP_BINARY, "", 0);
  put_frame(&in, true, OP_CONTINUATION, "xyz", 3);
  put_str(&in, false, OP_TEXT, "a");
  put_str(&in, false, OP_CONTINUATION, "bb");
  put_str(&in, true, OP_CONTINUATION, "ccc");
  for (size_t piece = 1; piece <= in.len; piece = piece == 1   ? 5
                                                  : piece == 5 ? in.len
                                                               : piece + 1) {
    conn_config cfg = server_config();
    conn c;
    conn_init(&c, &cfg);
    c.track_fragments = true;
    events r = {0};
    CHECK(feed_pieces(&c, &r, in.p, in.len, piece));
    if (CHECKF(r.n == 5, "piece %zu: %zu events", piece, r.n)) {
      rec_event *m = &r.ev[1];
      CHECK(r.ev[0].kind == CONN_EV_PING);
      CHECK(m->kind == CONN_EV_MESSAGE && m->binary && m->len == 9);
      CHECK(memcmp(m->data, "abcdefghi", 9) == 0);
      if (CHECKF(m->n_frags == 3, "piece %zu: %zu fragments", piece, m->n_frags))
        CHECK(m->frags[0] == 3 && m->frags[1] == 5 && m->frags[2] == 9);
      CHECK(r.ev[2].len == 4 && r.ev[2].n_frags == 0);
      CHECK(r.ev[3].len == 3 && memcmp(r.ev[3].data, "xyz", 3) == 0 && r.ev[3].n_frags == 0);
      CHECK(!r.ev[4].binary && r.ev[4].len == 6 && memcmp(r.ev[4].data, "abbccc", 6) == 0);
      if (CHECK_EQ_INT(r.ev[4].n_frags, 3))
        CHECK(r.ev[4].frags[0] == 1 && r.ev[4].frags[1] == 3 && r.ev[4].frags[2] == 6);
    }
    CHECK_EQ_INT(r.bad, 0);
    events_free(&r);
    conn_release(&c);
  }

  /* Without track_fragments, no fragment_ends. */
  conn_config cfg = server_config();
  conn c;
  conn_init(&c, &cfg);
  events r = {0};
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 5)) CHECK(r.ev[1].n_frags == 0 && r.ev[4].n_frags == 0);
  CHECK_EQ_INT(r.bad, 0);
  events_free(&r);
  conn_release(&c);
  free(in.p);
}

/* ---- UTF-8 ---- */

static void test_utf8(void) {
  conn_config cfg = server_config();
  conn c;
  events r = {0};
  bytes a = {0}, b = {0};

  /* A euro sign (E2 82 AC) split across fragments, byte by byte too. */
  put_str(&a, false, OP_TEXT, "a\xE2\x82");
  put_str(&a, true, OP_CONTINUATION,
          "\xAC"
          "b");
  for (size_t piece = 1; piece <= a.len; piece += a.len - 1) {
    conn_init(&c, &cfg);
    CHECK(feed_pieces(&c, &r, a.p, a.len, piece));
    if (CHECK_EQ_INT(r.n, 1))
      CHECK(r.ev[0].kind == CONN_EV_MESSAGE && r.ev[0].len == 5 &&
            memcmp(r.ev[0].data,
                   "a\xE2\x82\xAC"
                   "b",
                   5) == 0);
    events_clear(&r);
    conn_release(&c);
  }

  /* An invalid byte in the first fragment fails in the feed of that fragment. */
  a.len = 0;
  put_str(&a, false, OP_TEXT,
          "ab\xFF"
          "cd");
  put_str(&b, true, OP_CONTINUATION, "ef");
  conn_init(&c, &cfg);
  CHECK_EQ_INT(feed(&c, &r, a.p, a.len), a.len);
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == 1007);
  CHECK(c.error == CONN_ERR_UTF8);
  CHECK(output_is_close(&c, false, 1007, ""));
  CHECK_EQ_INT(feed(&c, &r, b.p, b.len), b.len);
  CHECK_EQ_INT(r.n, 1);
  events_clear(&r);
  conn_release(&c);

  /* ... even when that fragment is still arriving: the feed holding the bad byte fails. */
  conn_init(&c, &cfg);
  size_t bad_at = a.len - 3; /* the 0xFF */
  CHECK_EQ_INT(feed(&c, &r, a.p, bad_at), bad_at);
  CHECK_EQ_INT(r.n, 0);
  CHECK_EQ_INT(feed(&c, &r, a.p + bad_at, 1), 1);
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == 1007);
  events_clear(&r);
  conn_release(&c);

  /* A sequence that goes wrong only in the next fragment fails there. */
  a.len = 0;
  put_str(&a, false, OP_TEXT, "\xE2");
  put_str(&a, true, OP_CONTINUATION, "A");
  conn_init(&c, &cfg);
  CHECK(feed_pieces(&c, &r, a.p, a.len, 1));
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == 1007);
  events_clear(&r);
  conn_release(&c);

  /* A message that ends mid-sequence: single frame and fragmented. */
  for (int frag = 0; frag < 2; frag++) {
    a.len = 0;
    if (frag) put_str(&a, false, OP_TEXT, "ok");
    put_str(&a, true, frag ? OP_CONTINUATION : OP_TEXT, "a\xE2\x82");
    conn_init(&c, &cfg);
    CHECK_EQ_INT(feed(&c, &r, a.p, a.len), a.len);
    if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == 1007);
    CHECK(c.error == CONN_ERR_UTF8);
    CHECK(output_is_close(&c, false, 1007, ""));
    events_clear(&r);
    conn_release(&c);
  }

  /* Binary messages and skip_utf8_validation are not checked. */
  a.len = 0;
  put_frame(&a, true, OP_BINARY, "\xFF\xE2", 2);
  put_str(&a, true, OP_TEXT, "\xC0\xAF");
  conn_init(&c, &cfg);
  CHECK_EQ_INT(feed(&c, &r, a.p, a.len), a.len);
  if (CHECK_EQ_INT(r.n, 2)) CHECK(r.ev[0].kind == CONN_EV_MESSAGE && r.ev[1].kind == CONN_EV_ERROR);
  events_clear(&r);
  conn_release(&c);
  conn_config skip = cfg;
  skip.skip_utf8_validation = true;
  conn_init(&c, &skip);
  CHECK_EQ_INT(feed(&c, &r, a.p, a.len), a.len);
  if (CHECK_EQ_INT(r.n, 2))
    CHECK(r.ev[0].kind == CONN_EV_MESSAGE && r.ev[1].kind == CONN_EV_MESSAGE);
  events_clear(&r);
  conn_release(&c);

  CHECK_EQ_INT(r.bad, 0);
  events_free(&r);
  free(a.p);
  free(b.p);
}

/* ---- maxPayload ---- */

static void test_max_payload(void) {
  conn_config cfg = server_config();
  cfg.max_payload = 100;
  conn c;
  events r = {0};
  bytes in = {0};
  uint8_t zeros[101] = {0};

  /* A header announcing max + 1 fails on its own, before any payload. */
  uint8_t header[FRAME_MAX_HEADER];
  static const uint8_t key[4] = {1, 2, 3, 4};
  size_t h = frame_header_encode(header, true, false, OP_BINARY, 101, key);
  conn_init(&c, &cfg);
  CHECK_EQ_INT(feed(&c, &r, header, h), h);
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == 1009);
  CHECK(c.error == CONN_ERR_MAX_PAYLOAD);
  CHECK(output_is_close(&c, false, 1009, ""));
  events_clear(&r);
  conn_release(&c);

  /* Fragments that sum past max fail at the header of the one that crosses it. */
  put_frame(&in, false, OP_TEXT, zeros, 60);
  size_t first = in.len;
  put_frame(&in, true, OP_CONTINUATION, zeros, 41);
  conn_init(&c, &cfg);
  CHECK_EQ_INT(feed(&c, &r, in.p, first), first);
  CHECK_EQ_INT(r.n, 0);
  CHECK_EQ_INT(feed(&c, &r, in.p + first, 6), 6); /* the second header only */
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == 1009);
  events_clear(&r);
  conn_release(&c);

  /* Exactly max, in one frame and in fragments with control frames between, and again. */
  in.len = 0;
  put_frame(&in, true, OP_BINARY, zeros, 100);
  put_frame(&in, false, OP_TEXT, zeros, 50);
  put_frame(&in, true, OP_PING, zeros, 100);
  put_frame(&in, false, OP_CONTINUATION, zeros, 0);
  put_frame(&in, true, OP_CONTINUATION, zeros, 50);
  put_frame(&in, true, OP_TEXT, zeros, 100);
  conn_init(&c, &cfg);
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 4)) {
    CHECK(r.ev[0].kind == CONN_EV_MESSAGE && r.ev[0].len == 100);
    CHECK(r.ev[1].kind == CONN_EV_PING);
    CHECK(r.ev[2].kind == CONN_EV_MESSAGE && r.ev[2].len == 100);
    CHECK(r.ev[3].kind == CONN_EV_MESSAGE && r.ev[3].len == 100);
  }
  CHECK(c.error == CONN_OK);
  events_clear(&r);
  conn_release(&c);

  CHECK_EQ_INT(r.bad, 0);
  events_free(&r);
  free(in.p);
}

/* What a connection keeps between inputs: nothing while messages come whole in each (an idle
 * connection carries no progress), the state of a frame or message split across inputs while
 * it lasts, and nothing again once it is complete. */
static void test_progress_kept_only_while_needed(void) {
  conn_config cfg = server_config();
  conn c;
  conn_init(&c, &cfg);
  events r = {0};
  bytes in = {0};
  put_str(&in, true, OP_TEXT, "whole");
  put_str(&in, true, OP_PING, "p");
  feed(&c, &r, in.p, in.len);
  CHECK_EQ_INT(r.n, 2);
  CHECK(c.progress == NULL);
  events_clear(&r);

  /* A header cut in two, a payload cut, a message in two frames, a control frame between. */
  in.len = 0;
  put_str(&in, false, OP_TEXT, "first ");
  put_str(&in, true, OP_PING, "between");
  put_str(&in, true, OP_CONTINUATION, "second");
  for (size_t cut = 1; cut < in.len; cut++) {
    feed(&c, &r, in.p, cut);
    bool partial = cut < in.len;
    CHECKF(!partial || c.progress != NULL, "cut %zu: nothing kept", cut);
    feed(&c, &r, in.p + cut, in.len - cut);
    CHECKF(c.progress == NULL, "cut %zu: kept after the message", cut);
    if (CHECKF(r.n == 2, "cut %zu: %zu events", cut, r.n)) {
      CHECK(r.ev[0].kind == CONN_EV_PING && r.ev[1].kind == CONN_EV_MESSAGE);
      CHECK(r.ev[1].len == 12 && memcmp(r.ev[1].data, "first second", 12) == 0);
    }
    events_clear(&r);
  }
  events_free(&r);
  free(in.p);
  conn_release(&c);
}

static void test_large_announced_frame(void) {
  /* A peer announcing 50 MB and sending 10 bytes must not get a 50 MB buffer. */
  conn_config cfg = server_config();
  cfg.max_payload = 100u * 1000 * 1000;
  conn c;
  conn_init(&c, &cfg);
  events r = {0};
  uint8_t buf[FRAME_MAX_HEADER + 10] = {0};
  static const uint8_t key[4] = {9, 8, 7, 6};
  size_t h = frame_header_encode(buf, true, false, OP_BINARY, 50u * 1000 * 1000, key);
  CHECK_EQ_INT(feed(&c, &r, buf, h + 10), h + 10);
  CHECK_EQ_INT(r.n, 0);
  /* (The frame spans inputs: what it has so far is kept off the stack.) */
  if (!CHECK(c.progress != NULL)) return;
  CHECKF(c.progress->message_cap <= 1024 * 1024, "message_cap %zu", c.progress->message_cap);
  CHECK(c.progress->message_len == 10);

  /* Growth follows what arrives: after 1 MiB more, the buffer is at most twice that. */
  uint8_t *chunk = calloc(1, 4096);
  for (int i = 0; i < 256; i++) feed(&c, &r, chunk, 4096);
  CHECK(c.progress->message_len == 10 + 256 * 4096);
  CHECKF(c.progress->message_cap <= 2 * c.progress->message_len, "message_cap %zu for %zu bytes",
         c.progress->message_cap, c.progress->message_len);
  free(chunk);
  events_free(&r);
  conn_release(&c);
}

/* ---- errors ---- */

typedef struct {
  const char *name;
  bool client;
  const char *message;
  const char *code;
  int status;
  conn_error error;
  int detail;
  void (*build)(bytes *b);
} error_case;

static void build_rsv1(bytes *b) { put_frame_ex(b, true, true, OP_TEXT, "x", 1, true); }
static void build_rsv2(bytes *b) { bytes_put(b, "\xA1\x80\0\0\0\0", 6); }
static void build_rsv3(bytes *b) { bytes_put(b, "\x92\x80\0\0\0\0", 6); }
static void build_opcode3(bytes *b) { put_str(b, true, 3, "x"); }
static void build_opcode11(bytes *b) { put_str(b, true, 11, ""); }
static void build_cont_no_start(bytes *b) { put_str(b, true, OP_CONTINUATION, "x"); }
static void build_text_in_text(bytes *b) {
  put_str(b, false, OP_TEXT, "a");
  put_str(b, true, OP_TEXT, "b");
}
static void build_binary_in_text(bytes *b) {
  put_str(b, false, OP_TEXT, "a");
  put_str(b, true, OP_PING, "");
  put_str(b, true, OP_BINARY, "b");
}
static void build_control_fin(bytes *b) { put_str(b, false, OP_PING, "x"); }
static void build_control_126(bytes *b) { bytes_put(b, "\x89\xFE\x00\x7E", 4); }
static void build_control_127(bytes *b) { bytes_put(b, "\x8A\xFF", 2); }
static void build_close_1(bytes *b) { put_str(b, true, OP_CLOSE, "\x03"); }
static void build_unmasked(bytes *b) { put_frame_ex(b, true, false, OP_TEXT, "x", 1, false); }
static void build_masked(bytes *b) { put_frame_ex(b, true, false, OP_TEXT, "x", 1, true); }
static void build_max(bytes *b) { put_frame(b, true, OP_BINARY, "0123456789A", 11); }
static void build_msb(bytes *b) { bytes_put(b, "\x82\xFF\x80\0\0\0\0\0\0\0\1\2\3\4", 14); }
static void build_unsafe(bytes *b) { bytes_put(b, "\x82\xFF\0\x20\0\0\0\0\0\0\1\2\3\4", 14); }
static void build_code999(bytes *b) { put_frame(b, true, OP_CLOSE, "\x03\xE7", 2); }
static void build_utf8(bytes *b) { put_str(b, true, OP_TEXT, "\xED\xA0\x80"); }
static void build_close_utf8(bytes *b) { put_str(b, true, OP_CLOSE, "\x03\xE8\xFF"); }

#define P "Invalid WebSocket frame: "
static const error_case error_cases[] = {
    {"rsv1", false, P "RSV1 must be clear", "WS_ERR_UNEXPECTED_RSV_1", 1002, CONN_ERR_RSV1, -1,
     build_rsv1},
    {"rsv2", false, P "RSV2 and RSV3 must be clear", "WS_ERR_UNEXPECTED_RSV_2_3", 1002,
     CONN_ERR_RSV23, -1, build_rsv2},
    {"rsv3", false, P "RSV2 and RSV3 must be clear", "WS_ERR_UNEXPECTED_RSV_2_3", 1002,
     CONN_ERR_RSV23, -1, build_rsv3},
    {"opcode 3", false, P "invalid opcode 3", "WS_ERR_INVALID_OPCODE", 1002, CONN_ERR_OPCODE, 3,
     build_opcode3},
    {"opcode 11", false, P "invalid opcode 11", "WS_ERR_INVALID_OPCODE", 1002, CONN_ERR_OPCODE, 11,
     build_opcode11},
    {"continuation without start", false, P "invalid opcode 0", "WS_ERR_INVALID_OPCODE", 1002,
     CONN_ERR_OPCODE, 0, build_cont_no_start},
    {"text inside text", false, P "invalid opcode 1", "WS_ERR_INVALID_OPCODE", 1002,
     CONN_ERR_OPCODE, 1, build_text_in_text},
    {"binary inside text", false, P "invalid opcode 2", "WS_ERR_INVALID_OPCODE", 1002,
     CONN_ERR_OPCODE, 2, build_binary_in_text},
    {"control without FIN", false, P "FIN must be set", "WS_ERR_EXPECTED_FIN", 1002,
     CONN_ERR_CONTROL_FIN, -1, build_control_fin},
    {"control length 126", false, P "invalid payload length 126",
     "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH", 1002, CONN_ERR_CONTROL_LENGTH, 126,
     build_control_126},
    {"control length 127", false, P "invalid payload length 127",
     "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH", 1002, CONN_ERR_CONTROL_LENGTH, 127,
     build_control_127},
    {"close of 1 byte", false, P "invalid payload length 1",
     "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH", 1002, CONN_ERR_CONTROL_LENGTH, 1, build_close_1},
    {"unmasked to server", false, P "MASK must be set", "WS_ERR_EXPECTED_MASK", 1002,
     CONN_ERR_MASK_EXPECTED, -1, build_unmasked},
    {"masked to client", true, P "MASK must be clear", "WS_ERR_UNEXPECTED_MASK", 1002,
     CONN_ERR_MASK_UNEXPECTED, -1, build_masked},
    {"max payload", false, "Max payload size exceeded", "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH", 1009,
     CONN_ERR_MAX_PAYLOAD, -1, build_max},
    {"length MSB", false, "Unsupported WebSocket frame: payload length > 2^53 - 1",
     "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH", 1002, CONN_ERR_LENGTH_MSB, -1, build_msb},
    {"length 2^53", false, "Unsupported WebSocket frame: payload length > 2^53 - 1",
     "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH", 1009, CONN_ERR_LENGTH_UNSAFE, -1, build_unsafe},
    {"close code 999", false, P "invalid status code 999", "WS_ERR_INVALID_CLOSE_CODE", 1002,
     CONN_ERR_CLOSE_CODE, 999, build_code999},
    {"text UTF-8", false, P "invalid UTF-8 sequence", "WS_ERR_INVALID_UTF8", 1007, CONN_ERR_UTF8,
     -1, build_utf8},
    {"close reason UTF-8", false, P "invalid UTF-8 sequence", "WS_ERR_INVALID_UTF8", 1007,
     CONN_ERR_UTF8, -1, build_close_utf8},
};
#undef P

static void test_errors(void) {
  for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
    const error_case *ec = &error_cases[i];
    for (size_t piece = 1; piece <= 2; piece++) {
      conn_config cfg = ec->client ? client_config() : server_config();
      cfg.max_payload = 10;
      cfg.auto_pong = false; /* so the output holds nothing but the close frame */
      conn c;
      conn_init(&c, &cfg);
      events r = {0};
      bytes in = {0};
      ec->build(&in);
      size_t whole = piece == 1 ? 1 : in.len;
      CHECKF(feed_pieces(&c, &r, in.p, in.len, whole), "%s", ec->name);
      size_t errors = 0;
      for (size_t k = 0; k < r.n; k++) errors += r.ev[k].kind == CONN_EV_ERROR;
      if (CHECKF(r.n >= 1 && errors == 1 && r.ev[r.n - 1].kind == CONN_EV_ERROR,
                 "%s: %zu events, %zu errors", ec->name, r.n, errors)) {
        CHECKF(r.ev[r.n - 1].close_code == ec->status, "%s: status %d", ec->name,
               r.ev[r.n - 1].close_code);
      }
      CHECKF(c.error == ec->error, "%s: error %d, want %d", ec->name, c.error, ec->error);
      if (ec->detail >= 0)
        CHECKF(c.error_detail == ec->detail, "%s: detail %d", ec->name, c.error_detail);
      CHECK(conn_input_done(&c));

      char msg[160];
      conn_error_message(c.error, c.error_detail, msg, sizeof msg);
      CHECKF(strcmp(msg, ec->message) == 0, "%s: message \"%s\"", ec->name, msg);
      const conn_error_desc *d = conn_error_info(c.error);
      CHECKF(strcmp(d->code, ec->code) == 0 && d->status == ec->status, "%s: %s %d", ec->name,
             d->code, d->status);

      /* One close frame with the status and no reason; later input is dropped. */
      CHECKF(output_is_close(&c, ec->client, ec->status, ""), "%s: output", ec->name);
      bytes more = {0};
      put_frame_ex(&more, true, false, OP_TEXT, "after", 5, !ec->client);
      put_frame_ex(&more, true, false, OP_PING, "", 0, !ec->client);
      size_t before = r.n;
      CHECK_EQ_INT(feed(&c, &r, more.p, more.len), more.len);
      CHECKF(r.n == before, "%s: events after the error", ec->name);
      CHECKF(output_is_close(&c, ec->client, ec->status, ""), "%s: output after", ec->name);
      CHECK_EQ_INT(r.bad, 0);
      free(more.p);
      free(in.p);
      events_free(&r);
      conn_release(&c);
    }
  }

  /* Error messages of every error in the table, from the table itself. */
  char msg[160];
  CHECK(strcmp(conn_error_message(CONN_ERR_OPCODE, 7, msg, sizeof msg),
               "Invalid WebSocket frame: invalid opcode 7") == 0);
  CHECK(strcmp(conn_error_message(CONN_ERR_NO_MEMORY, 0, msg, sizeof msg), "out of memory") == 0);
  CHECK(conn_error_info(CONN_ERR_NO_MEMORY)->status == 1011);
  CHECK(conn_error_info((conn_error)999) == conn_error_info(CONN_OK));
  /* A short output buffer truncates, still terminated. */
  char tiny[8];
  conn_error_message(CONN_ERR_UTF8, 0, tiny, sizeof tiny);
  CHECK(strcmp(tiny, "Invalid") == 0);
}

static void test_error_after_our_close(void) {
  /* When we already sent a close frame, a failure queues no second one. */
  conn_config cfg = server_config();
  conn c;
  conn_init(&c, &cfg);
  events r = {0};
  CHECK(conn_send_close(&c, 1001, (const uint8_t *)"bye", 3));
  CHECK(!conn_send_close(&c, 1000, NULL, 0));
  bytes in = {0};
  build_opcode3(&in);
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == 1002);
  CHECK(output_is_close(&c, false, 1001, "bye"));
  free(in.p);
  events_free(&r);
  conn_release(&c);
}

/* ---- closing handshake ---- */

static void close_case(const uint8_t *payload, size_t len, bool expect_close, int code,
                       const char *name) {
  conn_config cfg = server_config();
  conn c;
  conn_init(&c, &cfg);
  events r = {0};
  bytes in = {0};
  put_frame(&in, true, OP_CLOSE, payload, len);
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECKF(r.n == 1, "%s: %zu events", name, r.n)) {
    if (expect_close) {
      CHECKF(r.ev[0].kind == CONN_EV_CLOSE && r.ev[0].close_code == code, "%s: kind %d code %d",
             name, r.ev[0].kind, r.ev[0].close_code);
      CHECKF((c.close_state & CONN_CLOSE_RECEIVED) && c.error == CONN_OK, "%s", name);
    } else {
      CHECKF(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == code, "%s: kind %d code %d",
             name, r.ev[0].kind, r.ev[0].close_code);
    }
  }
  free(in.p);
  events_free(&r);
  conn_release(&c);
}

static void test_close(void) {
  conn_config cfg = server_config();
  conn c;
  events r = {0};
  bytes in = {0};

  /* close(1000, "bye"): event and echo, then nothing more is parsed. */
  put_frame(&in, true, OP_CLOSE,
            "\x03\xE8"
            "bye",
            5);
  put_str(&in, true, OP_TEXT, "late");
  put_str(&in, true, OP_PING, "late");
  for (size_t piece = 1; piece <= in.len; piece += in.len - 1) {
    conn_init(&c, &cfg);
    CHECK(feed_pieces(&c, &r, in.p, in.len, piece));
    if (CHECKF(r.n == 1, "piece %zu: %zu events", piece, r.n)) {
      CHECK(r.ev[0].kind == CONN_EV_CLOSE && r.ev[0].close_code == 1000);
      CHECK(r.ev[0].len == 3 && memcmp(r.ev[0].data, "bye", 3) == 0);
    }
    CHECK(output_is_close(&c, false, 1000, "bye"));
    CHECK((c.close_state & CONN_CLOSE_RECEIVED) && (c.close_state & CONN_CLOSE_SENT) &&
          conn_input_done(&c));
    events_clear(&r);
    conn_release(&c);
  }

  /* Empty close: 1005 and an empty echo. */
  in.len = 0;
  put_frame(&in, true, OP_CLOSE, "", 0);
  conn_init(&c, &cfg);
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 1))
    CHECK(r.ev[0].kind == CONN_EV_CLOSE && r.ev[0].close_code == 1005 && r.ev[0].len == 0);
  CHECK(output_is_close(&c, false, 0, NULL));
  events_clear(&r);
  conn_release(&c);

  /* We closed first: no echo; the peer's close is still reported. */
  in.len = 0;
  put_frame(&in, true, OP_CLOSE,
            "\x03\xE8"
            "ok",
            4);
  conn_init(&c, &cfg);
  CHECK(conn_send_close(&c, 1001, (const uint8_t *)"going", 5));
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_CLOSE && r.ev[0].close_code == 1000);
  CHECK(output_is_close(&c, false, 1001, "going"));
  events_clear(&r);
  conn_release(&c);

  /* A ping after we sent close gets no pong. */
  in.len = 0;
  put_str(&in, true, OP_PING, "late");
  conn_init(&c, &cfg);
  CHECK(conn_send_close(&c, 1000, NULL, 0));
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_PING);
  CHECK(output_is_close(&c, false, 1000, ""));
  events_clear(&r);
  conn_release(&c);

  /* A close in the middle of a fragmented message ends it without a MESSAGE event. */
  in.len = 0;
  put_str(&in, false, OP_TEXT, "part");
  put_frame(&in, true, OP_CLOSE, "\x03\xE9", 2);
  put_str(&in, true, OP_CONTINUATION, "rest");
  conn_init(&c, &cfg);
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_CLOSE && r.ev[0].close_code == 1001);
  CHECK(c.progress == NULL); /* (nothing of the message is kept) */
  events_clear(&r);
  conn_release(&c);

  /* A 125-byte close (the longest reason) is echoed whole. */
  uint8_t longest[125];
  longest[0] = 0x0F, longest[1] = 0xA0; /* 4000 */
  memset(longest + 2, 'r', 123);
  in.len = 0;
  put_frame(&in, true, OP_CLOSE, longest, 125);
  conn_init(&c, &cfg);
  CHECK_EQ_INT(feed_pieces(&c, &r, in.p, in.len, 7), true);
  if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].close_code == 4000 && r.ev[0].len == 123);
  out_frame f[2];
  if (CHECK_EQ_INT(parse_output(&c, false, f, 2), 1))
    CHECK(f[0].len == 125 && memcmp(f[0].payload, longest, 125) == 0);
  events_clear(&r);
  conn_release(&c);

  static const int invalid[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
  static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                              1011, 1012, 1013, 1014, 3000, 4000, 4999};
  char name[32];
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    uint8_t p[2] = {(uint8_t)(invalid[i] >> 8), (uint8_t)invalid[i]};
    snprintf(name, sizeof name, "code %d", invalid[i]);
    close_case(p, 2, false, 1002, name);
  }
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
    uint8_t p[2] = {(uint8_t)(valid[i] >> 8), (uint8_t)valid[i]};
    snprintf(name, sizeof name, "code %d", valid[i]);
    close_case(p, 2, true, valid[i], name);
  }
  close_case((const uint8_t *)"\x03", 1, false, 1002, "one byte");
  close_case((const uint8_t *)"\x03\xE8\xC3\x28", 4, false, 1007, "bad reason");
  close_case((const uint8_t *)"\x03\xE8\xE2\x82", 4, false, 1007, "truncated reason");
  close_case((const uint8_t *)"\x03\xE8\xE2\x82\xAC", 5, true, 1000, "euro reason");

  CHECK_EQ_INT(r.bad, 0);
  events_free(&r);
  free(in.p);
}

/* ---- client ---- */

static void test_client(void) {
  conn_config cfg = client_config();
  conn c;
  conn_init(&c, &cfg);
  events r = {0};

  /* Outgoing frames are masked, each with its own key. */
  CHECK(conn_send_frame(&c, OP_TEXT, true, false, (const uint8_t *)"hello", 5));
  CHECK(conn_send_frame(&c, OP_BINARY, true, false, (const uint8_t *)"hello", 5));
  uint8_t *p = conn_frame_reserve(&c, OP_TEXT, true, false, 300);
  if (CHECK(p != NULL)) {
    for (int i = 0; i < 300; i++) p[i] = (uint8_t)('a' + i % 26);
    conn_frame_commit(&c, p, 300);
  }
  CHECK(conn_send_close(&c, 1000, (const uint8_t *)"done", 4));
  const uint8_t *raw = conn_output_data(&c);
  CHECK(raw[1] & 0x80);
  CHECK(memcmp(raw + 6, "hello", 5) != 0 || memcmp(raw + 2, "\0\0\0\0", 4) == 0);
  out_frame f[8];
  if (CHECK_EQ_INT(parse_output(&c, true, f, 8), 4)) {
    for (int i = 0; i < 4; i++) CHECK(f[i].masked && f[i].fin);
    CHECK(f[0].opcode == OP_TEXT && f[0].len == 5 && memcmp(f[0].payload, "hello", 5) == 0);
    CHECK(f[1].opcode == OP_BINARY && f[1].len == 5 && memcmp(f[1].payload, "hello", 5) == 0);
    CHECK(memcmp(f[0].key, f[1].key, 4) != 0); /* 2^-32 chance of a false alarm */
    CHECK(f[2].len == 300 && f[2].payload[0] == 'a' && f[2].payload[255] == 'a' + 255 % 26);
    CHECK(f[3].opcode == OP_CLOSE && f[3].len == 6 &&
          memcmp(f[3].payload,
                 "\x03\xE8"
                 "done",
                 6) == 0);
  }
  /* Many keys: the pool refills and keys keep changing. */
  conn_output_clear(&c);
  for (int i = 0; i < 40; i++) conn_send_frame(&c, OP_BINARY, true, false, NULL, 0);
  out_frame many[40];
  if (CHECK_EQ_INT(parse_output(&c, true, many, 40), 40)) {
    int repeats = 0;
    for (int i = 1; i < 40; i++) repeats += memcmp(many[i].key, many[i - 1].key, 4) == 0;
    CHECK_EQ_INT(repeats, 0);
  }
  conn_release(&c);

  /* Unmasked server frames are accepted; a masked one is refused. */
  conn_init(&c, &cfg);
  bytes in = {0};
  put_frame_ex(&in, true, false, OP_TEXT, "from server", 11, false);
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 1))
    CHECK(r.ev[0].kind == CONN_EV_MESSAGE && r.ev[0].len == 11 && r.ev[0].in_input);
  in.len = 0;
  put_frame_ex(&in, true, false, OP_TEXT, "masked", 6, true);
  CHECK_EQ_INT(feed(&c, &r, in.p, in.len), in.len);
  if (CHECK_EQ_INT(r.n, 2)) CHECK(r.ev[1].kind == CONN_EV_ERROR && r.ev[1].close_code == 1002);
  CHECK(c.error == CONN_ERR_MASK_UNEXPECTED);
  CHECK(output_is_close(&c, true, 1002, ""));
  CHECK_EQ_INT(r.bad, 0);
  free(in.p);
  events_free(&r);
  conn_release(&c);
}

/* ---- output queue ---- */

static void test_output_fragmenting(void) {
  conn_config cfg = server_config();
  conn c;
  conn_init(&c, &cfg);
  uint8_t *p = conn_frame_reserve(&c, OP_TEXT, false, true, 2);
  if (CHECK(p != NULL)) {
    memcpy(p, "ab", 2);
    conn_frame_commit(&c, p, 2);
  }
  CHECK(conn_send_frame(&c, OP_PING, true, false, (const uint8_t *)"x", 1));
  CHECK(conn_send_frame(&c, OP_TEXT, false, true, (const uint8_t *)"cd", 2));
  CHECK(conn_send_frame(&c, OP_PONG, true, false, NULL, 0));
  p = conn_frame_reserve(&c, OP_TEXT, true, false, 2);
  if (CHECK(p != NULL)) {
    memcpy(p, "ef", 2);
    conn_frame_commit(&c, p, 2);
  }
  CHECK(conn_send_frame(&c, OP_BINARY, true, false, (const uint8_t *)"g", 1));
  const uint8_t *o = conn_output_data(&c);
  CHECK_EQ_INT(o[0], 0x41); /* TEXT, RSV1, no FIN */
  CHECK_EQ_INT(o[4], 0x89); /* PING */
  CHECK_EQ_INT(o[7], 0x00); /* CONTINUATION, RSV1 clear, no FIN */
  out_frame f[8];
  if (CHECK_EQ_INT(parse_output(&c, false, f, 8), 6)) {
    CHECK(f[0].opcode == OP_TEXT && !f[0].fin && f[0].rsv1 && memcmp(f[0].payload, "ab", 2) == 0);
    CHECK(f[1].opcode == OP_PING && f[1].fin && f[1].len == 1);
    CHECK(f[2].opcode == OP_CONTINUATION && !f[2].fin && !f[2].rsv1);
    CHECK(f[3].opcode == OP_PONG && f[3].fin && f[3].len == 0);
    CHECK(f[4].opcode == OP_CONTINUATION && f[4].fin && memcmp(f[4].payload, "ef", 2) == 0);
    CHECK(f[5].opcode == OP_BINARY && f[5].fin && f[5].len == 1);
    for (int i = 0; i < 6; i++) CHECK(!f[i].masked);
  }

  /* Lengths that need the 16- and 64-bit encodings. */
  conn_output_clear(&c);
  CHECK_EQ_INT(conn_output_size(&c), 0);
  uint8_t *big = calloc(1, 70000);
  CHECK(conn_send_frame(&c, OP_BINARY, true, false, big, 126));
  CHECK(conn_send_frame(&c, OP_BINARY, true, false, big, 70000));
  CHECK_EQ_INT(conn_output_size(&c), 4 + 126 + 10 + 70000);
  CHECK(parse_output(&c, false, f, 8) == 2 && f[0].len == 126 && f[1].len == 70000);
  free(big);

  /* Detach hands over everything and leaves the queue empty and usable. */
  size_t n = 0;
  size_t expected = conn_output_size(&c);
  uint8_t *out = conn_output_detach(&c, &n);
  CHECK(out != NULL && n == expected);
  CHECK(out[0] == 0x82 && out[1] == 126);
  free(out);
  CHECK_EQ_INT(conn_output_size(&c), 0);
  CHECK(conn_output_data(&c) == NULL);
  out = conn_output_detach(&c, &n);
  CHECK(out == NULL && n == 0);
  CHECK(conn_send_frame(&c, OP_TEXT, true, false, (const uint8_t *)"again", 5));
  CHECK(parse_output(&c, false, f, 8) == 1 && f[0].len == 5);

  /* conn_output_ensure: reservations within it do not move the buffer. */
  conn_output_clear(&c);
  CHECK(conn_output_ensure(&c, 3 * (2 + 100)));
  const uint8_t *base = conn_output_data(&c);
  uint8_t *a = conn_frame_reserve(&c, OP_BINARY, true, false, 100);
  uint8_t *b = conn_frame_reserve(&c, OP_BINARY, true, false, 100);
  uint8_t *d = conn_frame_reserve(&c, OP_BINARY, true, false, 100);
  CHECK(conn_output_data(&c) == base && a == base + 2 && b == a + 102 && d == b + 102);
  memset(a, 1, 100), memset(b, 2, 100), memset(d, 3, 100);
  conn_frame_commit(&c, a, 100), conn_frame_commit(&c, b, 100), conn_frame_commit(&c, d, 100);
  CHECK(parse_output(&c, false, f, 8) == 3 && f[2].payload[99] == 3);
  conn_release(&c);
}

static void test_send_header(void) {
  /* Server only: a header alone, with the same fragmenting rules as conn_frame_reserve. */
  conn_config cfg = server_config();
  conn c;
  conn_init(&c, &cfg);
  CHECK(conn_send_header(&c, OP_TEXT, false, true, 3));
  CHECK(conn_send_header(&c, OP_TEXT, false, true, 70000));
  CHECK(conn_send_header(&c, OP_TEXT, true, true, 0));
  const uint8_t *o = conn_output_data(&c);
  if (CHECK_EQ_INT(conn_output_size(&c), 2 + 10 + 2)) {
    CHECK_EQ_INT(o[0], 0x41); /* TEXT, RSV1, no FIN */
    CHECK_EQ_INT(o[1], 3);
    CHECK_EQ_INT(o[2], 0x00); /* CONTINUATION, RSV1 clear */
    CHECK_EQ_INT(o[3], 127);
    CHECK_EQ_INT(o[12], 0x80); /* CONTINUATION with FIN */
    CHECK_EQ_INT(o[13], 0);
  }
  CHECK(c.out_fragmenting == false);
  conn_release(&c);

  conn_config ccfg = client_config();
  conn_init(&c, &ccfg);
  CHECK(!conn_send_header(&c, OP_TEXT, true, false, 3));
  CHECK_EQ_INT(conn_output_size(&c), 0);
  conn_release(&c);
}

/* Output the engine writes by itself (a pong, a close echo, a failure's close frame) must not
 * overtake the receiver's replies to the messages before it on the wire: such an event is
 * only ever the first of a conn_feed call, after the caller handled the earlier ones. */
static void test_replies_keep_wire_order(void) {
  conn_config cfg = server_config();
  conn c;
  events r = {0};
  bytes in = {0};
  out_frame f[8];

  put_str(&in, true, OP_TEXT, "one");
  put_str(&in, true, OP_PING, "p");
  put_str(&in, true, OP_TEXT, "two");
  put_frame(&in, true, OP_CLOSE, "\x03\xE8", 2);
  conn_init(&c, &cfg);
  uint8_t *copy = malloc(in.len);
  if (copy == NULL) abort();
  memcpy(copy, in.p, in.len);
  r.lo = copy;
  r.hi = copy + in.len;

  /* First call: the message only; the ping waits, nothing is queued yet. */
  size_t used = conn_feed(&c, copy, in.len, record_event, &r);
  CHECK(r.n == 1 && r.ev[0].kind == CONN_EV_MESSAGE);
  CHECK(conn_has_deferred(&c));
  CHECK_EQ_INT(conn_output_size(&c), 0);
  conn_send_frame(&c, OP_TEXT, true, false, (const uint8_t *)"re:one", 6); /* the app's reply */

  /* Second call: the ping (its pong now follows the reply), then the next message. */
  used += conn_feed(&c, copy + used, in.len - used, record_event, &r);
  CHECK(r.n == 3 && r.ev[1].kind == CONN_EV_PING && r.ev[2].kind == CONN_EV_MESSAGE);
  CHECK(conn_has_deferred(&c) && !(c.close_state & CONN_CLOSE_SENT));
  conn_send_frame(&c, OP_TEXT, true, false, (const uint8_t *)"re:two", 6);

  /* Third call: the close, echoed after both replies; the input is then all consumed. */
  used += conn_feed(&c, copy + used, in.len - used, record_event, &r);
  CHECK_EQ_INT(used, in.len);
  CHECK(r.n == 4 && r.ev[3].kind == CONN_EV_CLOSE && r.ev[3].close_code == 1000);
  CHECK(!conn_has_deferred(&c) && (c.close_state & CONN_CLOSE_SENT));
  if (CHECK_EQ_INT(parse_output(&c, false, f, 8), 4)) {
    CHECK(f[0].opcode == OP_TEXT && f[0].len == 6 && memcmp(f[0].payload, "re:one", 6) == 0);
    CHECK(f[1].opcode == OP_PONG && f[1].len == 1 && f[1].payload[0] == 'p');
    CHECK(f[2].opcode == OP_TEXT && f[2].len == 6 && memcmp(f[2].payload, "re:two", 6) == 0);
    CHECK(f[3].opcode == OP_CLOSE && f[3].len == 2);
  }
  events_clear(&r);
  conn_release(&c);

  /* A protocol error after a message: the failure (and its close frame) waits the same way,
   * and a call with no input left runs it. */
  in.len = 0;
  put_str(&in, true, OP_TEXT, "ok");
  put_frame(&in, true, 0x3 /* reserved opcode */, "", 0);
  conn_init(&c, &cfg);
  memcpy(copy, in.p, in.len);
  r.lo = copy;
  r.hi = copy + in.len;
  conn_feed(&c, copy, in.len, record_event, &r);
  CHECK(r.n == 1 && conn_has_deferred(&c) && c.error == CONN_OK);
  CHECK_EQ_INT(conn_output_size(&c), 0);
  CHECK_EQ_INT(conn_feed(&c, copy + in.len, 0, record_event, &r), 0);
  CHECK(r.n == 2 && r.ev[1].kind == CONN_EV_ERROR && r.ev[1].close_code == 1002);
  CHECK(c.error == CONN_ERR_OPCODE && output_is_close(&c, false, 1002, ""));
  events_free(&r);
  conn_release(&c);
  free(copy);
  free(in.p);
}

/* ---- reading a large payload where it belongs (conn_payload_target) ---- */

/* Delivers wire[0..len) as the transport does: what conn_payload_target offers (at least
 * min_room, pieces of at most max_room) is copied straight into the message, as a read there
 * would put it, and given to conn_feed_landed; anything else goes through conn_feed in
 * pieces of `piece` bytes. Returns how many bytes landed. */
static size_t deliver_landing(conn *c, events *r, const uint8_t *wire, size_t len, size_t min_room,
                              size_t max_room, size_t piece) {
  size_t pos = 0, landed = 0;
  while (pos < len) {
    size_t room = 0;
    uint8_t *into = conn_payload_target(c, min_room, max_room, &room);
    if (into != NULL) {
      CHECK(room >= 1 && room <= max_room && room <= len - pos);
      memcpy(into, wire + pos, room);
      conn_feed_landed(c, room, record_event, r);
      pos += room;
      landed += room;
      continue;
    }
    size_t n = len - pos < piece ? len - pos : piece;
    CHECK_EQ_INT(feed(c, r, wire + pos, n), n);
    pos += n;
  }
  return landed;
}

static void test_payload_landing(void) {
  /* A fragmented text message of multi-byte characters, split across landings anywhere. */
  size_t first = 40000, second = 30002;
  uint8_t *text = malloc(first + second);
  for (size_t i = 0; i + 2 <= first + second; i += 2) memcpy(text + i, "\xC3\xA9", 2); /* é */
  bytes in = {0};
  put_frame(&in, false, OP_TEXT, text, first);
  put_frame(&in, true, OP_CONTINUATION, text + first, second);
  put_str(&in, true, OP_TEXT, "after");
  const size_t max_rooms[] = {1, 7, 4096, 1 << 20};
  for (size_t m = 0; m < sizeof max_rooms / sizeof max_rooms[0]; m++) {
    conn_config cfg = server_config();
    conn c;
    conn_init(&c, &cfg);
    events r = {0};
    size_t landed = deliver_landing(&c, &r, in.p, in.len, 1, max_rooms[m], 100);
    CHECKF(landed > 60000, "max_room %zu: only %zu bytes landed", max_rooms[m], landed);
    if (CHECKF(r.n == 2, "max_room %zu: %zu events", max_rooms[m], r.n)) {
      CHECK(r.ev[0].kind == CONN_EV_MESSAGE && !r.ev[0].binary && r.ev[0].owned);
      CHECK(r.ev[0].len == first + second && memcmp(r.ev[0].data, text, first + second) == 0);
      CHECK(r.ev[1].kind == CONN_EV_MESSAGE && r.ev[1].len == 5 &&
            memcmp(r.ev[1].data, "after", 5) == 0);
    }
    CHECK(c.out_len == 0); /* nothing to say: no close */
    CHECK_EQ_INT(r.bad, 0);
    events_free(&r);
    conn_release(&c);
  }
  free(in.p);

  /* Not offered: less than min_room to come, a control frame, before any frame. */
  {
    conn_config cfg = server_config();
    conn c;
    conn_init(&c, &cfg);
    events r = {0};
    size_t room = 0;
    CHECK(conn_payload_target(&c, 1, 100, &room) == NULL);
    bytes b = {0};
    put_frame(&b, true, OP_BINARY, text, 1000);
    CHECK_EQ_INT(feed(&c, &r, b.p, 10), 10);
    CHECK(conn_payload_target(&c, 2000, 1 << 20, &room) == NULL);
    /* (8 header bytes: 126, a 16-bit length, the mask key; then 2 of the payload) */
    CHECK(conn_payload_target(&c, 500, 1 << 20, &room) != NULL && room == 1000 - 2);
    b.len = 0;
    put_frame(&b, true, OP_PING, "0123456789", 10);
    CHECK_EQ_INT(feed(&c, &r, b.p, 0), 0);
    events_free(&r);
    conn_release(&c);
    conn_init(&c, &cfg);
    CHECK_EQ_INT(feed(&c, &r, b.p, 8), 8); /* a ping's header and two bytes */
    CHECK(conn_payload_target(&c, 1, 100, &room) == NULL);
    free(b.p);
    events_free(&r);
    conn_release(&c);
  }

  /* Invalid UTF-8 that lands is caught as in conn_feed: 1007, and nothing more is parsed. */
  {
    uint8_t *bad = malloc(20000);
    memset(bad, 'a', 20000);
    bad[15000] = 0xFF;
    bytes b = {0};
    put_frame(&b, true, OP_TEXT, bad, 20000);
    conn_config cfg = server_config();
    conn c;
    conn_init(&c, &cfg);
    events r = {0};
    deliver_landing(&c, &r, b.p, b.len, 1, 1 << 20, 20);
    if (CHECK_EQ_INT(r.n, 1)) CHECK(r.ev[0].kind == CONN_EV_ERROR && r.ev[0].close_code == 1007);
    CHECK(output_is_close(&c, false, 1007, ""));
    CHECK(conn_input_done(&c));
    size_t room = 0;
    CHECK(conn_payload_target(&c, 1, 100, &room) == NULL);
    free(b.p);
    free(bad);
    events_free(&r);
    conn_release(&c);
  }
  free(text);
}

int main(void) {
  RUN(test_single_message_zero_copy);
  RUN(test_message_split_owned);
  RUN(test_thousand_frames);
  RUN(test_pause);
  RUN(test_fragmented_with_pings);
  RUN(test_track_fragments);
  RUN(test_utf8);
  RUN(test_max_payload);
  RUN(test_progress_kept_only_while_needed);
  RUN(test_large_announced_frame);
  RUN(test_payload_landing);
  RUN(test_errors);
  RUN(test_error_after_our_close);
  RUN(test_close);
  RUN(test_client);
  RUN(test_output_fragmenting);
  RUN(test_send_header);
  RUN(test_replies_keep_wire_order);
  return CHECK_DONE();
}
