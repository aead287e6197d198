#!/usr/bin/env bash
# The test command: static checks, then the same tests on Deno and on Bun.
# Ends with one line, the total over every runtime: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_COLOR=1
deno=node_modules/.bin/deno
bun=node_modules/.bin/bun
[ -x "$deno" ] && [ -x "$bun" ] || { echo "Run npm ci first (Deno and Bun come from npm)." >&2; exit 2; }

passed=0
failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

check() { # name, command...
  local name=$1
  shift
  if "$@" >"$log/check" 2>&1; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    tail -n 20 "$log/check"
    failed=$((failed + 1))
  fi
}

echo "== static checks"
check "deno fmt --check" "$deno" fmt --check
check "deno lint" "$deno" lint
check "deno check" "$deno" check mod.ts testing.ts storage.ts storage/ lib/ serve/ plan/ tests/ examples/ bench/ cli.ts cli/ scripts/
check "deno doc --lint" "$deno" doc --lint mod.ts testing.ts storage.ts
check "deno test --doc (every example in the docs)" "$deno" test --doc mod.ts testing.ts lib/*.ts
# The storage entry's examples write to a folder: type-checked, not run (tests/storage_*_test.ts run the real thing).
check "deno check --doc (the storage entry's examples)" "$deno" check --doc storage.ts storage/
# Type-checks every ```ts block of the README as written (imports of @tally/analytics resolve through deno.json).
check "deno check --doc-only README.md (every ts block in the README)" "$deno" check --doc-only README.md
check "deno publish --dry-run" "$deno" publish --dry-run --allow-dirty

echo "== deno test"
"$deno" test --allow-net=127.0.0.1 --allow-run --allow-read --allow-write --allow-env tests/ 2>&1 | tee "$log/deno"
line=$(grep -E '^(ok|FAILED) \| ' "$log/deno" | tail -n 1)
p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
[ -n "$line" ] || f=$((f + 1)) # the runner itself broke
echo "deno: ${p:-0} passed, ${f:-0} failed"
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))

echo "== bun test"
"$bun" test --timeout 30000 tests/ 2>&1 | tee "$log/bun"
p=$(grep -E '^ *[0-9]+ pass$' "$log/bun" | tail -n 1 | grep -oE '[0-9]+')
f=$(grep -E '^ *[0-9]+ fail$' "$log/bun" | tail -n 1 | grep -oE '[0-9]+')
[ -n "$p" ] || f=$((${f:-0} + 1))
echo "bun: ${p:-0} passed, ${f:-0} failed"
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))

echo "== tally binary (the CLI tests against the compiled executable)"
if "$deno" run --allow-run --allow-read --allow-write --allow-env scripts/compile.ts 2>&1 | tee "$log/compile" &&
  [ "${PIPESTATUS[0]}" -eq 0 ]; then
  TALLY_BIN=./tally "$bun" test --timeout 30000 tests/cli_test.ts tests/cli_hostile_test.ts 2>&1 | tee "$log/bin"
  p=$(grep -E '^ *[0-9]+ pass$' "$log/bin" | tail -n 1 | grep -oE '[0-9]+')
  f=$(grep -E '^ *[0-9]+ fail$' "$log/bin" | tail -n 1 | grep -oE '[0-9]+')
  [ -n "$p" ] || f=$((${f:-0} + 1))
else
  p=0 f=1
fi
echo "binary: ${p:-0} passed, ${f:-0} failed"
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))

count() { # label, log file, pass pattern, fail pattern
  local p f
  p=$(grep -oE "$3" "$2" | tail -n 1 | grep -oE '[0-9]+')
  f=$(grep -oE "$4" "$2" | tail -n 1 | grep -oE '[0-9]+')
  [ -n "$p" ] || f=$((${f:-0} + 1)) # the runner itself broke
  echo "$1: ${p:-0} passed, ${f:-0} failed"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
}

echo "== node test (the npm build: tsc, package.json, publint, attw, then the tests under Node)"
# The version is deno.json's (build_npm.ts reads it when given none).
"$deno" run -A scripts/build_npm.ts 2>&1 | tee "$log/node"
rc=${PIPESTATUS[0]}
count node "$log/node" '^# pass [0-9]+$' '^# fail [0-9]+$'
if [ "$rc" -ne 0 ] && ! grep -qE '^# fail [1-9]' "$log/node"; then
  echo "FAIL the npm build itself (exit $rc)"
  failed=$((failed + 1))
fi

echo "== consumers (the packed tarball in Node, Bun, Deno and workerd)"
"$deno" run -A scripts/consumers.ts --no-build 2>&1 | tee "$log/consumers"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log/consumers" | tail -n 1)
echo "$line" >"$log/consumers.total"
count consumers "$log/consumers.total" '^[0-9]+ passed' '[0-9]+ failed$'

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
