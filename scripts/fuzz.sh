#!/usr/bin/env bash
# Fuzz rdbkit's readers (and the writer → reader round trip) on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Builds the cargo-fuzz targets in fuzz/ without a sanitizer (`-s none`: works on stable), seeds
# fuzz/corpus/<target>/ from testdata/*.rdb and /work/shared/corpus (seeds are added, never removed; the
# corpus is gitignored), then runs each target (default: all) for SECONDS (default 30). Exits non-zero if any
# run leaves a new crash/oom/timeout artifact under fuzz/artifacts/<target>/; each one is printed (hex) with
# the tail of the fuzzer's log. Replay one with `cargo fuzz run -s none TARGET ARTIFACT`; minimize with
# `cargo fuzz tmin -s none TARGET ARTIFACT`; keep it as a regression input under tests/regressions/.
# Extra libFuzzer flags go in FUZZ_ARGS, e.g. FUZZ_ARGS="-fork=1 -ignore_crashes=1" to keep going after a crash
# (to look past a known bug; triage the artifacts by their panic message).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); with ASan instead: `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-30}"
[[ $# -gt 0 ]] && shift
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(slice_reader stream_reader value_decode write_roundtrip)
SHARED_CORPUS="${RDBKIT_SHARED_CORPUS:-$ROOT/../shared/corpus}"

command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
cd "$ROOT/fuzz"

cargo fuzz build -s none

# Seeds: real files (and, for the other targets, derived seeds) — see fuzz/examples/seeds.rs.
mapfile -t files < <(find "$ROOT/testdata" "$SHARED_CORPUS" -maxdepth 2 -type f \( -name '*.rdb' -o -name '*.aof' \) 2>/dev/null | sort)
cargo run -q --release --example seeds -- corpus "${files[@]}"

status=0
summary=()
for t in "${TARGETS[@]}"; do
  mkdir -p "artifacts/$t" "corpus/$t"
  before="$(ls "artifacts/$t")"
  log="$(mktemp)"
  echo "== $t: ${SECS}s"
  rc=0
  cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
  speed="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
  new="$(comm -13 <(echo "$before") <(ls "artifacts/$t"))"
  if [[ -n "$new" || $rc -ne 0 ]]; then
    status=1
    summary+=("$t: FAILED (exit $rc) after ${execs:-?} execs")
    echo "--- $t: panic messages"
    grep -A1 'panicked at' "$log" | grep -v '^--$' | sort | uniq -c | sort -rn | head -n 20 || true
    echo "--- $t: fuzzer log tail"
    grep -v '^ *[0-9]*: \|^ *at \|^\s*\[[0-9]' "$log" | cut -c1-200 | tail -n 15 || true
    for a in $new; do
      echo "--- $t: artifact fuzz/artifacts/$t/$a ($(stat -c %s "artifacts/$t/$a") bytes); first 512 bytes:"
      head -c 512 "artifacts/$t/$a" | xxd || true
    done
  else
    summary+=("$t: ok, ${execs:-?} execs (${speed:-?}/s), ${cov:-cov ?}, corpus $(ls "corpus/$t" | wc -l) inputs")
  fi
  rm -f "$log"
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$status"
