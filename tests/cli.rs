//! End-to-end tests of the `rdbkit` binary: `info`, `verify` and `dump` on the fixtures written by real servers
//! (compared with the servers' own view in `testdata/*.json`), on the shared corpus, on corrupt and truncated
//! input, gzip input and stdin; and the real-server RESP/DUMP check (`scripts/test-resp-digest.sh`) when the
//! servers are installed.
#![cfg(feature = "cli")]

mod common;

use serde_json::Value as J;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn testdata(name: &str) -> PathBuf {
    root().join("testdata").join(name)
}

fn rdbkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdbkit")).args(args).output().expect("run rdbkit")
}

fn rdbkit_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdbkit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rdbkit");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok_stdout(out: &Output) -> String {
    assert!(out.status.success(), "rdbkit failed: {:?}\nstderr: {}", out.status, text(&out.stderr));
    text(&out.stdout)
}

fn ok_bytes(out: Output) -> Vec<u8> {
    assert!(out.status.success(), "rdbkit failed: {:?}\nstderr: {}", out.status, text(&out.stderr));
    out.stdout
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `../shared/corpus`, or `None` (with a notice) when it is not there.
fn corpus() -> Option<PathBuf> {
    let c = root().join("../shared/corpus");
    if c.is_dir() {
        Some(c)
    } else {
        println!("notice: {} is absent; corpus checks skipped", c.display());
        None
    }
}

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a' + 26),
            b'0'..=b'9' => u32::from(c - b'0' + 52),
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {s:?}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let real: Vec<u8> = chunk.iter().copied().filter(|&c| c != b'=').collect();
        let mut n = 0u32;
        for (i, &c) in real.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..real.len().saturating_sub(1)]);
    }
    out
}

/// A byte string in JSON: a string, or `{"b64": …}` (both the fixtures' and rdbkit's form).
fn bytes_of(v: &J) -> Vec<u8> {
    match v {
        J::String(s) => s.as_bytes().to_vec(),
        J::Object(o) => b64_decode(o["b64"].as_str().expect("b64 object")),
        other => panic!("not a byte string: {other}"),
    }
}

fn score_of(v: &J) -> f64 {
    match v {
        J::Number(n) => n.as_f64().unwrap(),
        J::String(s) => match s.as_str() {
            "inf" | "+inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            other => other.parse().unwrap_or_else(|_| panic!("bad score {other:?}")),
        },
        other => panic!("bad score {other}"),
    }
}

/// The fixture JSON's keys: (db, key bytes) → record.
fn fixture_keys(fixture: &J) -> BTreeMap<(u64, Vec<u8>), J> {
    let mut out = BTreeMap::new();
    for (db, keys) in fixture["databases"].as_object().unwrap() {
        for rec in keys.as_object().unwrap().values() {
            out.insert((db.parse().unwrap(), bytes_of(&rec["key"])), rec.clone());
        }
    }
    out
}

fn load_json(name: &str) -> J {
    serde_json::from_slice(&std::fs::read(testdata(name)).unwrap()).unwrap()
}

// -------------------------------------------------------------------------------------------------------------
// info

#[test]
fn info_json_matches_the_server_view() {
    let fixture = load_json("redis-7.0.json");
    let out = ok_stdout(&rdbkit(&["info", path_str(&testdata("redis-7.0.rdb")), "--json"]));
    assert_eq!(out.lines().count(), 1, "one JSON object on one line");
    let info: J = serde_json::from_str(&out).unwrap();

    let mut dbs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    for (db, keys) in fixture["databases"].as_object().unwrap() {
        for rec in keys.as_object().unwrap().values() {
            let d = dbs.entry(db.clone()).or_default();
            d.0 += 1;
            d.1 += u64::from(rec["pexpiretime"].as_i64().unwrap() != -1);
            *types.entry(rec["type"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    let got_dbs: BTreeMap<String, (u64, u64)> = info["databases"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), (v["keys"].as_u64().unwrap(), v["expires"].as_u64().unwrap())))
        .collect();
    assert_eq!(got_dbs, dbs);
    let got_types: BTreeMap<String, u64> =
        info["types"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    assert_eq!(got_types, types);
    let encodings: u64 = info["encodings"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(encodings, types.values().sum::<u64>());

    assert_eq!(info["magic"], fixture["magic"]);
    assert_eq!(info["rdb_version"], 10);
    assert_eq!(info["aux"]["redis-ver"], "7.0.15");
    assert_eq!(info["functions"].as_u64().unwrap() as usize, fixture["functions"].as_array().unwrap().len());
    assert_eq!(info["module_aux"], 0);
    assert_eq!(info["checksum"], "ok");
    assert_eq!(info["bytes"].as_u64().unwrap(), std::fs::metadata(testdata("redis-7.0.rdb")).unwrap().len());
    assert_eq!(info["trailing_bytes"], 0);
    assert!(info.get("file_bytes").is_none());
}

#[test]
fn info_text_and_module_aux() {
    let out = ok_stdout(&rdbkit(&["info", path_str(&testdata("redis-8.2.rdb"))]));
    assert!(out.contains("magic:      REDIS0012 (RDB version 12)"), "{out}");
    assert!(out.contains("checksum:   ok"), "{out}");
    let j: J =
        serde_json::from_str(&ok_stdout(&rdbkit(&["info", path_str(&testdata("redis-8.2.rdb")), "--json"]))).unwrap();
    assert!(j["module_aux"].as_u64().unwrap() > 0, "FalkorDB writes MODULE_AUX: {j}");
    assert_eq!(j["types"]["module"], 4, "3 vector sets and a graph: {j}");
    let j: J =
        serde_json::from_str(&ok_stdout(&rdbkit(&["info", path_str(&testdata("valkey-9.1.rdb")), "--json"]))).unwrap();
    assert_eq!((j["magic"].as_str(), j["rdb_version"].as_u64()), (Some("VALKEY080"), Some(80)));
}

/// Flips one byte inside a string value: the structure stays valid, only the checksum breaks.
fn corrupt_checksum_copy(dir: &Path) -> PathBuf {
    let mut data = std::fs::read(testdata("redis-7.0.rdb")).unwrap();
    let needle = b"expires in 2100 (ms)";
    let at = data.windows(needle.len()).position(|w| w == needle).unwrap();
    data[at] = b'E';
    let p = dir.join("bad-crc.rdb");
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn checksum_mismatch_is_a_verdict_for_info_and_an_error_for_verify() {
    let dir = tempfile::tempdir().unwrap();
    let p = corrupt_checksum_copy(dir.path());
    let j: J = serde_json::from_str(&ok_stdout(&rdbkit(&["info", path_str(&p), "--json"]))).unwrap();
    assert_eq!(j["checksum"], "mismatch");
    let out = rdbkit(&["verify", path_str(&p)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with(&format!("rdbkit: {}: error at byte ", p.display())), "{err}");
    assert!(err.contains("checksum mismatch"), "{err}");
}

// -------------------------------------------------------------------------------------------------------------
// verify

fn rdb_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rdb"))
        .collect();
    v.sort();
    v
}

#[test]
fn verify_accepts_every_fixture() {
    for p in rdb_files(&root().join("testdata")) {
        let out = ok_stdout(&rdbkit(&["verify", path_str(&p)]));
        assert!(out.starts_with("OK: ") && out.contains("checksum ok"), "{}: {out}", p.display());
        assert_eq!(out.lines().count(), 1);
    }
    let out = ok_stdout(&rdbkit(&["verify", path_str(&testdata("redis-7.0.rdb"))]));
    assert_eq!(out.trim(), "OK: REDIS0010, 54 keys in 5 databases, checksum ok, 87063 bytes");
}

#[test]
fn verify_accepts_the_corpus_except_corrupt_files() {
    let Some(corpus) = corpus() else { return };
    let mut n = 0;
    for sub in ["rdbtools", "hdt3213-rdb", "redis"] {
        for p in rdb_files(&corpus.join(sub)) {
            if p.file_name().unwrap().to_str().unwrap().starts_with("corrupt_ziplist") {
                continue;
            }
            if p.file_name().unwrap() == "zipmap_big_len.rdb" {
                // Its zipmap count byte is 255 with 2 pairs: Redis 7.0, Redis 8.2 and Valkey 9.1 refuse it
                // ("Zipmap integrity check failed.", checked by loading it), so verify does too.
                let o = rdbkit(&["verify", path_str(&p)]);
                assert_eq!(o.status.code(), Some(1), "{}", p.display());
                assert!(String::from_utf8_lossy(&o.stderr).contains("zmlen is 255"), "{}", p.display());
                continue;
            }
            let out = ok_stdout(&rdbkit(&["verify", path_str(&p)]));
            assert!(out.starts_with("OK: "), "{}: {out}", p.display());
            n += 1;
        }
    }
    assert!(n > 60, "only {n} corpus files");
    // Loadable: a server skips the empty keys.
    let out = ok_stdout(&rdbkit(&["verify", path_str(&corpus.join("redis/corrupt_empty_keys.rdb"))]));
    assert!(out.contains("9 empty collection keys"), "{out}");
    // Non-zero bytes after the checksum are reported, not refused.
    let out = ok_stdout(&rdbkit(&["verify", path_str(&corpus.join("rdbtools/redis_40_with_module.rdb"))]));
    assert!(out.contains("40 trailing bytes"), "{out}");
    let out = ok_stdout(&rdbkit(&["verify", path_str(&corpus.join("redis/rdb-preamble.aof"))]));
    assert!(out.contains("trailing bytes") && out.contains("not zero padding"), "{out}");
}

#[test]
fn verify_refuses_a_corrupt_ziplist() {
    let Some(corpus) = corpus() else { return };
    let p = corpus.join("redis/corrupt_ziplist.rdb");
    let out = rdbkit(&["verify", path_str(&p)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.starts_with(&format!("rdbkit: {}: error at byte ", p.display())), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn verify_refuses_a_truncated_file() {
    let data = std::fs::read(testdata("redis-7.0.rdb")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [data.len() - 1, data.len() - 9, data.len() / 2, 20] {
        let p = dir.path().join(format!("cut-{cut}.rdb"));
        std::fs::write(&p, &data[..cut]).unwrap();
        let out = rdbkit(&["verify", path_str(&p)]);
        assert_eq!(out.status.code(), Some(1), "cut at {cut}: {out:?}");
        let err = text(&out.stderr);
        assert!(err.contains(": error at byte "), "cut at {cut}: {err}");
        // The same through stdin.
        let out = rdbkit_stdin(&["verify", "-"], &data[..cut]);
        assert_eq!(out.status.code(), Some(1), "stdin, cut at {cut}: {out:?}");
        assert!(text(&out.stderr).starts_with("rdbkit: -: error at byte "), "{}", text(&out.stderr));
    }
}

#[test]
fn usage_and_io_errors_exit_2() {
    let out = rdbkit(&["verify", "/nonexistent/file.rdb"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("rdbkit: /nonexistent/file.rdb: cannot open"), "{out:?}");
    assert_eq!(rdbkit(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(rdbkit(&["dump", "x.rdb", "--format", "xml"]).status.code(), Some(2));
    let out = rdbkit(&["dump", path_str(&testdata("redis-7.0.rdb")), "--format", "json", "--restore"]);
    assert_eq!(out.status.code(), Some(2));
    let help = ok_stdout(&rdbkit(&["--help"]));
    assert!(help.contains("Exit codes:") && help.contains("2  usage error"), "{help}");
    // Not an RDB at all.
    let out = rdbkit_stdin(&["info", "-"], b"hello world, not an rdb");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad magic"), "{out:?}");
}

// -------------------------------------------------------------------------------------------------------------
// gzip and stdin

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// `info --json` without the one field that legitimately differs for compressed input.
fn info_json(args: &[&str], stdin: Option<&[u8]>) -> J {
    let out = match stdin {
        Some(data) => rdbkit_stdin(args, data),
        None => rdbkit(args),
    };
    let mut j: J = serde_json::from_str(&ok_stdout(&out)).unwrap();
    j.as_object_mut().unwrap().remove("file_bytes");
    j
}

#[test]
fn gzip_and_stdin_give_the_same_info() {
    let src = testdata("valkey-9.1.rdb");
    let data = std::fs::read(&src).unwrap();
    let gz = gzip(&data);
    let dir = tempfile::tempdir().unwrap();
    let gz_path = dir.path().join("valkey-9.1.rdb.gz");
    std::fs::write(&gz_path, &gz).unwrap();

    let plain = info_json(&["info", path_str(&src), "--json"], None);
    assert_eq!(info_json(&["info", path_str(&gz_path), "--json"], None), plain);
    assert_eq!(info_json(&["info", "-", "--json"], Some(&data)), plain);
    assert_eq!(info_json(&["info", "-", "--json"], Some(&gz)), plain);
    let j: J = serde_json::from_str(&ok_stdout(&rdbkit(&["info", path_str(&gz_path), "--json"]))).unwrap();
    assert_eq!(j["file_bytes"].as_u64().unwrap(), gz.len() as u64);
    assert_eq!(j["bytes"].as_u64().unwrap(), data.len() as u64);

    let v = ok_stdout(&rdbkit(&["verify", path_str(&gz_path)]));
    assert!(v.starts_with("OK: VALKEY080, 56 keys") && v.contains("compressed"), "{v}");
    let dump_plain = ok_bytes(rdbkit(&["dump", path_str(&src), "--format", "resp"]));
    assert_eq!(ok_bytes(rdbkit(&["dump", path_str(&gz_path), "--format", "resp"])), dump_plain);
    assert_eq!(ok_bytes(rdbkit_stdin(&["dump", "-", "--format", "resp"], &gz)), dump_plain);
}

#[test]
fn zero_padding_is_reported() {
    let mut data = std::fs::read(testdata("redis-6.2.rdb")).unwrap();
    let len = data.len();
    data.resize(len.next_multiple_of(512) + 512, 0);
    let j = info_json(&["info", "-", "--json"], Some(&data));
    assert_eq!(j["trailing_bytes"].as_u64().unwrap(), (data.len() - len) as u64);
    assert_eq!(j["trailing_zero"], true);
    assert_eq!(j["bytes"].as_u64().unwrap(), data.len() as u64);
    let out = ok_stdout(&rdbkit_stdin(&["verify", "-"], &data));
    assert!(out.contains("trailing bytes after the checksum (zero padding)"), "{out}");
}

// -------------------------------------------------------------------------------------------------------------
// dump --format json against the servers' view

fn dump_json(path: &Path, extra: &[&str]) -> Vec<J> {
    let mut args = vec!["dump", path_str(path), "--format", "json"];
    args.extend_from_slice(extra);
    ok_stdout(&rdbkit(&args)).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The text of every JSON number outside strings in `line`, in order. serde_json's default float parsing may be off
/// by one ULP, so exact score comparisons parse this text with `str::parse` instead.
fn number_texts(line: &str) -> Vec<&str> {
    let b = line.as_bytes();
    let (mut i, mut out) = (0, Vec::new());
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                out.push(&line[start..i]);
            }
            _ => i += 1,
        }
    }
    out
}

/// A zset line's scores, exactly: numbers after `db` (and `expire_ms` when set); `"inf"`-style strings as they are.
fn exact_scores(line: &str, parsed: &J) -> Vec<f64> {
    let skip = 1 + usize::from(!parsed["expire_ms"].is_null());
    let mut texts = number_texts(line).into_iter().skip(skip);
    parsed["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| match &p[1] {
            J::Number(_) => texts.next().unwrap().parse().unwrap(),
            other => score_of(other),
        })
        .collect()
}

fn compare_value(what: &str, ty: &str, ours: &J, theirs: &J) {
    match ty {
        "string" => assert_eq!(bytes_of(ours), bytes_of(theirs), "{what}"),
        "list" => {
            let a: Vec<Vec<u8>> = ours.as_array().unwrap().iter().map(bytes_of).collect();
            let b: Vec<Vec<u8>> = theirs.as_array().unwrap().iter().map(bytes_of).collect();
            assert_eq!(a, b, "{what}");
        }
        "set" => {
            let mut a: Vec<Vec<u8>> = ours.as_array().unwrap().iter().map(bytes_of).collect();
            let mut b: Vec<Vec<u8>> = theirs.as_array().unwrap().iter().map(bytes_of).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{what}");
        }
        "zset" => {
            // `ours` is [line text, parsed line] (see compare_dump_with_fixture).
            let (line, parsed) = (ours[0].as_str().unwrap(), &ours[1]);
            let ours: BTreeMap<Vec<u8>, u64> = parsed["value"]
                .as_array()
                .unwrap()
                .iter()
                .zip(exact_scores(line, parsed))
                .map(|(p, s)| (bytes_of(&p[0]), s.to_bits()))
                .collect();
            let theirs: BTreeMap<Vec<u8>, u64> =
                theirs.as_array().unwrap().iter().map(|p| (bytes_of(&p[0]), score_of(&p[1]).to_bits())).collect();
            assert_eq!(parsed["value"].as_array().unwrap().len(), theirs.len(), "{what}");
            assert_eq!(ours, theirs, "{what}");
        }
        "hash" => {
            // Ours: [f, v] or [f, v, expire_ms]; theirs: [f, v] or, on servers with field TTLs, [f, v, ms or -1].
            let norm = |v: &J| -> Vec<(Vec<u8>, Vec<u8>, i64)> {
                let mut x: Vec<_> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| (bytes_of(&t[0]), bytes_of(&t[1]), t.get(2).map_or(-1, |e| e.as_i64().unwrap())))
                    .collect();
                x.sort();
                x
            };
            assert_eq!(norm(ours), norm(theirs), "{what}");
        }
        "stream" => compare_stream(what, ours, theirs),
        other => panic!("{what}: unexpected type {other}"),
    }
}

fn compare_stream(what: &str, ours: &J, theirs: &J) {
    assert_eq!(ours["entries"], theirs["entries"], "{what}: entries");
    assert_eq!(ours["length"], theirs["length"], "{what}");
    assert_eq!(ours["last_id"], theirs["last_id"], "{what}");
    for (o, t) in [("entries_added", "entries_added"), ("max_deleted_id", "max_deleted_entry_id")] {
        if let Some(t) = theirs.get(t) {
            assert_eq!(&ours[o], t, "{what}: {o}");
        }
    }
    if let Some(first) = theirs.get("recorded_first_entry_id") {
        // The server reports 0-0 for an empty stream whatever was stored.
        if ours["length"] != 0 {
            assert_eq!(&ours["first_id"], first, "{what}: first_id");
        }
    }
    let ours_g = ours["groups"].as_array().unwrap();
    let theirs_g = theirs["groups"].as_array().unwrap();
    assert_eq!(ours_g.len(), theirs_g.len(), "{what}: groups");
    for (g, tg) in ours_g.iter().zip(theirs_g) {
        assert_eq!(g["name"], tg["name"], "{what}");
        assert_eq!(g["last_id"], tg["last_delivered_id"], "{what}");
        if let Some(n) = tg.get("entries_read").and_then(J::as_i64) {
            assert_eq!(g["entries_read"].as_i64(), Some(n), "{what}: entries_read");
        }
        // Group PEL as the server lists it: [id, consumer, delivery count].
        let mut owner = BTreeMap::new();
        for c in g["consumers"].as_array().unwrap() {
            for id in c["pel"].as_array().unwrap() {
                owner.insert(id.as_str().unwrap().to_string(), c["name"].clone());
            }
        }
        let pel: Vec<J> = g["pel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| serde_json::json!([p[0], owner[p[0].as_str().unwrap()], p[2]]))
            .collect();
        assert_eq!(&J::Array(pel.clone()), &tg["pel"], "{what}: group pel");
        let counts: BTreeMap<&str, &J> =
            g["pel"].as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap(), &p[2])).collect();
        let consumers: Vec<J> = g["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let pel: Vec<J> = c["pel"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| serde_json::json!([id, counts[id.as_str().unwrap()]]))
                    .collect();
                serde_json::json!({"name": c["name"], "pel": pel})
            })
            .collect();
        assert_eq!(J::Array(consumers), tg["consumers"], "{what}: consumers");
    }
}

fn compare_dump_with_fixture(rdb: &str, json: &str) {
    let fixture = load_json(json);
    let mut theirs = fixture_keys(&fixture);
    let out = ok_stdout(&rdbkit(&["dump", path_str(&testdata(rdb)), "--format", "json"]));
    let mut functions = Vec::new();
    for text in out.lines() {
        let line: J = serde_json::from_str(text).unwrap();
        if let Some(code) = line.get("function") {
            functions.push(code.clone());
            continue;
        }
        let key = bytes_of(&line["key"]);
        let db = line["db"].as_u64().unwrap();
        let what = format!("{rdb} db {db} key {}", String::from_utf8_lossy(&key));
        let rec = theirs.remove(&(db, key)).unwrap_or_else(|| panic!("{what}: not in {json}"));
        let pexpire = rec["pexpiretime"].as_i64().unwrap();
        assert_eq!(line["expire_ms"].as_i64().unwrap_or(-1), pexpire, "{what}: expiry");
        let ty = line["type"].as_str().unwrap();
        if ty == "module" {
            // The server reports the module's type name; rdbkit has its 9-character name from the module id.
            assert_eq!(line["value"]["module"], rec["type"], "{what}");
            assert!(line["value"]["payload_b64"].as_str().is_some_and(|s| !s.is_empty()), "{what}");
            continue;
        }
        assert_eq!(ty, rec["type"].as_str().unwrap(), "{what}: type");
        let ours = if ty == "zset" { serde_json::json!([text, line]) } else { line["value"].clone() };
        compare_value(&what, ty, &ours, &rec["value"]);
    }
    assert!(theirs.is_empty(), "{rdb}: keys missing from the dump: {:?}", theirs.keys().collect::<Vec<_>>());
    let codes: Vec<J> =
        fixture.get("functions").map_or(vec![], |f| f.as_array().unwrap().iter().map(|f| f["code"].clone()).collect());
    assert_eq!(functions, codes, "{rdb}: functions");
}

#[test]
fn dump_json_matches_the_server_view() {
    compare_dump_with_fixture("redis-7.0.rdb", "redis-7.0.json");
}

#[test]
fn dump_json_matches_the_server_view_on_every_fixture() {
    for name in ["redis-6.2", "redis-7.0-multidb64", "redis-8.2", "redis-8.2-nomodule", "valkey-9.1"] {
        compare_dump_with_fixture(&format!("{name}.rdb"), &format!("{name}.json"));
    }
}

#[test]
fn dump_db_filter_and_binary_keys() {
    let lines = dump_json(&testdata("redis-7.0.rdb"), &["--db", "15"]);
    let keys: Vec<&str> = lines.iter().filter_map(|l| l.get("key")?.as_str()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(lines.iter().all(|l| l.get("function").is_some() || l["db"] == 15));
    let all = dump_json(&testdata("redis-7.0.rdb"), &[]);
    let bin = all.iter().find(|l| l["key"].get("b64").is_some()).expect("the binary key is base64");
    assert_eq!(bytes_of(&bin["key"]), b"key:\x00\xff:binary");
}

// -------------------------------------------------------------------------------------------------------------
// dump --format resp

/// Parses RESP commands (arrays of bulk strings).
fn parse_resp(mut d: &[u8]) -> Vec<Vec<Vec<u8>>> {
    fn line(d: &mut &[u8], tag: u8) -> usize {
        assert_eq!(d[0], tag);
        let end = d.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = std::str::from_utf8(&d[1..end]).unwrap().parse().unwrap();
        *d = &d[end + 2..];
        n
    }
    let mut cmds = Vec::new();
    while !d.is_empty() {
        let n = line(&mut d, b'*');
        let mut args = Vec::new();
        for _ in 0..n {
            let len = line(&mut d, b'$');
            args.push(d[..len].to_vec());
            assert_eq!(&d[len..len + 2], b"\r\n");
            d = &d[len + 2..];
        }
        cmds.push(args);
    }
    cmds
}

#[test]
fn dump_resp_commands() {
    let out = rdbkit(&["dump", path_str(&testdata("redis-7.0.rdb")), "--format", "resp"]);
    let cmds = parse_resp(&ok_bytes(out));
    assert_eq!(cmds[0][..3], [b"FUNCTION".to_vec(), b"LOAD".to_vec(), b"REPLACE".to_vec()]);
    assert_eq!(cmds[1], [b"SELECT".to_vec(), b"0".to_vec()]);
    for c in &cmds {
        if matches!(&c[0][..], b"RPUSH" | b"SADD" | b"HSET" | b"ZADD") {
            assert!(c.len() <= 2 + 2000, "batch too large: {} args", c.len());
        }
    }
    let zadd: Vec<&Vec<Vec<u8>>> = cmds.iter().filter(|c| c[0] == b"ZADD" && c[1] == b"zset:small").collect();
    let args: Vec<String> = zadd[0][2..].iter().map(|a| text(a)).collect();
    assert!(
        args.contains(&"inf".to_string()) && args.contains(&"-inf".to_string()) && args.contains(&"1e-300".to_string())
    );
    // --restore: one RESTORE per key, with a payload that ends in the file's version and a valid CRC.
    let out = rdbkit(&["dump", path_str(&testdata("redis-7.0.rdb")), "--format", "resp", "--restore"]);
    let cmds = parse_resp(&ok_bytes(out));
    let restores: Vec<_> = cmds.iter().filter(|c| c[0] == b"RESTORE").collect();
    assert_eq!(restores.len(), 54);
    for r in restores {
        assert_eq!(r[4..6], [b"ABSTTL".to_vec(), b"REPLACE".to_vec()]);
        let (_, _, version) = rdbkit::dump::parse_dump_payload(&r[3]).unwrap();
        assert_eq!(version, 10);
    }
    let cmds = parse_resp(&ok_bytes(rdbkit(&[
        "dump",
        path_str(&testdata("valkey-9.1.rdb")),
        "--format",
        "resp",
        "--restore",
    ])));
    let (_, _, version) =
        rdbkit::dump::parse_dump_payload(&cmds.iter().find(|c| c[0] == b"RESTORE").unwrap()[3]).unwrap();
    assert_eq!(version, 80);
}

#[test]
fn dump_resp_skips_empty_collections() {
    let Some(corpus) = corpus() else { return };
    let p = corpus.join("redis/corrupt_empty_keys.rdb");
    for extra in [&[][..], &["--restore"][..]] {
        let mut args = vec!["dump", path_str(&p), "--format", "resp"];
        args.extend_from_slice(extra);
        assert_eq!(ok_stdout(&rdbkit(&args)), "", "{extra:?}");
    }
}

#[test]
fn closed_output_pipe_exits_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdbkit"))
        .args(["dump", path_str(&testdata("redis-8.2.rdb")), "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

// -------------------------------------------------------------------------------------------------------------
// Real servers

#[test]
fn resp_output_loads_into_real_servers_with_the_same_digest() {
    if !common::real_servers_available("resp_output_loads_into_real_servers_with_the_same_digest") {
        return;
    }
    let out = common::run_bounded(
        Command::new(root().join("scripts/test-resp-digest.sh")).env("RDBKIT", env!("CARGO_BIN_EXE_rdbkit")),
        std::time::Duration::from_secs(900),
        "scripts/test-resp-digest.sh",
    );
    println!("{}", text(&out.stdout));
    assert!(out.status.success(), "test-resp-digest.sh failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
}

/// A file over a MiB (so `dump` and `info` parse it on a second thread when mapped): the records of the Redis
/// 7.0 fixture sixteen times over, keys renamed per copy, values passed through as they are.
fn big_file(dir: &Path) -> PathBuf {
    use rdbkit::read::{RecordKind, SliceReader};
    use rdbkit::write::{EntryMeta, RdbWriter};
    let data = std::fs::read(testdata("redis-7.0.rdb")).unwrap();
    let header = SliceReader::new(&data).unwrap().header();
    let mut w = RdbWriter::new(Vec::new(), header).unwrap();
    for copy in 0..16 {
        for rec in SliceReader::new(&data).unwrap() {
            let rec = rec.unwrap();
            match rec.kind {
                RecordKind::SelectDb { .. } => w.raw_record(&rec).unwrap(),
                RecordKind::Entry(e) => {
                    let key = [format!("c{copy}:").as_bytes(), &e.key.decode().unwrap()].concat();
                    let meta = EntryMeta::of(&e);
                    w.entry_encoded(&key, e.value.encoding, e.value.raw, meta).unwrap();
                }
                _ => {}
            }
        }
    }
    let out = w.finish().unwrap();
    assert!(out.len() > rdbkit::input::PARALLEL_MIN_BYTES);
    let path = dir.join("big.rdb");
    std::fs::write(&path, out).unwrap();
    path
}

/// Parsing on a second thread (a large file) gives exactly what the streaming path (stdin) gives: the same dump
/// output; for a truncated file the same error and no output at all (the input is validated before the first
/// byte), and with `--no-validate` the same output up to the same error.
#[test]
fn file_and_streamed_inputs_dump_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let big = big_file(dir.path());
    let data = std::fs::read(&big).unwrap();
    let cut = dir.path().join("cut.rdb");
    std::fs::write(&cut, &data[..data.len() * 2 / 3]).unwrap();
    for format in ["json", "resp"] {
        let mapped = rdbkit(&["dump", "--format", format, path_str(&big)]);
        let streamed = rdbkit_stdin(&["dump", "--format", format, "-"], &data);
        assert!(mapped.status.success() && !mapped.stdout.is_empty(), "{}", text(&mapped.stderr));
        assert_eq!(mapped.stdout, streamed.stdout, "{format}");

        let last = |o: &Output| text(&o.stderr).lines().last().unwrap_or_default().replace(path_str(&cut), "-");
        for validate in [true, false] {
            let mut args = vec!["dump", "--format", format];
            if !validate {
                args.push("--no-validate");
            }
            let mapped = rdbkit(&[&args[..], &[path_str(&cut)]].concat());
            let streamed = rdbkit_stdin(&[&args[..], &["-"]].concat(), &data[..data.len() * 2 / 3]);
            assert_eq!(mapped.status.code(), Some(1), "{format}: {}", text(&mapped.stderr));
            assert_eq!(mapped.status.code(), streamed.status.code());
            assert_eq!(mapped.stdout.is_empty(), validate, "{format}, validate {validate}");
            assert_eq!(mapped.stdout, streamed.stdout, "{format}: the records before the cut");
            assert_eq!(last(&mapped), last(&streamed), "{format}");
        }
    }
    let mapped = info_json(&["info", "--json", path_str(&big)], None);
    assert_eq!(mapped, info_json(&["info", "--json", "-"], Some(&data)));
    assert_eq!(mapped["databases"]["0"]["keys"], 688, "{mapped}");
}
