//! `rdbkit diff` and `rdbkit::diff`: a fixture equals its conversions to every RDB version and to VALKEY080 except
//! exactly what a version cannot hold; edits made with the library's writer are listed exactly; member order and
//! encodings do not matter; functions are compared; the JSON schema and the exit codes; a run with a tiny memory
//! budget (spilling and re-splitting partitions) gives the same result; a file saved by a real Redis 7.0 that loaded
//! a fixture equals the fixture.
#![cfg(feature = "cli")]

mod common;

use rdbkit::diff::{Class, DiffOptions, DiffReport, Scope, diff};
use rdbkit::input::Input;
use rdbkit::read::{Expiry, Flavor, Header, OwnedValue, RecordKind, SliceReader};
use rdbkit::write::{EntryMeta, RdbWriter};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rdbkit");

fn testdata(name: &str) -> PathBuf {
    common::testdata_dir().join(name)
}

/// One difference, as (class, "db N key" or "function NAME", what).
type Line = (&'static str, String, &'static str);

fn lines(report: &mut DiffReport) -> BTreeSet<Line> {
    let mut out = BTreeSet::new();
    for (class, name) in Class::ALL.into_iter().zip(["only_in_a", "only_in_b", "different"]) {
        report
            .for_each(class, |d| {
                let at = match d.scope {
                    Scope::Db(db) => format!("{db} {}", String::from_utf8_lossy(&d.key)),
                    Scope::Function => format!("function {}", String::from_utf8_lossy(&d.key)),
                };
                out.insert((name, at, d.what.map_or("", |w| w.name())));
                Ok(())
            })
            .unwrap();
    }
    assert_eq!(out.len() as u64, Class::ALL.iter().map(|&c| report.count(c)).sum::<u64>(), "a difference listed twice");
    out
}

fn diff_files(a: &Path, b: &Path, opts: &DiffOptions) -> (DiffReport, BTreeSet<Line>) {
    let opts = DiffOptions { keep_all: true, ..opts.clone() };
    let mut r = diff(&Input::open(a).unwrap(), &Input::open(b).unwrap(), &opts)
        .unwrap_or_else(|e| panic!("diff {} {}: {e}", a.display(), b.display()));
    let l = lines(&mut r);
    (r, l)
}

fn set(items: &[(&'static str, &str, &'static str)]) -> BTreeSet<Line> {
    items.iter().map(|&(c, k, w)| (c, k.to_string(), w)).collect()
}

fn convert(input: &Path, out: &Path, version: u32, lossy: bool) {
    let mut cmd = Command::new(BIN);
    cmd.arg("convert").arg(input).arg("-o").arg(out).args(["--rdb-version", &version.to_string(), "-q"]);
    if lossy {
        cmd.arg("--lossy");
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "convert to {version}: {}", String::from_utf8_lossy(&o.stderr));
}

/// The Redis 8.2 fixture (every type and encoding, field TTLs, streams with groups, vector sets, a function)
/// converted to each RDB version and VALKEY080 with --lossy: the diff lists exactly what the version cannot hold.
#[test]
fn conversions_to_every_version_differ_only_by_what_the_version_cannot_hold() {
    let src = testdata("redis-8.2-nomodule.rdb");
    let dir = tempfile::tempdir().unwrap();
    let streams = ["0 stream:main", "0 stream:empty", "0 stream:emptied", "15 db15:stream"];
    let vsets = ["0 vset:noquant", "0 vset:q8", "0 vset:bin"];
    // Expiries in 2100 do not fit RDB 1-2's 32-bit seconds: the conversion drops them.
    let far_expiries = ["0 exp:s", "0 exp:ms", "0 exp:hash", "0 list:small", "63 db63:str"];
    for v in (1..=12).chain([80]) {
        let out = dir.path().join(format!("v{v}.rdb"));
        convert(&src, &out, v, true);
        let mut want = BTreeSet::new();
        if v < 10 {
            want.insert(("only_in_a", "function mylib".to_string(), ""));
        }
        for s in streams {
            match v {
                // No streams before RDB 9.
                ..=8 => want.insert(("only_in_a", s.to_string(), "")),
                // The first stream layout has no entries-added, greatest deleted ID or consumer active time: what a
                // server loading it derives differs from what the source holds (all four streams here).
                9 => want.insert(("different", s.to_string(), "value")),
                // The second has no consumer active time; only stream:main has a consumer whose active time is
                // not its seen time.
                10 if s == "0 stream:main" => want.insert(("different", s.to_string(), "value")),
                _ => false,
            };
        }
        if v < 8 {
            for k in vsets {
                want.insert(("only_in_a", k.to_string(), ""));
            }
        }
        if v < 12 {
            for k in ["0 hash:ttl-small", "0 hash:ttl-big"] {
                want.insert(("different", k.to_string(), "value"));
            }
        }
        if v <= 2 {
            for k in far_expiries {
                want.insert(("different", k.to_string(), "expiry"));
            }
        }
        // hash:ttl-big loses its field TTLs first: a value difference hides the expiry one.
        if v <= 2 {
            want.remove(&("different", "0 hash:ttl-big".to_string(), "expiry"));
        }
        let (_, got) = diff_files(&src, &out, &DiffOptions::default());
        assert_eq!(got, want, "REDIS/VALKEY version {v}");
    }
}

/// Conversions that lose nothing are equal, across families and stream layouts, and both ways.
#[test]
fn lossless_conversions_of_each_fixture_are_equal() {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, versions) in [
        ("redis-6.2.rdb", &[10, 11, 12, 80][..]),
        ("redis-7.0.rdb", &[10, 11, 12, 80][..]),
        ("redis-8.2.rdb", &[12, 80][..]),
        ("valkey-9.1.rdb", &[12][..]),
        ("redis-7.0-multidb64.rdb", &[3, 9, 80][..]),
    ] {
        let src = testdata(fixture);
        for &v in versions {
            let out = dir.path().join(format!("{fixture}-{v}.rdb"));
            convert(&src, &out, v, false);
            let (r, got) = diff_files(&src, &out, &DiffOptions::default());
            assert!(r.is_equal(), "{fixture} vs its conversion to {v}: {got:?}");
            let (_, back) = diff_files(&out, &src, &DiffOptions::default());
            assert!(back.is_empty(), "{fixture}: conversion to {v} vs the fixture: {back:?}");
        }
    }
}

/// A copy of a fixture written with `RdbWriter`, with keys changed, deleted, added, re-typed and re-expired.
fn edited_copy(src: &[u8], dst: &Path) {
    let mut r = SliceReader::new(src).unwrap();
    let mut w = RdbWriter::new(Vec::new(), r.header()).unwrap();
    let mut added = false;
    while let Some(rec) = r.next_record().unwrap() {
        let RecordKind::Entry(e) = rec.kind else {
            w.raw_record(&rec).unwrap();
            continue;
        };
        let key = e.key.decode().unwrap().into_owned();
        let meta = EntryMeta::expiring(e.expiry);
        match (e.db, &key[..]) {
            (0, b"str:short") => {
                w.entry(&key, &OwnedValue::String(b"changed".to_vec()), meta).unwrap();
            }
            (0, b"set:small-strings") => {
                // One member more: the value differs.
                let OwnedValue::Set(mut m) = e.value.to_owned_value().unwrap() else { panic!("a set") };
                m.push(b"extra".to_vec());
                w.entry(&key, &OwnedValue::Set(m), meta).unwrap();
            }
            (0, b"str:int:-7") | (1, b"db1:str") => {} // deleted
            (0, b"str:utf8") => {
                w.entry(&key, &OwnedValue::List(vec![b"now a list".to_vec()]), meta).unwrap();
            }
            (0, b"exp:ms") => {
                let meta = EntryMeta::expiring(Some(Expiry::Millis(e.expiry.unwrap().as_millis() + 5000)));
                w.entry_encoded(&key, e.value.encoding, e.value.raw, meta).unwrap();
            }
            (5, b"shared") => {
                // An expiry where there was none.
                let meta = EntryMeta::expiring(Some(Expiry::Millis(4_102_444_800_000)));
                w.entry_encoded(&key, e.value.encoding, e.value.raw, meta).unwrap();
            }
            _ => w.entry_encoded(&key, e.value.encoding, e.value.raw, meta).unwrap(),
        }
        if e.db == 15 && !added {
            w.entry(b"new:key", &OwnedValue::String(b"added".to_vec()), EntryMeta::default()).unwrap();
            w.entry(b"key:\x00\xff:new", &OwnedValue::String(b"binary".to_vec()), EntryMeta::default()).unwrap();
            added = true;
        }
    }
    std::fs::write(dst, w.finish().unwrap()).unwrap();
}

fn edited_expectation() -> BTreeSet<Line> {
    set(&[
        ("only_in_a", "0 str:int:-7", ""),
        ("only_in_a", "1 db1:str", ""),
        ("only_in_b", "15 new:key", ""),
        ("only_in_b", "15 key:\u{0}\u{fffd}:new", ""),
        ("different", "0 str:short", "value"),
        ("different", "0 set:small-strings", "value"),
        ("different", "0 str:utf8", "type"),
        ("different", "0 exp:ms", "expiry"),
        ("different", "5 shared", "expiry"),
    ])
}

#[test]
fn changed_deleted_added_and_reexpired_keys_are_listed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("redis-7.0.rdb");
    let copy = dir.path().join("edited.rdb");
    edited_copy(&common::read(&src), &copy);
    let (r, got) = diff_files(&src, &copy, &DiffOptions::default());
    assert_eq!(got, edited_expectation());
    assert_eq!((r.records_a, r.records_b), (55, 55));
    // Within the tolerance, the 5-second move is no difference; a missing expiry always is.
    let (_, tolerant) = diff_files(&src, &copy, &DiffOptions { ttl_tolerance_ms: 5000, ..Default::default() });
    let mut want = edited_expectation();
    want.remove(&("different", "0 exp:ms".to_string(), "expiry"));
    assert_eq!(tolerant, want);
    let (_, strict) = diff_files(&src, &copy, &DiffOptions { ttl_tolerance_ms: 4999, ..Default::default() });
    assert_eq!(strict, edited_expectation());
    // The other way round, A and B swap.
    let (_, back) = diff_files(&copy, &src, &DiffOptions::default());
    let swapped: BTreeSet<Line> = edited_expectation()
        .into_iter()
        .map(|(c, k, w)| match c {
            "only_in_a" => ("only_in_b", k, w),
            "only_in_b" => ("only_in_a", k, w),
            _ => (c, k, w),
        })
        .collect();
    assert_eq!(back, swapped);
}

/// Tiny budgets: the records go to temporary files and partitions are split again, with the same result.
#[test]
fn a_tiny_memory_budget_spills_and_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("redis-7.0.rdb");
    let copy = dir.path().join("edited.rdb");
    edited_copy(&common::read(&src), &copy);
    let (r, got) = diff_files(&src, &copy, &DiffOptions::default());
    assert_eq!(r.stats.spilled_bytes, 0, "the default budget holds a small fixture");
    for budget in [512, 2048, 4096] {
        let (r, spilled) = diff_files(&src, &copy, &DiffOptions { memory_budget: budget, ..Default::default() });
        assert_eq!(spilled, got, "budget {budget}");
        assert!(r.stats.spilled_bytes > 0, "budget {budget}: nothing spilled");
        assert!(r.stats.peak_held_bytes <= budget as u64, "budget {budget}: held {}", r.stats.peak_held_bytes);
    }

    // A budget smaller than one record: every pair is compared as it is, without splitting it any further.
    let t = std::time::Instant::now();
    let (r, one) = diff_files(&src, &copy, &DiffOptions { memory_budget: 1, ..Default::default() });
    assert_eq!(one, got);
    assert!(r.stats.max_level <= 1, "split {} levels deep", r.stats.max_level);
    assert!(t.elapsed() < std::time::Duration::from_secs(20), "took {:?}", t.elapsed());

    // Many keys, listed in opposite orders by the two files, a few differing.
    let n = 20_000u64;
    let write = |path: &Path, reverse: bool| {
        let mut w = RdbWriter::new(Vec::new(), Header::new(Flavor::Redis, 11)).unwrap();
        w.select_db(0).unwrap();
        let keys: Vec<u64> = if reverse { (0..n).rev().collect() } else { (0..n).collect() };
        for i in keys {
            if reverse && i == 7 {
                continue;
            }
            let v = if reverse && i % 5000 == 3 { format!("other-{i}") } else { format!("value-{i}") };
            w.entry(format!("key:{i}").as_bytes(), &OwnedValue::String(v.into_bytes()), EntryMeta::default()).unwrap();
        }
        std::fs::write(path, w.finish().unwrap()).unwrap();
    };
    let (a, b) = (dir.path().join("a.rdb"), dir.path().join("b.rdb"));
    write(&a, false);
    write(&b, true);
    let want = set(&[
        ("only_in_a", "0 key:7", ""),
        ("different", "0 key:3", "value"),
        ("different", "0 key:5003", "value"),
        ("different", "0 key:10003", "value"),
        ("different", "0 key:15003", "value"),
    ]);
    let (r, got) = diff_files(&a, &b, &DiffOptions::default());
    assert_eq!((got, r.stats.spilled_bytes), (want.clone(), 0));
    let budget = 32 << 10;
    let (r, got) = diff_files(&a, &b, &DiffOptions { memory_budget: budget, ..Default::default() });
    assert_eq!(got, want);
    assert!(r.stats.spilled_bytes > 2 * n * 54, "every record spilled: {}", r.stats.spilled_bytes);
    assert!(r.stats.peak_held_bytes <= budget as u64, "held {}", r.stats.peak_held_bytes);
    assert!(r.stats.max_level >= 1, "no partition was split again");
}

/// Writes `entries` (db 0) as RDB `version`.
fn write_file(path: &Path, version: u32, entries: &[(&[u8], OwnedValue)], functions: &[&[u8]]) {
    let header = if version == 80 { Header::new(Flavor::Valkey, 80) } else { Header::new(Flavor::Redis, version) };
    let mut w = RdbWriter::new(Vec::new(), header).unwrap();
    for f in functions {
        w.function(f).unwrap();
    }
    w.select_db(0).unwrap();
    for (k, v) in entries {
        w.entry(k, v, EntryMeta::default()).unwrap();
    }
    std::fs::write(path, w.finish().unwrap()).unwrap();
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn member_order_and_encodings_do_not_matter_but_list_order_does() {
    let dir = tempfile::tempdir().unwrap();
    let many: Vec<Vec<u8>> = (0..700).map(|i| b(&format!("{i}"))).collect();
    let mut many_rev = many.clone();
    many_rev.reverse();
    let data = |rev: bool| -> Vec<(&'static [u8], OwnedValue)> {
        let order = |mut v: Vec<Vec<u8>>| {
            if rev {
                v.reverse();
            }
            v
        };
        vec![
            (b"set", OwnedValue::Set(order(vec![b("a"), b("b"), b("c"), b("10")]))),
            (b"intset", OwnedValue::Set(if rev { many_rev.clone() } else { many.clone() })),
            (
                b"hash",
                OwnedValue::Hash(if rev {
                    vec![(b("f2"), b("2"), None), (b("f1"), b("one"), None)]
                } else {
                    vec![(b("f1"), b("one"), None), (b("f2"), b("2"), None)]
                }),
            ),
            (
                b"zset",
                OwnedValue::ZSet(if rev {
                    vec![(b("y"), 2.5), (b("x"), -1.0)]
                } else {
                    vec![(b("x"), -1.0), (b("y"), 2.5)]
                }),
            ),
            (b"list", OwnedValue::List(vec![b("1"), b("two"), b("3")])),
            (b"int-string", OwnedValue::String(b("12345"))),
        ]
    };
    let base = dir.path().join("base.rdb");
    write_file(&base, 11, &data(false), &[]);
    // Other orders, and the encodings of older and other servers (ziplist, zipmap, linked list, text scores,
    // hashtable sets; listpack; Valkey).
    for v in [2, 6, 9, 11, 12, 80] {
        let other = dir.path().join(format!("other-{v}.rdb"));
        write_file(&other, v, &data(true), &[]);
        let (r, got) = diff_files(&base, &other, &DiffOptions::default());
        assert!(r.is_equal(), "RDB {v}: {got:?}");
    }
    // Reordering a list is a difference; so is a score, a member, a field value.
    let mut changed = data(false);
    changed[4].1 = OwnedValue::List(vec![b("two"), b("1"), b("3")]);
    changed[3].1 = OwnedValue::ZSet(vec![(b("x"), -1.0), (b("y"), 2.5000001)]);
    changed[0].1 = OwnedValue::Set(vec![b("a"), b("b"), b("c"), b("11")]);
    changed[2].1 = OwnedValue::Hash(vec![(b("f1"), b("one"), None), (b("f2"), b("3"), None)]);
    let other = dir.path().join("changed.rdb");
    write_file(&other, 11, &changed, &[]);
    let (_, got) = diff_files(&base, &other, &DiffOptions::default());
    assert_eq!(
        got,
        set(&[
            ("different", "0 list", "value"),
            ("different", "0 zset", "value"),
            ("different", "0 set", "value"),
            ("different", "0 hash", "value")
        ])
    );
    // A field TTL is part of a hash's value.
    let ttl = |t: Option<i64>| vec![(b"h" as &[u8], OwnedValue::Hash(vec![(b("f"), b("v"), t)]))];
    let (x, y) = (dir.path().join("ttl-a.rdb"), dir.path().join("ttl-b.rdb"));
    write_file(&x, 12, &ttl(Some(4_102_444_800_000)), &[]);
    write_file(&y, 80, &ttl(Some(4_102_444_800_000)), &[]);
    assert!(diff_files(&x, &y, &DiffOptions::default()).0.is_equal(), "the same field TTL in Redis and Valkey layouts");
    write_file(&y, 12, &ttl(Some(4_102_444_800_001)), &[]);
    assert_eq!(diff_files(&x, &y, &DiffOptions::default()).1, set(&[("different", "0 h", "value")]));
}

const LIB: &[u8] = b"#!lua name=mylib\nredis.register_function('f', function(keys, args) return 1 end)";
const LIB2: &[u8] = b"#!lua name=mylib\nredis.register_function('f', function(keys, args) return 2 end)";
const OTHER: &[u8] = b"#!lua name=other\nredis.register_function('g', function(keys, args) return 3 end)";

#[test]
fn function_libraries_are_compared_by_name_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let kv = [(b"k" as &[u8], OwnedValue::String(b("v")))];
    let p = |n: &str| dir.path().join(n);
    write_file(&p("a.rdb"), 10, &kv, &[LIB, OTHER]);
    write_file(&p("b.rdb"), 12, &kv, &[OTHER, LIB]);
    write_file(&p("c.rdb"), 11, &kv, &[LIB2]);
    assert!(diff_files(&p("a.rdb"), &p("b.rdb"), &DiffOptions::default()).0.is_equal());
    assert_eq!(
        diff_files(&p("a.rdb"), &p("c.rdb"), &DiffOptions::default()).1,
        set(&[("different", "function mylib", "value"), ("only_in_a", "function other", "")])
    );
}

fn run(args: &[&str], stdin: Option<&Path>) -> (i32, String, String) {
    let o = match stdin {
        None => common::run_bounded(
            Command::new(BIN).arg("diff").args(args),
            std::time::Duration::from_secs(60),
            "rdbkit diff",
        ),
        // run_bounded closes stdin: bound this one with timeout(1).
        Some(f) => Command::new("timeout")
            .args(["60", BIN, "diff"])
            .args(args)
            .stdin(std::fs::File::open(f).unwrap())
            .output()
            .unwrap(),
    };
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn cli_json_schema_text_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("redis-7.0.rdb");
    let copy = dir.path().join("edited.rdb");
    edited_copy(&common::read(&src), &copy);
    let (s, c) = (src.to_str().unwrap(), copy.to_str().unwrap());

    let (code, out, err) = run(&[s, c, "--json"], None);
    assert_eq!(code, 1, "{err}");
    let j = common::Json::parse(&out);
    assert_eq!(
        j.obj().iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["equal", "only_in_a", "only_in_b", "different"]
    );
    assert_eq!(j.at("equal"), &common::Json::Bool(false));
    let a: BTreeSet<(i64, String)> =
        j.at("only_in_a").arr().iter().map(|e| (e.at("db").i64(), e.at("key").str().to_string())).collect();
    assert_eq!(a, [(0, "str:int:-7".to_string()), (1, "db1:str".to_string())].into_iter().collect());
    // A key that is not UTF-8 is written as `dump --format json` writes it.
    let bkeys: Vec<String> = j.at("only_in_b").arr().iter().map(|e| e.at("key").brief()).collect();
    assert!(bkeys.iter().any(|k| k.contains("b64")), "{bkeys:?}");
    let binary = j.at("only_in_b").arr().iter().find(|e| e.at("key").get("b64").is_some()).unwrap();
    assert_eq!(binary.at("key").bytes(), b"key:\x00\xff:new");
    let what: BTreeSet<(String, String)> = j
        .at("different")
        .arr()
        .iter()
        .map(|e| (e.at("key").str().to_string(), e.at("what").str().to_string()))
        .collect();
    assert!(what.contains(&("str:utf8".to_string(), "type".to_string())), "{what:?}");
    assert!(what.contains(&("exp:ms".to_string(), "expiry".to_string())), "{what:?}");
    assert_eq!(what.len(), 5);

    let (code, out, _) = run(&[s, c], None);
    assert_eq!(code, 1);
    assert!(out.contains("different: 5\n") && out.contains("  db 0 \"str:utf8\" (type)\n"), "{out}");
    assert!(out.contains("\ndiffer: 55 keys in "), "{out}");

    // Equal: exit 0, also from stdin and gzip.
    let gz = dir.path().join("src.rdb.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &common::read(&src)).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let (code, out, err) = run(&["-", gz.to_str().unwrap(), "--json"], Some(&src));
    assert_eq!(
        (code, out.as_str()),
        (0, "{\"equal\":true,\"only_in_a\":[],\"only_in_b\":[],\"different\":[]}\n"),
        "{err}"
    );
    let (code, out, _) = run(&[s, s], None);
    assert_eq!(code, 0);
    assert!(out.starts_with("equal: 55 keys"), "{out}");
    let (code, _, _) = run(&[s, c, "--max-memory", "2K"], None);
    assert_eq!(code, 1);

    // Errors are exit 2: a corrupt input names the file and the byte; a missing file; two stdins; a bad size.
    let mut bad = common::read(&src);
    let at = bad.len() / 2;
    bad[at] ^= 0xff;
    let badp = dir.path().join("bad.rdb");
    std::fs::write(&badp, &bad).unwrap();
    let (code, out, err) = run(&[s, badp.to_str().unwrap()], None);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("bad.rdb") && err.contains("byte"), "{err}");
    assert!(out.is_empty(), "{out}");
    let (code, _, err) = run(&[s, "/nonexistent/x.rdb"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/x.rdb"), "{err}");
    assert_eq!(run(&["-", "-"], Some(&src)).0, 2);
    assert_eq!(run(&[s, c, "--max-memory", "lots"], None).0, 2);
    // The same key twice in one database is an error of that input, at the second copy.
    let mut w = RdbWriter::new(Vec::new(), Header::new(Flavor::Redis, 11)).unwrap();
    w.select_db(0).unwrap();
    w.entry(b"dup", &OwnedValue::String(b("1")), EntryMeta::default()).unwrap();
    w.entry(b"dup", &OwnedValue::String(b("2")), EntryMeta::default()).unwrap();
    let dup = dir.path().join("dup.rdb");
    std::fs::write(&dup, w.finish().unwrap()).unwrap();
    let (code, _, err) = run(&[s, dup.to_str().unwrap()], None);
    assert_eq!(code, 2);
    assert!(err.contains("dup.rdb") && err.contains("duplicate key"), "{err}");
}

/// A server started by [`Server::start`] in its own directory; stopped when dropped (also when a test fails).
struct Server {
    dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    /// Starts `name` on a free port of 8300-8399 with `file` as its `dump.rdb` (loaded at start).
    fn start(name: &str, file: &Path) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(file, dir.path().join("dump.rdb")).unwrap();
        for port in 8300..8400u16 {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let o = common::run_bounded(
                Command::new(common::manifest_dir().join("scripts/servers.sh")).args([
                    "start",
                    name,
                    &port.to_string(),
                    dir.path().to_str().unwrap(),
                ]),
                std::time::Duration::from_secs(60),
                "servers.sh start",
            );
            if o.status.success() {
                return Server { dir, port };
            }
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("already in use") || err.contains("exited during startup"), "{name}: {err}");
        }
        panic!("no free port in 8300-8399");
    }

    /// Runs one command with redis-cli (bounded); returns its output.
    fn cli(&self, args: &[&str]) -> String {
        let o = common::run_bounded(
            Command::new("timeout").args(["20", "redis-cli", "-p", &self.port.to_string()]).args(args),
            std::time::Duration::from_secs(30),
            "redis-cli",
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// SAVEs and returns a copy of the file written, at `out`.
    fn save(&self, out: PathBuf) -> PathBuf {
        assert!(self.cli(&["SAVE"]).contains("OK"), "SAVE failed");
        std::fs::copy(self.dir.path().join("dump.rdb"), &out).unwrap();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = common::run_bounded(
            Command::new(common::manifest_dir().join("scripts/servers.sh"))
                .args(["stop", self.dir.path().to_str().unwrap()]),
            std::time::Duration::from_secs(60),
            "servers.sh stop",
        );
    }
}

/// Real servers load a fixture and save it again: the saved file (new AUX fields, its own key order and
/// encodings) holds the same data; after one command changes a key, the diff names exactly that key.
#[test]
fn a_file_saved_by_a_real_server_equals_the_file_it_loaded() {
    if !common::real_servers_available("a_file_saved_by_a_real_server_equals_the_file_it_loaded") {
        return;
    }
    for (server, fixture) in
        [("redis-7.0", "redis-7.0.rdb"), ("valkey-9.1", "valkey-9.1.rdb"), ("redis-8.2", "redis-8.2-nomodule.rdb")]
    {
        let src = testdata(fixture);
        let s = Server::start(server, &src);
        let keep = tempfile::tempdir().unwrap();
        let saved = s.save(keep.path().join("saved.rdb"));
        assert_ne!(common::read(&saved), common::read(&src), "{server} wrote a file of its own");
        let (r, mut got) = diff_files(&src, &saved, &DiffOptions::default());
        if server == "redis-8.2" {
            // Module values are compared by their raw payload, and the vector-set module writes the HNSW graph
            // it rebuilt on load, not the bytes it read: vector sets may differ, nothing else may.
            got.retain(|(c, k, w)| !(*c == "different" && k.starts_with("0 vset:") && *w == "value"));
        }
        assert!(got.is_empty(), "{server}: {got:?}");
        assert_eq!(r.records_a, r.records_b);
        assert!(r.is_equal() || server == "redis-8.2", "{server}");
        let (code, out, err) = run(&[src.to_str().unwrap(), saved.to_str().unwrap(), "--json"], None);
        assert_eq!(code, i32::from(!r.is_equal()), "{server}: {out}{err}");

        assert_eq!(s.cli(&["-n", "5", "SET", "shared", "changed"]).trim(), "OK");
        let changed = s.save(keep.path().join("changed.rdb"));
        drop(s);
        let (_, mut got) = diff_files(&src, &changed, &DiffOptions::default());
        got.retain(|(_, k, _)| !k.starts_with("0 vset:"));
        assert_eq!(got, set(&[("different", "5 shared", "value")]), "{server}");
    }
}
