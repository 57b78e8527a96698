/* libFuzzer target for src/conn.c with permessage-deflate negotiated: the engine is fed
 * messages that a reference peer written here compresses with plain zlib (in context
 * takeover or not, in one frame or several, with pings between them), cut at arbitrary points,
 * while the engine compresses its own sends, queues shared (topic) frames, hands inflation to
 * the caller (as the addon hands it to the thread pool) and has its streams parked
 * (conn_park_idle_streams) in between. fuzz_conn covers the engine without the extension and
 * fuzz_inflate the codec alone; this is where parking meets the engine's rules.
 *
 * Oracles:
 * - events: exactly those a model of the script predicts, compared as they arrive: every
 *   message inflated back to what the peer compressed, 1009 past max_payload (counted on the
 *   wire and when inflated), 1007 for text that is not UTF-8 and for a corrupt stream;
 * - output: every frame is what was sent; compressed ones are inflated by a reference inflater
 *   of the negotiated window that keeps its context between messages only when the engine
 *   may rely on it (no deflate_reset), so a reference back past a reset, a shared frame or a
 *   parked deflater's restart breaks the check;
 * - parking never frees a stream in use: the inflater while an inflation is handed out, the
 *   deflater during a fragmented send.
 *
 * Input: [flags][windows][levels][max][async][n][m][n split sizes][m action bytes][script].
 *   flags: bit 0 is_server, 1 inflate_reset (the peer takes over no context), 2 deflate_reset,
 *     3 shared streams for the reset directions (as the addon has), 4 inflation handed to the
 *     caller from async_inflate_min = 1 + 8 * [async] compressed bytes, 5 track_fragments,
 *     6 skip_utf8_validation, 7 max_payload = 64 * [max] + 1.
 *   windows: bits 0-2 the peer's window, 8 + x; bits 3-5 ours, 9 + x % 7.
 *   levels: bits 0-1 our zlib level (1, 6, 9, 0); bits 2-3 the peer's (6, 1, 9, 0).
 *   script: the peer's messages, each [kind][len][len bytes]; see peer_script(). */
#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "engine/conn.h"
#include "codec/frame.h"
#include "fuzz_util.h"
#include "codec/mask.h"

#define TAIL "\x00\x00\xff\xff"
#define NO_CAP_ROOM (1u << 20) /* what a garbage stream may inflate to when no cap is set */

/* An expected ERROR of either status: a garbage stream that is corrupt somewhere and also too
 * big fails with whichever of the two the codec meets first (see garbage_outcome). */
#define STATUS_1007_OR_1009 (-1)

/* ---- expected events ---- */

typedef struct want_event {
  conn_event_kind kind; /* MESSAGE, PING, CLOSE or ERROR */
  bool binary;
  int status;             /* CLOSE: code; ERROR: status or STATUS_1007_OR_1009 */
  size_t off, len;        /* payload, into want_list.bytes */
  size_t frag_off, nfrag; /* MESSAGE with tracked fragments, into want_list.frags */
} want_event;

typedef struct want_list {
  want_event *ev;
  size_t n, cap, next;
  byte_buf bytes;
  byte_buf frags; /* size_t values */
  bool ended;     /* a CLOSE or ERROR was predicted: nothing follows */
} want_list;

static void want_add(want_list *w, conn_event_kind kind, bool binary, int status,
                     const uint8_t *data, size_t len) {
  if (w->ended) return;
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 16;
    w->ev = realloc(w->ev, w->cap * sizeof(*w->ev));
    if (!w->ev) abort();
  }
  w->ev[w->n++] = (want_event){kind, binary, status, w->bytes.len, len, 0, 0};
  buf_put(&w->bytes, data, len);
  if (kind == CONN_EV_CLOSE || kind == CONN_EV_ERROR) w->ended = true;
}

/* ---- the reference peer: builds the wire and predicts the events ---- */

typedef struct peer {
  const conn_config *cfg;
  bool track;
  z_stream def;
  bool def_ready;
  byte_buf hist; /* what the engine's inflater has seen since its last reset */
  byte_buf wire; /* the frames, in order */
  want_list *want;
  uint32_t key_seed;
} peer;

static void put_frame(peer *p, uint8_t opcode, bool fin, bool rsv1, const uint8_t *payload,
                      size_t len) {
  uint8_t header[FRAME_MAX_HEADER];
  uint8_t key[4];
  bool masked = p->cfg->is_server; /* the peer is a client */
  if (masked) {
    p->key_seed = p->key_seed * 1103515245u + 12345u;
    memcpy(key, &p->key_seed, 4);
  }
  buf_put(&p->wire, header,
          frame_header_encode(header, fin, rsv1, opcode, len, masked ? key : NULL));
  size_t at = p->wire.len;
  buf_put(&p->wire, payload, len);
  if (masked) mask_apply(p->wire.p + at, len, key, 0);
}

/* The peer's deflater: a window the engine's inflater accepts. zlib cannot deflate with a
 * 256-byte window, so for 8 bits the peer makes no back-references at all (Huffman only). */
static void peer_compress(peer *p, int level, const uint8_t *plain, size_t len, byte_buf *out) {
  int bits = p->cfg->inflate_window_bits;
  if (!p->def_ready) {
    memset(&p->def, 0, sizeof p->def);
    if (deflateInit2(&p->def, level, Z_DEFLATED, -(bits < 9 ? 9 : bits), 8,
                     bits < 9 ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY) != Z_OK)
      abort();
    p->def_ready = true;
  }
  p->def.next_in = (Bytef *)(uintptr_t)plain;
  p->def.avail_in = (uInt)len;
  out->len = 0;
  do {
    buf_reserve(out, 4096);
    p->def.next_out = out->p + out->len;
    p->def.avail_out = 4096;
    int rc = deflate(&p->def, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) abort();
    out->len += 4096 - p->def.avail_out;
  } while (p->def.avail_out == 0);
  if (out->len >= 4 && memcmp(out->p + out->len - 4, TAIL, 4) == 0) out->len -= 4;
  else if (out->len == 0)
    buf_put(out, "", 1); /* RFC 7692 7.2.3.6: a lone 0x00 */
  if (p->cfg->inflate_reset) deflateReset(&p->def);
}

/* The window the engine's inflater has for the next message: the bits of the stream it uses
 * (the shared one and the fresh one of an inflation handed out are 15 bits) and its history. */
static int engine_inflate_bits(const conn_config *cfg) {
  return cfg->inflate_reset && cfg->shared_inflater ? 15 : cfg->inflate_window_bits;
}

static void remember(peer *p, const uint8_t *plain, size_t len) {
  if (p->cfg->inflate_reset) return;
  buf_put(&p->hist, plain, len);
  size_t keep = (size_t)1 << 15;
  if (p->hist.len > keep) {
    memmove(p->hist.p, p->hist.p + p->hist.len - keep, keep);
    p->hist.len = keep;
  }
}

typedef enum outcome { OUT_OK, OUT_TOO_BIG, OUT_CORRUPT } outcome;

/* Arbitrary bytes as a compressed message: plain zlib, given the engine's window as a preset
 * dictionary, inflates them into at most cap + 1 bytes. As in fuzz_inflate, a stream that
 * ends (BFINAL) before its last 4 bytes is corrupt for the codec. */
static outcome garbage_outcome(peer *p, const uint8_t *in, size_t len, size_t cap,
                               byte_buf *plain) {
  int bits = engine_inflate_bits(p->cfg);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -bits) != Z_OK) abort();
  size_t window = (size_t)1 << bits;
  size_t have = p->hist.len < window ? p->hist.len : window;
  if (have && inflateSetDictionary(&zs, p->hist.p + p->hist.len - have, (uInt)have) != Z_OK)
    abort();
  byte_buf msg = {0};
  buf_put(&msg, in, len);
  buf_put(&msg, TAIL, 4);
  plain->len = 0;
  buf_reserve(plain, cap + 1);
  zs.next_in = msg.p;
  zs.avail_in = (uInt)msg.len;
  zs.next_out = plain->p;
  zs.avail_out = (uInt)(cap + 1);
  int rc = inflate(&zs, Z_SYNC_FLUSH);
  plain->len = cap + 1 - zs.avail_out;
  bool ended = rc == Z_STREAM_END;
  outcome o = OUT_OK;
  if (!(rc == Z_OK || rc == Z_BUF_ERROR || ended) || (ended && zs.avail_in > 4)) o = OUT_CORRUPT;
  else if (plain->len > cap)
    o = OUT_TOO_BIG;
  inflateEnd(&zs);
  buf_free(&msg);
  return o;
}

/* One message of the script. kind: bit 0 binary, 1 compressed, 2-3 frames - 1, 4 a ping
 * between frames, 5 the bytes repeated 64 times, 6 the last message: a close frame, or (with
 * bit 1) arbitrary bytes sent as a compressed stream; 7 text bytes as they are (else folded
 * into ASCII, so that most runs go on past the first text message). Returns false once the
 * model predicts the end of input (a close, or a failure). */
static bool peer_message(peer *p, uint8_t kind, const uint8_t *bytes, size_t n,
                         uint8_t peer_level) {
  const conn_config *cfg = p->cfg;
  want_list *w = p->want;
  bool binary = kind & 1, compressed = kind & 2, special = kind & 64;
  size_t nframes = 1 + ((kind >> 2) & 3);
  uint64_t limit = cfg->max_payload ? cfg->max_payload : FRAME_MAX_SAFE_LENGTH;

  if (special && !compressed) {
    uint8_t body[FRAME_MAX_CONTROL] = {0x03, 0xe8}; /* 1000 */
    size_t reason = n < FRAME_MAX_CONTROL - 2 ? n : FRAME_MAX_CONTROL - 2;
    for (size_t i = 0; i < reason; i++) body[2 + i] = (uint8_t)('a' + bytes[i] % 26);
    put_frame(p, OP_CLOSE, true, false, body, 2 + reason);
    want_add(w, CONN_EV_CLOSE, false, 1000, body + 2, reason);
    return false;
  }

  byte_buf plain = {0}, payload = {0};
  buf_reserve(&plain, 1); /* never NULL, even for an empty message */
  buf_reserve(&payload, 1);
  /* (Not for garbage: with no cap it may inflate ~1000-fold, and the reference's room for
   * that is NO_CAP_ROOM.) */
  size_t repeat = (kind & 32) && !special ? 64 : 1;
  for (size_t r = 0; r < repeat; r++) buf_put(&plain, bytes, n);
  if (!binary && !(kind & 128))
    for (size_t i = 0; i < plain.len; i++) plain.p[i] = (uint8_t)(' ' + plain.p[i] % 95);

  outcome result = OUT_OK;
  if (special) { /* garbage: these bytes are the stream; plain becomes what it inflates to */
    buf_put(&payload, plain.p, plain.len);
    result = garbage_outcome(p, payload.p, payload.len,
                             cfg->max_payload ? cfg->max_payload : NO_CAP_ROOM, &plain);
  } else if (compressed) {
    peer_compress(p, peer_level, plain.p, plain.len, &payload);
  } else {
    buf_put(&payload, plain.p, plain.len);
  }

  /* The frames, with the events the engine reports up to each of them. */
  bool going = true;
  uint64_t size = 0;
  ref_utf8 u;
  ref_utf8_init(&u);
  byte_buf ends = {0};
  size_t pos = 0;
  for (size_t i = 0; i < nframes && going; i++) {
    size_t len = (payload.len * (i + 1)) / nframes - pos;
    bool fin = i + 1 == nframes;
    put_frame(p,
              i        ? OP_CONTINUATION
              : binary ? OP_BINARY
                       : OP_TEXT,
              fin, compressed && !i, payload.p + pos, len);
    if (len > limit - size) {
      want_add(w, CONN_EV_ERROR, false, 1009, NULL, 0);
      going = false;
      break;
    }
    size += len;
    if (!compressed && !binary && !cfg->skip_utf8_validation &&
        !ref_utf8_feed(&u, payload.p + pos, len)) {
      want_add(w, CONN_EV_ERROR, false, 1007, NULL, 0);
      going = false;
      break;
    }
    pos += len;
    if (len) buf_put(&ends, &pos, sizeof pos);
    if (!fin && (kind & 16)) {
      uint8_t ping[2] = {'p', (uint8_t)i};
      put_frame(p, OP_PING, true, false, ping, 2);
      want_add(w, CONN_EV_PING, false, 0, ping, 2);
    }
  }

  if (going) {
    bool text_checked = !binary && !cfg->skip_utf8_validation;
    if (compressed && result == OUT_OK && plain.len > limit) result = OUT_TOO_BIG;
    if (result == OUT_TOO_BIG && !special) {
      want_add(w, CONN_EV_ERROR, false, 1009, NULL, 0);
      going = false;
    } else if (result != OUT_OK) {
      want_add(w, CONN_EV_ERROR, false, STATUS_1007_OR_1009, NULL, 0);
      going = false;
    } else if (text_checked &&
               (compressed ? !(ref_utf8_feed(&u, plain.p, plain.len) && ref_utf8_complete(&u))
                           : !ref_utf8_complete(&u))) {
      want_add(w, CONN_EV_ERROR, false, 1007, NULL, 0);
      going = false;
    } else {
      want_add(w, CONN_EV_MESSAGE, binary, 0, plain.p, plain.len);
      size_t nfrag = ends.len / sizeof(size_t);
      if (!compressed && p->track && nfrag > 1) {
        want_event *e = &w->ev[w->n - 1];
        e->frag_off = w->frags.len / sizeof(size_t);
        e->nfrag = nfrag;
        buf_put(&w->frags, ends.p, ends.len);
      }
      if (compressed) remember(p, plain.p, plain.len);
    }
  }
  buf_free(&plain);
  buf_free(&payload);
  buf_free(&ends);
  return going && !special;
}

static void peer_script(peer *p, const uint8_t *s, size_t len, uint8_t peer_level) {
  size_t pos = 0;
  while (len - pos >= 2) {
    uint8_t kind = s[pos], n = s[pos + 1];
    pos += 2;
    size_t take = n < len - pos ? n : len - pos;
    if (!peer_message(p, kind, s + pos, take, peer_level)) break;
    pos += take;
  }
  if (p->def_ready) deflateEnd(&p->def);
  buf_free(&p->hist);
}

/* ---- expected output ---- */

typedef struct out_model {
  want_frames want; /* a compressed frame (rsv1) is expected with its plain payload */
  bool close_sent, fragmenting;
  frame_parser parser;
  bool in_frame;
  byte_buf frame;    /* the payload of the frame being taken */
  z_stream inflater; /* the peer's, for our compressed frames */
  bool reset_each;   /* no context takeover on our side: the peer may forget every message */
  byte_buf plain;
} out_model;

static void out_push(out_model *m, uint8_t opcode, bool fin, bool rsv1, const uint8_t *payload,
                     size_t len) {
  want_frame_push(&m->want, opcode, fin, rsv1, payload, len);
}

static void out_push_close(out_model *m, int status) {
  if (m->close_sent) return;
  uint8_t body[2] = {(uint8_t)(status >> 8), (uint8_t)status};
  out_push(m, OP_CLOSE, true, false, body, status ? 2 : 0);
  m->close_sent = true;
}

/* A data message of ours: a continuation while a fragmented one is open. */
static void out_push_data(out_model *m, uint8_t opcode, bool fin, bool rsv1, const uint8_t *payload,
                          size_t len) {
  out_push(m, m->fragmenting ? OP_CONTINUATION : opcode, fin, rsv1 && !m->fragmenting, payload,
           len);
  m->fragmenting = !fin;
}

/* Inflates a compressed frame of ours as the peer would and compares it with what was sent. */
static void out_check_compressed(out_model *m, const want_frame *want) {
  byte_buf in = {0};
  buf_put(&in, m->frame.p, m->frame.len);
  buf_put(&in, TAIL, 4);
  m->plain.len = 0;
  buf_reserve(&m->plain, want->len + 1);
  m->inflater.next_in = in.p;
  m->inflater.avail_in = (uInt)in.len;
  m->inflater.next_out = m->plain.p;
  m->inflater.avail_out = (uInt)(want->len + 1);
  int rc = inflate(&m->inflater, Z_SYNC_FLUSH);
  size_t got = want->len + 1 - m->inflater.avail_out;
  FUZZ_CHECK(rc == Z_OK || rc == Z_BUF_ERROR);
  FUZZ_CHECK(m->inflater.avail_in == 0 && got == want->len);
  FUZZ_CHECK(got == 0 || memcmp(m->plain.p, want_frame_payload(&m->want, want), got) == 0);
  if (m->reset_each) FUZZ_CHECK(inflateReset(&m->inflater) == Z_OK);
  buf_free(&in);
}

/* Parses output bytes (unmasked in place) against the expected frames. */
static void out_take(out_model *m, uint8_t *bytes, size_t len) {
  static uint8_t none[1];
  if (!bytes) bytes = none;
  size_t pos = 0;
  for (;;) {
    size_t used;
    uint8_t *pl;
    size_t pl_len;
    frame_event fe = frame_parse(&m->parser, bytes + pos, len - pos, &used, &pl, &pl_len);
    pos += used;
    if (fe == FRAME_NEED_MORE) break;
    FUZZ_CHECK(fe != FRAME_ERROR && m->want.head < m->want.n);
    const want_frame *want = &m->want.q[m->want.head];
    const frame_info *f = &m->parser.frame;
    if (fe == FRAME_HEADER) {
      FUZZ_CHECK(!m->in_frame);
      FUZZ_CHECK(f->opcode == want->opcode && f->fin == want->fin && f->rsv1 == want->rsv1);
      FUZZ_CHECK(want->rsv1 || f->payload_len == want->len);
      m->in_frame = true;
      m->frame.len = 0;
    } else if (fe == FRAME_PAYLOAD) {
      buf_put(&m->frame, pl, pl_len);
    } else {
      FUZZ_CHECK(m->in_frame);
      if (want->rsv1) {
        out_check_compressed(m, want);
      } else {
        FUZZ_CHECK(m->frame.len == want->len);
        FUZZ_CHECK(!want->len ||
                   memcmp(m->frame.p, want_frame_payload(&m->want, want), want->len) == 0);
      }
      m->in_frame = false;
      m->want.head++;
    }
  }
}

/* ---- the harness ---- */

typedef struct harness {
  conn c;
  const conn_config *cfg;
  want_list *want;
  out_model out;
  byte_cycle actions;
  size_t events_in_call;
  bool done;
  bool inflate_handed_out; /* a CONN_EV_INFLATE came; finish_inflate() completes it */
  bool inflate_binary;
  size_t sent;
} harness;

static uint8_t next_byte(harness *h) { return byte_cycle_next(&h->actions); }

/* Lengths for our sends, smaller past a budget per run (the action list cycles). */
static size_t pick_len(harness *h) {
  static const size_t table[8] = {0, 1, 5, 100, 126, 300, 4096, 20000};
  size_t len = table[next_byte(h) & 7];
  if (h->sent + len > 128 * 1024) len &= 127;
  h->sent += len;
  return len;
}

/* Slices of one text, so that consecutive messages repeat each other and a deflater that
 * takes over its context refers back into earlier ones. */
static const uint8_t *payload_of(uint8_t seed) {
  static uint8_t text[20000 + 256];
  static bool ready;
  if (!ready) {
    static const char words[] = "the quick brown fox jumps over the lazy dog; ";
    for (size_t i = 0; i < sizeof text; i++)
      text[i] = (uint8_t)words[(i + i / 997) % (sizeof words - 1)];
    ready = true;
  }
  return text + seed;
}

/* Takes all queued output, as a transport does. */
static void drain(harness *h) {
  size_t n;
  uint8_t *bytes = conn_output_detach(&h->c, &n);
  out_take(&h->out, bytes, n);
  free(bytes);
  FUZZ_CHECK(!h->out.in_frame);
}

/* Parks idle streams, as the addon's sweep does, and checks none in use was parked. */
static void park(harness *h, unsigned periods) {
  conn *c = &h->c;
  const conn_zlib *z = c->zlib;
  bool inflater_started = z && z->inflater && z->inflater->started;
  bool deflater_started = z && z->deflater && z->deflater->started;
  unsigned parked = conn_park_idle_streams(c, periods);
  FUZZ_CHECK(parked <= 2);
  if (conn_inflating(c) && inflater_started) FUZZ_CHECK(z->inflater->started);
  if (c->out_fragmenting && deflater_started) FUZZ_CHECK(z->deflater->started);
}

/* A frame compressed once for many connections (a topic's), with a fresh stream. */
static void publish(harness *h, uint8_t opcode, const uint8_t *plain, size_t len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 6, Z_DEFLATED, -h->cfg->deflate_window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    abort();
  byte_buf frame = {0};
  uint8_t header[FRAME_MAX_HEADER];
  size_t room = deflateBound(&zs, len) + 16;
  buf_reserve(&frame, FRAME_MAX_HEADER + room);
  zs.next_in = (Bytef *)(uintptr_t)plain;
  zs.avail_in = (uInt)len;
  zs.next_out = frame.p + FRAME_MAX_HEADER;
  zs.avail_out = (uInt)room;
  if (deflate(&zs, Z_SYNC_FLUSH) != Z_OK || zs.avail_in != 0) abort();
  size_t clen = room - zs.avail_out;
  deflateEnd(&zs);
  FUZZ_CHECK(clen >= 4 && memcmp(frame.p + FRAME_MAX_HEADER + clen - 4, TAIL, 4) == 0);
  clen -= 4; /* the sync flush's tail, which the wire leaves out */
  size_t hl = frame_header_encode(header, true, true, opcode, clen, NULL);
  memcpy(frame.p + FRAME_MAX_HEADER - hl, header, hl);
  FUZZ_CHECK(conn_send_framed(&h->c, frame.p + FRAME_MAX_HEADER - hl, hl + clen));
  conn_deflater_invalidate(&h->c);
  out_push(&h->out, opcode, true, true, plain, len);
  buf_free(&frame);
}

static void do_action(harness *h) {
  if (h->actions.count == 0) return;
  uint8_t a = next_byte(h);
  conn *c = &h->c;
  out_model *m = &h->out;
  uint8_t opcode = (a & 8) ? OP_BINARY : OP_TEXT;
  bool whole_message_ok = !m->close_sent && !m->fragmenting;

  switch (a & 7) {
    case 0: park(h, (a >> 3) & 3); break;
    case 1: /* a compressed message of ours, here or (a & 16) as the thread pool does it */
      if (whole_message_ok) {
        size_t len = pick_len(h);
        const uint8_t *payload = payload_of(next_byte(h));
        if (a & 16) {
          uint8_t *input = malloc(len ? len : 1);
          FUZZ_CHECK(input != NULL);
          if (len) memcpy(input, payload, len);
          conn_deflate_task task;
          conn_deflate_begin(c, &task, opcode, input, len);
          conn_deflate_run(&task);
          FUZZ_CHECK(conn_deflate_finish(c, &task, false) == CONN_SENT);
        } else {
          FUZZ_CHECK(conn_send_compressed(c, opcode, payload, len));
        }
        out_push_data(m, opcode, true, true, payload, len);
      }
      break;
    case 2: /* a plain frame, possibly the start or part of a fragmented message */
      if (!m->close_sent) {
        size_t len = pick_len(h);
        const uint8_t *payload = payload_of(next_byte(h));
        FUZZ_CHECK(conn_send_frame(c, opcode, (a & 16) != 0, false, payload, len));
        out_push_data(m, opcode, (a & 16) != 0, false, payload, len);
      }
      break;
    case 3:
      if (whole_message_ok && h->cfg->is_server) {
        size_t len = pick_len(h);
        publish(h, opcode, payload_of(next_byte(h)), len);
      }
      break;
    case 4:
      if (!m->close_sent) {
        FUZZ_CHECK(conn_send_frame(c, OP_PING, true, false, payload_of(a), 3));
        out_push(m, OP_PING, true, false, payload_of(a), 3);
      }
      break;
    case 5: drain(h); break;
    case 6:
      if ((a & 0xf0) == 0xf0) {
        bool queued = conn_send_close(c, 1000, NULL, 0);
        FUZZ_CHECK(queued == !m->close_sent);
        out_push_close(m, 1000);
      } else {
        park(h, 1);
      }
      break;
    default:
      park(h, 0);
      drain(h);
      break;
  }
  FUZZ_CHECK(m->close_sent == ((c->close_state & CONN_CLOSE_SENT) != 0) &&
             m->fragmenting == c->out_fragmenting);
}

/* Checks an event (or the result of an inflation handed out) against the next expected one. */
static void expect_event(harness *h, conn_event_kind kind, bool binary, int status,
                         const uint8_t *data, size_t len, const size_t *frags, size_t nfrag) {
  want_list *w = h->want;
  FUZZ_CHECK(!h->done && w->next < w->n);
  const want_event *e = &w->ev[w->next++];
  FUZZ_CHECK(e->kind == kind);
  if (kind == CONN_EV_ERROR && e->status == STATUS_1007_OR_1009)
    FUZZ_CHECK(status == 1007 || status == 1009);
  else
    FUZZ_CHECK(e->status == status);
  if (kind == CONN_EV_MESSAGE) FUZZ_CHECK(e->binary == binary);
  FUZZ_CHECK(e->len == len && (!len || memcmp(w->bytes.p + e->off, data, len) == 0));
  FUZZ_CHECK(e->nfrag == nfrag);
  if (nfrag)
    FUZZ_CHECK(memcmp(w->frags.p + e->frag_off * sizeof(size_t), frags, nfrag * sizeof(size_t)) ==
               0);
  if (kind == CONN_EV_CLOSE || kind == CONN_EV_ERROR) h->done = true;
}

static bool on_event(void *ctx, const conn_event *ev) {
  harness *h = ctx;
  conn *c = &h->c;
  out_model *m = &h->out;
  bool first = h->events_in_call++ == 0;
  switch (ev->kind) {
    case CONN_EV_INFLATE:
      FUZZ_CHECK(conn_inflating(c) && !h->inflate_handed_out);
      h->inflate_handed_out = true;
      h->inflate_binary = ev->binary;
      break;
    case CONN_EV_MESSAGE:
      expect_event(h, ev->kind, ev->binary, 0, ev->data, ev->len, ev->fragment_ends,
                   ev->fragment_count);
      free(ev->owned);
      break;
    case CONN_EV_PING:
      FUZZ_CHECK(first); /* it queued a pong */
      if (!m->close_sent) out_push(m, OP_PONG, true, false, ev->data, ev->len);
      expect_event(h, ev->kind, false, 0, ev->data, ev->len, NULL, 0);
      break;
    case CONN_EV_CLOSE:
      FUZZ_CHECK(first);
      if (!m->close_sent) { /* the echo (the script's closes all have a code) */
        uint8_t body[FRAME_MAX_CONTROL] = {(uint8_t)(ev->close_code >> 8), (uint8_t)ev->close_code};
        FUZZ_CHECK(ev->len <= FRAME_MAX_CONTROL - 2);
        if (ev->len) memcpy(body + 2, ev->data, ev->len);
        out_push(m, OP_CLOSE, true, false, body, 2 + ev->len);
        m->close_sent = true;
      }
      expect_event(h, ev->kind, false, ev->close_code, ev->data, ev->len, NULL, 0);
      break;
    case CONN_EV_ERROR:
      FUZZ_CHECK(first);
      out_push_close(m, ev->close_code);
      expect_event(h, ev->kind, false, ev->close_code, NULL, 0, NULL, 0);
      break;
    default: FUZZ_CHECK(0);
  }
  FUZZ_CHECK(m->close_sent == ((c->close_state & CONN_CLOSE_SENT) != 0));
  do_action(h);
  return true;
}

/* Inflates the message the engine handed out, as the addon's thread-pool job does: the
 * engine's task, begun, run and finished. */
static void finish_inflate(harness *h) {
  conn *c = &h->c;
  conn_inflate_task task;
  conn_inflate_begin(c, &task);
  FUZZ_CHECK(task.binary == h->inflate_binary);
  conn_inflate_run(&task);
  FUZZ_CHECK(task.error != CONN_ERR_NO_MEMORY);
  conn_error err = conn_inflate_finish(c, &task, false);
  pmd_buffer out = task.output;
  h->inflate_handed_out = false;
  FUZZ_CHECK(!conn_inflating(c));
  if (err == CONN_OK) {
    expect_event(h, CONN_EV_MESSAGE, h->inflate_binary, 0, out.data, out.len, NULL, 0);
  } else {
    FUZZ_CHECK(out.data == NULL);
    int status = conn_error_info(err)->status;
    out_push_close(&h->out, status);
    expect_event(h, CONN_EV_ERROR, false, status, NULL, 0, NULL, 0);
  }
  FUZZ_CHECK(h->out.close_sent == ((c->close_state & CONN_CLOSE_SENT) != 0));
  free(out.data);
}

/* Feeds one piece like the addon: again after deferred work and after an inflation it handed
 * out (which the harness finishes after another action and a sweep), until all is used. */
static void feed(harness *h, uint8_t *buf, size_t n) {
  size_t off = 0, rounds = 0;
  for (;;) {
    h->events_in_call = 0;
    size_t used = conn_feed(&h->c, buf + off, n - off, on_event, h);
    FUZZ_CHECK(used <= n - off);
    off += used;
    if (h->inflate_handed_out) {
      FUZZ_CHECK(conn_feed(&h->c, buf + off, n - off, on_event, h) == 0); /* held meanwhile */
      do_action(h);
      park(h, 0);
      finish_inflate(h);
    } else if (!conn_has_deferred(&h->c) && off == n) {
      break;
    }
    FUZZ_CHECK(++rounds <= n + 64);
  }
  FUZZ_CHECK(h->done == conn_input_done(&h->c));
}

static void run(const conn_config *cfg, bool track, split_plan plan, const uint8_t *actions,
                size_t nactions, const uint8_t *wire, size_t len, want_list *want) {
  harness *h = calloc(1, sizeof(*h));
  if (!h) abort();
  conn_init(&h->c, cfg);
  h->c.track_fragments = track;
  h->cfg = cfg;
  h->want = want;
  h->actions = (byte_cycle){.bytes = actions, .count = nactions};
  frame_parser_init(&h->out.parser, !cfg->is_server, true);
  if (inflateInit2(&h->out.inflater, -cfg->deflate_window_bits) != Z_OK) abort();
  h->out.reset_each = cfg->deflate_reset;

  size_t pos = 0;
  do {
    size_t n = split_next(&plan, len - pos);
    piece pc = piece_copy(wire + pos, n, 0);
    feed(h, pc.data, n);
    piece_free(&pc);
    do_action(h);
    pos += n;
  } while (pos < len);

  drain(h);
  FUZZ_CHECK(h->out.want.head == h->out.want.n);
  FUZZ_CHECK(want->next == want->n); /* every predicted event came */
  conn_release(&h->c);
  inflateEnd(&h->out.inflater);
  want_frames_free(&h->out.want);
  buf_free(&h->out.frame);
  buf_free(&h->out.plain);
  free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  if (size < 7) return 0;
  static const int our_levels[4] = {1, 6, 9, 0}, peer_levels[4] = {6, 1, 9, 0};
  uint8_t flags = in[0];
  conn_config cfg = {
      .is_server = flags & 1,
      .auto_pong = true,
      .skip_utf8_validation = (flags >> 6) & 1,
      .max_payload = (flags & 128) ? (uint64_t)in[3] * 64 + 1 : 0,
      .deflate = true,
      .inflate_window_bits = 8 + (in[1] & 7),
      .inflate_reset = (flags >> 1) & 1,
      .deflate_window_bits = 9 + ((in[1] >> 3) & 7) % 7,
      .deflate_reset = (flags >> 2) & 1,
      .deflate_level = our_levels[in[2] & 3],
      .deflate_mem_level = 8,
      .async_inflate_min = (flags & 16) ? 1 + (size_t)in[4] * 8 : 0,
  };
  pmd_stream shared_inflater, shared_deflater;
  pmd_inflater_init(&shared_inflater, 15);
  pmd_deflater_init(&shared_deflater, cfg.deflate_window_bits, cfg.deflate_level, 8);
  if (flags & 8) {
    if (cfg.inflate_reset) cfg.shared_inflater = &shared_inflater;
    if (cfg.deflate_reset) cfg.shared_deflater = &shared_deflater;
  }
  bool track = (flags >> 5) & 1;
  size_t nsplit = in[5] & 15, nactions = in[6] & 15;
  if (size < 7 + nsplit + nactions) return 0;
  const uint8_t *splits = in + 7, *actions = splits + nsplit;
  const uint8_t *script = actions + nactions;
  size_t script_len = size - 7 - nsplit - nactions;

  want_list want = {0};
  peer p = {.cfg = &cfg, .track = track, .want = &want, .key_seed = 0x9e3779b9u};
  peer_script(&p, script, script_len, peer_levels[(in[2] >> 2) & 3]);

  buf_reserve(&p.wire, 1); /* (an empty script leaves it unallocated) */
  run(&cfg, track, (split_plan){.sizes = splits, .count = nsplit}, actions, nactions, p.wire.p,
      p.wire.len, &want);

  buf_free(&p.wire);
  free(want.ev);
  buf_free(&want.bytes);
  buf_free(&want.frags);
  pmd_stream_end(&shared_inflater);
  pmd_stream_end(&shared_deflater);
  return 0;
}
