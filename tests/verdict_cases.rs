//! `rdbkit verify`'s verdict is the server's (issue 15 §1): hand-built files for each case where rdbkit and the
//! servers used to disagree, with the verdict rdbkit must give — refused, accepted with a warning, or accepted.
//! Each verdict was first checked by loading the file into the real server with `--sanitize-dump-payload yes`
//! (Redis 7.0 for RDB ≤ 10, Redis 8.2 for RDB 11–12, Valkey 9.1 for `VALKEY080`), and this test loads every file
//! into that server again when the servers are installed (ports 7720–7749); it prints `skipped: …` otherwise,
//! unless `RDBKIT_REQUIRE_SERVERS=1`.
//!
//! Both readers give the verdict, and the CLI turns warnings into exit 1 with `--strict`.
#![cfg(feature = "cli")]

use rdbkit::read::{ReadOptions, RecordKind, SliceReader, StreamReader, WarningKind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn len(n: usize) -> Vec<u8> {
    if n < 64 {
        vec![n as u8]
    } else if n < 16384 {
        vec![0x40 | (n >> 8) as u8, n as u8]
    } else {
        let mut v = vec![0x80];
        v.extend_from_slice(&(n as u32).to_be_bytes());
        v
    }
}

/// An RDB string.
fn s(b: impl AsRef<[u8]>) -> Vec<u8> {
    let b = b.as_ref();
    [len(b.len()), b.to_vec()].concat()
}

/// A whole file: magic, body, EOF and a disabled (zero) checksum, which every server accepts.
fn file(magic: &str, body: &[u8]) -> Vec<u8> {
    [magic.as_bytes(), body, &[0xFF], &[0; 8]].concat()
}

/// `SELECTDB 0` and records.
fn db0(recs: &[Vec<u8>]) -> Vec<u8> {
    [vec![0xFE, 0], recs.concat()].concat()
}

fn key(ty: u8, k: &str, v: &[u8]) -> Vec<u8> {
    [vec![ty], s(k), v.to_vec()].concat()
}

fn string_key(k: &str, v: &str) -> Vec<u8> {
    key(0, k, &s(v))
}

fn expire_ms(ms: i64) -> Vec<u8> {
    [vec![0xFC], ms.to_le_bytes().to_vec()].concat()
}

/// A listpack element (a small unsigned integer or a short string) with its 1-byte backlen.
fn lp_elem(e: &LpItem) -> Vec<u8> {
    let enc = match e {
        LpItem::Int(v) => vec![*v],
        LpItem::Str(b) => [vec![0x80 | b.len() as u8], b.to_vec()].concat(),
    };
    let n = enc.len() as u8;
    [enc, vec![n]].concat()
}

enum LpItem {
    Int(u8),
    Str(&'static [u8]),
}
use LpItem::{Int, Str};

fn listpack_raw(count: u16, body: &[u8]) -> Vec<u8> {
    let total = 6 + body.len() + 1;
    [(total as u32).to_le_bytes().to_vec(), count.to_le_bytes().to_vec(), body.to_vec(), vec![0xFF]].concat()
}

fn listpack(items: &[LpItem]) -> Vec<u8> {
    let body: Vec<u8> = items.iter().flat_map(lp_elem).collect();
    listpack_raw(items.len() as u16, &body)
}

/// A ziplist of short strings.
fn ziplist(items: &[&[u8]]) -> Vec<u8> {
    let (mut body, mut prev, mut last) = (Vec::new(), 0u8, 10usize);
    for it in items {
        last = 10 + body.len();
        let e = [vec![prev, it.len() as u8], it.to_vec()].concat();
        prev = e.len() as u8;
        body.extend_from_slice(&e);
    }
    let total = 10 + body.len() + 1;
    [
        (total as u32).to_le_bytes().to_vec(),
        (last as u32).to_le_bytes().to_vec(),
        (items.len() as u16).to_le_bytes().to_vec(),
        body,
        vec![0xFF],
    ]
    .concat()
}

/// A stream (type 19, metadata v2) of one node with one entry `f=v` at ID 1-0 (master ID 1-0), with the node's
/// master counts, the entry's flags and the stream length given, and one group whose PEL holds 1-0, owned by a
/// consumer when `owned`.
fn stream(live: u8, deleted: u8, flags: u8, length: usize, owned: bool, num_elements: Option<u16>) -> Vec<u8> {
    let items = [Int(live), Int(deleted), Int(1), Str(b"f"), Int(0), Int(flags), Int(0), Int(0), Str(b"v"), Int(4)];
    let body: Vec<u8> = items.iter().flat_map(lp_elem).collect();
    let lp = listpack_raw(num_elements.unwrap_or(items.len() as u16), &body);
    let id = [1u64.to_be_bytes(), 0u64.to_be_bytes()].concat();
    let mut v = vec![1];
    v.extend(s(&id));
    v.extend(s(&lp));
    v.extend(len(length)); // length
    v.extend([1, 0]); // last id 1-0
    v.extend([1, 0]); // first id
    v.extend([0, 0]); // max deleted id
    v.push(1); // entries added
    v.push(1); // groups
    v.extend(s("g"));
    v.extend([1, 0]); // group last id
    v.push(1); // entries read
    v.push(1); // PEL size
    v.extend(&id);
    v.extend(1_700_000_000_000i64.to_le_bytes());
    v.push(1); // delivery count
    if owned {
        v.push(1);
        v.extend(s("c"));
        v.extend(1_700_000_000_000i64.to_le_bytes());
        v.push(1);
        v.extend(&id);
    } else {
        v.push(0);
    }
    key(19, "st", &v)
}

fn function(code: &[u8]) -> Vec<u8> {
    [vec![0xF5], s(code)].concat()
}

const LIB: &[u8] = b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)";

/// What rdbkit must say about a case.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused, with this in the message.
    Refused(&'static str),
    /// Accepted, with exactly one warning of this kind.
    Warned(WarningKind),
    /// Accepted, no warning.
    Clean,
    /// Refused by rdbkit with this in the message; the server never finishes loading it (a function library's
    /// endless top level: the servers run it without a time limit while loading).
    Hangs(&'static str),
}
use Expect::{Clean, Hangs, Refused, Warned};

struct Case {
    name: &'static str,
    data: Vec<u8>,
    expect: Expect,
}

/// A case name made at run time.
fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

fn cases() -> Vec<Case> {
    let mut c = Vec::new();
    let mut add = |name, data, expect| c.push(Case { name, data, expect });
    let dup = |m| file(m, &db0(&[string_key("k", "v"), string_key("k", "w")]));
    // §1, accepted before, every server refuses.
    add("dup-key-v10", dup("REDIS0010"), Refused("duplicate key"));
    add("dup-key-v11", dup("REDIS0011"), Refused("duplicate key"));
    add("dup-key-v80", dup("VALKEY080"), Refused("duplicate key"));
    let int_key = [vec![0], vec![0xC0, 12], s("w")].concat();
    add("dup-key-int-v10", file("REDIS0010", &db0(&[string_key("12", "v"), int_key])), Refused("duplicate key"));
    let revisit = [db0(&[string_key("k", "v")]), vec![0xFE, 1], string_key("k", "w"), db0(&[string_key("k", "x")])];
    add("dup-key-db-revisited-v10", file("REDIS0010", &revisit.concat()), Refused("duplicate key"));
    let two_dbs = [db0(&[string_key("k", "v")]), vec![0xFE, 1], string_key("k", "w")].concat();
    add("same-key-two-dbs-v10", file("REDIS0010", &two_dbs), Clean);
    let first_expired = db0(&[[expire_ms(1000), string_key("k", "v")].concat(), string_key("k", "w")]);
    add("dup-key-first-expired-v10", file("REDIS0010", &first_expired), Clean);
    let second_expired = db0(&[string_key("k", "v"), [expire_ms(1000), string_key("k", "w")].concat()]);
    add("dup-key-second-expired-v10", file("REDIS0010", &second_expired), Warned(WarningKind::DuplicateKeySkipped));
    let second_expired = db0(&[string_key("k", "v"), [expire_ms(1000), string_key("k", "w")].concat()]);
    add("dup-key-second-expired-v80", file("VALKEY080", &second_expired), Warned(WarningKind::DuplicateKeySkipped));
    let first_empty = db0(&[key(2, "k", &[0]), string_key("k", "w")]);
    add("dup-key-first-empty-v11", file("REDIS0011", &first_empty), Clean);
    let pel = |m, owned| file(m, &db0(&[stream(1, 0, 2, 1, owned, None)]));
    add("pel-without-consumer-v10", pel("REDIS0010", false), Refused("has no consumer"));
    add("pel-without-consumer-v80", pel("VALKEY080", false), Refused("has no consumer"));
    add("pel-with-consumer-v10", pel("REDIS0010", true), Clean);
    let zipmap =
        |count: u8| file("REDIS0010", &db0(&[key(9, "h", &s([&[count][..], b"\x01f\x01\x00v\xff"].concat()))]));
    add("zipmap-count-255-v10", zipmap(255), Refused("zmlen is 255"));
    add("zipmap-count-254-v10", zipmap(254), Clean);
    add("function-ok-v10", file("REDIS0010", &function(LIB)), Clean);
    add("function-twice-v10", file("REDIS0010", &[function(LIB), function(LIB)].concat()), Refused("defined twice"));
    let body = b"redis.register_function('f', function() return 1 end)";
    add("function-no-shebang-v10", file("REDIS0010", &function(body)), Refused("missing library metadata"));
    let no_name = [&b"#!lua\n"[..], body].concat();
    add("function-no-name-v10", file("REDIS0010", &function(&no_name)), Refused("name was not given"));
    let bad_arg = [&b"#!lua nam?=x\n"[..], body].concat();
    add("function-bad-argument-v10", file("REDIS0010", &function(&bad_arg)), Refused("invalid metadata value"));
    let bad_name = [&b"#!lua name=my-lib\n"[..], body].concat();
    add("function-bad-name-v80", file("VALKEY080", &function(&bad_name)), Refused("library names can only"));
    let quoted = [&b"#!lua \"name=q\"\n"[..], body].concat();
    add("function-quoted-name-v10", file("REDIS0010", &function(&quoted)), Clean);
    let nothing = b"#!lua name=mylib\nlocal x = 1\nreturn x";
    add("function-registers-nothing-v10", file("REDIS0010", &function(nothing)), Refused("No functions registered"));
    // What a library's top level registers when it runs (read::lua).
    let lib = |name: &str, body: &str| function(format!("#!lua name={name}\n{body}").as_bytes());
    let reg = |f: &str| format!("redis.register_function('{f}', function() return 1 end)\n");
    for m in ["REDIS0010", "REDIS0012", "VALKEY080"] {
        let two = [lib("a", &reg("f1")), lib("b", &[reg("f2"), reg("f1")].concat())].concat();
        add(
            leak(format!("function-same-name-two-libraries-{m}")),
            file(m, &two),
            Refused("Function f1 already exists"),
        );
        let twice = lib("a", &[reg("f1"), reg("f1")].concat());
        add(leak(format!("function-same-name-twice-{m}")), file(m, &twice), Refused("already exists in the library"));
        let table = "redis.register_function{function_name='f', callback=function() return 1 end, \
                     flags={'no-writes', 'ALLOW-OOM'}, description='d'}";
        add(leak(format!("function-table-form-{m}")), file(m, &lib("a", table)), Clean);
        let flag = "redis.register_function{function_name='f', callback=function() return 1 end, flags={'bogus'}}";
        add(leak(format!("function-bad-flag-{m}")), file(m, &lib("a", flag)), Refused("unknown flag given"));
        let call = format!("redis.call('set', 'k', 'v')\n{}", reg("f"));
        add(
            leak(format!("function-call-at-load-{m}")),
            file(m, &lib("a", &call)),
            Refused("nonexistent global variable 'call'"),
        );
        let endless = format!("while true do end\n{}", reg("f"));
        add(
            leak(format!("function-endless-top-level-{m}")),
            file(m, &lib("a", &endless)),
            Hangs("the library's top level runs"),
        );
        // 256 GiB, in three concatenations of 64 copies (each one allocation): more than any server of this
        // machine has (the servers get 512 MiB of address space in this test, so that they fail at once).
        let cat = |v: &str| vec![v; 64].join("..");
        let huge = format!(
            "local a = ('x'):rep(2^20)\nlocal b = {}\nlocal c = {}\nlocal d = {}\n{}",
            cat("a"),
            cat("b"),
            cat("c"),
            reg("f")
        );
        add(leak(format!("function-huge-allocation-{m}")), file(m, &lib("a", &huge)), Refused("MiB of Lua memory"));
    }
    // Names across libraries compare case-insensitively; within one library they do not.
    let case = [lib("a", &reg("f1")), lib("b", &reg("F1"))].concat();
    add("function-name-case-two-libraries-v11", file("REDIS0011", &case), Refused("Function F1 already exists"));
    let case = lib("a", &[reg("f1"), reg("F1")].concat());
    add("function-name-case-one-library-v11", file("REDIS0011", &case), Clean);
    // A name built at run time registers (the servers run the code; nothing in it names register_function).
    let built = lib("a", "redis['register_' .. 'func' .. 'tion']('f', function() return 1 end)");
    add("function-built-register-name-v10", file("REDIS0010", &built), Clean);
    let bad_name = lib("a", &reg("f-1"));
    add("function-bad-function-name-v80", file("VALKEY080", &bad_name), Refused("Function names can only contain"));
    let global = lib("a", &format!("x = 1\n{}", reg("f")));
    add("function-sets-global-v12", file("REDIS0012", &global), Refused("Attempt to modify a readonly table"));
    // redis.log at load: Redis logs; Valkey 9.1 aborts (assertion 'rctx').
    let log = lib("a", &format!("redis.log(redis.LOG_NOTICE, 'loading')\n{}", reg("f")));
    add("function-log-at-load-v10", file("REDIS0010", &log), Clean);
    add("function-log-at-load-v80", file("VALKEY080", &log), Refused("Valkey 9.1 aborts"));
    // Valkey compiles the code up to its first NUL (strlen); Redis compiles all of it.
    let nul = lib("a", &format!("{}\0garbage(", reg("f")));
    add("function-nul-in-code-v80", file("VALKEY080", &nul), Clean);
    add("function-nul-in-code-v12", file("REDIS0012", &nul), Refused("ompiling function"));
    let server = lib("a", "server.register_function('f', function() return 1 end)");
    add("function-server-api-v80", file("VALKEY080", &server), Clean);
    add("function-server-api-v12", file("REDIS0012", &server), Refused("nonexistent global variable 'server'"));
    let engine = [&b"#!nosuch name=x\n"[..], body].concat();
    add("function-bad-engine-v11", file("REDIS0011", &function(&engine)), Refused("engine"));
    let mut nul = LIB.to_vec();
    nul[8] = 0;
    add("function-nul-in-shebang-v80", file("VALKEY080", &function(&nul)), Refused("invalid library metadata"));
    // Scores: Redis checks none in ziplists/listpacks; Valkey refuses NaN only.
    let lp_z = |m, score: &'static [u8]| file(m, &db0(&[key(17, "z", &s(listpack(&[Str(b"a"), Str(score)])))]));
    let zl_z = |m, score: &'static [u8]| file(m, &db0(&[key(12, "z", &s(ziplist(&[b"a", score])))]));
    add("zset-lp-nan-v10", lp_z("REDIS0010", b"nan"), Warned(WarningKind::ZsetScoreNotNumber));
    add("zset-lp-nan-v11", lp_z("REDIS0011", b"nan"), Warned(WarningKind::ZsetScoreNotNumber));
    add("zset-zl-nan-v10", zl_z("REDIS0010", b"nan"), Warned(WarningKind::ZsetScoreNotNumber));
    add("zset-lp-nan-v80", lp_z("VALKEY080", b"-NaN"), Refused("NaN score"));
    add("zset-zl-nan-v80", zl_z("VALKEY080", b"nan"), Refused("NaN score"));
    add("zset-lp-abc-v80", lp_z("VALKEY080", b"abc"), Warned(WarningKind::ZsetScoreNotNumber));
    add("zset-lp-space-nan-v80", lp_z("VALKEY080", b" nan"), Warned(WarningKind::ZsetScoreNotNumber));
    add("zset-lp-empty-v10", lp_z("REDIS0010", b""), Warned(WarningKind::ZsetScoreNotNumber));
    // Old text scores: the servers' sscanf("%lg") takes the numeric prefix.
    let text_z = |score: &str| file("REDIS0006", &db0(&[key(3, "z", &[vec![1], s("a"), s(score)].concat())]));
    add("zset-text-trailing-v6", text_z("1.5abc"), Warned(WarningKind::TextDoubleTrailing));
    add("zset-text-hex-v6", text_z("0x10"), Clean);
    add("zset-text-abc-v6", text_z("abc"), Refused("is not a number"));
    add("zset-text-0x-v6", text_z("0x"), Refused("is not a number"));
    add("zset-text-nan-v6", text_z("nan"), Refused("NaN score"));
    // LZF strings of uncompressed length 0 load as empty strings.
    add("lzf-0-0-value-v10", file("REDIS0010", &db0(&[key(0, "s", &[0xC3, 0, 0])])), Warned(WarningKind::EmptyLzf));
    add(
        "lzf-3-0-value-v80",
        file("VALKEY080", &db0(&[key(0, "s", b"\xC3\x03\x00abc")])),
        Warned(WarningKind::EmptyLzf),
    );
    let lzf_key = [vec![0, 0xC3, 0, 0], s("v")].concat();
    add("lzf-0-0-key-v10", file("REDIS0010", &db0(&[lzf_key])), Warned(WarningKind::EmptyLzf));
    // A plain length in the 11xxxxxx form: its low 6 bits.
    let set_c1 = key(2, "set", &[&[0xC1][..], &s("a")].concat());
    add("len-c1-set-count-v10", file("REDIS0010", &db0(&[set_c1])), Warned(WarningKind::EncodedPlainLength));
    let select_c0 = [vec![0xFE, 0xC0], string_key("k", "v")].concat();
    add("len-c0-selectdb-v11", file("REDIS0011", &select_c0), Warned(WarningKind::EncodedPlainLength));
    // Metadata right before EOF is ignored.
    let exp_eof = [db0(&[string_key("a", "b")]), expire_ms(1 << 40)].concat();
    add("expiry-before-eof-v10", file("REDIS0010", &exp_eof), Warned(WarningKind::MetadataBeforeEof));
    add("expiry-before-eof-v80", file("VALKEY080", &exp_eof), Warned(WarningKind::MetadataBeforeEof));
    let idle_eof = [db0(&[string_key("a", "b")]), vec![0xF8, 5, 0xF9, 3]].concat();
    add("idle-freq-before-eof-v11", file("REDIS0011", &idle_eof), Warned(WarningKind::MetadataBeforeEof));
    // A listpack backlen 0x83 (continuation bit) after a last data byte 0x00: decodes to 3 the servers' way.
    let body = [lp_elem(&Str(b"f")), vec![0x82, b'a', 0, 0x83]].concat();
    let hash = key(16, "h", &s(listpack_raw(2, &body)));
    add("listpack-backlen-continuation-v10", file("REDIS0010", &db0(&[hash])), Warned(WarningKind::ListpackBacklen));
    let body = [lp_elem(&Str(b"f")), vec![0x82, b'a', b'b', 0x83]].concat();
    let hash = key(16, "h", &s(listpack_raw(2, &body)));
    add("listpack-backlen-bad-v10", file("REDIS0010", &db0(&[hash])), Refused("backlen"));
    // Stream nodes: the listpack's own element count is not checked; Valkey checks the deleted flags and length.
    let node_count = file("REDIS0010", &db0(&[stream(1, 0, 2, 1, true, Some(11))]));
    add("stream-node-count-v10", node_count, Warned(WarningKind::StreamNodeCount));
    let node_count = file("VALKEY080", &db0(&[stream(1, 0, 2, 1, true, Some(11))]));
    add("stream-node-count-v80", node_count, Refused("num_elements is 11"));
    let unknown = file("VALKEY080", &db0(&[stream(1, 0, 2, 1, true, Some(65535))]));
    add("stream-node-count-unknown-v80", unknown, Clean);
    add("stream-flags-deleted-v10", file("REDIS0010", &db0(&[stream(1, 0, 3, 1, true, None)])), Clean);
    let flagged = file("VALKEY080", &db0(&[stream(1, 0, 3, 1, true, None)]));
    add("stream-flags-deleted-v80", flagged, Refused("flagged deleted"));
    let length = file("VALKEY080", &db0(&[stream(0, 1, 3, 1, true, None)]));
    add("stream-length-v80", length, Refused("live entries"));
    c
}

/// The verdict of one reader: the error message, or the warnings' kinds.
fn slice_verdict(data: &[u8]) -> Result<Vec<WarningKind>, String> {
    let mut r = SliceReader::new(data).map_err(|e| e.to_string())?;
    while r.next_record().map_err(|e| e.to_string())?.is_some() {}
    Ok(r.warnings().first().iter().map(|w| w.kind).collect())
}

fn stream_verdict(data: &[u8]) -> Result<Vec<WarningKind>, String> {
    let mut r = StreamReader::new(data).map_err(|e| e.to_string())?;
    while r.next_record().map_err(|e| e.to_string())?.is_some() {}
    Ok(r.warnings().first().iter().map(|w| w.kind).collect())
}

fn check(name: &str, expect: Expect, got: Result<Vec<WarningKind>, String>) {
    match (expect, got) {
        (Refused(what) | Hangs(what), Err(e)) => {
            assert!(e.contains(what), "{name}: expected an error with {what:?}, got {e}")
        }
        (Warned(kind), Ok(w)) => assert_eq!(w, vec![kind], "{name}"),
        (Clean, Ok(w)) => assert!(w.is_empty(), "{name}: unexpected warnings {w:?}"),
        (e, g) => panic!("{name}: expected {e:?}, got {g:?}"),
    }
}

#[test]
fn both_readers_give_the_servers_verdict() {
    for c in cases() {
        check(c.name, c.expect, slice_verdict(&c.data));
        check(c.name, c.expect, stream_verdict(&c.data));
    }
}

#[test]
fn warnings_name_offset_db_and_key() {
    let data = file("REDIS0010", &db0(&[key(0, "s", &[0xC3, 0, 0])]));
    let mut r = SliceReader::new(&data).unwrap();
    while r.next_record().unwrap().is_some() {}
    let w = &r.warnings().first()[0];
    // magic (9) + SELECTDB (2) + type (1) + key "s" (2): the LZF string starts at byte 14.
    assert_eq!((w.offset, w.db, w.key.as_deref()), (14, Some(0), Some(&b"s"[..])));
    assert!(w.to_string().starts_with("warning at byte 14: an LZF string"), "{w}");
}

#[test]
fn duplicate_check_can_be_turned_off_and_is_off_without_deep() {
    let data = file("REDIS0010", &db0(&[string_key("k", "v"), string_key("k", "w")]));
    for opts in [ReadOptions::default().with_duplicate_keys(false), ReadOptions::fast()] {
        let mut r = SliceReader::with_options(&data, opts).unwrap();
        while r.next_record().unwrap().is_some() {}
        let mut r = StreamReader::with_options(&data[..], opts).unwrap();
        while r.next_record().unwrap().is_some() {}
    }
}

/// Many keys (so the table grows), the duplicate far from its first copy; the error names both offsets. The
/// parallel drive (the walk on one thread, deep validation shared) reports it too, and gives every warning once.
#[test]
fn duplicate_among_many_keys_and_the_parallel_drive() {
    let mut recs: Vec<Vec<u8>> = (0..20_000).map(|i| string_key(&format!("key:{i}"), "v")).collect();
    // A walk-level warning (LZF 0/0) and a deep-only one (a listpack NaN score), each once.
    recs.push(key(0, "lzf", &[0xC3, 0, 0]));
    recs.push(key(17, "z", &s(listpack(&[Str(b"a"), Str(b"nan")]))));
    let clean = file("REDIS0010", &db0(&recs));
    recs.push(string_key("key:17", "again"));
    let dup = file("REDIS0010", &db0(&recs));

    let e = slice_verdict(&dup).unwrap_err();
    let first = clean.windows(7).position(|w| w == b"\x06key:17").unwrap() - 1;
    assert!(e.contains(&format!("at byte {first}")), "{e}");
    assert!(stream_verdict(&dup).unwrap_err().contains("duplicate key"));

    struct Count(usize);
    impl rdbkit::transform::RecordSink for Count {
        fn record(&mut self, rec: &rdbkit::read::Record<'_>) -> rdbkit::Result<()> {
            self.0 += matches!(rec.kind, RecordKind::Entry(_)) as usize;
            Ok(())
        }
        fn finish(&mut self) -> rdbkit::Result<()> {
            Ok(())
        }
    }
    let mut r = SliceReader::new(&dup).unwrap();
    let e = rdbkit::transform::drive_parallel(&mut r, &mut Count(0)).unwrap_err();
    assert!(e.to_string().contains("duplicate key"), "{e}");
    let mut r = SliceReader::new(&clean).unwrap();
    let mut n = Count(0);
    rdbkit::transform::drive_parallel(&mut r, &mut n).unwrap();
    assert_eq!(n.0, 20_002);
    let kinds: Vec<_> = r.warnings().first().iter().map(|w| w.kind).collect();
    assert_eq!(kinds, vec![WarningKind::EmptyLzf, WarningKind::ZsetScoreNotNumber]);
    // 20 002 keys in a table at most 3/4 full: 32 768 slots of 8 bytes.
    assert_eq!(r.duplicate_check_memory(), 32_768 * 8);
}

fn rdbkit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rdbkit")).args(args).output().expect("run rdbkit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_prints_warnings_and_strict_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let warned = dir.path().join("w.rdb");
    std::fs::write(&warned, file("REDIS0010", &db0(&[key(0, "s", &[0xC3, 0, 0])]))).unwrap();
    let w = warned.to_str().unwrap();
    let (code, out, err) = rdbkit(&["verify", w]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 warning"), "{out}");
    assert!(err.contains("warning at byte 14: an LZF string"), "{err}");
    let (code, _, err) = rdbkit(&["verify", "--strict", w]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--strict"), "{err}");

    let dup = dir.path().join("d.rdb");
    std::fs::write(&dup, file("REDIS0010", &db0(&[string_key("k", "v"), string_key("k", "w")]))).unwrap();
    let d = dup.to_str().unwrap();
    let (code, _, err) = rdbkit(&["verify", d]);
    assert_eq!(code, 1);
    assert!(err.contains("duplicate key"), "{err}");
    let (code, out, err) = rdbkit(&["verify", "--no-duplicate-check", d]);
    assert_eq!(code, 0, "{out}{err}");
}

/// What a server did with a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It answered PING: loaded.
    Loaded,
    /// It exited: refused, or crashed.
    Exited,
    /// Neither within the time given: still loading (killed).
    Hung,
}

/// Starts `server` on `port` with `data` as its dump and `--sanitize-dump-payload yes`, with 512 MiB of address
/// space (and no memory test when it crashes); what it did within `within` (and the end of its log).
fn server_loads(server: &Path, port: u16, data: &[u8], within: Duration) -> (Outcome, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.rdb"), data).unwrap();
    let log = dir.path().join("log");
    // prlimit execs the server: the child is the server itself.
    let mut child = Command::new("prlimit")
        .arg(format!("--as={}", 512u64 << 20))
        .arg("--")
        .arg(server)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--sanitize-dump-payload", "yes", "--dbfilename", "dump.rdb", "--databases", "16"])
        .args(["--crash-memcheck-enabled", "no"])
        .arg("--dir")
        .arg(dir.path())
        .arg("--logfile")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let start = Instant::now();
    let outcome = loop {
        if child.try_wait().unwrap().is_some() {
            break Outcome::Exited;
        }
        // Bounded: a port that accepts and never answers must not hang the test.
        let pong = Command::new("timeout")
            .args(["-k", "1", "2", "redis-cli", "-p", &port.to_string(), "ping"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG");
        if pong {
            break Outcome::Loaded;
        }
        if start.elapsed() > within {
            break Outcome::Hung;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    match outcome {
        Outcome::Loaded => {
            let _ = Command::new("timeout")
                .args(["-k", "1", "10", "redis-cli", "-p", &port.to_string(), "shutdown", "nosave"])
                .output();
        }
        Outcome::Hung => {
            let _ = child.kill();
        }
        Outcome::Exited => {}
    }
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(4).collect();
    (outcome, tail.join(" | "))
}

fn server_path(root: &Path, name: &str) -> Option<PathBuf> {
    let out = Command::new(root.join("scripts/servers.sh")).args(["path", name]).output().ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    p.is_file().then_some(p)
}

#[test]
fn the_servers_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = ["redis-7.0", "redis-8.2", "valkey-9.1"];
    let paths: Vec<Option<PathBuf>> = names.iter().map(|n| server_path(root, n)).collect();
    let cli = Command::new("redis-cli").arg("--version").output().is_ok();
    if paths.iter().any(Option::is_none) || !cli {
        if std::env::var("RDBKIT_REQUIRE_SERVERS").as_deref() == Ok("1") {
            panic!("RDBKIT_REQUIRE_SERVERS=1 but the real servers are not installed (run scripts/servers.sh install)");
        }
        println!("skipped: real servers not installed (run scripts/servers.sh install)");
        return;
    }
    let mut port = 7720u16;
    let mut failures = Vec::new();
    for c in cases() {
        let magic = std::str::from_utf8(&c.data[..9]).unwrap();
        let server = match magic {
            "VALKEY080" => 2,
            m if m["REDIS".len()..].parse::<u32>().unwrap() <= 10 => 0,
            _ => 1,
        };
        let path = paths[server].as_ref().unwrap();
        // A hanging server is given 3 s (it still answers nothing then); the others 30 s to load or exit.
        let within = Duration::from_secs(if matches!(c.expect, Hangs(_)) { 3 } else { 30 });
        let (outcome, log) = server_loads(path, port, &c.data, within);
        port = if port >= 7749 { 7720 } else { port + 1 };
        let want = match c.expect {
            Refused(_) => Outcome::Exited,
            Hangs(_) => Outcome::Hung,
            Warned(_) | Clean => Outcome::Loaded,
        };
        if outcome != want {
            failures.push(format!("{}: {} {outcome:?}, expected {want:?} ({log})", c.name, names[server]));
        }
    }
    assert!(failures.is_empty(), "the servers disagree with the expected verdicts:\n{}", failures.join("\n"));
}

/// An expiry before EOF is part of the checksummed bytes: both readers (and `info`) check the CRC over it.
#[test]
fn checksum_covers_metadata_before_eof() {
    let mut data = [&b"REDIS0010"[..], &db0(&[string_key("a", "b")]), &expire_ms(1 << 40), &[0xFF]].concat();
    let crc = rdbkit::format::crc::crc64(0, &data);
    data.extend_from_slice(&crc.to_le_bytes());
    let mut r = SliceReader::new(&data).unwrap();
    while r.next_record().unwrap().is_some() {}
    assert_eq!(r.checksum().map(|c| c.status()), Some("ok"));
    let mut r = StreamReader::new(&data[..]).unwrap();
    while r.next_record().unwrap().is_some() {}
    assert_eq!(r.checksum().map(|c| c.status()), Some("ok"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.rdb");
    std::fs::write(&path, &data).unwrap();
    let (code, out, _) = rdbkit(&["info", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with("checksum") && l.ends_with("ok")), "{out}");
    let n = data.len();
    data[n - 1] ^= 1;
    assert!(slice_verdict(&data).unwrap_err().contains("checksum mismatch"));
    assert!(stream_verdict(&data).unwrap_err().contains("checksum mismatch"));
}
