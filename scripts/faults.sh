#!/usr/bin/env bash
# The fault-injection tests (tests/faults.rs) as a longer job: on the ~100 MB benchmark dump written by a real
# Redis (scripts/bench-data.py, generated if missing), with a release build and ROUNDS times the kill rounds.
#
#   scripts/faults.sh [ROUNDS]        # default 4; DUMP=FILE to use another input
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-4}
DUMP=${DUMP:-target/bench-data/redis-7.0-100M.rdb}
[ -f "$DUMP" ] || .venv/bin/python scripts/bench-data.py
RDBKIT_FAULTS_INPUT="$PWD/$DUMP" RDBKIT_FAULTS_ROUNDS="$ROUNDS" \
  cargo test --release --test faults -- --test-threads 1 --nocapture
