/* loadgen: a one-thread epoll WebSocket load generator (echo, recv, handshake, idle modes).
 * It carries its own upgrade check (SHA-1 + base64) and frame codec so the bench never trusts
 * the library under test. --deflate offers permessage-deflate (RFC 7692) with the system zlib;
 * --tls speaks wss through the system OpenSSL (the certificate is not verified: the bench's own
 * self-signed one). */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#define READ_BUF_SIZE (1u << 20)
#define HS_BUF_SIZE 4096
#define MAX_CONNECTING 128 /* default --connecting: keeps the accept backlog from overflowing */
#define CONNECT_TIMEOUT_S 10.0
#define CLOSE_WAIT_TIMEOUT_S 2.0
#define RETRY_DELAY_S 0.1
#define TIMER_PERIOD_MS 50
#define SEQ_HDR_LEN 16
#define MAX_ERROR_LOGS 5
#define EV_STDIN UINT64_MAX
#define EV_SIGNAL (UINT64_MAX - 1)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define INFLATE_BUF_SIZE (64u << 10)
#define EXT_DESC_SIZE 128

/* the four bytes a Z_SYNC_FLUSH ends with, which permessage-deflate leaves off the wire */
static const uint8_t DEFLATE_TAIL[4] = {0x00, 0x00, 0xff, 0xff};

enum mode { MODE_ECHO, MODE_RECV, MODE_HANDSHAKE, MODE_IDLE };

enum payload_kind { PAYLOAD_RANDOM, PAYLOAD_JSON };

enum conn_state {
  CS_DEAD,       /* no socket; handshake mode restarts it when its deadline passes */
  CS_CONNECTING, /* non-blocking connect() in progress */
  CS_TLS,        /* --tls: TCP is up, the TLS handshake is in progress */
  CS_UPGRADING,  /* request queued, waiting for the 101 response */
  CS_OPEN,       /* WebSocket frames flow */
  CS_CLOSING     /* handshake mode: close frame received, waiting for the server's EOF */
};

enum phase { PHASE_OPENING, PHASE_WARMUP, PHASE_MEASURE, PHASE_HOLD, PHASE_DONE };

enum feed_result { FEED_OK, FEED_STOP, FEED_ERROR };

struct options {
  const char *host;
  const char *port;
  const char *path;
  enum mode mode;
  unsigned conns;
  unsigned inflight;
  size_t size;
  bool binary;
  double duration;
  double warmup;
  bool json;
  bool deflate; /* offer permessage-deflate */
  enum payload_kind payload;
  int level;            /* zlib compression level for what loadgen sends */
  bool private_deflate; /* every connection compresses its own, distinct, messages */
  bool touch;           /* idle mode: each connection first exchanges one echoed message */
  unsigned connecting;  /* connections opened at once (--conns: a reconnect storm) */
  bool tls;             /* wss: TLS over every connection */
};

struct outbuf {
  uint8_t *data;
  size_t head; /* first unsent byte */
  size_t tail; /* end of queued bytes */
  size_t cap;
};

/* Incremental parser state for server-to-client frames; any split of the input works. */
struct frame_rx {
  uint8_t hdr[10];
  unsigned hdr_have;
  bool in_payload;
  bool fin;
  uint8_t opcode;
  uint64_t payload_left;
  uint8_t ctrl[125];
  unsigned ctrl_len;
  bool in_msg;
  bool msg_compressed; /* RSV1 on the message's first frame */
  uint8_t msg_opcode;
  uint64_t msg_off;
};

/* What the server's Sec-WebSocket-Extensions answer agreed to. */
struct pmd {
  bool on;
  bool server_nct;     /* server_no_context_takeover: the server resets after each message */
  bool client_nct;     /* client_no_context_takeover: we reset after each message */
  uint8_t server_bits; /* server_max_window_bits (15 when absent) */
  uint8_t client_bits; /* client_max_window_bits (15 when absent) */
};

struct conn {
  int fd;
  SSL *ssl; /* --tls only */
  enum conn_state state;
  uint32_t events; /* what epoll currently watches for this fd */
  double deadline; /* connect/upgrade timeout, close wait, or retry time; 0 = none */
  char accept[29];
  char *hs; /* response bytes until the end of the HTTP head; freed once upgraded */
  size_t hs_len;
  struct outbuf out;
  struct frame_rx rx;
  uint64_t salt; /* makes every connection's payloads distinct */
  uint64_t sent_seq;
  uint64_t recv_seq;
  uint8_t exp_hdr[SEQ_HDR_LEN];
  uint8_t *exp; /* --payload json: the message being received, as it was sent */
  struct pmd pmd;
  bool zc_private; /* compresses with its own deflater, never the shared cache */
  z_stream *zd; /* deflater and inflater, allocated on first use so idle connections stay small */
  z_stream *zi;
};

/* Echo mode with --deflate: every connection sends the same message sequence (one salt), so
 * one deflater compresses message seq once and every connection sends those bytes -- exactly
 * what a deflater of its own would have produced. Without this, 50 connections' zlib states
 * (256 KiB each) thrash the cache and loadgen, not the server, sets the pace. */
struct zcache {
  bool on;
  bool ready;     /* params fixed by the first connection that uses it */
  struct pmd pmd; /* client_bits and client_nct are what matter */
  z_stream *z;
  uint64_t base; /* seq of the first entry kept */
  size_t count;  /* entries kept */
  size_t *off;   /* entry i is data[off[i], off[i + 1]) */
  size_t off_cap;
  uint8_t *data;
  size_t data_cap;
};

struct counters {
  uint64_t messages;
  uint64_t bytes;
  uint64_t handshakes;
  uint64_t tx_messages; /* data messages queued */
  uint64_t tx_bytes;    /* their payload bytes before compression */
  uint64_t tx_wire;     /* their payload bytes on the wire */
  uint64_t rx_wire;     /* received data-frame payload bytes on the wire */
};

struct loadgen {
  struct options opt;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int epfd;
  int sigfd;
  struct conn *conns;
  unsigned to_start; /* connections not yet started in the opening phase */
  unsigned pending;  /* connections connecting or upgrading (idle --touch: or awaiting the echo) */
  unsigned open;
  uint64_t errors;
  uint64_t close_timeouts;
  struct counters total;
  struct counters snap;
  enum phase phase;
  double phase_end;
  double measure_start;
  double measure_end;
  uint64_t rng;
  uint8_t *tmpl; /* payload bytes after the sequence header, shared by all connections */
  uint8_t *rbuf;
  uint8_t *plain; /* one outgoing message before compression (deflate or json payloads) */
  uint8_t *zbuf;  /* one outgoing message after compression */
  size_t zbuf_cap;
  uint8_t *ibuf; /* inflate output */
  struct zcache zc;
  uint64_t salt; /* the one salt of all connections when zc.on */
  unsigned logged;
  unsigned pmd_yes;             /* upgrades that negotiated permessage-deflate */
  unsigned pmd_no;              /* upgrades that did not, with --deflate */
  char ext_desc[EXT_DESC_SIZE]; /* the first negotiated Sec-WebSocket-Extensions value */
  double cpu_start;
  double cpu_end;
  SSL_CTX *tls_ctx; /* --tls only */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + system CPU seconds of this process */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* xorshift64*: the masks only need to vary, not to be unpredictable */
static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* ---- SHA-1 and base64, only for Sec-WebSocket-Accept ---- */

static uint32_t rol32(uint32_t v, unsigned n) { return (v << n) | (v >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
           p[4 * i + 3];
  for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDC;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6;
    }
    uint32_t t = rol32(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol32(b, 30);
    b = a;
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

static void sha1(const uint8_t *msg, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  uint8_t block[64];
  size_t i = 0;
  for (; i + 64 <= len; i += 64) sha1_block(h, msg + i);
  size_t rest = len - i;
  memset(block, 0, sizeof block);
  memcpy(block, msg + i, rest);
  block[rest] = 0x80;
  if (rest >= 56) {
    sha1_block(h, block);
    memset(block, 0, sizeof block);
  }
  uint64_t bits = (uint64_t)len * 8;
  for (int j = 0; j < 8; j++) block[63 - j] = (uint8_t)(bits >> (8 * j));
  sha1_block(h, block);
  for (int j = 0; j < 5; j++) {
    out[4 * j] = (uint8_t)(h[j] >> 24);
    out[4 * j + 1] = (uint8_t)(h[j] >> 16);
    out[4 * j + 2] = (uint8_t)(h[j] >> 8);
    out[4 * j + 3] = (uint8_t)h[j];
  }
}

static void base64_encode(const uint8_t *in, size_t len, char *out) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len) v |= in[i + 2];
    out[o++] = tbl[(v >> 18) & 63];
    out[o++] = tbl[(v >> 12) & 63];
    out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < len ? tbl[v & 63] : '=';
  }
  out[o] = '\0';
}

static void ws_accept_for(const char *key, char out[29]) {
  char buf[64];
  uint8_t digest[20];
  int n = snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
  sha1((const uint8_t *)buf, (size_t)n, digest);
  base64_encode(digest, 20, out);
}

/* ---- output queue and frame encoder ---- */

static uint8_t *outbuf_reserve(struct outbuf *ob, size_t n) {
  if (ob->cap - ob->tail < n) {
    if (ob->head > 0) {
      memmove(ob->data, ob->data + ob->head, ob->tail - ob->head);
      ob->tail -= ob->head;
      ob->head = 0;
    }
    if (ob->cap - ob->tail < n) {
      size_t cap = ob->cap ? ob->cap : 4096;
      while (cap - ob->tail < n) cap *= 2;
      uint8_t *d = realloc(ob->data, cap);
      if (!d) {
        perror("realloc");
        exit(3);
      }
      ob->data = d;
      ob->cap = cap;
    }
  }
  return ob->data + ob->tail;
}

static void outbuf_free(struct outbuf *ob) {
  free(ob->data);
  memset(ob, 0, sizeof *ob);
}

/* XOR-copy eight bytes at a time; phase is the payload offset of src[0] modulo 4 */
static void mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                      size_t phase) {
  uint8_t m[8];
  for (size_t i = 0; i < 8; i++) m[i] = mask[(phase + i) & 3];
  uint64_t m64;
  memcpy(&m64, m, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, src + i, 8);
    w ^= m64;
    memcpy(dst + i, &w, 8);
  }
  for (; i < n; i++) dst[i] = src[i] ^ m[i & 7];
}

/* Writes a masked frame header with a fresh mask; returns the header length. */
static size_t frame_header(uint8_t *p, uint8_t opcode, size_t len, uint8_t mask[4], uint64_t *rng) {
  size_t h = 0;
  p[h++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    p[h++] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    p[h++] = 0x80 | 126;
    p[h++] = (uint8_t)(len >> 8);
    p[h++] = (uint8_t)len;
  } else {
    p[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) p[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  uint32_t m = (uint32_t)rng_next(rng);
  memcpy(mask, &m, 4);
  memcpy(p + h, mask, 4);
  return h + 4;
}

static void frame_append(struct loadgen *lg, struct conn *c, uint8_t opcode, const uint8_t *payload,
                         size_t len) {
  uint8_t mask[4];
  uint8_t *p = outbuf_reserve(&c->out, 14 + len);
  size_t h = frame_header(p, opcode, len, mask, &lg->rng);
  mask_copy(p + h, payload, len, mask, 0);
  c->out.tail += h + len;
}

static size_t seq_hdr_len(const struct loadgen *lg) {
  return lg->opt.size < SEQ_HDR_LEN ? lg->opt.size : SEQ_HDR_LEN;
}

/* The payload of message seq opens with the low hex digits of salt + seq. */
static void seq_header(const struct conn *c, uint64_t seq, size_t hl, uint8_t *out) {
  static const char hex[] = "0123456789abcdef";
  uint64_t v = c->salt + seq;
  for (size_t i = 0; i < hl; i++) out[hl - 1 - i] = (uint8_t)hex[(v >> (4 * i)) & 15];
}

/* ---- --payload json: JSON-like text that compresses about as well as real JSON ---- */

static const char *const FIRST[] = {"Olivia", "Liam",  "Emma",   "Noah",  "Ava", "Elijah",
                                    "Sophia", "James", "Amelia", "Lucas", "Mia", "Mateo",
                                    "Harper", "Levi",  "Evelyn", "Ezra"};
static const char *const LAST[] = {
    "Smith",     "Johnson",  "Williams", "Brown",  "Jones",    "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Lopez",    "Wilson", "Anderson", "Thomas", "Taylor", "Moore"};
static const char *const CITY[] = {"Lisbon", "Berlin",  "Osaka",   "Toronto", "Austin", "Nairobi",
                                   "Lyon",   "Krakow",  "Seattle", "Porto",   "Dublin", "Bogota",
                                   "Madrid", "Chicago", "Oslo",    "Perth"};
static const char *const TAG[] = {"admin", "beta",   "trial", "vip",    "new", "legacy",
                                  "eu",    "us",     "apac",  "mobile", "web", "api",
                                  "staff", "tester", "guest", "owner"};

struct sbuf {
  char *p;
  size_t len;
};

static void put_str(struct sbuf *b, const char *s) {
  size_t n = strlen(s);
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void put_u32(struct sbuf *b, uint32_t v) {
  char tmp[10];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) b->p[b->len++] = tmp[--n];
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

static void put_2d(struct sbuf *b, uint32_t v) {
  b->p[b->len++] = (char)('0' + v / 10 % 10);
  b->p[b->len++] = (char)('0' + v % 10);
}

/* One record, at most 300 bytes; r supplies the values. */
static void json_record(struct sbuf *b, uint32_t id, uint64_t *r) {
  static const char hex[] = "0123456789abcdef";
  uint64_t v = rng_next(r), w = rng_next(r), x = rng_next(r);
  const char *first = FIRST[v & 15], *last = LAST[(v >> 4) & 15];
  put_str(b, "{\"id\":");
  put_u32(b, id);
  put_str(b, ",\"ref\":\"");
  for (int i = 0; i < 8; i++) b->p[b->len++] = hex[(x >> (4 * i)) & 15];
  put_str(b, "\",\"name\":\"");
  put_str(b, first);
  put_str(b, " ");
  put_str(b, last);
  put_str(b, "\",\"email\":\"");
  put_str(b, first);
  put_str(b, ".");
  put_str(b, last);
  put_u32(b, (uint32_t)(v >> 8) % 100);
  put_str(b, "@example.com\",\"age\":");
  put_u32(b, 18 + (uint32_t)(v >> 16) % 60);
  put_str(b, (v >> 24) & 3 ? ",\"active\":true" : ",\"active\":false");
  put_str(b, ",\"balance\":");
  put_u32(b, (uint32_t)(w % 100000));
  put_str(b, ".");
  uint32_t cents = (uint32_t)(w >> 20) % 100;
  if (cents < 10) put_str(b, "0");
  put_u32(b, cents);
  put_str(b, ",\"city\":\"");
  put_str(b, CITY[(v >> 28) & 15]);
  put_str(b, "\",\"created\":\"2024-");
  put_2d(b, 1 + (uint32_t)(x >> 32) % 12);
  put_str(b, "-");
  put_2d(b, 1 + (uint32_t)(x >> 36) % 28);
  put_str(b, "T");
  put_2d(b, (uint32_t)(x >> 41) % 24);
  put_str(b, ":");
  put_2d(b, (uint32_t)(x >> 46) % 60);
  put_str(b, ":");
  put_2d(b, (uint32_t)(x >> 52) % 60);
  put_str(b, "Z\",\"tags\":[\"");
  put_str(b, TAG[(v >> 32) & 15]);
  put_str(b, "\",\"");
  put_str(b, TAG[(v >> 36) & 15]);
  put_str(b, "\"]}");
}

/* Message `key` (salt + seq) as exactly `size` bytes of JSON text:
 * {"seq":"<16 hex digits of key>","items":[{record},...   ]} padded with spaces before "]}".
 * Sizes too small for that get a prefix of it. Deterministic in key, so echoes can be checked. */
static void json_message(uint8_t *out, size_t size, uint64_t key) {
  static const char hex[] = "0123456789abcdef";
  char head[40];
  size_t hl = 0;
  memcpy(head, "{\"seq\":\"", 8);
  hl = 8;
  for (int i = 15; i >= 0; i--) head[hl++] = hex[(key >> (4 * i)) & 15];
  memcpy(head + hl, "\",\"items\":[", 11);
  hl += 11;
  if (size < hl + 2) {
    memcpy(out, head, size);
    return;
  }
  memcpy(out, head, hl);
  uint64_t r = splitmix64(key) | 1;
  uint32_t id = (uint32_t)(key % 1000000) * 100;
  char rec[512];
  size_t o = hl;
  for (unsigned i = 0;; i++) {
    struct sbuf b = {rec, 0};
    if (i > 0) rec[b.len++] = ',';
    json_record(&b, id + i, &r);
    if (o + b.len + 2 > size) break;
    memcpy(out + o, rec, b.len);
    o += b.len;
  }
  memset(out + o, ' ', size - 2 - o);
  out[size - 2] = ']';
  out[size - 1] = '}';
}

/* The payload of message seq, uncompressed. */
static void message_build(const struct loadgen *lg, const struct conn *c, uint64_t seq,
                          uint8_t *out) {
  if (lg->opt.payload == PAYLOAD_JSON) {
    json_message(out, lg->opt.size, c->salt + seq);
    return;
  }
  size_t hl = seq_hdr_len(lg);
  seq_header(c, seq, hl, out);
  memcpy(out + hl, lg->tmpl + hl, lg->opt.size - hl);
}

static void zlib_die(const char *what, int r, const z_stream *z) {
  fprintf(stderr, "loadgen: %s: %d (%s)\n", what, r, z && z->msg ? z->msg : "no message");
  exit(3);
}

/* Compresses one message into lg->zbuf as permessage-deflate sends it, with *zp (created on
 * first use) and the negotiated pmd; returns its length. */
static size_t deflate_message(struct loadgen *lg, z_stream **zp, const struct pmd *pmd,
                              const uint8_t *in, size_t n) {
  /* an empty message is one empty stored block (RFC 7692 7.2.3.6); zlib would give nothing
   * for it after an earlier flush, and the block leaves the deflater's state as it was */
  if (n == 0) {
    lg->zbuf[0] = 0x00;
    return 1;
  }
  z_stream *z = *zp;
  if (!z) {
    z = *zp = calloc(1, sizeof *z);
    if (!z) {
      perror("calloc");
      exit(3);
    }
    int r = deflateInit2(z, lg->opt.level, Z_DEFLATED, -(int)pmd->client_bits, 8,
                         Z_DEFAULT_STRATEGY);
    if (r != Z_OK) zlib_die("deflateInit2", r, z);
  }
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)n;
  size_t out = 0;
  for (;;) {
    /* more than six bytes of room, or Z_SYNC_FLUSH may repeat its marker */
    if (lg->zbuf_cap - out < 64) {
      size_t cap = lg->zbuf_cap * 2;
      uint8_t *d = realloc(lg->zbuf, cap);
      if (!d) {
        perror("realloc");
        exit(3);
      }
      lg->zbuf = d;
      lg->zbuf_cap = cap;
    }
    z->next_out = lg->zbuf + out;
    z->avail_out = (uInt)(lg->zbuf_cap - out);
    int r = deflate(z, Z_SYNC_FLUSH);
    if (r != Z_OK && r != Z_BUF_ERROR) zlib_die("deflate", r, z);
    out = (size_t)(z->next_out - lg->zbuf);
    if (z->avail_out > 0 && z->avail_in == 0) break;
  }
  if (out < 4 || memcmp(lg->zbuf + out - 4, DEFLATE_TAIL, 4) != 0) {
    fprintf(stderr, "loadgen: deflate output does not end in 00 00 ff ff\n");
    exit(3);
  }
  if (pmd->client_nct) deflateReset(z);
  return out - 4;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) {
    perror("realloc");
    exit(3);
  }
  return p;
}

/* Message seq compressed as c's deflater would have it, from the shared cache; NULL if c's
 * parameters differ from the cache's. */
static const uint8_t *zcache_get(struct loadgen *lg, const struct conn *c, uint64_t seq,
                                 size_t *len) {
  struct zcache *zc = &lg->zc;
  if (!zc->ready) {
    zc->ready = true;
    zc->pmd = c->pmd;
    zc->base = seq;
  }
  if (c->pmd.client_bits != zc->pmd.client_bits || c->pmd.client_nct != zc->pmd.client_nct ||
      seq < zc->base)
    return NULL;
  while (zc->base + zc->count <= seq) {
    message_build(lg, c, zc->base + zc->count, lg->plain);
    size_t n = deflate_message(lg, &zc->z, &zc->pmd, lg->plain, lg->opt.size);
    if (zc->count + 2 > zc->off_cap) {
      zc->off_cap = zc->off_cap ? zc->off_cap * 2 : 1024;
      zc->off = xrealloc(zc->off, zc->off_cap * sizeof *zc->off);
    }
    size_t at = zc->count ? zc->off[zc->count] : 0;
    if (at + n > zc->data_cap) {
      while (at + n > zc->data_cap) zc->data_cap = zc->data_cap ? zc->data_cap * 2 : 1u << 16;
      zc->data = xrealloc(zc->data, zc->data_cap);
    }
    memcpy(zc->data + at, lg->zbuf, n);
    zc->off[zc->count] = at;
    zc->off[++zc->count] = at + n;
  }
  size_t i = (size_t)(seq - zc->base);
  *len = zc->off[i + 1] - zc->off[i];
  return zc->data + zc->off[i];
}

/* Drops the cache entries every open connection has sent already. */
static void zcache_trim(struct loadgen *lg) {
  struct zcache *zc = &lg->zc;
  if (!zc->count) return;
  uint64_t min = UINT64_MAX;
  for (unsigned i = 0; i < lg->opt.conns; i++) {
    const struct conn *c = &lg->conns[i];
    if (c->state == CS_OPEN && c->pmd.on && !c->zc_private && c->sent_seq < min) min = c->sent_seq;
  }
  if (min == UINT64_MAX || min <= zc->base) return;
  size_t drop = min - zc->base < zc->count ? (size_t)(min - zc->base) : zc->count;
  size_t from = zc->off[drop];
  memmove(zc->data, zc->data + from, zc->off[zc->count] - from);
  for (size_t i = drop; i <= zc->count; i++) zc->off[i - drop] = zc->off[i] - from;
  zc->count -= drop;
  zc->base += drop;
}

static void message_append(struct loadgen *lg, struct conn *c, uint64_t seq) {
  size_t len = lg->opt.size;
  uint8_t opcode = lg->opt.binary ? 0x2 : 0x1;
  uint8_t mask[4];
  lg->total.tx_messages++;
  lg->total.tx_bytes += len;
  if (!c->pmd.on && lg->opt.payload == PAYLOAD_RANDOM) {
    /* the plain path masks straight from the shared template */
    size_t hl = seq_hdr_len(lg);
    uint8_t hdr[SEQ_HDR_LEN];
    uint8_t *p = outbuf_reserve(&c->out, 14 + len);
    size_t h = frame_header(p, opcode, len, mask, &lg->rng);
    seq_header(c, seq, hl, hdr);
    mask_copy(p + h, hdr, hl, mask, 0);
    mask_copy(p + h + hl, lg->tmpl + hl, len - hl, mask, hl);
    c->out.tail += h + len;
    lg->total.tx_wire += len;
    return;
  }
  const uint8_t *body = NULL;
  if (c->pmd.on && lg->zc.on && !c->zc_private) {
    body = zcache_get(lg, c, seq, &len);
    c->zc_private = !body;
  }
  if (!body) {
    message_build(lg, c, seq, lg->plain);
    body = lg->plain;
    if (c->pmd.on) {
      len = deflate_message(lg, &c->zd, &c->pmd, lg->plain, len);
      body = lg->zbuf;
    }
  }
  if (c->pmd.on) opcode |= 0x40; /* RSV1: this message is compressed */
  uint8_t *p = outbuf_reserve(&c->out, 14 + len);
  size_t h = frame_header(p, opcode, len, mask, &lg->rng);
  mask_copy(p + h, body, len, mask, 0);
  c->out.tail += h + len;
  lg->total.tx_wire += len;
}

/* ---- connection lifecycle ---- */

static void log_error(struct loadgen *lg, const struct conn *c, const char *fmt, ...) {
  if (lg->logged++ >= MAX_ERROR_LOGS) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: conn %ld: ", (long)(c - lg->conns));
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void conn_set_events(struct loadgen *lg, struct conn *c, uint32_t events) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(c - lg->conns)};
  if (epoll_ctl(lg->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) perror("epoll_ctl MOD");
  c->events = events;
}

static bool touch_awaited(const struct loadgen *lg, const struct conn *c) {
  return lg->opt.mode == MODE_IDLE && lg->opt.touch && c->state == CS_OPEN &&
         c->recv_seq < c->sent_seq;
}

static void conn_release(struct loadgen *lg, struct conn *c) {
  if (c->state == CS_CONNECTING || c->state == CS_TLS || c->state == CS_UPGRADING ||
      touch_awaited(lg, c))
    lg->pending--;
  if (c->state == CS_OPEN) lg->open--;
  if (c->ssl) {
    SSL_free(c->ssl); /* no close_notify: the TCP close that follows ends it for the server */
    c->ssl = NULL;
  }
  if (c->fd >= 0) close(c->fd); /* close also drops it from the epoll set */
  c->fd = -1;
  free(c->hs);
  c->hs = NULL;
  c->hs_len = 0;
  outbuf_free(&c->out);
  free(c->exp);
  c->exp = NULL;
  if (c->zd) {
    deflateEnd(c->zd);
    free(c->zd);
    c->zd = NULL;
  }
  if (c->zi) {
    inflateEnd(c->zi);
    free(c->zi);
    c->zi = NULL;
  }
  memset(&c->pmd, 0, sizeof c->pmd);
  c->zc_private = false;
  c->state = CS_DEAD;
  c->events = 0;
  /* handshake mode reopens the slot once this passes; other modes never look at it */
  c->deadline = now_s() + RETRY_DELAY_S;
}

static void conn_fail(struct loadgen *lg, struct conn *c, const char *fmt, ...) {
  if (lg->logged < MAX_ERROR_LOGS) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_error(lg, c, "%s", msg);
  }
  lg->errors++;
  conn_release(lg, c);
}

static void conn_start(struct loadgen *lg, struct conn *c) {
  memset(&c->rx, 0, sizeof c->rx);
  c->sent_seq = c->recv_seq = 0;
  c->salt = lg->zc.on ? lg->salt : rng_next(&lg->rng);
  c->deadline = now_s() + CONNECT_TIMEOUT_S;
  c->state = CS_CONNECTING;
  lg->pending++;
  c->fd = socket(lg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    conn_fail(lg, c, "socket: %s", strerror(errno));
    return;
  }
  /* frames are batched by hand already; Nagle would only add round trips */
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&lg->addr, lg->addr_len) < 0 && errno != EINPROGRESS) {
    conn_fail(lg, c, "connect: %s", strerror(errno));
    return;
  }
  c->events = EPOLLOUT;
  struct epoll_event ev = {.events = c->events, .data.u64 = (uint64_t)(c - lg->conns)};
  if (epoll_ctl(lg->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
    conn_fail(lg, c, "epoll_ctl ADD: %s", strerror(errno));
    return;
  }
}

/* Handshake mode: a cycle that ended well starts the next one at once. */
static void conn_recycle(struct loadgen *lg, struct conn *c) {
  conn_release(lg, c);
  if (lg->phase != PHASE_DONE) conn_start(lg, c);
}

/* SSL_write with send()'s contract: bytes taken, or -1 with errno (EAGAIN: try on EPOLLOUT). */
static ssize_t tls_write(struct conn *c, const uint8_t *p, size_t n) {
  size_t done = 0;
  if (SSL_write_ex(c->ssl, p, n, &done)) return (ssize_t)done;
  int e = SSL_get_error(c->ssl, 0);
  if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) errno = EAGAIN;
  else if (e != SSL_ERROR_SYSCALL || errno == 0)
    errno = EPROTO;
  ERR_clear_error();
  return -1;
}

/* One write per wakeup; what the kernel does not take waits for EPOLLOUT. */
static void conn_flush(struct loadgen *lg, struct conn *c) {
  struct outbuf *ob = &c->out;
  if (ob->head < ob->tail) {
    ssize_t n = c->ssl ? tls_write(c, ob->data + ob->head, ob->tail - ob->head)
                       : send(c->fd, ob->data + ob->head, ob->tail - ob->head, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      conn_fail(lg, c, "send: %s", strerror(errno));
      return;
    }
    if (n > 0) ob->head += (size_t)n;
    if (ob->head == ob->tail) {
      ob->head = ob->tail = 0;
      /* only echo traffic reuses the buffer; 10,000 idle connections should not keep 4 KiB each */
      if (lg->opt.mode != MODE_ECHO) outbuf_free(ob);
    }
  }
  conn_set_events(lg, c, ob->head < ob->tail ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void echo_fill(struct loadgen *lg, struct conn *c) {
  if (lg->phase == PHASE_DONE) return;
  while (c->sent_seq - c->recv_seq < lg->opt.inflight) message_append(lg, c, c->sent_seq++);
}

static void conn_on_open(struct loadgen *lg, struct conn *c) {
  lg->open++;
  c->state = CS_OPEN;
  c->deadline = 0;
  if (lg->opt.mode == MODE_IDLE && lg->opt.touch) {
    /* still pending until the echo is back (on_message_end), so "ready" counts it used */
    message_append(lg, c, c->sent_seq++);
    return;
  }
  lg->pending--;
  if (lg->opt.mode == MODE_ECHO) {
    echo_fill(lg, c);
  } else if (lg->opt.mode == MODE_HANDSHAKE) {
    static const uint8_t normal_closure[2] = {0x03, 0xE8};
    frame_append(lg, c, 0x8, normal_closure, 2);
  }
}

/* Queues the upgrade request once the transport (TCP, or TLS over it) is up. */
static void conn_request_upgrade(struct loadgen *lg, struct conn *c) {
  uint8_t raw[16];
  char key[25];
  for (int i = 0; i < 16; i += 8) {
    uint64_t r = rng_next(&lg->rng);
    memcpy(raw + i, &r, 8);
  }
  base64_encode(raw, 16, key);
  ws_accept_for(key, c->accept);
  char *p = (char *)outbuf_reserve(&c->out, 512 + strlen(lg->opt.path) + strlen(lg->opt.host));
  int n = sprintf(p,
                  "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                  lg->opt.path, lg->opt.host, lg->opt.port, key,
                  lg->opt.deflate
                      ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                      : "");
  c->out.tail += (size_t)n;
  c->state = CS_UPGRADING;
  c->hs = malloc(HS_BUF_SIZE);
  if (!c->hs) {
    perror("malloc");
    exit(3);
  }
  c->hs_len = 0;
}

/* Drives the TLS handshake; the request goes out once it is done. */
static void conn_tls_step(struct loadgen *lg, struct conn *c) {
  if (SSL_do_handshake(c->ssl) == 1) {
    conn_request_upgrade(lg, c);
    return;
  }
  int e = SSL_get_error(c->ssl, 0);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    conn_set_events(lg, c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
    return;
  }
  char why[160];
  unsigned long code = ERR_get_error();
  if (code) ERR_error_string_n(code, why, sizeof why);
  else
    snprintf(why, sizeof why, "%s", errno ? strerror(errno) : "peer closed");
  ERR_clear_error();
  conn_fail(lg, c, "TLS handshake: %s", why);
}

static void conn_on_connected(struct loadgen *lg, struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err) {
    conn_fail(lg, c, "connect: %s", strerror(err));
    return;
  }
  if (!lg->tls_ctx) {
    conn_request_upgrade(lg, c);
    return;
  }
  c->ssl = SSL_new(lg->tls_ctx);
  if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
    conn_fail(lg, c, "SSL_new failed");
    return;
  }
  SSL_set_connect_state(c->ssl);
  c->state = CS_TLS;
  conn_tls_step(lg, c);
}

static bool header_has_token(const char *value, const char *token) {
  size_t tl = strlen(token);
  for (const char *p = value; *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *start = p;
    while (*p && *p != ',') p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0) return true;
  }
  return false;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
  return s;
}

/* Takes one Sec-WebSocket-Extensions value from the server into c->pmd; returns NULL if it is
 * an acceptable answer to our offer, else why not. */
static const char *pmd_accept(struct loadgen *lg, struct conn *c, char *v) {
  static char why[160];
  if (!lg->opt.deflate) {
    snprintf(why, sizeof why, "extension \"%.60s\" was not offered", v);
    return why;
  }
  char copy[EXT_DESC_SIZE];
  snprintf(copy, sizeof copy, "%s", v);
  char *s1, *s2;
  for (char *ext = strtok_r(v, ",", &s1); ext; ext = strtok_r(NULL, ",", &s1)) {
    char *name = strtok_r(ext, ";", &s2);
    name = name ? trim(name) : NULL;
    if (!name || !*name) continue; /* an empty list element */
    if (strcasecmp(name, "permessage-deflate") != 0) {
      snprintf(why, sizeof why, "extension \"%.60s\" was not offered", name);
      return why;
    }
    if (c->pmd.on) return "permessage-deflate accepted twice";
    c->pmd = (struct pmd){.on = true, .server_bits = 15, .client_bits = 15};
    static const char *const names[] = {"server_no_context_takeover", "client_no_context_takeover",
                                        "server_max_window_bits", "client_max_window_bits"};
    bool seen[4] = {false};
    for (char *param; (param = strtok_r(NULL, ";", &s2));) {
      char *val = strchr(param, '=');
      if (val) *val++ = '\0';
      param = trim(param);
      if (val) {
        val = trim(val);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
          val[vl - 1] = '\0';
          val++;
        }
      }
      int k = 0;
      while (k < 4 && strcasecmp(param, names[k]) != 0) k++;
      if (k == 4) {
        snprintf(why, sizeof why, "permessage-deflate: unknown parameter \"%.40s\"", param);
        return why;
      }
      if (seen[k]) {
        snprintf(why, sizeof why, "permessage-deflate: %s given twice", names[k]);
        return why;
      }
      seen[k] = true;
      if (k < 2) {
        if (val) {
          snprintf(why, sizeof why, "permessage-deflate: %s takes no value", names[k]);
          return why;
        }
        if (k == 0) c->pmd.server_nct = true;
        else
          c->pmd.client_nct = true;
        continue;
      }
      /* 8..15, digits only, no leading zero */
      if (!val || !(strlen(val) == 1
                        ? val[0] >= '8' && val[0] <= '9'
                        : strlen(val) == 2 && val[0] == '1' && val[1] >= '0' && val[1] <= '5')) {
        snprintf(why, sizeof why, "permessage-deflate: %s=%.20s is not 8..15", names[k],
                 val ? val : "(no value)");
        return why;
      }
      uint8_t bits = (uint8_t)atoi(val);
      if (k == 2) c->pmd.server_bits = bits;
      else
        c->pmd.client_bits = bits;
    }
  }
  if (c->pmd.on && c->pmd.client_bits == 8)
    return "permessage-deflate: client_max_window_bits=8 (zlib's raw deflate cannot keep to a "
           "256-byte window)";
  if (c->pmd.on && !lg->ext_desc[0]) snprintf(lg->ext_desc, sizeof lg->ext_desc, "%s", copy);
  return NULL;
}

/* Checks the NUL-terminated response head; returns NULL if it is a valid 101, else why not. */
static const char *upgrade_check(struct loadgen *lg, struct conn *c, char *head) {
  if (strncmp(head, "HTTP/1.1 101", 12) != 0 || (head[12] != ' ' && head[12] != '\r')) {
    static char status[96];
    char *eol = strstr(head, "\r\n");
    if (eol) *eol = '\0';
    snprintf(status, sizeof status, "expected 101, got \"%.60s\"", head);
    return status;
  }
  bool upgrade = false, connection = false, accept = false;
  const char *ext_err = NULL;
  char *line = strstr(head, "\r\n");
  while (line && line[2] != '\0') {
    line += 2;
    char *eol = strstr(line, "\r\n");
    if (eol) *eol = '\0';
    char *colon = strchr(line, ':');
    if (colon) {
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      char *ve = v + strlen(v);
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) *--ve = '\0';
      if (strcasecmp(line, "upgrade") == 0) upgrade = strcasecmp(v, "websocket") == 0;
      else if (strcasecmp(line, "connection") == 0)
        connection = header_has_token(v, "upgrade");
      else if (strcasecmp(line, "sec-websocket-accept") == 0)
        accept = strcmp(v, c->accept) == 0;
      else if (strcasecmp(line, "sec-websocket-extensions") == 0 && !ext_err)
        ext_err = pmd_accept(lg, c, v);
    }
    if (!eol) break;
    line = eol;
  }
  if (!upgrade) return "missing or wrong Upgrade header";
  if (!connection) return "missing or wrong Connection header";
  if (!accept) return "missing or wrong Sec-WebSocket-Accept";
  return ext_err;
}

/* ---- frame parser and message checks ---- */

static enum feed_result echo_check(struct loadgen *lg, struct conn *c, const uint8_t *p, size_t n) {
  uint64_t off = c->rx.msg_off;
  size_t hl = seq_hdr_len(lg);
  if (off + n > lg->opt.size) {
    conn_fail(lg, c, "echo %" PRIu64 " longer than the %zu bytes sent", c->recv_seq, lg->opt.size);
    return FEED_ERROR;
  }
  if (lg->opt.payload == PAYLOAD_JSON) {
    const uint8_t *e = c->exp + off;
    if (memcmp(p, e, n) != 0) {
      size_t j = 0;
      while (p[j] == e[j]) j++;
      conn_fail(lg, c, "echo %" PRIu64 " differs at byte %" PRIu64 ": got 0x%02x, expected 0x%02x",
                c->recv_seq, off + j, p[j], e[j]);
      return FEED_ERROR;
    }
    return FEED_OK;
  }
  const uint8_t *exp_base = NULL;
  for (size_t i = 0; i < n; i++) {
    /* fast path: compare whole runs, find the byte only on mismatch */
    uint64_t o = off + i;
    size_t run;
    if (o < hl) {
      exp_base = c->exp_hdr + o;
      run = hl - (size_t)o < n - i ? hl - (size_t)o : n - i;
    } else {
      exp_base = lg->tmpl + o;
      run = n - i;
    }
    if (memcmp(p + i, exp_base, run) != 0) {
      size_t j = 0;
      while (p[i + j] == exp_base[j]) j++;
      conn_fail(lg, c, "echo %" PRIu64 " differs at byte %" PRIu64 ": got 0x%02x, expected 0x%02x",
                c->recv_seq, o + j, p[i + j], exp_base[j]);
      return FEED_ERROR;
    }
    i += run - 1;
  }
  return FEED_OK;
}

/* Message bytes as the application sees them (after inflating, if compressed). */
static enum feed_result payload_feed(struct loadgen *lg, struct conn *c, const uint8_t *p,
                                     size_t n) {
  if (lg->opt.mode == MODE_ECHO && echo_check(lg, c, p, n) != FEED_OK) return FEED_ERROR;
  c->rx.msg_off += n;
  return FEED_OK;
}

/* Inflates compressed message bytes and passes what comes out to payload_feed. */
static enum feed_result inflate_feed(struct loadgen *lg, struct conn *c, const uint8_t *p,
                                     size_t n) {
  z_stream *z = c->zi;
  z->next_in = (Bytef *)p;
  z->avail_in = (uInt)n;
  for (;;) {
    z->next_out = lg->ibuf;
    z->avail_out = INFLATE_BUF_SIZE;
    int r = inflate(z, Z_SYNC_FLUSH);
    if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END) {
      conn_fail(lg, c, "inflating message %" PRIu64 ": %s", c->recv_seq,
                z->msg ? z->msg : "zlib error");
      return FEED_ERROR;
    }
    size_t got = INFLATE_BUF_SIZE - z->avail_out;
    if (got && payload_feed(lg, c, lg->ibuf, got) != FEED_OK) return FEED_ERROR;
    if (r == Z_STREAM_END) {
      inflateReset(z); /* a block with BFINAL set: what follows starts afresh */
      if (z->avail_in == 0) break;
      continue;
    }
    if (z->avail_in == 0 && z->avail_out != 0) break;
    if (r == Z_BUF_ERROR && got == 0) break; /* no progress possible */
  }
  return FEED_OK;
}

static enum feed_result on_message_end(struct loadgen *lg, struct conn *c) {
  struct frame_rx *rx = &c->rx;
  rx->in_msg = false;
  if (lg->opt.mode == MODE_ECHO) {
    uint8_t want = lg->opt.binary ? 0x2 : 0x1;
    if (rx->msg_opcode != want) {
      conn_fail(lg, c, "echo %" PRIu64 " came back as opcode %u, sent %u", c->recv_seq,
                rx->msg_opcode, want);
      return FEED_ERROR;
    }
    if (rx->msg_off != lg->opt.size) {
      conn_fail(lg, c, "echo %" PRIu64 " has %" PRIu64 " bytes, sent %zu", c->recv_seq, rx->msg_off,
                lg->opt.size);
      return FEED_ERROR;
    }
    if (c->recv_seq == c->sent_seq) {
      conn_fail(lg, c, "message received that was never sent");
      return FEED_ERROR;
    }
  }
  bool touched = touch_awaited(lg, c);
  c->recv_seq++;
  lg->total.messages++;
  lg->total.bytes += rx->msg_off;
  if (touched) {
    if (rx->msg_off != lg->opt.size) {
      conn_fail(lg, c, "echo has %" PRIu64 " bytes, sent %zu", rx->msg_off, lg->opt.size);
      return FEED_ERROR;
    }
    lg->pending--;
    /* Held idle from here: its zlib streams would only make loadgen big. */
    if (c->zd) {
      deflateEnd(c->zd);
      free(c->zd);
      c->zd = NULL;
    }
  }
  return FEED_OK;
}

static enum feed_result on_control_frame(struct loadgen *lg, struct conn *c) {
  struct frame_rx *rx = &c->rx;
  switch (rx->opcode) {
    case 0x9:
      if (c->state == CS_OPEN) frame_append(lg, c, 0xA, rx->ctrl, rx->ctrl_len);
      return FEED_OK;
    case 0xA: return FEED_OK;
    default: /* 0x8 */
      if (lg->opt.mode == MODE_HANDSHAKE && c->state == CS_OPEN) {
        lg->total.handshakes++;
        lg->open--;
        c->state = CS_CLOSING;
        c->deadline = now_s() + CLOSE_WAIT_TIMEOUT_S;
        return FEED_STOP;
      }
      unsigned code = rx->ctrl_len >= 2 ? (unsigned)rx->ctrl[0] << 8 | rx->ctrl[1] : 1005;
      conn_fail(lg, c, "server closed the connection with code %u", code);
      return FEED_ERROR;
  }
}

static enum feed_result frame_header_done(struct loadgen *lg, struct conn *c) {
  struct frame_rx *rx = &c->rx;
  uint8_t b0 = rx->hdr[0], b1 = rx->hdr[1];
  uint64_t len = b1 & 0x7f;
  if (len == 126) {
    len = (uint64_t)rx->hdr[2] << 8 | rx->hdr[3];
    if (len < 126) goto bad_length;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | rx->hdr[2 + i];
    if (len < 65536 || len >> 63) goto bad_length;
  }
  rx->fin = b0 & 0x80;
  rx->opcode = b0 & 0x0f;
  rx->payload_left = len;
  rx->ctrl_len = 0;
  /* RSV1 marks a compressed message, on its first frame only, once deflate is negotiated */
  uint8_t rsv_ok = c->pmd.on && (rx->opcode == 0x1 || rx->opcode == 0x2) ? 0x40 : 0;
  if (b0 & 0x70 & ~rsv_ok) {
    conn_fail(lg, c, "frame with RSV bits 0x%02x (opcode %u)", b0 & 0x70, rx->opcode);
    return FEED_ERROR;
  }
  if (rx->opcode & 0x8) {
    if (rx->opcode > 0xA || !rx->fin || len > 125) {
      conn_fail(lg, c, "bad control frame (opcode %u, fin %d, length %" PRIu64 ")", rx->opcode,
                rx->fin, len);
      return FEED_ERROR;
    }
  } else if (rx->opcode == 0) {
    if (!rx->in_msg) {
      conn_fail(lg, c, "continuation frame outside a message");
      return FEED_ERROR;
    }
  } else if (rx->opcode <= 2) {
    if (rx->in_msg) {
      conn_fail(lg, c, "new message inside a fragmented one");
      return FEED_ERROR;
    }
    rx->in_msg = true;
    rx->msg_opcode = rx->opcode;
    rx->msg_off = 0;
    rx->msg_compressed = b0 & 0x40;
    if (rx->msg_compressed && !c->zi) {
      /* the server's window bits, so a back-reference past the agreed window is an error */
      c->zi = calloc(1, sizeof *c->zi);
      if (!c->zi) {
        perror("calloc");
        exit(3);
      }
      int r = inflateInit2(c->zi, -(int)c->pmd.server_bits);
      if (r != Z_OK) zlib_die("inflateInit2", r, c->zi);
    }
    if (lg->opt.mode == MODE_ECHO) {
      if (lg->opt.payload == PAYLOAD_JSON) {
        if (!c->exp && !(c->exp = malloc(lg->opt.size + 1))) {
          perror("malloc");
          exit(3);
        }
        json_message(c->exp, lg->opt.size, c->salt + c->recv_seq);
      } else {
        seq_header(c, c->recv_seq, seq_hdr_len(lg), c->exp_hdr);
      }
    }
  } else {
    conn_fail(lg, c, "reserved opcode %u", rx->opcode);
    return FEED_ERROR;
  }
  rx->in_payload = true;
  return FEED_OK;
bad_length:
  conn_fail(lg, c, "frame length not in its shortest or a valid form");
  return FEED_ERROR;
}

static enum feed_result frame_done(struct loadgen *lg, struct conn *c) {
  struct frame_rx *rx = &c->rx;
  rx->in_payload = false;
  rx->hdr_have = 0;
  if (rx->opcode & 0x8) return on_control_frame(lg, c);
  if (!rx->fin) return FEED_OK;
  if (rx->msg_compressed) {
    if (inflate_feed(lg, c, DEFLATE_TAIL, 4) != FEED_OK) return FEED_ERROR;
    if (c->pmd.server_nct) inflateReset(c->zi);
  }
  return on_message_end(lg, c);
}

static enum feed_result frames_feed(struct loadgen *lg, struct conn *c, const uint8_t *p,
                                    size_t n) {
  struct frame_rx *rx = &c->rx;
  while (n > 0) {
    if (!rx->in_payload) {
      if (rx->hdr_have < 2) {
        rx->hdr[rx->hdr_have++] = *p++;
        n--;
        if (rx->hdr_have == 2 && (rx->hdr[1] & 0x80)) {
          conn_fail(lg, c, "masked frame from the server");
          return FEED_ERROR;
        }
      }
      if (rx->hdr_have < 2) continue;
      unsigned len7 = rx->hdr[1] & 0x7f;
      unsigned need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
      while (rx->hdr_have < need && n > 0) {
        rx->hdr[rx->hdr_have++] = *p++;
        n--;
      }
      if (rx->hdr_have < need) break;
      enum feed_result r = frame_header_done(lg, c);
      if (r != FEED_OK) return r;
      if (rx->payload_left == 0) {
        r = frame_done(lg, c);
        if (r != FEED_OK) return r;
      }
      continue;
    }
    size_t take = n < rx->payload_left ? n : (size_t)rx->payload_left;
    if (rx->opcode & 0x8) {
      memcpy(rx->ctrl + rx->ctrl_len, p, take);
      rx->ctrl_len += (unsigned)take;
    } else {
      lg->total.rx_wire += take;
      enum feed_result r = rx->msg_compressed ? inflate_feed(lg, c, p, take)
                                              : payload_feed(lg, c, p, take);
      if (r != FEED_OK) return r;
    }
    p += take;
    n -= take;
    rx->payload_left -= take;
    if (rx->payload_left == 0) {
      enum feed_result r = frame_done(lg, c);
      if (r != FEED_OK) return r;
    }
  }
  return FEED_OK;
}

/* Collects the HTTP head, checks it, and passes any bytes after it to the frame parser. */
static enum feed_result handshake_feed(struct loadgen *lg, struct conn *c, const uint8_t *p,
                                       size_t n) {
  size_t room = HS_BUF_SIZE - 1 - c->hs_len;
  size_t take = n < room ? n : room;
  size_t scan_from = c->hs_len >= 3 ? c->hs_len - 3 : 0;
  memcpy(c->hs + c->hs_len, p, take);
  c->hs_len += take;
  c->hs[c->hs_len] = '\0';
  char *end = NULL;
  for (size_t i = scan_from; i + 4 <= c->hs_len; i++) {
    if (memcmp(c->hs + i, "\r\n\r\n", 4) == 0) {
      end = c->hs + i;
      break;
    }
  }
  if (!end) {
    if (c->hs_len == HS_BUF_SIZE - 1) {
      conn_fail(lg, c, "response head longer than %d bytes", HS_BUF_SIZE - 1);
      return FEED_ERROR;
    }
    return FEED_OK;
  }
  size_t head_len = (size_t)(end - c->hs) + 4;
  size_t rest_in_p = c->hs_len - head_len; /* bytes after the head, all taken from p */
  end[2] = '\0';
  const char *why = upgrade_check(lg, c, c->hs);
  if (why) {
    conn_fail(lg, c, "upgrade failed: %s", why);
    return FEED_ERROR;
  }
  if (lg->opt.deflate) {
    if (c->pmd.on) lg->pmd_yes++;
    else
      lg->pmd_no++;
  }
  free(c->hs);
  c->hs = NULL;
  c->hs_len = 0;
  conn_on_open(lg, c);
  return frames_feed(lg, c, p + take - rest_in_p, rest_in_p + (n - take));
}

/* SSL_read with recv()'s contract: bytes, 0 at the peer's end, or -1 with errno. */
static ssize_t tls_read(struct conn *c, uint8_t *p, size_t n) {
  size_t got = 0;
  if (SSL_read_ex(c->ssl, p, n, &got)) return (ssize_t)got;
  int e = SSL_get_error(c->ssl, 0);
  ERR_clear_error();
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) errno = EAGAIN;
  else if (e == SSL_ERROR_SYSCALL && errno == 0)
    return 0; /* TCP EOF without close_notify: what servers do after a close frame */
  else if (e != SSL_ERROR_SYSCALL)
    errno = EPROTO;
  return -1;
}

static void conn_on_readable(struct loadgen *lg, struct conn *c) {
  ssize_t n = c->ssl ? tls_read(c, lg->rbuf, READ_BUF_SIZE)
                     : recv(c->fd, lg->rbuf, READ_BUF_SIZE, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    if (c->state == CS_CLOSING) {
      conn_recycle(lg, c); /* a reset after the close handshake is not a failure */
      return;
    }
    conn_fail(lg, c, "recv: %s", strerror(errno));
    return;
  }
  if (n == 0) {
    if (c->state == CS_CLOSING) conn_recycle(lg, c);
    else
      conn_fail(lg, c, "server closed the TCP connection (state %d)", (int)c->state);
    return;
  }
  switch (c->state) {
    case CS_UPGRADING: handshake_feed(lg, c, lg->rbuf, (size_t)n); break;
    case CS_OPEN: frames_feed(lg, c, lg->rbuf, (size_t)n); break;
    default: break; /* CS_CLOSING: whatever follows the close frame is ignored */
  }
}

/* OpenSSL decrypts a whole record at a time and may hold plaintext epoll cannot see: drain it. */
static void conn_drain(struct loadgen *lg, struct conn *c) {
  conn_on_readable(lg, c);
  while (c->ssl && c->state != CS_DEAD && c->state != CS_CONNECTING && SSL_pending(c->ssl) > 0)
    conn_on_readable(lg, c);
}

static void conn_on_event(struct loadgen *lg, struct conn *c, uint32_t events) {
  if (c->state == CS_CONNECTING) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    conn_on_connected(lg, c);
    if (c->state == CS_TLS) return; /* conn_tls_step chose what to wait for */
  } else if (c->state == CS_TLS) {
    conn_tls_step(lg, c);
    if (c->state == CS_TLS) return;
  } else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    conn_drain(lg, c);
  }
  /* CS_CONNECTING here means the slot was recycled onto a new socket that waits for EPOLLOUT */
  if (c->state == CS_DEAD || c->state == CS_CONNECTING) return;
  if (c->state == CS_OPEN && lg->opt.mode == MODE_ECHO) echo_fill(lg, c);
  conn_flush(lg, c);
}

/* ---- run loop ---- */

static void snapshot_begin(struct loadgen *lg, double t) {
  lg->snap = lg->total;
  lg->measure_start = t;
  lg->cpu_start = cpu_s();
  lg->phase = PHASE_MEASURE;
  lg->phase_end = t + lg->opt.duration;
}

static void phase_advance(struct loadgen *lg, double t) {
  switch (lg->phase) {
    case PHASE_OPENING:
      while (lg->to_start > 0 && lg->pending < lg->opt.connecting) {
        unsigned idx = lg->opt.conns - lg->to_start--;
        conn_start(lg, &lg->conns[idx]);
      }
      if (lg->to_start > 0 || lg->pending > 0) return;
      if (lg->opt.mode == MODE_IDLE) {
        printf("ready %u\n", lg->open);
        fflush(stdout);
        lg->phase = PHASE_HOLD;
      } else if (lg->open == 0) {
        lg->measure_start = lg->measure_end = t;
        lg->phase = PHASE_DONE;
      } else {
        lg->phase = PHASE_WARMUP;
        lg->phase_end = t + lg->opt.warmup;
      }
      return;
    case PHASE_WARMUP:
      if (t >= lg->phase_end) snapshot_begin(lg, t);
      return;
    case PHASE_MEASURE:
      if (t >= lg->phase_end) {
        lg->measure_end = t;
        lg->phase = PHASE_DONE;
      }
      return;
    default: return;
  }
}

static void timers_run(struct loadgen *lg, double t) {
  /* not while connections still open: each must find its first messages in the cache */
  if (lg->zc.on && lg->phase != PHASE_OPENING) zcache_trim(lg);
  for (unsigned i = 0; i < lg->opt.conns; i++) {
    struct conn *c = &lg->conns[i];
    if (c->deadline == 0 || t < c->deadline) continue;
    switch (c->state) {
      case CS_CONNECTING:
      case CS_TLS:
      case CS_UPGRADING:
        conn_fail(lg, c, "timed out %s",
                  c->state == CS_CONNECTING ? "connecting"
                  : c->state == CS_TLS      ? "in the TLS handshake"
                                            : "upgrading");
        break;
      case CS_CLOSING:
        lg->close_timeouts++;
        conn_recycle(lg, c);
        break;
      case CS_DEAD:
        if (lg->opt.mode == MODE_HANDSHAKE && lg->phase != PHASE_DONE) conn_start(lg, c);
        else
          c->deadline = 0;
        break;
      default: break;
    }
  }
}

/* Idle mode holds until stdin reaches EOF; returns true when it has. */
static bool stdin_closed(void) {
  char buf[256];
  ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static void run(struct loadgen *lg) {
  struct epoll_event evs[512];
  double last_timers = now_s();
  if (lg->opt.mode == MODE_HANDSHAKE) {
    for (unsigned i = 0; i < lg->opt.conns; i++) conn_start(lg, &lg->conns[i]);
    lg->to_start = 0;
    lg->phase = PHASE_WARMUP;
    lg->phase_end = now_s() + lg->opt.warmup;
  }
  phase_advance(lg, now_s());
  while (lg->phase != PHASE_DONE) {
    int n = epoll_wait(lg->epfd, evs, 512, TIMER_PERIOD_MS);
    if (n < 0 && errno != EINTR) {
      perror("epoll_wait");
      exit(3);
    }
    for (int i = 0; i < n; i++) {
      uint64_t tag = evs[i].data.u64;
      if (tag == EV_SIGNAL) {
        struct signalfd_siginfo si;
        if (read(lg->sigfd, &si, sizeof si) > 0) {
          if (lg->phase == PHASE_MEASURE || lg->phase == PHASE_WARMUP) lg->measure_end = now_s();
          if (lg->phase == PHASE_WARMUP) lg->measure_start = lg->measure_end;
          lg->phase = PHASE_DONE;
        }
      } else if (tag == EV_STDIN) {
        if (stdin_closed()) {
          epoll_ctl(lg->epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
          if (lg->phase == PHASE_HOLD) lg->phase = PHASE_DONE;
        }
      } else {
        struct conn *c = &lg->conns[tag];
        if (c->state != CS_DEAD) conn_on_event(lg, c, evs[i].events);
      }
    }
    if (lg->phase == PHASE_DONE) break;
    double t = now_s();
    if (t - last_timers >= TIMER_PERIOD_MS / 1000.0) {
      timers_run(lg, t);
      last_timers = t;
    }
    phase_advance(lg, t);
  }
}

/* A JSON string value; the extension answer is the only text from the server that gets here. */
static void print_json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') printf("\\%c", ch);
    else if (ch < 0x20 || ch >= 0x7f)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

static double ratio(uint64_t plain, uint64_t wire) {
  return wire ? (double)plain / (double)wire : 0;
}

static void report(const struct loadgen *lg) {
  static const char *names[] = {"echo", "recv", "handshake", "idle"};
  const struct options *o = &lg->opt;
  double secs = lg->measure_end - lg->measure_start;
  uint64_t msgs = lg->total.messages - lg->snap.messages;
  uint64_t bytes = lg->total.bytes - lg->snap.bytes;
  uint64_t hs = lg->total.handshakes - lg->snap.handshakes;
  double mps = secs > 0 ? (double)msgs / secs : 0;
  double mbps = secs > 0 ? (double)bytes / secs / 1e6 : 0;
  double hps = secs > 0 ? (double)hs / secs : 0;
  unsigned connected = o->mode == MODE_HANDSHAKE ? o->conns : lg->open;
  uint64_t tx_bytes = lg->total.tx_bytes - lg->snap.tx_bytes;
  uint64_t tx_wire = lg->total.tx_wire - lg->snap.tx_wire;
  uint64_t rx_wire = lg->total.rx_wire - lg->snap.rx_wire;
  double cpu = lg->cpu_start > 0 && secs > 0 ? (cpu_s() - lg->cpu_start) / secs : 0;
  /* "off" without --deflate; the server's answer, or "not negotiated", with it */
  const char *deflate = !o->deflate ? "off" : lg->pmd_yes ? lg->ext_desc : "not negotiated";
  if (o->json) {
    printf(
        "{\"mode\":\"%s\",\"conns\":%u,\"connected\":%u,\"inflight\":%u,\"size\":%zu,"
        "\"binary\":%s,\"payload\":\"%s\",\"seconds\":%.3f,\"messages\":%" PRIu64
        ",\"bytes\":%" PRIu64 ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"handshakes\":%" PRIu64
        ",\"handshakes_per_s\":%.1f,\"close_timeouts\":%" PRIu64 ",\"errors\":%" PRIu64
        ",\"loadgen_cpu\":%.3f,\"deflate\":",
        names[o->mode], o->conns, connected, o->inflight, o->size, o->binary ? "true" : "false",
        o->payload == PAYLOAD_JSON ? "json" : "random", secs, msgs, bytes, mps, mbps, hs, hps,
        lg->close_timeouts, lg->errors, cpu);
    print_json_str(deflate);
    printf(",\"deflate_upgrades\":%u,\"plain_upgrades\":%u,\"sent_bytes\":%" PRIu64
           ",\"sent_wire_bytes\":%" PRIu64 ",\"received_wire_bytes\":%" PRIu64
           ",\"sent_ratio\":%.3f,\"received_ratio\":%.3f,\"shared_deflate\":%s}\n",
           lg->pmd_yes, lg->pmd_no, tx_bytes, tx_wire, rx_wire, ratio(tx_bytes, tx_wire),
           ratio(bytes, rx_wire), lg->zc.on ? "true" : "false");
  } else if (o->mode == MODE_HANDSHAKE) {
    printf("handshake: %u parallel: %.0f handshakes/s over %.2f s, errors %" PRIu64 "\n", o->conns,
           hps, secs, lg->errors);
  } else if (o->mode == MODE_IDLE) {
    printf("idle: %u of %u connections held, errors %" PRIu64 "\n", lg->open, o->conns, lg->errors);
  } else {
    printf(
        "%s: %u conns x %u in flight x %zu B %s: %.0f msgs/s, %.2f MB/s over %.2f s, errors "
        "%" PRIu64 "\n",
        names[o->mode], connected, o->inflight, o->size, o->binary ? "binary" : "text", mps, mbps,
        secs, lg->errors);
  }
  if (!o->json && o->deflate) {
    if (!lg->pmd_yes) {
      printf("deflate: not negotiated\n");
    } else {
      printf("deflate: %s (%u of %u upgrades)", deflate, lg->pmd_yes, lg->pmd_yes + lg->pmd_no);
      if (o->mode == MODE_ECHO || o->mode == MODE_RECV)
        printf("; payload bytes on the wire: sent %.2fx smaller, received %.2fx smaller%s",
               ratio(tx_bytes, tx_wire), ratio(bytes, rx_wire),
               lg->zc.on ? " (each message compressed once for all connections)" : "");
      putchar('\n');
    }
  }
  if (!o->json && (o->mode == MODE_ECHO || o->mode == MODE_RECV))
    printf("loadgen CPU: %.0f%% of one core\n", cpu * 100);
  fflush(stdout);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: loadgen --host H --port P [--path /] [--mode echo|recv|handshake|idle]\n"
          "               [--conns N] [--inflight K] [--size S] [--binary]\n"
          "               [--duration SEC] [--warmup SEC] [--json]\n"
          "               [--payload random|json]\n"
          "               [--deflate [--level 0-9] [--private-deflate]] [--touch]\n"
          "               [--connecting N] [--tls]\n"
          "--touch (idle mode): each connection sends one --size message and gets its echo\n"
          "before it counts as ready (with --deflate: compressed, so zlib state was made).\n"
          "--connecting: how many connections are opening at once (default 128; --conns for\n"
          "a reconnect storm, where the server's accept backlog may overflow and SYNs retry).\n"
          "--tls: wss; the server's certificate is not verified.\n");
}

static bool parse_number(const char *s, double min, double max, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || v < min || v > max) return false;
  *out = v;
  return true;
}

static int parse_options(int argc, char **argv, struct options *o) {
  static const struct option longopts[] = {{"host", required_argument, 0, 'h'},
                                           {"port", required_argument, 0, 'p'},
                                           {"path", required_argument, 0, 'P'},
                                           {"mode", required_argument, 0, 'm'},
                                           {"conns", required_argument, 0, 'c'},
                                           {"inflight", required_argument, 0, 'k'},
                                           {"size", required_argument, 0, 's'},
                                           {"binary", no_argument, 0, 'b'},
                                           {"duration", required_argument, 0, 'd'},
                                           {"warmup", required_argument, 0, 'w'},
                                           {"json", no_argument, 0, 'j'},
                                           {"help", no_argument, 0, '?'},
                                           {"deflate", no_argument, 0, 'z'},
                                           {"payload", required_argument, 0, 'y'},
                                           {"level", required_argument, 0, 'l'},
                                           {"private-deflate", no_argument, 0, 'Z'},
                                           {"touch", no_argument, 0, 't'},
                                           {"connecting", required_argument, 0, 'C'},
                                           {"tls", no_argument, 0, 'T'},
                                           {0, 0, 0, 0}};
  *o = (struct options){.host = "127.0.0.1",
                        .port = NULL,
                        .path = "/",
                        .mode = MODE_ECHO,
                        .conns = 50,
                        .connecting = MAX_CONNECTING,
                        .inflight = 32,
                        .size = 16,
                        .duration = 5,
                        .warmup = 1,
                        .level = Z_DEFAULT_COMPRESSION};
  int ch;
  double v;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
      case 'h': o->host = optarg; break;
      case 'p': o->port = optarg; break;
      case 'P': o->path = optarg; break;
      case 'm':
        if (strcmp(optarg, "echo") == 0) o->mode = MODE_ECHO;
        else if (strcmp(optarg, "recv") == 0)
          o->mode = MODE_RECV;
        else if (strcmp(optarg, "handshake") == 0)
          o->mode = MODE_HANDSHAKE;
        else if (strcmp(optarg, "idle") == 0)
          o->mode = MODE_IDLE;
        else
          return -1;
        break;
      case 'c':
        if (!parse_number(optarg, 1, 1000000, &v)) return -1;
        o->conns = (unsigned)v;
        break;
      case 'k':
        if (!parse_number(optarg, 1, 1000000, &v)) return -1;
        o->inflight = (unsigned)v;
        break;
      case 's':
        if (!parse_number(optarg, 0, 1 << 30, &v)) return -1;
        o->size = (size_t)v;
        break;
      case 'b': o->binary = true; break;
      case 'd':
        if (!parse_number(optarg, 0.01, 86400, &o->duration)) return -1;
        break;
      case 'w':
        if (!parse_number(optarg, 0, 86400, &o->warmup)) return -1;
        break;
      case 'j': o->json = true; break;
      case 'z': o->deflate = true; break;
      case 'Z': o->private_deflate = true; break;
      case 't': o->touch = true; break;
      case 'T': o->tls = true; break;
      case 'C': {
        double v;
        if (!parse_number(optarg, 1, 1e6, &v)) return -1;
        o->connecting = (unsigned)v;
        break;
      }
      case 'y':
        if (strcmp(optarg, "random") == 0) o->payload = PAYLOAD_RANDOM;
        else if (strcmp(optarg, "json") == 0)
          o->payload = PAYLOAD_JSON;
        else
          return -1;
        break;
      case 'l':
        if (!parse_number(optarg, 0, 9, &v)) return -1;
        o->level = (int)v;
        break;
      default: return -1;
    }
  }
  if (optind != argc || !o->port) return -1;
  return 0;
}

static void raise_fd_limit(unsigned conns) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)conns + 16)
    fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE %lu is below %u connections\n",
            (unsigned long)rl.rlim_cur, conns);
}

int main(int argc, char **argv) {
  static struct loadgen lg;
  if (parse_options(argc, argv, &lg.opt) != 0) {
    usage(stderr);
    return 2;
  }
  raise_fd_limit(lg.opt.conns);
  signal(SIGPIPE, SIG_IGN);

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  int gai = getaddrinfo(lg.opt.host, lg.opt.port, &hints, &ai);
  if (gai != 0) {
    fprintf(stderr, "loadgen: %s:%s: %s\n", lg.opt.host, lg.opt.port, gai_strerror(gai));
    return 2;
  }
  memcpy(&lg.addr, ai->ai_addr, ai->ai_addrlen);
  lg.addr_len = ai->ai_addrlen;
  freeaddrinfo(ai);

  if (getrandom(&lg.rng, sizeof lg.rng, 0) != (ssize_t)sizeof lg.rng || lg.rng == 0)
    lg.rng = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL | 1;

  lg.zc.on = lg.opt.deflate && lg.opt.mode == MODE_ECHO && !lg.opt.private_deflate;
  lg.salt = rng_next(&lg.rng);
  lg.rbuf = malloc(READ_BUF_SIZE);
  lg.tmpl = malloc(lg.opt.size + 1);
  lg.conns = calloc(lg.opt.conns, sizeof *lg.conns);
  lg.plain = malloc(lg.opt.size + 1);
  if (lg.opt.deflate) {
    lg.zbuf_cap = lg.opt.size + lg.opt.size / 8 + 256;
    lg.zbuf = malloc(lg.zbuf_cap);
    lg.ibuf = malloc(INFLATE_BUF_SIZE);
  }
  if (!lg.rbuf || !lg.tmpl || !lg.conns || !lg.plain ||
      (lg.opt.deflate && (!lg.zbuf || !lg.ibuf))) {
    perror("malloc");
    return 3;
  }
  /* text payloads stay printable ASCII; binary ones use every byte value */
  for (size_t i = 0; i < lg.opt.size; i++) {
    uint8_t r = (uint8_t)(rng_next(&lg.rng) >> 56);
    lg.tmpl[i] = lg.opt.binary ? r : (uint8_t)(0x20 + r % 95);
  }
  for (unsigned i = 0; i < lg.opt.conns; i++) lg.conns[i].fd = -1;

  if (lg.opt.tls) {
    lg.tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!lg.tls_ctx) {
      fprintf(stderr, "loadgen: SSL_CTX_new failed\n");
      return 3;
    }
    SSL_CTX_set_verify(lg.tls_ctx, SSL_VERIFY_NONE, NULL);
    /* the output buffer may grow (move) between a short write and its retry */
    SSL_CTX_set_mode(lg.tls_ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  }

  lg.epfd = epoll_create1(EPOLL_CLOEXEC);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  lg.sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_SIGNAL};
  epoll_ctl(lg.epfd, EPOLL_CTL_ADD, lg.sigfd, &ev);
  if (lg.opt.mode == MODE_IDLE) {
    /* a terminal or pipe can be watched; a regular file or /dev/null cannot: SIGTERM then */
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_STDIN};
    epoll_ctl(lg.epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
  }
  lg.to_start = lg.opt.mode == MODE_HANDSHAKE ? 0 : lg.opt.conns;

  run(&lg);
  report(&lg);
  return lg.errors ? 1 : 0;
}
