//! The data comes out exactly as it went in (issue 15, section 3):
//!
//! * every double a server can store as a sorted-set score (±0, ±inf, subnormals, 17-digit values, integers
//!   beyond 2^53, random bit patterns) goes through every zset encoder (listpack, ziplist, binary and text
//!   skiplists) of every target version, and through `rdbkit convert`, and reads back bit for bit; files written
//!   that way load into Redis 6.2 / 7.0 / 8.2 and Valkey 9.1 with the `DEBUG DIGEST-VALUE` of the same sorted set
//!   created there with `ZADD`;
//! * a Redis hash field whose stored expiry is 0 has no TTL, in the value view, the JSON dump and the RESP replay;
//! * `dump --format resp` writes `RESTORE` for what ordinary commands cannot recreate, and the replay into a real
//!   server (`redis-cli --pipe`) gives the digest of the file loaded directly;
//! * `--match` agrees with a real server's `KEYS` on generated keys and patterns.
//!
//! Server checks start their own servers on ports 7750-7799 and print `skipped: …` when the servers are not
//! installed, unless `RDBKIT_REQUIRE_SERVERS=1`.
#![cfg(feature = "cli")]

mod common;

use proptest::prelude::*;
use rdbkit::format::double::format_human_double;
use rdbkit::read::{Flavor, Header, OwnedValue, RecordKind, SliceReader};
use rdbkit::transform::glob::Glob;
use rdbkit::write::{EntryMeta, RdbWriter};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};

// ---------------------------------------------------------------------------------------------------------------
// Doubles and sorted sets

/// Doubles every encoder must keep exactly.
fn special_doubles() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::from_bits(1),                     // smallest subnormal
        -f64::from_bits(1),                    //
        f64::from_bits(0x000F_FFFF_FFFF_FFFF), // largest subnormal
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        0.1,
        1.0 / 3.0,
        -2.0 / 3.0,
        123456.7890123,
        99999999999999.99,
        1e-5,
        1e20,
        1e21,
        1e100,
        6.02214076e23,
        1.0,
        -17.0,
        4503599627370495.0,
        4503599627370496.0,
        -4503599627370495.0,
        9007199254740992.0,            // 2^53
        9007199254740994.0,            // 2^53 + 2
        4611686018427387904.0,         // 2^62
        4611686018427388928.0,         // 2^62 + 2^10
        -4611686018427387904.0,        //
        9223372036854775808.0,         // 2^63
        -9223372036854775808.0,        //
        18446744073709551616.0,        // 2^64
        123456789012345678901234567.0, //
    ];
    // 17-digit values around 1.
    let mut x = 1.0f64;
    for _ in 0..8 {
        x = f64::from_bits(x.to_bits() + 1);
        v.push(x);
    }
    v
}

/// Every target header: REDIS0001 … REDIS0012 and VALKEY080.
fn targets() -> Vec<Header> {
    let mut t: Vec<Header> = (1..=12).map(|n| Header::new(Flavor::Redis, n)).collect();
    t.push(Header::new(Flavor::Valkey, 80));
    t
}

/// A key and its sorted set.
type NamedZset = (Vec<u8>, Vec<(Vec<u8>, f64)>);

/// A sorted set as (member, score bits), sorted by member.
type Bits = Vec<(Vec<u8>, u64)>;

fn bits_of(z: &[(Vec<u8>, f64)]) -> Bits {
    let mut b: Bits = z.iter().map(|(m, s)| (m.clone(), s.to_bits())).collect();
    b.sort();
    b
}

/// Sorted sets that cover both encodings: `small` (listpack/ziplist where the target has one) and a 130-member
/// copy of the same scores (skiplist).
fn zsets_for(scores: &[f64]) -> Vec<NamedZset> {
    let mut out = Vec::new();
    for (chunk_no, chunk) in scores.chunks(5).enumerate() {
        let small: Vec<(Vec<u8>, f64)> =
            chunk.iter().enumerate().map(|(i, s)| (format!("m{i}").into_bytes(), *s)).collect();
        out.push((format!("small:{chunk_no}").into_bytes(), small));
    }
    let big: Vec<(Vec<u8>, f64)> =
        (0..130).map(|i| (format!("member-{i}").into_bytes(), scores[i % scores.len()])).collect();
    out.push((b"big".to_vec(), big));
    out
}

fn write_file(target: Header, keys: &[(Vec<u8>, OwnedValue)]) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new(), target).unwrap();
    w.select_db(0).unwrap();
    for (k, v) in keys {
        let dropped = w.entry(k, v, EntryMeta::default()).unwrap_or_else(|e| panic!("{}: {e}", target.magic()));
        assert!(dropped.is_empty());
    }
    w.finish().unwrap()
}

/// Every key's decoded value (deep validation on).
fn read_values(bytes: &[u8]) -> Vec<(Vec<u8>, OwnedValue, rdbkit::read::Encoding)> {
    let mut out = Vec::new();
    let mut r = SliceReader::new(bytes).unwrap();
    while let Some(rec) = r.next_record().unwrap() {
        if let RecordKind::Entry(e) = rec.kind {
            out.push((e.key.decode().unwrap().into_owned(), e.value.to_owned_value().unwrap(), e.value.encoding));
        }
    }
    out
}

fn zset_file(target: Header, zsets: &[NamedZset]) -> Vec<u8> {
    let keys: Vec<(Vec<u8>, OwnedValue)> =
        zsets.iter().map(|(k, z)| (k.clone(), OwnedValue::ZSet(z.clone()))).collect();
    write_file(target, &keys)
}

fn assert_same_zsets(what: &str, bytes: &[u8], zsets: &[NamedZset]) {
    let back = read_values(bytes);
    assert_eq!(back.len(), zsets.len(), "{what}");
    for ((k, v, enc), (wk, wz)) in back.iter().zip(zsets) {
        assert_eq!(k, wk, "{what}");
        let OwnedValue::ZSet(z) = v else { panic!("{what}: not a zset") };
        assert_eq!(bits_of(z), bits_of(wz), "{what}: {} ({enc:?})", String::from_utf8_lossy(k));
    }
}

#[test]
fn special_doubles_survive_every_encoder_and_version() {
    let zsets = zsets_for(&special_doubles());
    for target in targets() {
        let file = zset_file(target, &zsets);
        assert_same_zsets(&target.magic(), &file, &zsets);
    }
}

fn any_score() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => prop::sample::select(special_doubles()),
        3 => any::<u64>().prop_map(f64::from_bits).prop_filter("NaN is no score", |v| !v.is_nan()),
        1 => any::<i64>().prop_map(|i| i as f64),
        1 => -1e6f64..1e6,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random scores (any bit pattern but NaN), small and large sets, every version: read back bit for bit.
    #[test]
    fn any_score_reads_back_bit_for_bit(scores in proptest::collection::vec(any_score(), 1..12)) {
        let zsets = zsets_for(&scores);
        for target in targets() {
            let file = zset_file(target, &zsets);
            assert_same_zsets(&target.magic(), &file, &zsets);
        }
    }
}

fn rdbkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rdbkit"))
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("rdbkit-exact").tempdir().unwrap()
}

#[test]
fn convert_keeps_every_score_between_all_versions() {
    let zsets = zsets_for(&special_doubles());
    let dir = tmpdir();
    for from in [Header::new(Flavor::Redis, 12), Header::new(Flavor::Redis, 7), Header::new(Flavor::Redis, 10)] {
        let input = dir.path().join(format!("in-{}.rdb", from.version));
        std::fs::write(&input, zset_file(from, &zsets)).unwrap();
        for to in 1..=12u32 {
            let out = dir.path().join(format!("out-{}-{to}.rdb", from.version));
            let st = rdbkit()
                .args(["convert", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--rdb-version"])
                .arg(to.to_string())
                .output()
                .unwrap();
            assert!(st.status.success(), "{} -> {to}: {}", from.version, String::from_utf8_lossy(&st.stderr));
            assert_same_zsets(&format!("{} -> {to}", from.version), &std::fs::read(&out).unwrap(), &zsets);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Hash field expiry 0

/// A REDIS0012 file with one type-24 hash (minExpire 0): field `f` with relative TTL 1 (expireAt 0, "no TTL" to
/// the server), `g` with TTL 0 (none) and `h` with relative TTL 6 (expires at 5 ms).
fn hash_expire_zero_file() -> Vec<u8> {
    let mut f = b"REDIS0012\xfe\x00\x18\x01k".to_vec();
    f.extend_from_slice(&0i64.to_le_bytes());
    f.extend_from_slice(b"\x03\x01\x01f\x01v\x00\x01g\x01w\x06\x01h\x01x\xff");
    let crc = crc64(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

/// Redis's CRC-64/Jones (reflected, polynomial 0xad93d23594c935a9, init 0), bit by bit.
fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5 } else { crc >> 1 };
        }
    }
    crc
}

#[test]
fn field_expiry_zero_is_no_ttl() {
    let file = hash_expire_zero_file();
    let values = read_values(&file);
    let OwnedValue::Hash(fields) = &values[0].1 else { panic!("not a hash") };
    let ttl = |name: &[u8]| fields.iter().find(|f| f.0 == name).unwrap().2;
    assert_eq!(ttl(b"f"), None, "expireAt 0 is no TTL");
    assert_eq!(ttl(b"g"), None);
    assert_eq!(ttl(b"h"), Some(5));
    let dir = tmpdir();
    let path = dir.path().join("h.rdb");
    std::fs::write(&path, &file).unwrap();
    let json = rdbkit().args(["dump", path.to_str().unwrap(), "--format", "json"]).output().unwrap();
    assert!(json.status.success());
    let line = String::from_utf8(json.stdout).unwrap();
    assert!(line.contains(r#"["f","v"]"#) && line.contains(r#"["h","x",5]"#), "{line}");
    let resp = rdbkit().args(["dump", path.to_str().unwrap(), "--format", "resp"]).output().unwrap();
    let resp = String::from_utf8_lossy(&resp.stdout).into_owned();
    assert_eq!(resp.matches("HPEXPIREAT").count(), 1, "{resp}");
    assert!(!resp.contains("\r\n0\r\n$6\r\nFIELDS"), "{resp}");
    // Written back for Redis, the field still has no TTL; a Valkey-style expiry of 0 has no Redis form.
    let back = read_values(&write_file(Header::new(Flavor::Redis, 12), &[(b"k".to_vec(), values[0].1.clone())]));
    let OwnedValue::Hash(mut again) = back[0].1.clone() else { panic!("not a hash") };
    let mut fields = fields.clone();
    again.sort();
    fields.sort();
    assert_eq!(again, fields);
    let expired = OwnedValue::Hash(vec![(b"f".to_vec(), b"v".to_vec(), Some(0))]);
    let mut w = RdbWriter::new(Vec::new(), Header::new(Flavor::Redis, 12)).unwrap();
    assert!(w.entry(b"k", &expired, EntryMeta::default()).is_err());
}

// ---------------------------------------------------------------------------------------------------------------
// Real servers

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

use common::real_servers_available as servers_available;

static NEXT_PORT: AtomicU16 = AtomicU16::new(7750);

/// A server this test started; stopped (by the PID servers.sh recorded) when dropped.
struct Server {
    dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    fn start(name: &str, args: &[&str]) -> Server {
        let dir = tmpdir();
        loop {
            let port = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
            assert!(port < 7800, "no free port in 7750-7799");
            let out = Command::new(root().join("scripts/servers.sh"))
                .args(["start", name, &port.to_string(), dir.path().to_str().unwrap()])
                .args(args)
                .output()
                .unwrap();
            if out.status.success() {
                return Server { dir, port };
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("already in use") || err.contains("exited during startup"), "{name}: {err}");
        }
    }

    fn conn(&self) -> Conn {
        Conn::new(self.port)
    }

    /// Loads `file` as the whole data set (DEBUG RELOAD NOSAVE reads `dir/dump.rdb`).
    fn load(&self, file: &[u8]) -> Result<(), String> {
        std::fs::write(self.dir.path().join("dump.rdb"), file).unwrap();
        match self.conn().cmd(&[b"DEBUG", b"RELOAD", b"NOSAVE"]) {
            Reply::Error(e) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ =
            Command::new(root().join("scripts/servers.sh")).args(["stop", self.dir.path().to_str().unwrap()]).output();
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Status(s) | Reply::Error(s) => s.clone(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        }
    }
}

/// A minimal RESP2 client.
struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn new(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A server that stops answering fails the test instead of hanging it.
        s.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
        s.set_write_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
        Conn { r: BufReader::new(s) }
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&out).unwrap();
        self.read()
    }

    fn read(&mut self) -> Reply {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
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
                self.r.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                Reply::Bulk(Some(b))
            }
            b'*' => {
                let n: i64 = rest.parse().unwrap();
                Reply::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            c => panic!("unexpected reply byte {c}"),
        }
    }

    fn digest_value(&mut self, key: &[u8]) -> String {
        self.cmd(&[b"DEBUG", b"DIGEST-VALUE", key]).text()
    }
}

/// The four servers and the newest file version each loads.
fn servers() -> [(&'static str, Header); 4] {
    [
        ("redis-6.2", Header::new(Flavor::Redis, 9)),
        ("redis-7.0", Header::new(Flavor::Redis, 10)),
        ("redis-8.2", Header::new(Flavor::Redis, 12)),
        ("valkey-9.1", Header::new(Flavor::Valkey, 80)),
    ]
}

/// Versions a server of `newest` loads, among those the digest test writes.
fn loadable(newest: Header) -> Vec<Header> {
    let mut v: Vec<Header> = [1, 3, 7, 8, 9, 10, 11, 12]
        .into_iter()
        .filter(|&n| n <= newest.redis_level().min(if newest.flavor == Flavor::Valkey { 11 } else { 12 }))
        .map(|n| Header::new(Flavor::Redis, n))
        .collect();
    if newest.flavor == Flavor::Valkey {
        v.push(newest);
    }
    v
}

fn score_text(s: f64) -> Vec<u8> {
    let mut t = Vec::new();
    format_human_double(s, &mut t);
    t
}

#[test]
fn written_scores_load_with_the_digest_of_zadd() {
    if !servers_available("written_scores_load_with_the_digest_of_zadd") {
        return;
    }
    let mut scores = special_doubles();
    // A few random bit patterns too (fixed seed: the failures must be reproducible).
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while scores.len() < 60 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = f64::from_bits(x);
        if !v.is_nan() {
            scores.push(v);
        }
    }
    let zsets = zsets_for(&scores);
    std::thread::scope(|scope| {
        for (name, newest) in servers() {
            let zsets = &zsets;
            scope.spawn(move || {
                // Sorted sets as skiplists everywhere: a listpack made by ZADD would store -0 as 0 (Redis 7.0+).
                let srv = Server::start(name, &["--zset-max-ziplist-entries", "0"]);
                let mut c = srv.conn();
                let mut want = Vec::new();
                for (k, z) in zsets {
                    let texts: Vec<(Vec<u8>, Vec<u8>)> = z.iter().map(|(m, s)| (score_text(*s), m.clone())).collect();
                    let mut args: Vec<&[u8]> = vec![b"ZADD", k];
                    for (s, m) in &texts {
                        args.push(s);
                        args.push(m);
                    }
                    assert_eq!(c.cmd(&args), Reply::Int(z.len() as i64), "{name}: ZADD");
                    want.push(c.digest_value(k));
                }
                for target in loadable(newest) {
                    srv.load(&zset_file(target, zsets)).unwrap_or_else(|e| panic!("{name} {}: {e}", target.magic()));
                    let mut c = srv.conn();
                    for ((k, _), w) in zsets.iter().zip(&want) {
                        assert_eq!(
                            &c.digest_value(k),
                            w,
                            "{name}: {} written as {} loads with another digest",
                            String::from_utf8_lossy(k),
                            target.magic()
                        );
                    }
                }
                println!("{name}: {} sorted sets at {} versions match ZADD", zsets.len(), loadable(newest).len());
            });
        }
    });
}

/// Loads `file` into a fresh `name` server, then replays `rdbkit dump --format resp` of it into another one
/// with `redis-cli --pipe`: the replay gives no error and the same DEBUG DIGEST. Returns dump's stderr.
fn resp_replay_matches(name: &str, file: &[u8]) -> String {
    let direct = Server::start(name, &[]);
    direct.load(file).unwrap_or_else(|e| panic!("{name}: the server refuses the file: {e}"));
    let want = direct.conn().cmd(&[b"DEBUG", b"DIGEST"]).text();
    let path = direct.dir.path().join("dump.rdb");
    let dump = rdbkit().args(["dump", path.to_str().unwrap(), "--format", "resp"]).output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let replay = Server::start(name, &[]);
    let mut pipe = Command::new("timeout")
        .args(["-k", "5", "300", "redis-cli", "-p", &replay.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    pipe.stdin.take().unwrap().write_all(&dump.stdout).unwrap();
    let out = pipe.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("errors: 0,"), "{name}: replay errors: {text}");
    assert_eq!(replay.conn().cmd(&[b"DEBUG", b"DIGEST"]).text(), want, "{name}: replayed digest differs");
    String::from_utf8_lossy(&dump.stderr).into_owned()
}

#[test]
fn resp_replay_falls_back_to_restore_where_commands_are_not_exact() {
    if !servers_available("resp_replay_falls_back_to_restore_where_commands_are_not_exact") {
        return;
    }
    // -0 scores in a listpack and a skiplist; an ordinary zset beside them.
    let neg: Vec<(Vec<u8>, f64)> = vec![(b"a".to_vec(), -0.0), (b"b".to_vec(), 1.5)];
    let big: Vec<(Vec<u8>, f64)> =
        (0..200).map(|i| (format!("m{i}").into_bytes(), if i == 7 { -0.0 } else { i as f64 })).collect();
    let plain: Vec<(Vec<u8>, f64)> = vec![(b"x".to_vec(), 0.0), (b"y".to_vec(), 2.0)];
    let zkeys = |target| {
        write_file(
            target,
            &[
                (b"neg".to_vec(), OwnedValue::ZSet(neg.clone())),
                (b"big".to_vec(), OwnedValue::ZSet(big.clone())),
                (b"plain".to_vec(), OwnedValue::ZSet(plain.clone())),
            ],
        )
    };
    for (name, newest) in
        [("redis-7.0", Header::new(Flavor::Redis, 10)), ("valkey-9.1", Header::new(Flavor::Valkey, 80))]
    {
        let err = resp_replay_matches(name, &zkeys(newest));
        assert!(err.contains("2 key(s) written as RESTORE") && err.contains("-0"), "{name}: {err}");
    }
    // Redis 8.2: field expiries HPEXPIREAT refuses (2^46 .. 2^48 - 1), beside one it takes.
    let far = (1i64 << 47) + 12345;
    let hash = OwnedValue::Hash(vec![(b"f".to_vec(), b"v".to_vec(), Some(far)), (b"g".to_vec(), b"w".to_vec(), None)]);
    let near = OwnedValue::Hash(vec![(b"f".to_vec(), b"v".to_vec(), Some((1i64 << 46) - 1))]);
    let file = write_file(Header::new(Flavor::Redis, 12), &[(b"far".to_vec(), hash), (b"near".to_vec(), near)]);
    let err = resp_replay_matches("redis-8.2", &file);
    assert!(err.contains("1 key(s) written as RESTORE") && err.contains("HPEXPIREAT"), "{err}");
}

// ---------------------------------------------------------------------------------------------------------------
// --match against KEYS

/// A deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, alphabet: &[u8], max_len: u64) -> Vec<u8> {
        let n = self.below(max_len + 1);
        (0..n)
            .map(|_| {
                if self.below(12) == 0 {
                    self.next() as u8
                } else {
                    alphabet[self.below(alphabet.len() as u64) as usize]
                }
            })
            .collect()
    }
}

fn key_list(reply: Reply) -> Vec<Vec<u8>> {
    let Reply::Array(items) = reply else { panic!("KEYS: {reply:?}") };
    let mut keys: Vec<Vec<u8>> = items
        .into_iter()
        .map(|r| match r {
            Reply::Bulk(Some(b)) => b,
            other => panic!("KEYS item {other:?}"),
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn match_agrees_with_keys_of_real_servers() {
    if !servers_available("match_agrees_with_keys_of_real_servers") {
        return;
    }
    let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
    let mut keys: Vec<Vec<u8>> = vec![b"".to_vec(), b"*".to_vec(), b"[".to_vec(), b"\\".to_vec(), b"]".to_vec()];
    while keys.len() < 400 {
        keys.push(rng.bytes(b"ab-^]*?[\\", 8));
    }
    keys.push("ab".repeat(3000).into_bytes());
    keys.sort();
    keys.dedup();
    let mut patterns: Vec<Vec<u8>> = ["*", "**", "", "?", "[", "[^", "\\", "a\\", "[a-]", "[]", "[^]", "*a*b*"]
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    while patterns.len() < 400 {
        patterns.push(rng.bytes(b"ab*?[]^-\\", 7));
    }
    patterns.push(format!("{}b", "*a".repeat(900)).into_bytes());
    patterns.push(b"[\x01-\xff]".to_vec());
    std::thread::scope(|scope| {
        for (name, _) in servers() {
            let (keys, patterns) = (&keys, &patterns);
            scope.spawn(move || {
                let srv = Server::start(name, &[]);
                let mut c = srv.conn();
                for k in keys {
                    assert_eq!(c.cmd(&[b"SET", k, b"1"]), Reply::Status("OK".into()));
                }
                for p in patterns {
                    let server = key_list(c.cmd(&[b"KEYS", p]));
                    let g = Glob::new(p.clone());
                    let ours: Vec<Vec<u8>> = keys.iter().filter(|k| g.matches(k)).cloned().collect();
                    assert_eq!(ours, server, "{name}: KEYS {:?}", String::from_utf8_lossy(p));
                }
                // Past 1000 `*` runs, servers with the CVE-2024-31228 fix give up; the matcher (like 6.2.14) does not.
                let long_key = [vec![b'a'; 1200], b"b".to_vec()].concat();
                assert_eq!(c.cmd(&[b"SET", &long_key, b"1"]), Reply::Status("OK".into()));
                for runs in [1000, 1001] {
                    let p = format!("{}b", "*a".repeat(runs)).into_bytes();
                    assert!(Glob::new(p.clone()).matches(&long_key));
                    let listed = key_list(c.cmd(&[b"KEYS", &p])).contains(&long_key);
                    assert_eq!(listed, runs == 1000 || name == "redis-6.2", "{name}: {runs} runs");
                }
                println!("{name}: {} patterns over {} keys agree with KEYS", patterns.len(), keys.len());
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------------------------
// dump streams long values

/// An RDB string holding `len` (> 1) bytes: `head` then `b'a'` repeated, LZF-compressed as a literal and
/// back-references of distance 1 (about 88 output bytes per compressed byte).
fn lzf_run_string(head: u8, len: usize, out: &mut Vec<u8>) {
    let mut c = vec![1, head, b'a'];
    let mut left = len - 2;
    while left > 0 {
        let n = left.min(264);
        if n < 3 {
            c.push((n - 1) as u8);
            c.extend(std::iter::repeat_n(b'a', n));
        } else if n - 2 < 7 {
            c.extend_from_slice(&[((n - 2) << 5) as u8, 0]);
        } else {
            c.extend_from_slice(&[0xE0, (n - 2 - 7) as u8, 0]);
        }
        left -= n;
    }
    let len32 = |v: usize, out: &mut Vec<u8>| {
        out.push(0x80);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    };
    out.push(0xC3);
    len32(c.len(), out);
    len32(len, out);
    out.extend_from_slice(&c);
}

/// Peak resident memory (VmHWM, KiB) of `cmd` with stdout read and counted, and the bytes it wrote.
fn peak_rss_kib(mut cmd: Command) -> (u64, u64, std::process::ExitStatus) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    });
    let mut peak = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    let kib: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak = peak.max(kib);
                }
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            return (peak, reader.join().unwrap(), st);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn dump_streams_long_lzf_strings_in_bounded_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        println!("skipped: dump_streams_long_lzf_strings_in_bounded_memory: no /proc");
        return;
    }
    // Three strings of 96 MiB each and a list of two from about 5.6 MB of file: UTF-8 (JSON strings, with and
    // without escapes) and not (base64).
    const LEN: usize = 96 << 20;
    let mut file = b"REDIS0009\xfe\x00".to_vec();
    for (i, head) in [b'x', 0xff, b'"'].into_iter().enumerate() {
        file.extend_from_slice(&[0, 2, b'k', b'0' + i as u8]);
        lzf_run_string(head, LEN, &mut file);
    }
    // A linked list (type 1) of a short element and two long ones, each streamed on its own.
    file.extend_from_slice(&[1, 4, b'l', b'i', b's', b't', 3, 1, b's']);
    lzf_run_string(b'y', LEN, &mut file);
    lzf_run_string(b'\n', LEN, &mut file);
    file.push(0xFF);
    file.extend_from_slice(&[0; 8]); // checksum disabled
    let dir = tmpdir();
    let path = dir.path().join("long.rdb");
    std::fs::write(&path, &file).unwrap();
    // Bound: the mapped input plus 64 MiB for the program, its buffers and the allocator (today's code needed
    // several times LEN: the decoded value, then its formatted copy).
    let bound_kib = (file.len() as u64 >> 10) + (64 << 10);
    for format in ["json", "resp"] {
        let mut cmd = rdbkit();
        cmd.args(["dump", path.to_str().unwrap(), "--format", format]);
        let (peak, written, status) = peak_rss_kib(cmd);
        assert!(status.success(), "{format}: {status}");
        assert!(written > 5 * LEN as u64, "{format}: wrote only {written} bytes");
        assert!(peak > 0 && peak < bound_kib, "{format}: peak RSS {peak} KiB, bound {bound_kib} KiB");
        println!("dump --format {format}: {written} bytes out, peak RSS {peak} KiB (bound {bound_kib} KiB)");
    }
    // The output is what the one-buffer formatting gives: checked on a short head of each value.
    let json = rdbkit().args(["dump", path.to_str().unwrap(), "--format", "json"]).output().unwrap();
    let text = String::from_utf8_lossy(&json.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[3].contains(r#""value":["s","yaaa"#) && lines[3].contains(r#"aaa","\naaa"#), "{}", &lines[3][..120]);
    assert!(lines[3].ends_with(r#"aaa"]}"#));
    let prefix = r#"{"db":0,"key":"k0","type":"string","encoding":"string","expire_ms":null,"value":""#;
    assert!(lines[0].starts_with(&format!("{prefix}xaaa")), "{}", &lines[0][..100]);
    assert!(lines[1].contains(r#""value":{"b64":"/2FhYWFh"#), "{}", &lines[1][..100]);
    assert!(lines[2].contains(r#""value":"\"aaa"#) && lines[2].ends_with(r#"aaa"}"#), "{}", &lines[2][..100]);
    assert_eq!(lines[0].len(), prefix.len() + LEN + 2);
}

// ---------------------------------------------------------------------------------------------------------------
// Streams whose metadata the commands cannot set

fn sid(ms: u64, seq: u64) -> rdbkit::read::stream_value::StreamId {
    rdbkit::read::stream_value::StreamId { ms, seq }
}

fn stream_value(
    ids: &[(u64, u64)],
    last: (u64, u64),
    max_deleted: (u64, u64),
    entries_added: u64,
    groups: Vec<rdbkit::read::value::OwnedGroup>,
) -> OwnedValue {
    use rdbkit::read::stream_value::StreamEntry;
    let entries: Vec<StreamEntry> = ids
        .iter()
        .map(|&(ms, seq)| StreamEntry { id: sid(ms, seq), fields: vec![(b"f".to_vec(), b"v".to_vec())] })
        .collect();
    OwnedValue::Stream(rdbkit::read::value::OwnedStream {
        length: entries.len() as u64,
        first_id: Some(entries.first().map_or(sid(0, 0), |e| e.id)),
        entries,
        last_id: sid(last.0, last.1),
        max_deleted_id: Some(sid(max_deleted.0, max_deleted.1)),
        entries_added: Some(entries_added),
        groups,
    })
}

fn group(entries_read: u64, pending: &[(u64, u64)]) -> rdbkit::read::value::OwnedGroup {
    use rdbkit::read::stream_value::PendingEntry;
    use rdbkit::read::value::{OwnedConsumer, OwnedGroup};
    OwnedGroup {
        name: b"g".to_vec(),
        last_id: sid(3, 0),
        entries_read: Some(entries_read),
        pel: pending
            .iter()
            .map(|&(ms, seq)| PendingEntry { id: sid(ms, seq), delivery_time: 1000, delivery_count: 2 })
            .collect(),
        consumers: vec![OwnedConsumer {
            name: b"c".to_vec(),
            seen_time: 1000,
            active_time: Some(1000),
            pel: pending.iter().map(|&(ms, seq)| sid(ms, seq)).collect(),
        }],
    }
}

/// What a server says of a stream's metadata and groups (nothing that depends on the clock or the radix tree).
fn stream_view(c: &mut Conn, key: &[u8]) -> Vec<String> {
    let mut view = Vec::new();
    let pairs = |r: Reply, keep: &[&str], view: &mut Vec<String>| {
        let Reply::Array(items) = r else { panic!("XINFO: {r:?}") };
        for kv in items.chunks(2) {
            let name = kv[0].text();
            if keep.contains(&name.as_str()) {
                view.push(format!("{name}={:?}", kv[1]));
            }
        }
    };
    let stream = c.cmd(&[b"XINFO", b"STREAM", key]);
    pairs(
        stream,
        &["length", "last-generated-id", "max-deleted-entry-id", "entries-added", "recorded-first-entry-id"],
        &mut view,
    );
    let Reply::Array(groups) = c.cmd(&[b"XINFO", b"GROUPS", key]) else { panic!("XINFO GROUPS") };
    for g in groups {
        pairs(g, &["name", "consumers", "pending", "last-delivered-id", "entries-read"], &mut view);
    }
    // Pending entries: ID, consumer and delivery count (the idle time depends on the clock).
    if let Reply::Array(rows) = c.cmd(&[b"XPENDING", key, b"g", b"-", b"+", b"100"]) {
        for row in rows {
            let Reply::Array(f) = row else { panic!("XPENDING row") };
            view.push(format!("pending {} {} {:?}", f[0].text(), f[1].text(), f[3]));
        }
    }
    view
}

#[test]
fn resp_replay_keeps_stream_metadata_exactly() {
    if !servers_available("resp_replay_keeps_stream_metadata_exactly") {
        return;
    }
    let keys: Vec<(Vec<u8>, OwnedValue)> = vec![
        // entries_added below the length: XSETID ENTRIESADDED refuses it.
        (b"added".to_vec(), stream_value(&[(1, 1), (2, 1)], (5, 0), (0, 0), 1, vec![])),
        // max_deleted_id above the last ID: XSETID refuses it.
        (b"maxdel".to_vec(), stream_value(&[(1, 1)], (5, 0), (9, 0), 3, vec![])),
        // entries_read -5: XGROUP CREATE … ENTRIESREAD refuses it.
        (b"read".to_vec(), stream_value(&[(1, 1), (3, 0)], (3, 0), (0, 0), 2, vec![group((-5i64) as u64, &[(1, 1)])])),
        // A pending entry whose stream entry is gone, max_deleted_id 0-0 (trimmed away).
        (b"trimmed".to_vec(), stream_value(&[(1, 1), (3, 0)], (3, 0), (0, 0), 3, vec![group(3, &[(2, 0)])])),
        // The same with max_deleted_id 1-5: plain commands, then XSETID once more after XDEL of the placeholder
        // raised it to 2-0.
        (b"deleted".to_vec(), stream_value(&[(1, 1), (3, 0)], (3, 0), (1, 5), 3, vec![group(3, &[(2, 0)])])),
        // And one the commands recreate as they are.
        (b"plain".to_vec(), stream_value(&[(1, 1), (3, 0)], (3, 0), (0, 0), 2, vec![group(u64::MAX, &[(3, 0)])])),
    ];
    let file = write_file(Header::new(Flavor::Redis, 12), &keys);
    let direct = Server::start("redis-8.2", &[]);
    direct.load(&file).unwrap();
    let mut c = direct.conn();
    let want: Vec<Vec<String>> = keys.iter().map(|(k, _)| stream_view(&mut c, k)).collect();
    let err = resp_replay_matches("redis-8.2", &file);
    assert!(err.contains("4 key(s) written as RESTORE"), "{err}");
    for what in ["2 stream metadata XSETID refuses", "1 consumer-group entries_read", "1 deleted pending entries"] {
        assert!(err.contains(what), "{what}: {err}");
    }
    // The replay's metadata equals the file's, key by key.
    let path = direct.dir.path().join("dump.rdb");
    let dump = rdbkit().args(["dump", path.to_str().unwrap(), "--format", "resp"]).output().unwrap();
    let replay = Server::start("redis-8.2", &[]);
    let mut pipe = Command::new("timeout")
        .args(["-k", "5", "300", "redis-cli", "-p", &replay.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    pipe.stdin.take().unwrap().write_all(&dump.stdout).unwrap();
    assert!(pipe.wait().unwrap().success());
    let mut r = replay.conn();
    for ((k, _), w) in keys.iter().zip(&want) {
        assert_eq!(&stream_view(&mut r, k), w, "{}", String::from_utf8_lossy(k));
    }
    // JSON shows entries_read as the signed number it is.
    let json = rdbkit().args(["dump", path.to_str().unwrap(), "--format", "json"]).output().unwrap();
    assert!(String::from_utf8_lossy(&json.stdout).contains(r#""entries_read":-5"#));
}

#[test]
fn resp_replay_of_a_string_past_proto_max_bulk_len() {
    if !servers_available("resp_replay_of_a_string_past_proto_max_bulk_len") {
        return;
    }
    // 600 MiB (over the 512 MiB a server takes as one bulk string) from about 7 MB of file.
    const LEN: usize = 600 << 20;
    let mut file = b"REDIS0010\xfe\x00\x00\x04long".to_vec();
    lzf_run_string(b'z', LEN, &mut file);
    file.push(0xFF);
    file.extend_from_slice(&[0; 8]);
    // No command makes a string that long (SET and APPEND stop at proto-max-bulk-len): RESTORE, of 7 MB.
    let err = resp_replay_matches("redis-7.0", &file);
    assert!(err.contains("1 key(s) written as RESTORE") && err.contains("512 MiB"), "{err}");
}

#[test]
fn resp_replay_of_long_values_and_elements() {
    if !servers_available("resp_replay_of_long_values_and_elements") {
        return;
    }
    // Values and elements over the 1 MiB streaming threshold, beside short ones, with expiries.
    const LEN: usize = 3 << 20;
    let mut file = b"REDIS0009\xfe\x00".to_vec();
    file.extend_from_slice(b"\xfc");
    file.extend_from_slice(&4_102_444_800_000u64.to_le_bytes());
    file.extend_from_slice(&[0, 3, b's', b't', b'r']);
    lzf_run_string(0xfe, LEN, &mut file);
    file.extend_from_slice(&[1, 4, b'l', b'i', b's', b't', 4, 1, b'a']);
    lzf_run_string(b'b', LEN, &mut file);
    file.extend_from_slice(&[1, b'c']);
    lzf_run_string(b'd', LEN + 1, &mut file);
    file.extend_from_slice(&[2, 3, b's', b'e', b't', 2]);
    lzf_run_string(b'e', LEN, &mut file);
    lzf_run_string(b'f', LEN, &mut file);
    file.push(0xFF);
    file.extend_from_slice(&[0; 8]);
    for name in ["redis-6.2", "redis-7.0"] {
        let err = resp_replay_matches(name, &file);
        assert!(!err.contains("RESTORE"), "{name}: {err}");
    }
}

#[test]
fn long_hash_values_stream_with_their_ttls() {
    // A REDIS0012 hash with field TTLs stored field by field, one value 3 MiB long.
    const LEN: usize = 3 << 20;
    let long = vec![b'q'; LEN];
    let hash = OwnedValue::Hash(vec![
        (b"big".to_vec(), long.clone(), Some(4_102_444_800_000)),
        (b"small".to_vec(), b"v".to_vec(), None),
        (b"12".to_vec(), b"34".to_vec(), Some(4_102_444_800_123)),
    ]);
    let file = write_file(Header::new(Flavor::Redis, 12), &[(b"h".to_vec(), hash)]);
    assert!(file.len() < LEN / 10, "the long value is LZF-compressed");
    let dir = tmpdir();
    let path = dir.path().join("h.rdb");
    std::fs::write(&path, &file).unwrap();
    let json = rdbkit().args(["dump", path.to_str().unwrap(), "--format", "json"]).output().unwrap();
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut fields: Vec<String> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let f = f.as_array().unwrap();
            let value = f[1].as_str().unwrap();
            format!("{} {} {:?}", f[0].as_str().unwrap(), value.len(), f.get(2).and_then(|t| t.as_i64()))
        })
        .collect();
    fields.sort();
    assert_eq!(fields, ["12 2 Some(4102444800123)", format!("big {LEN} Some(4102444800000)").as_str(), "small 1 None"]);
    let resp = rdbkit().args(["dump", path.to_str().unwrap(), "--format", "resp"]).output().unwrap();
    let text = String::from_utf8_lossy(&resp.stdout);
    assert_eq!(text.matches("HPEXPIREAT").count(), 2);
    assert!(text.contains("$4\r\nHSET\r\n$1\r\nh\r\n$3\r\nbig\r\n$3145728\r\nqqq"), "the long value has its own HSET");
    if servers_available("long_hash_values_stream_with_their_ttls (server part)") {
        let err = resp_replay_matches("redis-8.2", &file);
        assert!(!err.contains("RESTORE"), "{err}");
    }
}
