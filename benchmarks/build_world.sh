#!/usr/bin/env bash
# A scored full-scale world for the app and API benchmarks: one year of the utility's book generated,
# run through every stage the way the README runs them, in SPANISHGAS_DATA_ROOT (default data/bench-app).
#   bash benchmarks/build_world.sh            # about half an hour on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
export SPANISHGAS_DATA_ROOT="${SPANISHGAS_DATA_ROOT:-data/bench-app}"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
sg=.venv/bin/spanishgas
step() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; "$@"; }
step $sg generate --customers 20099 --start 2024-01-01 --end 2024-12-31 --out "$SPANISHGAS_DATA_ROOT/raw" \
  --truth "$SPANISHGAS_DATA_ROOT/truth" --overwrite
step $sg bronze
step $sg silver
step $sg gold
step $sg features load
step $sg features apply
step $sg features materialize
step $sg train --trials 10
step $sg promote --floor 0 --reason "benchmark world"
step $sg segment
step $sg recommend --budget 50000
step $sg monitor --no-push
date -u +%H:%M:%S
