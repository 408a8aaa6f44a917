//! Writing your own record sink: a filter that keeps only keys with a given prefix and counts bytes per type,
//! placed in front of an RDB writer whose output goes to an "uploader" (here a byte sink that counts what would be
//! sent to object storage; a real one would stream the bytes to a blob store).
//!
//! ```sh
//! cargo run --example custom_sink -- testdata/redis-7.0.rdb str:
//! ```

use rdbkit::input::Input;
use rdbkit::read::{LogicalType, ReadOptions, Record, RecordKind};
use rdbkit::transform::{RecordSink, WriterSink, drive};
use std::collections::BTreeMap;
use std::io::Write;

/// Keeps keys starting with `prefix`, forwards everything else (AUX fields, SELECTDB, functions) unchanged.
struct PrefixFilter<S> {
    prefix: Vec<u8>,
    next: S,
    bytes_by_type: BTreeMap<&'static str, u64>,
    skipped: u64,
}

impl<S: RecordSink> RecordSink for PrefixFilter<S> {
    fn record(&mut self, rec: &Record<'_>) -> rdbkit::Result<()> {
        if let RecordKind::Entry(e) = rec.kind {
            if !e.key.decode()?.starts_with(&self.prefix) {
                self.skipped += 1;
                return Ok(());
            }
            let t: LogicalType = e.value.logical_type();
            *self.bytes_by_type.entry(t.name()).or_default() += rec.raw.len() as u64;
        }
        // Records are passed by reference and borrow the input: forwarding costs nothing.
        self.next.record(rec)
    }

    fn finish(&mut self) -> rdbkit::Result<()> {
        self.next.finish()
    }
}

/// Stands in for an object-storage upload: counts bytes and "parts" of 4 MiB.
#[derive(Default)]
struct Uploader {
    sent: u64,
    parts: u64,
    pending: usize,
}

impl Write for Uploader {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sent += buf.len() as u64;
        self.pending += buf.len();
        while self.pending >= 4 << 20 {
            self.pending -= 4 << 20;
            self.parts += 1;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> rdbkit::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "testdata/redis-7.0.rdb".into());
    let prefix = args.next().unwrap_or_else(|| "str:".into());
    let input = Input::open(&path)?;
    let header = input.header()?;

    let writer = WriterSink::new(Uploader::default(), header, false)?;
    let mut sink =
        PrefixFilter { prefix: prefix.into_bytes(), next: writer, bytes_by_type: BTreeMap::new(), skipped: 0 };
    input.with_source(ReadOptions::default(), |src| drive(src, &mut sink))?;
    sink.finish()?;

    let kept: u64 = sink.next.keys_per_db().values().sum();
    println!("kept {kept} keys, skipped {}", sink.skipped);
    for (t, b) in &sink.bytes_by_type {
        println!("  {t}: {b} bytes");
    }
    let uploaded = sink.next.into_output().expect("finished");
    println!("uploaded {} bytes ({} full 4 MiB parts)", uploaded.sent, uploaded.parts);
    Ok(())
}
