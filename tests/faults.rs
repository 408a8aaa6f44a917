//! Fault injection on the writing commands: `kill -9` at random moments, SIGINT/SIGTERM/SIGHUP, ENOSPC on a small
//! tmpfs (bytes and inodes), a directory where the manifest goes, concurrent runs into one destination. After each,
//! the destination holds the old set or the whole new set (every file the manifest names present, with the size
//! and CRC-64 it states), and no stray files: after a signal or an error none at all; after `kill -9` only files
//! with rdbkit's recognisable temporary/lock/generation names, which the next run removes.
//! Also the path rules: `--prefix`, special files as `-o`, output over an input, `--force`, and every writing
//! command refusing a corrupt input without leaving any output.
//!
//! The large input is synthetic, written by rdbkit's own writer (12 MiB: the ~100 MB benchmark dump needs a real
//! server and minutes to build, and the debug binary runs at ~16 MB/s, too slow for `cargo test`); the kill
//! points are drawn over the measured duration of a run. `scripts/faults.sh` runs the same tests on the
//! benchmark dump, with a release build and more rounds.

use rdbkit::read::{Flavor, Header, OwnedValue};
use rdbkit::write::{EntryMeta, RdbWriter};
use serde_json::Value as J;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rdbkit")
}

fn rdbkit(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run rdbkit")
}

fn ok(args: &[&str]) -> String {
    let out = rdbkit(args);
    assert!(out.status.success(), "rdbkit {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str], code: i32) -> String {
    let out = rdbkit(args);
    assert_eq!(out.status.code(), Some(code), "rdbkit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Between `min` and `min + spread - 1` random bytes.
    fn some(&mut self, min: u64, spread: u64) -> Vec<u8> {
        let n = min + self.below(spread);
        self.bytes(n as usize)
    }
}

/// An RDB 11 file of about `size` bytes: strings, small hashes and lists, some expiries, in databases 0 and 1.
fn synthetic(size: usize, seed: u64) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::with_capacity(size + 4096), Header::new(Flavor::Redis, 11)).unwrap();
    w.aux(b"redis-ver", b"7.2.4").unwrap();
    let mut r = Rng(seed | 1);
    let mut written = 0usize;
    let mut i = 0u64;
    for db in [0u64, 1] {
        w.select_db(db).unwrap();
        let limit = if db == 0 { size } else { size + size / 50 };
        while written < limit {
            let key = format!("key:{db}:{i}");
            let value = match i % 5 {
                0 => OwnedValue::Hash((0..4).map(|j| (format!("f{j}").into_bytes(), r.some(20, 30), None)).collect()),
                1 => OwnedValue::List((0..5).map(|_| r.some(10, 40)).collect()),
                _ => OwnedValue::String(r.some(100, 300)),
            };
            let expiry = i.is_multiple_of(7).then_some(rdbkit::read::Expiry::Millis(4_102_444_800_000));
            w.entry(key.as_bytes(), &value, EntryMeta::expiring(expiry)).unwrap();
            written += key.len() + 200;
            i += 1;
        }
    }
    w.finish().unwrap()
}

/// The shared large input, written once per test run; `RDBKIT_FAULTS_INPUT` names another one (the ~100 MB
/// benchmark dump in `scripts/faults.sh`).
fn big_input() -> &'static Path {
    static BIG: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &BIG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        if let Some(p) = std::env::var_os("RDBKIT_FAULTS_INPUT") {
            return (dir, PathBuf::from(p));
        }
        let path = dir.path().join("big.rdb");
        std::fs::write(&path, synthetic(12 << 20, 7)).unwrap();
        (dir, path)
    })
    .1
}

/// A multiplier of the kill rounds: `RDBKIT_FAULTS_ROUNDS` (default 1; the longer job by script uses more).
fn rounds() -> usize {
    std::env::var("RDBKIT_FAULTS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

fn small_input(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, synthetic(200 << 10, seed)).unwrap();
    path
}

fn names(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// What a set directory holds: the manifest's text, and the files it names.
#[derive(Debug, Clone, PartialEq)]
struct Set {
    manifest: String,
    files: BTreeSet<String>,
    keys: u64,
}

/// Reads and checks the set of `prefix` in `dir`: every file the manifest names exists with its stated size and
/// CRC-64. `None` when there is no manifest.
fn read_set(dir: &Path, prefix: &str) -> Option<Set> {
    let text = std::fs::read_to_string(dir.join(format!("{prefix}.manifest.json"))).ok()?;
    let m: J = serde_json::from_str(&text).unwrap_or_else(|e| panic!("manifest is not JSON ({e}): {text}"));
    let mut files = BTreeSet::new();
    let mut keys = 0;
    for s in m["shards"].as_array().expect("shards") {
        let name = s["file"].as_str().unwrap();
        let data = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name} named by the manifest: {e}"));
        assert_eq!(s["bytes"].as_u64(), Some(data.len() as u64), "{name}: size differs from the manifest");
        assert_eq!(
            s["checksum"].as_str().unwrap(),
            format!("crc64-xz:{:016x}", rdbkit::io::crc64_xz(&data)),
            "{name}: checksum differs from the manifest"
        );
        keys += s["keys"].as_u64().unwrap();
        files.insert(name.to_string());
    }
    Some(Set { manifest: text, files, keys })
}

/// Whether `name` is one of rdbkit's recognisable leftovers for `prefix` (temporary file, lock, or a generation
/// file no manifest names).
fn leftover(prefix: &str, name: &str) -> bool {
    name.ends_with(".rdbkit-tmp")
        || name == format!(".{prefix}.rdbkit-lock")
        || rdbkit::io::publish::parse_member(prefix, name).is_some_and(|m| m.generation.is_some())
}

/// Asserts `dir` holds exactly `want` (the old set, or one of the new sets in `news`), plus `others`; with
/// `leftovers_ok`, also recognisable leftovers (after `kill -9`). Returns the set found.
fn assert_old_or_new(
    dir: &Path,
    prefix: &str,
    old: Option<&Set>,
    new_keys: u64,
    others: &[&str],
    leftovers_ok: bool,
    what: &str,
) -> Option<Set> {
    let set = read_set(dir, prefix);
    match (&set, old) {
        (Some(s), Some(o)) if s == o => {}
        (None, None) => {}
        (Some(s), _) => assert_eq!(s.keys, new_keys, "{what}: a set that is neither the old one nor the whole new one"),
        (None, Some(_)) => panic!("{what}: the old set's manifest is gone"),
    }
    for n in names(dir) {
        let known = others.contains(&n.as_str())
            || n == format!("{prefix}.manifest.json")
            || set.as_ref().is_some_and(|s| s.files.contains(&n));
        if !known {
            assert!(leftovers_ok && leftover(prefix, &n), "{what}: stray file {n} in {}", dir.display());
        }
    }
    set
}

/// Kills `child` with `sig` and waits for it.
fn signal(child: &mut Child, sig: i32) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    child.wait().unwrap()
}

fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Child {
    let mut c = Command::new(bin());
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// Keys a full split of `input` writes (db 0 only), from a reference run.
fn reference_keys(input: &Path, extra: &[&str]) -> (u64, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut args = vec!["split", p(input), "--out-dir", p(dir.path()), "--shards", "3", "--prefix", "ref", "-q"];
    args.extend_from_slice(extra);
    ok(&args);
    let took = t.elapsed();
    eprintln!("reference split of {} ({} bytes): {took:?}", input.display(), std::fs::metadata(input).unwrap().len());
    (read_set(dir.path(), "ref").unwrap().keys, took)
}

#[test]
fn kill_9_at_random_moments_leaves_the_old_or_the_whole_new_set() {
    let big = big_input();
    let work = tempfile::tempdir().unwrap();
    let (new_keys, took) = reference_keys(big, &[]);
    let mut rng = Rng(0x1234_5678);
    for (cmd, blob) in [("split", None), ("export", Some("page")), ("export", Some("gzip"))] {
        let out = work.path().join(format!("{cmd}-{}", blob.unwrap_or("plain")));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("unrelated.txt"), b"not ours").unwrap();
        let old_input = small_input(work.path(), "old.rdb", 99);
        let mut args = vec![cmd, p(&old_input), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"];
        if let Some(b) = blob {
            args.extend(["--blob", b]);
        }
        ok(&args);
        let mut old = read_set(&out, "s").unwrap();
        let mut args = vec![cmd, p(big), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"];
        if let Some(b) = blob {
            args.extend(["--blob", b]);
        }
        let mut seen = (0, 0);
        let rounds = rounds() * if blob == Some("gzip") { 4 } else { 6 };
        for round in 0..rounds {
            // Kill points over the whole run; a pause before the commit in half the rounds makes the window
            // between the files' renames and the manifest's wide enough to land in.
            let pause = if round % 2 == 1 { "300" } else { "0" };
            let window = if blob == Some("gzip") { took * 3 } else { took };
            let at = Duration::from_micros(rng.below(window.as_micros() as u64 * 6 / 5 + 300_000));
            let mut child = spawn(&args, &[("RDBKIT_TEST_PUBLISH_PAUSE_MS", pause)]);
            std::thread::sleep(at);
            let status = signal(&mut child, libc::SIGKILL);
            let what = format!("{cmd} {blob:?} killed after {at:?} ({status})");
            let set = assert_old_or_new(&out, "s", Some(&old), new_keys, &["unrelated.txt", "old.rdb"], true, &what);
            if set.as_ref() == Some(&old) {
                seen.0 += 1
            } else {
                seen.1 += 1
            }
            // The next run (back to an old set) completes and removes whatever the killed one left.
            ok(&[cmd, p(&old_input), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"]
                .into_iter()
                .chain(blob.map(|b| ["--blob", b]).into_iter().flatten())
                .collect::<Vec<_>>());
            old = assert_old_or_new(&out, "s", None, old.keys, &["unrelated.txt", "old.rdb"], false, &what).unwrap();
        }
        eprintln!("{cmd} {blob:?}: killed runs left the old set {} times, the new set {} times", seen.0, seen.1);
    }
}

#[test]
fn kill_9_during_convert_leaves_the_old_file_or_the_whole_new_one() {
    let big = big_input();
    let work = tempfile::tempdir().unwrap();
    let reference = work.path().join("ref.rdb");
    let t = Instant::now();
    ok(&["convert", p(big), "-o", p(&reference), "--rdb-version", "10", "-q"]);
    let took = t.elapsed();
    let want = std::fs::read(&reference).unwrap();
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("x.rdb");
    let small = small_input(work.path(), "small.rdb", 3);
    let mut rng = Rng(42);
    for gzip in [false, true] {
        let gz: &[&str] = if gzip { &["--gzip"] } else { &[] };
        // The old file: a small conversion (which also removes what a killed run left).
        ok(&[&["convert", p(&small), "-o", p(&out), "-q"][..], gz].concat());
        for _ in 0..4 * rounds() {
            let old = std::fs::read(&out).unwrap();
            let args = [&["convert", p(big), "-o", p(&out), "--rdb-version", "10", "-q"][..], gz].concat();
            let window = if gzip { took * 3 } else { took };
            let at = Duration::from_micros(rng.below(window.as_micros() as u64 * 6 / 5));
            let mut child = spawn(&args, &[]);
            std::thread::sleep(at);
            signal(&mut child, libc::SIGKILL);
            let got = std::fs::read(&out).unwrap();
            if got != old {
                let got = if gzip {
                    let mut d = Vec::new();
                    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&got[..]), &mut d).unwrap();
                    d
                } else {
                    got
                };
                assert!(got == want, "killed after {at:?}: x.rdb is neither the old file nor the whole new one");
            }
            for n in names(&out_dir) {
                assert!(n == "x.rdb" || leftover("x.rdb", &n), "stray {n}");
            }
            ok(&[&["convert", p(&small), "-o", p(&out), "-q"][..], gz].concat());
            assert_eq!(names(&out_dir), BTreeSet::from(["x.rdb".to_string()]), "the next run cleans up");
        }
    }
}

/// Waits until `dir` has a file for which `f` holds (or the child exited).
fn wait_for(dir: &Path, child: &mut Child, f: impl Fn(&str) -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if names(dir).iter().any(|n| f(n)) {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("nothing appeared in {}", dir.display());
}

#[test]
fn signals_remove_this_runs_files_and_end_the_process_by_the_signal() {
    use std::os::unix::process::ExitStatusExt;
    let big = big_input();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let old_input = small_input(work.path(), "old.rdb", 5);
    ok(&["split", p(&old_input), "--out-dir", p(&out), "--shards", "2", "--prefix", "s", "-q"]);
    let old = read_set(&out, "s").unwrap();
    let args = ["split", p(big), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"];
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // While writing (temporary files exist), and in the pause after the files were renamed to their
        // generation names, before the manifest.
        for pause in [false, true] {
            let env = [("RDBKIT_TEST_PUBLISH_PAUSE_MS", if pause { "5000" } else { "0" })];
            let mut child = spawn(&args, &env);
            let new_member = |n: &str| {
                rdbkit::io::publish::parse_member("s", n).is_some_and(|m| m.index == 2) && !old.files.contains(n)
            };
            let reached = if pause {
                wait_for(&out, &mut child, new_member)
            } else {
                wait_for(&out, &mut child, |n| n.ends_with(".rdbkit-tmp"))
            };
            let status = signal(&mut child, sig);
            let what = format!("signal {sig} (pause {pause})");
            assert!(reached, "{what}: the run ended before the moment to signal it ({status})");
            assert_eq!(status.signal(), Some(sig), "{what}: {status}");
            let set = read_set(&out, "s");
            assert_eq!(set.as_ref(), Some(&old), "{what}: the old set is untouched");
            let mut want = old.files.clone();
            want.insert("s.manifest.json".into());
            assert_eq!(names(&out), want, "{what}: no temporary, lock or generation file is left");
        }
    }
    // convert -o: the temporary file goes too.
    let dst = work.path().join("c");
    std::fs::create_dir(&dst).unwrap();
    let mut child = spawn(&["convert", p(big), "-o", p(&dst.join("x.rdb")), "-q"], &[]);
    assert!(wait_for(&dst, &mut child, |n| n.ends_with(".rdbkit-tmp")));
    let status = signal(&mut child, libc::SIGTERM);
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(names(&dst).is_empty(), "{:?}", names(&dst));
}

/// Mounts a tmpfs of `opts` at `dir`; false (with a notice) when this machine does not allow it.
fn mount_tmpfs(dir: &Path, opts: &str) -> bool {
    let out = Command::new("mount").args(["-t", "tmpfs", "-o", opts, "tmpfs", p(dir)]).output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("skipped: cannot mount a tmpfs here ({})", String::from_utf8_lossy(&o.stderr).trim());
            false
        }
        Err(e) => {
            eprintln!("skipped: cannot run mount ({e})");
            false
        }
    }
}

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_at_any_point_leaves_the_old_set_and_names_the_output() {
    let work = tempfile::tempdir().unwrap();
    let old_input = small_input(work.path(), "old.rdb", 11);
    let new_input = work.path().join("new.rdb");
    std::fs::write(&new_input, synthetic(1 << 20, 12)).unwrap();
    let (new_keys, _) = reference_keys(&new_input, &[]);
    let mnt = work.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    if !mount_tmpfs(&mnt, "size=64m") {
        return;
    }
    let _m = Mount(mnt.clone());
    let out = mnt.join("out");
    ok(&["split", p(&old_input), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"]);
    let mut old = read_set(&out, "s").unwrap();
    let args = ["split", p(&new_input), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"];
    let used_kib = || {
        let o = Command::new("df").args(["-k", "--output=used", p(&mnt)]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap().trim().parse::<u64>().unwrap()
    };
    let base = used_kib();
    // Bytes: room for 0 to ~1.3 MiB more than the old set, in steps, so the disk fills in every shard and at
    // the manifest.
    let (mut failed, mut succeeded) = (0, 0);
    for extra in (0..1400).step_by(100) {
        let size = format!("remount,size={}k", base + extra);
        assert!(Command::new("mount").args(["-o", &size, p(&mnt)]).status().unwrap().success());
        let o = rdbkit(&args);
        let what = format!("tmpfs with {extra} KiB free");
        if o.status.success() {
            succeeded += 1;
            assert_old_or_new(&out, "s", None, new_keys, &[], false, &what);
            // Back to the old set, with room.
            Command::new("mount").args(["-o", "remount,size=64m", p(&mnt)]).status().unwrap();
            ok(&["split", p(&old_input), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"]);
            old = read_set(&out, "s").unwrap();
            continue;
        }
        failed += 1;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(p(&out)) && !err.contains("new.rdb"), "{what}: names the output, not the input: {err}");
        let set = assert_old_or_new(&out, "s", Some(&old), new_keys, &[], false, &what);
        assert_eq!(set.as_ref().map(|s| &s.manifest), Some(&old.manifest), "{what}");
    }
    assert!(failed > 3 && succeeded > 0, "{failed} full-disk runs, {succeeded} that fit");
    // A single output, plain and gzip: refused, named, nothing left beside the old set.
    for gz in [&[][..], &["--gzip"][..]] {
        let size = format!("remount,size={}k", used_kib() + 200);
        assert!(Command::new("mount").args(["-o", &size, p(&mnt)]).status().unwrap().success());
        let x = out.join("x.rdb");
        let o = rdbkit(&[&["convert", p(&new_input), "-o", p(&x), "--rdb-version", "9"][..], gz].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(p(&x)) && err.contains("No space left"), "names the output: {err}");
        assert_old_or_new(&out, "s", Some(&old), new_keys, &[], false, "convert on a full disk");
    }
    // Inodes: a tmpfs that runs out of entries at the lock, a shard or the manifest.
    Command::new("mount").args(["-o", "remount,size=64m", p(&mnt)]).status().unwrap();
    let inodes_used = || {
        let o = Command::new("df").args(["--output=iused", p(&mnt)]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).lines().nth(1).unwrap().trim().parse::<u64>().unwrap()
    };
    let base = inodes_used();
    let mut failed = 0;
    for extra in 0..6 {
        let opt = format!("remount,nr_inodes={}", base + extra);
        if !Command::new("mount").args(["-o", &opt, p(&mnt)]).status().unwrap().success() {
            continue;
        }
        let o = rdbkit(&args);
        let what = format!("tmpfs with {extra} free inodes");
        Command::new("mount").args(["-o", "remount,nr_inodes=100000", p(&mnt)]).status().unwrap();
        if o.status.success() {
            assert_old_or_new(&out, "s", None, new_keys, &[], false, &what);
            ok(&["split", p(&old_input), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"]);
            old = read_set(&out, "s").unwrap();
        } else {
            failed += 1;
            assert_eq!(o.status.code(), Some(2), "{what}: {}", String::from_utf8_lossy(&o.stderr));
            assert_old_or_new(&out, "s", Some(&old), new_keys, &[], false, &what);
        }
    }
    assert!(failed >= 3, "only {failed} runs ran out of inodes");
}

#[test]
fn a_directory_where_the_manifest_goes() {
    let work = tempfile::tempdir().unwrap();
    let input = small_input(work.path(), "in.rdb", 1);
    let out = work.path().join("out");
    std::fs::create_dir_all(out.join("s.manifest.json")).unwrap();
    std::fs::write(out.join("s.manifest.json").join("keep"), b"x").unwrap();
    let args = ["split", p(&input), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"];
    let err = fails(&args, 2);
    assert!(err.contains("is a directory"), "{err}");
    assert_eq!(names(&out), BTreeSet::from(["s.manifest.json".to_string()]));
    // With --force the run goes as far as the manifest's rename, which fails: every file it wrote goes.
    let err = fails(&[&args[..], &["--force"]].concat(), 2);
    assert!(err.contains("s.manifest.json"), "{err}");
    assert_eq!(names(&out), BTreeSet::from(["s.manifest.json".to_string()]));
    assert_eq!(names(&out.join("s.manifest.json")), BTreeSet::from(["keep".to_string()]));
    // The same for a single output.
    let err = fails(&["convert", p(&input), "-o", p(&out)], 2);
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn concurrent_runs_into_one_destination() {
    let work = tempfile::tempdir().unwrap();
    let a = small_input(work.path(), "a.rdb", 21);
    let b = work.path().join("b.rdb");
    std::fs::write(&b, synthetic(2 << 20, 22)).unwrap();
    let out = work.path().join("out");
    let ka = reference_keys(&a, &[]).0;
    let kb = reference_keys(&b, &[]).0;
    // A run that holds the destination (paused before its commit) makes another one refuse, naming its pid.
    let first = spawn(
        &["split", p(&b), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"],
        &[("RDBKIT_TEST_PUBLISH_PAUSE_MS", "3000")],
    );
    let lock = out.join(".s.rdbkit-lock");
    let t = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.ends_with('\n')) {
        assert!(t.elapsed() < Duration::from_secs(20), "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = fails(&["split", p(&a), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"], 2);
    assert!(err.contains(&format!("pid {}", first.id())) && err.contains("busy"), "{err}");
    // Another prefix in the same directory is another destination.
    ok(&["split", p(&a), "--out-dir", p(&out), "--shards", "2", "--prefix", "t", "-q"]);
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_set(&out, "s").unwrap().keys, kb);
    // A crowd of runs: each succeeds or refuses as busy; the result is one whole set, and nothing else.
    for round in 0..3 {
        let children: Vec<(Child, u64)> = (0..4)
            .map(|i| {
                let (input, keys) = if (i + round) % 2 == 0 { (&a, ka) } else { (&b, kb) };
                (spawn(&["split", p(input), "--out-dir", p(&out), "--shards", "3", "--prefix", "s", "-q"], &[]), keys)
            })
            .collect();
        let mut winners = Vec::new();
        for (c, keys) in children {
            let o = c.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            match o.status.code() {
                Some(0) => winners.push(keys),
                Some(2) => assert!(err.contains("busy"), "{err}"),
                _ => panic!("{}: {err}", o.status),
            }
        }
        assert!(!winners.is_empty());
        let set = read_set(&out, "s").unwrap();
        assert!(winners.contains(&set.keys), "the set is one a winner wrote");
        let mut want: BTreeSet<String> = set.files.clone();
        want.insert("s.manifest.json".into());
        for n in names(&out) {
            assert!(want.contains(&n) || n.starts_with("t"), "round {round}: stray {n}");
        }
    }
}

#[test]
fn prefixes_stay_inside_the_output_directory() {
    let work = tempfile::tempdir().unwrap();
    let input = small_input(work.path(), "in.rdb", 2);
    let out = work.path().join("a").join("b");
    for bad in ["../../x", "/tmp/abs", "", ".", "..", ".hidden", "a/b"] {
        let err = fails(&["split", p(&input), "--out-dir", p(&out), "--shards", "2", "--prefix", bad], 2);
        assert!(err.contains("--prefix"), "{bad:?}: {err}");
        let err = fails(&["export", p(&input), "--out-dir", p(&out), "--prefix", bad], 2);
        assert!(err.contains("--prefix"), "{bad:?}: {err}");
    }
    assert!(!work.path().join("a").exists(), "nothing was created");
    assert_eq!(names(work.path()), BTreeSet::from(["in.rdb".to_string()]));
}

#[test]
fn special_files_are_written_through_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let work = tempfile::tempdir().unwrap();
    let input = small_input(work.path(), "in.rdb", 3);
    let want = {
        let o = work.path().join("want.rdb");
        ok(&["convert", p(&input), "-o", p(&o), "-q"]);
        std::fs::read(&o).unwrap()
    };
    // A device node.
    ok(&["convert", p(&input), "-o", "/dev/null", "-q"]);
    assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
    // A FIFO, read by another process.
    let fifo = work.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    ok(&["convert", p(&input), "-o", p(&fifo), "-q"]);
    assert!(reader.join().unwrap() == want);
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is still a FIFO");
    // /dev/stdout: the bytes go to our pipe, the report to stderr.
    let o = rdbkit(&["convert", p(&input), "-o", "/dev/stdout", "-q"]);
    assert!(o.status.success());
    assert!(o.stdout == want, "stdout holds the file ({} bytes, {} wanted)", o.stdout.len(), want.len());
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());
    // A `/dev/stdout`-style symlink of our own, and process substitution.
    let link = work.path().join("to-stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    let o = rdbkit(&["convert", p(&input), "-o", p(&link), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout == want, "stdout holds the file ({} bytes, {} wanted)", o.stdout.len(), want.len());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the symlink stays");
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!("'{}' convert '{}' -o >(cat > '{}/sub.rdb') -q; wait", bin(), p(&input), p(work.path())))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = Instant::now();
    while std::fs::read(work.path().join("sub.rdb")).map(|d| d != want).unwrap_or(true) {
        assert!(t.elapsed() < Duration::from_secs(10), "-o >(cmd) did not deliver the file");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A symlink to a regular file: the target gets the new content, the link stays.
    let target = work.path().join("target.rdb");
    std::fs::write(&target, synthetic(1000, 9)).unwrap();
    let link = work.path().join("link.rdb");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    ok(&["convert", p(&input), "-o", p(&link), "-q"]);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(std::fs::read(&target).unwrap() == want);
}

#[test]
fn an_output_is_never_an_input() {
    let work = tempfile::tempdir().unwrap();
    let a = small_input(work.path(), "a.rdb", 4);
    let original = std::fs::read(&a).unwrap();
    let hard = work.path().join("hard.rdb");
    std::fs::hard_link(&a, &hard).unwrap();
    let gz = work.path().join("a.rdb.gz");
    ok(&["convert", p(&a), "-o", p(&gz), "--gzip", "-q"]);
    let gz_bytes = std::fs::read(&gz).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["convert", p(&a), "-o", p(&a), "--db", "0"],
        vec!["convert", p(&a), "-o", p(&hard)],
        vec!["convert", p(&gz), "-o", p(&gz), "--gzip"],
        vec!["import", p(&a), "-o", p(&a), "--target", "redis-7.0"],
        vec!["export", p(&a), "--prefix", "a", "--out-dir", p(work.path())],
        vec!["export", p(&gz), "--prefix", "a", "--out-dir", p(work.path()), "--blob", "gzip"],
    ];
    for args in &cases {
        let err = fails(args, 2);
        assert!(err.contains("output is an input"), "{args:?}: {err}");
    }
    // stdin redirected from the output.
    let o = Command::new(bin())
        .args(["convert", "-", "-o", p(&a)])
        .stdin(std::fs::File::open(&a).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("output is an input"));
    // A shard of the current set given as input of the next split into the same place.
    let out = work.path().join("out");
    ok(&["split", p(&a), "--out-dir", p(&out), "--shards", "2", "--prefix", "s", "-q"]);
    let set = read_set(&out, "s").unwrap();
    let shard = out.join(set.files.iter().next().unwrap());
    let err = fails(&["split", p(&shard), "--out-dir", p(&out), "--shards", "2", "--prefix", "s"], 2);
    assert!(err.contains("output is an input"), "{err}");
    assert_eq!(read_set(&out, "s").unwrap(), set);
    // Splitting a.rdb beside itself (the default prefix is its stem) touches only the set.
    ok(&["split", p(&a), "--out-dir", p(work.path()), "--shards", "2", "-q"]);
    assert_eq!(read_set(work.path(), "a").unwrap().files.len(), 2);
    assert_eq!(std::fs::read(&a).unwrap(), original);
    assert_eq!(std::fs::read(&gz).unwrap(), gz_bytes);
}

#[test]
fn existing_files_that_are_not_ours_need_force() {
    let work = tempfile::tempdir().unwrap();
    let input = small_input(work.path(), "in.rdb", 6);
    let notes = work.path().join("notes.txt");
    std::fs::write(&notes, b"precious").unwrap();
    let err = fails(&["convert", p(&input), "-o", p(&notes)], 2);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&notes).unwrap(), b"precious");
    ok(&["convert", p(&input), "-o", p(&notes), "--force", "-q"]);
    assert!(std::fs::read(&notes).unwrap().starts_with(b"REDIS0011"));
    // An RDB file (and an empty one) is replaced without --force.
    ok(&["convert", p(&input), "-o", p(&notes), "-q"]);
    let empty = work.path().join("empty.rdb");
    std::fs::write(&empty, b"").unwrap();
    ok(&["convert", p(&input), "-o", p(&empty), "-q"]);
    // A manifest that is not ours.
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("s.manifest.json"), b"{\"mine\": true}").unwrap();
    let args = ["split", p(&input), "--out-dir", p(&out), "--shards", "2", "--prefix", "s", "-q"];
    let err = fails(&args, 2);
    assert!(err.contains("not an rdbkit manifest") && err.contains("--force"), "{err}");
    assert_eq!(names(&out), BTreeSet::from(["s.manifest.json".to_string()]));
    ok(&[&args[..], &["--force"]].concat());
    assert!(read_set(&out, "s").is_some());
    // A set written before generations (`P-shard-NNN.rdb`, named by its manifest) is replaced as a whole; an
    // old-style file its manifest does not name is left alone.
    let legacy = work.path().join("legacy");
    std::fs::create_dir(&legacy).unwrap();
    std::fs::copy(&input, legacy.join("s-shard-000.rdb")).unwrap();
    std::fs::copy(&input, legacy.join("s-shard-001.rdb")).unwrap();
    std::fs::copy(&input, legacy.join("s-shard-002.rdb")).unwrap();
    let m = r#"{"format": "rdbkit-shards-1", "shards": [{"file": "s-shard-000.rdb"}, {"file": "s-shard-001.rdb"}]}"#;
    std::fs::write(legacy.join("s.manifest.json"), m).unwrap();
    ok(&["split", p(&input), "--out-dir", p(&legacy), "--shards", "2", "--prefix", "s", "-q"]);
    let set = read_set(&legacy, "s").unwrap();
    let mut want = set.files.clone();
    want.extend(["s.manifest.json".to_string(), "s-shard-002.rdb".to_string()]);
    assert_eq!(names(&legacy), want);
    // export's single file too.
    std::fs::write(out.join("e.rdb"), b"hello").unwrap();
    let err = fails(&["export", p(&input), "--prefix", "e", "--out-dir", p(&out)], 2);
    assert!(err.contains("--force"), "{err}");
}

/// A copy of `data` (an RDB 11 file holding a small listpack hash whose first field is `marker`) with the
/// listpack's element count increased and the file's CRC-64 fixed, so only deep validation can tell.
fn corrupt_listpack(data: &[u8], marker: &[u8]) -> Vec<u8> {
    let at = data.windows(marker.len()).position(|w| w == marker).expect("marker");
    // The listpack: 4 bytes total length, 2 bytes count, then the first entry (encoding byte, then the bytes).
    let count = at - 1 - 2;
    let mut out = data.to_vec();
    let n = u16::from_le_bytes([out[count], out[count + 1]]) + 2;
    out[count..count + 2].copy_from_slice(&n.to_le_bytes());
    let body = out.len() - 8;
    let crc = rdbkit::format::crc::crc64(0, &out[..body]);
    out[body..].copy_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn every_writing_command_refuses_a_corrupt_input_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let mut w = RdbWriter::new(Vec::new(), Header::new(Flavor::Redis, 11)).unwrap();
    w.select_db(0).unwrap();
    for i in 0..200u32 {
        w.entry(format!("k{i}").as_bytes(), &OwnedValue::String(vec![b'x'; 50]), EntryMeta::default()).unwrap();
    }
    let h =
        OwnedValue::Hash(vec![(b"MARKERFIELD".to_vec(), b"v1".to_vec(), None), (b"f2".to_vec(), b"v2".to_vec(), None)]);
    w.entry(b"hash", &h, EntryMeta::default()).unwrap();
    let good = w.finish().unwrap();
    let bad = work.path().join("bad.rdb");
    std::fs::write(&bad, corrupt_listpack(&good, b"MARKERFIELD")).unwrap();
    let out = rdbkit(&["verify", p(&bad)]);
    assert_eq!(out.status.code(), Some(1), "verify refuses it: {}", String::from_utf8_lossy(&out.stdout));
    let dir = work.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    let o = p(&dir);
    let f = dir.join("x.rdb");
    let cases: Vec<Vec<&str>> = vec![
        vec!["convert", p(&bad), "-o", p(&f)],
        vec!["convert", p(&bad), "-o", p(&f), "--gzip"],
        vec!["convert", p(&bad), "-o", p(&f), "--page-align", "--rdb-version", "9"],
        vec!["split", p(&bad), "--out-dir", o, "--shards", "3"],
        vec!["export", p(&bad), "--out-dir", o, "--prefix", "e"],
        vec!["export", p(&bad), "--out-dir", o, "--prefix", "e", "--blob", "gzip", "--shards", "2"],
        vec!["import", p(&bad), "-o", p(&f), "--target", "redis-7.0"],
        vec!["import", p(&bad), "--out-dir", o, "--target", "redis-7.0", "--shards", "3"],
    ];
    for args in &cases {
        let err = fails(args, 1);
        assert!(err.contains("error at byte"), "{args:?}: {err}");
        assert!(names(&dir).is_empty(), "{args:?} left {:?}", names(&dir));
    }
    // A dry run gives the real run's verdict.
    fails(&["import", p(&bad), "--dry-run", "--target", "redis-7.0"], 1);
    // To stdout: not one byte is written.
    let out = rdbkit(&["convert", p(&bad), "-o", "-"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{} bytes on stdout", out.stdout.len());
    // --no-validate is the explicit opt-out for trusted inputs: the checksum alone passes.
    ok(&["convert", p(&bad), "-o", p(&f), "--no-validate", "-q"]);
    assert!(f.exists());
}
