//! Record sinks: composable stages between a reader and a writer.
//!
//! A [`RecordSink`] receives parsed records one at a time. Filters ([`DbFilter`], [`KeyFilter`], [`Dedup`])
//! forward what they keep to the next sink and count what they drop; [`WriterSink`] writes records into an RDB
//! (passing raw bytes through when the target can hold them, re-encoding otherwise); [`ClusterSplit`] routes keys
//! to one sink per shard by hash slot. Sinks nest like `io::Write` adapters:
//!
//! ```
//! use rdbkit::read::{Flavor, Header, SliceReader};
//! use rdbkit::transform::{DbFilter, RecordSink, WriterSink, drive};
//! # fn main() -> rdbkit::Result<()> {
//! # let mut input = b"REDIS0011\xfe\x00\x00\x01a\x01x\xfe\x05\x00\x01b\x01y\xff".to_vec();
//! # input.extend_from_slice(&[0; 8]);
//! let writer = WriterSink::new(Vec::new(), Header::new(Flavor::Redis, 11), false)?;
//! let mut sink = DbFilter::limit(writer, 4); // keep databases 0..=3
//! drive(&mut SliceReader::new(&input)?, &mut sink)?;
//! sink.finish()?;
//! assert_eq!(sink.dropped_keys().get(&5), Some(&1));
//! let out = sink.into_inner().into_output().unwrap();
//! assert_eq!(SliceReader::new(&out)?.filter(|r| matches!(r.as_ref().unwrap().kind,
//!     rdbkit::read::RecordKind::Entry(_))).count(), 1);
//! # Ok(()) }
//! ```

mod db;
mod dedup;
mod drive;
pub mod glob;
mod keys;
mod split;
mod writer;

pub use db::{DbFilter, DbRules};
pub use dedup::{Dedup, OnDuplicate};
pub(crate) use drive::{Walk, drive_parallel_walk};
pub use drive::{drive, drive_parallel};
pub use keys::{KeyFilter, KeyFilterCounts};
pub use split::{ClusterSplit, ShardHints, SlotCounts, shard_hints};
pub use writer::{Dropped, WriterSink};

use crate::error::Result;
use crate::read::{Record, SliceReader, StreamReader};
use std::io::Read;

/// A stage that receives records.
pub trait RecordSink {
    /// Receives one record (EOF included).
    fn record(&mut self, rec: &Record<'_>) -> Result<()>;
    /// Called once after the last input's EOF: completes outputs.
    fn finish(&mut self) -> Result<()>;
}

impl<S: RecordSink + ?Sized> RecordSink for &mut S {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        (**self).record(rec)
    }
    fn finish(&mut self) -> Result<()> {
        (**self).finish()
    }
}

impl<S: RecordSink + ?Sized> RecordSink for Box<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        (**self).record(rec)
    }
    fn finish(&mut self) -> Result<()> {
        (**self).finish()
    }
}

/// A source of records: the slice and streaming readers.
pub trait RecordSource {
    /// The next record, `None` after EOF.
    fn next_rec(&mut self) -> Result<Option<Record<'_>>>;
}

impl RecordSource for SliceReader<'_> {
    fn next_rec(&mut self) -> Result<Option<Record<'_>>> {
        self.next_record()
    }
}

impl<R: Read> RecordSource for StreamReader<R> {
    fn next_rec(&mut self) -> Result<Option<Record<'_>>> {
        self.next_record()
    }
}

#[cfg(test)]
mod tests {
    use super::drive::{Balance, drive_parallel_with};
    use super::*;
    use crate::read::ReadOptions;

    /// What a sink was given, and how the drive ended.
    #[derive(Default)]
    struct Seen(Vec<(u64, usize)>);

    impl RecordSink for Seen {
        fn record(&mut self, rec: &Record<'_>) -> Result<()> {
            self.0.push((rec.offset, rec.raw.len()));
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// The records seen (offset, length) and the error message ("" when none).
    fn serial(data: &[u8], opts: ReadOptions) -> Option<(Vec<(u64, usize)>, String)> {
        let mut r = SliceReader::with_options(data, opts).ok()?;
        let mut seen = Seen::default();
        let res = drive(&mut r, &mut seen).map_err(|e| e.to_string());
        Some((seen.0, res.err().unwrap_or_default()))
    }

    fn parallel(data: &[u8], opts: ReadOptions, batch: usize, balance: Balance) -> (Vec<(u64, usize)>, String) {
        let mut r = SliceReader::with_options(data, opts).unwrap();
        let mut seen = Seen::default();
        let res = drive_parallel_with(&mut r, &mut seen, batch, balance).map_err(|e| e.to_string());
        assert_eq!(r.options(), opts, "the reader's options are restored");
        (seen.0, res.err().unwrap_or_default())
    }

    /// Deep validation shared between the threads, in every arrangement, reports exactly what one deep reader
    /// does: on every fixture, cut short, and with bytes flipped (which mostly breaks deep invariants only).
    #[test]
    fn parallel_deep_validation_matches_the_serial_reader() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
            .collect();
        files.sort();
        assert!(files.len() >= 4);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut cases = 0;
        for path in files {
            let data = std::fs::read(&path).unwrap();
            let mut variants = vec![data.clone(), data[..data.len() / 2].to_vec()];
            for _ in 0..24 {
                let mut v = data.clone();
                let at = 9 + (next() as usize) % (v.len() - 9);
                v[at] ^= 1 << (next() % 8);
                variants.push(v);
            }
            for v in &variants {
                for opts in
                    [ReadOptions::default(), ReadOptions { deep: true, verify_checksum: false, duplicate_keys: true }]
                {
                    let Some((want_seen, want)) = serial(v, opts) else { continue };
                    for balance in [Balance::Reader, Balance::Sink, Balance::Adaptive] {
                        for batch in [1, 64] {
                            let (seen, got) = parallel(v, opts, batch, balance);
                            assert_eq!(got, want, "{}: {balance:?}, batch {batch}", path.display());
                            assert_eq!(seen, want_seen, "{}: {balance:?}, batch {batch}", path.display());
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert!(cases > 500);
    }
}
