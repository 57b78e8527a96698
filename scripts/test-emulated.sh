#!/usr/bin/env bash
# The mocha suite on another platform's official Node binary, emulated here, against that
# platform's prebuild (made by scripts/prebuild-all.js into a temporary folder and loaded
# through WS_NATIVE_PREBUILD, so build/ and prebuilds/ stay as they are):
#
#   bash scripts/test-emulated.sh linux-arm64 [native|stream|both] [mocha args]   (qemu-user)
#   bash scripts/test-emulated.sh win32-x64 [stream] [mocha args]                 (wine)
#
# Each run prints the reporter's 'js: N passed, N failed, N skipped' line, prefixed with the
# platform and transport. Under wine, what cannot run there is left out, and said so:
#   - the native transport: Windows has none (Node gives an addon no socket descriptor);
#   - test/package.test.js and test/consumers/overrides.test.js: they run npm (a Linux
#     program) and the Linux toolchains; the tarball's win32 binary is tested by
#     package.test.js on Linux, with node.exe under wine;
#   - test/browser.test.js and test/redis.test.js: they start Linux programs (chromium,
#     redis-server), which a Windows process under wine cannot run; test/client.test.js skips
#     its Python peer by itself for the same reason.
set -uo pipefail
cd "$(dirname "$0")/.."

platform=${1:?usage: test-emulated.sh linux-arm64|win32-x64 [native|stream|both] [mocha args]}
shift
transports=${1:-}
[ $# -gt 0 ] && shift
case $platform in
  linux-arm64) target=linux-arm64-glibc; transports=${transports:-both} ;;
  win32-x64) target=win32-x64; transports=${transports:-stream} ;;
  *) echo "unknown platform $platform" >&2; exit 2 ;;
esac
[ "$transports" = both ] && transports="native stream"
if [ "$platform" = win32-x64 ] && [ "$transports" != stream ]; then
  echo "win32-x64 has only the stream transport" >&2
  exit 2
fi

bash scripts/install-emulators.sh || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
WS_NATIVE_PREBUILD_OUT=$work node scripts/prebuild-all.js "$target" || exit 1
node_bin=$(node -e "process.stdout.write(require('./scripts/platforms').nodeBinary('$platform'))") || exit 1

failed=0
for transport in $transports; do
  log=$work/mocha-$platform-$transport.log
  started=$(date +%s)
  if [ "$platform" = linux-arm64 ]; then
    # binfmt_misc runs the arm64 node (and every node the tests start) through qemu.
    WS_NATIVE_PREBUILD=$work WS_NATIVE_TRANSPORT=$transport \
      "$node_bin" node_modules/mocha/bin/mocha.js --timeout 120000 "$@" >"$log" 2>&1
    rc=$?
  else
    # node.exe under wine cannot write to a pipe (EBADF): its output goes to a file.
    WINEDEBUG=-all NODE_SKIP_PLATFORM_CHECK=1 WS_NATIVE_PREBUILD=$work WS_NATIVE_TRANSPORT=$transport \
      WS_NATIVE_SKIP_BROWSER=1 WS_NATIVE_SKIP_REDIS=1 \
      wine "$node_bin" node_modules/mocha/bin/mocha.js --timeout 120000 \
      --ignore test/package.test.js --ignore test/consumers/overrides.test.js --ignore test/browser.test.js --ignore test/redis.test.js \
      "$@" >"$log" 2>&1 </dev/null
    rc=$?
  fi
  # Failures and pending tests in full, then the count.
  grep -nE '^\s+[0-9]+\) |^\s+- |Error|AssertionError' "$log" | grep -v '^\s*$' | head -60
  summary=$(grep -E '^js: [0-9]+ passed' "$log" | tail -1)
  echo "$platform ($transport transport, $(( $(date +%s) - started )) s) ${summary:-no summary: exit $rc}"
  if [ "$rc" -ne 0 ] || [ -z "$summary" ]; then
    failed=1
    tail -40 "$log"
    kept="${TMPDIR:-/tmp}/ws-native-mocha-$platform-$transport.log"
    cp "$log" "$kept" 2>/dev/null && echo "(the whole log: $kept)"
  fi
done
exit $failed
