//! `rdbkit load INPUT... --to redis://…` against real servers (issue 12): every fixture into every server that
//! loads its version, with the `DEBUG DIGEST` of the same file loaded by the server itself; a newer file into
//! older servers (re-encoded payloads, `--lossy`); the `--on-existing` policies; values past
//! `proto-max-bulk-len`; a live source into a live target; a dry run that sends nothing.
//! Servers on 127.0.0.1, ports 8500-8549 (each tried first), started by `scripts/servers.sh`.
#![cfg(feature = "cli")]

mod common;

use rdbkit::live::resp::{Connection, Reply, Timeouts};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

static NEXT_PORT: AtomicU16 = AtomicU16::new(8500);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A server this test started, stopped when dropped.
struct Server {
    dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    /// `name` started on `file` (or empty), with `args`.
    fn start(name: &str, file: Option<&Path>, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        if let Some(f) = file {
            std::fs::copy(f, dir.path().join("dump.rdb")).unwrap();
        }
        loop {
            let port = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
            assert!(port < 8550, "no free port in 8500-8549");
            let out = common::run_bounded(
                Command::new(root().join("scripts/servers.sh"))
                    .args(["start", name, &port.to_string(), dir.path().to_str().unwrap()])
                    .args(args),
                Duration::from_secs(60),
                "servers.sh start",
            );
            if out.status.success() {
                return Server { dir, port };
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("already in use") || err.contains("exited during startup"), "{name}: {err}");
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn conn(&self) -> Connection {
        let t = Timeouts { connect: Duration::from_secs(5), io: Duration::from_secs(60) };
        Connection::connect("127.0.0.1", self.port, t).unwrap()
    }

    fn call(&self, args: &[&[u8]]) -> Reply {
        self.conn().call(args).unwrap()
    }

    fn digest(&self) -> Vec<u8> {
        self.call(&[b"DEBUG", b"DIGEST"]).as_bytes().unwrap().to_vec()
    }

    fn dbsize_all(&self) -> i64 {
        let mut c = self.conn();
        let mut n = 0;
        for db in 0..64 {
            if c.call(&[b"SELECT", db.to_string().as_bytes()]).unwrap().as_error().is_some() {
                break;
            }
            if let Reply::Int(k) = c.call(&[b"DBSIZE"]).unwrap() {
                n += k;
            }
        }
        n
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = common::run_bounded(
            Command::new(root().join("scripts/servers.sh")).args(["stop", self.dir.path().to_str().unwrap()]),
            Duration::from_secs(60),
            "servers.sh stop",
        );
    }
}

fn rdbkit(args: &[&str]) -> Output {
    common::run_bounded(
        Command::new(env!("CARGO_BIN_EXE_rdbkit")).args(args),
        Duration::from_secs(300),
        &format!("rdbkit {}", args.join(" ")),
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn testdata(name: &str) -> PathBuf {
    root().join("testdata").join(name)
}

fn falkordb() -> String {
    text(&Command::new(root().join("scripts/servers.sh")).args(["module", "falkordb"]).output().unwrap().stdout)
        .trim()
        .to_string()
}

/// Loads `file` into a fresh `name` (with `args`) and checks the digest against `name` loading it itself.
fn load_equals_server_load(name: &str, file: &Path, args: &[&str]) {
    let direct = Server::start(name, Some(file), args);
    let target = Server::start(name, None, args);
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url(), "--json"]);
    assert!(out.status.success(), "{name} {}: {}\n{}", file.display(), text(&out.stderr), text(&out.stdout));
    assert_eq!(target.digest(), direct.digest(), "{name}: {}", file.display());
    assert_eq!(target.dbsize_all(), direct.dbsize_all(), "{name}: {}", file.display());
}

#[test]
fn every_fixture_loads_into_every_server_that_takes_it() {
    if !common::real_servers_available("every_fixture_loads_into_every_server_that_takes_it") {
        return;
    }
    let fk = falkordb();
    let cases: &[(&str, &str, &[&str])] = &[
        ("redis-6.2", "redis-6.2.rdb", &[]),
        ("redis-7.0", "redis-6.2.rdb", &[]),
        ("redis-7.0", "redis-7.0.rdb", &[]),
        ("redis-7.0", "redis-7.0-multidb64.rdb", &[]),
        ("redis-8.2", "redis-7.0.rdb", &[]),
        ("redis-8.2", "redis-8.2-nomodule.rdb", &[]),
        ("redis-8.2", "redis-8.2.rdb", &["--loadmodule", &fk]),
        ("valkey-9.1", "redis-7.0.rdb", &[]),
        ("valkey-9.1", "valkey-9.1.rdb", &[]),
    ];
    for (name, file, args) in cases {
        load_equals_server_load(name, &testdata(file), args);
    }
}

/// A Redis 8.2 file (RDB 12) into Redis 7.0 and 6.2: payloads re-encoded for the older version; what they cannot
/// hold is refused without --lossy (nothing sent) and dropped with it. The result is what the server loads from
/// `convert --target … --lossy`.
#[test]
fn a_newer_file_into_older_servers_is_re_encoded() {
    if !common::real_servers_available("a_newer_file_into_older_servers_is_re_encoded") {
        return;
    }
    let file = testdata("redis-8.2-nomodule.rdb");
    for name in ["redis-7.0", "redis-6.2"] {
        let work = tempfile::tempdir().unwrap();
        let converted = work.path().join("c.rdb");
        let c = rdbkit(&[
            "convert",
            file.to_str().unwrap(),
            "-o",
            converted.to_str().unwrap(),
            "--target",
            name,
            "--lossy",
        ]);
        assert!(c.status.success(), "{}", text(&c.stderr));
        let direct = Server::start(name, Some(&converted), &[]);
        let target = Server::start(name, None, &[]);
        let refused = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url()]);
        assert_eq!(refused.status.code(), Some(1), "{name}: {}", text(&refused.stderr));
        assert!(text(&refused.stderr).contains("cannot be written"), "{}", text(&refused.stderr));
        assert_eq!(target.dbsize_all(), 0, "{name}: a refusal sends nothing");
        let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url(), "--lossy", "--json"]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("\"lossy\":[{"), "{}", text(&out.stdout));
        assert_eq!(target.digest(), direct.digest(), "{name}");
    }
}

#[test]
fn existing_keys_follow_the_policy() {
    if !common::real_servers_available("existing_keys_follow_the_policy") {
        return;
    }
    let file = testdata("redis-7.0.rdb");
    let direct = Server::start("redis-7.0", Some(&file), &[]);
    let target = Server::start("redis-7.0", None, &[]);
    let mine = |t: &Server| t.call(&[b"GET", b"exp:s"]).as_bytes().map(<[u8]>::to_vec);
    // error (default): the existing key is kept, named, exit 1; the others are loaded.
    assert!(matches!(target.call(&[b"SET", b"exp:s", b"mine"]), Reply::Status(_)));
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"exp:s\": BUSYKEY"), "{}", text(&out.stdout));
    assert_eq!(mine(&target), Some(b"mine".to_vec()));
    assert_eq!(target.dbsize_all(), direct.dbsize_all());
    // skip: kept, counted.
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url(), "--on-existing", "skip", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"loaded\":{}"), "{}", text(&out.stdout));
    assert_eq!(mine(&target), Some(b"mine".to_vec()));
    // replace: everything as in the file.
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url(), "--on-existing", "replace"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(target.digest(), direct.digest());
    // --flush empties first; --dry-run sends nothing.
    assert!(matches!(target.call(&[b"SET", b"stray", b"x"]), Reply::Status(_)));
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url(), "--dry-run", "--flush"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(target.call(&[b"EXISTS", b"stray"]) == Reply::Int(1), "a dry run changes nothing");
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url(), "--flush"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(target.digest(), direct.digest());
}

/// Values whose payload is longer than the target's `proto-max-bulk-len` go as ordinary commands; a live source
/// loads into a live target.
#[test]
fn big_values_as_commands_and_live_to_live() {
    if !common::real_servers_available("big_values_as_commands_and_live_to_live") {
        return;
    }
    let source = Server::start("redis-7.0", None, &[]);
    let mut c = source.conn();
    let big: Vec<u8> = (0..3u64 << 20).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect();
    assert!(matches!(c.call(&[b"SET", b"big", &big]).unwrap(), Reply::Status(_)));
    // Elements LZF cannot shrink, so the list's payload is past 1 MiB.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let items: Vec<Vec<u8>> = (0..3000)
        .map(|_| {
            (0..40)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{:016x}", x)
                })
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    let mut args: Vec<&[u8]> = vec![b"RPUSH", b"biglist"];
    args.extend(items.iter().map(Vec::as_slice));
    assert!(matches!(c.call(&args).unwrap(), Reply::Int(3000)));
    assert!(matches!(c.call(&[b"HSET", b"h", b"f", b"v"]).unwrap(), Reply::Int(1)));
    assert!(matches!(c.call(&[b"SAVE"]).unwrap(), Reply::Status(_)));
    let file = source.dir.path().join("dump.rdb");
    let target = Server::start("redis-7.0", None, &["--proto-max-bulk-len", "1mb"]);
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url(), "--json"]);
    // A 3 MiB string cannot be sent to a server that takes at most 1 MiB per argument: refused, named.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"as_commands\":1"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("proto-max-bulk-len"), "{}", text(&out.stdout));
    assert_eq!(target.call(&[b"EXISTS", b"big"]), Reply::Int(0));
    assert_eq!(target.call(&[b"HGET", b"h", b"f"]), Reply::Bulk(b"v".to_vec()));
    assert_eq!(target.call(&[b"LLEN", b"biglist"]), Reply::Int(3000));
    // Live to live, through replication.
    let target2 = Server::start("redis-7.0", None, &[]);
    let out = rdbkit(&["load", &source.url(), "--to", &target2.url()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(target2.digest(), source.digest());
}

/// Starts a 3-master Redis 7.0 cluster (no replicas) and waits for `cluster_state:ok`.
fn cluster() -> Vec<Server> {
    let args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"];
    let nodes: Vec<Server> = (0..3).map(|_| Server::start("redis-7.0", None, &args)).collect();
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
    assert!(create.status.success(), "{}", text(&create.stderr));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for n in &nodes {
        while !text(n.call(&[b"CLUSTER", b"INFO"]).as_bytes().unwrap()).contains("cluster_state:ok") {
            assert!(std::time::Instant::now() < deadline, "cluster not ok in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    nodes
}

fn node_id(n: &Server) -> Vec<u8> {
    n.call(&[b"CLUSTER", b"MYID"]).as_bytes().unwrap().to_vec()
}

/// Into a 3-master cluster: database 0 only (the others reported as dropped), every key on its slot's master with
/// the value the file holds (`DEBUG DIGEST-VALUE` against a server that loaded the file itself), a slot being
/// migrated answered with a real `-ASK` (the key lands on the importing node), function libraries on every master.
#[test]
fn into_a_cluster_every_key_lands_on_its_slot_owner() {
    if !common::real_servers_available("into_a_cluster_every_key_lands_on_its_slot_owner") {
        return;
    }
    let file = testdata("redis-7.0.rdb");
    let direct = Server::start("redis-7.0", Some(&file), &[]);
    let nodes = cluster();
    // A slot of one of the file's db-0 keys, mid-migration from its owner to another node.
    let moving_key = b"list:small";
    let slot = rdbkit::format::crc::key_hash_slot(moving_key);
    let owner = nodes
        .iter()
        .position(|n| {
            n.call(&[b"CLUSTER", b"COUNTKEYSINSLOT", slot.to_string().as_bytes()]) == Reply::Int(0)
                && n.call(&[b"CLUSTER", b"KEYSLOT", moving_key]) == Reply::Int(i64::from(slot))
                && text(n.call(&[b"CLUSTER", b"NODES"]).as_bytes().unwrap())
                    .lines()
                    .find(|l| l.contains("myself"))
                    .is_some_and(|l| {
                        l.split_whitespace().skip(8).any(|r| {
                            let (a, b) = r.split_once('-').unwrap_or((r, r));
                            a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b)
                        })
                    })
        })
        .expect("the slot's owner");
    let dest = (owner + 1) % 3;
    let s = slot.to_string();
    let (src_id, dst_id) = (node_id(&nodes[owner]), node_id(&nodes[dest]));
    assert!(matches!(
        nodes[dest].call(&[b"CLUSTER", b"SETSLOT", s.as_bytes(), b"IMPORTING", &src_id]),
        Reply::Status(_)
    ));
    assert!(matches!(
        nodes[owner].call(&[b"CLUSTER", b"SETSLOT", s.as_bytes(), b"MIGRATING", &dst_id]),
        Reply::Status(_)
    ));

    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &nodes[1].url(), "--json"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    let report = text(&out.stdout);
    assert!(report.contains("\"dropped_db\":{\"1\":3,\"15\":3,\"5\":3,\"63\":2}"), "{report}");
    // Every db-0 key of the file is on exactly one node: the one its slot names (or the importing one), same value.
    let mut c = direct.conn();
    let Reply::Array(keys) = c.call(&[b"KEYS", b"*"]).unwrap() else { panic!() };
    assert!(keys.len() > 40);
    for k in &keys {
        let k = k.as_bytes().unwrap();
        let want = direct.call(&[b"DEBUG", b"DIGEST-VALUE", k]);
        let holders: Vec<usize> = (0..3)
            .filter(|&i| {
                let mut conn = nodes[i].conn();
                conn.queue(&[b"ASKING"]);
                conn.queue(&[b"EXISTS", k]);
                conn.flush().unwrap();
                let _ = conn.read_reply().unwrap();
                conn.read_reply().unwrap() == Reply::Int(1)
            })
            .collect();
        assert_eq!(holders.len(), 1, "{}: on {holders:?}", text(k));
        let mut conn = nodes[holders[0]].conn();
        conn.queue(&[b"ASKING"]);
        conn.queue(&[b"DEBUG", b"DIGEST-VALUE", k]);
        conn.flush().unwrap();
        let _ = conn.read_reply().unwrap();
        assert_eq!(conn.read_reply().unwrap(), want, "{}", text(k));
        if rdbkit::format::crc::key_hash_slot(k) == slot {
            assert_eq!(holders[0], dest, "{}: the migrating slot's new key goes to the importing node", text(k));
        }
    }
    // The function library is on every master.
    for n in &nodes {
        let Reply::Array(libs) = n.call(&[b"FUNCTION", b"LIST"]) else { panic!() };
        assert_eq!(libs.len(), 1, "{}", n.port);
    }
}

/// A Valkey 9.1 file (`VALKEY080`) into Redis 8.2: re-encoded for Redis's RDB 12, what Redis cannot hold refused
/// without --lossy; with it, the same data as Redis loading `convert --target redis-8.2 --lossy`'s output.
#[test]
fn a_valkey_file_into_redis() {
    if !common::real_servers_available("a_valkey_file_into_redis") {
        return;
    }
    let file = testdata("valkey-9.1.rdb");
    let work = tempfile::tempdir().unwrap();
    let converted = work.path().join("c.rdb");
    let c = rdbkit(&[
        "convert",
        file.to_str().unwrap(),
        "-o",
        converted.to_str().unwrap(),
        "--target",
        "redis-8.2",
        "--lossy",
    ]);
    assert!(c.status.success(), "{}", text(&c.stderr));
    let direct = Server::start("redis-8.2", Some(&converted), &[]);
    let target = Server::start("redis-8.2", None, &[]);
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &target.url(), "--lossy"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    assert_eq!(target.digest(), direct.digest());
    assert_eq!(target.dbsize_all(), direct.dbsize_all());
}

/// A cluster whose master is gone: the load stops with exit 2 naming the node, not a silent partial success.
#[test]
fn a_dead_cluster_node_is_a_clear_failure() {
    if !common::real_servers_available("a_dead_cluster_node_is_a_clear_failure") {
        return;
    }
    let mut nodes = cluster();
    let dead = nodes.pop().unwrap();
    let port = dead.port;
    drop(dead);
    let file = testdata("redis-7.0.rdb");
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &nodes[0].url(), "--connect-timeout", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}\n{}", text(&out.stderr), text(&out.stdout));
    assert!(text(&out.stderr).contains(&format!("127.0.0.1:{port}")), "{}", text(&out.stderr));
}

/// A scripted cluster node on loopback: answers what `load` asks (INFO, CONFIG GET, MODULE LIST, CLUSTER SLOTS)
/// and each RESTORE through `restore`, which gets the key and returns the reply line. Returns the port.
fn fake_node(
    slots_owner: std::sync::Arc<std::sync::atomic::AtomicU16>,
    restore: impl Fn(&[u8]) -> String + Send + 'static,
) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let slots_owner = slots_owner.clone();
            let restore = &restore;
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            let bulk = |s: &str| format!("${}\r\n{s}\r\n", s.len());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let n: usize = line.trim_start_matches('*').trim().parse().unwrap_or(0);
                let mut args: Vec<Vec<u8>> = Vec::new();
                for _ in 0..n {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    let len: usize = l.trim_start_matches('$').trim().parse().unwrap();
                    let mut b = vec![0; len + 2];
                    r.read_exact(&mut b).unwrap();
                    b.truncate(len);
                    args.push(b);
                }
                let cmd = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
                let sub = args.get(1).map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).unwrap_or_default();
                let reply = match (cmd.as_str(), sub.as_str()) {
                    ("INFO", "server") => bulk("redis_version:7.0.15\r\n"),
                    ("INFO", _) => bulk("cluster_enabled:1\r\n"),
                    ("CONFIG", _) => "*0\r\n".to_string(),
                    ("MODULE", _) => "*0\r\n".to_string(),
                    ("CLUSTER", _) => {
                        let p = slots_owner.load(Ordering::SeqCst);
                        format!("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n{}:{p}\r\n", bulk("127.0.0.1"))
                    }
                    ("RESTORE", _) => restore(&args[1]),
                    _ => "+OK\r\n".to_string(),
                };
                if w.write_all(reply.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    port
}

/// A slot that moves while the load runs: the old owner answers `-MOVED`, the loader refreshes its slot map and
/// sends every redirected key to the new owner; nothing is lost or counted twice.
#[test]
fn moved_slots_are_followed() {
    use std::sync::{Arc, Mutex, atomic::AtomicU16};
    let mut w =
        rdbkit::write::RdbWriter::new(Vec::new(), rdbkit::read::Header::new(rdbkit::read::Flavor::Redis, 10)).unwrap();
    w.select_db(0).unwrap();
    for i in 0..50 {
        let v = rdbkit::read::OwnedValue::String(format!("v{i}").into_bytes());
        w.entry(format!("k{i}").as_bytes(), &v, rdbkit::write::EntryMeta::default()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.rdb");
    std::fs::write(&file, w.finish().unwrap()).unwrap();

    let owner = Arc::new(AtomicU16::new(0));
    let landed: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let l = landed.clone();
    let new_owner = fake_node(owner.clone(), move |key| {
        l.lock().unwrap().push(key.to_vec());
        "+OK\r\n".to_string()
    });
    let answered_moved = Arc::new(AtomicU16::new(0));
    let a = answered_moved.clone();
    let (o2, np) = (owner.clone(), new_owner);
    let old_owner = fake_node(owner.clone(), move |key| {
        // The slot moved after the loader read the map: from now on CLUSTER SLOTS names the new owner.
        o2.store(np, Ordering::SeqCst);
        a.fetch_add(1, Ordering::SeqCst);
        format!("-MOVED {} 127.0.0.1:{np}\r\n", rdbkit::format::crc::key_hash_slot(key))
    });
    owner.store(old_owner, Ordering::SeqCst);
    let out = rdbkit(&["load", file.to_str().unwrap(), "--to", &format!("redis://127.0.0.1:{old_owner}"), "--json"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    assert!(text(&out.stdout).contains("\"loaded\":{\"0\":50}"), "{}", text(&out.stdout));
    assert!(answered_moved.load(Ordering::SeqCst) >= 1);
    let mut got = landed.lock().unwrap().clone();
    assert_eq!(got.len(), 50, "every key sent to the new owner once");
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 50, "every key on the new owner");
}

/// `-TRYAGAIN` is waited out and retried; a node that keeps redirecting a key to itself ends the load after a
/// bounded number of attempts, with exit 2 and a message, instead of looping.
#[test]
fn waits_are_retried_and_redirect_loops_are_bounded() {
    use std::sync::{Arc, atomic::AtomicU16};
    let file = testdata("redis-6.2.rdb");
    let dir = tempfile::tempdir().unwrap();
    // Database 0 only, no function libraries (this file has none), small.
    let one = dir.path().join("one.rdb");
    let c = rdbkit(&["convert", file.to_str().unwrap(), "-o", one.to_str().unwrap(), "--db", "0", "--match", "str:*"]);
    assert!(c.status.success(), "{}", text(&c.stderr));

    let owner = Arc::new(AtomicU16::new(0));
    let calls = Arc::new(AtomicU16::new(0));
    let n = calls.clone();
    let port = fake_node(owner.clone(), move |_| {
        if n.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            "-TRYAGAIN slot busy\r\n".into()
        } else {
            "+OK\r\n".into()
        }
    });
    owner.store(port, Ordering::SeqCst);
    let out = rdbkit(&["load", one.to_str().unwrap(), "--to", &format!("redis://127.0.0.1:{port}"), "--json"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    assert!(text(&out.stdout).contains("\"failed\":[]"), "{}", text(&out.stdout));

    let owner = Arc::new(AtomicU16::new(0));
    let o = owner.clone();
    let port = fake_node(owner.clone(), move |key| {
        let p = o.load(Ordering::SeqCst);
        format!("-MOVED {} 127.0.0.1:{p}\r\n", rdbkit::format::crc::key_hash_slot(key))
    });
    owner.store(port, Ordering::SeqCst);
    let out = rdbkit(&["load", one.to_str().unwrap(), "--to", &format!("redis://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("still redirected after 16 attempts"), "{}", text(&out.stderr));
}
