//! What the benchmarks share: which file they read.

use std::path::PathBuf;

const DEFAULT_FILE: &str = "target/bench-data/redis-7.0-100M.rdb";
const FALLBACK_FILE: &str = "testdata/redis-7.0.rdb";

/// The file to benchmark, resolved against the crate root: `RDBKIT_BENCH_FILE`, else the 100 MB dump made by
/// `scripts/bench-data.py`, else (with a notice naming `bench`) a small fixture.
pub fn bench_file(bench: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(p) = std::env::var_os("RDBKIT_BENCH_FILE") {
        return PathBuf::from(p);
    }
    let default = root.join(DEFAULT_FILE);
    if default.exists() {
        return default;
    }
    eprintln!(
        "{bench} bench: {DEFAULT_FILE} is missing; create it with `.venv/bin/python scripts/bench-data.py` \
         (or set RDBKIT_BENCH_FILE). Falling back to {FALLBACK_FILE}."
    );
    root.join(FALLBACK_FILE)
}
