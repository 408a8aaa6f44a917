//! Live servers as inputs (`redis://…`): snapshots taken from real Redis 6.2, 7.0, 8.2 (with and without FalkorDB)
//! and Valkey 9.1 servers, through disk-based and diskless replication and through the SCAN + DUMP fallback, must
//! pass `verify` and, written by `convert`, load into a fresh server with the source's `DEBUG DIGEST` (and the same
//! function libraries). Authentication (`requirepass`, an ACL user, a user without replication rights, a wrong
//! password), a server whose SYNC/PSYNC are renamed away, an unreachable port, a silent server, and fake servers
//! that drop the link mid-payload or split the end mark across writes.
//!
//! Servers listen on 127.0.0.1, ports 8100-8199 (each one tried by binding first); every wait is bounded.
//! Skipped, with a notice, when the real servers are not installed, unless `RDBKIT_REQUIRE_SERVERS=1`.
#![cfg(feature = "cli")]

mod common;

use rdbkit::live::resp::{Connection, Reply, Timeouts};
use rdbkit::live::{LiveOptions, RedisUrl, SnapshotKind, open_snapshot};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

static NEXT_PORT: AtomicU16 = AtomicU16::new(8100);

/// A free port of 8100-8199 (bound and released, so nothing else listens there now).
fn free_port() -> u16 {
    loop {
        let p = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        assert!(p < 8200, "ports 8100-8199 exhausted");
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A listener on a free port of the range (for fake servers).
fn listener() -> (TcpListener, u16) {
    loop {
        let p = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        assert!(p < 8200, "ports 8100-8199 exhausted");
        if let Ok(l) = TcpListener::bind(("127.0.0.1", p)) {
            return (l, p);
        }
    }
}

fn root() -> PathBuf {
    common::manifest_dir()
}

fn servers_sh() -> PathBuf {
    root().join("scripts/servers.sh")
}

fn module_args(falkordb: bool) -> Vec<String> {
    if !falkordb {
        return Vec::new();
    }
    let out = Command::new(servers_sh()).args(["module", "falkordb"]).output().expect("servers.sh module");
    vec!["--loadmodule".into(), String::from_utf8(out.stdout).unwrap().trim().to_string()]
}

/// A real server in a temporary directory, stopped when dropped.
struct Server {
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `name`, loading `rdb` (copied to its directory as `dump.rdb`) when given.
    fn start(name: &str, rdb: Option<&Path>, extra: &[String]) -> Server {
        let dir = tempfile::Builder::new().prefix("rdbkit-live-").tempdir().unwrap();
        if let Some(r) = rdb {
            std::fs::copy(r, dir.path().join("dump.rdb")).unwrap();
        }
        for _ in 0..5 {
            let port = free_port();
            let out = common::run_bounded(
                Command::new(servers_sh()).arg("start").arg(name).arg(port.to_string()).arg(dir.path()).args(extra),
                Duration::from_secs(60),
                &format!("servers.sh start {name} {port}"),
            );
            if out.status.success() {
                return Server { port, dir };
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("already in use"), "cannot start {name} on {port}: {err}");
        }
        panic!("no free port for {name}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn conn(&self) -> Connection {
        Connection::connect(
            "127.0.0.1",
            self.port,
            Timeouts { connect: Duration::from_secs(5), io: Duration::from_secs(30) },
        )
        .unwrap()
    }

    fn conn_auth(&self, user: Option<&str>, pw: &str) -> Connection {
        let mut c = self.conn();
        c.auth(user, &rdbkit::live::Secret::new(pw)).unwrap();
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = common::run_bounded(
            Command::new(servers_sh()).arg("stop").arg(self.dir.path()),
            Duration::from_secs(30),
            "servers.sh stop",
        );
    }
}

fn ok(c: &mut Connection, args: &[&[u8]]) -> Reply {
    let r = c.call(args).unwrap();
    if let Reply::Error(e) = &r {
        panic!("{:?}: {e}", args.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>());
    }
    r
}

fn digest(c: &mut Connection) -> Vec<u8> {
    match ok(c, &[b"DEBUG", b"DIGEST"]) {
        Reply::Status(d) | Reply::Bulk(d) => d,
        r => panic!("DEBUG DIGEST: {r:?}"),
    }
}

/// `FUNCTION LIST WITHCODE`, or nothing where the server has no functions.
fn functions(c: &mut Connection) -> Reply {
    match c.call(&[b"FUNCTION", b"LIST", b"WITHCODE"]).unwrap() {
        Reply::Error(_) => Reply::Nil,
        r => r,
    }
}

fn dbsize_total(c: &mut Connection) -> usize {
    let Reply::Bulk(info) = ok(c, &[b"INFO", b"keyspace"]) else { panic!("INFO") };
    rdbkit::live::scan::keyspace_databases(&String::from_utf8_lossy(&info)).len()
}

fn rdbkit(args: &[&str]) -> std::process::Output {
    common::run_bounded(
        Command::new(env!("CARGO_BIN_EXE_rdbkit")).args(args),
        Duration::from_secs(120),
        &format!("rdbkit {}", args.join(" ")),
    )
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds to a loaded fixture what makes a snapshot span many reads and several databases: a 3 MB string,
/// keys with a TTL in databases 1 and 7.
fn add_extra(c: &mut Connection) {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    ok(c, &[b"SET", b"live:big", &big]);
    ok(c, &[b"SELECT", b"1"]);
    for i in 0..300 {
        c.queue(&[b"SET", format!("k{i}").as_bytes(), format!("v{i}").as_bytes(), b"PX", b"3600000"]);
    }
    c.flush().unwrap();
    for _ in 0..300 {
        assert!(c.read_reply().unwrap().as_error().is_none());
    }
    ok(c, &[b"SELECT", b"7"]);
    ok(c, &[b"RPUSH", b"l", b"a", b"b", b"c"]);
    ok(c, &[b"SELECT", b"0"]);
}

/// Loads `file` into a fresh `name` server and checks its digest and functions against the source's.
fn check_loads(name: &str, file: &Path, falkordb: bool, want_digest: &[u8], want_functions: &Reply, what: &str) {
    let fresh = Server::start(name, Some(file), &module_args(falkordb));
    let mut c = fresh.conn();
    assert_eq!(
        String::from_utf8_lossy(&digest(&mut c)),
        String::from_utf8_lossy(want_digest),
        "{what}: digest after load"
    );
    assert_eq!(&functions(&mut c), want_functions, "{what}: function libraries after load");
}

/// The whole check for one server: replication disk-based and diskless, and the scan.
fn snapshot_case(name: &str, fixture: &str, falkordb: bool) {
    if !common::real_servers_available(&format!("live snapshot from {name}")) {
        return;
    }
    let mut extra = module_args(falkordb);
    extra.extend(["--repl-diskless-sync-delay".to_string(), "0".to_string()]);
    let src = Server::start(name, Some(&root().join("testdata").join(fixture)), &extra);
    let mut c = src.conn();
    add_extra(&mut c);
    let want = digest(&mut c);
    let want_functions = functions(&mut c);
    assert!(dbsize_total(&mut c) >= 3);
    let work = tempfile::tempdir().unwrap();
    for diskless in [true, false] {
        ok(&mut c, &[b"CONFIG", b"SET", b"repl-diskless-sync", if diskless { b"yes" } else { b"no" }]);
        let what = format!("{name} ({})", if diskless { "diskless" } else { "disk-based" });
        // The library: which framing the master chose, and exactly an RDB file.
        let url = RedisUrl::parse(&src.url()).unwrap();
        let (mut r, info) = open_snapshot(&url, &LiveOptions::default()).unwrap();
        match info.kind {
            // All four accept `REPLCONF rdb-only 1` (Redis 6.2.14 too).
            SnapshotKind::Replication { diskless: d, rdb_only } => {
                assert_eq!(d, diskless, "{what}: framing");
                assert!(rdb_only, "{what}: rdb-only");
            }
            k => panic!("{what}: {k:?}"),
        }
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).unwrap();
        let mut reader = rdbkit::read::SliceReader::new(&bytes).unwrap();
        while reader.next_record().unwrap().is_some() {}
        assert!(matches!(reader.checksum(), Some(rdbkit::read::Checksum::Ok(_))), "{what}: checksum");
        assert_eq!(reader.trailing().map(|t| t.len), Some(0), "{what}: nothing after the RDB (no mark, no stream)");
        // The CLI.
        let v = rdbkit(&["verify", &src.url()]);
        assert_ok(&v, &format!("{what}: verify"));
        let out = work.path().join(format!("{}.rdb", if diskless { "diskless" } else { "disk" }));
        let conv = rdbkit(&["convert", &src.url(), "-o", out.to_str().unwrap(), "-q"]);
        assert_ok(&conv, &format!("{what}: convert"));
        check_loads(name, &out, falkordb, &want, &want_functions, &what);
    }
    // The key-by-key scan: the same data (not point-in-time, and said so).
    let out = work.path().join("scan.rdb");
    let conv = rdbkit(&["convert", "--source-mode", "scan", &src.url(), "-o", out.to_str().unwrap(), "-q"]);
    assert_ok(&conv, &format!("{name}: convert --source-mode scan"));
    assert!(String::from_utf8_lossy(&conv.stderr).contains("NOT a point-in-time snapshot"), "{name}: scan note");
    let v = rdbkit(&["verify", out.to_str().unwrap()]);
    assert_ok(&v, &format!("{name}: verify of the scan's file"));
    check_loads(name, &out, falkordb, &want, &want_functions, &format!("{name} (scan)"));
    // Nothing lingers on the source: no replica left connected.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let Reply::Bulk(info) = ok(&mut c, &[b"INFO", b"replication"]) else { panic!() };
        let info = String::from_utf8_lossy(&info).into_owned();
        if rdbkit::live::scan::info_field(&info, "connected_slaves") == Some("0") {
            break;
        }
        assert!(Instant::now() < deadline, "{name}: a replica is still connected:\n{info}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn snapshot_from_redis_6_2() {
    snapshot_case("redis-6.2", "redis-6.2.rdb", false);
}

#[test]
fn snapshot_from_redis_7_0() {
    snapshot_case("redis-7.0", "redis-7.0.rdb", false);
}

#[test]
fn snapshot_from_redis_8_2() {
    snapshot_case("redis-8.2", "redis-8.2-nomodule.rdb", false);
}

#[test]
fn snapshot_from_redis_8_2_with_falkordb() {
    snapshot_case("redis-8.2", "redis-8.2.rdb", true);
}

#[test]
fn snapshot_from_valkey_9_1() {
    snapshot_case("valkey-9.1", "valkey-9.1.rdb", false);
}

#[test]
fn requirepass_acl_users_and_a_wrong_password() {
    if !common::real_servers_available("requirepass_acl_users_and_a_wrong_password") {
        return;
    }
    let src = Server::start("redis-7.0", Some(&root().join("testdata/redis-7.0.rdb")), &[]);
    let mut c = src.conn();
    let want = digest(&mut c);
    ok(&mut c, &[b"ACL", b"SETUSER", b"snap", b"on", b">snap-pw-0x5eed", b"~*", b"&*", b"+@all"]);
    // No replication rights: the scan, with the refusal on stderr.
    ok(
        &mut c,
        &[
            b"ACL",
            b"SETUSER",
            b"reader",
            b"on",
            b">reader-pw-0x5eed",
            b"~*",
            b"+@all",
            b"-sync",
            b"-psync",
            b"-replconf",
        ],
    );
    ok(&mut c, &[b"CONFIG", b"SET", b"requirepass", b"default-pw-0x5eed"]);
    drop(c);
    let mut c = src.conn_auth(None, "default-pw-0x5eed");
    let work = tempfile::tempdir().unwrap();
    let p = src.port;
    for (url, scan) in [
        (format!("redis://:default-pw-0x5eed@127.0.0.1:{p}"), false),
        (format!("redis://snap:snap-pw-0x5eed@127.0.0.1:{p}"), false),
        (format!("redis://reader:reader-pw-0x5eed@127.0.0.1:{p}"), true),
    ] {
        let out = work.path().join("out.rdb");
        let conv = rdbkit(&["convert", &url, "-o", out.to_str().unwrap(), "-q"]);
        let shown = rdbkit::live::redact(&url);
        assert_ok(&conv, &shown);
        let err = String::from_utf8_lossy(&conv.stderr);
        assert_eq!(err.contains("NOT a point-in-time"), scan, "{shown}: {err}");
        if scan {
            assert!(err.contains("NOPERM") || err.contains("permission"), "{shown}: the refusal is named: {err}");
        }
        assert!(!err.contains("pw-0x5eed"), "{shown}: password on stderr: {err}");
        check_loads("redis-7.0", &out, false, &want, &functions(&mut c), &shown);
    }
    // The password is in no report, manifest or file name.
    let dir = work.path().join("split");
    let url = format!("redis://snap:snap-pw-0x5eed@127.0.0.1:{p}");
    let r = rdbkit(&["split", &url, "--out-dir", dir.to_str().unwrap(), "--shards", "2", "--json"]);
    assert_ok(&r, "split --json");
    assert!(String::from_utf8_lossy(&r.stdout).contains(&format!("redis://snap:***@127.0.0.1:{p}")));
    for out in [&r.stdout, &r.stderr] {
        assert!(!String::from_utf8_lossy(out).contains("pw-0x5eed"));
    }
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        assert!(!e.file_name().to_string_lossy().contains("pw-0x5eed"));
        assert!(!String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).contains("pw-0x5eed"), "{:?}", e.path());
    }
    // A wrong password, an unknown user, no password: exit 2 naming the server, never the password, no output.
    for url in [
        format!("redis://:wrong-pw-0x5eed@127.0.0.1:{p}"),
        format!("redis://snap:wrong-pw-0x5eed@127.0.0.1:{p}"),
        format!("redis://nobody:wrong-pw-0x5eed@127.0.0.1:{p}"),
    ] {
        let out = work.path().join("refused.rdb");
        for args in [vec!["info", &url], vec!["convert", &url, "-o", out.to_str().unwrap()]] {
            let r = rdbkit(&args);
            let err = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(&format!("127.0.0.1:{p}")) && err.contains("authentication failed"), "{err}");
            assert!(!err.contains("pw-0x5eed"), "password on stderr: {err}");
            assert!(r.stdout.is_empty());
            assert!(!out.exists());
        }
    }
    // No password at all: the server's NOAUTH, exit 2.
    let r = rdbkit(&["verify", &src.url()]);
    assert_eq!(r.status.code(), Some(2), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains(&format!("127.0.0.1:{p}")));
}

#[test]
fn scan_fallback_where_sync_and_psync_are_renamed_away() {
    if !common::real_servers_available("scan_fallback_where_sync_and_psync_are_renamed_away") {
        return;
    }
    let extra: Vec<String> =
        ["--rename-command", "SYNC", "", "--rename-command", "PSYNC", ""].iter().map(|s| s.to_string()).collect();
    let src = Server::start("redis-8.2", Some(&root().join("testdata/redis-8.2-nomodule.rdb")), &extra);
    let mut c = src.conn();
    add_extra(&mut c);
    let want = digest(&mut c);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out.rdb");
    let conv = rdbkit(&["convert", &src.url(), "-o", out.to_str().unwrap(), "-q"]);
    assert_ok(&conv, "convert (auto)");
    let err = String::from_utf8_lossy(&conv.stderr);
    assert!(err.contains("replication refused") && err.contains("NOT a point-in-time snapshot"), "{err}");
    check_loads("redis-8.2", &out, false, &want, &functions(&mut c), "scan fallback");
    // The other commands read it too (info and dump read it twice: validation, then output).
    let info = rdbkit(&["info", "--json", &src.url()]);
    assert_ok(&info, "info");
    let dump = rdbkit(&["dump", &src.url(), "--db", "1"]);
    assert_ok(&dump, "dump");
    let keys = String::from_utf8_lossy(&dump.stdout).lines().filter(|l| l.starts_with("{\"db\":1,")).count();
    ok(&mut c, &[b"SELECT", b"1"]);
    assert_eq!(ok(&mut c, &[b"DBSIZE"]), Reply::Int(keys as i64));
    assert!(keys > 300);
    // Replication only: refused, exit 2, saying why.
    let r = rdbkit(&["verify", "--source-mode", "sync", &src.url()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("refuses replication") && err.contains(&format!("127.0.0.1:{}", src.port)), "{err}");
}

#[test]
fn unreachable_and_silent_servers_fail_fast() {
    let port = free_port();
    let t0 = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out.rdb");
    let r = rdbkit(&["convert", &format!("redis://:pw-0x5eed@127.0.0.1:{port}"), "-o", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("cannot connect"), "{err}");
    assert!(!err.contains("pw-0x5eed"));
    assert!(!out.exists());
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?}", t0.elapsed());
    // Accepts the connection, never answers: the read time-out.
    let (l, port) = listener();
    let t0 = Instant::now();
    let r = rdbkit(&["info", "--read-timeout", "0.5", &format!("redis://127.0.0.1:{port}")]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("time-out"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?}", t0.elapsed());
    drop(l);
    // Bad addresses are usage errors.
    for bad in ["redis://127.0.0.1:0", "redis://127.0.0.1:1/x"] {
        let r = rdbkit(&["info", bad]);
        assert_eq!(r.status.code(), Some(2), "{bad}");
    }
    let r = rdbkit(&["info", "redis://127.0.0.1:1/3"]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("--db 3"));
}

/// A fake master on loopback: answers the handshake, then sends `header` and the pieces of `body`, pausing between
/// them, then closes. Returns its port.
fn fake_master(header: Vec<u8>, pieces: Vec<Vec<u8>>) -> u16 {
    let (l, port) = listener();
    std::thread::spawn(move || {
        // Bounded: a client that never comes leaves the thread after 60 s.
        l.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return,
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        // Commands up to PSYNC ? -1 (REPLCONF capa eof, REPLCONF rdb-only 1, INFO server): +OK to each.
        for _ in 0..10 {
            let mut args = Vec::new();
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0) == 0 {
                return;
            }
            let n: usize = line[1..].trim().parse().unwrap();
            for _ in 0..n {
                line.clear();
                std::io::BufRead::read_line(&mut r, &mut line).unwrap();
                let len: usize = line[1..].trim().parse().unwrap();
                let mut a = vec![0u8; len + 2];
                r.read_exact(&mut a).unwrap();
                args.push(String::from_utf8_lossy(&a[..len]).to_ascii_uppercase());
            }
            if args[0] == "PSYNC" {
                s.write_all(b"+FULLRESYNC 0123456789012345678901234567890123456789 0\r\n\n\n").unwrap();
                std::thread::sleep(Duration::from_millis(20));
                s.write_all(b"\n").unwrap();
                break;
            } else {
                s.write_all(b"+OK\r\n").unwrap();
            }
        }
        s.write_all(&header).unwrap();
        for p in pieces {
            s.write_all(&p).unwrap();
            s.flush().unwrap();
            std::thread::sleep(Duration::from_millis(15));
        }
    });
    port
}

const MARK: &[u8; 40] = b"0123456789abcdefghijklmnopqrstuvwxyzABCD";

#[test]
fn a_master_that_drops_the_link_mid_payload_leaves_no_output() {
    let rdb = common::read(&root().join("testdata/redis-7.0.rdb"));
    let half = rdb[..rdb.len() / 2].to_vec();
    let work = tempfile::tempdir().unwrap();
    for eof_framing in [false, true] {
        let header = if eof_framing {
            [b"$EOF:".as_slice(), MARK, b"\r\n"].concat()
        } else {
            format!("${}\r\n", rdb.len()).into_bytes()
        };
        for cmd in ["convert", "dump", "verify"] {
            let port = fake_master(header.clone(), vec![half[..1000].to_vec(), half[1000..].to_vec()]);
            let url = format!("redis://127.0.0.1:{port}");
            let out = work.path().join("out.rdb");
            let args: Vec<&str> = match cmd {
                "convert" => vec!["convert", &url, "-o", out.to_str().unwrap()],
                c => vec![c, &url],
            };
            let r = rdbkit(&args);
            let err = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "{cmd} (eof framing {eof_framing}): {err}");
            assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("mid-snapshot"), "{err}");
            assert!(r.stdout.is_empty(), "{cmd}: output written: {}", String::from_utf8_lossy(&r.stdout));
            assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0, "{cmd}: files left");
        }
    }
}

#[test]
fn the_end_mark_split_across_writes_is_found_and_is_not_data() {
    let fixture = root().join("testdata/redis-7.0.rdb");
    let rdb = common::read(&fixture);
    let want = rdbkit(&["dump", fixture.to_str().unwrap()]);
    assert_ok(&want, "dump of the fixture");
    let mut all = rdb.clone();
    all.extend_from_slice(MARK);
    let n = rdb.len();
    let header = [b"$EOF:".as_slice(), MARK, b"\r\n"].concat();
    // Cuts inside the mark (one byte in, the middle, one byte before its end), and one just before it.
    for cuts in [vec![n + 1], vec![n + 20], vec![n + 39], vec![n - 1, n + 5, n + 33], vec![n]] {
        let mut pieces = Vec::new();
        let mut at = 0;
        for c in cuts.iter().copied().chain([all.len()]) {
            pieces.push(all[at..c].to_vec());
            at = c;
        }
        let port = fake_master(header.clone(), pieces);
        let got = rdbkit(&["dump", &format!("redis://127.0.0.1:{port}")]);
        assert_ok(&got, &format!("dump, cuts {cuts:?}"));
        assert_eq!(got.stdout, want.stdout, "cuts {cuts:?}");
        // The `$len` framing, cut the same way, without the mark.
        let port = fake_master(format!("${n}\r\n").into_bytes(), vec![rdb[..n / 3].to_vec(), rdb[n / 3..].to_vec()]);
        let got = rdbkit(&["verify", &format!("redis://127.0.0.1:{port}")]);
        assert_ok(&got, "verify, $len framing");
    }
}

/// Makes a CA, a server certificate for 127.0.0.1/localhost and a client certificate (openssl), in `dir`.
fn make_certificates(dir: &Path) {
    let sh = r#"set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=rdbkit test CA"
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=rdbkit client"
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext
"#;
    let out = common::run_bounded(
        Command::new("bash").arg("-c").arg(sh).current_dir(dir),
        Duration::from_secs(60),
        "openssl certificates",
    );
    assert_ok(&out, "openssl certificates");
}

#[test]
fn tls_with_a_self_signed_ca_and_client_certificates() {
    // Of the test servers, only Debian's Redis 7.0 is built with TLS.
    if !common::real_servers_available("tls_with_a_self_signed_ca_and_client_certificates") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let f = |n: &str| certs.path().join(n).to_str().unwrap().to_string();
    let tls_port = free_port();
    let extra: Vec<String> = [
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &f("server.pem"),
        "--tls-key-file",
        &f("server.key"),
        "--tls-ca-cert-file",
        &f("ca.pem"),
        "--tls-auth-clients",
        "yes",
        "--tls-replication",
        "no",
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let src = Server::start("redis-7.0", Some(&root().join("testdata/redis-7.0.rdb")), &extra);
    let mut c = src.conn();
    ok(&mut c, &[b"CONFIG", b"SET", b"requirepass", b"tls-pw-0x5eed"]);
    drop(c);
    let mut c = src.conn_auth(None, "tls-pw-0x5eed");
    let want = digest(&mut c);
    let url = format!("rediss://:tls-pw-0x5eed@127.0.0.1:{tls_port}");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out.rdb");
    let (ca, cert, key) = (f("ca.pem"), f("client.pem"), f("client.key"));
    let conv = rdbkit(&[
        "convert",
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        &url,
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_ok(&conv, "convert over TLS");
    check_loads("redis-7.0", &out, false, &want, &functions(&mut c), "TLS");
    // The scan over TLS too.
    let conv =
        rdbkit(&["verify", "--source-mode", "scan", "--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key, &url]);
    assert_ok(&conv, "verify --source-mode scan over TLS");
    // --tls-insecure accepts the certificate whatever its issuer and name.
    let localhost = format!("rediss://:tls-pw-0x5eed@localhost:{tls_port}");
    let r = rdbkit(&["info", "--tls-insecure", "--tls-cert", &cert, "--tls-key", &key, &localhost]);
    assert_ok(&r, "info --tls-insecure");
    // Refusals: an unknown issuer (public roots only), no client certificate, TLS to the plain port.
    for (args, expect) in [
        (vec!["verify", "--tls-cert", &cert, "--tls-key", &key, &url], "UnknownIssuer"),
        (vec!["verify", "--tls-ca", &ca, &url], "CertificateRequired"),
    ] {
        let r = rdbkit(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expect) && err.contains(&format!("127.0.0.1:{tls_port}")), "{args:?}: {err}");
        assert!(!err.contains("tls-pw-0x5eed"), "password on stderr: {err}");
    }
    let t0 = Instant::now();
    let plain = format!("rediss://127.0.0.1:{}", src.port);
    let r = rdbkit(&["verify", "--tls-ca", &ca, "--read-timeout", "1", &plain]);
    assert_eq!(r.status.code(), Some(2), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(t0.elapsed() < Duration::from_secs(10));
}

/// Every record of `file` as `rdbkit dump` prints it (key order aside), for comparing what two files hold.
fn dump_lines(file: &Path) -> Vec<String> {
    let out = rdbkit(&["dump", file.to_str().unwrap()]);
    assert_ok(&out, &format!("dump {}", file.display()));
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn every_writing_command_takes_a_live_source() {
    if !common::real_servers_available("every_writing_command_takes_a_live_source") {
        return;
    }
    let extra = vec!["--repl-diskless-sync-delay".to_string(), "0".to_string()];
    let src = Server::start("redis-7.0", Some(&root().join("testdata/redis-7.0.rdb")), &extra);
    let url = src.url();
    let work = tempfile::tempdir().unwrap();
    let w = |n: &str| work.path().join(n);
    let snap = w("snap.rdb");
    assert_ok(&rdbkit(&["convert", &url, "-o", snap.to_str().unwrap(), "-q"]), "convert");
    let want = dump_lines(&snap);
    assert!(want.len() > 50);
    // Output to stdout: two passes (the stream is spooled by the checking pass).
    let to_stdout = rdbkit(&["convert", &url, "-o", "-", "-q"]);
    assert_ok(&to_stdout, "convert -o -");
    std::fs::write(w("stdout.rdb"), &to_stdout.stdout).unwrap();
    assert_eq!(dump_lines(&w("stdout.rdb")), want, "convert -o -");
    // export, page blob and gzip.
    for blob in ["page", "gzip"] {
        let dir = w(&format!("export-{blob}"));
        let r = rdbkit(&["export", &url, "--prefix", "live", "--out-dir", dir.to_str().unwrap(), "--blob", blob, "-q"]);
        assert_ok(&r, &format!("export --blob {blob}"));
        let f = dir.join(if blob == "page" { "live.rdb" } else { "live.rdb.gz" });
        assert_eq!(dump_lines(&f), want, "export --blob {blob}");
        if blob == "page" {
            assert_eq!(std::fs::metadata(&f).unwrap().len() % 512, 0);
        }
    }
    // import, with a dry run first.
    let dry = rdbkit(&["import", &url, "-o", w("import.rdb").to_str().unwrap(), "--target", "redis-7.0", "--dry-run"]);
    assert_ok(&dry, "import --dry-run");
    assert!(!w("import.rdb").exists());
    assert_ok(
        &rdbkit(&["import", &url, "-o", w("import.rdb").to_str().unwrap(), "--target", "redis-7.0", "-q"]),
        "import",
    );
    assert_eq!(dump_lines(&w("import.rdb")), want, "import");
    // split: database 0 over 3 shards, named by the server's address by default.
    let dir = w("split");
    assert_ok(&rdbkit(&["split", &url, "--out-dir", dir.to_str().unwrap(), "--shards", "3", "-q"]), "split");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.iter().any(|n| n == &format!("127_0_0_1-{}.manifest.json", src.port)), "{names:?}");
    let mut keys = Vec::new();
    for n in names.iter().filter(|n| n.ends_with(".rdb")) {
        keys.extend(dump_lines(&dir.join(n)).into_iter().filter(|l| l.starts_with("{\"db\":0,")));
    }
    keys.sort();
    let db0: Vec<String> = want.iter().filter(|l| l.starts_with("{\"db\":0,")).cloned().collect();
    assert_eq!(keys, db0, "split: every db-0 key in one shard");
}

#[test]
fn a_cluster_source_is_read_from_every_master() {
    if !common::real_servers_available("a_cluster_source_is_read_from_every_master") {
        return;
    }
    let nodes: Vec<Server> = (0..3)
        .map(|_| {
            let extra: Vec<String> =
                ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--repl-diskless-sync-delay", "0"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            Server::start("redis-7.0", None, &extra)
        })
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let create = common::run_bounded(
        Command::new("timeout").args(["-k", "5", "60", "redis-cli", "--cluster", "create"]).args(&addrs).args([
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]),
        Duration::from_secs(90),
        "redis-cli --cluster create",
    );
    assert_ok(&create, "redis-cli --cluster create");
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in &nodes {
        let mut c = n.conn();
        loop {
            let Reply::Bulk(info) = ok(&mut c, &[b"CLUSTER", b"INFO"]) else { panic!() };
            if String::from_utf8_lossy(&info).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "cluster not ok in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // 300 keys, each written to its slot's master.
    let Reply::Array(ranges) = ok(&mut nodes[0].conn(), &[b"CLUSTER", b"SLOTS"]) else { panic!() };
    let owner = |slot: u16| -> u16 {
        for r in &ranges {
            let Reply::Array(r) = r else { panic!() };
            let (Reply::Int(a), Reply::Int(b), Reply::Array(m)) = (&r[0], &r[1], &r[2]) else { panic!() };
            if (*a..=*b).contains(&i64::from(slot)) {
                let Reply::Int(p) = m[1] else { panic!() };
                return p as u16;
            }
        }
        panic!("slot {slot} unowned")
    };
    let mut conns: Vec<(u16, Connection)> = nodes.iter().map(|n| (n.port, n.conn())).collect();
    for i in 0..300 {
        let key = format!("key:{i}");
        let port = owner(rdbkit::format::crc::key_hash_slot(key.as_bytes()));
        let c = &mut conns.iter_mut().find(|(p, _)| *p == port).unwrap().1;
        ok(c, &[b"SET", key.as_bytes(), format!("value {i}").as_bytes()]);
    }
    // One snapshot per master, merged.
    let work = tempfile::tempdir().unwrap();
    let all = work.path().join("all.rdb");
    let r = rdbkit(&["convert", &nodes[1].url(), "-o", all.to_str().unwrap(), "-q"]);
    assert_ok(&r, "convert of a cluster");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("a cluster; reading its 3 masters"), "{err}");
    let merged = dump_lines(&all);
    assert_eq!(merged.len(), 300);
    let mut union = Vec::new();
    for n in &nodes {
        let one = rdbkit(&["dump", &n.url()]);
        assert_ok(&one, "dump of one node");
        assert!(String::from_utf8_lossy(&one.stderr).contains("is one node of a cluster"));
        let lines: Vec<String> = String::from_utf8_lossy(&one.stdout).lines().map(str::to_string).collect();
        assert!(!lines.is_empty() && lines.len() < 300);
        union.extend(lines);
    }
    union.sort();
    assert_eq!(merged, union, "the merged snapshot is every master's keys");
}
