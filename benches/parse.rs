//! Whole-file read throughput on a large real dump.
//!
//! Reads `target/bench-data/redis-7.0-100M.rdb` (create it with `.venv/bin/python scripts/bench-data.py`), or the
//! file named by `RDBKIT_BENCH_FILE`; without either it falls back to the small `testdata/redis-7.0.rdb` (figures
//! then mostly measure per-call overhead). Throughput is in bytes of the file.
//!
//! - `slice/full_decode`: [`SliceReader`] with default options, `to_owned_value` on every entry (checksum on).
//! - `slice/verify_deep`: default options (deep validation + checksum), walk only.
//! - `slice/key_scan`: `ReadOptions::fast()`: key, expiry and type of every entry (checksum on).
//! - `slice/key_scan_nocrc`: as `key_scan` with the checksum off.
//! - `stream/full`: [`StreamReader`] over a `BufReader<File>`, deep, `to_owned_value` on every entry.
//!
//! `cargo bench --bench parse` runs all five in well under two minutes.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rdbkit::read::{ReadOptions, RecordKind, SliceReader, StreamReader};
use std::hint::black_box;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_FILE: &str = "target/bench-data/redis-7.0-100M.rdb";
const FALLBACK_FILE: &str = "testdata/redis-7.0.rdb";

/// The file to benchmark, resolved against the crate root.
fn bench_file() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(p) = std::env::var_os("RDBKIT_BENCH_FILE") {
        return PathBuf::from(p);
    }
    let default = root.join(DEFAULT_FILE);
    if default.exists() {
        return default;
    }
    eprintln!(
        "parse bench: {DEFAULT_FILE} is missing; create it with `.venv/bin/python scripts/bench-data.py` \
         (or set RDBKIT_BENCH_FILE). Falling back to {FALLBACK_FILE}."
    );
    root.join(FALLBACK_FILE)
}

/// Walks `data` with `opts`; with `decode`, decodes every value. Returns the number of entries (and a checksum
/// of what was read, so nothing is optimized away).
fn walk_slice(data: &[u8], opts: ReadOptions, decode: bool) -> (u64, u64) {
    let mut r = SliceReader::with_options(data, opts).expect("header");
    let (mut keys, mut acc) = (0u64, 0u64);
    while let Some(rec) = r.next_record().expect("valid file") {
        if let RecordKind::Entry(e) = rec.kind {
            keys += 1;
            if decode {
                black_box(e.value.to_owned_value().expect("value"));
            } else {
                acc = acc.wrapping_add(e.key.logical_len());
                acc = acc.wrapping_add(e.expiry.map_or(0, |x| x.as_millis() as u64));
                acc = acc.wrapping_add(u64::from(e.value.encoding.type_byte()));
            }
        }
    }
    assert!(r.checksum().is_some(), "no EOF");
    (keys, acc)
}

fn walk_stream(path: &std::path::Path) -> u64 {
    let f = std::fs::File::open(path).expect("open bench file");
    let mut r = StreamReader::new(BufReader::with_capacity(1 << 16, f)).expect("header");
    let mut keys = 0u64;
    while let Some(rec) = r.next_record().expect("valid file") {
        if let RecordKind::Entry(e) = rec.kind {
            keys += 1;
            black_box(e.value.to_owned_value().expect("value"));
        }
    }
    keys
}

fn benches(c: &mut Criterion) {
    let path = bench_file();
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: the bench file is not modified while mapped (SIGBUS otherwise, not memory unsafety we rely on).
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("mmap");
    let data: &[u8] = &map;
    eprintln!("parse bench: {} ({} bytes)", path.display(), data.len());

    // Measurement times fit 10 samples of each benchmark on the 100 MB file (about 1 s, 0.5 s and 0.07 s a pass);
    // each setting applies to the benchmarks defined after it.
    let mut g = c.benchmark_group("slice");
    g.throughput(Throughput::Bytes(data.len() as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(12));
    g.bench_function("full_decode", |b| b.iter(|| walk_slice(black_box(data), ReadOptions::default(), true)));
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("verify_deep", |b| b.iter(|| walk_slice(black_box(data), ReadOptions::default(), false)));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("key_scan", |b| b.iter(|| walk_slice(black_box(data), ReadOptions::fast(), false)));
    let nocrc = ReadOptions { deep: false, verify_checksum: false };
    g.bench_function("key_scan_nocrc", |b| b.iter(|| walk_slice(black_box(data), nocrc, false)));
    g.finish();

    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(data.len() as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(14));
    g.bench_function("full", |b| b.iter(|| walk_stream(black_box(&path))));
    g.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
