#!/usr/bin/env bash
# Installs what the tests need (four real servers, cargo-fuzz) and runs every check CI runs:
# formatting, the rust-version and package checks, clippy, builds with each feature alone, the whole test suite
# with the real-server tests required, and a short fuzz run.
# Usage: scripts/test.sh            (FUZZ_SECONDS=N to change the fuzz time per target; 0 skips fuzzing;
#                                    RDBKIT_ALLOW_DIRTY=1 to package uncommitted changes)
set -euo pipefail
cd "$(dirname "$0")/.."

# step MINUTES NAME COMMAND…: runs one check, bounded, with its start and end time on stderr. A step that hangs
# fails the run with its name (exit 124) long before CI's own limit; each test that drives servers has its own,
# shorter limit inside (tests/common run_bounded, the scripts' per-command timeouts).
step() {
  local minutes="$1" name="$2"; shift 2
  local start=$SECONDS
  echo "== $(date +%T) $name (limit ${minutes} min)" >&2
  if timeout -k 30 "$((minutes * 60))" "$@"; then
    echo "== $(date +%T) $name: ok in $((SECONDS - start)) s" >&2
  else
    local rc=$?
    [[ $rc == 124 || $rc == 137 ]] && echo "== $name: still running after $minutes min, stopped" >&2
    echo "== $name: FAILED (exit $rc)" >&2
    exit "$rc"
  fi
}

step 20 "install the servers" scripts/servers.sh install
export RDBKIT_REQUIRE_SERVERS=1

step 5 "cargo fmt" cargo fmt --all -- --check
# rust-version stays true: no dependency needs a newer Rust, and clippy's incompatible_msrv (denied in Cargo.toml)
# flags std APIs newer than it.
step 2 "rust-version vs dependencies" scripts/check-msrv.sh
step 15 "cargo clippy" cargo clippy --all-targets --all-features -- -D warnings
# The parser alone, then each feature alone (what embedding crates build).
step 5 "cargo build --no-default-features" cargo build --no-default-features --quiet
step 10 "cargo check, each feature alone" bash -c \
  'for f in gzip fs mmap render report lua diff live tls cli; do echo "-- --features $f" >&2; cargo check --quiet --no-default-features --features "$f" || exit; done'
# What crates.io would get: the file list asserted, then the package built on its own (needs the registry index).
# Both refuse uncommitted changes to packaged files, as CI's checkout has none; RDBKIT_ALLOW_DIRTY=1 to run them
# on a work tree.
dirty=()
[[ "${RDBKIT_ALLOW_DIRTY:-0}" == 1 ]] && dirty=(--allow-dirty)
step 2 "cargo package --list" scripts/check-package.sh "${dirty[@]}"
step 10 "cargo publish --dry-run" cargo publish --dry-run --quiet "${dirty[@]}"
step 10 "cargo doc" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
# Unit, integration and doc tests; the real-server tests (tests/cli.rs runs scripts/test-resp-digest.sh,
# tests/servers.rs runs scripts/test-servers.py) are required here, skipped by a plain `cargo test` without servers.
step 40 "cargo test --all-features" cargo test --all-features
# The library without the CLI feature (what embedding crates build).
step 10 "cargo test --no-default-features --lib" cargo test --no-default-features --lib
if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  command -v cargo-fuzz >/dev/null || step 15 "install cargo-fuzz" cargo install cargo-fuzz --locked
  step 15 "fuzz" scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
echo "all checks passed"
