#!/usr/bin/env bash
# Keeps Cargo.toml's `rust-version` true: fails when any package in Cargo.lock (dependencies of every kind, every
# platform, optional ones included) declares a `rust-version` above rdbkit's own, and prints the ones that set
# the floor. Only one toolchain is installed where CI runs, so this and clippy's `incompatible_msrv` lint (which
# reads `rust-version` and flags std APIs stabilised later) stand in for building with the old compiler.
# Language features are not checked by either: let-chains (1.88) are the newest the code uses today.
#
#   scripts/check-msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

report=$(cargo metadata --format-version 1 --locked | jq -r '
  def ver: split(".") | map(tonumber) | . + [0, 0, 0] | .[0:3];
  (.packages[] | select(.source == null and .name == "rdbkit") | .rust_version) as $ours
  | if $ours == null then error("rdbkit declares no rust-version") else . end
  | [.packages[] | select(.source != null and .rust_version != null)
     | {name, version, rv: .rust_version}] as $deps
  | ($deps | map(select((.rv | ver) > ($ours | ver)))) as $over
  | ($deps | map(.rv | ver) | max) as $floor
  | "rdbkit rust-version: \($ours)",
    "highest dependency rust-version: \($floor | map(tostring) | join(".")) (\($deps | map(select((.rv | ver) == $floor)) | map("\(.name) \(.version)") | join(", ")))",
    (if ($over | length) > 0
     then ($over[] | "TOO NEW: \(.name) \(.version) needs Rust \(.rv)"), "MSRV-FAIL"
     else "ok: no dependency needs a newer Rust" end)
')
echo "$report"
! grep -q '^MSRV-FAIL$' <<<"$report"
