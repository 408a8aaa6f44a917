#!/usr/bin/env bash
# Asserts what `cargo package` would publish: exactly the library and binary sources tracked in git (src/**.rs),
# Cargo.toml (and the Cargo.toml.orig, Cargo.lock and .cargo_vcs_info.json cargo adds), README.md, CHANGELOG.md
# and the two license files; no fixtures, scripts, tests, fuzz targets, benchmarks or CI. Prints the difference
# and fails when the list is not that. Extra arguments go to `cargo package` (e.g. --allow-dirty).
#
#   scripts/check-package.sh [--allow-dirty]
set -euo pipefail
cd "$(dirname "$0")/.."

expected=$(
  {
    git ls-files -- 'src/*.rs'
    printf '%s\n' .cargo_vcs_info.json Cargo.lock Cargo.toml Cargo.toml.orig README.md CHANGELOG.md \
      LICENSE-MIT LICENSE-APACHE
  } | LC_ALL=C sort -u
)
actual=$(cargo package --list --quiet "$@" | LC_ALL=C sort)
if [[ "$expected" != "$actual" ]]; then
  echo "cargo package --list differs from what should be published (< expected, > packaged):" >&2
  diff <(echo "$expected") <(echo "$actual") >&2 || true
  exit 1
fi
echo "package contents ok: $(wc -l <<<"$actual") files"
