#!/usr/bin/env bash
# Builds MlBench (Release) and runs it with XGBoost (Debian python3-xgboost) side by side.
# Usage: scripts/bench/ml.sh [mode] [--options]   (no arguments: every benchmark on ../shared/data)
# Modes and options: scripts/bench/ml.sh --help
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
source scripts/lib/dotnet.sh
dotnet build scripts/bench/MlBench/MlBench.csproj -c Release -nologo -v q >/dev/null
if ! /usr/bin/python3 -c 'import xgboost' 2>/dev/null; then
  echo "installing python3-xgboost" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq >&2 && apt-get install -y -qq python3-xgboost >&2
  else sudo apt-get update -qq >&2 && sudo apt-get install -y -qq python3-xgboost >&2; fi
fi
exec dotnet scripts/bench/MlBench/bin/Release/net10.0/MlBench.dll --xgb scripts/bench/xgb_compare.py "$@"
