#!/usr/bin/env bash
# The C unit tests (test/c) cross-built for the other Linux targets: arm64 with Debian's cross
# gcc, run under qemu-user (the NEON kernels against the scalar paths and the references), and
# x86-64 musl with musl-gcc (zlib, which musl lacks here, linked from Debian's static libz.a;
# its header from Node's headers). Each binary prints its 'N passed, N failed' line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-emulators.sh || exit 1
node_include=$(node -e "process.stdout.write(require('./scripts/platforms').nodeInclude())") || exit 1
failed=0
echo "== C tests, linux-arm64 (aarch64-linux-gnu-gcc, qemu-aarch64-static)"
make -s -C test/c check CC=aarch64-linux-gnu-gcc EXEC=qemu-aarch64-static BUILD_TAG=arm64 || failed=1
echo "== C tests, linux-x64 musl (musl-gcc, static)"
make -s -C test/c check CC=musl-gcc BUILD_TAG=musl CPPFLAGS="-idirafter $node_include" \
  LDFLAGS=-static LDLIBS=/usr/lib/x86_64-linux-gnu/libz.a || failed=1
exit $failed
