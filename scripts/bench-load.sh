#!/usr/bin/env bash
# Loading a dump into a live Redis 7.0 (issue 12): `rdbkit load` beside `rdbkit dump --format resp | redis-cli
# --pipe` and beside the server loading the file itself at start-up (the ceiling). Best of N runs each, a fresh
# server per run, DBSIZE checked after each.
#
#   scripts/bench-load.sh [FILE] [RUNS]     (FILE defaults to target/bench-data/redis-7.0-100M.rdb; RUNS to 3)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FILE="${1:-$ROOT/target/bench-data/redis-7.0-100M.rdb}"
RUNS="${2:-3}"
RDBKIT="${RDBKIT:-$ROOT/target/release/rdbkit}"
SERVERS="$ROOT/scripts/servers.sh"
CLI="$("$SERVERS" cli)"
PORT="${RDBKIT_BENCH_PORT:-8560}"
[[ -f "$FILE" ]] || { echo "no $FILE: build it with .venv/bin/python scripts/bench-data.py" >&2; exit 1; }
[[ -x "$RDBKIT" ]] || (cd "$ROOT" && cargo build --release --quiet)
TMP="$(mktemp -d)"; trap '"$SERVERS" stop "$TMP/s" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
# Keys in every database (INFO keyspace).
keys() { timeout 10 "$CLI" -p "$PORT" info keyspace | sed -n 's/^db[0-9]*:keys=\([0-9]*\),.*/\1/p' | paste -sd+ | bc; }
best() { sort -n | head -1; }
now() { date +%s.%N; }
fresh() { "$SERVERS" stop "$TMP/s" >/dev/null 2>&1 || true; rm -rf "$TMP/s"; mkdir -p "$TMP/s"; [[ -n "${1:-}" ]] && cp "$1" "$TMP/s/dump.rdb"; "$SERVERS" start redis-7.0 "$PORT" "$TMP/s" >/dev/null; }
bytes=$(stat -c %s "$FILE")
echo "file: $FILE ($bytes bytes)"
want=""
for what in startup load pipe; do
  times=()
  for _ in $(seq "$RUNS"); do
    case $what in
      startup) t0=$(now); fresh "$FILE"; t1=$(now) ;;
      load) fresh; t0=$(now); "$RDBKIT" load "$FILE" --to "redis://127.0.0.1:$PORT" -q >/dev/null; t1=$(now) ;;
      pipe) fresh; t0=$(now); "$RDBKIT" dump "$FILE" --format resp -q | timeout 600 "$CLI" -p "$PORT" --pipe >/dev/null; t1=$(now) ;;
    esac
    n=$(keys); want="${want:-$n}"
    [[ "$n" == "$want" ]] || { echo "$what: $n keys, expected $want" >&2; exit 1; }
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  t=$(printf '%s\n' "${times[@]}" | best)
  printf '%-8s best %6.2f s  %8.0f keys/s  %6.1f MB/s  (runs: %s)\n' "$what" "$t" "$(echo "$want / $t" | bc -l)" \
    "$(echo "$bytes / $t / 1000000" | bc -l)" "${times[*]}"
done
