//! The writer against real files: byte-identical pass-through of every corpus file and fixture, re-encoding at
//! every version read back equal, and conversions that must be refused or reported.

mod common;

use rdbkit::read::{Checksum, Flavor, Header, OwnedValue, ReadOptions, RecordKind, SliceReader};
use rdbkit::write::{EntryMeta, RdbWriter, WriterOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Every RDB input we have: fixtures and (when present) the corpus.
fn all_inputs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = common::fixtures().into_iter().map(|(rdb, _)| rdb).collect();
    match common::corpus_dir() {
        Some(c) => v.extend(common::corpus_inputs(&c)),
        None => eprintln!("skipped part: ../shared/corpus not found (fixtures only)"),
    }
    v
}

fn is_corrupt(p: &std::path::Path) -> bool {
    p.ends_with("corrupt_ziplist.rdb")
}

/// Reading a file and writing every record through at the same version reproduces it byte for byte, checksum
/// included (bytes after the checksum, e.g. an AOF tail, are not part of the RDB).
#[test]
fn pass_through_is_byte_identical() {
    let mut checked = 0;
    for path in all_inputs() {
        if is_corrupt(&path) {
            continue;
        }
        let data = common::read(&path);
        let mut reader = SliceReader::new(&data).unwrap();
        let header = reader.header();
        let mut records = Vec::new();
        let mut stored = None;
        while let Some(rec) = reader.next_record().unwrap() {
            if let RecordKind::Eof { checksum } = rec.kind {
                stored = checksum;
            }
            records.push(rec);
        }
        let opts = WriterOptions { checksum_disabled: stored == Some(0), ..WriterOptions::default() };
        let mut w = RdbWriter::with_options(Vec::new(), header, opts).unwrap();
        for rec in &records {
            w.raw_record(rec).unwrap();
        }
        let out = w.finish().unwrap();
        let end = reader.position() as usize;
        assert_eq!(out.len(), end, "{}", common::short(&path));
        assert!(out == data[..end], "{}: pass-through differs", common::short(&path));
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} files checked");
}

fn decoded_keys(data: &[u8]) -> BTreeMap<(u64, Vec<u8>), (Option<i64>, OwnedValue)> {
    let mut out = BTreeMap::new();
    for rec in SliceReader::new(data).unwrap() {
        let rec = rec.unwrap();
        if let RecordKind::Entry(e) = rec.kind {
            let key = e.key.decode().unwrap().into_owned();
            out.insert((e.db, key), (e.expiry.map(|x| x.as_millis()), e.value.to_owned_value().unwrap()));
        }
    }
    out
}

/// Normalizes what a format does not preserve: set and hash order (hashtables are unordered), zset order.
fn normalize(v: &OwnedValue) -> OwnedValue {
    match v.clone() {
        OwnedValue::Set(mut s) => {
            s.sort();
            OwnedValue::Set(s)
        }
        OwnedValue::Hash(mut h) => {
            h.sort_by(|a, b| a.0.cmp(&b.0));
            OwnedValue::Hash(h)
        }
        OwnedValue::ZSet(mut z) => {
            z.sort_by(|a, b| a.0.cmp(&b.0));
            OwnedValue::ZSet(z)
        }
        OwnedValue::Stream(mut s) => {
            // Derived metadata and client-clock fields are not compared here; entries and groups are.
            s.first_id = None;
            s.max_deleted_id = None;
            s.entries_added = None;
            for g in &mut s.groups {
                g.entries_read = None;
                for c in &mut g.consumers {
                    c.active_time = None;
                }
            }
            OwnedValue::Stream(s)
        }
        other => other,
    }
}

/// Every key of every fixture, re-encoded for every version that can hold it, reads back equal.
#[test]
fn re_encode_every_fixture_at_every_version() {
    let mut targets: Vec<Header> = (1..=12).map(|v| Header::new(Flavor::Redis, v)).collect();
    targets.push(Header::new(Flavor::Valkey, 80));
    for (path, _) in common::fixtures() {
        let data = common::read(&path);
        let original = decoded_keys(&data);
        for &target in &targets {
            let mut w = RdbWriter::new(Vec::new(), target).unwrap();
            let mut db = None;
            let mut written = BTreeMap::new();
            for ((kdb, key), (exp, value)) in &original {
                if db != Some(*kdb) {
                    w.select_db(*kdb).unwrap();
                    db = Some(*kdb);
                }
                let meta = EntryMeta { expiry: exp.map(rdbkit::read::Expiry::Millis), ..EntryMeta::default() };
                match w.entry(key, value, meta) {
                    Ok(dropped) => {
                        assert!(dropped.is_empty(), "not lossy, yet dropped {dropped:?}");
                        written.insert((*kdb, key.clone()), (*exp, normalize(value)));
                    }
                    Err(e) => {
                        assert!(
                            matches!(e.kind(), rdbkit::ErrorKind::Unrepresentable(_)),
                            "{} → {}: {e}",
                            common::short(&path),
                            target.magic()
                        );
                    }
                }
            }
            let out = w.finish().unwrap();
            let back: BTreeMap<_, _> =
                decoded_keys(&out).into_iter().map(|(k, (exp, v))| (k, (exp, normalize(&v)))).collect();
            assert_eq!(back.len(), written.len(), "{} → {}", common::short(&path), target.magic());
            for (k, v) in &written {
                assert_eq!(back.get(k), Some(v), "{} → {}: key {:?}", common::short(&path), target.magic(), k);
            }
            // And the result passes deep validation and the checksum.
            let mut r = SliceReader::with_options(&out, ReadOptions::default()).unwrap();
            while r.next_record().unwrap().is_some() {}
            if target.version >= 5 {
                assert!(matches!(r.checksum(), Some(Checksum::Ok(_))));
            }
        }
    }
}

/// Sizes: re-encoding a real server's file at its own version gives a file within 2% of the server's size.
#[test]
fn re_encoded_size_matches_what_redis_writes() {
    for (path, _) in common::fixtures() {
        let data = common::read(&path);
        let header = SliceReader::new(&data).unwrap().header();
        let mut w = RdbWriter::new(Vec::new(), header).unwrap();
        let mut original_value_bytes = 0usize;
        let mut db = None;
        for rec in SliceReader::new(&data).unwrap() {
            let rec = rec.unwrap();
            if let RecordKind::Entry(e) = rec.kind {
                if db != Some(e.db) {
                    w.select_db(e.db).unwrap();
                    db = Some(e.db);
                }
                original_value_bytes += rec.raw.len();
                let key = e.key.decode().unwrap();
                let meta = EntryMeta { expiry: e.expiry, idle: e.idle, freq: e.freq };
                w.entry(&key, &e.value.to_owned_value().unwrap(), meta).unwrap();
            }
        }
        let out = w.finish().unwrap();
        let mut rewritten = 0usize;
        for rec in SliceReader::new(&out).unwrap() {
            let rec = rec.unwrap();
            if let RecordKind::Entry(_) = rec.kind {
                rewritten += rec.raw.len();
            }
        }
        let ratio = rewritten as f64 / original_value_bytes as f64;
        assert!(
            (0.98..=1.02).contains(&ratio),
            "{}: {rewritten} vs {original_value_bytes} bytes",
            common::short(&path)
        );
    }
}
