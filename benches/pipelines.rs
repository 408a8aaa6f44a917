//! Whole-file write pipelines on a large real dump: reader → (sinks) → writer → byte sink.
//!
//! Reads `target/bench-data/redis-7.0-100M.rdb` (create it with `.venv/bin/python scripts/bench-data.py`), or the
//! file named by `RDBKIT_BENCH_FILE`; without either it falls back to the small `testdata/redis-7.0.rdb` with a
//! notice (figures then mostly measure per-call overhead). Throughput is in bytes of the input file. Every output
//! goes to `io::sink()`, so only rdbkit's own work (and gzip's) is measured.
//!
//! - `pipelines/key_scan`: baseline for the pass-through pipelines: [`SliceReader`] with `ReadOptions::fast()`
//!   (no deep validation, checksum on), walking every record and reading each key's length and type.
//! - `pipelines/pass_through`: the same reader and [`RdbWriter::raw_record`] of every record at the input's header
//!   (the writer computes the output CRC-64).
//! - `pipelines/re_encode`: fast reader, `to_owned_value` + [`RdbWriter::entry`] for every key at the input's
//!   header, LZF on (other records passed through raw). Compare with `parse/slice/full_decode` (the same decode
//!   with deep validation, nothing written), left out here to keep the run under two minutes.
//! - `pipelines/split3`: [`workflow::split`] into 3 shards ([`ShardLayout::even`]) written to `io::sink()`: one
//!   pass (the outputs can patch, so RESIZEDB hints are placeholders filled in at the end), checks and per-input
//!   summaries taken as records pass, parsing on a second thread. `pipelines/split3_serial` is the same on one
//!   thread; `pipelines/split3_files` writes three [`AtomicFile`]s under `target/` (write, fsync, rename).
//! - `pipelines/split3_route`: the routing alone, on one thread: [`ClusterSplit`] over 3 [`WriterSink`]s, no
//!   hints, no filters, no checks.
//! - `pipelines/convert_db_limit`: [`workflow::convert`] with a database limit of 2 into `io::sink()` (one pass,
//!   hints recounted, parsing on a second thread).
//! - `pipelines/db_limit`: [`DbFilter::limit`]`(2)` → [`WriterSink`].
//! - `pipelines/export_gzip`: pass-through into [`GzipWriter`] at level 6; `pipelines/flate2_gzip` is the
//!   baseline: flate2's `GzEncoder` at level 6 over the raw file bytes (the ratio of the two is the cost of the
//!   RDB pipeline on top of gzip). `pipelines/export_gzip_parallel`: the same into a [`ParallelGzipWriter`] with
//!   one worker per core (what `rdbkit export --blob gzip` uses when there is more than one).
//! - `pipelines/export_page`: pass-through into [`PageAlign`] (512-byte padding).
//!
//! `cargo bench --bench pipelines` runs all of them in under two minutes.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use rdbkit::cluster::ShardLayout;
use rdbkit::input::Input;
use rdbkit::io::{AtomicFile, FinishWrite, GzipWriter, PageAlign, ParallelGzipWriter};
use rdbkit::read::{ReadOptions, RecordKind, SliceReader};
use rdbkit::transform::{ClusterSplit, DbFilter, RecordSink, WriterSink, drive};
use rdbkit::workflow::{self, JobOptions};
use rdbkit::write::{EntryMeta, RdbWriter};
use std::hint::black_box;
use std::io::{self, Write};
use std::time::Duration;

mod common;

/// Reads `data` (fast options) and writes every record through unchanged to `out`; returns `out` after the
/// writer's EOF and checksum.
fn pass_through<W: Write>(data: &[u8], out: W) -> W {
    let mut r = SliceReader::with_options(data, ReadOptions::fast()).expect("header");
    let mut w = RdbWriter::new(out, r.header()).expect("writer");
    while let Some(rec) = r.next_record().expect("valid file") {
        w.raw_record(&rec).expect("pass-through");
    }
    w.finish().expect("finish")
}

/// Walks every record with fast options; returns a digest of key lengths and types.
fn key_scan(data: &[u8]) -> u64 {
    let mut r = SliceReader::with_options(data, ReadOptions::fast()).expect("header");
    let mut acc = 0u64;
    while let Some(rec) = r.next_record().expect("valid file") {
        if let RecordKind::Entry(e) = rec.kind {
            acc = acc.wrapping_add(e.key.logical_len()).wrapping_add(u64::from(e.value.encoding.type_byte()));
        }
    }
    acc
}

/// Decodes every value and re-encodes it with [`RdbWriter::entry`] at the same header (LZF on); returns the bytes
/// written.
fn re_encode(data: &[u8]) -> u64 {
    let mut r = SliceReader::with_options(data, ReadOptions::fast()).expect("header");
    let mut w = RdbWriter::new(io::sink(), r.header()).expect("writer");
    while let Some(rec) = r.next_record().expect("valid file") {
        match rec.kind {
            RecordKind::Entry(e) => {
                let key = e.key.decode().expect("key");
                let value = e.value.to_owned_value().expect("value");
                let meta = EntryMeta::of(&e);
                w.entry(&key, &value, meta).expect("re-encode");
            }
            _ => w.raw_record(&rec).expect("pass-through"),
        }
    }
    let n = w.bytes_written();
    w.finish().expect("finish");
    n
}

/// [`workflow::split`] into `n` even shards written to `outputs`; returns the keys written.
fn split_workflow<W: FinishWrite>(input: &Input, outputs: Vec<W>, parallel: bool) -> u64 {
    let header = input.header().expect("header");
    let layout = ShardLayout::even(outputs.len()).expect("layout");
    let mut opts = JobOptions::new(header);
    opts.parallel = parallel;
    let (outs, report) = workflow::split(std::slice::from_ref(input), layout, outputs, &opts).expect("split");
    for o in outs {
        Box::new(o).finish_write().expect("finish");
    }
    report.outputs.iter().flat_map(|o| o.keys.values()).sum()
}

/// [`workflow::convert`] keeping databases below `limit`, to `io::sink()`; returns the keys written.
fn convert_db_limit(input: &Input, limit: u64) -> u64 {
    let mut opts = JobOptions::new(input.header().expect("header"));
    opts.selection.dbs.limit = Some(limit);
    let (_, report) = workflow::convert(std::slice::from_ref(input), io::sink(), &opts).expect("convert");
    report.outputs.iter().flat_map(|o| o.keys.values()).sum()
}

/// One pass: [`ClusterSplit`] over `n` [`WriterSink`]s (no hints); returns the keys routed.
fn split_route(data: &[u8], n: usize) -> u64 {
    let mut r = SliceReader::with_options(data, ReadOptions::fast()).expect("header");
    let header = r.header();
    let sinks = (0..n).map(|_| WriterSink::new(io::sink(), header, false).expect("sink")).collect();
    let mut split = ClusterSplit::new(ShardLayout::even(n).expect("layout"), sinks, None).expect("split");
    drive(&mut r, &mut split).expect("drive");
    split.finish().expect("finish");
    split.keys_per_shard().iter().sum()
}

/// [`DbFilter::limit`] → [`WriterSink`]; returns the bytes written.
fn db_limit(data: &[u8], limit: u64) -> u64 {
    let mut r = SliceReader::with_options(data, ReadOptions::fast()).expect("header");
    let sink = WriterSink::new(io::sink(), r.header(), false).expect("sink");
    let mut f = DbFilter::limit(sink, limit);
    drive(&mut r, &mut f).expect("drive");
    let n = f.inner().bytes_written();
    f.finish().expect("finish");
    n
}

fn sinks(n: usize) -> Vec<io::Sink> {
    (0..n).map(|_| io::sink()).collect()
}

fn benches(c: &mut Criterion) {
    let path = common::bench_file("pipelines");
    // The workflows read the file as the CLI does (positioned reads into buffers, parsed on a second thread); the
    // `_mapped` variants and the slice benches read a memory map of it.
    let input = Input::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: nothing modifies the bench file while the benches run.
    let mapped = unsafe { Input::open_mapped(&path) }.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let data: &[u8] = mapped.bytes().expect("a plain (not gzip) bench file");
    eprintln!("pipelines bench: {} ({} bytes)", path.display(), data.len());
    // The pass-through must reproduce the file (the bench would be meaningless otherwise).
    assert!(pass_through(data, Vec::new()) == data, "pass-through does not reproduce the input");

    // Passes on the 100 MB file take about 0.05–0.15 s (scan, pass-through, splits, filters, page), 1–1.5 s
    // (re-encode) and about 1.2 s (gzip) on an idle machine; the measurement times fit 10 flat samples of each,
    // keeping the whole run around two minutes.
    let mut g = c.benchmark_group("pipelines");
    g.throughput(Throughput::Bytes(data.len() as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("key_scan", |b| b.iter(|| key_scan(black_box(data))));
    g.bench_function("pass_through", |b| b.iter(|| pass_through(black_box(data), io::sink())));
    g.bench_function("export_page", |b| {
        b.iter(|| pass_through(black_box(data), PageAlign::new(io::sink())).finish().expect("pad"))
    });
    g.bench_function("db_limit", |b| b.iter(|| db_limit(black_box(data), 2)));
    g.bench_function("split3_route", |b| b.iter(|| split_route(black_box(data), 3)));
    g.bench_function("split3", |b| b.iter(|| split_workflow(black_box(&input), sinks(3), true)));
    g.bench_function("split3_mapped", |b| b.iter(|| split_workflow(black_box(&mapped), sinks(3), true)));
    g.bench_function("split3_serial", |b| b.iter(|| split_workflow(black_box(&input), sinks(3), false)));
    g.bench_function("convert_db_limit", |b| b.iter(|| convert_db_limit(black_box(&input), 2)));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary directory under target/");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("split3_files", |b| {
        b.iter(|| {
            let files = (0..3).map(|i| AtomicFile::create(dir.path().join(format!("s{i}.rdb"))).expect("create"));
            split_workflow(black_box(&input), files.collect(), true)
        })
    });
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(10));
    g.bench_function("re_encode", |b| b.iter(|| re_encode(black_box(data))));
    g.measurement_time(Duration::from_secs(13));
    g.bench_function("export_gzip", |b| {
        b.iter(|| {
            let gz = GzipWriter::new(io::sink(), 6).expect("level");
            pass_through(black_box(data), gz).finish().expect("gzip trailer")
        })
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    g.bench_function("export_gzip_parallel", |b| {
        b.iter(|| {
            let gz = ParallelGzipWriter::new(io::sink(), 6, cores).expect("level");
            pass_through(black_box(data), gz).finish().expect("gzip trailer")
        })
    });
    g.bench_function("flate2_gzip", |b| {
        b.iter(|| {
            let mut gz = GzEncoder::new(io::sink(), Compression::new(6));
            gz.write_all(black_box(data)).expect("compress");
            gz.finish().expect("gzip trailer")
        })
    });
    g.finish();
}

criterion_group!(pipelines, benches);
criterion_main!(pipelines);
