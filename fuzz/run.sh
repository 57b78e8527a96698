#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/Makefile) and runs each for FUZZ_SECONDS (default 60) on a
# temporary copy of its seed corpus, so the committed corpus never grows. Prints executions/s,
# executions and coverage per target; exits non-zero on any crash, leak or timeout, keeping
# the reproducer in fuzz/build/artifacts/ (replay: fuzz/build/<target> <artifact>).
#
#   FUZZ_SECONDS=300 bash fuzz/run.sh            all targets
#   FUZZ_TARGETS=fuzz_conn bash fuzz/run.sh      some of them
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-fuzz_frame fuzz_conn fuzz_conn_deflate fuzz_utf8 fuzz_inflate fuzz_http_request fuzz_socket}
build=fuzz/build
artifacts=$build/artifacts

make -s -C fuzz || exit 1
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
printf '%-17s %10s %12s %6s %7s  %s\n' target exec/s executions cov ft result
for t in $targets; do
  case $t in
    fuzz_utf8) max_len=8192 ;;
    # Request heads are small; longer inputs only slow the re-parsing of prefixes.
    fuzz_http_request) max_len=8192 ;;
    *) max_len=65536 ;;
  esac
  mkdir -p "$work/$t"
  cp fuzz/corpus/"$t"/* "$work/$t"/ 2>/dev/null
  log=$build/$t.log
  # -timeout: one input taking over 10 s is a hang; -error_exitcode/-timeout_exitcode keep
  # libFuzzer's own codes out of the way of ours.
  "$build/$t" "$work/$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" >"$log" 2>&1
  rc=$?

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  result=ok
  if [ "$rc" -ne 0 ]; then
    failed=1
    result="FAILED (exit $rc, log $log)"
  fi
  printf '%-17s %10s %12s %6s %7s  %s\n' "$t" "${rate:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$result"
  if [ "$rc" -ne 0 ]; then
    # The sanitizer's verdict, the stack frames in our code, and where the input went.
    grep -E 'ERROR: |SUMMARY: |runtime error|Test unit written|#[0-9]+ .* in [^ ]+ [^ ]*/(fuzz|src)/[^ ]*\.c:' "$log" |
      head -20 | sed 's/^ */    /'
  fi
done
exit $failed
