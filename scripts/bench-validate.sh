#!/usr/bin/env bash
# Validated writing commands against `verify` on one file: best of N wall-clock runs of each, in MB/s of input.
#
#   scripts/bench-validate.sh [FILE] [N]     # default target/bench-data/redis-7.0-100M.rdb, N=5
#
# Outputs go to a scratch directory beside FILE (written and synced, as in real use) and are removed after.
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=${1:-target/bench-data/redis-7.0-100M.rdb}
N=${2:-5}
BIN=target/release/rdbkit
[ -x "$BIN" ] || cargo build --release -q
OUT=$(mktemp -d "$(dirname "$FILE")/.bench-validate.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
SIZE=$(stat -c %s "$FILE")
best() {
  local name=$1; shift
  local b=
  for _ in $(seq "$N"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    local ns=$((t1 - t0))
    if [ -z "$b" ] || [ "$ns" -lt "$b" ]; then b=$ns; fi
  done
  printf '%-40s %8.3f s %8.0f MB/s\n' "$name" "$(echo "$b / 1000000000" | bc -l)" "$(echo "$SIZE * 1000 / $b" | bc -l)"
}
echo "$FILE: $SIZE bytes, best of $N"
best "verify" "$BIN" verify "$FILE"
best "convert (validated)" "$BIN" convert -q "$FILE" -o "$OUT/c.rdb"
best "convert --no-validate" "$BIN" convert -q --no-validate "$FILE" -o "$OUT/c.rdb"
best "split --shards 3 (validated)" "$BIN" split -q "$FILE" --out-dir "$OUT/s" --shards 3
best "split --shards 3 --no-validate" "$BIN" split -q --no-validate "$FILE" --out-dir "$OUT/s" --shards 3
