//! The library as a Rust user meets it (issue 11): only the public API, for the common jobs — keys with types and
//! TTLs from a slice and from a reader, a convert with a database filter into a `Vec<u8>`, an in-memory 3-shard
//! split of a multi-MB input whose every output verifies, and workflows over in-memory and `io::Read` inputs.

use rdbkit::cluster::{ShardLayout, key_hash_slot};
use rdbkit::input::Input;
use rdbkit::read::{Checksum, Expiry, Flavor, Header, OwnedValue, ReadOptions, RecordKind, SliceReader, StreamReader};
use rdbkit::transform::{ClusterSplit, RecordSink, WriterSink};
use rdbkit::workflow::{self, JobOptions};
use rdbkit::write::{EntryMeta, RdbWriter};
use std::collections::BTreeMap;

/// `(db, key) → (type name, expiry ms)` of every key.
type KeyTable = BTreeMap<(u64, Vec<u8>), (&'static str, Option<i64>)>;

/// Every key, read with the zero-copy slice reader.
fn keys_of_slice(data: &[u8]) -> KeyTable {
    let mut out = BTreeMap::new();
    for rec in SliceReader::new(data).unwrap() {
        if let RecordKind::Entry(e) = rec.unwrap().kind {
            let key = e.key.decode().unwrap().into_owned();
            out.insert((e.db, key), (e.value.logical_type().name(), e.expiry.map(|x| x.as_millis())));
        }
    }
    out
}

/// The same, with the streaming reader over any `io::Read`.
fn keys_of_reader(r: impl std::io::Read) -> KeyTable {
    let mut out = BTreeMap::new();
    let mut reader = StreamReader::new(r).unwrap();
    while let Some(rec) = reader.next_record().unwrap() {
        if let RecordKind::Entry(e) = rec.kind {
            let key = e.key.decode().unwrap().into_owned();
            out.insert((e.db, key), (e.value.logical_type().name(), e.expiry.map(|x| x.as_millis())));
        }
    }
    out
}

/// A multi-MB Redis 7.0 (RDB 10) file: `n` keys of every common type in databases 0 and 1 (a tenth with a TTL).
fn big_input(n: usize) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new(), Header::new(Flavor::Redis, 10)).unwrap();
    w.aux(b"redis-ver", b"7.0.15").unwrap();
    for db in 0..2u64 {
        w.select_db(db).unwrap();
        for i in 0..n {
            let key = format!("user:{db}:{i:07}");
            let value = match i % 4 {
                0 => OwnedValue::String(noise(i as u64, 2_000)),
                1 => OwnedValue::List((0..20).map(|j| format!("item-{i}-{j}").into_bytes()).collect()),
                2 => OwnedValue::Hash((0..10).map(|j| (format!("f{j}").into_bytes(), vec![b'v'; 40], None)).collect()),
                _ => OwnedValue::ZSet((0..10).map(|j| (format!("m{j}").into_bytes(), j as f64 * 0.5)).collect()),
            };
            let expiry = (i % 10 == 0).then_some(Expiry::Millis(4_102_444_800_000 + i as i64));
            w.entry(key.as_bytes(), &value, EntryMeta::expiring(expiry)).unwrap();
        }
    }
    w.finish().unwrap()
}

/// `len` bytes that LZF cannot shrink (xorshift64).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every record of `data` passes deep validation and the stored checksum is right; returns the keys per database.
fn verified_keys(what: &str, data: &[u8]) -> BTreeMap<u64, u64> {
    let mut r = SliceReader::with_options(data, ReadOptions::default()).unwrap();
    let mut keys = BTreeMap::new();
    while let Some(rec) = r.next_record().unwrap_or_else(|e| panic!("{what}: {e}")) {
        if let RecordKind::Entry(e) = rec.kind {
            *keys.entry(e.db).or_insert(0) += 1;
        }
    }
    assert!(matches!(r.checksum(), Some(Checksum::Ok(_))), "{what}: checksum {:?}", r.checksum());
    keys
}

#[test]
fn keys_types_and_ttls_from_a_slice_and_from_a_reader() {
    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/redis-7.0.rdb")).unwrap();
    let from_slice = keys_of_slice(&data);
    let from_reader = keys_of_reader(std::io::Cursor::new(&data));
    assert!(from_slice.len() > 20, "{} keys", from_slice.len());
    assert_eq!(from_slice, from_reader);
    let types: std::collections::BTreeSet<_> = from_slice.values().map(|(t, _)| *t).collect();
    for t in ["string", "list", "set", "zset", "hash", "stream"] {
        assert!(types.contains(t), "no {t} in {types:?}");
    }
    assert!(from_slice.values().any(|(_, ttl)| ttl.is_some()), "no key with a TTL");
}

#[test]
fn convert_with_a_database_filter_into_a_vec() {
    let data = big_input(2_000);
    let input = Input::from_bytes("big", data.clone()).unwrap();
    let mut opts = JobOptions::new(Header::new(Flavor::Redis, 9));
    opts.selection.dbs.only = Some(1);
    let (out, report) = workflow::convert(&[input], Vec::new(), &opts).unwrap();
    assert_eq!(&out[..9], b"REDIS0009");
    let keys = verified_keys("converted", &out);
    assert_eq!(keys, BTreeMap::from([(1, 2_000)]), "database 1 only");
    assert_eq!(report.outputs[0].keys, keys);
    // The kept keys are the input's database-1 keys, with their types and TTLs.
    let want: BTreeMap<_, _> = keys_of_slice(&data).into_iter().filter(|((db, _), _)| *db == 1).collect();
    assert_eq!(keys_of_slice(&out), want);
}

/// The path that once produced shards with a checksum over bytes never written: `ClusterSplit` over
/// `WriterSink`s with recounted hints, outputs far beyond the writer's buffer. What `into_output` hands back must
/// verify as it is.
#[test]
fn in_memory_three_shard_split_of_a_multi_mb_input_verifies() {
    let data = big_input(6_000);
    assert!(data.len() > 5 << 20, "{} bytes", data.len());
    let layout = ShardLayout::even(3).unwrap();
    let header = Header::new(Flavor::Redis, 12);
    let sinks = (0..3)
        .map(|_| WriterSink::new(Vec::new(), header, false).unwrap().recounting_hints(true).unwrap())
        .collect::<Vec<_>>();
    let mut split = ClusterSplit::new(layout.clone(), sinks, None).unwrap();
    for rec in SliceReader::new(&data).unwrap() {
        split.record(&rec.unwrap()).unwrap();
    }
    split.finish().unwrap();
    let mut total = 0;
    for (i, shard) in split.into_shards().into_iter().enumerate() {
        let out = shard.into_output().unwrap();
        assert!(out.len() > 1 << 20, "shard {i}: {} bytes", out.len());
        let keys = verified_keys(&format!("shard {i}"), &out);
        // Database 0 only, each key on its slot's shard, and the recounted hints equal to what is there.
        assert_eq!(keys.keys().copied().collect::<Vec<_>>(), vec![0], "shard {i}");
        let mut hinted = 0;
        for rec in SliceReader::new(&out).unwrap() {
            match rec.unwrap().kind {
                RecordKind::Entry(e) => {
                    let slot = key_hash_slot(&e.key.decode().unwrap());
                    assert_eq!(layout.shard_of_slot(slot), Some(i), "slot {slot}");
                }
                RecordKind::ResizeDb { db_size, .. } => hinted += db_size,
                _ => {}
            }
        }
        assert_eq!(hinted, keys[&0], "shard {i}: RESIZEDB says {hinted}");
        total += keys[&0];
    }
    assert_eq!(total, 6_000);

    // The workflow does the same over Vec outputs.
    let input = Input::from_bytes("big", data).unwrap();
    let (outs, report) =
        workflow::split(&[input], layout, vec![Vec::new(), Vec::new(), Vec::new()], &JobOptions::new(header)).unwrap();
    let keys: u64 = outs.iter().enumerate().map(|(i, o)| verified_keys(&format!("split {i}"), o)[&0]).sum();
    assert_eq!(keys, 6_000);
    assert_eq!(report.outputs.len(), 3);
}

/// Recounted hints need an output that can overwrite placeholders: a gzip stream cannot, and is refused up front
/// instead of yielding a file whose checksum covers bytes never written.
#[test]
fn recounted_hints_refuse_an_output_that_cannot_patch() {
    let gz = rdbkit::io::GzipWriter::new(Vec::new(), 1).unwrap();
    let sink = WriterSink::new(gz, Header::new(Flavor::Redis, 12), false).unwrap();
    let err = sink.recounting_hints(true).err().expect("a gzip output cannot patch");
    assert!(err.to_string().contains("overwrite"), "{err}");
}

#[test]
fn workflows_read_any_io_read() {
    let data = big_input(1_500);
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        e.finish().unwrap()
    };
    let want = keys_of_slice(&data);
    for (what, input) in [
        ("plain reader", Input::from_stream("reader", std::io::Cursor::new(data.clone())).unwrap()),
        ("gzip reader", Input::from_stream("gz", std::io::Cursor::new(gz.clone())).unwrap()),
        ("gzip bytes", Input::from_bytes("gz-bytes", gz.clone()).unwrap()),
    ] {
        let (out, _) = workflow::convert(&[input], Vec::new(), &JobOptions::new(Header::new(Flavor::Redis, 11)))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        verified_keys(what, &out);
        assert_eq!(keys_of_slice(&out), want, "{what}");
    }
}

/// What a target cannot hold comes back typed, so a caller can branch on it (here: offer `--lossy`, or pick a
/// newer target).
#[test]
fn unrepresentable_errors_are_typed() {
    use rdbkit::ErrorKind;
    use rdbkit::read::Feature;
    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/redis-7.0.rdb")).unwrap();
    let target = Header::new(Flavor::Redis, 8);
    assert!(!target.supports(Feature::Streams) && target.supports(Feature::ModuleValues));
    let input = Input::from_bytes("redis-7.0", data).unwrap();
    let Err(err) = workflow::convert(&[input], Vec::new(), &JobOptions::new(target)) else {
        panic!("streams need RDB 9");
    };
    match err.kind() {
        ErrorKind::Unrepresentable { what, target: t, count, .. } => {
            assert_eq!(*t, target);
            assert!(*count >= 1);
            assert!(what.feature().is_some_and(|f| !target.supports(f)), "{what:?}");
        }
        other => panic!("not typed: {other:?}"),
    }
}

/// Names parse and print as the servers and the CLI spell them; `entries()` walks the keys alone.
#[test]
fn names_display_and_parse_and_entries_walk_the_keys() {
    use rdbkit::read::LogicalType;
    use rdbkit::target::Target;
    for magic in ["REDIS0001", "REDIS0011", "REDIS0012", "VALKEY080"] {
        let h: Header = magic.parse().unwrap();
        assert_eq!(h.to_string(), magic);
    }
    assert!("REDIS0013".parse::<Header>().is_err() && "REDIS".parse::<Header>().is_err());
    for t in ["string", "list", "set", "zset", "hash", "stream", "module"] {
        assert_eq!(t.parse::<LogicalType>().unwrap().to_string(), t);
    }
    assert!("sorted".parse::<LogicalType>().is_err());
    let t: Target = "redis-7.0".parse().unwrap();
    assert_eq!((t.to_string(), t.header), ("redis-7.0".to_string(), Header::new(Flavor::Redis, 10)));
    assert!("redis-99".parse::<Target>().is_err());

    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/redis-7.0.rdb")).unwrap();
    let mut entries = SliceReader::new(&data).unwrap().entries();
    let keys: Vec<_> = entries.by_ref().map(|e| e.unwrap().key.decode().unwrap().into_owned()).collect();
    assert_eq!(keys.len(), keys_of_slice(&data).len());
    assert!(matches!(entries.reader().checksum(), Some(Checksum::Ok(_))), "read to the end");
    // A truncated file: the keys before the cut, then the error, then nothing.
    let cut = &data[..data.len() * 2 / 3];
    let got: Vec<_> = SliceReader::new(cut).unwrap().entries().collect();
    assert!(got.last().unwrap().is_err() && got[..got.len() - 1].iter().all(Result::is_ok));
}
