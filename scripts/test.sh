#!/usr/bin/env bash
# Installs what the tests need (four real servers, cargo-fuzz) and runs every check CI runs:
# formatting, clippy, the whole test suite with the real-server tests required, and a short fuzz run.
# Usage: scripts/test.sh            (FUZZ_SECONDS=N to change the fuzz time per target; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/servers.sh install
export RDBKIT_REQUIRE_SERVERS=1

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
# Unit, integration and doc tests; the real-server tests (tests/cli.rs runs scripts/test-resp-digest.sh,
# tests/servers.rs runs scripts/test-servers.py) are required here, skipped by a plain `cargo test` without servers.
cargo test --all-features
# The library without the CLI feature (what embedding crates build).
cargo test --no-default-features --lib
if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
echo "all checks passed"
