#!/usr/bin/env bash
# Everything this machine can test of the other platforms (npm run test:platforms; CI runs it):
# the six prebuilds built and statically checked, the C tests for arm64 (qemu) and musl, the
# fuzz targets on arm64 (qemu), and the mocha suite on linux-arm64 (qemu, both transports)
# and win32-x64 (wine, stream transport). PLATFORM_STEPS picks some:
#   PLATFORM_STEPS="binaries c fuzz arm64 win32" bash scripts/test-platforms.sh
set -uo pipefail
cd "$(dirname "$0")/.."
steps=${PLATFORM_STEPS:-binaries c fuzz arm64 win32}
failed=0
step() { echo "== $1 ($(date +%T))"; }
for s in $steps; do
  case $s in
    binaries) step "prebuilds for six targets, and their static checks"
      node scripts/prebuild-all.js && node scripts/check-binaries.js || failed=1 ;;
    c) step "C tests on linux-arm64 and musl"
      bash scripts/test-c-platforms.sh || failed=1 ;;
    fuzz) step "fuzz targets on linux-arm64 (NEON)"
      FUZZ_SECONDS=${FUZZ_SECONDS:-15} bash scripts/fuzz-emulated.sh || failed=1 ;;
    arm64) step "mocha suite on linux-arm64 under qemu"
      bash scripts/test-emulated.sh linux-arm64 both || failed=1 ;;
    win32) step "mocha suite on win32-x64 under wine"
      bash scripts/test-emulated.sh win32-x64 stream || failed=1 ;;
    *) echo "unknown step $s"; failed=1 ;;
  esac
done
exit $failed
