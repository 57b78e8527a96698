#!/usr/bin/env bash
# The fuzz targets on arm64 under qemu-user, where the NEON kernels run (mask.c's unmasking
# through fuzz_frame, utf8.c's validator through fuzz_utf8; both also drive the scalar paths
# they are compared with). libFuzzer has no arm64 runtime in Debian's clang, so the targets are
# linked with fuzz/standalone.c (a mutating driver over the seed corpus) by the cross gcc, with
# ASan and UBSan linked statically (leak checking off: LeakSanitizer cannot stop the world
# under qemu). Exits non-zero on any failed check or sanitizer report.
#
#   FUZZ_SECONDS=60 bash scripts/fuzz-emulated.sh                 fuzz_utf8 and fuzz_frame
#   FUZZ_TARGETS="fuzz_conn fuzz_inflate" bash scripts/fuzz-emulated.sh
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-fuzz_utf8 fuzz_frame}
bash scripts/install-emulators.sh || exit 1
make -s -C fuzz standalone STANDALONE_CC=aarch64-linux-gnu-gcc BUILD_TAG=arm64 \
  LDFLAGS="-static-libasan -static-libubsan" || exit 1

failed=0
out=fuzz/build/standalone-arm64
for t in $targets; do
  (cd "$out" && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    qemu-aarch64-static "./$t" "$seconds" "${FUZZ_SEED:-$RANDOM}" "../../corpus/$t") || {
    failed=1
    echo "$t (arm64): FAILED; the input is in $out/crash-$t-*"
  }
done
exit $failed
