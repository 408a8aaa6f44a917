//! The writing commands end to end: page-aligned and gzip exports, database limits of tiers, cluster splits and
//! their manifests, refusals and lossy conversions, and failures that must leave no output behind.

mod common;

use rdbkit::cluster::{ShardLayout, key_hash_slot};
use rdbkit::read::{OwnedValue, RecordKind, SliceReader, StreamReader};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rdbkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdbkit")).args(args).output().expect("run rdbkit")
}

fn ok(args: &[&str]) -> String {
    let out = rdbkit(args);
    assert!(
        out.status.success(),
        "rdbkit {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fixture(name: &str) -> String {
    common::testdata_dir().join(name).display().to_string()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

type Keys = BTreeMap<(u64, Vec<u8>), OwnedValue>;

fn keys_of(data: &[u8]) -> Keys {
    let mut out = BTreeMap::new();
    let mut r = StreamReader::new(data).expect("header");
    while let Some(rec) = r.next_record().expect("record") {
        if let RecordKind::Entry(e) = rec.kind {
            out.insert((e.db, e.key.decode().unwrap().into_owned()), e.value.to_owned_value().unwrap());
        }
    }
    out
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A one-key RDB whose string value has `n` bytes (not compressible), so file sizes step by one byte.
fn one_key_file(n: usize) -> Vec<u8> {
    let mut w =
        rdbkit::write::RdbWriter::new(Vec::new(), rdbkit::read::Header::new(rdbkit::read::Flavor::Redis, 10)).unwrap();
    w.select_db(0).unwrap();
    // xorshift bytes: incompressible, so LZF never kicks in and sizes grow one byte at a time.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let value: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    w.entry(b"k", &OwnedValue::String(value), rdbkit::write::EntryMeta::default()).unwrap();
    w.finish().unwrap()
}

#[test]
fn page_aligned_exports_of_many_sizes() {
    let dir = tmp();
    let mut inputs: Vec<(String, usize)> = common::fixtures().iter().map(|(r, _)| (p(r), 0)).collect();
    // Unpadded sizes from 480 to 1100 bytes, one byte apart: crosses 512 and 1024 exactly.
    for n in (450..1070).step_by(1) {
        let f = dir.path().join(format!("in{n}.rdb"));
        std::fs::write(&f, one_key_file(n)).unwrap();
        inputs.push((p(&f), n));
    }
    let mut aligned_inputs = 0;
    for (i, (input, _)) in inputs.iter().enumerate() {
        let out = dir.path().join(format!("p{i}.rdb"));
        ok(&["convert", input, "-o", out.to_str().unwrap(), "--page-align", "-q"]);
        let bytes = std::fs::read(&out).unwrap();
        let original = std::fs::read(input).unwrap();
        assert_eq!(bytes.len() % 512, 0, "{input}: {} bytes", bytes.len());
        // Same RDB bytes, then only zeros, and no padding at all when already aligned.
        assert_eq!(&bytes[..original.len()], &original[..], "{input}");
        assert!(bytes[original.len()..].iter().all(|&b| b == 0));
        assert!(bytes.len() - original.len() < 512);
        if original.len() % 512 == 0 {
            aligned_inputs += 1;
            assert_eq!(bytes.len(), original.len());
        }
        let mut r = SliceReader::new(&bytes).unwrap();
        while r.next_record().unwrap().is_some() {}
        assert!(r.trailing().unwrap().all_zero);
        assert_eq!(keys_of(&bytes), keys_of(&original));
    }
    assert!(aligned_inputs >= 1, "no input was already aligned");
}

#[test]
fn gzip_export_restores_exactly_and_reads_directly() {
    let dir = tmp();
    let input = fixture("redis-7.0.rdb");
    ok(&["export", &input, "--prefix", "bk", "--out-dir", dir.path().to_str().unwrap(), "--blob", "gzip", "-q"]);
    let gz = dir.path().join("bk.rdb.gz");
    let plain = dir.path().join("plain.rdb");
    ok(&["convert", &input, "-o", plain.to_str().unwrap(), "-q"]);
    match Command::new("gzip").arg("-dc").arg(&gz).output() {
        Ok(out) if out.status.success() => assert!(out.stdout == std::fs::read(&plain).unwrap()),
        _ => eprintln!("skipped part: no gzip binary"),
    }
    // The reader reads .gz directly, to the same data.
    let a = ok(&["info", gz.to_str().unwrap(), "--json"]);
    let b = ok(&["info", plain.to_str().unwrap(), "--json"]);
    let (a, b): (J, J) = (serde_json::from_str(&a).unwrap(), serde_json::from_str(&b).unwrap());
    assert_eq!(a["databases"], b["databases"]);
    assert_eq!(a["checksum"], "ok");
    // A page export of the same input is a multiple of 512.
    ok(&["export", &input, "--prefix", "pg", "--out-dir", dir.path().to_str().unwrap(), "-q"]);
    assert_eq!(std::fs::metadata(dir.path().join("pg.rdb")).unwrap().len() % 512, 0);
    // Sharded exports: the manifest describes the files as stored (padded or compressed).
    for blob in ["page", "gzip"] {
        let d = dir.path().join(blob);
        let report = ok(&[
            "export",
            &input,
            "--prefix",
            "s",
            "--out-dir",
            d.to_str().unwrap(),
            "--blob",
            blob,
            "--shards",
            "2",
            "--json",
        ]);
        let report: J = serde_json::from_str(&report).unwrap();
        let manifest: J = serde_json::from_str(&std::fs::read_to_string(d.join("s.manifest.json")).unwrap()).unwrap();
        for (i, e) in manifest["shards"].as_array().unwrap().iter().enumerate() {
            let f = d.join(e["file"].as_str().unwrap());
            let bytes = std::fs::read(&f).unwrap();
            assert_eq!(e["bytes"].as_u64().unwrap(), bytes.len() as u64, "{}", f.display());
            assert_eq!(report["outputs"][i]["bytes"], e["bytes"]);
            assert_eq!(e["checksum"].as_str().unwrap(), format!("crc64-xz:{:016x}", rdbkit::io::crc64_xz(&bytes)));
            if blob == "page" {
                assert_eq!(bytes.len() % 512, 0);
            } else {
                assert!(bytes.starts_with(&[0x1f, 0x8b]));
            }
        }
    }
}

#[test]
fn tier_p2_keeps_databases_0_to_31_and_reports_the_rest() {
    let dir = tmp();
    let input = fixture("redis-7.0-multidb64.rdb");
    let out = dir.path().join("p2.rdb");
    let report =
        ok(&["import", &input, "-o", out.to_str().unwrap(), "--target", "redis-7.0", "--tier", "p2", "--json"]);
    let report: J = serde_json::from_str(&report).unwrap();
    let original = keys_of(&std::fs::read(&input).unwrap());
    let kept = keys_of(&std::fs::read(&out).unwrap());
    let mut want_dropped: BTreeMap<String, u64> = BTreeMap::new();
    for (db, _) in original.keys() {
        if *db >= 32 {
            *want_dropped.entry(db.to_string()).or_default() += 1;
        }
    }
    assert_eq!(kept.keys().map(|k| k.0).max(), Some(31));
    assert_eq!(kept.len(), original.keys().filter(|k| k.0 < 32).count());
    for (k, v) in &kept {
        assert_eq!(original.get(k), Some(v));
    }
    let dropped: BTreeMap<String, u64> =
        report["dropped"]["db"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    assert_eq!(dropped, want_dropped);
    assert_eq!(dropped.len(), 32);
    // A dry run reports the same and writes nothing.
    let dry = dir.path().join("dry.rdb");
    let r = ok(&[
        "import",
        &input,
        "-o",
        dry.to_str().unwrap(),
        "--target",
        "redis-7.0",
        "--tier",
        "p2",
        "--dry-run",
        "--json",
    ]);
    let r: J = serde_json::from_str(&r).unwrap();
    assert_eq!(r["dropped"]["db"], report["dropped"]["db"]);
    assert!(!dry.exists());
}

fn read_shards(dir: &Path, prefix: &str, n: usize) -> Vec<(PathBuf, Keys)> {
    // The manifest names the files (their names carry the run's generation).
    let manifest: J =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{prefix}.manifest.json"))).unwrap()).unwrap();
    let shards = manifest["shards"].as_array().unwrap();
    assert_eq!(shards.len(), n);
    (0..n)
        .map(|i| {
            let f = dir.join(shards[i]["file"].as_str().unwrap());
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f, keys_of(&data))
        })
        .collect()
}

#[test]
fn split_routes_every_key_to_the_shard_owning_its_slot() {
    let dir = tmp();
    let input = fixture("redis-7.0.rdb");
    let text = ok(&["split", &input, "--out-dir", dir.path().to_str().unwrap(), "--shards", "3", "--json"]);
    let report: J = serde_json::from_str(&text).unwrap();
    let original = keys_of(&std::fs::read(&input).unwrap());
    let layout = ShardLayout::even(3).unwrap();
    let shards = read_shards(dir.path(), "redis-7.0", 3);
    let mut union = BTreeMap::new();
    for (i, (_, keys)) in shards.iter().enumerate() {
        for (k, v) in keys {
            assert_eq!(k.0, 0, "only database 0 in a cluster shard");
            assert_eq!(layout.shard_of_slot(key_hash_slot(&k.1)), Some(i));
            assert!(union.insert(k.clone(), v.clone()).is_none());
        }
    }
    let db0: Keys = original.iter().filter(|(k, _)| k.0 == 0).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(union, db0);
    let other_dbs = original.len() - db0.len();
    let dropped: u64 = report["dropped"]["db"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(dropped as usize, other_dbs);
    // Each shard's RESIZEDB hint is its exact key count.
    for (f, keys) in &shards {
        let data = std::fs::read(f).unwrap();
        let hints: Vec<u64> = SliceReader::new(&data)
            .unwrap()
            .filter_map(|r| match r.unwrap().kind {
                RecordKind::ResizeDb { db_size, .. } => Some(db_size),
                _ => None,
            })
            .collect();
        assert_eq!(hints, [keys.len() as u64], "{}", f.display());
    }
    // Every shard is a complete RDB: functions and AUX fields in each.
    for (f, _) in &shards {
        let info: J = serde_json::from_str(&ok(&["info", f.to_str().unwrap(), "--json"])).unwrap();
        assert_eq!(info["functions"], 1, "{}", f.display());
        assert_eq!(info["checksum"], "ok");
        assert!(info["aux"]["redis-ver"].is_string());
    }
    // The manifest describes each file; altering a file is detectable from it.
    let manifest: J =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("redis-7.0.manifest.json")).unwrap()).unwrap();
    let entries = manifest["shards"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for (e, (f, keys)) in entries.iter().zip(&shards) {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(e["bytes"].as_u64().unwrap(), bytes.len() as u64);
        assert_eq!(e["keys"].as_u64().unwrap(), keys.len() as u64);
        let crc = rdbkit::io::crc64_xz(&bytes);
        assert_ne!(crc, 0);
        assert_eq!(e["checksum"].as_str().unwrap(), format!("crc64-xz:{crc:016x}"));
    }
    assert_eq!(entries[0]["slots"][0], "0-5460");
}

#[test]
fn split_by_nodes_file() {
    let dir = tmp();
    let nodes = dir.path().join("nodes.conf");
    std::fs::write(
        &nodes,
        "a1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-8000\n\
         b2 127.0.0.1:30002@40002 master - 0 0 2 connected 8001-16383\n\
         c3 127.0.0.1:30003@40003 slave a1 0 0 1 connected\nvars currentEpoch 2 lastVoteEpoch 0\n",
    )
    .unwrap();
    let input = fixture("valkey-9.1.rdb");
    ok(&[
        "split",
        &input,
        "--out-dir",
        dir.path().to_str().unwrap(),
        "--nodes",
        nodes.to_str().unwrap(),
        "--prefix",
        "v",
        "-q",
    ]);
    for (i, (_, keys)) in read_shards(dir.path(), "v", 2).iter().enumerate() {
        for k in keys.keys() {
            let slot = key_hash_slot(&k.1);
            assert_eq!(usize::from(slot > 8000), i);
        }
    }
    // A layout with a gap is refused.
    std::fs::write(&nodes, "a1 127.0.0.1:30001@40001 master - 0 0 1 connected 0-100\n").unwrap();
    let out = rdbkit(&["split", &input, "--out-dir", dir.path().to_str().unwrap(), "--nodes", nodes.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn functions_are_refused_for_an_older_target_unless_lossy() {
    let dir = tmp();
    let input = fixture("redis-7.0.rdb");
    let out = dir.path().join("o.rdb");
    let r = rdbkit(&["convert", &input, "-o", out.to_str().unwrap(), "--target", "redis-6.2"]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("mylib"), "{err}");
    assert!(!out.exists(), "nothing is written when refusing");
    let text = ok(&["convert", &input, "-o", out.to_str().unwrap(), "--target", "redis-6.2", "--lossy"]);
    assert!(text.contains("function library \"mylib\""), "{text}");
    let data = std::fs::read(&out).unwrap();
    assert!(data.starts_with(b"REDIS0009"));
    let original = keys_of(&std::fs::read(&input).unwrap());
    let converted = keys_of(&data);
    assert_eq!(converted.len(), original.len());
}

#[test]
fn field_ttls_and_modules_are_named_when_refused() {
    let dir = tmp();
    let input = fixture("redis-8.2-nomodule.rdb");
    let out = dir.path().join("o.rdb");
    let r = rdbkit(&["convert", &input, "-o", out.to_str().unwrap(), "--target", "redis-7.0"]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("hash field TTLs"), "{err}");
    assert!(err.contains("module value") || err.contains("vectorset") || err.contains("RDB 12"), "{err}");
    assert!(!out.exists());
}

#[test]
fn interrupted_runs_leave_no_output() {
    let dir = tmp();
    let data = std::fs::read(fixture("redis-7.0.rdb")).unwrap();
    let cut = dir.path().join("cut.rdb");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let r = rdbkit(&["convert", cut.to_str().unwrap(), "-o", outdir.join("x.rdb").to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stderr));
    let r = rdbkit(&["split", cut.to_str().unwrap(), "--out-dir", outdir.to_str().unwrap(), "--shards", "3"]);
    assert_eq!(r.status.code(), Some(1));
    let r = rdbkit(&[
        "export",
        cut.to_str().unwrap(),
        "--prefix",
        "e",
        "--out-dir",
        outdir.to_str().unwrap(),
        "--blob",
        "gzip",
    ]);
    assert_eq!(r.status.code(), Some(1));
    let left: Vec<_> = std::fs::read_dir(&outdir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A writer that fails after `n` bytes, like a full disk.
struct FullDisk<W> {
    inner: W,
    n: usize,
}

impl<W: std::io::Write> std::io::Write for FullDisk<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.n {
            return Err(std::io::Error::other("no space left on device"));
        }
        self.n -= buf.len();
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: rdbkit::io::FinishWrite> rdbkit::io::FinishWrite for FullDisk<W> {
    fn finish_write(self: Box<Self>) -> std::io::Result<()> {
        Box::new(self.inner).finish_write()
    }
}

#[test]
fn a_failing_writer_fails_the_job_and_leaves_no_file() {
    let input = rdbkit::input::Input::open(common::testdata_dir().join("redis-7.0.rdb")).unwrap();
    let opts = rdbkit::workflow::JobOptions::new(input.header().unwrap());
    let dir = tmp();
    let dest = dir.path().join("never.rdb");
    let file = rdbkit::io::AtomicFile::create(&dest).unwrap();
    let err = rdbkit::workflow::convert(std::slice::from_ref(&input), FullDisk { inner: file, n: 1000 }, &opts)
        .err()
        .expect("the job must fail");
    assert!(matches!(err.kind(), rdbkit::ErrorKind::Io(_)), "{err}");
    // The writer (and its temporary file) was dropped without `finish`: nothing is left in the directory.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Two files with `k` in db 0 (values "a" / "b") and one distinct key each.
fn two_inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let make = |name: &str, v: &[u8], other: &[u8]| {
        let mut w =
            rdbkit::write::RdbWriter::new(Vec::new(), rdbkit::read::Header::new(rdbkit::read::Flavor::Redis, 9))
                .unwrap();
        w.aux(b"redis-ver", b"6.2.14").unwrap();
        w.select_db(0).unwrap();
        for (k, v) in [(&b"k"[..], v), (other, v)] {
            w.entry(k, &OwnedValue::String(v.to_vec()), rdbkit::write::EntryMeta::default()).unwrap();
        }
        let path = dir.join(name);
        std::fs::write(&path, w.finish().unwrap()).unwrap();
        path
    };
    (make("a.rdb", b"a", b"only-a"), make("b.rdb", b"b", b"only-b"))
}

#[test]
fn merging_inputs_with_duplicate_policies() {
    let dir = tmp();
    let (a, b) = two_inputs(dir.path());
    let out = dir.path().join("m.rdb");
    let (a, b, o) = (a.to_str().unwrap(), b.to_str().unwrap(), out.to_str().unwrap());
    // Default: a duplicate key is an error naming it, and nothing is written.
    let r = rdbkit(&["convert", a, b, "-o", o]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("key \"k\""), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!out.exists());
    for (policy, want) in [("first", b"a"), ("last", b"b")] {
        ok(&["convert", a, b, "-o", o, "--on-duplicate", policy, "-q"]);
        let data = std::fs::read(&out).unwrap();
        let keys = keys_of(&data);
        assert_eq!(keys.len(), 3, "{policy}");
        assert_eq!(keys[&(0, b"k".to_vec())], OwnedValue::String(want.to_vec()), "{policy}");
        // One AUX field per name in the merged file.
        let mut aux = 0;
        for rec in SliceReader::new(&data).unwrap() {
            aux += usize::from(matches!(rec.unwrap().kind, RecordKind::Aux { .. }));
        }
        assert_eq!(aux, 1);
    }
    // Moving a database onto another can collide too; selecting one does not.
    ok(&["convert", a, "-o", o, "--move-db", "0:5", "-q"]);
    assert!(keys_of(&std::fs::read(&out).unwrap()).keys().all(|k| k.0 == 5));
}

#[test]
fn convert_to_stdout_and_filters() {
    let input = fixture("redis-7.0.rdb");
    let out = rdbkit(&["convert", &input, "-o", "-", "--match", "str:*", "--type", "string", "-q"]);
    assert!(out.status.success());
    let keys = keys_of(&out.stdout);
    assert!(!keys.is_empty());
    assert!(keys.keys().all(|k| k.1.starts_with(b"str:")));
    assert!(keys.values().all(|v| matches!(v, OwnedValue::String(_))));
    let original = keys_of(&std::fs::read(&input).unwrap());
    let want = original.iter().filter(|(k, v)| k.1.starts_with(b"str:") && matches!(v, OwnedValue::String(_))).count();
    assert_eq!(keys.len(), want);
    // The report goes to stderr when the RDB goes to stdout.
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote"));
}

/// An RDB of `version` with `n` keys in db 0 (a third with an expiry) and a few in db 1, with incompressible
/// values so that each shard outgrows the writer's buffer and the hint placeholders are patched in the files.
fn many_keys_file(version: u32, n: u64) -> Vec<u8> {
    use rdbkit::write::{EntryMeta, RdbWriter};
    let mut w = RdbWriter::new(Vec::new(), rdbkit::read::Header::new(rdbkit::read::Flavor::Redis, version)).unwrap();
    w.aux(b"redis-ver", b"8.2.0").unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut bytes = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    for db in [0u64, 1] {
        w.select_db(db).unwrap();
        for i in 0..if db == 0 { n } else { 10 } {
            let key = if i % 50 == 0 { format!("{{tag}}:{i}") } else { format!("key:{i}") };
            let expiry = (i % 3 == 0).then_some(rdbkit::read::Expiry::Millis(4_102_444_800_000));
            w.entry(key.as_bytes(), &OwnedValue::String(bytes(120)), EntryMeta::expiring(expiry)).unwrap();
        }
    }
    w.finish().unwrap()
}

/// The hints of a shard file: RESIZEDB records, and SLOT_INFO per slot; plus its keys per slot.
type SlotMap = BTreeMap<u16, (u64, u64)>;

/// A shard's RESIZEDB records and SLOT_INFO map.
type ShardHintRecords = (Vec<(u64, u64)>, SlotMap);

fn shard_hints(data: &[u8]) -> (Vec<(u64, u64)>, SlotMap, SlotMap) {
    let (mut resize, mut slot_info, mut actual) = (Vec::new(), BTreeMap::new(), BTreeMap::new());
    let mut r = SliceReader::new(data).unwrap();
    while let Some(rec) = r.next_record().unwrap() {
        match rec.kind {
            RecordKind::ResizeDb { db_size, expires_size } => resize.push((db_size, expires_size)),
            RecordKind::SlotInfo { slot, size, expires_size } => {
                assert!(slot_info.insert(slot as u16, (size, expires_size)).is_none(), "one SLOT_INFO per slot");
            }
            RecordKind::Entry(e) => {
                let slot = key_hash_slot(&e.key.decode().unwrap());
                assert!(
                    slot_info.contains_key(&slot) || slot_info.is_empty(),
                    "SLOT_INFO comes before the slot's keys"
                );
                let c: &mut (u64, u64) = actual.entry(slot).or_default();
                c.0 += 1;
                c.1 += u64::from(e.expiry.is_some());
            }
            _ => {}
        }
    }
    assert!(matches!(r.checksum(), Some(rdbkit::read::Checksum::Ok(_))), "{:?}", r.checksum());
    (resize, slot_info, actual)
}

/// A split large enough that the hints are patched into the files after streaming: every shard reads back with
/// a valid CRC, exact RESIZEDB and SLOT_INFO hints, and a manifest whose CRC-64/XZ is that of the patched file —
/// for plain and page-aligned outputs; the gzip outputs (two passes) hold the same keys and hints.
#[test]
fn single_pass_split_patches_exact_hints_into_the_files() {
    let dir = tmp();
    let layout = ShardLayout::even(3).unwrap();
    for version in [10u32, 12] {
        let input = dir.path().join(format!("big-{version}.rdb"));
        let data = many_keys_file(version, 9_000);
        assert!(data.len() > 1 << 20, "each shard outgrows the 256 KiB write buffer");
        std::fs::write(&input, &data).unwrap();
        let original = keys_of(&data);
        let mut per_blob: Vec<Vec<ShardHintRecords>> = Vec::new();
        for blob in ["plain", "page", "gzip"] {
            let out = dir.path().join(format!("out-{version}-{blob}"));
            let prefix = "s";
            let text = if blob == "plain" {
                ok(&["split", &p(&input), "--out-dir", &p(&out), "--shards", "3", "--prefix", prefix, "--json"])
            } else {
                ok(&[
                    "export",
                    &p(&input),
                    "--out-dir",
                    &p(&out),
                    "--shards",
                    "3",
                    "--prefix",
                    prefix,
                    "--blob",
                    blob,
                    "--json",
                ])
            };
            let report: J = serde_json::from_str(&text).unwrap();
            assert_eq!(report["dropped"]["db"]["1"], 10, "{blob}: {text}");
            let manifest: J =
                serde_json::from_str(&std::fs::read_to_string(out.join("s.manifest.json")).unwrap()).unwrap();
            let mut union = BTreeMap::new();
            let mut hints = Vec::new();
            for (i, entry) in manifest["shards"].as_array().unwrap().iter().enumerate() {
                let file = out.join(entry["file"].as_str().unwrap().rsplit('/').next().unwrap());
                let stored = std::fs::read(&file).unwrap();
                let crc = rdbkit::io::crc64_xz(&stored);
                assert_eq!(entry["checksum"].as_str().unwrap(), format!("crc64-xz:{crc:016x}"), "{}", file.display());
                assert_eq!(entry["bytes"].as_u64().unwrap(), stored.len() as u64);
                let rdb = match blob {
                    "gzip" => {
                        let mut d = Vec::new();
                        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&stored[..]), &mut d).unwrap();
                        d
                    }
                    _ => stored.clone(),
                };
                if blob == "page" {
                    assert_eq!(stored.len() % 512, 0);
                }
                let (resize, slot_info, actual) = shard_hints(&rdb);
                let keys = keys_of(&rdb);
                let expires = actual.values().map(|c| c.1).sum::<u64>();
                assert_eq!(resize, [(keys.len() as u64, expires)], "{blob} shard {i}: RESIZEDB is exact");
                if version >= 12 {
                    assert_eq!(slot_info, actual, "{blob} shard {i}: SLOT_INFO is exact");
                } else {
                    assert!(slot_info.is_empty());
                }
                for (k, v) in keys {
                    assert_eq!(layout.shard_of_slot(key_hash_slot(&k.1)), Some(i), "key in the wrong shard");
                    union.insert(k, v);
                }
                hints.push((resize, slot_info));
            }
            let db0: Keys = original.iter().filter(|(k, _)| k.0 == 0).map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_eq!(union, db0, "{blob}: the shards hold database 0 exactly");
            per_blob.push(hints);
        }
        assert_eq!(per_blob[0], per_blob[2], "one pass and two passes give the same hints");
    }
}

/// The single-pass split refuses like the two-pass one: every item the target cannot hold is named, and no
/// shard file is left behind.
#[test]
fn single_pass_split_refusal_names_items_and_leaves_nothing() {
    let dir = tmp();
    let out = dir.path().join("shards");
    let input = fixture("redis-8.2-nomodule.rdb");
    let r = rdbkit(&["split", &input, "--out-dir", &p(&out), "--shards", "3", "--target", "redis-7.0"]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("hash field TTLs") && err.contains("item(s) cannot be written"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// A plain convert at the input's own version copies the file byte for byte; a filtering one recounts each
/// database's RESIZEDB hint from the keys it kept (the input's would overstate them).
#[test]
fn convert_copies_exactly_and_recounts_hints_when_filtering() {
    let dir = tmp();
    for name in ["redis-7.0.rdb", "redis-6.2.rdb", "valkey-9.1.rdb"] {
        let input = fixture(name);
        let original = std::fs::read(&input).unwrap();
        let copy = dir.path().join(format!("copy-{name}"));
        ok(&["convert", &input, "-o", &p(&copy), "-q"]);
        assert_eq!(std::fs::read(&copy).unwrap(), original, "{name}: a plain convert is a byte-identical copy");

        let filtered = dir.path().join(format!("filtered-{name}"));
        ok(&["convert", &input, "-o", &p(&filtered), "--match", "*a*", "-q"]);
        let data = std::fs::read(&filtered).unwrap();
        let kept = keys_of(&data);
        assert!(!kept.is_empty() && kept.len() < keys_of(&original).len(), "{name}: the filter keeps some keys");
        let mut r = SliceReader::new(&data).unwrap();
        let (mut db, mut hints, mut expires) = (0u64, BTreeMap::new(), BTreeMap::new());
        while let Some(rec) = r.next_record().unwrap() {
            match rec.kind {
                RecordKind::SelectDb { db: d } => db = d,
                RecordKind::ResizeDb { db_size, expires_size } => {
                    hints.insert(db, (db_size, expires_size));
                }
                RecordKind::Entry(e) => *expires.entry(e.db).or_insert(0u64) += u64::from(e.expiry.is_some()),
                _ => {}
            }
        }
        let mut want = BTreeMap::new();
        for (db, _) in kept.keys() {
            want.entry(*db).or_insert((0u64, expires.get(db).copied().unwrap_or(0))).0 += 1;
        }
        assert_eq!(hints, want, "{name}: RESIZEDB per database = keys kept, keys with an expiry");
    }
}
