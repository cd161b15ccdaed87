#!/usr/bin/env bash
# Runs every test: starts a private PostgreSQL, installs what the tests need, runs the suite.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT_DIR"
source scripts/lib/dotnet.sh
source scripts/lib/postgres.sh
source scripts/lib/browser.sh

# The storefront: Theme Check on the theme extension (fails the run), tools and browser for its tests.
browser_ensure_installed
theme_tools_install
theme_check
admin_css_check

# TEST_PG_PORT lets a second checkout run its suite beside this one.
pg_up test "${TEST_PG_PORT:-55432}"
trap 'pg_down test; dotnet build-server shutdown >/dev/null 2>&1 || true' EXIT
export ConnectionStrings__Postgres="$PG_CONN"
export TEST_PG_CONN="$PG_CONN"

dotnet build PluginApp.sln -c Release -nologo -v q
set +e
dotnet test PluginApp.sln -c Release --no-build -nologo --logger "console;verbosity=normal" >"$ROOT_DIR/.pg/test-output.log" 2>&1
status=$?
set -e
# On failure the log's tail comes first and the failing tests last, so a reader that keeps only the end still sees them.
[ "$status" -eq 0 ] || tail -n 200 "$ROOT_DIR/.pg/test-output.log"
grep -E '^\s+Failed [A-Za-z]|^\s+Error Message|^Test Run|^Total tests|^\s+(Passed|Failed|Skipped): *[0-9]+$' "$ROOT_DIR/.pg/test-output.log" || true
if [ "$status" -ne 0 ]; then
  echo "---- failing tests, with their messages and stacks ----"
  awk '/^[[:space:]]+Failed [A-Za-z]/ {show = 1; n = 0} show && n < 40 {print; n++} /^[[:space:]]+(Passed|Skipped) [A-Za-z]/ {show = 0}' "$ROOT_DIR/.pg/test-output.log" | grep -vE '^(info|warn|dbug):|^      [A-Z]' | head -n 120
fi
passed=$(awk '/^[[:space:]]+Passed: *[0-9]+$/ {n += $2} END {print n + 0}' "$ROOT_DIR/.pg/test-output.log")
failed=$(awk '/^[[:space:]]+Failed: *[0-9]+$/ {n += $2} END {print n + 0}' "$ROOT_DIR/.pg/test-output.log")
echo "tests: $passed passed, $failed failed"
exit "$status"
