#!/usr/bin/env bash
# The C files we own, checked against (or, with --fix, rewritten to) the root .clang-format.
# `npm run format:check` in CI; `npm run format` to apply. Third-party code is not ours to
# format: anything under node_modules/ or build/ is never listed.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null; then
  echo "check-format: $CLANG_FORMAT not found (apt-get install clang-format, or set CLANG_FORMAT)" >&2
  exit 2
fi

# Tracked files only, so build output and scratch files are never touched.
mapfile -t files < <(git ls-files -- 'src/*.c' 'src/*.h' 'test/c/*.c' 'test/c/*.h' \
  'fuzz/*.c' 'fuzz/*.h' 'bench/*.c' 'bench/*.h')
if [ ${#files[@]} -eq 0 ]; then
  echo "check-format: no C files found" >&2
  exit 2
fi

if [ "${1:-}" = "--fix" ]; then
  "$CLANG_FORMAT" -i "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} C files are not formatted as .clang-format says:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "run \`npm run format\` (or clang-format -i FILE) and commit the result;" >&2
  echo "\`clang-format --dry-run FILE\` shows what would change" >&2
  exit 1
fi
echo "check-format: ${#files[@]} C files formatted ($("$CLANG_FORMAT" --version | sed 's/.*version //'))"
