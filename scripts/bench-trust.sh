#!/usr/bin/env bash
# What validation costs: the CLI's reading and writing commands on one file, with and without deep validation
# (the duplicate-key check included), beside redis-check-rdb. Best wall time of RUNS, largest peak RSS.
#
#   scripts/bench-trust.sh [FILE] [RUNS]
#
# FILE defaults to target/bench-data/redis-7.0-100M.rdb (`.venv/bin/python scripts/bench-data.py`), RUNS to 5.
# MB = 10^6 bytes; MB/s is the file size over the best wall time (process start included, page cache warm;
# outputs go to a directory under target/, fsynced as rdbkit always does).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FILE="${1:-$ROOT/target/bench-data/redis-7.0-100M.rdb}"
RUNS="${2:-5}"
CHECK_RDB="${REDIS_CHECK_RDB:-/usr/bin/redis-check-rdb}"
die() { echo "bench-trust.sh: $*" >&2; exit 1; }
[[ -f "$FILE" ]] || die "$FILE missing; create it with: .venv/bin/python scripts/bench-data.py"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing: apt-get install -y time"
[[ -x "$CHECK_RDB" ]] || die "$CHECK_RDB missing: apt-get install -y redis-tools"

(cd "$ROOT" && cargo build -q --release)
BIN="$ROOT/target/release/rdbkit"
BYTES="$(stat -c %s "$FILE")"
OUT="$ROOT/target/bench-trust"
rm -rf "$OUT" && mkdir -p "$OUT"
cat "$FILE" >/dev/null

# measure NAME CMD...: best wall time and largest peak RSS of RUNS runs; prints a table row.
measure() {
  local name="$1" best="" rss=0 i tf t0 t1 wall r
  shift
  for ((i = 0; i < RUNS; i++)); do
    rm -rf "$OUT/o" && mkdir -p "$OUT/o"
    tf="$(mktemp)"
    t0="$(date +%s.%N)"
    /usr/bin/time -v -o "$tf" "$@" >/dev/null 2>"$OUT/stderr" || { cat "$OUT/stderr" >&2; die "failed: $*"; }
    t1="$(date +%s.%N)"
    wall="$(echo "$t1 - $t0" | bc -l)"
    r="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")"
    rm -f "$tf"
    if [[ -z "$best" ]] || (($(echo "$wall < $best" | bc -l))); then best="$wall"; fi
    ((r > rss)) && rss="$r"
  done
  printf '| %s | %.3f s | %.0f MB/s | %.1f MiB |\n' "$name" "$best" "$(echo "$BYTES / $best / 1000000" | bc -l)" \
    "$(echo "$rss / 1024" | bc -l)"
}

echo "file: $FILE ($BYTES bytes), best of $RUNS, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| command | best wall | rate | peak RSS |"
echo "|---|---:|---:|---:|"
measure "redis-check-rdb" "$CHECK_RDB" "$FILE"
measure "rdbkit verify" "$BIN" verify "$FILE"
measure "rdbkit verify --no-duplicate-check" "$BIN" verify --no-duplicate-check "$FILE"
measure "rdbkit info" "$BIN" info "$FILE"
measure "rdbkit dump --format json" "$BIN" dump "$FILE" --format json
measure "rdbkit dump --format json --no-validate" "$BIN" dump "$FILE" --format json --no-validate
measure "rdbkit convert" "$BIN" convert "$FILE" -o "$OUT/o/c.rdb" --quiet
measure "rdbkit convert --no-validate" "$BIN" convert "$FILE" -o "$OUT/o/c.rdb" --quiet --no-validate
measure "rdbkit split --shards 3" "$BIN" split "$FILE" --shards 3 --out-dir "$OUT/o" --quiet
measure "rdbkit split --shards 3 --no-validate" "$BIN" split "$FILE" --shards 3 --out-dir "$OUT/o" --quiet --no-validate
