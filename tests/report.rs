//! `rdbkit report`: the memory models against real servers' `MEMORY USAGE key SAMPLES 0` (and `OBJECT ENCODING`)
//! for every key of the server-written fixtures and of synthetic files covering every type and every encoding the
//! server loads (written by the library at RDB 3, 6, 9 and 10 for Redis 7.0, 9 to 12 for Redis 8.2, with compact
//! and with forced hashtable / skiplist / linked-list encodings, which the servers convert on load); and the CSV
//! against rdbtools' columns.

mod common;

use rdbkit::read::{Flavor, Header, OwnedValue, RecordKind, SliceReader};
use rdbkit::report::CSV_HEADER;
use rdbkit::report::memory::{Server, estimate};
use rdbkit::write::{EntryMeta, RdbWriter, WriterOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Redis 7.0 this test started on a port of 8200-8299; stopped by its directory when dropped.
struct Redis {
    dir: tempfile::TempDir,
    port: u16,
}

impl Redis {
    /// Starts `name` on the first free port from `first_port` (each test has a range of its own: tests run in
    /// parallel).
    fn start(name: &str, first_port: u16) -> Redis {
        let dir = tempfile::Builder::new().prefix("rdbkit-report").tempdir().unwrap();
        for port in first_port..first_port + 40 {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let out = common::run_bounded(
                Command::new(root().join("scripts/servers.sh")).args([
                    "start",
                    name,
                    &port.to_string(),
                    dir.path().to_str().unwrap(),
                ]),
                Duration::from_secs(60),
                "servers.sh start",
            );
            if out.status.success() {
                return Redis { dir, port };
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("already in use") || err.contains("exited during startup"), "{err}");
        }
        panic!("no free port in {first_port}..{}", first_port + 40);
    }

    /// Replaces the data set with `file` (DEBUG RELOAD NOSAVE loads `dir/dump.rdb`).
    fn load(&self, conn: &mut Conn, file: &[u8]) {
        std::fs::write(self.dir.path().join("dump.rdb"), file).unwrap();
        let r = conn.cmd(&[b"DEBUG", b"RELOAD", b"NOSAVE"]);
        assert!(matches!(r, Reply::Status(_)), "DEBUG RELOAD: {r:?}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = common::run_bounded(
            Command::new(root().join("scripts/servers.sh")).args(["stop", self.dir.path().to_str().unwrap()]),
            Duration::from_secs(30),
            "servers.sh stop",
        );
    }
}

/// Replies (their texts are read through `Debug` in assertion messages).
#[derive(Debug)]
#[allow(dead_code)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
}

/// A minimal RESP2 client (no arrays needed here) with bounded waits.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn new(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        Conn(BufReader::new(s))
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.0.get_mut().write_all(&out).unwrap();
        let mut line = Vec::new();
        self.0.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "connection closed");
        let rest = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        match line[0] {
            b'+' => Reply::Status(rest),
            b'-' => Reply::Error(rest),
            b':' => Reply::Int(rest.parse().unwrap()),
            b'$' => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                self.0.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                Reply::Bulk(Some(b))
            }
            c => panic!("unexpected reply byte {c}"),
        }
    }
}

/// One key compared: estimate, server figure, encodings.
struct Compared {
    what: String,
    /// The value's encoding in the file and in the server.
    file_enc: &'static str,
    est: u64,
    real: u64,
    enc: &'static str,
    real_enc: String,
}

impl Compared {
    fn err_pct(&self) -> f64 {
        (self.est as f64 - self.real as f64) * 100.0 / self.real as f64
    }
}

/// Loads `file` into the server and compares every key.
fn compare(redis: &Redis, conn: &mut Conn, server: Server, name: &str, file: &[u8]) -> Vec<Compared> {
    redis.load(conn, file);
    let mut out = Vec::new();
    let mut reader = SliceReader::new(file).unwrap();
    let mut db = None;
    while let Some(rec) = reader.next_record().unwrap() {
        let RecordKind::Entry(e) = rec.kind else { continue };
        if db != Some(e.db) {
            let r = conn.cmd(&[b"SELECT", e.db.to_string().as_bytes()]);
            assert!(matches!(r, Reply::Status(_)), "{r:?}");
            db = Some(e.db);
        }
        let key = e.key.decode().unwrap();
        let est = estimate(server, key.len() as u64, e.expiry.is_some(), &e.value).unwrap();
        let real = match conn.cmd(&[b"MEMORY", b"USAGE", &key, b"SAMPLES", b"0"]) {
            Reply::Int(n) => n as u64,
            other => panic!("{name}: MEMORY USAGE {}: {other:?}", rdbkit::escape_bytes(&key)),
        };
        let real_enc = match conn.cmd(&[b"OBJECT", b"ENCODING", &key]) {
            Reply::Bulk(Some(b)) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        };
        out.push(Compared {
            file_enc: e.value.encoding.name(),
            what: format!("{name} db{} {} ({})", e.db, rdbkit::escape_bytes(&key), e.value.encoding.name()),
            est: est.bytes,
            real,
            enc: est.encoding,
            real_enc,
        });
    }
    out
}

fn s(b: &str) -> Vec<u8> {
    b.as_bytes().to_vec()
}

/// Values of every type in every size class that decides an encoding in Redis 7.0.
fn synthetic_values() -> Vec<(Vec<u8>, OwnedValue)> {
    let mut v: Vec<(Vec<u8>, OwnedValue)> = Vec::new();
    let mut str_ = |k: String, val: Vec<u8>| v.push((k.into_bytes(), OwnedValue::String(val)));
    for (i, val) in
        ["", "0", "9999", "10000", "-1", "007", "-0", "12345678901234567890", "9223372036854775807"].iter().enumerate()
    {
        str_(format!("str:{i}"), s(val));
    }
    for len in [1usize, 20, 21, 43, 44, 45, 100, 1000, 70_000] {
        let val: Vec<u8> = (0..len).map(|i| b'a' + ((i * 7 + i / 3) % 26) as u8).collect();
        str_(format!("str:len{len}"), val);
    }
    str_("str:lzf".into(), vec![b'x'; 5000]);
    // Key lengths across the sds header boundaries.
    for klen in [1usize, 31, 32, 255, 256, 70_000] {
        str_("k".repeat(klen), s("v"));
    }
    let strs = |n: usize, len: usize| -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("{i:0>len$}-{}", "m".repeat(len.saturating_sub(6))).into_bytes()).collect()
    };
    let ints = |n: i64, mul: i64| -> Vec<Vec<u8>> { (0..n).map(|i| (i * mul - 5).to_string().into_bytes()).collect() };
    // Lists.
    v.push((s("list:ints"), OwnedValue::List(ints(5, 1))));
    v.push((s("list:small"), OwnedValue::List(strs(10, 8))));
    v.push((s("list:1000"), OwnedValue::List(strs(1000, 12))));
    v.push((
        s("list:mixed5000"),
        OwnedValue::List(
            (0..5000)
                .map(|i| if i % 3 == 0 { i.to_string().into_bytes() } else { format!("e{i}").into_bytes() })
                .collect(),
        ),
    ));
    v.push((s("list:big-elements"), OwnedValue::List(strs(3, 10_000))));
    v.push((s("list:long-elements"), OwnedValue::List(strs(300, 300))));
    // Sets.
    v.push((s("set:int16"), OwnedValue::Set(ints(10, 1))));
    v.push((s("set:int32"), OwnedValue::Set(ints(10, 100_000))));
    v.push((s("set:int64"), OwnedValue::Set(ints(10, 10_000_000_000))));
    v.push((s("set:int600"), OwnedValue::Set(ints(600, 3))));
    v.push((s("set:strings10"), OwnedValue::Set(strs(10, 8))));
    v.push((s("set:strings1000"), OwnedValue::Set(strs(1000, 20))));
    v.push((s("set:long-members"), OwnedValue::Set(strs(5, 200))));
    let mut mixed = ints(20, 1);
    mixed.extend(strs(30, 8));
    v.push((s("set:mixed"), OwnedValue::Set(mixed)));
    // Sorted sets.
    let zset = |members: Vec<Vec<u8>>, frac: bool| {
        OwnedValue::ZSet(
            members
                .into_iter()
                .enumerate()
                .map(|(i, m)| (m, if frac { i as f64 / 10.0 + 0.01 } else { i as f64 }))
                .collect(),
        )
    };
    v.push((s("zset:small-int-scores"), zset(strs(10, 8), false)));
    v.push((s("zset:small-frac-scores"), zset(strs(10, 8), true)));
    v.push((s("zset:128"), zset(strs(128, 10), true)));
    v.push((s("zset:129"), zset(strs(129, 10), true)));
    v.push((s("zset:1000"), zset(strs(1000, 16), false)));
    v.push((s("zset:long-members"), zset(strs(5, 100), false)));
    // Hashes.
    let hash = |n: usize, flen: usize, vlen: usize| {
        OwnedValue::Hash(strs(n, flen).into_iter().zip(strs(n, vlen)).map(|(f, v)| (f, v, None)).collect())
    };
    v.push((s("hash:small"), hash(5, 6, 6)));
    v.push((
        s("hash:int-values"),
        OwnedValue::Hash(
            (0..20).map(|i| (format!("f{i}").into_bytes(), (i * 1000).to_string().into_bytes(), None)).collect(),
        ),
    ));
    v.push((s("hash:200"), hash(200, 10, 20)));
    v.push((s("hash:600"), hash(600, 10, 20)));
    v.push((s("hash:long-values"), hash(3, 8, 100)));
    v.push((s("hash:2000"), hash(2000, 12, 12)));
    v
}

/// A file of [`synthetic_values`] at `version`, compact encodings or (with `plain`) every collection in its
/// hashtable / skiplist / linked-list form.
fn synthetic_file(version: u32, plain: bool) -> Vec<u8> {
    let mut opts = WriterOptions::default();
    if plain {
        let t = &mut opts.encode.thresholds;
        t.hash_max_listpack_entries = 0;
        t.zset_max_listpack_entries = 0;
        t.set_max_intset_entries = 0;
        t.list_max_ziplist_entries = 0;
    }
    let mut w = RdbWriter::with_options(Vec::new(), Header::new(Flavor::Redis, version), opts).unwrap();
    w.select_db(0).unwrap();
    for (k, val) in synthetic_values() {
        w.entry(&k, &val, EntryMeta::default()).unwrap();
    }
    w.select_db(3).unwrap();
    w.entry(b"db3:hash", &OwnedValue::Hash(vec![(s("a"), s("1"), None)]), EntryMeta::default()).unwrap();
    w.finish().unwrap()
}

/// Error distribution: counts per band of |error|.
fn distribution(rows: &[Compared]) -> String {
    let bands = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, f64::INFINITY];
    let mut counts = vec![0usize; bands.len()];
    for r in rows {
        let e = r.err_pct().abs();
        let i = bands.iter().position(|&b| e <= b).unwrap();
        counts[i] += 1;
    }
    let mut s = String::new();
    let mut lo = String::from("0");
    for (i, b) in bands.iter().enumerate() {
        let label = if i == 0 {
            "exact".to_string()
        } else if b.is_infinite() {
            format!(">{lo}%")
        } else {
            format!("{lo}-{b}%")
        };
        s.push_str(&format!("  {label:>10}: {}\n", counts[i]));
        if !b.is_infinite() {
            lo = b.to_string();
        }
    }
    s
}

/// Loads every file into `server_name` and compares every key with `model`'s estimate; prints the distribution.
/// Returns the rows and the keys outside ±10%.
fn measure(
    server_name: &str,
    first_port: u16,
    model: Server,
    files: &[(String, Vec<u8>)],
) -> (Vec<Compared>, Vec<String>) {
    let redis = Redis::start(server_name, first_port);
    let mut conn = Conn::new(redis.port);
    let mut all = Vec::new();
    for (name, bytes) in files {
        let rows = compare(&redis, &mut conn, model, name, bytes);
        assert!(!rows.is_empty(), "{name}: no keys");
        all.extend(rows);
    }
    let mut outside = Vec::new();
    for r in &all {
        if r.err_pct().abs() > 10.0 {
            outside.push(format!("{}: {} vs {} ({:+.1}%)", r.what, r.est, r.real, r.err_pct()));
        }
    }
    let within = all.len() - outside.len();
    println!(
        "{server_name} MEMORY USAGE vs rdbkit's {model} model over {} keys in {} files: {within} within ±10% \
         ({:.1}%); |error| distribution:\n{}",
        all.len(),
        files.len(),
        within as f64 * 100.0 / all.len() as f64,
        distribution(&all)
    );
    // Per encoding (in the file → in the server): keys, exact, worst |error|.
    let mut per: std::collections::BTreeMap<(&str, &str), (usize, usize, f64)> = Default::default();
    for r in &all {
        let p = per.entry((r.file_enc, r.enc)).or_default();
        p.0 += 1;
        p.1 += usize::from(r.est == r.real);
        p.2 = p.2.max(r.err_pct().abs());
    }
    for ((f, e), (n, exact, worst)) in &per {
        println!("  {f:>12} -> {e:<10} {n:>4} keys, {exact:>4} exact, worst {worst:.2}%");
    }
    for o in &outside {
        println!("  outside ±10%: {o}");
    }
    if std::env::var_os("RDBKIT_REPORT_ROWS").is_some() {
        for r in all.iter().filter(|r| r.est != r.real) {
            println!("  inexact: {}: {} vs {} ({:+.2}%)", r.what, r.est, r.real, r.err_pct());
        }
    }
    (all, outside)
}

fn fixture(name: &str) -> (String, Vec<u8>) {
    (name.to_string(), std::fs::read(common::testdata_dir().join(name)).unwrap())
}

fn synthetic_files(versions: &[u32]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for &version in versions {
        for plain in [false, true] {
            let name = format!("synthetic-v{version}{}", if plain { "-plain" } else { "" });
            files.push((name, synthetic_file(version, plain)));
        }
    }
    files
}

#[test]
fn memory_estimates_match_redis_7_0_memory_usage() {
    if !common::real_servers_available("memory_estimates_match_redis_7_0_memory_usage") {
        return;
    }
    let mut files: Vec<_> = ["redis-7.0.rdb", "redis-6.2.rdb", "redis-7.0-multidb64.rdb"].map(fixture).into();
    files.extend(synthetic_files(&[3, 6, 9, 10]));
    let (all, outside) = measure("redis-7.0", 8200, Server::Redis70, &files);
    let wrong_enc: Vec<String> = all
        .iter()
        .filter(|r| r.enc != r.real_enc)
        .map(|r| format!("{}: model {} server {}", r.what, r.enc, r.real_enc))
        .collect();
    assert!(wrong_enc.is_empty(), "encodings differ from OBJECT ENCODING:\n{}", wrong_enc.join("\n"));
    assert!(outside.len() * 10 <= all.len(), "fewer than 90% within ±10%:\n{}", outside.join("\n"));
    // Everything but skiplist zsets (random node levels) and streams is modelled allocation by allocation.
    let inexact: Vec<&str> =
        all.iter().filter(|r| r.est != r.real && r.enc != "skiplist").map(|r| r.what.as_str()).collect();
    assert!(inexact.is_empty(), "not exact: {inexact:?}");
}

#[test]
fn memory_estimates_against_redis_8_2() {
    if !common::real_servers_available("memory_estimates_against_redis_8_2") {
        return;
    }
    let mut files: Vec<_> = ["redis-8.2-nomodule.rdb", "redis-7.0.rdb"].map(fixture).into();
    files.extend(synthetic_files(&[9, 10, 11, 12]));
    let (all, outside) = measure("redis-8.2", 8240, Server::Redis82, &files);
    assert!(outside.len() * 10 <= all.len(), "fewer than 90% within ±10%:\n{}", outside.join("\n"));
    // Not modelled yet: hashes with field TTLs (listpackex, hashtable with TTL metadata) and module values (the
    // fixture's vector sets). Everything else has the server's encoding, and all but skiplist zsets (random
    // levels) and streams with consumer groups is exact to the byte (one byte of slack: the server averages
    // quicklist nodes in floating point and truncates).
    let modelled: Vec<&Compared> =
        all.iter().filter(|r| !matches!(r.file_enc, "listpack-ttl" | "hashtable-ttl" | "module")).collect();
    let wrong_enc: Vec<String> = modelled
        .iter()
        .filter(|r| r.enc != r.real_enc)
        .map(|r| format!("{}: model {} server {}", r.what, r.enc, r.real_enc))
        .collect();
    assert!(wrong_enc.is_empty(), "encodings differ from OBJECT ENCODING:\n{}", wrong_enc.join("\n"));
    let inexact: Vec<&str> = modelled
        .iter()
        .filter(|r| r.est.abs_diff(r.real) > 1 && !matches!(r.enc, "skiplist" | "stream"))
        .map(|r| r.what.as_str())
        .collect();
    assert!(inexact.is_empty(), "not exact: {inexact:?}");
    assert!(modelled.iter().all(|r| r.err_pct().abs() <= 10.0));
}

/// rdbtools' `PrintAllKeys` header (rdbtools/memprofiler.py), written out here as it prints it.
const RDBTOOLS_HEADER: &[u8] = b"database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry\n";

fn rdbkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rdbkit"))
}

#[test]
fn csv_has_rdbtools_columns_and_one_row_per_key() {
    let path = common::testdata_dir().join("redis-7.0.rdb");
    let out = rdbkit().args(["report", "--format", "csv"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.starts_with(RDBTOOLS_HEADER));
    assert_eq!(CSV_HEADER.as_bytes(), RDBTOOLS_HEADER);
    let bytes = std::fs::read(&path).unwrap();
    let keys = SliceReader::new(&bytes).unwrap().entries().count();
    let lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), keys + 1);
    // Expiring keys carry rdbtools' isoformat() timestamps, the others an empty last column.
    let text = String::from_utf8_lossy(&out.stdout);
    let exp = text.lines().find(|l| l.starts_with("0,string,exp:ms,")).expect("exp:ms row");
    let last = exp.rsplit(',').next().unwrap();
    assert!(last.len() >= 19 && last.as_bytes()[10] == b'T', "{exp}");
    // rdbtools' type names: `sortedset` for sorted sets.
    assert!(text.lines().any(|l| l.starts_with("0,sortedset,zset:small,")), "{text}");
    assert!(!text.lines().any(|l| l.split(',').nth(1) == Some("zset")));
    let plain = text.lines().find(|l| l.starts_with("0,string,str:short,")).unwrap();
    assert!(plain.ends_with(','), "{plain}");
    assert_eq!(plain.split(',').count(), 8);
}

#[test]
fn json_and_text_totals_agree_with_the_csv() {
    let path = common::testdata_dir().join("redis-6.2.rdb");
    let csv = rdbkit().args(["report", "--format", "csv"]).arg(&path).output().unwrap();
    assert!(csv.status.success());
    let rows: Vec<(String, u64)> = String::from_utf8_lossy(&csv.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].to_string(), f[3].parse::<u64>().unwrap())
        })
        .collect();
    let sum: u64 = rows.iter().map(|r| r.1).sum();
    let json = rdbkit().args(["report", "--format", "json", "--top", "3"]).arg(&path).output().unwrap();
    assert!(json.status.success());
    let j = common::Json::parse(std::str::from_utf8(&json.stdout).unwrap());
    assert_eq!(j.at("server").str(), "redis-7.0");
    assert_eq!(j.at("total").at("bytes").i64() as u64, sum);
    assert_eq!(j.at("total").at("keys").i64() as usize, rows.len());
    let by_type: i64 = j.at("by_type").obj().iter().map(|(_, t)| t.at("bytes").i64()).sum();
    assert_eq!(by_type as u64, sum);
    // The top 3 are the three largest rows, largest first.
    let mut sorted: Vec<u64> = rows.iter().map(|r| r.1).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<u64> = j.at("top").arr().iter().map(|t| t.at("bytes").i64() as u64).collect();
    assert_eq!(top, sorted[..3]);
    let text = rdbkit().args(["report", "--top", "2"]).arg(&path).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains(&format!("({sum} bytes)")), "{text}");
    assert!(text.contains("top 2 keys by memory:"), "{text}");
}

#[test]
fn the_model_follows_redis_ver_unless_a_target_is_given() {
    let json = |args: &[&str], file: &str| {
        let out = rdbkit()
            .args(["report", "--format", "json"])
            .args(args)
            .arg(common::testdata_dir().join(file))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        common::Json::parse(std::str::from_utf8(&out.stdout).unwrap())
    };
    assert_eq!(json(&[], "redis-7.0.rdb").at("server").str(), "redis-7.0");
    assert_eq!(json(&[], "redis-8.2-nomodule.rdb").at("server").str(), "redis-8.2");
    let as_82 = json(&["--target", "redis-8.2"], "redis-7.0.rdb");
    assert_eq!(as_82.at("server").str(), "redis-8.2");
    // Redis 8.2 embeds keys in their objects: the same data costs less.
    let bytes = |j: &common::Json| j.at("total").at("bytes").i64();
    assert!(bytes(&as_82) < bytes(&json(&[], "redis-7.0.rdb")));
    let bad = rdbkit()
        .args(["report", "--target", "valkey-9.1"])
        .arg(common::testdata_dir().join("redis-7.0.rdb"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no memory model for 'valkey-9.1'"));
}

#[test]
fn a_damaged_file_writes_no_csv_and_exits_1() {
    let mut bytes = std::fs::read(common::testdata_dir().join("redis-7.0.rdb")).unwrap();
    bytes.truncate(bytes.len() * 2 / 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.rdb");
    std::fs::write(&path, &bytes).unwrap();
    for format in ["csv", "json", "text"] {
        let out = rdbkit().args(["report", "--format", format]).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{format}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stderr).contains("byte"), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
