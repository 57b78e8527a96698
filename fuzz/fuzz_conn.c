/* libFuzzer target for src/conn.c: the connection engine fed arbitrary bytes, whole and cut at
 * arbitrary points, with sends (frame, reserve/commit, header-only, prebuilt frames), closes
 * and output detaches interleaved, also from inside the event callback. Three oracles: both
 * feedings must give exactly the events of a small reference model written here; every output
 * byte must parse back into exactly the frames that were sent (ours and the engine's pongs and
 * closes); the API's promises must hold.
 *
 * Input: [flags][max][n][m][n split sizes][m action bytes][data]. flags: bit 0 is_server,
 * bit 1 skip_utf8_validation, bit 2 auto_pong, bit 3 track_fragments, bits 4-6 misalignment.
 * max chooses max_payload (see max_payload_of). With m = 0 nothing is sent. */
#include <stdint.h>
#include <stdio.h>

#include "engine/conn.h"
#include "codec/frame.h"
#include "fuzz_util.h"
#include "codec/mask.h"

/* ---- recorded events ---- */

typedef struct ev_rec {
  conn_event_kind kind;
  bool binary;
  int close_code;
  size_t data_off, len;   /* into ev_log.data */
  size_t frag_off, nfrag; /* into ev_log.frags, in size_t units */
} ev_rec;

typedef struct ev_log {
  ev_rec *ev;
  size_t n, cap;
  byte_buf data;
  byte_buf frags;
} ev_log;

static void log_add(ev_log *log, conn_event_kind kind, bool binary, int close_code,
                    const uint8_t *data, size_t len, const size_t *frags, size_t nfrag) {
  if (log->n == log->cap) {
    log->cap = log->cap ? log->cap * 2 : 16;
    log->ev = realloc(log->ev, log->cap * sizeof(*log->ev));
    if (!log->ev) abort();
  }
  ev_rec *r = &log->ev[log->n++];
  r->kind = kind;
  r->binary = binary;
  r->close_code = close_code;
  r->data_off = log->data.len;
  r->len = len;
  buf_put(&log->data, data, len);
  r->frag_off = log->frags.len / sizeof(size_t);
  r->nfrag = nfrag;
  buf_put(&log->frags, frags, nfrag * sizeof(size_t));
}

static void log_free(ev_log *log) {
  free(log->ev);
  buf_free(&log->data);
  buf_free(&log->frags);
}

static void log_compare(const ev_log *a, const ev_log *b) {
  FUZZ_CHECK(a->n == b->n);
  for (size_t i = 0; i < a->n; i++) {
    const ev_rec *x = &a->ev[i], *y = &b->ev[i];
    FUZZ_CHECK(x->kind == y->kind && x->close_code == y->close_code && x->len == y->len);
    if (x->kind == CONN_EV_MESSAGE) FUZZ_CHECK(x->binary == y->binary);
    if (x->len) FUZZ_CHECK(memcmp(a->data.p + x->data_off, b->data.p + y->data_off, x->len) == 0);
    FUZZ_CHECK(x->nfrag == y->nfrag);
    if (x->nfrag)
      FUZZ_CHECK(memcmp(a->frags.p + x->frag_off * sizeof(size_t),
                        b->frags.p + y->frag_off * sizeof(size_t), x->nfrag * sizeof(size_t)) == 0);
  }
}

/* ---- reference model of the receive side ---- */

static bool ref_close_code_valid(int code) {
  return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
         (code >= 3000 && code <= 4999);
}

static int ref_frame_error_status(frame_error e) {
  return e == FRAME_ERR_LENGTH_UNSAFE ? 1009 : 1002;
}

/* What the engine must report for data (fed in any way), following RFC 6455 and the rules in
 * conn.h, built on the frame parser (fuzzed on its own by fuzz_frame). */
static void ref_run(const conn_config *cfg, bool track, const uint8_t *data, size_t len,
                    ev_log *log) {
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) abort();
  if (len) memcpy(buf, data, len);
  frame_parser p;
  frame_parser_init(&p, cfg->is_server, false);
  uint64_t limit = cfg->max_payload ? cfg->max_payload : FRAME_MAX_SAFE_LENGTH;
  bool in_msg = false, binary = false;
  uint64_t msg_size = 0;
  byte_buf msg = {0}, frags = {0}, ctl = {0};
  ref_utf8 u;
  ref_utf8_init(&u);
  size_t pos = 0;

#define REF_FAIL(status)                                            \
  do {                                                              \
    log_add(log, CONN_EV_ERROR, false, (status), NULL, 0, NULL, 0); \
    goto out;                                                       \
  } while (0)

  for (;;) {
    size_t used;
    uint8_t *pl;
    size_t pl_len;
    frame_event fe = frame_parse(&p, buf + pos, len - pos, &used, &pl, &pl_len);
    pos += used;
    const frame_info *f = &p.frame;
    bool control = (f->opcode & 8) != 0;
    if (fe == FRAME_NEED_MORE) break;
    if (fe == FRAME_ERROR) REF_FAIL(ref_frame_error_status(p.error));
    if (fe == FRAME_HEADER) {
      if (control) {
        ctl.len = 0;
        continue;
      }
      if ((f->opcode == OP_CONTINUATION) != in_msg) REF_FAIL(1002);
      if (!in_msg) {
        in_msg = true;
        binary = f->opcode == OP_BINARY;
        msg_size = 0;
        msg.len = 0;
        frags.len = 0;
        ref_utf8_init(&u);
      }
      if (msg_size + f->payload_len > limit) REF_FAIL(1009);
      msg_size += f->payload_len;
    } else if (fe == FRAME_PAYLOAD) {
      if (control) {
        buf_put(&ctl, pl, pl_len);
        continue;
      }
      buf_put(&msg, pl, pl_len);
      if (!binary && !cfg->skip_utf8_validation && !ref_utf8_feed(&u, pl, pl_len)) REF_FAIL(1007);
    } else if (control) { /* FRAME_END */
      if (f->opcode != OP_CLOSE) {
        log_add(log, f->opcode == OP_PING ? CONN_EV_PING : CONN_EV_PONG, false, 0, ctl.p, ctl.len,
                NULL, 0);
        continue;
      }
      if (ctl.len == 1) REF_FAIL(1002);
      if (ctl.len == 0) {
        log_add(log, CONN_EV_CLOSE, false, 1005, NULL, 0, NULL, 0);
        goto out;
      }
      int code = (ctl.p[0] << 8) | ctl.p[1];
      if (!ref_close_code_valid(code)) REF_FAIL(1002);
      ref_utf8 r;
      ref_utf8_init(&r);
      if (!cfg->skip_utf8_validation &&
          !(ref_utf8_feed(&r, ctl.p + 2, ctl.len - 2) && ref_utf8_complete(&r)))
        REF_FAIL(1007);
      log_add(log, CONN_EV_CLOSE, false, code, ctl.p + 2, ctl.len - 2, NULL, 0);
      goto out;
    } else { /* FRAME_END of a data frame */
      if (f->payload_len > 0) buf_put(&frags, &msg.len, sizeof(size_t));
      if (!f->fin) continue;
      if (!binary && !cfg->skip_utf8_validation && !ref_utf8_complete(&u)) REF_FAIL(1007);
      size_t nfrag = frags.len / sizeof(size_t);
      if (!track || nfrag < 2) nfrag = 0;
      log_add(log, CONN_EV_MESSAGE, binary, 0, msg.p, msg.len, (const size_t *)frags.p, nfrag);
      in_msg = false;
      msg_size = 0;
    }
  }
#undef REF_FAIL
out:
  buf_free(&msg);
  buf_free(&frags);
  buf_free(&ctl);
  free(buf);
}

/* ---- expected output ---- */

/* The frames the output must hold, in order, and a parser that checks the output against
 * them as it is taken from the engine. */
typedef struct out_model {
  want_frames want;
  bool close_sent;  /* our idea of conn.close_sent */
  bool fragmenting; /* our idea of conn.out_fragmenting */
  frame_parser parser;
  bool in_frame;
  uint64_t got;
} out_model;

static void out_push(out_model *m, uint8_t opcode, bool fin, bool rsv1, const uint8_t *payload,
                     size_t len) {
  want_frame_push(&m->want, opcode, fin, rsv1, payload, len);
}

static void out_push_close(out_model *m, int code, const uint8_t *reason, size_t reason_len) {
  uint8_t body[FRAME_MAX_CONTROL];
  size_t len = 0;
  if (code) {
    if (reason_len > FRAME_MAX_CONTROL - 2) reason_len = FRAME_MAX_CONTROL - 2;
    body[0] = (uint8_t)(code >> 8);
    body[1] = (uint8_t)code;
    if (reason_len) memcpy(body + 2, reason, reason_len);
    len = 2 + reason_len;
  }
  out_push(m, OP_CLOSE, true, false, body, len);
  m->close_sent = true;
}

/* Parses output bytes (modified: unmasked in place) against the expected frames. */
static void out_take(out_model *m, uint8_t *bytes, size_t len) {
  static uint8_t none[1];
  if (!bytes) bytes = none; /* an empty detach gives NULL */
  size_t pos = 0;
  for (;;) {
    size_t used;
    uint8_t *pl;
    size_t pl_len;
    frame_event fe = frame_parse(&m->parser, bytes + pos, len - pos, &used, &pl, &pl_len);
    pos += used;
    if (fe == FRAME_NEED_MORE) break;
    FUZZ_CHECK(fe != FRAME_ERROR);
    FUZZ_CHECK(m->want.head < m->want.n);
    const want_frame *want = &m->want.q[m->want.head];
    const frame_info *f = &m->parser.frame;
    if (fe == FRAME_HEADER) {
      FUZZ_CHECK(!m->in_frame);
      FUZZ_CHECK(f->opcode == want->opcode && f->fin == want->fin && f->rsv1 == want->rsv1);
      FUZZ_CHECK(f->payload_len == want->len);
      m->in_frame = true;
      m->got = 0;
    } else if (fe == FRAME_PAYLOAD) {
      FUZZ_CHECK(memcmp(pl, want_frame_payload(&m->want, want) + m->got, pl_len) == 0);
      m->got += pl_len;
    } else { /* FRAME_END */
      FUZZ_CHECK(m->in_frame && m->got == want->len);
      m->in_frame = false;
      m->want.head++;
    }
  }
}

static bool out_at_boundary(const out_model *m) {
  return !m->in_frame && m->parser.header_len == 0;
}

/* ---- the harness ---- */

typedef struct harness {
  conn c;
  bool track;
  ev_log log;
  out_model out;
  byte_cycle actions;
  const uint8_t *cur; /* the input of the conn_feed call in progress */
  size_t cur_len;
  size_t events_in_call;
  bool land;   /* payloads are taken the native transport's way when offered (feed_landing) */
  bool done;   /* a CLOSE or ERROR event was seen */
  size_t sent; /* payload bytes sent by actions, see pick_len */
} harness;

static const size_t len_table[16] = {0,  1,   3,   4,   7,   8,    16,    31,
                                     64, 125, 126, 127, 200, 4096, 65535, 65536};

static uint8_t next_byte(harness *h) { return byte_cycle_next(&h->actions); }

/* A payload length for a send. Past a budget per run the big ones shrink: the action list
 * cycles, and 64 KiB on every turn made an execution a hundred times slower. */
#define SEND_BUDGET (256 * 1024)
static size_t pick_len(harness *h) {
  size_t len = len_table[next_byte(h) & 15];
  if (h->sent + len > SEND_BUDGET) len &= 127;
  h->sent += len;
  return len;
}

/* Payload bytes for sends: a slice of one fixed pattern, chosen by seed. (Filling a fresh
 * buffer per send cost most of the run time under coverage instrumentation.) */
static const uint8_t *payload_of(uint8_t seed) {
  static uint8_t pattern[65536 + 256];
  static bool ready;
  if (!ready) {
    for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)(i * 7 + (i >> 8));
    ready = true;
  }
  return pattern + seed;
}

/* Takes all queued output, the way a transport does (detach) or a test might (copy + clear). */
static void drain(harness *h, bool detach) {
  size_t n = conn_output_size(&h->c);
  uint8_t *bytes;
  if (detach) {
    size_t got;
    bytes = conn_output_detach(&h->c, &got);
    FUZZ_CHECK(got == n);
  } else {
    bytes = malloc(n ? n : 1);
    if (!bytes) abort();
    if (n) memcpy(bytes, conn_output_data(&h->c), n);
    conn_output_clear(&h->c);
  }
  FUZZ_CHECK(conn_output_size(&h->c) == 0);
  out_take(&h->out, bytes, n);
  free(bytes);
}

/* The wire opcode and RSV1 of a data frame: a continuation while a message is open. */
static void expect_data(harness *h, uint8_t opcode, bool fin, bool rsv1, const uint8_t *payload,
                        size_t len) {
  out_model *m = &h->out;
  out_push(m, m->fragmenting ? OP_CONTINUATION : opcode, fin, m->fragmenting ? false : rsv1,
           payload, len);
  m->fragmenting = !fin;
}

static void send_data_reserve(harness *h, uint8_t opcode, bool fin, bool rsv1,
                              const uint8_t *payload, size_t len) {
  uint8_t *dst = conn_frame_reserve(&h->c, opcode, fin, rsv1, len);
  FUZZ_CHECK(dst != NULL);
  if (len) memcpy(dst, payload, len);
  conn_frame_commit(&h->c, dst, len);
}

/* One action chosen by the next action byte (and following ones for its arguments). */
static void do_action(harness *h) {
  if (h->actions.count == 0) return;
  uint8_t a = next_byte(h);
  conn *c = &h->c;
  out_model *m = &h->out;
  bool server = c->config->is_server;
  uint8_t opcode = (a & 8) ? OP_BINARY : OP_TEXT;
  bool fin = (a & 16) != 0;
  bool rsv1 = (a & 32) != 0;

  switch (a & 7) {
    case 0: /* nothing, or (server) frames built elsewhere, as topics do */
      if ((a & 64) && server && !m->close_sent && !m->fragmenting) {
        byte_buf frames = {0};
        uint8_t header[FRAME_MAX_HEADER];
        size_t len = pick_len(h);
        const uint8_t *payload = payload_of(a);
        buf_put(&frames, header, frame_header_encode(header, true, rsv1, opcode, len, NULL));
        buf_put(&frames, payload, len);
        out_push(m, opcode, true, rsv1, payload, len);
        if (a & 16) {
          buf_put(&frames, header, frame_header_encode(header, true, false, OP_PING, 3, NULL));
          buf_put(&frames, payload, 3);
          out_push(m, OP_PING, true, false, payload, 3);
        }
        FUZZ_CHECK(conn_send_framed(c, frames.p, frames.len));
        buf_free(&frames);
      }
      break;
    case 1:
    case 2: { /* a data frame, copied or written in place */
      if (m->close_sent) break;
      size_t len = pick_len(h);
      const uint8_t *payload = payload_of(next_byte(h));
      if ((a & 7) == 1) FUZZ_CHECK(conn_send_frame(c, opcode, fin, rsv1, payload, len));
      else
        send_data_reserve(h, opcode, fin, rsv1, payload, len);
      expect_data(h, opcode, fin, rsv1, payload, len);
      break;
    }
    case 3: { /* ping or pong */
      if (m->close_sent) break;
      uint8_t op = (a & 8) ? OP_PONG : OP_PING;
      size_t len = pick_len(h);
      if (len > FRAME_MAX_CONTROL) len = FRAME_MAX_CONTROL;
      const uint8_t *payload = payload_of(a);
      FUZZ_CHECK(conn_send_frame(c, op, true, false, payload, len));
      out_push(m, op, true, false, payload, len);
      break;
    }
    case 4: { /* close, with a reason that may need truncating */
      static const int codes[8] = {0, 1000, 1001, 1011, 3000, 4999, 1000, 4000};
      int code = codes[(a >> 3) & 7];
      size_t reason_len = code ? next_byte(h) : 0;
      const uint8_t *reason = payload_of(a);
      bool queued = conn_send_close(c, code, reason, reason_len);
      FUZZ_CHECK(queued == !m->close_sent);
      if (queued) out_push_close(m, code, reason, reason_len);
      break;
    }
    case 5:
      drain(h, true);
      FUZZ_CHECK(out_at_boundary(m));
      break;
    case 6:
      drain(h, false);
      FUZZ_CHECK(out_at_boundary(m));
      break;
    case 7: {
      if (m->close_sent) break;
      size_t len = pick_len(h);
      const uint8_t *payload = payload_of(a);
      if ((a & 64) && server) {
        /* Header only; the payload follows the queued output, written by the caller. */
        FUZZ_CHECK(conn_send_header(c, opcode, fin, rsv1, len));
        expect_data(h, opcode, fin, rsv1, payload, len);
        drain(h, true);
        uint8_t *wire = malloc(len ? len : 1);
        if (!wire) abort();
        if (len) memcpy(wire, payload, len);
        out_take(m, wire, len);
        free(wire);
        FUZZ_CHECK(out_at_boundary(m));
      } else {
        /* After conn_output_ensure, a reservation that fits must not move the buffer. */
        FUZZ_CHECK(conn_output_ensure(c, frame_header_size(len, !server) + len));
        const uint8_t *before = conn_output_data(c);
        send_data_reserve(h, opcode, fin, rsv1, payload, len);
        FUZZ_CHECK(conn_output_data(c) == before);
        expect_data(h, opcode, fin, rsv1, payload, len);
      }
      break;
    }
    default: break;
  }
  FUZZ_CHECK(m->close_sent == ((c->close_state & CONN_CLOSE_SENT) != 0));
  FUZZ_CHECK(m->fragmenting == c->out_fragmenting);
}

static bool on_event(void *ctx, const conn_event *ev) {
  harness *h = ctx;
  conn *c = &h->c;
  FUZZ_CHECK(!h->done); /* nothing after CLOSE or ERROR */
  bool first = h->events_in_call++ == 0;
  if (ev->len) FUZZ_CHECK(ev->data != NULL);
  const size_t *frags = NULL;
  size_t nfrag = 0;

  switch (ev->kind) {
    case CONN_EV_MESSAGE:
      if (ev->owned) {
        FUZZ_CHECK(ev->data == ev->owned);
      } else if (ev->len) {
        /* Zero copy: it lies in the input of this very call (or in the connection). */
        bool in_input = ev->data >= h->cur && ev->data + ev->len <= h->cur + h->cur_len;
        bool in_conn = ev->data >= (const uint8_t *)c &&
                       ev->data + ev->len <= (const uint8_t *)(c + 1);
        FUZZ_CHECK(in_input || in_conn);
      }
      if (ev->fragment_ends) {
        FUZZ_CHECK(h->track && ev->fragment_count > 1);
        for (size_t i = 0; i < ev->fragment_count; i++)
          FUZZ_CHECK(ev->fragment_ends[i] > (i ? ev->fragment_ends[i - 1] : 0));
        FUZZ_CHECK(ev->fragment_ends[ev->fragment_count - 1] == ev->len);
        frags = ev->fragment_ends;
        nfrag = ev->fragment_count;
      } else {
        FUZZ_CHECK(ev->fragment_count == 0);
      }
      break;
    case CONN_EV_PING:
    case CONN_EV_PONG:
      /* conn.h promises "first in its call" for the events that queue output. */
      if (ev->kind == CONN_EV_PING && c->config->auto_pong) FUZZ_CHECK(first);
      FUZZ_CHECK(ev->len <= FRAME_MAX_CONTROL && !ev->owned);
      break;
    case CONN_EV_CLOSE:
      FUZZ_CHECK(first && !ev->owned && (c->close_state & CONN_CLOSE_RECEIVED) &&
                 conn_input_done(c));
      FUZZ_CHECK(ev->close_code == 1005 ? ev->len == 0 : ref_close_code_valid(ev->close_code));
      h->done = true;
      break;
    case CONN_EV_ERROR: {
      FUZZ_CHECK(first && !ev->owned && c->error != CONN_OK && conn_input_done(c));
      FUZZ_CHECK(conn_error_info(c->error)->status == ev->close_code);
      char msg[256];
      conn_error_message(c->error, c->error_detail, msg, sizeof msg);
      FUZZ_CHECK(msg[0] != 0);
      h->done = true;
      break;
    }
    default: FUZZ_CHECK(0);
  }
  log_add(&h->log, ev->kind, ev->binary, ev->close_code, ev->data, ev->len, frags, nfrag);

  /* What the engine queued just before this event. */
  out_model *m = &h->out;
  if (ev->kind == CONN_EV_PING && c->config->auto_pong && !m->close_sent)
    out_push(m, OP_PONG, true, false, ev->data, ev->len);
  if (ev->kind == CONN_EV_CLOSE && !m->close_sent)
    out_push_close(m, ev->close_code == 1005 ? 0 : ev->close_code, ev->data, ev->len);
  if (ev->kind == CONN_EV_ERROR && !m->close_sent) out_push_close(m, ev->close_code, NULL, 0);
  FUZZ_CHECK(m->close_sent == ((c->close_state & CONN_CLOSE_SENT) != 0));

  free(ev->owned);
  do_action(h); /* the receiver answering an event */
  return true;
}

/* Feeds one piece like a real caller: again while work is deferred, until all is used. */
static void feed(harness *h, uint8_t *buf, size_t n) {
  size_t off = 0;
  size_t rounds = 0;
  for (;;) {
    h->cur = buf + off;
    h->cur_len = n - off;
    h->events_in_call = 0;
    size_t used = conn_feed(&h->c, buf + off, n - off, on_event, h);
    FUZZ_CHECK(used <= n - off);
    off += used;
    if (!conn_has_deferred(&h->c)) break;
    FUZZ_CHECK(h->events_in_call > 0); /* deferring only ever follows reported events */
    FUZZ_CHECK(++rounds <= n + 16);
  }
  FUZZ_CHECK(off == n); /* the callback never says stop, so everything is consumed */
  FUZZ_CHECK(h->done == conn_input_done(&h->c));
}

/* Feeds one piece as the native transport reads: where the engine offers to take payload
 * straight into the message it assembles (conn_payload_target), the bytes land there (a copy
 * stands in for the read) and conn_feed_landed reports what follows; the rest goes through
 * feed() a few bytes at a time, so that offers come up mid-frame. */
static void feed_landing(harness *h, uint8_t *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    size_t room = 0;
    uint8_t *into = conn_payload_target(&h->c, 1, n - off, &room);
    if (into != NULL) {
      FUZZ_CHECK(room >= 1 && room <= n - off);
      memcpy(into, buf + off, room);
      h->cur = NULL;
      h->cur_len = 0;
      h->events_in_call = 0;
      conn_feed_landed(&h->c, room, on_event, h);
      off += room;
      if (conn_has_deferred(&h->c)) feed(h, buf + off, 0);
      FUZZ_CHECK(h->done == conn_input_done(&h->c));
      continue;
    }
    size_t k = n - off < 7 ? n - off : 7;
    feed(h, buf + off, k);
    off += k;
  }
}

static void run(const conn_config *cfg, bool track, size_t shift, split_plan plan, bool land,
                const uint8_t *actions, size_t nactions, const uint8_t *data, size_t len,
                ev_log *log) {
  harness *h = calloc(1, sizeof(*h));
  if (!h) abort();
  conn_init(&h->c, cfg);
  h->c.track_fragments = track;
  h->track = track;
  h->land = land;
  h->actions = (byte_cycle){.bytes = actions, .count = nactions};
  frame_parser_init(&h->out.parser, !cfg->is_server, true);

  size_t pos = 0;
  do {
    size_t n = split_next(&plan, len - pos);
    piece pc = piece_copy(data + pos, n, shift);
    if (land) feed_landing(h, pc.data, n);
    else
      feed(h, pc.data, n);
    piece_free(&pc);
    do_action(h);
    pos += n;
  } while (pos < len);

  drain(h, true);
  FUZZ_CHECK(h->out.want.head == h->out.want.n && out_at_boundary(&h->out));
  conn_release(&h->c);
  want_frames_free(&h->out.want);
  *log = h->log;
  free(h);
}

static uint64_t max_payload_of(uint8_t b) {
  static const uint64_t big[8] = {
      0, 200, 1000, 65535, 65536, 1u << 20, FRAME_MAX_SAFE_LENGTH, FRAME_MAX_SAFE_LENGTH + 1};
  return b < 128 ? b : big[b & 7];
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  if (size < 4) return 0;
  conn_config cfg = {
      .is_server = in[0] & 1,
      .skip_utf8_validation = (in[0] >> 1) & 1,
      .auto_pong = (in[0] >> 2) & 1,
      .max_payload = max_payload_of(in[1]),
  };
  bool track = (in[0] >> 3) & 1;
  size_t shift = (in[0] >> 4) & 7;
  size_t nsplit = in[2] & 15, nactions = in[3] & 15;
  if (size < 4 + nsplit + nactions) return 0;
  const uint8_t *splits = in + 4, *actions = splits + nsplit;
  const uint8_t *data = actions + nactions;
  size_t len = size - 4 - nsplit - nactions;

  ev_log want = {0}, whole = {0}, split = {0}, landed = {0};
  ref_run(&cfg, track, data, len, &want);
  run(&cfg, track, shift, (split_plan){.count = 0}, false, NULL, 0, data, len, &whole);
  run(&cfg, track, shift, (split_plan){.sizes = splits, .count = nsplit}, false, actions, nactions,
      data, len, &split);
  run(&cfg, track, shift, (split_plan){.sizes = splits, .count = nsplit}, true, actions, nactions,
      data, len, &landed);
  log_compare(&want, &whole);
  log_compare(&want, &split);
  log_compare(&want, &landed);
  log_free(&want);
  log_free(&whole);
  log_free(&split);
  log_free(&landed);
  return 0;
}
