#!/usr/bin/env bash
# Compare rdbkit's read throughput and memory with redis-check-rdb on one file.
#
#   scripts/compare.sh [FILE] [RUNS]
#
# FILE defaults to target/bench-data/redis-7.0-100M.rdb (make it with `.venv/bin/python scripts/bench-data.py`),
# RUNS to 3. Every tool/task runs RUNS times on a warm page cache; the table shows the best time and the largest
# peak RSS (from /usr/bin/time). rdbkit is measured with examples/throughput.rs (release build); its MB/s come from
# its own timer (excludes process start), redis-check-rdb's from wall time. MB = 10^6 bytes. "ratio" is MB/s
# relative to redis-check-rdb, which loads every value into server objects and checks the CRC (closest to
# rdbkit's `full`). The mmap modes' RSS includes the file's mapped pages; `stream` does not map the file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FILE="${1:-$ROOT/target/bench-data/redis-7.0-100M.rdb}"
RUNS="${2:-3}"
CHECK_RDB="${REDIS_CHECK_RDB:-/usr/bin/redis-check-rdb}"
STREAM_RSS_LIMIT_MIB=64

die() { echo "compare.sh: $*" >&2; exit 1; }
[[ -f "$FILE" ]] || die "$FILE missing; create it with: .venv/bin/python scripts/bench-data.py"
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing: apt-get install -y time"
[[ -x "$CHECK_RDB" ]] || die "$CHECK_RDB missing: apt-get install -y redis-tools"

(cd "$ROOT" && cargo build -q --release --no-default-features --example throughput)
THROUGHPUT="$ROOT/target/release/examples/throughput"
BYTES="$(stat -c %s "$FILE")"
cat "$FILE" >/dev/null # warm the page cache

# run_timed OUT CMD...: runs CMD under /usr/bin/time; sets WALL (s), RSS_KB and leaves stdout in OUT.
run_timed() {
  local out="$1" tf t0 t1
  shift
  tf="$(mktemp)"
  t0="$(date +%s.%N)"
  /usr/bin/time -v -o "$tf" "$@" >"$out" 2>&1 || { cat "$out" >&2; rm -f "$tf"; die "failed: $*"; }
  t1="$(date +%s.%N)"
  WALL="$(echo "$t1 - $t0" | bc -l)"
  RSS_KB="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")"
  rm -f "$tf"
}

ROWS=()
REF_MBS=""
STREAM_RSS_KB=0

# measure TOOL TASK KIND CMD...: KIND is "wall" (MB/s from wall time) or "self" (from the program's secs=).
measure() {
  local tool="$1" task="$2" kind="$3" best="" rss=0 secs out i
  shift 3
  out="$(mktemp)"
  for ((i = 0; i < RUNS; i++)); do
    run_timed "$out" "$@"
    if [[ "$kind" == self ]]; then
      secs="$(grep -o 'secs=[0-9.]*' "$out" | cut -d= -f2)"
    else
      secs="$WALL"
    fi
    if [[ -z "$best" ]] || (( $(echo "$secs < $best" | bc -l) )); then best="$secs"; fi
    (( RSS_KB > rss )) && rss="$RSS_KB"
  done
  rm -f "$out"
  local mbs ratio
  mbs="$(echo "$BYTES / $best / 1000000" | bc -l)"
  [[ -n "$REF_MBS" ]] || REF_MBS="$mbs"
  ratio="$(echo "$mbs / $REF_MBS" | bc -l)"
  [[ "$task" == stream* ]] && STREAM_RSS_KB="$rss"
  ROWS+=("$(printf '| %s | %s | %.0f | %.1f MiB | %.2f× |' "$tool" "$task" "$mbs" "$(echo "$rss / 1024" | bc -l)" "$ratio")")
  echo "compare.sh: $tool $task: best ${best}s, peak RSS ${rss} KiB" >&2
}

measure redis-check-rdb "load + verify (CRC)" wall "$CHECK_RDB" "$FILE"
measure rdbkit "full (mmap, deep, to_owned_value)" self "$THROUGHPUT" "$FILE" full
measure rdbkit "verify (mmap, deep, walk)" self "$THROUGHPUT" "$FILE" verify
measure rdbkit "keys (mmap, fast, CRC)" self "$THROUGHPUT" "$FILE" keys
measure rdbkit "keys (mmap, fast, no CRC)" self "$THROUGHPUT" "$FILE" keys-nocrc
measure rdbkit "stream (BufReader, deep, to_owned_value)" self "$THROUGHPUT" "$FILE" stream

echo
echo "File: \`$(basename "$FILE")\`, $BYTES bytes; best of $RUNS; MB = 10^6 bytes; ratio = MB/s ÷ redis-check-rdb's."
echo
echo "| tool | task | MB/s | peak RSS | ratio |"
echo "|---|---|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
stream_mib="$(echo "$STREAM_RSS_KB / 1024" | bc -l)"
if (( STREAM_RSS_KB < STREAM_RSS_LIMIT_MIB * 1024 )); then
  printf 'Streaming reader peak RSS: %.1f MiB (< %d MiB: ok)\n' "$stream_mib" "$STREAM_RSS_LIMIT_MIB"
else
  printf 'Streaming reader peak RSS: %.1f MiB (over the %d MiB budget)\n' "$stream_mib" "$STREAM_RSS_LIMIT_MIB"
  exit 1
fi
