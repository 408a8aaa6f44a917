//! Benchmarks of the byte-level primitives against the crates they replace: CRC-64 (crc-fast wrapper vs `crc64`),
//! LZF decompression and compression (in-crate vs the `lzf` crate).
//!
//! Run with `cargo bench --bench primitives` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rdbkit::format::{crc, lzf};

/// Deterministic text-like data: words from a small vocabulary chosen by a xorshift generator.
fn text_like(len: usize) -> Vec<u8> {
    const WORDS: &[&[u8]] = &[
        b"user",
        b"session",
        b"id",
        b"cart",
        b"item",
        b"price",
        b"42",
        b"2024-11-05T10:22:31Z",
        b"ok",
        b"error",
        b"value",
        b"name",
        b"redis",
        b"key",
        b"field",
        b"true",
        b"false",
        b"null",
        b"1337",
        b"alpha",
        b"beta",
        b"gamma",
        b"delta",
        b"{\"a\":1}",
        b"lorem",
        b"ipsum",
        b"dolor",
        b"sit",
        b"amet",
    ];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize]);
        out.push(if x & 0x300 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

fn bench_crc(c: &mut Criterion) {
    let data = text_like(1 << 20);
    let mut g = c.benchmark_group("crc64_1MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("rdbkit_crc-fast", |b| b.iter(|| crc::crc64(0, black_box(&data))));
    g.bench_function("crc64_crate", |b| b.iter(|| crc64::crc64(0, black_box(&data))));
    g.finish();
}

fn bench_decompress(c: &mut Criterion) {
    for (name, len) in [("lzf_decompress_1MiB", 1usize << 20), ("lzf_decompress_256B", 256)] {
        let data = text_like(len);
        let packed = ::lzf::compress(&data).expect("text compresses");
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function("rdbkit", |b| {
            b.iter(|| {
                let mut out = Vec::new();
                lzf::decompress_into(black_box(&packed), len, &mut out).expect("valid");
                out
            })
        });
        g.bench_function("rdbkit_reused_buf", |b| {
            let mut out = Vec::with_capacity(len);
            b.iter(|| {
                out.clear();
                lzf::decompress_into(black_box(&packed), len, &mut out).expect("valid");
                out.len()
            })
        });
        g.bench_function("lzf_crate", |b| b.iter(|| ::lzf::decompress(black_box(&packed), len).expect("valid")));
        g.finish();
    }
}

fn bench_compress(c: &mut Criterion) {
    for (name, len) in [("lzf_compress_256B", 256usize), ("lzf_compress_64KiB", 64 << 10)] {
        let data = text_like(len);
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function("rdbkit", |b| {
            let mut comp = lzf::Compressor::new();
            let mut out = Vec::with_capacity(len);
            b.iter(|| {
                out.clear();
                assert!(comp.compress(black_box(&data), &mut out, len));
                out.len()
            })
        });
        g.bench_function("lzf_crate", |b| b.iter(|| ::lzf::compress(black_box(&data)).expect("compresses")));
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_crc, bench_decompress, bench_compress
}
criterion_main!(benches);
