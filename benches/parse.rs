//! Whole-file read throughput on a large real dump.
//!
//! Reads `target/bench-data/redis-7.0-100M.rdb` (create it with `.venv/bin/python scripts/bench-data.py`), or the
//! file named by `RDBKIT_BENCH_FILE`; without either it falls back to the small `testdata/redis-7.0.rdb` (figures
//! then mostly measure per-call overhead). Throughput is in bytes of the file.
//!
//! - `slice/full_decode`: [`SliceReader`] with default options, `to_owned_value` on every entry (checksum on).
//! - `slice/full_iter`: default options, every element / field / score / stream entry of every value visited
//!   through the lazy iterators (`elements()`, `zset_entries()`, `hash_fields()`, `stream()`), strings decoded
//!   into a reused buffer: a full decode without building owned values.
//! - `slice/verify_deep`: default options (deep validation + checksum), walk only.
//! - `slice/key_scan`: `ReadOptions::fast()`: key, expiry and type of every entry (checksum on).
//! - `slice/key_scan_nocrc`: as `key_scan` with the checksum off.
//! - `stream/full`: [`StreamReader`] over a `BufReader<File>`, deep, `to_owned_value` on every entry.
//! - `stream/verify_deep`: as `stream/full`, walk only (deep validation + checksum).
//!
//! `cargo bench --bench parse` runs all seven in about two minutes.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rdbkit::read::{ReadOptions, RecordKind, SliceReader, StreamReader};
use std::hint::black_box;
use std::io::BufReader;
use std::time::Duration;

mod common;
#[path = "common/visit.rs"]
mod visit;
use visit::{Visit, visit_all};

/// Walks `data` with `opts`, doing `visit` with every value. Returns the number of entries (and a checksum of
/// what was read, so nothing is optimized away).
fn walk_slice(data: &[u8], opts: ReadOptions, visit: Visit) -> (u64, u64) {
    let mut r = SliceReader::with_options(data, opts).expect("header");
    let (mut keys, mut acc) = (0u64, 0u64);
    let mut buf = Vec::new();
    while let Some(rec) = r.next_record().expect("valid file") {
        if let RecordKind::Entry(e) = rec.kind {
            keys += 1;
            if visit == Visit::Owned {
                black_box(e.value.to_owned_value().expect("value"));
            } else if visit == Visit::Iter {
                acc = acc.wrapping_add(visit_all(&e.value, &mut buf).expect("visit"));
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

fn walk_stream(path: &std::path::Path, decode: bool) -> u64 {
    let f = std::fs::File::open(path).expect("open bench file");
    let mut r = StreamReader::new(BufReader::with_capacity(1 << 16, f)).expect("header");
    let mut keys = 0u64;
    while let Some(rec) = r.next_record().expect("valid file") {
        if let RecordKind::Entry(e) = rec.kind {
            keys += 1;
            if decode {
                black_box(e.value.to_owned_value().expect("value"));
            } else {
                black_box(e.key.logical_len());
            }
        }
    }
    assert!(r.checksum().is_some(), "no EOF");
    keys
}

fn benches(c: &mut Criterion) {
    let path = common::bench_file("parse");
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
    g.bench_function("full_decode", |b| b.iter(|| walk_slice(black_box(data), ReadOptions::default(), Visit::Owned)));
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("full_iter", |b| b.iter(|| walk_slice(black_box(data), ReadOptions::default(), Visit::Iter)));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("verify_deep", |b| b.iter(|| walk_slice(black_box(data), ReadOptions::default(), Visit::Walk)));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("key_scan", |b| b.iter(|| walk_slice(black_box(data), ReadOptions::fast(), Visit::Walk)));
    let nocrc = ReadOptions::fast().with_checksum(false);
    g.bench_function("key_scan_nocrc", |b| b.iter(|| walk_slice(black_box(data), nocrc, Visit::Walk)));
    g.finish();

    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(data.len() as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(12));
    g.bench_function("full", |b| b.iter(|| walk_stream(black_box(&path), true)));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("verify_deep", |b| b.iter(|| walk_stream(black_box(&path), false)));
    g.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
