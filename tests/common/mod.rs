//! Helpers shared by the corpus, fixture and robustness tests: where the files are, walking a file with both
//! readers into comparable owned records, decoding every key, a small JSON reader (the expected outputs are JSON and
//! the tests must not depend on the optional `serde_json`), base64, ISO-8601 timestamps, and a chunking reader.
#![allow(dead_code)]

use rdbkit::read::{
    Checksum, Encoding, Header, OwnedValue, ReadOptions, Record, RecordKind, SliceReader, StreamReader, Trailing,
};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------------------------
// Real servers
// ---------------------------------------------------------------------------------------------------------------

/// Whether the real servers (`scripts/servers.sh available`) are installed. When they are not, prints the skip
/// notice for `test`, or panics under `RDBKIT_REQUIRE_SERVERS=1` (CI), where a skipped real-server test is a
/// failure.
pub fn real_servers_available(test: &str) -> bool {
    let servers = manifest_dir().join("scripts/servers.sh");
    let ok = std::process::Command::new(servers).arg("available").status().is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("RDBKIT_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "RDBKIT_REQUIRE_SERVERS=1 but the real servers are not installed (run scripts/servers.sh install)"
        );
        println!("skipped: {test}: real servers not installed (run scripts/servers.sh install)");
    }
    ok
}

/// Runs `cmd` (stdin closed, stdout and stderr to files) in a process group of its own, for at most `limit`.
/// On time-out the whole group gets SIGTERM (scripts' clean-up traps run), then SIGKILL five seconds later, and
/// the test fails naming `what` and showing the output so far: a stuck server or tool fails the run in minutes
/// instead of stalling CI. Servers a script starts with `setsid` are outside the group and stopped by the script.
pub fn run_bounded(cmd: &mut std::process::Command, limit: std::time::Duration, what: &str) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let out = tempfile::tempfile().expect("temporary file for stdout");
    let err = tempfile::tempfile().expect("temporary file for stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let read_back = |mut f: &std::fs::File| {
        use std::io::Seek;
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    let group = child.id() as i32;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            // SAFETY: kill(2) on a process group this function created; no memory is involved.
            unsafe { libc::kill(-group, libc::SIGTERM) };
            let grace = Instant::now() + Duration::from_secs(5);
            while child.try_wait().expect("try_wait").is_none() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: as above.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
            let tail = |b: Vec<u8>| {
                let t = String::from_utf8_lossy(&b).into_owned();
                let lines: Vec<&str> = t.lines().collect();
                lines[lines.len().saturating_sub(60)..].join("\n")
            };
            panic!(
                "{what}: still running after {} s, stopped.\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}",
                limit.as_secs(),
                tail(read_back(&out)),
                tail(read_back(&err))
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output { status, stdout: read_back(&out), stderr: read_back(&err) }
}

// ---------------------------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------------------------

/// The crate root.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/corpus` beside the crate, if it exists.
pub fn corpus_dir() -> Option<PathBuf> {
    let d = manifest_dir().join("..").join("shared").join("corpus");
    d.is_dir().then_some(d)
}

/// Returns the corpus directory, or prints the skip notice and returns from the calling test.
#[macro_export]
macro_rules! corpus_or_skip {
    () => {
        match common::corpus_dir() {
            Some(d) => d,
            None => {
                eprintln!("skipped: ../shared/corpus not found");
                return;
            }
        }
    };
}

/// `testdata/` of the crate.
pub fn testdata_dir() -> PathBuf {
    manifest_dir().join("testdata")
}

/// Every RDB input of the corpus: each `.rdb` in each folder, plus `redis/rdb-preamble.aof`. Sorted.
pub fn corpus_inputs(corpus: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus)
        .expect("read corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .expect("read corpus folder")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
            .collect();
        files.sort();
        out.extend(files);
    }
    let preamble = corpus.join("redis").join("rdb-preamble.aof");
    assert!(preamble.is_file(), "corpus lacks redis/rdb-preamble.aof");
    out.push(preamble);
    assert!(out.len() > 60, "corpus looks incomplete: {} inputs", out.len());
    out
}

/// The fixtures `testdata/*.rdb`, each with its `.json`. Sorted.
pub fn fixtures() -> Vec<(PathBuf, PathBuf)> {
    let mut out: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(testdata_dir())
        .expect("read testdata")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
        .map(|p| {
            let j = p.with_extension("json");
            (p, j)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 6, "expected at least 6 fixtures in testdata/, found {}", out.len());
    for (r, j) in &out {
        assert!(j.is_file(), "{} has no {}", r.display(), j.display());
    }
    out
}

/// File contents.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A short name for messages: `folder/file`.
pub fn short(path: &Path) -> String {
    let parent =
        path.parent().and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{parent}/{}", path.file_name().unwrap().to_string_lossy())
}

// ---------------------------------------------------------------------------------------------------------------
// Walking a file
// ---------------------------------------------------------------------------------------------------------------

/// A record reduced to what both readers must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub offset: u64,
    pub raw: Vec<u8>,
    /// `(db, key)` for key records.
    pub key: Option<(u64, Vec<u8>)>,
    pub is_eof: bool,
}

pub fn rec_of(r: &Record<'_>) -> Rec {
    let key = match &r.kind {
        RecordKind::Entry(e) => Some((e.db, e.key.decode().expect("key decodes").into_owned())),
        _ => None,
    };
    Rec { offset: r.offset, raw: r.raw.to_vec(), key, is_eof: matches!(r.kind, RecordKind::Eof { .. }) }
}

/// Everything a complete walk produced.
#[derive(Debug)]
pub struct Walk {
    pub header: Header,
    pub recs: Vec<Rec>,
    pub checksum: Option<Checksum>,
    pub trailing: Option<Trailing>,
}

/// Walks `data` with a [`SliceReader`]; the error (if any) comes with the records read before it.
pub fn walk_slice(data: &[u8], opts: ReadOptions) -> Result<Walk, (Vec<Rec>, rdbkit::Error)> {
    walk(SliceReader::with_options(data, opts))
}

/// Walks `src` with a [`StreamReader`].
pub fn walk_stream<R: Read>(src: R, opts: ReadOptions) -> Result<Walk, (Vec<Rec>, rdbkit::Error)> {
    walk(StreamReader::with_options(src, opts))
}

/// Walks either reader to its end.
fn walk<S: rdbkit::input::Source>(reader: rdbkit::Result<S>) -> Result<Walk, (Vec<Rec>, rdbkit::Error)> {
    let mut r = reader.map_err(|e| (Vec::new(), e))?;
    let mut recs = Vec::new();
    loop {
        match r.next_rec() {
            Ok(Some(rec)) => recs.push(rec_of(&rec)),
            Ok(None) => break,
            Err(e) => return Err((recs, e)),
        }
    }
    Ok(Walk { header: r.header(), recs, checksum: r.checksum(), trailing: r.trailing() })
}

/// Unwraps a walk, naming the file on failure.
pub fn ok_walk(what: &str, w: Result<Walk, (Vec<Rec>, rdbkit::Error)>) -> Walk {
    match w {
        Ok(w) => w,
        Err((recs, e)) => panic!("{what}: error after {} records: {e}", recs.len()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding every key
// ---------------------------------------------------------------------------------------------------------------

/// One key, fully decoded.
#[derive(Debug, Clone)]
pub struct Key {
    pub db: u64,
    pub key: Vec<u8>,
    pub expiry_ms: Option<i64>,
    pub encoding: Encoding,
    /// `LogicalType::name()` of the value.
    pub type_name: &'static str,
    pub value: OwnedValue,
    /// For streams: the master IDs of the nodes, in order.
    pub stream_nodes: Vec<String>,
}

/// Everything in a file, decoded.
#[derive(Debug)]
pub struct Decoded {
    pub header: Header,
    pub keys: Vec<Key>,
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub functions: Vec<Vec<u8>>,
    /// Module names of MODULE_AUX records.
    pub module_aux: Vec<String>,
    pub select_dbs: Vec<u64>,
    pub checksum: Option<Checksum>,
    pub trailing: Option<Trailing>,
}

impl Decoded {
    /// The key `key` of database `db`; panics when absent.
    pub fn get(&self, db: u64, key: &[u8]) -> &Key {
        let found: Vec<&Key> = self.keys.iter().filter(|k| k.db == db && k.key == key).collect();
        assert_eq!(found.len(), 1, "key {} in db {db}: found {} times", String::from_utf8_lossy(key), found.len());
        found[0]
    }

    /// Names of the keys of database `db`, sorted.
    pub fn names(&self, db: u64) -> Vec<String> {
        let mut v: Vec<String> =
            self.keys.iter().filter(|k| k.db == db).map(|k| String::from_utf8_lossy(&k.key).into_owned()).collect();
        v.sort();
        v
    }

    /// The AUX value of `name`.
    pub fn aux(&self, name: &str) -> Option<&[u8]> {
        self.aux.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| v.as_slice())
    }
}

/// Decodes every record of `data` (default options: deep validation, checksum verified) with a [`SliceReader`].
pub fn decode(what: &str, data: &[u8]) -> Decoded {
    decode_with(what, data, ReadOptions::default())
}

pub fn decode_with(what: &str, data: &[u8], opts: ReadOptions) -> Decoded {
    let mut r = SliceReader::with_options(data, opts).unwrap_or_else(|e| panic!("{what}: header: {e}"));
    let mut d = Decoded {
        header: r.header(),
        keys: Vec::new(),
        aux: Vec::new(),
        functions: Vec::new(),
        module_aux: Vec::new(),
        select_dbs: Vec::new(),
        checksum: None,
        trailing: None,
    };
    let mut saw_eof = false;
    while let Some(rec) = r.next_record().unwrap_or_else(|e| panic!("{what}: {e}")) {
        match rec.kind {
            RecordKind::Aux { key, value } => {
                d.aux.push((key.decode().unwrap().into_owned(), value.decode().unwrap().into_owned()))
            }
            RecordKind::Function { code } => d.functions.push(code.decode().unwrap().into_owned()),
            RecordKind::ModuleAux(m) => d.module_aux.push(m.name().0),
            RecordKind::SelectDb { db } => d.select_dbs.push(db),
            RecordKind::Entry(e) => {
                let key = e.key.decode().unwrap().into_owned();
                let kname = String::from_utf8_lossy(&key).into_owned();
                let value = e
                    .value
                    .to_owned_value()
                    .unwrap_or_else(|err| panic!("{what}: key {kname:?}: decoding value: {err}"));
                let stream_nodes = match e.value.stream() {
                    Ok(s) => s.nodes.iter().map(|(id, _)| id.to_string()).collect(),
                    Err(_) => Vec::new(),
                };
                d.keys.push(Key {
                    db: e.db,
                    key,
                    expiry_ms: e.expiry.map(|x| x.as_millis()),
                    encoding: e.value.encoding,
                    type_name: e.value.logical_type().name(),
                    value,
                    stream_nodes,
                });
            }
            RecordKind::Eof { .. } => saw_eof = true,
            _ => {}
        }
    }
    assert!(saw_eof, "{what}: reader returned None without an EOF record");
    d.checksum = r.checksum();
    d.trailing = r.trailing();
    d
}

/// Text of bytes for messages and lossy comparisons.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether two scores agree: equal (infinities included), or within `rel` relative difference.
pub fn score_eq(a: f64, b: f64, rel: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// Number of elements of a collection value (strings: 1; streams: length).
pub fn element_count(v: &OwnedValue) -> usize {
    match v {
        OwnedValue::String(_) => 1,
        OwnedValue::List(l) | OwnedValue::Set(l) => l.len(),
        OwnedValue::ZSet(z) => z.len(),
        OwnedValue::Hash(h) => h.len(),
        OwnedValue::Stream(s) => s.entries.len(),
        // Module values, and any type a later version adds.
        _ => 1,
    }
}

/// A value as a plain string list (list/set elements) for assertions.
pub fn strings_of(v: &OwnedValue) -> Vec<String> {
    match v {
        OwnedValue::List(l) | OwnedValue::Set(l) => l.iter().map(|b| lossy(b)).collect(),
        other => panic!("not a list or set: {other:?}"),
    }
}

/// A hash as field → value text.
pub fn hash_map(v: &OwnedValue) -> BTreeMap<String, String> {
    match v {
        OwnedValue::Hash(h) => h.iter().map(|(f, v, _)| (lossy(f), lossy(v))).collect(),
        other => panic!("not a hash: {other:?}"),
    }
}

/// A zset as member → score.
pub fn zset_map(v: &OwnedValue) -> BTreeMap<String, f64> {
    match v {
        OwnedValue::ZSet(z) => z.iter().map(|(m, s)| (lossy(m), *s)).collect(),
        other => panic!("not a zset: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------------------------

/// A parsed JSON value; numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn parse(text: &str) -> Json {
        let mut p = JsonParser { s: text.as_bytes(), i: 0 };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing characters after JSON value");
        v
    }

    pub fn parse_file(path: &Path) -> Json {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Json::parse(&text)
    }

    /// Member `k` of an object.
    pub fn get(&self, k: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(n, _)| n == k).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Member `k` of an object, which must exist.
    pub fn at(&self, k: &str) -> &Json {
        self.get(k).unwrap_or_else(|| panic!("JSON object has no {k:?}: {}", self.brief()))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("expected a JSON string, got {}", other.brief()),
        }
    }

    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            other => panic!("expected a JSON array, got {}", other.brief()),
        }
    }

    pub fn obj(&self) -> &[(String, Json)] {
        match self {
            Json::Obj(o) => o,
            other => panic!("expected a JSON object, got {}", other.brief()),
        }
    }

    pub fn i64(&self) -> i64 {
        match self {
            Json::Num(n) => n.parse().unwrap_or_else(|_| panic!("not an integer: {n}")),
            other => panic!("expected a JSON number, got {}", other.brief()),
        }
    }

    pub fn f64(&self) -> f64 {
        match self {
            Json::Num(n) => n.parse().unwrap_or_else(|_| panic!("not a number: {n}")),
            other => panic!("expected a JSON number, got {}", other.brief()),
        }
    }

    /// A byte string in the fixtures' escaping: a string, or `{"b64": "…"}`.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Json::Str(s) => s.as_bytes().to_vec(),
            Json::Obj(_) => b64_decode(self.at("b64").str()),
            other => panic!("expected a byte string, got {}", other.brief()),
        }
    }

    /// A short rendering for messages.
    pub fn brief(&self) -> String {
        let s = format!("{self:?}");
        if s.chars().count() > 200 { format!("{}…", s.chars().take(200).collect::<String>()) } else { s }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> u8 {
        *self.s.get(self.i).unwrap_or_else(|| panic!("JSON ends early at {}", self.i))
    }

    fn expect(&mut self, c: u8) {
        assert_eq!(self.peek(), c, "JSON: expected {:?} at {}", c as char, self.i);
        self.i += 1;
    }

    fn lit(&mut self, word: &str, v: Json) -> Json {
        assert!(self.s[self.i..].starts_with(word.as_bytes()), "JSON: bad literal at {}", self.i);
        self.i += word.len();
        v
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.peek() {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == b'}' {
                    self.i += 1;
                    return Json::Obj(members);
                }
                loop {
                    self.ws();
                    let k = self.string();
                    self.ws();
                    self.expect(b':');
                    let v = self.value();
                    members.push((k, v));
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Json::Obj(members);
                        }
                        c => panic!("JSON: unexpected {:?} in object at {}", c as char, self.i),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == b']' {
                    self.i += 1;
                    return Json::Arr(items);
                }
                loop {
                    items.push(self.value());
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Json::Arr(items);
                        }
                        c => panic!("JSON: unexpected {:?} in array at {}", c as char, self.i),
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            b't' => self.lit("true", Json::Bool(true)),
            b'f' => self.lit("false", Json::Bool(false)),
            b'n' => self.lit("null", Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                assert!(self.i > start, "JSON: unexpected character at {start}");
                Json::Num(std::str::from_utf8(&self.s[start..self.i]).unwrap().to_string())
            }
        }
    }

    fn hex4(&mut self) -> u32 {
        let h = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
        self.i += 4;
        u32::from_str_radix(h, 16).unwrap_or_else(|_| panic!("JSON: bad \\u escape {h}"))
    }

    fn string(&mut self) -> String {
        self.expect(b'"');
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek();
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek();
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4();
                            if (0xD800..0xDC00).contains(&cp) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4();
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => panic!("JSON: bad escape \\{}", other as char),
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).expect("JSON string is UTF-8")
    }
}

/// Standard base64 (with padding) to bytes.
pub fn b64_decode(s: &str) -> Vec<u8> {
    fn val(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 character {:?}", c as char),
        }
    }
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * k);
        }
        let n = chunk.len() * 6 / 8;
        for k in 0..n {
            out.push((acc >> (16 - 8 * k)) as u8);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Milliseconds since the epoch of an ISO-8601 timestamp such as `2022-12-25T18:11:12.573+08:00` or `…Z`.
pub fn iso8601_ms(s: &str) -> i64 {
    let b = s.as_bytes();
    let num = |a: usize, z: usize| -> i64 { s[a..z].parse().unwrap_or_else(|_| panic!("bad timestamp {s}")) };
    assert!(b.len() >= 19 && b[4] == b'-' && b[10] == b'T', "bad timestamp {s}");
    let (y, mo, d, h, mi, se) = (num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19));
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let padded = format!("{:0<3}", &frac[..frac.len().min(3)]);
        ms = padded.parse().unwrap();
    }
    let offset_min = match b.get(i) {
        None | Some(b'Z') => 0,
        Some(&sign) => {
            let oh = num(i + 1, i + 3);
            let om = num(i + 4, i + 6);
            let m = oh * 60 + om;
            if sign == b'-' { -m } else { m }
        }
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset_min * 60;
    secs * 1000 + ms
}

// ---------------------------------------------------------------------------------------------------------------
// Readers for robustness tests
// ---------------------------------------------------------------------------------------------------------------

/// xorshift64: a small deterministic generator.
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `1..=max`.
    pub fn small(&mut self, max: usize) -> usize {
        1 + (self.next_u64() % max as u64) as usize
    }
}

/// An `io::Read` that hands out its data in random small chunks (1..=max_chunk bytes per call).
#[derive(Debug)]
pub struct ChunkedReader<'a> {
    data: &'a [u8],
    pos: usize,
    rng: XorShift,
    max_chunk: usize,
}

impl<'a> ChunkedReader<'a> {
    pub fn new(data: &'a [u8], seed: u64, max_chunk: usize) -> Self {
        ChunkedReader { data, pos: 0, rng: XorShift(seed | 1), max_chunk }
    }
}

impl Read for ChunkedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rng.small(self.max_chunk).min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
