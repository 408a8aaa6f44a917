//! Inputs that must not hang, crash or flood the machine: stdin and other streams (checked at byte 0, spooled
//! only when a job reads them twice, the spool unlinked at once), FIFOs and devices, files truncated while they
//! are read, gzip damage named by both offsets, usage errors, `--nodes` files. The CLI tests spawn the built
//! binary with a deadline, so a hang fails the test instead of hanging it.

mod common;

use rdbkit::input::Input;
use rdbkit::read::{ChunkedReader, ReadOptions, Record, SliceReader};
use rdbkit::transform::{RecordSink, drive};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rdbkit"))
}

/// Waits for `child` at most `secs` seconds (draining its piped output meanwhile); kills it and fails the test on
/// a timeout.
fn wait_for(mut child: Child, secs: u64, what: &str) -> Output {
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap();
            panic!("{what}: still running after {secs} s (stderr: {})", String::from_utf8_lossy(&err));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

fn run(cmd: &mut Command, secs: u64, what: &str) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    wait_for(child, secs, what)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixture() -> PathBuf {
    common::testdata_dir().join("redis-7.0.rdb")
}

/// A synthetic RDB 11 file of `n` string keys with 100-byte values, checksum disabled (0).
fn synthetic(n: usize) -> Vec<u8> {
    let mut v = b"REDIS0011\xfe\x00".to_vec();
    for i in 0..n {
        v.push(0); // string
        let key = format!("key:{i:010}");
        v.push(key.len() as u8);
        v.extend_from_slice(key.as_bytes());
        v.extend_from_slice(&[0x40, 100]); // 14-bit length 100
        v.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, 100));
    }
    v.push(0xff);
    v.extend_from_slice(&[0; 8]);
    v
}

/// Records (offset, length) fed to a sink.
#[derive(Default)]
struct Collect(Vec<(u64, usize)>);

impl RecordSink for Collect {
    fn record(&mut self, rec: &Record<'_>) -> rdbkit::Result<()> {
        self.0.push((rec.offset, rec.raw.len()));
        Ok(())
    }
    fn finish(&mut self) -> rdbkit::Result<()> {
        Ok(())
    }
}

type Outcome = (Vec<(u64, usize)>, Result<(String, u64), String>);

fn by_slice(data: &[u8], opts: ReadOptions) -> Outcome {
    let mut c = Collect::default();
    let r = SliceReader::with_options(data, opts).map_err(|e| e.to_string()).and_then(|mut r| {
        drive(&mut r, &mut c).map_err(|e| e.to_string())?;
        Ok((r.checksum().unwrap().status().to_string(), r.trailing().unwrap().len))
    });
    (c.0, r)
}

fn by_chunks(data: &[u8], opts: ReadOptions, chunk: usize) -> Outcome {
    let mut c = Collect::default();
    let src = Box::new(std::io::Cursor::new(data.to_vec()));
    let r = ChunkedReader::with_chunk(src, opts, chunk).map_err(|e| e.to_string()).and_then(|mut r| {
        r.drive(&mut c).map_err(|e| e.to_string())?;
        Ok((r.checksum().unwrap().status().to_string(), r.trailing().unwrap().len))
    });
    (c.0, r)
}

#[test]
fn chunked_reader_agrees_with_the_slice_reader() {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(common::testdata_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
        .map(|p| (common::short(&p), common::read(&p)))
        .collect();
    if let Some(corpus) = common::corpus_dir() {
        for p in common::corpus_inputs(&corpus) {
            let d = common::read(&p);
            if !d.starts_with(&[0x1f, 0x8b]) && d.len() < 1 << 20 {
                files.push((common::short(&p), d));
            }
        }
    }
    // Damaged copies of one fixture: cut short, and bytes changed.
    let base = common::read(&fixture());
    for cut in [0, 5, 9, 10, 100, 4097, base.len() / 2, base.len() - 9, base.len() - 1] {
        files.push((format!("cut at {cut}"), base[..cut].to_vec()));
    }
    for at in [20, 300, 5000, base.len() / 3, base.len() - 5] {
        let mut d = base.clone();
        d[at] ^= 0x5a;
        files.push((format!("flip at {at}"), d));
    }
    let mut padded = base.clone();
    padded.extend_from_slice(&[0; 3000]);
    files.push(("padded".into(), padded));
    assert!(files.len() > 15);
    for (name, data) in &files {
        for opts in [ReadOptions::default(), ReadOptions::fast()] {
            let want = by_slice(data, opts);
            for chunk in [64, 1000, 1 << 16] {
                let got = by_chunks(data, opts, chunk);
                assert_eq!(got.0, want.0, "{name}, chunk {chunk}, deep {}: records", opts.deep);
                assert_eq!(got.1, want.1, "{name}, chunk {chunk}, deep {}: outcome", opts.deep);
            }
        }
    }
}

#[test]
fn a_file_truncated_after_open_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rdb");
    let data = synthetic(40_000);
    std::fs::write(&path, &data).unwrap();
    let input = Input::open(&path).unwrap();
    // Cut the file under the open input: a mapped reader would fault here (SIGBUS); this one must report a
    // truncated input, on both the parallel and the serial path.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(data.len() as u64 / 2).unwrap();
    for parallel in [true, false] {
        let mut c = Collect::default();
        let e = input.drive(ReadOptions::default(), &mut c, parallel).unwrap_err();
        assert!(e.is_truncated(), "parallel {parallel}: {e}");
        assert!(!c.0.is_empty() && c.0.len() < 40_000, "parallel {parallel}: {} records", c.0.len());
    }
}

#[test]
fn truncating_a_file_while_the_cli_reads_it_is_an_error_not_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rdb");
    let data = synthetic(300_000); // ~35 MB
    for round in 0..3 {
        std::fs::write(&path, &data).unwrap();
        let child = bin()
            .args(["dump", "--format", "json"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + 40 * round));
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(4096).unwrap();
        let out = wait_for(child, 120, "dump of a truncated file");
        // Exit 0 if it finished before the cut, 1 with a message after it; never killed by a signal.
        let code = out.status.code();
        assert!(code == Some(0) || code == Some(1), "round {round}: {:?} {}", out.status, stderr(&out));
        if code == Some(1) {
            assert!(stderr(&out).contains("error at byte"), "{}", stderr(&out));
        }
    }
}

#[test]
fn zeros_on_stdin_or_as_a_file_are_refused_at_byte_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["convert", "-", "-o"],
        vec!["split", "-", "--shards", "3", "--out-dir"],
        vec!["export", "-", "--prefix", "p", "--out-dir"],
        vec!["import", "-", "--target", "redis-7.0", "-o"],
    ] {
        let dest = out_dir.path().join("x.rdb");
        let mut cmd = bin();
        cmd.args(&args);
        cmd.arg(if args[0] == "convert" || args[0] == "import" { dest.clone() } else { out_dir.path().into() });
        let child = cmd
            .env("TMPDIR", tmp.path())
            .stdin(std::fs::File::open("/dev/zero").unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_for(child, 30, &format!("{} of /dev/zero on stdin", args[0]));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error at byte 0") && stderr(&out).contains("bad magic"), "{}", stderr(&out));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "{args:?}: something left in TMPDIR");
    }
    for cmd in ["verify", "info"] {
        let out = run(bin().args([cmd, "/dev/zero"]), 30, "/dev/zero as a file");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("error at byte 0"), "{}", stderr(&out));
    }
    let out = run(bin().args(["convert", "/dev/zero", "-o"]).arg(out_dir.path().join("y.rdb")), 30, "convert");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// The spool of a process: the links in /proc/PID/fd that point at `dir/rdbkit-stdin-*`.
fn spool_links(pid: u32, dir: &Path) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|l| l.display().to_string())
        .filter(|l| l.starts_with(&format!("{}/rdbkit-stdin-", dir.display())))
        .collect()
}

#[test]
fn stdin_twice_read_is_spooled_under_a_recognisable_unlinked_name() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path().canonicalize().unwrap();
    let data = common::read(&fixture());
    // To stdout: the job checks everything before writing, then writes: two passes over stdin.
    let mut child = bin()
        .args(["convert", "-", "-o", "-", "--quiet"])
        .env("TMPDIR", &tmp_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data[..data.len() / 2]).unwrap();
    stdin.flush().unwrap();
    // While the first pass waits for the rest, the spool is open, named rdbkit-stdin-*, and already unlinked.
    let deadline = Instant::now() + Duration::from_secs(30);
    let links = loop {
        let l = spool_links(child.id(), &tmp_path);
        if !l.is_empty() || Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(links.len(), 1, "no spool open: {links:?}");
    assert!(links[0].ends_with(" (deleted)"), "spool not unlinked: {links:?}");
    assert_eq!(std::fs::read_dir(&tmp_path).unwrap().count(), 0, "a spool name is left in TMPDIR");
    stdin.write_all(&data[data.len() / 2..]).unwrap();
    drop(stdin);
    let out = wait_for(child, 60, "convert - -o -");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut r = SliceReader::new(&out.stdout).unwrap();
    let n = r.by_ref().filter(|r| matches!(r.as_ref().unwrap().kind, rdbkit::read::RecordKind::Entry(_))).count();
    assert_eq!(n, 54);
    assert_eq!(std::fs::read_dir(&tmp_path).unwrap().count(), 0);
}

#[test]
fn stdin_read_once_is_not_spooled() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let data = common::read(&fixture());
    let mut child = bin()
        .args(["split", "-", "--shards", "3", "--quiet", "--out-dir"])
        .arg(out_dir.path())
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data[..data.len() / 2]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(spool_links(child.id(), &tmp.path().canonicalize().unwrap()).is_empty(), "split spooled stdin");
    stdin.write_all(&data[data.len() / 2..]).unwrap();
    drop(stdin);
    let out = wait_for(child, 60, "split -");
    assert!(out.status.success(), "{}", stderr(&out));
    let shards = std::fs::read_dir(out_dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "rdb"));
    assert_eq!(shards.count(), 3);
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(st.success());
}

/// Writes `data` into the FIFO at `path` from a thread (opening it blocks until the reader opens it).
fn feed_fifo(path: &Path, data: Vec<u8>) -> std::thread::JoinHandle<()> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = f.write_all(&data);
        }
    })
}

#[test]
fn fifos_and_process_substitution_are_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::read(&fixture());
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        e.finish().unwrap()
    };
    let cases: Vec<(&str, Vec<&str>, bool)> = vec![
        ("verify", vec!["verify"], false),
        ("info", vec!["info", "--json"], false),
        ("convert", vec!["convert", "-o", "OUT"], false),
        ("convert gz", vec!["convert", "-o", "OUT"], true),
        ("convert to stdout", vec!["convert", "--quiet", "-o", "-"], false),
        ("split", vec!["split", "--shards", "2", "--quiet", "--out-dir", "DIR"], false),
    ];
    for (i, (what, args, gzip)) in cases.into_iter().enumerate() {
        let fifo = dir.path().join(format!("in{i}.fifo"));
        mkfifo(&fifo);
        let feeder = feed_fifo(&fifo, if gzip { gz.clone() } else { data.clone() });
        let out_file = dir.path().join(format!("out{i}.rdb"));
        let out_dir = dir.path().join(format!("dir{i}"));
        std::fs::create_dir(&out_dir).unwrap();
        let mut cmd = bin();
        cmd.arg(args[0]).arg(&fifo);
        for a in &args[1..] {
            match *a {
                "OUT" => cmd.arg(&out_file),
                "DIR" => cmd.arg(&out_dir),
                a => cmd.arg(a),
            };
        }
        let out = run(&mut cmd, 60, what);
        feeder.join().unwrap();
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        if args.contains(&"OUT") {
            // The same bytes as converting the regular file.
            let plain = dir.path().join(format!("plain{i}.rdb"));
            let o = run(bin().arg("convert").arg(fixture()).arg("-o").arg(&plain), 60, "convert the file");
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(std::fs::read(&out_file).unwrap(), std::fs::read(&plain).unwrap(), "{what}");
        }
        if *args.last().unwrap() == "-" {
            assert!(SliceReader::new(&out.stdout).is_ok());
        }
        if what == "info" {
            assert!(String::from_utf8_lossy(&out.stdout).contains("REDIS0010"));
        }
    }
    // Process substitution: the shell hands over a pipe as /dev/fd/N.
    let script = format!("{} verify <(cat {})", env!("CARGO_BIN_EXE_rdbkit"), fixture().display());
    let out = run(Command::new("bash").args(["-c", &script]), 60, "verify <(cat …)");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("54 keys"));
}

#[test]
fn library_streams_are_checked_at_open_and_replayed_by_spooling_passes() {
    // A stream that is not an RDB file: refused having read only its first bytes.
    struct Endless(u64);
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            buf.fill(b'x');
            Ok(buf.len())
        }
    }
    let e = Input::from_stream("endless", Endless(0)).unwrap_err();
    assert_eq!(e.offset(), Some(0), "{e}");
    // A good stream: a spooling pass, then the writing pass, see the same records.
    let data = common::read(&fixture());
    let input = Input::from_stream("s", std::io::Cursor::new(data.clone())).unwrap();
    assert!(input.is_stream());
    let first = input
        .with_source(ReadOptions::default(), |s| {
            let mut c = Collect::default();
            drive(s, &mut c)?;
            Ok(c.0)
        })
        .unwrap();
    let mut second = Collect::default();
    input.drive(ReadOptions::default(), &mut second, true).unwrap();
    assert_eq!(first, second.0);
    assert_eq!(first, by_slice(&data, ReadOptions::default()).0);
    // A stream driven (not spooled) cannot be read a second time: a clear error, not wrong data.
    let once = Input::from_stream("once", std::io::Cursor::new(data)).unwrap();
    once.drive(ReadOptions::default(), &mut Collect::default(), false).unwrap();
    let e = once.drive(ReadOptions::default(), &mut Collect::default(), false).unwrap_err();
    assert!(e.to_string().contains("already read"), "{e}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let out = dir.path().join("o.rdb");
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["split".into(), f.clone().into(), "--shards".into(), "0".into(), "--out-dir".into(), dir.path().into()],
        vec![
            "split".into(),
            f.clone().into(),
            "--shards".into(),
            "16385".into(),
            "--out-dir".into(),
            dir.path().into(),
        ],
        vec![
            "export".into(),
            f.clone().into(),
            "--prefix".into(),
            "p".into(),
            "--shards".into(),
            "0".into(),
            "--out-dir".into(),
            dir.path().into(),
        ],
        vec!["convert".into(), f.clone().into(), "-o".into(), out.clone().into(), "--rdb-version".into(), "13".into()],
        vec!["convert".into(), f.clone().into(), "-o".into(), out.clone().into(), "--rdb-version".into(), "99".into()],
        vec!["convert".into(), f.clone().into(), "-o".into(), out.clone().into(), "--rdb-version".into(), "0".into()],
        vec![
            "convert".into(),
            f.clone().into(),
            "-o".into(),
            out.clone().into(),
            "--target".into(),
            "redis-1.0".into(),
        ],
        vec!["convert".into(), f.clone().into(), "-o".into(), out.clone().into(), "--target".into(), "redis-99".into()],
        vec!["import".into(), f.clone().into(), "-o".into(), out.clone().into(), "--target".into(), "valkey-1".into()],
    ];
    for args in cases {
        let o = run(bin().args(&args), 30, "usage error");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("error at byte"), "{args:?}: {}", stderr(&o));
        assert!(!out.exists());
    }
    // The bounds themselves are accepted.
    let o = run(bin().args(["convert"]).arg(&f).arg("-o").arg(&out).args(["--rdb-version", "11"]), 30, "ok");
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn gzip_damage_names_both_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::read(&fixture());
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&data).unwrap();
    let gz = e.finish().unwrap();
    let mut garbage = gz.clone();
    garbage.extend_from_slice(b"this is not another gzip member");
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff; // CRC32 of the member
    for (what, bytes) in [("trailing garbage", garbage), ("bad CRC32", bad_crc)] {
        let p = dir.path().join("x.rdb.gz");
        std::fs::write(&p, &bytes).unwrap();
        for cmd in ["verify", "info"] {
            let o = run(bin().arg(cmd).arg(&p), 30, what);
            assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
            let msg = stderr(&o);
            assert!(msg.contains("compressed byte") && msg.contains("uncompressed byte"), "{what}: {msg}");
        }
        let o = run(bin().arg("convert").arg(&p).arg("-o").arg(dir.path().join("o.rdb")), 30, what);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains("compressed byte"), "{what}: {}", stderr(&o));
    }
}

/// A `nodes.conf` of `n` masters with contiguous slot ranges.
fn nodes_conf(n: usize) -> String {
    let layout = rdbkit::cluster::ShardLayout::even(n).unwrap();
    let mut s = String::new();
    for (i, sh) in layout.shards().iter().enumerate() {
        let ranges: Vec<String> = sh.ranges.iter().map(|r| r.to_string()).collect();
        s.push_str(&format!(
            "{:040x} 10.0.{}.{}:6379@16379 master - 0 0 {} connected {}\n",
            i + 1,
            i / 250,
            i % 250,
            i + 1,
            ranges.join(" ")
        ));
    }
    s.push_str("vars currentEpoch 1 lastVoteEpoch 0\n");
    s
}

#[test]
fn nodes_files_are_bounded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let split = |nodes: &Path| {
        let mut c = bin();
        c.arg("split").arg(fixture()).arg("--nodes").arg(nodes).arg("--out-dir").arg(&out_dir).arg("--quiet");
        run(&mut c, 60, "split --nodes")
    };
    let o = split(Path::new("/dev/zero"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nodes"), "{}", stderr(&o));
    let huge = dir.path().join("huge.conf");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(1 << 30).unwrap(); // sparse
    let o = split(&huge);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // The same master id twice.
    let mut conf = nodes_conf(2);
    let first_id = conf[..40].to_string();
    conf = conf.replacen(&format!("{:040x}", 2), &first_id, 1);
    let dup = dir.path().join("dup.conf");
    std::fs::write(&dup, conf).unwrap();
    let o = split(&dup);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("twice") || stderr(&o).contains("duplicate"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
}

/// Peak RSS (KiB) of `args` run under /usr/bin/time, or `None` when /usr/bin/time is absent.
fn peak_rss_kib(args: &[&std::ffi::OsStr]) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(time);
    cmd.arg("-o").arg(report.path()).args(["-f", "%M"]).arg(env!("CARGO_BIN_EXE_rdbkit")).args(args);
    let out = run(&mut cmd, 300, "peak RSS run");
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let text = std::fs::read_to_string(report.path()).unwrap();
    Some(text.lines().last().unwrap().trim().parse().unwrap())
}

#[test]
fn memory_does_not_follow_the_file_size() {
    // A file larger than the bounds: a reader that maps (or buffers) the file would exceed them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rdb");
    std::fs::write(&path, synthetic(800_000)).unwrap(); // ~93 MB
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let p = path.as_os_str();
    // Deep validation's duplicate-key check holds 10.7-21.3 bytes per key for a file (one 64-bit hash per slot, at
    // most 3/4 full, 1.5 times that while the table doubles; see rdbkit::read::dupkeys): that part grows with the
    // number of keys, not with the file size. The bound allows 43 bytes per key.
    let dup_table_mib = (800_000 * 43u64).div_ceil(1 << 20);
    let cases: [(&[&std::ffi::OsStr], u64); 4] = [
        (&["info".as_ref(), p], 64),
        (&["verify".as_ref(), "--no-duplicate-check".as_ref(), p], 64),
        (&["verify".as_ref(), p], 64 + dup_table_mib),
        (
            &[
                "split".as_ref(),
                p,
                "--shards".as_ref(),
                "3".as_ref(),
                "--quiet".as_ref(),
                "--out-dir".as_ref(),
                out_dir.as_os_str(),
            ],
            96 + dup_table_mib,
        ),
    ];
    for (args, mib) in cases {
        let Some(kib) = peak_rss_kib(args) else {
            println!("skipped: /usr/bin/time not installed");
            return;
        };
        assert!(kib < mib * 1024, "{args:?}: peak RSS {kib} KiB, bound {mib} MiB");
    }
}

#[test]
fn a_refusal_on_stdin_names_what_the_target_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.rdb");
    let child = bin()
        .args(["convert", "-", "--target", "redis-6.2", "-o"])
        .arg(&out)
        .stdin(std::fs::File::open(fixture()).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_for(child, 60, "convert - --target redis-6.2");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be written to REDIS0009"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn many_shards_split_under_a_low_soft_open_file_limit() {
    // 3000 shard outputs open at once, under a soft limit of 1024 open files (a common default): rdbkit raises
    // its soft limit to the hard one. The hard limit stays what it was, so this needs a hard limit above 3000.
    let mut hard = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct passed to it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) } != 0 || hard.rlim_max < 4096 {
        println!("skipped: the hard open-file limit is below 4096");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.rdb");
    std::fs::write(&input, synthetic(20_000)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let max = hard.rlim_max;
    let mut cmd = bin();
    cmd.arg("split").arg(&input).args(["--shards", "3000", "--quiet", "--out-dir"]).arg(&out);
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and the closure only uses its own copy of the limits.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: 1024, rlim_max: max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "split into 3000 shards: {}", String::from_utf8_lossy(&o.stderr));
    let shards = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("-shard-"))
        .count();
    assert_eq!(shards, 3000);
}

#[test]
fn a_duplicate_key_far_apart_in_a_large_file_is_confirmed_and_named() {
    // 100k keys (~12 MB, read by the chunked reader), then a second copy of the first key in another database
    // (fine) and in the same database (refused): the reader keeps one hash per key and confirms the repeat by
    // reading the file again, so the message names the earlier copy's offset.
    let mut v = synthetic(100_000);
    v.truncate(v.len() - 9); // EOF and checksum
    let first = b"REDIS0011\xfe\x00".len() as u64;
    let copy = [&[0u8, 14][..], b"key:0000000000", &[0x01, b'x']].concat();
    v.extend_from_slice(&[0xfe, 0x01]);
    v.extend_from_slice(&copy);
    v.extend_from_slice(&[0xfe, 0x00]);
    let dup_at = v.len() as u64;
    v.extend_from_slice(&copy);
    v.push(0xff);
    v.extend_from_slice(&[0; 8]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.rdb");
    std::fs::write(&path, &v).unwrap();
    let o = bin().arg("verify").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("error at byte {dup_at}")), "{err}");
    assert!(err.contains(&format!("in this database at byte {first}")), "{err}");
    // Without the second copy in database 0 the file is fine.
    v.truncate(dup_at as usize);
    v.push(0xff);
    v.extend_from_slice(&[0; 8]);
    std::fs::write(&path, &v).unwrap();
    let o = bin().arg("verify").arg(&path).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
