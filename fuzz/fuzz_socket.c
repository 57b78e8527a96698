/* libFuzzer target for the socket core (transport/socket.c) over a socketpair with small
 * kernel buffers: the input is a script of writes (1 to 100 pieces of any size), peer reads
 * of any size, flushes of pending output, pauses, a half-close and the peer going away.
 * Oracle: the peer receives exactly a prefix of what was written, in order, and everything
 * once drained; pending output and the wanted events agree; a broken peer fails writes with
 * an errno, never a crash or a signal. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "transport/socket.h"

#define STREAM_MAX (4 << 20) /* bytes a run may write in all */
#define MAX_PIECES 100

static uint8_t *pattern;  /* the bytes written, in order: pattern[i] = f(i) */
static uint8_t *received; /* what the peer got */

static uint8_t pattern_byte(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

typedef struct run {
  transport_socket s;
  int peer;
  size_t written; /* bytes handed to socket_write (accepted or kept) */
  size_t got;     /* bytes the peer read */
  bool failed, peer_gone, shut;
} run;

static void peer_read(run *r, size_t max) {
  while (max > 0 && !r->peer_gone) {
    ssize_t n = recv(r->peer, received + r->got, max, 0);
    if (n <= 0) return;
    /* In order, nothing lost or repeated: a prefix of the stream. */
    FUZZ_CHECK(r->got + (size_t)n <= r->written);
    FUZZ_CHECK(memcmp(received + r->got, pattern + r->got, (size_t)n) == 0);
    r->got += (size_t)n;
    max -= (size_t)n;
  }
}

static void check_state(const run *r) {
  if (!(r->s.flags & SOCKET_OPEN)) return;
  bool pending = socket_pending_size(&r->s) > 0;
  FUZZ_CHECK(((socket_wanted(&r->s) & SOCKET_WANT_WRITE) != 0) == pending);
  FUZZ_CHECK(pending == (r->s.pending != NULL));
  FUZZ_CHECK(socket_pending_size(&r->s) <= r->written - r->got);
}

static void on_status(run *r, socket_status st) {
  if (st == SOCKET_FAILED) {
    /* Only a peer that went away (or our own half-close) can break the socket here. */
    FUZZ_CHECK(r->peer_gone || r->shut);
    FUZZ_CHECK(r->s.error != 0);
    r->failed = true;
  }
}

static void write_pieces(run *r, const uint8_t *spec, size_t spec_len) {
  struct iovec iov[MAX_PIECES];
  size_t count = 0;
  size_t at = r->written;
  for (size_t i = 0; i < spec_len && count < MAX_PIECES; i++) {
    size_t len = spec[i] < 0xE0 ? spec[i] : (size_t)(spec[i] & 0x1F) * 4096;
    if (at + len > STREAM_MAX) break;
    iov[count++] = (struct iovec){pattern + at, len};
    at += len;
  }
  if (count == 0) return;
  socket_status st = socket_write(&r->s, iov, count);
  if (st != SOCKET_FAILED) r->written = at;
  on_status(r, st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (pattern == NULL) {
    pattern = malloc(STREAM_MAX);
    received = malloc(STREAM_MAX);
    for (size_t i = 0; i < STREAM_MAX; i++) pattern[i] = pattern_byte(i);
  }
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 0;
  int small = 2048 + (size > 0 ? data[0] * 64 : 0);
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  int own = socket_take(fds[0], false);
  close(fds[0]);
  FUZZ_CHECK(own >= 0);
  run r = {.peer = fds[1]};
  socket_open(&r.s, own);

  size_t pos = size > 0 ? 1 : 0;
  while (pos < size && !r.failed) {
    uint8_t op = data[pos++];
    size_t arg_len = op >> 3; /* bytes of arguments this action takes */
    if (arg_len > size - pos) arg_len = size - pos;
    const uint8_t *arg = data + pos;
    pos += arg_len;
    switch (op & 7) {
      case 0:
      case 1:
        if (!r.shut) write_pieces(&r, arg, arg_len);
        break;
      case 2: peer_read(&r, arg_len > 0 ? (size_t)arg[0] * 257 + 1 : 1); break;
      case 3: on_status(&r, socket_write_pending(&r.s)); break;
      case 4:
        r.s.flags ^= SOCKET_PAUSED;
        FUZZ_CHECK(((socket_wanted(&r.s) & SOCKET_WANT_READ) != 0) ==
                   !(r.s.flags & (SOCKET_PAUSED | SOCKET_EOF)));
        break;
      case 5: { /* the peer sends a little; we read it */
        uint8_t buf[64];
        size_t n;
        if (!r.peer_gone) send(r.peer, "ping", 4, MSG_NOSIGNAL);
        socket_status st = socket_read(&r.s, buf, arg_len > 0 ? arg[0] % 64 + 1 : 64, &n);
        FUZZ_CHECK(st != SOCKET_FAILED || r.peer_gone);
        if (st == SOCKET_DONE) FUZZ_CHECK(n >= 1 && n <= 64);
        break;
      }
      case 6:
        if (arg_len > 0 && arg[0] == 0xff && !r.peer_gone) {
          close(r.peer);
          r.peer_gone = true;
        } else if (arg_len > 0 && arg[0] == 0xfe && socket_pending_size(&r.s) == 0) {
          /* Half-close once the output is out, as transportEnd() does. */
          socket_shutdown_write(&r.s);
          r.shut = true;
          FUZZ_CHECK(r.s.flags & SOCKET_SHUT);
        }
        break;
      default: peer_read(&r, STREAM_MAX); break;
    }
    check_state(&r);
  }

  /* Drained: with the peer still there, everything written reaches it. */
  if (!r.failed && !r.peer_gone) {
    for (int rounds = 0; rounds < 100000; rounds++) {
      peer_read(&r, STREAM_MAX);
      socket_status st = socket_write_pending(&r.s);
      FUZZ_CHECK(st != SOCKET_FAILED);
      if (st == SOCKET_DONE && r.got == r.written) break;
    }
    FUZZ_CHECK(r.got == r.written);
    FUZZ_CHECK(r.s.pending == NULL);
  }
  socket_close(&r.s, (size & 1) != 0);
  FUZZ_CHECK(!(r.s.flags & SOCKET_OPEN) && r.s.pending == NULL);
  if (!r.peer_gone) close(r.peer);
  return 0;
}
