#!/usr/bin/env bash
# The mocha suite against an AddressSanitizer + UBSan build of the addon.
#
# The addon is built with gcc -fsanitize=address,undefined in a temporary copy of the package
# (binding.gyp, package.json, src/), so build/ (the normal build, which a concurrent `npm test`
# may be using) is never touched and needs no restoring. The suite then runs from the repo with
# WS_NATIVE_PREBUILD pointing node-gyp-build (lib/binding.js) at that copy, and gcc's ASan and
# UBSan runtimes preloaded into node (node itself is not instrumented, so leak detection is
# off). Child processes the tests start (examples, node -e, the Python peer) inherit all of it.
#
# Exits non-zero on a test failure or on any ASan/UBSan report. Every report is fatal (UBSan
# too: -fno-sanitize-recover=all), so a report in mocha's own process ends the run, and one in
# a child process the tests start makes that test fail; the output is also scanned for
# sanitizer reports. (log_path is not used: with both gcc runtimes preloaded into an
# uninstrumented node, reports did not reliably go to its files.)
#
#   bash scripts/asan-mocha.sh                         the suite, minus the exclusions below
#   bash scripts/asan-mocha.sh test/limits.test.js     some files only
#   KEEP_ASAN_BUILD=1 bash scripts/asan-mocha.sh       keep the temporary directory
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Not run under ASan, and why:
#   test/package.test.js  packs the tarball (prepack rebuilds the addon without sanitizers)
#                         and installs it into a fresh app, running npm, node-gyp and the
#                         compiler under the preloaded runtime: it tests packaging, not the
#                         engine, and takes minutes.
#   test/browser.test.js  drives headless Chromium, which does not start with an ASan runtime
#                         preloaded into it (its own allocator and sandbox); the page code it
#                         tests is JavaScript, and its server side is covered by the rest.
#   test/consumers/overrides.test.js  packs the tarball and npm-installs the consumer packages
#                         into a fresh app (as package.test.js), then runs that app's copy of
#                         the addon (the prebuild, not the sanitized build) and Chromium. The
#                         other test/consumers files (socket.io, graphql-ws, fastify,
#                         express-ws in-process) do run under ASan.
excluded=(test/package.test.js test/browser.test.js test/consumers/overrides.test.js)
# Tests that assert on the process's RSS skip that assertion when WS_NATIVE_ASAN is set: under
# ASan, freed memory waits in a quarantine and every allocation carries redzones and shadow
# memory, so RSS measures ASan, not the engine. No test is excluded by title.

CC=${ASAN_JS_CC:-gcc}
asan_rt=$("$CC" -print-file-name=libasan.so)
ubsan_rt=$("$CC" -print-file-name=libubsan.so)
for rt in "$asan_rt" "$ubsan_rt"; do
  if [ ! -e "$rt" ]; then
    echo "asan-mocha: $CC has no sanitizer runtime ($rt); install its libasan/libubsan" >&2
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ws-native-asan.XXXXXX")
if [ -n "${KEEP_ASAN_BUILD:-}" ]; then
  echo "asan-mocha: keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi
pkg=$work/pkg
mkdir -p "$pkg"
cp -r binding.gyp package.json src "$pkg"/

echo "== building the addon with $CC -fsanitize=address,undefined (in $pkg)"
# npm passes ~/.npmrc's nodedir to node-gyp as npm_config_nodedir; when this script runs
# outside npm, ask npm for it, so node-gyp finds the headers without a download.
nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}
gyp_args=(rebuild --loglevel=warn)
if [ -n "$nodedir" ] && [ "$nodedir" != undefined ] && [ "$nodedir" != null ]; then
  gyp_args+=(--nodedir="$nodedir")
fi
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
if ! (cd "$pkg" && CC=$CC CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" \
  node "$root/node_modules/node-gyp/bin/node-gyp.js" "${gyp_args[@]}") >"$work/build.log" 2>&1; then
  cat "$work/build.log"
  echo "asan-mocha: the sanitizer build failed" >&2
  exit 1
fi
addon=$pkg/build/Release/ws_native.node
if ! ldd "$addon" | grep -q libasan; then
  echo "asan-mocha: $addon is not linked with libasan" >&2
  exit 1
fi

export WS_NATIVE_PREBUILD=$pkg   # node-gyp-build: load $pkg/build/Release first
export WS_NATIVE_ASAN=1          # tests skip what ASan makes meaningless (RSS checks)
export LD_PRELOAD="$asan_rt:$ubsan_rt${LD_PRELOAD:+:$LD_PRELOAD}"
# handle_segv=0 / allow_user_segv_handler=1: V8 installs its own SIGSEGV handler (WebAssembly
# bounds checks); ASan must leave it alone.
export ASAN_OPTIONS="detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

# The suite must really load the sanitized addon.
if ! node -e '
  require(".");
  const maps = require("fs").readFileSync("/proc/self/maps", "utf8");
  if (!maps.includes(process.argv[1])) { console.error("loaded another addon"); process.exit(1); }
' "$addon"; then
  echo "asan-mocha: node did not load $addon" >&2
  exit 1
fi

echo "== mocha under ASan + UBSan (excluded: ${excluded[*]})"
ignore=()
for f in "${excluded[@]}"; do ignore+=(--ignore "$f"); done
log=$work/mocha.log
if [ $# -gt 0 ]; then
  node node_modules/mocha/bin/mocha.js --timeout 60000 --no-config \
    --reporter "$root/test/support/summary-reporter.js" "$@" 2>&1 | tee "$log"
else
  node node_modules/mocha/bin/mocha.js --timeout 60000 "${ignore[@]}" 2>&1 | tee "$log"
fi
rc=${PIPESTATUS[0]}

pattern='ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer'
if grep -Eq "$pattern" "$log"; then
  echo "== sanitizer reports"
  grep -E -A30 "$pattern" "$log" | head -200
  echo "asan-mocha: FAILED: sanitizer report(s) above (mocha exit status $rc)"
  exit 1
fi
if [ "$rc" -ne 0 ]; then
  echo "asan-mocha: FAILED: mocha exited with $rc"
  exit "$rc"
fi
echo "asan-mocha: passed, no sanitizer reports"
