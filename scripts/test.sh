#!/usr/bin/env bash
# Runs every test: starts a private PostgreSQL, installs what the tests need, runs the suite.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh

pg_up test 55432
trap 'pg_down test; dotnet build-server shutdown >/dev/null 2>&1 || true' EXIT
export ConnectionStrings__Postgres="$PG_CONN"
export TEST_PG_CONN="$PG_CONN"

dotnet build PluginApp.sln -c Release -nologo -v q
set +e
dotnet test PluginApp.sln -c Release --no-build -nologo --logger "console;verbosity=normal" >"$ROOT_DIR/.pg/test-output.log" 2>&1
status=$?
set -e
grep -E '^\s*(Failed|Skipped) |^\s*(Passed|Failed)!|error|Error Message' "$ROOT_DIR/.pg/test-output.log" || true
[ "$status" -eq 0 ] || tail -n 200 "$ROOT_DIR/.pg/test-output.log"
passed=0; failed=0
while read -r line; do
  [ -n "$line" ] || continue
  p=$(sed -nE 's/.*Passed: *([0-9]+).*/\1/p' <<<"$line"); f=$(sed -nE 's/.*Failed: *([0-9]+).*/\1/p' <<<"$line")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done < <(grep -E '^\s*(Passed|Failed)!' "$ROOT_DIR/.pg/test-output.log" || true)
echo "tests: $passed passed, $failed failed"
exit "$status"
