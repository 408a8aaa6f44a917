#!/usr/bin/env bash
# Compare rdbkit's CLI with the other tools that do the same jobs, on the same files in the same run.
#
#   scripts/compare-peers.sh [FILE...]
#
# FILE... defaults to target/bench-data/redis-7.0-100M.rdb (RDB 10) and target/bench-data/redis-6.2-100M.rdb
# (RDB 9); missing defaults are generated with scripts/bench-data.py (needs .venv, see scripts/servers.sh).
# Prints one Markdown report and writes it to target/bench-results/peers.md. Progress goes to stderr.
#
# Tools and tasks (each run RUNS times, sequentially, warm page cache; best wall time, largest peak RSS):
#   verify  rdbkit verify            | redis-check-rdb FILE (Debian redis-tools; loads every value, checks CRC)
#                                    | rdb crate: rdb --format nil (its fastest mode; no CRC check, skips streams)
#                                    | redis-server 7.0 loading FILE as dump.rdb: start until PING answers PONG
#                                      and INFO persistence shows loading:0 (peak RSS of the server)
#   info    rdbkit info
#   json    rdbkit dump --format json | rdb --format json | rdbtools: rdb --command json
#   resp    rdbkit dump --format resp | rdb --format protocol | rdbtools: rdb --command protocol
#   convert rdbkit convert F -o OUT (same version), and F -o OUT --rdb-version 9 --lossy (RDB 10+ inputs only)
#   split   rdbkit split F --out-dir D --shards 3
#   export  rdbkit export F --prefix p --out-dir D --blob gzip
# All output goes to /dev/null or to a scratch directory under target/peers/ that is emptied before each run.
# The `rdb` crate writes through stdout (its -o FILE is unbuffered and much slower); rdbtools gets python-lzf.
#
# Then, if BIG exists: rdbkit verify / convert / dump json / split / export gzip (and redis-check-rdb) on it, and a
# memory table (the same commands) against the first
# FILE (peak RSS, plus peak RssAnon / RssFile sampled from /proc in one extra run); and rdbkit verify of the first two FILEs (or the first one twice) concurrently vs one after the other.
#
# Environment: RUNS (default 3); BIG (default target/bench-data/redis-7.0-1G.rdb, empty to skip; make it with
# `.venv/bin/python scripts/bench-data.py --size 1G`); OUT_MD (default target/bench-results/peers.md);
# QUIET_LOAD / QUIET_WAIT (default 1.5 / 30: before each row, wait up to QUIET_WAIT s for a 1-minute load
# average below QUIET_LOAD, since other builds share the machine); SKIP (space-separated tools to leave out:
# redis-check-rdb rdb-crate rdbtools redis-server scaling).
# Peers are installed once into target/peers (cargo install rdb) and .venv (pip install rdbtools python-lzf).
#
# Columns: MB/s = input bytes / best wall time / 10^6 (wall time includes process start); peak RSS from
# /usr/bin/time (maximum resident set size; rdbkit reads files into buffers, so its RSS is its own memory);
# ratio = that tool's best wall ÷ rdbkit's best wall for the same task on the same file (> 1: rdbkit faster);
# cpu s = smallest user+system time of the runs; load = 1-minute load average just before the row's first run.
# A tool that exits non-zero shows "fails" and its first error line (the last line of a Python traceback).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${RUNS:-3}"
BIG="${BIG-$ROOT/target/bench-data/redis-7.0-1G.rdb}"
OUT_MD="${OUT_MD:-$ROOT/target/bench-results/peers.md}"
SKIP=" ${SKIP:-} "
PEERS="$ROOT/target/peers"
VENV="$ROOT/.venv"
CHECK_RDB="${REDIS_CHECK_RDB:-/usr/bin/redis-check-rdb}"
REDIS_SERVER="${REDIS_SERVER:-/usr/bin/redis-server}"
REDIS_CLI="${REDIS_CLI:-/usr/bin/redis-cli}"
RDB_CRATE="$PEERS/bin/rdb"
RDBTOOLS="$VENV/bin/rdb"
SERVER_TIMEOUT=600
QUIET_LOAD="${QUIET_LOAD:-1.5}"
QUIET_WAIT="${QUIET_WAIT:-30}"

say() { echo "compare-peers: $*" >&2; }
die() { say "$*"; exit 1; }
skipped() { [[ "$SKIP" == *" $1 "* ]]; }

[[ -x /usr/bin/time ]] || die "/usr/bin/time missing: apt-get install -y time"
command -v bc >/dev/null || die "bc missing: apt-get install -y bc"

# ---------------------------------------------------------------- inputs
DEFAULT_FILES=("$ROOT/target/bench-data/redis-7.0-100M.rdb" "$ROOT/target/bench-data/redis-6.2-100M.rdb")
if [[ $# -gt 0 ]]; then
  FILES=("$@")
else
  FILES=("${DEFAULT_FILES[@]}")
  for f in "${FILES[@]}"; do
    if [[ ! -f "$f" ]]; then
      server="$(basename "$f" | sed -E 's/-[0-9]+[KMG]\.rdb$//')"
      say "$f missing: generating it with bench-data.py --server $server"
      [[ -x "$VENV/bin/python" ]] || die "no $VENV; run scripts/servers.sh install"
      "$VENV/bin/python" "$ROOT/scripts/bench-data.py" --server "$server" >&2
    fi
  done
fi
for f in "${FILES[@]}"; do [[ -f "$f" ]] || die "$f: no such file"; done
[[ -z "$BIG" || -f "$BIG" ]] || { say "BIG=$BIG missing (make it with: .venv/bin/python scripts/bench-data.py --size 1G); skipping the 1 GB rows"; BIG=""; }

# ---------------------------------------------------------------- tools
mkdir -p "$PEERS" "$(dirname "$OUT_MD")"
SCRATCH="$(mktemp -d "$PEERS/scratch.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    [[ -n "${SERVER_PORT:-}" ]] && "$REDIS_CLI" -h 127.0.0.1 -p "$SERVER_PORT" shutdown nosave >/dev/null 2>&1 || true
    sleep 0.5
    kill "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

say "building rdbkit (cargo build --release)"
(cd "$ROOT" && cargo build -q --release)
# A private copy: other builds in this checkout may replace target/release/rdbkit while we measure.
RDBKIT="$SCRATCH/rdbkit"
cp "$ROOT/target/release/rdbkit" "$RDBKIT"
RDBKIT_REV="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
  RDBKIT_REV="$RDBKIT_REV + uncommitted changes in src/"
fi

if ! skipped rdb-crate && [[ ! -x "$RDB_CRATE" ]]; then
  say "installing the rdb crate into $PEERS (cargo install rdb)"
  CARGO_INSTALL_ROOT="$PEERS" cargo install -q rdb >&2 || say "cargo install rdb failed"
fi
RDB_CRATE_VER="$(cargo install --list --root "$PEERS" 2>/dev/null | sed -n 's/^rdb v\([0-9.]*\):$/\1/p')"
[[ -x "$RDB_CRATE" ]] || SKIP+=" rdb-crate "

if ! skipped rdbtools; then
  if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c 'import rdbtools, lzf' 2>/dev/null; then
    say "installing rdbtools python-lzf into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q rdbtools python-lzf >&2 ||
      "$VENV/bin/python" -m pip install --disable-pip-version-check -q rdbtools >&2 || say "pip install rdbtools failed"
  fi
  [[ -x "$RDBTOOLS" ]] || SKIP+=" rdbtools "
fi
RDBTOOLS_VER="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("rdbtools"))' 2>/dev/null || echo -)"
LZF_VER="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("python-lzf"))' 2>/dev/null || echo "absent (pure-Python LZF)")"
[[ -x "$CHECK_RDB" ]] || { say "$CHECK_RDB missing (apt-get install -y redis-tools)"; SKIP+=" redis-check-rdb "; }
[[ -x "$REDIS_SERVER" && -x "$REDIS_CLI" ]] || { say "redis-server/redis-cli missing"; SKIP+=" redis-server "; }
CHECK_RDB_VER="$("$CHECK_RDB" --version 2>/dev/null | head -1 || true)"
SERVER_VER="$("$REDIS_SERVER" --version 2>/dev/null | sed -E 's/.*v=([0-9.]+).*/\1/' || true)"

# ---------------------------------------------------------------- measuring
load1() { cut -d' ' -f1 /proc/loadavg; }
mib() { printf '%.1f MiB' "$(echo "$1 / 1024" | bc -l)"; }
# Wait (at most QUIET_WAIT s) until the 1-minute load average is below QUIET_LOAD: other builds share the machine.
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT))
  while (($(echo "$(load1) >= $QUIET_LOAD" | bc -l))) && ((SECONDS < deadline)); do sleep 2; done
}
now() { date +%s.%N; }
fsize() { stat -c %s "$1"; }

# First error line of a failed run's output: the last line of a Python traceback, else the first non-empty line.
first_error() {
  local f="$1"
  if grep -q '^Traceback' "$f"; then
    grep -v '^[[:space:]]*$' "$f" | tail -n 1
  else
    grep -v '^[[:space:]]*$' "$f" | head -n 1
  fi | cut -c1-160 | tr '|' '/'
}

# Result rows.
R_TOOL=() R_TASK=() R_FILE=() R_GROUP=() R_BYTES=() R_WALL=() R_RSS=() R_LOAD=() R_NOTE=() R_CPU=()
add_row() { # tool task file group bytes wall rss load note [cpu]
  R_TOOL+=("$1") R_TASK+=("$2") R_FILE+=("$3") R_GROUP+=("$4") R_BYTES+=("$5") R_WALL+=("$6") R_RSS+=("$7")
  R_LOAD+=("$8") R_NOTE+=("$9") R_CPU+=("${10:-}")
}
# rss_of FILE GROUP TOOL: the peak RSS (KiB) recorded for that row, or empty.
rss_of() {
  local i
  for i in "${!R_TOOL[@]}"; do
    if [[ "${R_FILE[$i]}" == "$1" && "${R_GROUP[$i]}" == "$2" && "${R_TOOL[$i]}" == "$3" ]]; then
      echo "${R_RSS[$i]}"; return
    fi
  done
}

# run_once OUTMODE ERRFILE CMD...: one timed run; sets WALL, RSS_KB; returns the command's exit status.
# OUTMODE: "null" sends stdout to /dev/null, "keep" to ERRFILE with stderr.
run_once() {
  local mode="$1" err="$2" tf t0 t1 rc=0
  shift 2
  tf="$SCRATCH/time.txt"
  rm -rf "$SCRATCH/out"
  mkdir -p "$SCRATCH/out"
  sync
  t0="$(now)"
  if [[ "$mode" == null ]]; then
    /usr/bin/time -v -o "$tf" "$@" >/dev/null 2>"$err" || rc=$?
  else
    /usr/bin/time -v -o "$tf" "$@" >"$err" 2>&1 || rc=$?
  fi
  t1="$(now)"
  WALL="$(echo "$t1 - $t0" | bc -l)"
  RSS_KB="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")"
  CPU="$(awk -F': ' '/User time|System time/ {s += $2} END {print s + 0}' "$tf")"
  return "$rc"
}

# measure TOOL TASK GROUP FILE OUTMODE CMD...: best of RUNS; a failing tool is recorded once as "fails".
measure() {
  local tool="$1" task="$2" group="$3" file="$4" mode="$5" best="" cpu="" rss=0 i err load
  shift 5
  err="$SCRATCH/err.txt"
  wait_quiet
  load="$(load1)"
  for ((i = 0; i < RUNS; i++)); do
    if ! run_once "$mode" "$err" "$@"; then
      local msg
      msg="$(first_error "$err" || true)"
      say "$tool $task $(basename "$file"): fails: $msg"
      add_row "$tool" "$task" "$file" "$group" "$(fsize "$file")" "" "" "$load" "fails: \`${msg:-exit status non-zero}\`"
      return 0
    fi
    if [[ -z "$best" ]] || (($(echo "$WALL < $best" | bc -l))); then best="$WALL"; fi
    if [[ -z "$cpu" ]] || (($(echo "$CPU < $cpu" | bc -l))); then cpu="$CPU"; fi
    ((RSS_KB > rss)) && rss="$RSS_KB"
    say "$tool $task $(basename "$file"): run $((i + 1)): $(printf '%.3f' "$WALL") s, $RSS_KB KiB"
  done
  add_row "$tool" "$task" "$file" "$group" "$(fsize "$file")" "$best" "$rss" "$load" "" "$cpu"
}

free_port() {
  local p
  for p in $(seq 7600 7699); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port in 7600-7699"
}

# sample_mem CMD...: one run of CMD (output discarded) while sampling /proc/PID/status every ~5 ms; sets
# ANON_KB (peak RssAnon: heap and stacks) and FILE_KB (peak RssFile: mapped file pages, shared with the page cache).
sample_mem() {
  local pid k v st a f
  ANON_KB=0 FILE_KB=0
  rm -rf "$SCRATCH/out"
  mkdir -p "$SCRATCH/out"
  "$@" >/dev/null 2>&1 &
  pid=$!
  while :; do
    a=0 f=0 st=""
    while read -r k v _; do
      case "$k" in RssAnon:) a="$v" ;; RssFile:) f="$v" ;; State:) st="$v" ;; esac
    done 2>/dev/null <"/proc/$pid/status" || break
    [[ -z "$st" || "$st" == Z || "$st" == X ]] && break
    ((a > ANON_KB)) && ANON_KB="$a"
    ((f > FILE_KB)) && FILE_KB="$f"
    sleep 0.005
  done
  wait "$pid" || true
}

MEM_LINES=() RSS_FAILS=()
# Peak-RSS bounds of issue 10 (any file size): verify/info/dump 64 MiB, a 3-shard split 96 MiB.
rss_bound_kb() {
  case "$1/$2" in
    rdbkit/verify | rdbkit/json | rdbkit/info) echo $((64 * 1024)) ;;
    rdbkit/split) echo $((96 * 1024)) ;;
  esac
}
# mem_row TOOL TASK FILE CMD...: a memory row (peak RSS from the timed runs, plus one sampled run).
mem_row() {
  local tool="$1" task="$2" file="$3" group="$4" rss bound
  shift 4
  rss="$(rss_of "$file" "$group" "$tool")"
  bound="$(rss_bound_kb "$tool" "$group")"
  if [[ -n "$bound" && -n "$rss" ]] && ((rss > bound)); then
    say "FAIL: $tool $task $(basename "$file"): peak RSS $rss KiB over the bound of $bound KiB"
    RSS_FAILS+=("$tool $task $(basename "$file")")
  fi
  sample_mem "$@"
  say "memory: $tool $task $(basename "$file"): RssAnon $ANON_KB KiB, RssFile $FILE_KB KiB"
  MEM_LINES+=("| $tool | \`$task\` | $(basename "$file") | ${rss:+$(mib "$rss")} | $(mib "$ANON_KB") | $(mib "$FILE_KB") |")
}

# server_load_once FILE: redis-server with FILE as dir/dump.rdb; WALL = start until PONG and loading:0.
server_load_once() {
  local file="$1" dir="$SCRATCH/server" tf="$SCRATCH/server-time.txt" t0 t1 deadline
  rm -rf "$dir"
  mkdir -p "$dir"
  ln -s "$(readlink -f "$file")" "$dir/dump.rdb"
  SERVER_PORT="$(free_port)"
  t0="$(now)"
  /usr/bin/time -v -o "$tf" "$REDIS_SERVER" --port "$SERVER_PORT" --bind 127.0.0.1 --dir "$dir" \
    --dbfilename dump.rdb --save '' --appendonly no --daemonize no --databases 64 >"$dir/log" 2>&1 &
  SERVER_PID=$!
  deadline=$((SECONDS + SERVER_TIMEOUT))
  while :; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=""
      { grep -iE 'error|fatal|can.t|wrong|bad|short' "$dir/log" || tail -n 3 "$dir/log"; } |
        sed -E 's/^[0-9]+:[A-Z] [^#*]*[#*] //' >"$SCRATCH/err.txt" || true
      return 1
    fi
    if [[ "$("$REDIS_CLI" -h 127.0.0.1 -p "$SERVER_PORT" ping 2>/dev/null)" == PONG ]] &&
      "$REDIS_CLI" -h 127.0.0.1 -p "$SERVER_PORT" info persistence 2>/dev/null | grep -q '^loading:0'; then
      break
    fi
    ((SECONDS < deadline)) || { echo "did not finish loading within ${SERVER_TIMEOUT}s" >"$SCRATCH/err.txt"; return 1; }
    sleep 0.01
  done
  t1="$(now)"
  WALL="$(echo "$t1 - $t0" | bc -l)"
  "$REDIS_CLI" -h 127.0.0.1 -p "$SERVER_PORT" shutdown nosave >/dev/null 2>&1 || kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  RSS_KB="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")"
  CPU="$(awk -F': ' '/User time|System time/ {s += $2} END {print s + 0}' "$tf")"
}

measure_server() {
  local file="$1" best="" cpu="" rss=0 i load
  wait_quiet
  load="$(load1)"
  for ((i = 0; i < RUNS; i++)); do
    if ! server_load_once "$file"; then
      local msg
      msg="$(first_error "$SCRATCH/err.txt" || true)"
      say "redis-server load $(basename "$file"): fails: $msg"
      add_row "redis-server $SERVER_VER" "load (until PING + loading:0)" "$file" verify "$(fsize "$file")" "" "" "$load" "fails: \`${msg}\`"
      return 0
    fi
    if [[ -z "$best" ]] || (($(echo "$WALL < $best" | bc -l))); then best="$WALL"; fi
    if [[ -z "$cpu" ]] || (($(echo "$CPU < $cpu" | bc -l))); then cpu="$CPU"; fi
    ((RSS_KB > rss)) && rss="$RSS_KB"
    say "redis-server load $(basename "$file"): run $((i + 1)): $(printf '%.3f' "$WALL") s, $RSS_KB KiB"
  done
  add_row "redis-server $SERVER_VER" "load (until PING + loading:0)" "$file" verify "$(fsize "$file")" "$best" "$rss" "$load" "" "$cpu"
}

rdb_version() { head -c 9 "$1" | sed -E 's/^(REDIS|VALKEY)0*//'; }

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
T_START="$(date -u +'%Y-%m-%d %H:%M UTC')"
OUT="$SCRATCH/out"

bench_file() {
  local f="$1" v
  v="$(rdb_version "$f")"
  say "=== $(basename "$f") (RDB $v, $(fsize "$f") bytes)"
  cat "$f" >/dev/null # warm the page cache
  measure rdbkit "verify" verify "$f" null "$RDBKIT" verify "$f"
  skipped redis-check-rdb || measure redis-check-rdb "check (load + CRC)" verify "$f" keep "$CHECK_RDB" "$f"
  skipped rdb-crate || measure "rdb crate" "--format nil" verify "$f" null "$RDB_CRATE" --format nil "$f"
  skipped redis-server || measure_server "$f"
  measure rdbkit "info" info "$f" null "$RDBKIT" info "$f"
  measure rdbkit "dump --format json" json "$f" null "$RDBKIT" dump "$f" --format json
  skipped rdb-crate || measure "rdb crate" "--format json" json "$f" null "$RDB_CRATE" --format json "$f"
  skipped rdbtools || measure rdbtools "--command json" json "$f" null "$RDBTOOLS" --command json "$f"
  measure rdbkit "dump --format resp" resp "$f" null "$RDBKIT" dump "$f" --format resp
  skipped rdb-crate || measure "rdb crate" "--format protocol" resp "$f" null "$RDB_CRATE" --format protocol "$f"
  skipped rdbtools || measure rdbtools "--command protocol" resp "$f" null "$RDBTOOLS" --command protocol "$f"
  measure rdbkit "convert (same version)" convert "$f" null "$RDBKIT" convert -q "$f" -o "$OUT/out.rdb"
  if ((v > 9)); then
    measure rdbkit "convert --rdb-version 9 --lossy" convert9 "$f" null "$RDBKIT" convert -q "$f" -o "$OUT/out.rdb" --rdb-version 9 --lossy
  fi
  measure rdbkit "split --shards 3" split "$f" null "$RDBKIT" split -q "$f" --out-dir "$OUT" --shards 3
  measure rdbkit "export --blob gzip" export "$f" null "$RDBKIT" export -q "$f" --prefix p --out-dir "$OUT" --blob gzip
}

for f in "${FILES[@]}"; do bench_file "$f"; done

if [[ -n "$BIG" ]]; then
  say "=== $(basename "$BIG") (RDB $(rdb_version "$BIG"), $(fsize "$BIG") bytes)"
  cat "$BIG" >/dev/null
  measure rdbkit "verify" verify "$BIG" null "$RDBKIT" verify "$BIG"
  skipped redis-check-rdb || measure redis-check-rdb "check (load + CRC)" verify "$BIG" keep "$CHECK_RDB" "$BIG"
  measure rdbkit "convert (same version)" convert "$BIG" null "$RDBKIT" convert -q "$BIG" -o "$OUT/out.rdb"
  measure rdbkit "dump --format json" json "$BIG" null "$RDBKIT" dump --format json "$BIG"
  measure rdbkit "split --shards 3" split "$BIG" null "$RDBKIT" split -q "$BIG" --out-dir "$OUT" --shards 3
  measure rdbkit "export --blob gzip" export "$BIG" null "$RDBKIT" export -q "$BIG" --prefix p --out-dir "$OUT" --blob gzip
  say "=== memory: one sampled run each"
  for f in "${FILES[0]}" "$BIG"; do
    mem_row rdbkit verify "$f" verify "$RDBKIT" verify "$f"
    mem_row rdbkit "convert (same version)" "$f" convert "$RDBKIT" convert -q "$f" -o "$OUT/out.rdb"
    mem_row rdbkit "dump --format json" "$f" json "$RDBKIT" dump --format json "$f"
    mem_row rdbkit "split --shards 3" "$f" split "$RDBKIT" split -q "$f" --out-dir "$OUT" --shards 3
    mem_row rdbkit "export --blob gzip" "$f" export "$RDBKIT" export -q "$f" --prefix p --out-dir "$OUT" --blob gzip
    skipped redis-check-rdb || mem_row redis-check-rdb "check (load + CRC)" "$f" verify "$CHECK_RDB" "$f"
  done
fi

# Concurrency: two verifies at once vs one after the other.
SCALE_LINES=()
if ! skipped scaling; then
  A="${FILES[0]}"
  B="${FILES[1]:-${FILES[0]}}"
  say "=== scaling: rdbkit verify $(basename "$A") and $(basename "$B"), sequential vs concurrent"
  cat "$A" "$B" >/dev/null
  wait_quiet
  seq_best="" par_best="" par_rss=0 seq_cpu="" par_cpu="" scale_load="$(load1)"
  cpu_of() { awk -F': ' '/User time|System time/ {s += $2} END {print s + 0}' "$1"; }
  for ((i = 0; i < RUNS; i++)); do
    t0="$(now)"
    /usr/bin/time -v -o "$SCRATCH/ta.txt" "$RDBKIT" verify "$A" >/dev/null
    /usr/bin/time -v -o "$SCRATCH/tb.txt" "$RDBKIT" verify "$B" >/dev/null
    t1="$(now)"
    w="$(echo "$t1 - $t0" | bc -l)"
    c="$(echo "$(cpu_of "$SCRATCH/ta.txt") + $(cpu_of "$SCRATCH/tb.txt")" | bc -l)"
    if [[ -z "$seq_best" ]] || (($(echo "$w < $seq_best" | bc -l))); then seq_best="$w" seq_cpu="$c"; fi
    t0="$(now)"
    /usr/bin/time -v -o "$SCRATCH/ta.txt" "$RDBKIT" verify "$A" >/dev/null &
    pa=$!
    /usr/bin/time -v -o "$SCRATCH/tb.txt" "$RDBKIT" verify "$B" >/dev/null &
    pb=$!
    wait "$pa"
    wait "$pb"
    t1="$(now)"
    w2="$(echo "$t1 - $t0" | bc -l)"
    c2="$(echo "$(cpu_of "$SCRATCH/ta.txt") + $(cpu_of "$SCRATCH/tb.txt")" | bc -l)"
    if [[ -z "$par_best" ]] || (($(echo "$w2 < $par_best" | bc -l))); then par_best="$w2" par_cpu="$c2"; fi
    for t in "$SCRATCH/ta.txt" "$SCRATCH/tb.txt"; do
      r="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$t")"
      ((r > par_rss)) && par_rss="$r"
    done
    say "scaling run $((i + 1)): sequential $(printf '%.3f' "$w") s (cpu $c s), concurrent $(printf '%.3f' "$w2") s (cpu $c2 s), load $(load1)"
  done
  total=$(($(fsize "$A") + $(fsize "$B")))
  SCALE_LINES+=("| one after the other | $(printf '%.3f' "$seq_best") | $(printf '%.2f' "$seq_cpu") | $(printf '%.0f' "$(echo "$total / $seq_best / 1000000" | bc -l)") | 1.00× | — |")
  SCALE_LINES+=("| both at once (\`a & b\`) | $(printf '%.3f' "$par_best") | $(printf '%.2f' "$par_cpu") | $(printf '%.0f' "$(echo "$total / $par_best / 1000000" | bc -l)") | $(printf '%.2f' "$(echo "$seq_best / $par_best" | bc -l)")× | $(mib "$par_rss") each (max) |")
  SCALE_LOAD_END="$(load1)"
fi

LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
ref_wall() { # FILE GROUP: rdbkit's best wall for that task on that file
  local i
  for i in "${!R_TOOL[@]}"; do
    if [[ "${R_FILE[$i]}" == "$1" && "${R_GROUP[$i]}" == "$2" && "${R_TOOL[$i]}" == rdbkit ]]; then
      echo "${R_WALL[$i]}"; return
    fi
  done
}

report() {
  local i f
  echo "# rdbkit vs peers"
  echo
  echo "Run $T_START on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), shared with other builds;"
  echo "load average (1/5/15 min) at start $LOAD_START, at end $LOAD_END. Best of $RUNS runs, one at a time, warm page cache."
  echo
  echo "Versions: rdbkit ${RDBKIT_REV} (release build); ${CHECK_RDB_VER:-redis-check-rdb ?} (Debian redis-tools);"
  echo "redis-server ${SERVER_VER:-?}; \`rdb\` crate ${RDB_CRATE_VER:-not installed} (\`cargo install rdb\`);"
  echo "rdbtools ${RDBTOOLS_VER} (PyPI, python-lzf ${LZF_VER}) on $("$VENV/bin/python" --version 2>&1 || echo python ?)."
  echo
  echo "Files:"
  for f in "${FILES[@]}" ${BIG:+"$BIG"}; do
    echo "- \`$(basename "$f")\`: RDB $(rdb_version "$f"), $(fsize "$f") bytes"
  done
  echo
  echo "| tool | task | file | MB/s | wall s | peak RSS | ratio vs rdbkit | cpu s | load | notes |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---|"
  for i in "${!R_TOOL[@]}"; do
    local tool="${R_TOOL[$i]}" task="${R_TASK[$i]}" file wall="${R_WALL[$i]}" mbs="—" ws="fails" rss="—" ratio="—" ref cpu="—"
    file="$(basename "${R_FILE[$i]}")"
    task="\`$task\`"
    if [[ -n "$wall" ]]; then
      mbs="$(printf '%.0f' "$(echo "${R_BYTES[$i]} / $wall / 1000000" | bc -l)")"
      ws="$(printf '%.3f' "$wall")"
      rss="$(mib "${R_RSS[$i]}")"
      cpu="$(printf '%.2f' "${R_CPU[$i]}")"
      ref="$(ref_wall "${R_FILE[$i]}" "${R_GROUP[$i]}")"
      if [[ "$tool" == rdbkit ]]; then
        ratio="1 (ref)"
      elif [[ -n "$ref" ]]; then
        ratio="$(printf '%.2f×' "$(echo "$wall / $ref" | bc -l)")"
      fi
    fi
    echo "| $tool | $task | $file | $mbs | $ws | $rss | $ratio | $cpu | ${R_LOAD[$i]} | ${R_NOTE[$i]} |"
  done
  echo
  echo "MB/s = input bytes ÷ best wall time ÷ 10^6 (process start included). Ratio = the tool's best wall time ÷"
  echo "rdbkit's for the same task on the same file (> 1: rdbkit is faster): \`verify\` rows compare with \`rdbkit verify\`,"
  echo "json rows with \`rdbkit dump --format json\`, protocol rows with \`rdbkit dump --format resp\`. Peak RSS is the"
  echo "maximum resident set size from /usr/bin/time; rdbkit reads files through a memory map, so its RSS counts the"
  echo "file pages it has touched (shared page cache, not allocations). cpu s = the smallest user + system time of the"
  echo "runs (less sensitive to other load than wall time). Load = 1-minute load average before the row's first run."
  echo "The \`rdb\` crate does not check the CRC-64 and skips streams (its output lacks those keys); its \`-o FILE\` is"
  echo "unbuffered, so it is measured writing to stdout. rdbtools reads RDB 1-9 only."
  if ((${#MEM_LINES[@]})); then
    local times
    times="$(echo "$(fsize "$BIG") / $(fsize "${FILES[0]}")" | bc -l)"
    echo
    printf 'Memory, %s vs %s (%.1f× the bytes). Peak RSS from the timed runs; RssAnon (heap, stacks) and RssFile\n' \
      "$(basename "${FILES[0]}")" "$(basename "$BIG")" "$times"
    echo "(mapped file pages, shared with the page cache) are the peaks of /proc/PID/status sampled every ~5 ms in one"
    echo "more run:"
    echo
    echo "| tool | task | file | peak RSS | peak RssAnon | peak RssFile |"
    echo "|---|---|---|---:|---:|---:|"
    printf '%s\n' "${MEM_LINES[@]}"
  fi
  if ((${#SCALE_LINES[@]})); then
    echo
    echo "Two \`rdbkit verify\` processes ($(basename "${FILES[0]}") and $(basename "${FILES[1]:-${FILES[0]}}")), best of $RUNS;"
    echo "1-minute load $scale_load before, $SCALE_LOAD_END after (cpu s = user + system of both processes). Each"
    echo "\`rdbkit verify\` of a mapped file of 1 MiB or more already parses on a second thread, so two at once share the"
    echo "same two cores; with one thread each, the speed-up would be close to 2×:"
    echo
    echo "| how | wall s | cpu s | MB/s (both files) | speed-up | peak RSS |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${SCALE_LINES[@]}"
  fi
}

report | tee "$OUT_MD"
say "wrote $OUT_MD"
if ((${#RSS_FAILS[@]})); then
  say "peak RSS over its bound: ${RSS_FAILS[*]}"
  exit 1
fi
