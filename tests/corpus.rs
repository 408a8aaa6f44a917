//! The shared corpus (`../shared/corpus`, see its MANIFEST.md): RDB files written by real servers and collected by
//! other RDB tools' test suites. Every file must parse to EOF with both readers, and every value the other projects'
//! tests assert must come out the same here.

mod common;

use common::{
    Decoded, Json, Key, decode, element_count, hash_map, iso8601_ms, lossy, read, score_eq, short, strings_of,
    walk_slice, walk_stream, zset_map,
};
use rdbkit::read::{Checksum, Encoding, OwnedValue, ReadOptions, RecordKind, SliceReader};
use std::collections::BTreeMap;
use std::path::Path;

/// Relative tolerance for scores from other tools' JSON.
const SCORE_REL: f64 = 1e-9;

const CORRUPT: &str = "corrupt_ziplist.rdb";

fn decode_file(path: &Path) -> Decoded {
    decode(&short(path), &read(path))
}

fn corpus_file(corpus: &Path, rel: &str) -> Decoded {
    decode_file(&corpus.join(rel))
}

fn is_corrupt(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == CORRUPT)
}

/// Files that walk and decode, but that deep validation refuses because the servers do, with what the error says.
/// `zipmap_big_len.rdb`: its zipmap count byte is 255 with 2 pairs; Redis 7.0, Redis 8.2 and Valkey 9.1 refuse it
/// with `sanitize-dump-payload yes` ("Zipmap integrity check failed.", checked by loading it; MANIFEST.md says
/// Redis 6.2 does too). Only 254 means "count unknown".
const REFUSED_DEEP: &[(&str, &str)] = &[("zipmap_big_len.rdb", "zmlen is 255")];

fn refused_deep(p: &Path) -> Option<&'static str> {
    REFUSED_DEEP.iter().find(|(n, _)| p.file_name().is_some_and(|f| f == *n)).map(|&(_, why)| why)
}

// ---------------------------------------------------------------------------------------------------------------
// Every file parses, with both readers, identically
// ---------------------------------------------------------------------------------------------------------------

fn check_both_readers(opts: ReadOptions) {
    let corpus = corpus_or_skip!();
    let mut checked = 0;
    for path in common::corpus_inputs(&corpus) {
        if is_corrupt(&path) {
            continue;
        }
        let name = short(&path);
        let data = read(&path);
        if let Some(why) = refused_deep(&path)
            && opts.deep
        {
            for e in [walk_slice(&data, opts).err(), walk_stream(&data[..], opts).err()] {
                let (_, e) = e.unwrap_or_else(|| panic!("{name}: deep validation accepts it"));
                assert!(e.to_string().contains(why), "{name}: {e}");
            }
            continue;
        }
        let s = common::ok_walk(&format!("{name} (slice)"), walk_slice(&data, opts));
        let t = common::ok_walk(&format!("{name} (stream)"), walk_stream(&data[..], opts));
        // A real file handle too: the `io::Read` path with the OS deciding read sizes.
        let f = std::fs::File::open(&path).unwrap();
        let u = common::ok_walk(&format!("{name} (file stream)"), walk_stream(f, opts));
        assert!(s.recs.last().is_some_and(|r| r.is_eof), "{name}: last record is not EOF");
        assert_eq!(s.recs.iter().filter(|r| r.is_eof).count(), 1, "{name}: one EOF record");
        assert_eq!(s.header, t.header, "{name}: headers differ");
        assert_eq!(s.recs.len(), t.recs.len(), "{name}: record counts differ");
        for (a, b) in s.recs.iter().zip(&t.recs) {
            assert_eq!(a, b, "{name}: slice and stream records differ at offset {}", a.offset);
        }
        assert_eq!(s.recs, u.recs, "{name}: file-stream records differ");
        assert_eq!(s.checksum, t.checksum, "{name}: checksum verdicts differ");
        assert_eq!(s.trailing, t.trailing, "{name}: trailing differ");
        assert!(s.checksum.is_some() && s.trailing.is_some(), "{name}: no verdict after EOF");
        // Records tile the file from the magic to the end of the EOF record.
        let mut pos = 9u64;
        for r in &s.recs {
            assert_eq!(r.offset, pos, "{name}: records do not tile the file");
            assert_eq!(&data[r.offset as usize..r.offset as usize + r.raw.len()], &r.raw[..], "{name}: raw bytes");
            pos += r.raw.len() as u64;
        }
        assert_eq!(pos + s.trailing.unwrap().len, data.len() as u64, "{name}: records + trailing != file size");
        // The magic says what the header says.
        assert_eq!(s.header.magic().as_bytes(), &data[..9], "{name}: magic");
        checked += 1;
    }
    assert!(checked >= 70, "only {checked} corpus files checked");
}

#[test]
fn every_file_parses_with_both_readers_deep() {
    check_both_readers(ReadOptions::default());
}

#[test]
fn every_file_parses_with_both_readers_fast() {
    check_both_readers(ReadOptions::fast());
}

#[test]
fn fast_and_deep_yield_the_same_records() {
    let corpus = corpus_or_skip!();
    for path in common::corpus_inputs(&corpus) {
        if is_corrupt(&path) {
            continue;
        }
        let data = read(&path);
        if refused_deep(&path).is_some() {
            continue; // checked by every_file_parses_with_both_readers_deep
        }
        let deep = common::ok_walk(&short(&path), walk_slice(&data, ReadOptions::default()));
        let fast = common::ok_walk(&short(&path), walk_slice(&data, ReadOptions::fast()));
        assert_eq!(deep.recs, fast.recs, "{}", short(&path));
    }
}

#[test]
fn corrupt_ziplist_is_refused_with_a_typed_error() {
    let corpus = corpus_or_skip!();
    let path = corpus.join("redis").join(CORRUPT);
    let data = read(&path);
    let len = data.len() as u64;
    let (recs, e) = walk_slice(&data, ReadOptions::default()).expect_err("corrupt_ziplist.rdb must be refused");
    let (srecs, se) = walk_stream(&data[..], ReadOptions::default()).expect_err("stream reader must refuse it too");
    assert_eq!(recs, srecs, "both readers stop after the same records");
    for (who, e) in [("slice", &e), ("stream", &se)] {
        let off = e.offset().unwrap_or_else(|| panic!("{who}: error has no offset: {e}"));
        assert!(off > 9 && off < len, "{who}: error offset {off} is not inside the file (len {len}): {e}");
        assert!(e.key().is_some(), "{who}: error does not name the key: {e}");
        assert_eq!(e.db(), Some(0), "{who}: error names the db: {e}");
        // The file is complete: the bytes are wrong, the input did not end early. `is_truncated()` promises to tell
        // these apart.
        assert!(!e.is_truncated(), "{who}: a malformed blob inside a complete record is reported as truncation: {e}");
    }
    assert_eq!(e.key(), se.key());
    assert_eq!(e.offset(), se.offset());
    // The offending record starts after the records read so far and the error points inside it.
    let next = recs.last().map(|r| r.offset + r.raw.len() as u64).unwrap();
    assert!(e.offset().unwrap() >= next, "error offset precedes the record it is about");
}

#[test]
fn corrupt_ziplist_value_fails_to_decode_in_fast_mode() {
    let corpus = corpus_or_skip!();
    let data = read(&corpus.join("redis").join(CORRUPT));
    // Fast mode only walks records, so it may get through; but decoding every value must then fail (not panic).
    let mut r = SliceReader::with_options(&data, ReadOptions::fast()).unwrap();
    let mut decode_errors = 0;
    let mut walk_error = false;
    loop {
        match r.next_record() {
            Ok(Some(rec)) => {
                if let RecordKind::Entry(e) = rec.kind
                    && e.value.to_owned_value().is_err()
                {
                    decode_errors += 1;
                }
            }
            Ok(None) => break,
            Err(_) => {
                walk_error = true;
                break;
            }
        }
    }
    assert!(walk_error || decode_errors > 0, "the corrupt ziplist was neither refused nor failed to decode");
}

// ---------------------------------------------------------------------------------------------------------------
// Generic comparison with HDT3213/rdb's JSON output
// ---------------------------------------------------------------------------------------------------------------

fn find_key<'d>(d: &'d Decoded, db: u64, key: &str, what: &str) -> &'d Key {
    let found: Vec<&Key> = d.keys.iter().filter(|k| k.db == db && lossy(&k.key) == key).collect();
    assert_eq!(found.len(), 1, "{what}: key {key:?} in db {db} found {} times", found.len());
    found[0]
}

fn compare_hdt_stream(what: &str, k: &Key, j: &Json) {
    let OwnedValue::Stream(s) = &k.value else { panic!("{what}: not a stream") };
    // Nodes: master IDs in order; live messages with their fields.
    let nodes = j.at("entries").arr();
    let masters: Vec<String> = nodes.iter().map(|n| n.at("firstMsgId").str().to_string()).collect();
    assert_eq!(k.stream_nodes, masters, "{what}: node master IDs");
    let mut live = Vec::new();
    for n in nodes {
        for m in n.at("msgs").arr() {
            if m.at("deleted") == &Json::Bool(true) {
                continue;
            }
            // The JSON holds fields as a Go map: duplicate field names (legal in streams) collapse.
            let fields: BTreeMap<String, String> =
                m.at("fields").obj().iter().map(|(f, v)| (f.clone(), v.str().to_string())).collect();
            live.push((m.at("id").str().to_string(), fields));
        }
    }
    let ours: Vec<(String, BTreeMap<String, String>)> = s
        .entries
        .iter()
        .map(|e| (e.id.to_string(), e.fields.iter().map(|(a, b)| (lossy(a), lossy(b))).collect()))
        .collect();
    assert_eq!(ours.len(), live.len(), "{what}: live entry count");
    for (a, b) in ours.iter().zip(&live) {
        assert_eq!(a, b, "{what}: entry");
    }
    if let Some(len) = j.get("len") {
        // Not always the number of live entries: see `hdt_streams` (stream_listpacks_1 `trim`).
        assert_eq!(s.length, len.i64() as u64, "{what}: length");
    }
    if let Some(v) = j.get("lastId") {
        assert_eq!(s.last_id.to_string(), v.str(), "{what}: last id");
    }
    if let Some(v) = j.get("firstId") {
        assert_eq!(s.first_id.map(|i| i.to_string()).as_deref(), Some(v.str()), "{what}: first id");
    }
    if let Some(v) = j.get("maxDeletedId") {
        assert_eq!(s.max_deleted_id.map(|i| i.to_string()).as_deref(), Some(v.str()), "{what}: max deleted id");
    }
    if let Some(v) = j.get("addedEntriesCount") {
        assert_eq!(s.entries_added, Some(v.i64() as u64), "{what}: entries added");
    }
    let groups = j.get("groups").map(|g| g.arr()).unwrap_or(&[]);
    assert_eq!(s.groups.len(), groups.len(), "{what}: group count");
    for (g, jg) in s.groups.iter().zip(groups) {
        let gname = jg.at("name").str();
        assert_eq!(lossy(&g.name), gname, "{what}: group name");
        assert_eq!(g.last_id.to_string(), jg.at("lastId").str(), "{what}: group {gname} last id");
        if let Some(er) = jg.get("entriesRead") {
            assert_eq!(g.entries_read, Some(er.i64() as u64), "{what}: group {gname} entries read");
        }
        let pending = jg.get("pending").map(|p| p.arr()).unwrap_or(&[]);
        assert_eq!(g.pel.len(), pending.len(), "{what}: group {gname} PEL size");
        for (p, jp) in g.pel.iter().zip(pending) {
            assert_eq!(p.id.to_string(), jp.at("id").str(), "{what}: PEL id");
            assert_eq!(p.delivery_time, jp.at("deliveryTime").i64(), "{what}: PEL delivery time");
            assert_eq!(p.delivery_count, jp.at("deliveryCount").i64() as u64, "{what}: PEL delivery count");
        }
        let consumers = jg.get("consumers").map(|c| c.arr()).unwrap_or(&[]);
        assert_eq!(g.consumers.len(), consumers.len(), "{what}: group {gname} consumers");
        for (c, jc) in g.consumers.iter().zip(consumers) {
            assert_eq!(lossy(&c.name), jc.at("name").str(), "{what}: consumer name");
            assert_eq!(c.seen_time, jc.at("seenTime").i64(), "{what}: consumer seen time");
            // Only v3 metadata stores the active time (HDT3213/rdb fills it in from the seen time before).
            match jc.get("activeTime") {
                Some(a) if k.encoding == Encoding::StreamV3 => {
                    assert_eq!(c.active_time, Some(a.i64()), "{what}: consumer active time")
                }
                _ => assert_eq!(c.active_time.is_some(), k.encoding == Encoding::StreamV3, "{what}: active time"),
            }
            let pel: Vec<String> = c.pel.iter().map(|i| i.to_string()).collect();
            let jpel: Vec<String> =
                jc.get("pending").map(|p| p.arr().iter().map(|x| x.str().to_string()).collect()).unwrap_or_default();
            assert_eq!(pel, jpel, "{what}: consumer PEL");
        }
    }
}

fn compare_hdt_key(what: &str, k: &Key, j: &Json) {
    let ty = j.at("type").str();
    assert_eq!(k.type_name, ty, "{what}: type");
    match j.get("expiration") {
        Some(e) => assert_eq!(k.expiry_ms, Some(iso8601_ms(e.str())), "{what}: expiry"),
        None => assert_eq!(k.expiry_ms, None, "{what}: unexpected expiry"),
    }
    match ty {
        "string" => {
            let OwnedValue::String(s) = &k.value else { panic!("{what}: not a string") };
            assert_eq!(lossy(s), j.at("value").str(), "{what}: value");
        }
        "list" => {
            let expected: Vec<String> = j.at("values").arr().iter().map(|v| v.str().to_string()).collect();
            assert_eq!(strings_of(&k.value), expected, "{what}: list");
        }
        "set" => {
            let mut expected: Vec<String> = j.at("members").arr().iter().map(|v| v.str().to_string()).collect();
            let mut ours = strings_of(&k.value);
            expected.sort();
            ours.sort();
            assert_eq!(ours, expected, "{what}: set members");
        }
        "zset" => {
            let ours = zset_map(&k.value);
            let entries = j.at("entries").arr();
            assert_eq!(ours.len(), entries.len(), "{what}: zset size");
            assert_eq!(element_count(&k.value), entries.len(), "{what}: zset has duplicate members");
            for e in entries {
                let m = e.at("member").str();
                let want = e.at("score").f64();
                let got = *ours.get(m).unwrap_or_else(|| panic!("{what}: member {m:?} missing"));
                assert!(score_eq(got, want, SCORE_REL), "{what}: score of {m:?}: {got} vs {want}");
            }
        }
        "hash" => {
            let expected: BTreeMap<String, String> =
                j.at("hash").obj().iter().map(|(f, v)| (f.clone(), v.str().to_string())).collect();
            assert_eq!(hash_map(&k.value), expected, "{what}: hash");
            let OwnedValue::Hash(fields) = &k.value else { unreachable!() };
            let ours: BTreeMap<String, Option<i64>> = fields.iter().map(|(f, _, e)| (lossy(f), *e)).collect();
            match j.get("expire") {
                Some(exp) => {
                    for (f, ms) in exp.obj() {
                        let ms = ms.i64();
                        let want = (ms != 0).then_some(ms);
                        assert_eq!(ours.get(f.as_str()).copied(), Some(want), "{what}: expiry of field {f}");
                    }
                    assert_eq!(exp.obj().len(), ours.len(), "{what}: expire map covers every field");
                }
                None => assert!(ours.values().all(Option::is_none), "{what}: unexpected field expiries"),
            }
        }
        "stream" => compare_hdt_stream(what, k, j),
        other => panic!("{what}: unhandled type {other}"),
    }
}

/// Compares every record of `rdb` with HDT3213/rdb's JSON output `json`; returns the number of keys compared.
fn compare_with_hdt_json(rdb: &Path, json: &Path) -> usize {
    let name = short(rdb);
    // A file the servers refuse still decodes to what HDT3213/rdb reports, without deep validation.
    let d = if refused_deep(rdb).is_some() {
        common::decode_with(&name, &read(rdb), ReadOptions::fast())
    } else {
        decode_file(rdb)
    };
    let j = Json::parse_file(json);
    let mut keys = 0;
    for item in j.arr() {
        let key = item.at("key").str();
        match item.at("type").str() {
            "aux" => {
                let got = d.aux(key).unwrap_or_else(|| panic!("{name}: aux {key} missing"));
                assert_eq!(lossy(got), item.at("value").str(), "{name}: aux {key}");
            }
            "functions" => {
                let code = item.at("functionsLua").str();
                assert!(d.functions.iter().any(|f| lossy(f) == code), "{name}: function library {code:?} missing");
            }
            _ => {
                let db = item.at("db").i64() as u64;
                let k = find_key(&d, db, key, &name);
                compare_hdt_key(&format!("{name} key {key:?}"), k, item);
                keys += 1;
            }
        }
    }
    assert_eq!(d.keys.len(), keys, "{name}: key count differs from {}", short(json));
    keys
}

#[test]
fn hdt3213_files_match_their_json() {
    let corpus = corpus_or_skip!();
    let dir = corpus.join("hdt3213-rdb");
    let mut jsons: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.with_extension("rdb").is_file())
        .collect();
    jsons.sort();
    let mut files = 0;
    let mut keys = 0;
    for json in &jsons {
        keys += compare_with_hdt_json(&json.with_extension("rdb"), json);
        files += 1;
        // The same dumps in redis-rdb-tools' folder must read the same.
        let twin = corpus.join("rdbtools").join(json.with_extension("rdb").file_name().unwrap());
        if twin.is_file() {
            compare_with_hdt_json(&twin, json);
        }
    }
    // example.rdb is memory.rdb under another name.
    compare_with_hdt_json(&dir.join("example.rdb"), &dir.join("memory.json"));
    assert!(files >= 38, "only {files} JSON files compared");
    assert!(keys >= 100, "only {keys} keys compared");
}

#[test]
fn hdt_json_reader_self_check() {
    // The helpers the comparison relies on.
    assert_eq!(iso8601_ms("2022-12-25T18:11:12.573+08:00"), 1_671_963_072_573);
    assert_eq!(iso8601_ms("2022-12-25T10:11:12.573Z"), 1_671_963_072_573);
    assert_eq!(iso8601_ms("2022-02-18T06:15:29.18+08:00"), 1_645_136_129_180);
    assert_eq!(iso8601_ms("1970-01-01T00:00:00Z"), 0);
    let j = Json::parse(r#"{"a":[1,-2.5e3,"x\u00e9\ud83d\ude00\n"],"b":null,"c":{"b64":"AAFiaW7//gANCn+A"}}"#);
    assert_eq!(j.at("a").arr()[1].f64(), -2500.0);
    assert_eq!(j.at("a").arr()[2].str(), "x\u{e9}\u{1F600}\n");
    assert!(j.at("b").is_null());
    assert_eq!(j.at("c").bytes(), b"\x00\x01bin\xff\xfe\x00\r\n\x7f\x80");
    assert!(score_eq(1.0, 1.0 + 1e-12, SCORE_REL) && !score_eq(1.0, 1.001, SCORE_REL));
    assert!(score_eq(f64::INFINITY, f64::INFINITY, SCORE_REL) && !score_eq(f64::INFINITY, 1e308, SCORE_REL));
}

// ---------------------------------------------------------------------------------------------------------------
// redis-rdb-tools expectations
// ---------------------------------------------------------------------------------------------------------------

fn string_of(k: &Key) -> String {
    match &k.value {
        OwnedValue::String(s) => lossy(s),
        other => panic!("not a string: {other:?}"),
    }
}

#[test]
fn rdbtools_integer_keys() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/integer_keys.rdb");
    let expect = [
        ("125", "Positive 8 bit integer"),
        ("43947", "Positive 16 bit integer"),
        ("183358245", "Positive 32 bit integer"),
        ("-123", "Negative 8 bit integer"),
        ("-29477", "Negative 16 bit integer"),
        ("-183358245", "Negative 32 bit integer"),
    ];
    assert_eq!(d.keys.len(), expect.len());
    for (k, v) in expect {
        assert_eq!(string_of(d.get(0, k.as_bytes())), v, "key {k}");
    }
}

#[test]
fn rdbtools_easily_compressible_string_key() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/easily_compressible_string_key.rdb");
    assert_eq!(d.keys.len(), 1);
    let k = d.get(0, &[b'a'; 200]);
    assert_eq!(string_of(k), "Key that redis should compress easily");
}

#[test]
fn rdbtools_empty_database() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/empty_database.rdb");
    assert!(d.keys.is_empty() && d.select_dbs.is_empty());
    assert_eq!(d.checksum, Some(Checksum::Absent));
}

#[test]
fn rdbtools_hash_as_ziplist() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/hash_as_ziplist.rdb");
    let k = d.get(0, b"zipmap_compresses_easily");
    assert_eq!(k.encoding, Encoding::HashZiplist);
    let want: BTreeMap<String, String> =
        [("a", "aa"), ("aa", "aaaa"), ("aaaaa", "aaaaaaaaaaaaaa")].map(|(a, b)| (a.into(), b.into())).into();
    assert_eq!(hash_map(&k.value), want);
}

#[test]
fn rdbtools_intsets() {
    let corpus = corpus_or_skip!();
    for (file, key, vals) in [
        ("intset_16", "intset_16", [0x7ffe_i64, 0x7ffd, 0x7ffc]),
        ("intset_32", "intset_32", [0x7ffefffe, 0x7ffefffd, 0x7ffefffc]),
        ("intset_64", "intset_64", [0x7ffefffefffefffe, 0x7ffefffefffefffd, 0x7ffefffefffefffc]),
    ] {
        let d = corpus_file(&corpus, &format!("rdbtools/{file}.rdb"));
        let k = d.get(0, key.as_bytes());
        assert_eq!(k.encoding, Encoding::SetIntset, "{file}");
        let mut got = strings_of(&k.value);
        got.sort();
        let mut want: Vec<String> = vals.iter().map(i64::to_string).collect();
        want.sort();
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn rdbtools_keys_with_expiry() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/keys_with_expiry.rdb");
    let k = d.get(0, b"expires_ms_precision");
    // 2022-12-25 10:11:12.573 UTC
    assert_eq!(k.expiry_ms, Some(1_671_963_072_573));
    assert_eq!(string_of(k), "2022-12-25 10:11:12.573 UTC");
}

#[test]
fn rdbtools_linkedlist() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/linkedlist.rdb");
    let k = d.get(0, b"force_linkedlist");
    assert_eq!(k.encoding, Encoding::ListLinked);
    let l = strings_of(&k.value);
    assert_eq!(l.len(), 1000);
    for v in
        ["JYY4GIFI0ETHKP4VAJF5333082J4R1UPNPLE329YT0EYPGHSJQ", "TKBXHJOX9Q99ICF4V78XTCA2Y1UYW6ERL35JCIL1O0KSGXS58S"]
    {
        assert!(l.iter().any(|x| x == v), "missing {v}");
    }
}

#[test]
fn rdbtools_multiple_databases() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/multiple_databases.rdb");
    assert_eq!(d.select_dbs, [0, 2]);
    assert_eq!(d.names(0), ["key_in_zeroth_database"]);
    assert!(d.names(1).is_empty());
    assert_eq!(d.names(2), ["key_in_second_database"]);
    assert_eq!(string_of(d.get(0, b"key_in_zeroth_database")), "zero");
    assert_eq!(string_of(d.get(2, b"key_in_second_database")), "second");
}

#[test]
fn rdbtools_multiple_databases_via_stream_reader() {
    // rdbtools' parse_fd test: the same file through a stream.
    let corpus = corpus_or_skip!();
    let f = std::fs::File::open(corpus.join("rdbtools/multiple_databases.rdb")).unwrap();
    let w = common::ok_walk("multiple_databases (stream)", walk_stream(f, ReadOptions::default()));
    let keys: Vec<(u64, Vec<u8>)> = w.recs.into_iter().filter_map(|r| r.key).collect();
    assert_eq!(keys, [(0, b"key_in_zeroth_database".to_vec()), (2, b"key_in_second_database".to_vec())]);
}

#[test]
fn rdbtools_non_ascii_values() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/non_ascii_values.rdb");
    assert_eq!(d.keys.len(), 6);
    assert_eq!(string_of(d.get(0, b"utf8")), "בדיקה𐀏123עברית");
    assert_eq!(string_of(d.get(0, b"378")), "int_key_name");
    assert_eq!(string_of(d.get(0, b"int_value")), "123");
    let OwnedValue::String(bin) = &d.get(0, b"bin").value else { panic!() };
    assert!(std::str::from_utf8(bin).is_err(), "`bin` holds non-UTF-8 bytes");
    assert!(bin.starts_with(b"\x00$ ~0") && bin.ends_with(b"\rAb"));
}

#[test]
fn rdbtools_parser_filters() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/parser_filters.rdb");
    // rdbtools' key filter `k[0-9]` (anchored at the start) keeps exactly k1 and k3.
    let kdigit: Vec<String> = d
        .names(0)
        .into_iter()
        .filter(|n| n.len() >= 2 && n.starts_with('k') && n.as_bytes()[1].is_ascii_digit())
        .collect();
    assert_eq!(kdigit, ["k1", "k3"]);
    assert_eq!(string_of(d.get(0, b"k1")), "ssssssss");
    assert_eq!(string_of(d.get(0, b"k3")), "wwwwwwww");
    // The type filter `sortedset` keeps exactly z1..z4.
    let mut zsets: Vec<String> = d.keys.iter().filter(|k| k.type_name == "zset").map(|k| lossy(&k.key)).collect();
    zsets.sort();
    assert_eq!(zsets, ["z1", "z2", "z3", "z4"]);
}

#[test]
fn rdbtools_rdb_version_5_with_checksum() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/rdb_version_5_with_checksum.rdb");
    assert_eq!(d.header.version, 5);
    assert!(matches!(d.checksum, Some(Checksum::Ok(_))), "{:?}", d.checksum);
    for (k, v) in [
        ("abcd", "efgh"),
        ("foo", "bar"),
        ("bar", "baz"),
        ("abcdef", "abcdef"),
        ("longerstring", "thisisalongerstring.idontknowwhatitmeans"),
    ] {
        assert_eq!(string_of(d.get(0, k.as_bytes())), v, "{k}");
    }
}

#[test]
fn rdbtools_rdb_version_8_with_64b_length_and_scores() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/rdb_version_8_with_64b_length_and_scores.rdb");
    assert_eq!(d.header.version, 8);
    assert_eq!(string_of(d.get(0, b"foo")), "bar");
    let k = d.get(0, b"bigset");
    assert_eq!(k.encoding, Encoding::Zset2);
    let z = zset_map(&k.value);
    assert_eq!(z.len(), 1000);
    assert_eq!(element_count(&k.value), 1000);
    // The file's score is the double nearest 2.718 (not Euler's number).
    assert_eq!(z["finalfield"], "2.718".parse::<f64>().unwrap());
}

#[test]
fn rdbtools_redis_40_with_module() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/redis_40_with_module.rdb");
    let k = d.get(0, b"foo");
    assert_eq!(k.encoding, Encoding::Module2);
    assert_eq!(k.type_name, "module");
    let OwnedValue::Module { name, payload, .. } = &k.value else { panic!("foo is not a module value") };
    assert_eq!(name, "ReJSON-RL");
    assert_eq!(payload.last(), Some(&0), "payload ends with the module EOF opcode");
    // The key after it is reached: the module value was walked over without the module.
    assert_eq!(d.names(0), ["foo", "simplekey"]);
    assert_eq!(d.checksum, Some(Checksum::Disabled));
}

#[test]
fn rdbtools_redis_50_with_streams() {
    let corpus = corpus_or_skip!();
    let path = corpus.join("rdbtools/redis_50_with_streams.rdb");
    let d = decode_file(&path);
    let k = d.get(0, b"mystream");
    assert_eq!(k.encoding, Encoding::StreamV1);
    let OwnedValue::Stream(s) = &k.value else { panic!() };
    assert_eq!(s.length, 4);
    assert_eq!(s.entries.len(), 4);
    assert_eq!(k.stream_nodes.len(), 1, "exactly one listpack node");
    // The node really is a listpack: its blob starts with the listpack total-bytes header equal to its length.
    let data = read(&path);
    let r = SliceReader::new(&data).unwrap();
    let mut checked = false;
    for rec in r {
        if let RecordKind::Entry(e) = rec.unwrap().kind
            && e.key.decode().unwrap().as_ref() == b"mystream"
        {
            let sv = e.value.stream().unwrap();
            let lp = sv.nodes[0].1.decode().unwrap();
            assert_eq!(u32::from_le_bytes(lp[..4].try_into().unwrap()) as usize, lp.len());
            assert_eq!(lp.last(), Some(&0xFF));
            checked = true;
        }
    }
    assert!(checked);
}

#[test]
fn rdbtools_redis_60_with_module_aux() {
    let corpus = corpus_or_skip!();
    let data = read(&corpus.join("rdbtools/redis_60_with_module_aux.rdb"));
    let mut n = 0;
    for rec in SliceReader::new(&data).unwrap() {
        if let RecordKind::ModuleAux(m) = rec.unwrap().kind {
            n += 1;
            // Redis's test module `test__rdb` (encver 1), called after the keyspace, saving the string "global2".
            assert_eq!(m.name(), ("test__rdb".to_string(), 1));
            assert_eq!(m.when, 2);
            assert!(m.payload.windows(7).any(|w| w == b"global2"), "{:?}", m.payload);
            assert_eq!(m.payload.last(), Some(&0), "payload ends with the module EOF opcode");
        }
    }
    assert!(n >= 1, "no ModuleAux record");
}

#[test]
fn rdbtools_regular_set() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/regular_set.rdb");
    let k = d.get(0, b"regular_set");
    assert_eq!(k.encoding, Encoding::Set);
    let mut got = strings_of(&k.value);
    got.sort();
    assert_eq!(got, ["alpha", "beta", "delta", "gamma", "kappa", "phi"]);
}

#[test]
fn rdbtools_regular_sorted_set() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/regular_sorted_set.rdb");
    assert_eq!(d.keys.len(), 1);
    let k = &d.keys[0];
    assert_eq!(k.encoding, Encoding::ZsetText);
    assert!(element_count(&k.value) > 128, "a skiplist zset is large");
}

#[test]
fn rdbtools_sorted_set_as_ziplist() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/sorted_set_as_ziplist.rdb");
    let k = d.get(0, b"sorted_set_as_ziplist");
    assert_eq!(k.encoding, Encoding::ZsetZiplist);
    let z = zset_map(&k.value);
    assert_eq!(z.len(), 3);
    assert_eq!(z["8b6ba6718a786daefa69438148361901"], 1.0);
    assert_eq!(z["cb7a24bb7528f934b841b34c3a73e0c7"], 2.37);
    assert_eq!(z["523af537946b79c4f8369ed39ba78605"], 3.423);
}

#[test]
fn rdbtools_uncompressible_string_keys() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/uncompressible_string_keys.rdb");
    assert_eq!(d.keys.len(), 3);
    assert!(d.keys.iter().all(|k| k.type_name == "string" && k.key.len() > 20));
}

#[test]
fn rdbtools_ziplists() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/ziplist_that_compresses_easily.rdb");
    let k = d.get(0, b"ziplist_compresses_easily");
    assert_eq!(k.encoding, Encoding::ListZiplist);
    let want: Vec<String> = [6, 12, 18, 24, 30, 36].iter().map(|&n| "a".repeat(n)).collect();
    assert_eq!(strings_of(&k.value), want);

    let d = corpus_file(&corpus, "rdbtools/ziplist_that_doesnt_compress.rdb");
    let l = strings_of(&d.get(0, b"ziplist_doesnt_compress").value);
    assert_eq!(l, ["aj2410", "cc953a17a8e096e76a44169ad3f9ac87c5f8248a403274416179aa9fbd852344"]);

    let d = corpus_file(&corpus, "rdbtools/ziplist_with_integers.rdb");
    let k = d.get(0, b"ziplist_with_integers");
    assert_eq!(k.encoding, Encoding::ListZiplist);
    let mut want: Vec<i64> = (0..=12).collect();
    want.extend([-2, 13, 25, -61, 63, 16380, -16000, 65535, -65523, 4194304, 0x7fffffffffffffff]);
    let want: Vec<String> = want.iter().map(i64::to_string).collect();
    assert_eq!(strings_of(&k.value), want);
}

#[test]
fn rdbtools_zipmaps() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/zipmap_that_compresses_easily.rdb");
    let k = d.get(0, b"zipmap_compresses_easily");
    assert_eq!(k.encoding, Encoding::HashZipmap);
    let want: BTreeMap<String, String> =
        [("a", "aa"), ("aa", "aaaa"), ("aaaaa", "aaaaaaaaaaaaaa")].map(|(a, b)| (a.into(), b.into())).into();
    assert_eq!(hash_map(&k.value), want);

    let d = corpus_file(&corpus, "rdbtools/zipmap_that_doesnt_compress.rdb");
    let k = d.get(0, b"zimap_doesnt_compress");
    assert_eq!(k.encoding, Encoding::HashZipmap);
    let want: BTreeMap<String, String> = [("MKD1G6", "2"), ("YNNXK", "F7TI")].map(|(a, b)| (a.into(), b.into())).into();
    assert_eq!(hash_map(&k.value), want);

    let d = corpus_file(&corpus, "rdbtools/zipmap_with_big_values.rdb");
    let k = d.get(0, b"zipmap_with_big_values");
    // Despite its name this v6 file stores the hash as a ziplist (type 13).
    assert_eq!(k.encoding, Encoding::HashZiplist);
    let OwnedValue::Hash(h) = &k.value else { panic!() };
    let lens: BTreeMap<String, usize> = h.iter().map(|(f, v, _)| (lossy(f), v.len())).collect();
    let want: BTreeMap<String, usize> =
        [("253bytes", 253), ("254bytes", 254), ("255bytes", 255), ("300bytes", 300), ("20kbytes", 20000)]
            .map(|(a, b)| (a.to_string(), b))
            .into();
    assert_eq!(lens, want);
}

#[test]
fn rdbtools_dictionary() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "rdbtools/dictionary.rdb");
    let k = d.get(0, b"force_dictionary");
    assert_eq!(k.encoding, Encoding::Hash);
    let h = hash_map(&k.value);
    assert_eq!(h.len(), 1000);
    assert_eq!(element_count(&k.value), 1000, "no duplicate fields");
    assert_eq!(
        h["ZMU5WEJDG7KU89AOG5LJT6K7HMNB3DEI43M6EYTJ83VRJ6XNXQ"],
        "T63SOS8DQJF0Q0VJEZ0D1IQFCYTIPSBOUIAI9SB0OV57MQR1FI"
    );
    assert_eq!(
        h["UHS5ESW4HLK8XOGTM39IK1SJEUGVV9WOPK6JYA5QBZSJU84491"],
        "6VULTCV52FXJ8MGVSFTZVAGK2JXZMGQ5F8OVJI0X6GEDDR27RZ"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// HDT3213/rdb files beyond the generic JSON comparison
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn hdt_function_library() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "hdt3213-rdb/function.rdb");
    assert_eq!(d.functions.len(), 1);
    let code = lossy(&d.functions[0]);
    assert!(code.starts_with("#!lua"), "{code}");
    assert!(code.contains("redis.register_function('myfunc'"), "{code}");
    assert!(d.keys.is_empty());
}

#[test]
fn hdt_hash_field_expiries() {
    let corpus = corpus_or_skip!();
    // Redis 7.4 HASH_METADATA (24): F1..F3 with TTLs, F4..F8 without.
    let d = corpus_file(&corpus, "hdt3213-rdb/hash_with_hfe.rdb");
    let k = d.get(0, b"hash-hfe");
    assert_eq!(k.encoding, Encoding::HashMetadata);
    let OwnedValue::Hash(h) = &k.value else { panic!() };
    let exp: BTreeMap<String, Option<i64>> = h.iter().map(|(f, _, e)| (lossy(f), *e)).collect();
    assert_eq!(exp["F1"], Some(2755482424661));
    assert_eq!(exp["F2"], Some(2755483429282));
    assert_eq!(exp["F3"], Some(2755484433842));
    for f in ["F4", "F5", "F6", "F7", "F8"] {
        assert_eq!(exp[f], None, "{f} has no TTL");
    }
    // Redis 7.4 HASH_LISTPACK_EX (25): F2 has no TTL.
    let d = corpus_file(&corpus, "hdt3213-rdb/hash_as_listpack_with_hfe.rdb");
    let k = d.get(0, b"listpack-hfe");
    assert_eq!(k.encoding, Encoding::HashListpackEx);
    let OwnedValue::Hash(h) = &k.value else { panic!() };
    let exp: BTreeMap<String, (String, Option<i64>)> = h.iter().map(|(f, v, e)| (lossy(f), (lossy(v), *e))).collect();
    assert_eq!(exp["F1"], ("V1".into(), Some(2755482478325)));
    assert_eq!(exp["F2"], ("V2".into(), None));
    assert_eq!(exp["F3"], ("V3".into(), Some(2755484483878)));
    // Valkey HASH_2 (22 in a VALKEY file).
    let d = corpus_file(&corpus, "hdt3213-rdb/valkey_hash2_with_hfe.rdb");
    assert_eq!(d.header.magic(), "VALKEY080");
    let k = d.get(0, b"hash2-hfe");
    assert_eq!(k.encoding, Encoding::ValkeyHash2);
    let OwnedValue::Hash(h) = &k.value else { panic!() };
    let exp: BTreeMap<String, (String, Option<i64>)> = h.iter().map(|(f, v, e)| (lossy(f), (lossy(v), *e))).collect();
    assert_eq!(exp["F1"], ("V1".into(), Some(2715785640000)));
    assert_eq!(exp["F2"], ("V2".into(), Some(2400425640000)));
    assert_eq!(exp["F3"], ("V3".into(), None));
}

#[test]
fn hdt_streams() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "hdt3213-rdb/stream_listoacks_3.rdb");
    let k = d.get(0, b"mystream");
    assert_eq!(k.encoding, Encoding::StreamV3);
    let OwnedValue::Stream(s) = &k.value else { panic!() };
    assert_eq!(s.entries.len(), 1);
    assert_eq!(s.entries[0].id.to_string(), "1704557973866-0");
    assert_eq!(s.entries[0].fields, [(b"name".to_vec(), b"Sara".to_vec()), (b"surname".to_vec(), b"OConnor".to_vec())]);
    assert_eq!(s.groups.len(), 1);
    let g = &s.groups[0];
    assert_eq!(g.name, b"consumer-group-name");
    assert_eq!(g.entries_read, Some(1));
    assert_eq!(g.pel.len(), 1);
    assert_eq!(g.pel[0].delivery_count, 1);
    assert_eq!(g.consumers[0].name, b"consumer-name");
    assert_eq!(g.consumers[0].active_time, Some(1704557998397));

    let d = corpus_file(&corpus, "hdt3213-rdb/stream_listpacks_2.rdb");
    let k = d.get(0, b"astream");
    assert_eq!(k.encoding, Encoding::StreamV2);
    let OwnedValue::Stream(s) = &k.value else { panic!() };
    assert_eq!(s.length, 2);
    assert_eq!(s.entries[1].id.to_string(), "1681085312465-0");

    let d = corpus_file(&corpus, "hdt3213-rdb/stream_listpacks_1.rdb");
    assert!(d.keys.iter().all(|k| k.encoding == Encoding::StreamV1));
    let OwnedValue::Stream(test) = &d.get(0, b"test").value else { panic!() };
    // `XADD test * k v k v`: duplicate field names are kept, in order.
    assert_eq!(test.entries[0].fields, [(b"k".to_vec(), b"v".to_vec()), (b"k".to_vec(), b"v".to_vec())]);
    // `trim` records length 120 while its nodes hold 118 live entries (HDT3213/rdb's JSON agrees): the metadata is
    // reported as stored, not recomputed.
    let OwnedValue::Stream(trim) = &d.get(0, b"trim").value else { panic!() };
    assert_eq!((trim.length, trim.entries.len()), (120, 118));
    assert_eq!(d.get(0, b"trim").stream_nodes.len(), 3);

    // issue27: stream entry IDs whose seq delta is negative (-1) against the master ID.
    let d = corpus_file(&corpus, "hdt3213-rdb/issue27.rdb");
    let k = d.get(0, b"mytest");
    let OwnedValue::Stream(s) = &k.value else { panic!() };
    assert!(s.entries.len() > 1000);
    assert!(s.entries.windows(2).all(|w| w[0].id < w[1].id), "entry IDs strictly increase");
    assert_eq!(s.entries[0].id.to_string(), "1704268581841-1");
}

#[test]
fn hdt_expiration_and_tree() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "hdt3213-rdb/expiration.rdb");
    assert_eq!(d.keys.len(), 2);
    assert!(d.keys.iter().any(|k| k.expiry_ms.is_some_and(|ms| ms > 1_600_000_000_000)), "a key with an expiry");
    // tree2.csv (prefix report for tree.rdb): prefix a → 6 keys, ab → 5, b → 1.
    let d = corpus_file(&corpus, "hdt3213-rdb/tree.rdb");
    let names = d.names(0);
    assert_eq!(names.len(), 7);
    assert_eq!(names.iter().filter(|n| n.starts_with('a')).count(), 6);
    assert_eq!(names.iter().filter(|n| n.starts_with("ab")).count(), 5);
    assert_eq!(names.iter().filter(|n| n.starts_with('b')).count(), 1);
}

#[test]
fn hdt_memory_csv_element_counts() {
    let corpus = corpus_or_skip!();
    // memory.csv: key,type,element_count,encoding,expiration.
    let d = corpus_file(&corpus, "hdt3213-rdb/memory.rdb");
    let csv = std::fs::read_to_string(corpus.join("hdt3213-rdb/memory.csv")).unwrap();
    let mut rows = 0;
    for line in csv.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let k = d.get(cols[0].parse().unwrap(), cols[1].as_bytes());
        assert_eq!(k.type_name, cols[2], "{line}");
        let count: usize = cols[5].parse().unwrap();
        if k.type_name != "string" {
            assert_eq!(element_count(&k.value), count, "{line}");
        }
        assert_eq!(k.expiry_ms.is_some(), !cols[7].is_empty(), "{line}");
        if !cols[7].is_empty() {
            // The CSV has whole seconds.
            assert_eq!(k.expiry_ms.unwrap() / 1000, iso8601_ms(cols[7]) / 1000, "{line}");
        }
        rows += 1;
    }
    assert_eq!(rows, d.keys.len());
}

// ---------------------------------------------------------------------------------------------------------------
// redis/redis tests/assets
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn redis_encodings_csvdump() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "redis/encodings.rdb");
    let list8: Vec<String> = ["1", "2", "3", "a", "b", "c", "100000", "6000000000"].map(String::from).to_vec();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let hash = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<BTreeMap<_, _>>();
    let zset = |v: &[(&str, f64)]| v.iter().map(|(a, b)| (a.to_string(), *b)).collect::<BTreeMap<_, _>>();

    assert_eq!(
        d.names(0),
        [
            "compressible",
            "hash",
            "hash_zipped",
            "list",
            "list_zipped",
            "number",
            "set",
            "set_zipped_1",
            "set_zipped_2",
            "set_zipped_3",
            "string",
            "zset",
            "zset_zipped"
        ]
    );
    // rdb.tcl's value is a run of "a" (MANIFEST says ×130; the file's LZF string declares and holds 137).
    let c = string_of(d.get(0, b"compressible"));
    assert!(c.len() >= 130 && c.bytes().all(|b| b == b'a'), "{c:?}");
    assert_eq!(string_of(d.get(0, b"number")), "10");
    assert_eq!(string_of(d.get(0, b"string")), "Hello World");
    assert_eq!(
        hash_map(&d.get(0, b"hash").value),
        hash(&[
            ("a", "1"),
            ("aa", "10"),
            ("aaa", "100"),
            ("b", "2"),
            ("bb", "20"),
            ("bbb", "200"),
            ("c", "3"),
            ("cc", "30"),
            ("ccc", "300"),
            ("ddd", "400"),
            ("eee", "5000000000")
        ])
    );
    assert_eq!(hash_map(&d.get(0, b"hash_zipped").value), hash(&[("a", "1"), ("b", "2"), ("c", "3")]));
    assert_eq!(strings_of(&d.get(0, b"list").value), list8.iter().cycle().take(24).cloned().collect::<Vec<_>>());
    assert_eq!(strings_of(&d.get(0, b"list_zipped").value), list8);
    assert_eq!(sorted(strings_of(&d.get(0, b"set").value)), sorted(list8.clone()));
    assert_eq!(sorted(strings_of(&d.get(0, b"set_zipped_1").value)), strs(&["1", "2", "3", "4"]));
    assert_eq!(sorted(strings_of(&d.get(0, b"set_zipped_2").value)), strs(&["100000", "200000", "300000", "400000"]));
    assert_eq!(
        sorted(strings_of(&d.get(0, b"set_zipped_3").value)),
        sorted((1..=6).map(|i| (i * 1_000_000_000i64).to_string()).collect())
    );
    assert_eq!(
        zset_map(&d.get(0, b"zset").value),
        zset(&[
            ("a", 1.0),
            ("b", 2.0),
            ("c", 3.0),
            ("aa", 10.0),
            ("bb", 20.0),
            ("cc", 30.0),
            ("aaa", 100.0),
            ("bbb", 200.0),
            ("ccc", 300.0),
            ("aaaa", 1000.0),
            ("cccc", 123456789.0),
            ("bbbb", 5000000000.0)
        ])
    );
    assert_eq!(zset_map(&d.get(0, b"zset_zipped").value), zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]));
    // Element counts equal the map sizes: no duplicates were folded away.
    assert_eq!(element_count(&d.get(0, b"zset").value), 12);
    assert_eq!(element_count(&d.get(0, b"hash").value), 11);
}

#[test]
fn redis_hash_zipmap_and_ziplist_conversions() {
    let corpus = corpus_or_skip!();
    let want: BTreeMap<String, String> = [("f1", "v1"), ("f2", "v2")].map(|(a, b)| (a.into(), b.into())).into();
    let d = corpus_file(&corpus, "redis/hash-zipmap.rdb");
    let k = d.get(0, b"hash");
    assert_eq!(k.encoding, Encoding::HashZipmap);
    assert_eq!(hash_map(&k.value), want);
    assert_eq!(element_count(&k.value), 2);
    let d = corpus_file(&corpus, "redis/hash-ziplist.rdb");
    let k = d.get(0, b"hash");
    assert_eq!(k.encoding, Encoding::HashZiplist);
    assert_eq!(hash_map(&k.value), want);
    let d = corpus_file(&corpus, "redis/zset-ziplist.rdb");
    let k = d.get(0, b"zset");
    assert_eq!(k.encoding, Encoding::ZsetZiplist);
    let z = zset_map(&k.value);
    assert_eq!(z.len(), 2);
    assert_eq!((z["one"], z["two"]), (1.0, 2.0));
}

#[test]
fn redis_list_quicklist() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "redis/list-quicklist.rdb");
    assert_eq!(string_of(d.get(0, b"x")), "7");
    let k = d.get(0, b"list");
    assert_eq!(k.encoding, Encoding::ListQuicklist);
    // LPOP list → "7".
    assert_eq!(strings_of(&k.value).first().map(String::as_str), Some("7"));
}

#[test]
fn redis_scriptbackup_lua_aux() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "redis/scriptbackup.rdb");
    assert_eq!(d.aux("lua").map(lossy).as_deref(), Some("return redis.call('set', 'foo', 'bar')"));
    assert!(d.functions.is_empty());
}

#[test]
fn redis_corrupt_empty_keys() {
    let corpus = corpus_or_skip!();
    let d = corpus_file(&corpus, "redis/corrupt_empty_keys.rdb");
    let mut want = [
        "set",
        "list_quicklist",
        "list_quicklist_empty_ziplist",
        "list_ziplist",
        "hash",
        "hash_ziplist",
        "zset",
        "zset_ziplist",
        "zset_listpack",
    ]
    .map(String::from)
    .to_vec();
    want.sort();
    assert_eq!(d.names(0), want);
    for k in &d.keys {
        assert_eq!(element_count(&k.value), 0, "{} should be empty: {:?}", lossy(&k.key), k.value);
    }
}

#[test]
fn redis_rdb_preamble_aof() {
    let corpus = corpus_or_skip!();
    let path = corpus.join("redis/rdb-preamble.aof");
    let data = read(&path);
    let w = common::ok_walk("rdb-preamble.aof", walk_slice(&data, ReadOptions::default()));
    let eof = w.recs.last().unwrap();
    assert!(eof.is_eof);
    let end = eof.offset as usize + eof.raw.len();
    let t = w.trailing.unwrap();
    assert_ne!(t.len, 0);
    assert_eq!(t.len as usize, data.len() - end);
    assert!(!t.all_zero);
    assert_eq!(data[end], b'*', "the AOF tail starts with a RESP array");
    assert!(matches!(w.checksum, Some(Checksum::Ok(_))));
    let s = common::ok_walk("rdb-preamble.aof (stream)", walk_stream(&data[..], ReadOptions::default()));
    assert_eq!(s.trailing, w.trailing);
    let d = decode_file(&path);
    assert!(!d.keys.is_empty());
}
