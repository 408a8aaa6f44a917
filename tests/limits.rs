//! Bounded memory and time on hostile input: the `rdbkit` binary run on crafted files, with its peak RSS and wall
//! time measured and asserted.
//!
//! Each case runs the binary as a child process. Peak RSS is the child's `VmHWM` (the kernel's high-water mark of
//! its resident set, in `/proc/<pid>/status`), read every millisecond while it runs: a high-water mark never
//! drops, and touching the hundreds of megabytes these bounds are about takes far longer than a millisecond, so
//! the last reading before exit is the peak that matters. (`wait4`'s `ru_maxrss` is no use here: Linux folds in
//! the resident set of the test process the child was spawned from.) Wall time is measured around the child, and a
//! watchdog kills a child that runs past [`WATCHDOG`], so a regression fails the test instead of hanging it. The bounds are stated per case as *a constant plus the input
//! size*: a plain input file is memory-mapped, and its pages count in RSS once read, so they are part of the bound.
//! The constants are generous for a debug build on a busy 2-core machine; what they catch is the difference
//! between bounded and unbounded (the inputs here would take gigabytes, minutes, or forever without the bounds).
//!
//! | case | commands | what it would cost without the bound | bound asserted |
//! |---|---|---|---|
//! | LZF bomb: 12 MB of LZF that declares 1 GB (strings and a plain list node); a listpack bomb with a wrong header | `verify`, `info`, `convert` | 1 GB reserved by deep validation | RSS ≤ [`BASE_RSS`] + file size; time ≤ [`BASE_TIME`] + 1 s per 4 MB; `verify` and `convert` succeed under a 256 MiB address-space limit |
//! | gzip bomb: a valid RDB, then 10 GiB of zeros, gzip (10 MB) | `verify`, `info`, `dump`, `convert`, `split`, `export`, `import` | 10 GiB read and counted | RSS ≤ [`BASE_RSS`] + gzip size; time ≤ [`BASE_TIME`] |
//! | endless zeros on stdin after a valid RDB | `verify`, `info`, `dump` | never ends | RSS ≤ [`BASE_RSS`]; time ≤ [`BASE_TIME`]; stdin read at most [`rdbkit::read::TRAILING_LIMIT`] past the checksum (plus one read) |
//! | AUX values: an LZF one of 12 MB declaring 1 GB, a raw one of 200 kB, a 5 kB name | `verify`, `info`, `info --json` | 1 GB decompressed and printed | RSS ≤ [`BASE_RSS`] + file size; values cut at 64 KiB and names at 1 KiB, with their lengths |
//! | 200,000 distinct AUX names (≈ 4 MB) | `info`, `info --json` | quadratic: a minute | CPU time < 1 s (wall ≤ [`BASE_TIME`]: the machine may be busy); output capped to 1000 fields, the rest counted |
//!
//! Beside the binary, `readers_look_at_most_trailing_limit_bytes_past_the_checksum` checks the readers' trailing-byte
//! report at the limit's edges, and the LZF codec's own tests (`src/format/lzf.rs`) check that validation and the
//! streaming decoder hold no output.
//!
//! The 200k-AUX case is also the check that `info` escapes AUX names: names with terminal escapes and newlines
//! come out escaped in text and in JSON.

use flate2::Compression;
use flate2::write::GzEncoder;
use rdbkit::format::crc::crc64;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Memory a command may use on top of its input in these cases: the binary, its buffers, one chunk of output.
const BASE_RSS: u64 = 64 << 20;
/// Time a command may take on top of its input in these cases (debug build, shared machine).
const BASE_TIME: Duration = Duration::from_secs(10);
/// A child still running after this long is killed and the case fails.
const WATCHDOG: Duration = Duration::from_secs(120);

/// What feeds the child's stdin.
enum Feed {
    /// Nothing (stdin is `/dev/null`).
    Null,
    /// These bytes, then endless zeros until the child stops reading.
    ThenZeros(Vec<u8>),
}

/// One measured run.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    peak_rss: u64,
    wall: Duration,
    /// CPU time of the child (user + system), from `wait4`: what the work costs, whatever else the machine runs.
    cpu: Duration,
    /// Bytes the child took from stdin (what the feeder managed to write).
    fed: u64,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?}, peak RSS {:.1} MiB, {:.2} s ({:.2} s CPU), {} bytes fed; stderr: {}",
            self.code,
            self.peak_rss as f64 / (1 << 20) as f64,
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.fed,
            self.stderr.trim()
        )
    }

    /// Asserts the bounds.
    fn assert_within(&self, what: &str, rss: u64, time: Duration) {
        eprintln!("{what}: {}", self.describe());
        assert!(self.peak_rss <= rss, "{what}: peak RSS {} > bound {rss}: {}", self.peak_rss, self.describe());
        assert!(self.wall <= time, "{what}: took {:?} > bound {time:?}: {}", self.wall, self.describe());
    }
}

/// Runs the `rdbkit` binary with `args`, measuring its peak RSS and wall time.
fn run(args: &[&str], feed: Feed) -> Run {
    run_with(args, feed, None)
}

/// [`run`], with the child's address space limited to `address_space` bytes (`RLIMIT_AS`) when given.
fn run_with(args: &[&str], feed: Feed, address_space: Option<u64>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rdbkit"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(limit) = address_space {
        use std::os::unix::process::CommandExt;
        let lim = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
        // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing but its own copy of `lim`.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
            });
        }
    }
    cmd.stdin(match feed {
        Feed::Null => Stdio::null(),
        Feed::ThenZeros(_) => Stdio::piped(),
    });
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn rdbkit");
    let pid = child.id() as libc::pid_t;
    let feeder = child.stdin.take().map(|mut stdin| {
        let Feed::ThenZeros(prefix) = feed else { unreachable!() };
        std::thread::spawn(move || {
            let mut fed = 0u64;
            if stdin.write_all(&prefix).is_err() {
                return fed;
            }
            fed += prefix.len() as u64;
            let zeros = vec![0u8; 64 * 1024];
            // Until the child closes its end (EPIPE): that it does at all is part of what is tested.
            while let Ok(n) = stdin.write(&zeros) {
                fed += n as u64;
            }
            fed
        })
    });
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));

    // Poll: sample the child's peak RSS (VmHWM) each millisecond until it exits, killing it past the watchdog.
    let mut status = 0;
    // SAFETY: `rusage` is plain old data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut peak_rss = 0;
    let mut killed = false;
    loop {
        if let Some(hwm) = vm_hwm(pid) {
            peak_rss = peak_rss.max(hwm);
        }
        // SAFETY: plain FFI call with valid pointers; `pid` is our unreaped child, so it cannot be reused.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "waitpid failed: {}", std::io::Error::last_os_error());
        if !killed && start.elapsed() > WATCHDOG {
            // SAFETY: as above, the pid is still our child (not reaped).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = start.elapsed();
    // The Child was reaped by hand: forget it so that nothing waits on the pid again.
    std::mem::forget(child);
    let fed = feeder.map_or(0, |f| f.join().unwrap());
    let run = Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: out.join().unwrap(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
        peak_rss,
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        fed,
    };
    assert!(!killed, "{args:?}: still running after {WATCHDOG:?}, killed: {}", run.describe());
    run
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// The peak RSS of process `pid` so far (`VmHWM` in `/proc/<pid>/status`), while it runs.
fn vm_hwm(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

// -------------------------------------------------------------------------------------------------------------
// Crafting files

/// RDB length encoding.
fn len_enc(out: &mut Vec<u8>, n: u64) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn raw_str(out: &mut Vec<u8>, s: &[u8]) {
    len_enc(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// An RDB 11 file: `body` (records after the header), EOF and a correct CRC-64.
fn rdb(body: &[u8]) -> Vec<u8> {
    let mut f = b"REDIS0011".to_vec();
    f.extend_from_slice(body);
    f.push(0xFF);
    let crc = crc64(0, &f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

/// An LZF stream of one literal byte and then `refs` longest back-references at distance 1 (3 bytes → 264), and
/// the length it decompresses to: the largest ratio LZF allows.
fn lzf_bomb(refs: usize) -> (Vec<u8>, u64) {
    let mut c = Vec::with_capacity(2 + 3 * refs);
    c.extend_from_slice(&[0, b'x']);
    for _ in 0..refs {
        c.extend_from_slice(&[0xE0, 255, 0]);
    }
    (c, 1 + refs as u64 * 264)
}

/// Refs of the LZF bombs in [`lzf_bomb_file`]: a string value, a plain quicklist node, two small strings.
const BOMB_REFS: [usize; 4] = [2_000_000, 2_100_000, 1000, 50_000];

/// A valid file of LZF bombs (12 MB declaring over 1 GiB): a string value of ~0.5 GB, a list whose one plain
/// quicklist node is an element of ~0.5 GB (Redis 7+ stores large elements so), and two smaller strings, the last
/// one last in the file.
fn lzf_bomb_file() -> Vec<u8> {
    let mut body = vec![0xFE, 0x00];
    let lzf = |body: &mut Vec<u8>, refs: usize| {
        let (c, n) = lzf_bomb(refs);
        body.push(0xC3);
        len_enc(body, c.len() as u64);
        len_enc(body, n);
        body.extend_from_slice(&c);
    };
    for (i, refs) in BOMB_REFS.into_iter().enumerate() {
        if i == 1 {
            // QUICKLIST_2 (type 18): one node, container 1 (plain).
            body.push(18);
            raw_str(&mut body, b"bomb:list");
            body.extend_from_slice(&[1, 1]);
        } else {
            body.push(0x00);
            raw_str(&mut body, format!("bomb:{i}").as_bytes());
        }
        lzf(&mut body, refs);
    }
    rdb(&body)
}

/// A file with one listpack hash (type 16) stored as an LZF bomb whose listpack header does not give the declared
/// length: corrupt, and refusing it must not take the declared length first.
fn lzf_listpack_bomb_file() -> Vec<u8> {
    let refs = 4_000_000;
    // A listpack header claiming 100 bytes, then the usual bomb.
    let mut c = vec![5, 100, 0, 0, 0, 2, 0];
    for _ in 0..refs {
        c.extend_from_slice(&[0xE0, 255, 0]);
    }
    let n = 6 + refs as u64 * 264;
    let mut body = vec![0xFE, 0x00, 16];
    raw_str(&mut body, b"hash");
    body.push(0xC3);
    len_enc(&mut body, c.len() as u64);
    len_enc(&mut body, n);
    body.extend_from_slice(&c);
    rdb(&body)
}

/// A small valid file with a few keys.
fn small_file() -> Vec<u8> {
    let mut body = vec![0xFA];
    raw_str(&mut body, b"redis-ver");
    raw_str(&mut body, b"7.2.0");
    body.extend_from_slice(&[0xFE, 0x00]);
    for i in 0..20 {
        body.push(0x00);
        raw_str(&mut body, format!("key:{i}").as_bytes());
        raw_str(&mut body, format!("value {i}").as_bytes());
    }
    rdb(&body)
}

/// gzip of `data` followed by `members` gzip members of 1 MiB of zeros each (a multi-member gzip stream, which is
/// what `gzip` writes for concatenated files: one valid `.gz` whose content is `data` and then the zeros).
fn gzip_bomb(data: &[u8], members: usize) -> Vec<u8> {
    let gz = |d: &[u8]| {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    };
    let mut out = gz(data);
    let zeros = gz(&vec![0u8; 1 << 20]);
    out.reserve(zeros.len() * members);
    for _ in 0..members {
        out.extend_from_slice(&zeros);
    }
    out
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("rdbkit-limits").tempdir().unwrap()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// -------------------------------------------------------------------------------------------------------------
// Cases

#[test]
fn lzf_bomb_is_validated_in_bounded_memory() {
    let dir = tmpdir();
    let data = lzf_bomb_file();
    let size = data.len() as u64;
    let declared: u64 = BOMB_REFS.iter().map(|&r| 1 + r as u64 * 264).sum();
    assert!(size < 13 << 20 && declared > 1 << 30, "a 12 MB file declaring over 1 GiB");
    let p = write(dir.path(), "lzf-bomb.rdb", &data);
    let out = dir.path().join("out.rdb");
    let time = BASE_TIME + Duration::from_secs(size / (4 << 20));
    for args in [
        vec!["verify", s(&p)],
        vec!["info", s(&p)],
        vec!["info", "--json", s(&p)],
        vec!["convert", s(&p), "-o", s(&out)],
    ] {
        let r = run(&args, Feed::Null);
        assert_eq!(r.code, Some(0), "{args:?} accepts a valid file: {}", r.describe());
        r.assert_within(&format!("{args:?}"), BASE_RSS + size, time);
    }
    // Not even an attempt to reserve a declared length: under a 256 MiB address-space limit (where reserving one
    // would fail) verify and convert still succeed.
    for args in [vec!["verify", s(&p)], vec!["convert", s(&p), "-o", s(&out)]] {
        let r = run_with(&args, Feed::Null, Some(256 << 20));
        assert_eq!(r.code, Some(0), "{args:?} under a 256 MiB address-space limit: {}", r.describe());
    }
    let v = run(&["verify", s(&p)], Feed::Null);
    assert!(String::from_utf8_lossy(&v.stdout).contains("4 keys"), "{}", String::from_utf8_lossy(&v.stdout));
    // The converted file is the same data: its bomb still declares the same length.
    let v = run(&["verify", s(&out)], Feed::Null);
    assert_eq!(v.code, Some(0), "{}", v.describe());

    // The same bomb one byte short of its declared length is refused, as cheaply.
    let mut bad = data.clone();
    let at = bad.len() - 9 - 3 * 50_000 - 2; // start of the last LZF stream
    assert_eq!(&bad[at..at + 2], &[0, b'x']);
    bad[at + 3] = 254; // one back-reference one byte shorter
    let crc_at = bad.len() - 8;
    let crc = crc64(0, &bad[..crc_at]);
    bad[crc_at..].copy_from_slice(&crc.to_le_bytes());
    let p = write(dir.path(), "lzf-bomb-bad.rdb", &bad);
    let r = run(&["verify", s(&p)], Feed::Null);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("LZF") || r.stderr.contains("lzf"), "{}", r.describe());
    r.assert_within("verify (corrupt bomb)", BASE_RSS + size, time);

    // A listpack bomb whose header disagrees with its declared length: refused before it is decompressed.
    let lp = lzf_listpack_bomb_file();
    let p = write(dir.path(), "lzf-listpack-bomb.rdb", &lp);
    for args in [vec!["verify", s(&p)], vec!["convert", s(&p), "-o", s(&out)]] {
        let r = run(&args, Feed::Null);
        if args[0] == "verify" {
            assert_eq!(r.code, Some(1), "{}", r.describe());
            assert!(r.stderr.contains("total_bytes is 100"), "{}", r.describe());
        }
        r.assert_within(&format!("{args:?} (listpack bomb)"), BASE_RSS + lp.len() as u64, time);
    }
}

#[test]
fn gzip_bomb_after_the_checksum_is_not_read_to_its_end() {
    let dir = tmpdir();
    let plain = small_file();
    let gz = gzip_bomb(&plain, 10 * 1024); // 10 GiB of zeros after the RDB
    let p = write(dir.path(), "bomb.rdb.gz", &gz);
    let size = gz.len() as u64;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = |name: &str| s(&out).to_string() + "/" + name;
    let (conv, imp) = (o("c.rdb"), o("i.rdb"));
    for args in [
        vec!["verify", s(&p)],
        vec!["info", s(&p)],
        vec!["dump", s(&p), "--format", "json"],
        vec!["convert", s(&p), "-o", &conv],
        vec!["split", s(&p), "--out-dir", s(&out), "--shards", "3"],
        vec!["export", s(&p), "--prefix", "e", "--out-dir", s(&out)],
        vec!["import", s(&p), "-o", &imp, "--target", "redis-7.2"],
    ] {
        let r = run(&args, Feed::Null);
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.describe());
        r.assert_within(&format!("{args:?}"), BASE_RSS + size, BASE_TIME);
    }
    let v = run(&["verify", s(&p)], Feed::Null);
    let line = String::from_utf8_lossy(&v.stdout);
    assert!(line.contains("20 keys") && line.contains("more than 1048576 trailing bytes"), "{line}");
    assert!(v.stderr.contains("warning: more than 1048576 bytes follow the checksum"), "{}", v.describe());
    let j: serde_json::Value = serde_json::from_slice(&run(&["info", "--json", s(&p)], Feed::Null).stdout).unwrap();
    assert_eq!(j["trailing_beyond_limit"], true, "{j}");
    assert_eq!(j["trailing_zero"], true, "{j}");
    assert_eq!(j["trailing_bytes"], rdbkit::read::TRAILING_LIMIT, "{j}");
}

#[test]
fn endless_zeros_on_stdin_stop_promptly() {
    let plain = small_file();
    for args in [vec!["verify", "-"], vec!["info", "-"], vec!["dump", "-", "--format", "resp"]] {
        let r = run(&args, Feed::ThenZeros(plain.clone()));
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.describe());
        r.assert_within(&format!("{args:?} < endless zeros"), BASE_RSS, BASE_TIME);
        // The reader stops about TRAILING_LIMIT past the checksum: what the feeder got in is that plus the pipe's
        // and the reader's buffers (the chunked reader reads one 8 MiB buffer ahead of the one it parses), far
        // from "everything".
        assert!(r.fed < plain.len() as u64 + (24 << 20), "{args:?} read {} bytes of stdin", r.fed);
        assert!(r.stderr.contains("not read to their end"), "{}", r.describe());
    }
    // Zero padding within the limit is still padding, read to its end.
    let mut padded = plain.clone();
    padded.resize(plain.len().next_multiple_of(512) + 4096, 0);
    let dir = tmpdir();
    let p = write(dir.path(), "padded.rdb", &padded);
    let j: serde_json::Value = serde_json::from_slice(&run(&["info", "--json", s(&p)], Feed::Null).stdout).unwrap();
    assert_eq!(
        (&j["trailing_bytes"], &j["trailing_zero"], &j["trailing_beyond_limit"]),
        (&serde_json::json!(padded.len() - plain.len()), &serde_json::json!(true), &serde_json::json!(false)),
        "{j}"
    );
}

#[test]
fn info_on_200k_distinct_aux_names_is_fast_capped_and_escaped() {
    let dir = tmpdir();
    let mut body = Vec::new();
    let nasty: [&[u8]; 3] = [b"\x1b[31mred\x1b[0m", b"fake\nline = \"x\"", b"caf\xc3\xa9 \xff"];
    for n in nasty {
        body.push(0xFA);
        raw_str(&mut body, n);
        raw_str(&mut body, b"v");
    }
    let names = 200_000;
    for i in 0..names {
        body.push(0xFA);
        raw_str(&mut body, format!("aux-name-{i:07}").as_bytes());
        raw_str(&mut body, b"1");
    }
    // A repeated name counts once per value.
    for _ in 0..5 {
        body.push(0xFA);
        raw_str(&mut body, b"lua");
        raw_str(&mut body, b"return 1");
    }
    body.extend_from_slice(&[0xFE, 0x00, 0x00, 0x01, b'k', 0x01, b'v']);
    let p = write(dir.path(), "aux.rdb", &rdb(&body));
    let fields = names as u64 + 3 + 5;
    let shown = 1000u64;

    let r = run(&["info", s(&p)], Feed::Null);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    r.assert_within("info (200k AUX names)", BASE_RSS, BASE_TIME);
    assert!(r.cpu < Duration::from_secs(1), "info took {:?} of CPU", r.cpu);
    let text = String::from_utf8(r.stdout).expect("the text listing is ASCII");
    assert!(!text.contains('\x1b'), "a terminal escape reached the output");
    let aux_lines: Vec<&str> =
        text.lines().skip_while(|l| *l != "aux:").skip(1).take_while(|l| l.starts_with("  ")).collect();
    assert_eq!(aux_lines.len() as u64, shown + 1, "1000 fields and the left-out line");
    assert_eq!(aux_lines[0], r#"  "\x1b[31mred\x1b[0m" = "v""#);
    assert_eq!(aux_lines[1], r#"  "fake\nline = \"x\"" = "v""#);
    assert_eq!(aux_lines[2], r#"  "caf\xc3\xa9 \xff" = "v""#);
    assert_eq!(aux_lines[3], r#"  aux-name-0000000 = "1""#);
    assert!(!text.contains("\nline = "), "a name started a line of its own");
    assert_eq!(
        *aux_lines.last().unwrap(),
        format!("  ({} more AUX fields not shown: only the first 1000 are)", fields - shown)
    );

    let r = run(&["info", "--json", s(&p)], Feed::Null);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    r.assert_within("info --json (200k AUX names)", BASE_RSS, BASE_TIME);
    assert!(r.cpu < Duration::from_secs(1), "info --json took {:?} of CPU", r.cpu);
    assert!(!r.stdout.contains(&0x1b), "a raw escape byte in JSON");
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let aux = j["aux"].as_object().unwrap();
    assert_eq!(aux.len() as u64, shown);
    assert_eq!(aux["\x1b[31mred\x1b[0m"], "v");
    assert_eq!(aux["fake\nline = \"x\""], "v");
    assert_eq!(aux[r"caf\xc3\xa9 \xff"], "v", "a name that is not UTF-8 is given as its escaped text");
    assert_eq!(j["aux_left_out"], fields - shown);
    assert_eq!(j["databases"]["0"]["keys"], 1);
}

/// The trailing-byte report of both readers on `data` (the stream reader fed in odd-sized reads).
fn trailing_of(data: &[u8]) -> (rdbkit::read::Trailing, rdbkit::read::Trailing) {
    use rdbkit::read::{SliceReader, StreamReader};
    let mut sr = SliceReader::new(data).unwrap();
    while sr.next_record().unwrap().is_some() {}
    /// Reads of at most 7919 bytes at a time.
    struct Odd<'a>(&'a [u8]);
    impl Read for Odd<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7919);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut st = StreamReader::new(Odd(data)).unwrap();
    while st.next_record().unwrap().is_some() {}
    (sr.trailing().unwrap(), st.trailing().unwrap())
}

#[test]
fn readers_look_at_most_trailing_limit_bytes_past_the_checksum() {
    use rdbkit::read::{TRAILING_LIMIT, Trailing};
    let plain = small_file();
    let limit = TRAILING_LIMIT as usize;
    let with_tail = |len: usize, nonzero_at: Option<usize>| {
        let mut d = plain.clone();
        d.resize(plain.len() + len, 0);
        if let Some(at) = nonzero_at {
            d[plain.len() + at] = 7;
        }
        d
    };
    let t = |len: usize, all_zero: bool, beyond_limit: bool| (len as u64, all_zero, beyond_limit);
    let fields = |t: Trailing| (t.len, t.all_zero, t.beyond_limit);
    for (tail, nonzero, want) in [
        (0, None, t(0, true, false)),
        (300, None, t(300, true, false)),
        (300, Some(299), t(300, false, false)),
        (limit, None, t(limit, true, false)),
        (limit, Some(limit - 1), t(limit, false, false)),
        // One byte past the limit: reported as more, and that byte is not looked at.
        (limit + 1, None, t(limit, true, true)),
        (limit + 1, Some(limit), t(limit, true, true)),
        (limit + 1, Some(0), t(limit, false, true)),
        (3 * limit + 12345, None, t(limit, true, true)),
    ] {
        let (slice, stream) = trailing_of(&with_tail(tail, nonzero));
        assert_eq!(fields(slice), want, "slice, tail {tail}, non-zero at {nonzero:?}");
        assert_eq!(fields(stream), want, "stream, tail {tail}, non-zero at {nonzero:?}");
    }
    // A gzip stream whose tail ends within the limit is still read to its end: a broken gzip trailer is an error.
    let mut gz = gzip_bomb(&with_tail(1000, None), 0);
    let n = gz.len();
    gz[n - 8] ^= 1; // the CRC-32 of the gzip member
    let mut r = rdbkit::read::StreamReader::new(&gz[..]).unwrap();
    let mut res = Ok(());
    loop {
        match r.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                res = Err(e);
                break;
            }
        }
    }
    assert!(res.is_err(), "a corrupt gzip trailer within the limit must be noticed");
}

#[test]
fn info_and_verify_hold_only_the_head_of_a_huge_aux_value() {
    let dir = tmpdir();
    let (c, n) = lzf_bomb(4_000_000); // 12 MB declaring 1 GB
    let mut body = vec![0xFA];
    raw_str(&mut body, b"bomb");
    body.push(0xC3);
    len_enc(&mut body, c.len() as u64);
    len_enc(&mut body, n);
    body.extend_from_slice(&c);
    body.push(0xFA);
    raw_str(&mut body, b"big");
    raw_str(&mut body, &vec![b'y'; 200_000]);
    body.push(0xFA);
    raw_str(&mut body, &vec![b'n'; 5000]);
    raw_str(&mut body, b"long name");
    body.extend_from_slice(&[0xFE, 0x00, 0x00, 0x01, b'k', 0x01, b'v']);
    let data = rdb(&body);
    let size = data.len() as u64;
    let p = write(dir.path(), "aux-bomb.rdb", &data);
    let time = BASE_TIME + Duration::from_secs(size / (4 << 20));

    let r = run(&["verify", s(&p)], Feed::Null);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    r.assert_within("verify (AUX bomb)", BASE_RSS + size, time);

    let r = run(&["info", s(&p)], Feed::Null);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    r.assert_within("info (AUX bomb)", BASE_RSS + size, time);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(text.len() < 1 << 20, "info printed {} bytes", text.len());
    let line = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {text}"));
    assert!(line("  bomb = ").ends_with(&format!("\"... ({n} bytes)")), "{}", &line("  bomb = ")[..40]);
    assert!(line("  big = ").ends_with("\"... (200000 bytes)"));
    assert_eq!(line("  big = ").len(), "  big = ".len() + 65536 + 2 + "... (200000 bytes)".len());
    assert_eq!(line("  \"nnnn"), format!("  \"{}... (5000 bytes)\" = \"long name\"", "n".repeat(1024)));

    let r = run(&["info", "--json", s(&p)], Feed::Null);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    r.assert_within("info --json (AUX bomb)", BASE_RSS + size, time);
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(j["aux"]["bomb"]["bytes"], n);
    assert_eq!(j["aux"]["bomb"]["head"].as_str().unwrap(), "x".repeat(65536));
    assert_eq!(j["aux"]["big"]["bytes"], 200_000);
    assert_eq!(j["aux"][format!("{}... (5000 bytes)", "n".repeat(1024))], "long name");
}

#[test]
fn one_key_repeated_stops_at_the_duplicate_check() {
    // A million copies of one key: the servers abort at the second ("Duplicated key found in RDB file"), and so
    // does every reading command, at once, in memory and time bounded by the input.
    let mut body = vec![0xFE, 0x00];
    for _ in 0..1_000_000 {
        body.extend_from_slice(&[0x00, 0x01, b'k', 0x01, b'v']);
    }
    let data = rdb(&body);
    let size = data.len() as u64;
    let dir = tmpdir();
    let p = write(dir.path(), "repeated.rdb", &data);
    let out = dir.path().join("out.rdb");
    for args in [
        vec!["verify", s(&p)],
        vec!["convert", s(&p), "-o", s(&out)],
        vec!["dump", s(&p), "--format", "resp"],
        vec!["dump", s(&p), "--format", "json"],
    ] {
        let r = run(&args, Feed::Null);
        assert_eq!(r.code, Some(1), "{args:?} refuses the file: {}", r.describe());
        assert!(r.stderr.to_lowercase().contains("duplicate"), "{args:?}: {}", r.describe());
        let at: u64 = r
            .stderr
            .split("error at byte ")
            .nth(1)
            .and_then(|t| t.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{args:?}: no offset: {}", r.describe()));
        // The second copy starts at byte 16 (9 magic + 2 SELECTDB + 5 for the first copy).
        assert!((16..32).contains(&at), "{args:?} refused at byte {at}: {}", r.describe());
        // dump validates the whole input before writing: nothing of the first copy reaches stdout.
        assert!(r.stdout.is_empty(), "{args:?} wrote {} bytes before refusing", r.stdout.len());
        r.assert_within(&format!("{args:?}"), BASE_RSS + size, BASE_TIME);
    }
    assert!(!out.exists(), "convert left an output");
}

#[test]
fn dump_of_a_file_damaged_at_its_end_writes_nothing() {
    // Many good keys, then one that deep validation refuses (a set stored as an intset whose elements are not
    // sorted): `dump` refuses before its first line, from a file and from stdin; `--no-validate` streams the good
    // keys out.
    let mut body = vec![0xFE, 0x00];
    for i in 0..20_000u32 {
        let k = format!("key:{i}");
        body.extend_from_slice(&[0x00, k.len() as u8]);
        body.extend_from_slice(k.as_bytes());
        body.extend_from_slice(&[0x01, b'v']);
    }
    // Type 11 (set as intset): encoding 2, length 2, elements 2 then 1 (unsorted).
    let intset = [2u8, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0];
    body.extend_from_slice(&[11, 3, b'b', b'a', b'd', intset.len() as u8]);
    body.extend_from_slice(&intset);
    let data = rdb(&body);
    let dir = tmpdir();
    let p = write(dir.path(), "damaged-at-end.rdb", &data);
    for format in ["json", "resp"] {
        let r = run(&["dump", s(&p), "--format", format], Feed::Null);
        assert_eq!(r.code, Some(1), "dump --format {format}: {}", r.describe());
        assert!(r.stdout.is_empty(), "dump --format {format} wrote {} bytes before refusing", r.stdout.len());
        // Without validation the keys stream out as they are read (what follows the bad set is the reader's
        // business: trusted inputs only).
        let r = run(&["dump", s(&p), "--format", format, "--no-validate"], Feed::Null);
        let text = String::from_utf8_lossy(&r.stdout);
        assert!(text.contains("key:0") && text.contains("key:19999"), "dump --no-validate --format {format}");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdbkit"))
        .args(["dump", "-", "--format", "resp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "dump - wrote {} bytes before refusing", out.stdout.len());
}

/// A listpack backlen (the entry's length in 7-bit groups, most significant first, continuation bit on all but the
/// last byte).
fn lp_backlen(mut l: usize) -> Vec<u8> {
    let mut groups = Vec::new();
    loop {
        groups.push((l & 127) as u8);
        l >>= 7;
        if l == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    let mut out: Vec<u8> = groups.iter().enumerate().map(|(i, &g)| if i == last { g } else { g | 128 }).collect();
    out.reverse();
    out
}

/// Appends `lit` to an LZF stream as literal runs.
fn lzf_literals(c: &mut Vec<u8>, lit: &[u8]) {
    for part in lit.chunks(32) {
        c.push(part.len() as u8 - 1);
        c.extend_from_slice(part);
    }
}

/// A valid file of one hash (listpack, LZF-compressed) whose one value is `vlen` bytes of `x`: a genuine value of
/// 200 MB in a 2 MB file.
fn big_listpack_file(vlen: usize) -> Vec<u8> {
    let field = [0x81, b'f', 2];
    let entry = 5 + vlen;
    let back = lp_backlen(entry);
    let total = 6 + field.len() + 5 + vlen + back.len() + 1;
    let mut head = (total as u32).to_le_bytes().to_vec();
    head.extend_from_slice(&2u16.to_le_bytes());
    head.extend_from_slice(&field);
    head.push(0xF0);
    head.extend_from_slice(&(vlen as u32).to_le_bytes());
    let mut c = Vec::new();
    lzf_literals(&mut c, &head);
    let refs = (vlen - 1) / 264;
    c.extend_from_slice(&[0, b'x']);
    for _ in 0..refs {
        c.extend_from_slice(&[0xE0, 255, 0]);
    }
    let mut tail = vec![b'x'; vlen - 1 - refs * 264];
    tail.extend_from_slice(&back);
    tail.push(0xFF);
    lzf_literals(&mut c, &tail);
    let mut body = vec![0xFE, 0x00, 16];
    raw_str(&mut body, b"h");
    body.push(0xC3);
    len_enc(&mut body, c.len() as u64);
    len_enc(&mut body, total as u64);
    body.extend_from_slice(&c);
    rdb(&body)
}

/// Under a low address-space limit, a file with a big but genuine value is a clean error (exit 1, "cannot
/// allocate … bytes", the record's offset), never an abort: the reader's record buffer, LZF output, the writer's
/// record and dump's output all grow fallibly, and a value passed through is not copied.
#[test]
fn big_genuine_values_under_a_low_address_space_limit_fail_cleanly() {
    let dir = tmpdir();
    let out = dir.path().join("out.rdb");
    let clean = |r: &Run, what: &str| {
        assert!(matches!(r.code, Some(0 | 1)), "{what}: neither success nor a clean error: {}", r.describe());
        if r.code == Some(1) {
            assert!(
                r.stderr.contains("cannot allocate") && r.stderr.contains("error at byte"),
                "{what}: {}",
                r.describe()
            );
        }
    };
    // 200 MB of listpack in 2 MB: a command that holds it decompressed (dump, re-encoding) cannot have it under
    // 192 MiB of address space.
    let lp = big_listpack_file(200_000_000);
    let p = write(dir.path(), "big-listpack.rdb", &lp);
    let v = run(&["verify", s(&p)], Feed::Null);
    assert_eq!(v.code, Some(0), "a genuine file: {}", v.describe());
    for args in [
        vec!["verify", s(&p)],
        vec!["dump", s(&p)],
        vec!["dump", "--format", "resp", s(&p)],
        vec!["convert", "--rdb-version", "6", s(&p), "-o", s(&out)],
    ] {
        let r = run_with(&args, Feed::Null, Some(192 << 20));
        clean(&r, &format!("{args:?}"));
        if args[0] == "dump" {
            assert_eq!(r.code, Some(1), "{args:?} needs the value decompressed: {}", r.describe());
        }
    }
    // A raw 40 MB string: the record is read into one buffer, which 80 MiB of address space cannot hold beside the
    // binary's own.
    let mut body = vec![0xFE, 0x00, 0x00];
    raw_str(&mut body, b"big");
    raw_str(&mut body, &vec![b'y'; 40_000_000]);
    let p = write(dir.path(), "big-string.rdb", &rdb(&body));
    for args in
        [vec!["verify", s(&p)], vec!["dump", s(&p)], vec!["convert", "--rdb-version", "10", s(&p), "-o", s(&out)]]
    {
        let r = run_with(&args, Feed::Null, Some(80 << 20));
        clean(&r, &format!("{args:?} (40 MB string)"));
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.describe());
        assert!(r.stderr.contains("error at byte 11"), "{}", r.describe());
    }
    assert!(!out.exists(), "a failed convert leaves no output");
}
