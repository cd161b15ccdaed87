#!/usr/bin/env bash
# Replays a shared data set into a running app as signed webhooks (or writes it as bulk-operation JSONL).
# Usage: scripts/replay.sh --url http://127.0.0.1:5080 --secret S --shop demo-store.myshopify.com
#          [--dataset online-retail|fraud] [--rate 200] [--from 2011-01-01 --to 2011-02-01 | --max-invoices N]
#          [--seed 7] [--labels-out path.csv] [--jsonl-out DIR] [--data DIR] [--concurrency 8]
# The data is read in place from ../shared/data (relative to the repo root) unless --data is given.
set -euo pipefail
source "$(dirname "$0")/lib/dotnet.sh"
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
DATA_DIR="$(cd "$ROOT_DIR/.." && pwd)/shared/data"
for arg in "$@"; do [ "$arg" = "--data" ] && DATA_DIR=""; done

dotnet build "$ROOT_DIR/scripts/replay/ReplayCli/ReplayCli.csproj" -c Release -nologo -v q >/dev/null
exec dotnet "$ROOT_DIR/scripts/replay/ReplayCli/bin/Release/net10.0/ReplayCli.dll" ${DATA_DIR:+--data "$DATA_DIR"} "$@"
