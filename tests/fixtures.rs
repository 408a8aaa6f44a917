//! `testdata/`: RDB files written by real Redis 6.2 / 7.0 / 8.2 and Valkey 9.1 servers, each with the server's own
//! view of every key (see testdata/README.md). Every key must decode to exactly what the server said.

mod common;

use common::{Decoded, Json, Key, b64_decode, decode, lossy, read, short, walk_slice, walk_stream};
use rdbkit::read::{Checksum, Encoding, OwnedValue, ReadOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The key bytes of a `"databases"` object key: the text itself, or `b64:` + base64.
fn object_key_bytes(name: &str) -> Vec<u8> {
    match name.strip_prefix("b64:") {
        Some(b64) => b64_decode(b64),
        None => name.as_bytes().to_vec(),
    }
}

/// Whether our encoding is one the RDB could hold for a value the server reported with `OBJECT ENCODING` `obj`.
fn encoding_consistent(ty: &str, obj: &str, ours: Encoding) -> bool {
    use Encoding::*;
    match (ty, obj) {
        ("string", "int" | "embstr" | "raw") => ours == String,
        ("list", "quicklist") => matches!(ours, ListQuicklist | ListQuicklist2),
        // Redis 7.2+ keeps small lists as one listpack and writes them as a one-node quicklist 2.
        ("list", "listpack") => ours == ListQuicklist2,
        ("list", "ziplist") => ours == ListZiplist,
        ("list", "linkedlist") => ours == ListLinked,
        ("set", "intset") => ours == SetIntset,
        ("set", "listpack") => ours == SetListpack,
        ("set", "hashtable") => ours == Set,
        ("zset", "listpack") => ours == ZsetListpack,
        ("zset", "ziplist") => ours == ZsetZiplist,
        ("zset", "skiplist") => matches!(ours, Zset2 | ZsetText),
        ("hash", "listpack") => ours == HashListpack,
        ("hash", "ziplist") => ours == HashZiplist,
        ("hash", "zipmap") => ours == HashZipmap,
        ("hash", "listpackex") => ours == HashListpackEx,
        ("hash", "hashtable") => matches!(ours, Hash | HashMetadata | ValkeyHash2),
        ("stream", "stream") => matches!(ours, StreamV1 | StreamV2 | StreamV3),
        (_, "raw") => ours == Module2,
        _ => false,
    }
}

fn id_str(j: &Json) -> String {
    j.str().to_string()
}

fn compare_stream(what: &str, k: &Key, j: &Json) {
    let OwnedValue::Stream(s) = &k.value else { panic!("{what}: not a stream: {:?}", k.value) };
    let entries = j.at("entries").arr();
    assert_eq!(s.entries.len(), entries.len(), "{what}: entry count");
    for (e, je) in s.entries.iter().zip(entries) {
        let pair = je.arr();
        assert_eq!(e.id.to_string(), pair[0].str(), "{what}: entry id");
        let flat: Vec<Vec<u8>> = e.fields.iter().flat_map(|(f, v)| [f.clone(), v.clone()]).collect();
        let want: Vec<Vec<u8>> = pair[1].arr().iter().map(Json::bytes).collect();
        assert_eq!(flat, want, "{what}: fields of {}", e.id);
    }
    assert_eq!(s.length, j.at("length").i64() as u64, "{what}: length");
    assert_eq!(s.last_id.to_string(), j.at("last_id").str(), "{what}: last id");
    if let Some(v) = j.get("max_deleted_entry_id") {
        assert_eq!(s.max_deleted_id.map(|i| i.to_string()), Some(id_str(v)), "{what}: max deleted id");
    }
    if let Some(v) = j.get("entries_added") {
        assert_eq!(s.entries_added, Some(v.i64() as u64), "{what}: entries added");
    }
    if let Some(v) = j.get("recorded_first_entry_id") {
        assert_eq!(s.first_id.map(|i| i.to_string()), Some(id_str(v)), "{what}: first id");
    }
    let groups = j.at("groups").arr();
    assert_eq!(
        s.groups.iter().map(|g| lossy(&g.name)).collect::<Vec<_>>(),
        groups.iter().map(|g| lossy(&g.at("name").bytes())).collect::<Vec<_>>(),
        "{what}: group names"
    );
    for (g, jg) in s.groups.iter().zip(groups) {
        let gname = lossy(&g.name);
        assert_eq!(g.name, jg.at("name").bytes());
        assert_eq!(g.last_id.to_string(), jg.at("last_delivered_id").str(), "{what}: {gname} last delivered id");
        match jg.get("entries_read") {
            Some(Json::Num(_)) => {
                let n = jg.at("entries_read").i64() as u64;
                assert_eq!(g.entries_read, Some(n), "{what}: {gname} entries read")
            }
            // null: the server considers the stored counter invalid; absent: 6.2, where the format has none.
            Some(_) => assert!(g.entries_read.is_some(), "{what}: {gname}: v2+ streams store entries_read"),
            None => assert_eq!(g.entries_read, None, "{what}: {gname}: v1 streams have no entries_read"),
        }
        let pel = jg.at("pel").arr();
        assert_eq!(g.pel.len(), pel.len(), "{what}: {gname} PEL size");
        for (p, jp) in g.pel.iter().zip(pel) {
            let jp = jp.arr();
            assert_eq!(p.id.to_string(), jp[0].str(), "{what}: {gname} PEL id");
            assert_eq!(p.delivery_count, jp[2].i64() as u64, "{what}: {gname} delivery count of {}", p.id);
            let owner = jp[1].bytes();
            let c = g.consumers.iter().find(|c| c.name == owner);
            assert!(
                c.is_some_and(|c| c.pel.contains(&p.id)),
                "{what}: {gname}: {} should be owned by {}",
                p.id,
                lossy(&owner)
            );
        }
        let consumers = jg.at("consumers").arr();
        assert_eq!(g.consumers.len(), consumers.len(), "{what}: {gname} consumer count");
        let by_name: BTreeMap<Vec<u8>, &Json> = consumers.iter().map(|c| (c.at("name").bytes(), c)).collect();
        for c in &g.consumers {
            let jc = by_name
                .get(&c.name)
                .unwrap_or_else(|| panic!("{what}: {gname}: unexpected consumer {}", lossy(&c.name)));
            let want: Vec<(String, u64)> =
                jc.at("pel").arr().iter().map(|p| (p.arr()[0].str().to_string(), p.arr()[1].i64() as u64)).collect();
            let got: Vec<(String, u64)> = c
                .pel
                .iter()
                .map(|id| {
                    let count = g.pel.iter().find(|p| p.id == *id).map(|p| p.delivery_count).unwrap_or(0);
                    (id.to_string(), count)
                })
                .collect();
            assert_eq!(got, want, "{what}: {gname}: consumer {} PEL", lossy(&c.name));
        }
    }
}

fn compare_value(what: &str, k: &Key, ty: &str, j: &Json) {
    match (ty, &k.value) {
        ("string", OwnedValue::String(s)) => assert_eq!(s, &j.bytes(), "{what}: string"),
        ("list", OwnedValue::List(l)) => {
            let want: Vec<Vec<u8>> = j.arr().iter().map(Json::bytes).collect();
            assert_eq!(l, &want, "{what}: list");
        }
        ("set", OwnedValue::Set(m)) => {
            let mut got = m.clone();
            got.sort();
            let mut want: Vec<Vec<u8>> = j.arr().iter().map(Json::bytes).collect();
            want.sort();
            assert_eq!(got, want, "{what}: set members");
        }
        ("zset", OwnedValue::ZSet(z)) => {
            // ZRANGE order: by score, then by member bytes.
            let mut got = z.clone();
            got.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            let want: Vec<(Vec<u8>, f64)> = j
                .arr()
                .iter()
                .map(|p| {
                    let text = p.arr()[1].str();
                    let score: f64 = text.parse().unwrap_or_else(|_| panic!("{what}: score text {text:?}"));
                    (p.arr()[0].bytes(), score)
                })
                .collect();
            assert_eq!(got.len(), want.len(), "{what}: zset size");
            for ((gm, gs), (wm, ws)) in got.iter().zip(&want) {
                assert_eq!(lossy(gm), lossy(wm), "{what}: zset member order");
                assert!(gs == ws, "{what}: score of {}: {gs:e} vs server {ws:e}", lossy(gm));
            }
        }
        ("hash", OwnedValue::Hash(h)) => {
            let mut got = h.clone();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let want = j.arr();
            assert_eq!(got.len(), want.len(), "{what}: hash size");
            for ((f, v, exp), w) in got.iter().zip(want) {
                let w = w.arr();
                assert_eq!(lossy(f), lossy(&w[0].bytes()), "{what}: field");
                assert_eq!(f, &w[0].bytes(), "{what}: field bytes");
                assert_eq!(v, &w[1].bytes(), "{what}: value of {}", lossy(f));
                match w.get(2) {
                    Some(e) => {
                        let ms = e.i64();
                        assert_eq!(*exp, (ms != -1).then_some(ms), "{what}: expiry of field {}", lossy(f));
                    }
                    None => assert_eq!(*exp, None, "{what}: field {} has no TTL on this server", lossy(f)),
                }
            }
        }
        ("stream", OwnedValue::Stream(_)) => compare_stream(what, k, j),
        (_, OwnedValue::Module { name, .. }) => {
            assert_eq!(name, ty, "{what}: module type name");
            assert!(j.is_null());
        }
        (ty, v) => panic!("{what}: server type {ty}, decoded {v:?}"),
    }
}

/// Compares one fixture with its JSON; returns the number of keys compared.
fn check_fixture(rdb: &Path, json: &Path) -> usize {
    let name = short(rdb);
    let data = read(rdb);
    let j = Json::parse_file(json);
    let d: Decoded = decode(&name, &data);

    // Header.
    let magic = j.at("magic").str();
    assert_eq!(d.header.magic(), magic, "{name}: magic");
    assert_eq!(&data[..9], magic.as_bytes(), "{name}: magic bytes");
    assert!(matches!(d.checksum, Some(Checksum::Ok(_))), "{name}: checksum {:?}", d.checksum);
    assert_eq!(d.trailing.map(|t| t.len), Some(0), "{name}: trailing bytes");

    // Functions.
    let want_fns: BTreeSet<Vec<u8>> = match j.get("functions") {
        Some(f) => f.arr().iter().map(|l| l.at("code").bytes()).collect(),
        None => BTreeSet::new(),
    };
    let got_fns: BTreeSet<Vec<u8>> = d.functions.iter().cloned().collect();
    assert_eq!(got_fns, want_fns, "{name}: function libraries");
    assert_eq!(d.functions.len(), want_fns.len(), "{name}: a library stored twice");
    if let Some(f) = j.get("functions") {
        for lib in f.arr() {
            let code = lossy(&lib.at("code").bytes());
            let first = code.lines().next().unwrap_or_default().to_string();
            assert!(first.starts_with(&format!("#!{}", lib.at("engine").str().to_lowercase())), "{name}: {first}");
            assert!(first.contains(&format!("name={}", lib.at("library_name").str())), "{name}: {first}");
        }
    }

    // Keys, database by database.
    let dbs = j.at("databases").obj();
    let json_dbs: BTreeSet<u64> = dbs.iter().map(|(n, _)| n.parse().unwrap()).collect();
    let our_dbs: BTreeSet<u64> = d.keys.iter().map(|k| k.db).collect();
    assert_eq!(our_dbs, json_dbs, "{name}: non-empty databases");
    let mut compared = 0;
    for (dbname, keys) in dbs {
        let db: u64 = dbname.parse().unwrap();
        let keys = keys.obj();
        assert_eq!(
            d.keys.iter().filter(|k| k.db == db).count(),
            keys.len(),
            "{name}: key count of db {db}: ours {:?}",
            d.names(db)
        );
        for (oname, rec) in keys {
            let key = rec.at("key").bytes();
            assert_eq!(object_key_bytes(oname), key, "{name}: escaping of {oname}");
            let what = format!("{name} db {db} key {}", rdbkit::escape_bytes(&key));
            let found: Vec<&Key> = d.keys.iter().filter(|k| k.db == db && k.key == key).collect();
            assert_eq!(found.len(), 1, "{what}: found {} times", found.len());
            let k = found[0];
            let ty = rec.at("type").str();
            let logical = match ty {
                "string" | "list" | "set" | "zset" | "hash" | "stream" => ty,
                _ => "module",
            };
            assert_eq!(k.type_name, logical, "{what}: type");
            let enc = rec.at("encoding").str();
            assert!(
                encoding_consistent(logical, enc, k.encoding),
                "{what}: server encoding {enc} vs stored {:?}",
                k.encoding
            );
            assert!(k.encoding.allowed_in(d.header), "{what}: {:?} in a {} file", k.encoding, d.header.magic());
            let pexp = rec.at("pexpiretime").i64();
            assert_eq!(k.expiry_ms, (pexp != -1).then_some(pexp), "{what}: expiry");
            compare_value(&what, k, ty, rec.at("value"));
            compared += 1;
        }
    }
    compared
}

#[test]
fn every_fixture_matches_its_server_view() {
    let mut total = 0;
    let mut names = Vec::new();
    for (rdb, json) in common::fixtures() {
        let n = check_fixture(&rdb, &json);
        assert!(n > 0, "{}: no keys compared", short(&rdb));
        total += n;
        names.push(short(&rdb));
    }
    assert!(total >= 300, "only {total} keys compared over {names:?}");
}

fn fixture(name: &str) -> (Vec<u8>, Json) {
    let dir = common::testdata_dir();
    (read(&dir.join(format!("{name}.rdb"))), Json::parse_file(&dir.join(format!("{name}.json"))))
}

// One test per fixture too, so a failure names the server.
macro_rules! per_fixture {
    ($($test:ident => $name:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            let dir = common::testdata_dir();
            let n = check_fixture(&dir.join(concat!($name, ".rdb")), &dir.join(concat!($name, ".json")));
            assert!(n >= 50, "{}: only {n} keys", $name);
        }
    )*};
}

per_fixture! {
    redis_6_2 => "redis-6.2",
    redis_7_0 => "redis-7.0",
    redis_7_0_multidb64 => "redis-7.0-multidb64",
    redis_8_2 => "redis-8.2",
    redis_8_2_nomodule => "redis-8.2-nomodule",
    valkey_9_1 => "valkey-9.1",
}

#[test]
fn fixtures_read_identically_with_both_readers() {
    for (rdb, _) in common::fixtures() {
        let name = short(&rdb);
        let data = read(&rdb);
        for opts in [ReadOptions::default(), ReadOptions::fast()] {
            let s = common::ok_walk(&name, walk_slice(&data, opts));
            let t = common::ok_walk(&name, walk_stream(&data[..], opts));
            assert_eq!(s.recs, t.recs, "{name}: records");
            assert_eq!(s.checksum, t.checksum, "{name}: checksum");
            assert_eq!(s.header, t.header, "{name}: header");
        }
    }
}

#[test]
fn fixture_versions_and_encodings_per_server() {
    use Encoding::*;
    // Which stream metadata version and which special encodings each server writes.
    let cases: [(&str, u32, Encoding); 5] = [
        ("redis-6.2", 9, StreamV1),
        ("redis-7.0", 10, StreamV2),
        ("redis-8.2", 12, StreamV3),
        ("redis-8.2-nomodule", 12, StreamV3),
        ("valkey-9.1", 80, StreamV3),
    ];
    for (name, version, stream) in cases {
        let (data, _) = fixture(name);
        let d = decode(name, &data);
        assert_eq!(d.header.version, version, "{name}");
        let k = d.get(0, b"stream:main");
        assert_eq!(k.encoding, stream, "{name}: stream:main");
        let encs: std::collections::HashSet<Encoding> = d.keys.iter().map(|k| k.encoding).collect();
        let has = |e: Encoding| encs.contains(&e);
        match name {
            "redis-6.2" => assert!(has(ListQuicklist) && has(ZsetZiplist) && has(HashZiplist) && !has(SetListpack)),
            "redis-7.0" => assert!(has(ListQuicklist2) && has(HashListpack) && has(ZsetListpack)),
            "valkey-9.1" => assert!(has(ValkeyHash2) && has(SetListpack)),
            _ => assert!(has(HashListpackEx) && has(HashMetadata) && has(Module2)),
        }
    }
    // 8.2 with FalkorDB: the graph and the module AUX data.
    let (data, _) = fixture("redis-8.2");
    let d = decode("redis-8.2", &data);
    assert!(d.module_aux.iter().any(|m| m == "graphdata"), "module aux: {:?}", d.module_aux);
    assert_eq!(d.get(0, b"graph:g").type_name, "module");
    let (data, _) = fixture("redis-8.2-nomodule");
    let d = decode("redis-8.2-nomodule", &data);
    assert!(d.module_aux.iter().all(|m| m != "graphdata"));
}

#[test]
fn fixture_special_values() {
    for name in ["redis-6.2", "redis-7.0", "redis-8.2", "valkey-9.1"] {
        let (data, _) = fixture(name);
        let d = decode(name, &data);
        // A key with 0x00 and 0xff bytes.
        let k = d.get(0, b"key:\x00\xff:binary");
        assert_eq!(k.value, OwnedValue::String(b"value of a binary key".to_vec()), "{name}");
        // int64 extremes in a list, and a value just outside INT32.
        let OwnedValue::List(l) = &d.get(0, b"list:ints").value else { panic!("{name}") };
        assert!(l.contains(&i64::MIN.to_string().into_bytes()) && l.contains(&i64::MAX.to_string().into_bytes()));
        assert_eq!(d.get(0, b"str:int:2147483648").value, OwnedValue::String(b"2147483648".to_vec()), "{name}");
        assert_eq!(d.get(0, b"str:notint:007").value, OwnedValue::String(b"007".to_vec()), "{name}");
        // Infinite and tiny scores.
        let OwnedValue::ZSet(z) = &d.get(0, b"zset:small").value else { panic!("{name}") };
        let score = |m: &[u8]| z.iter().find(|(k, _)| k == m).map(|(_, s)| *s).unwrap();
        assert_eq!(score(b"pos-inf"), f64::INFINITY, "{name}");
        assert_eq!(score(b"neg-inf"), f64::NEG_INFINITY, "{name}");
        assert_eq!(score(b"tiny"), 1e-300, "{name}");
        // `shared` exists in every populated database with a different value.
        let shared: BTreeSet<Vec<u8>> = d
            .keys
            .iter()
            .filter(|k| k.key == b"shared")
            .map(|k| match &k.value {
                OwnedValue::String(s) => s.clone(),
                other => format!("{other:?}").into_bytes(),
            })
            .collect();
        assert_eq!(shared.len(), 5, "{name}: `shared` in db 0, 1, 5, 15, 63");
        assert!(d.get(63, b"db63:str").expiry_ms.is_some(), "{name}");
    }
    let (data, _) = fixture("redis-7.0-multidb64");
    let d = decode("multidb64", &data);
    for db in 0..64u64 {
        let k = d.get(db, format!("key:db{db:02}").as_bytes());
        assert_eq!(k.value, OwnedValue::String(format!("value in db {db}").into_bytes()));
    }
}
