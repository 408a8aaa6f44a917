//! The command line's conventions, checked on every command: exit codes (0 sound, 1 invalid input, 2 usage or
//! I/O, with a usage error writing nothing), `--json` output that parses, `-q` and `-v`, short wrapped help lines,
//! and the generated shell completions and man page.
#![cfg(feature = "cli")]

mod common;

use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn testdata(name: &str) -> PathBuf {
    common::testdata_dir().join(name)
}

fn rdbkit(args: &[&str]) -> Output {
    common::run_bounded(Command::new(env!("CARGO_BIN_EXE_rdbkit")).args(args), Duration::from_secs(60), "rdbkit")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The seven commands that read RDB files, each with arguments that succeed on `input` (writing into `dir`).
fn commands(input: &str, dir: &Path) -> Vec<(&'static str, Vec<String>)> {
    let d = p(dir).to_string();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        ("info", s(&["info", input])),
        ("verify", s(&["verify", input])),
        ("dump", s(&["dump", input])),
        ("convert", s(&["convert", input, "-o", &format!("{d}/c.rdb"), "--target", "redis-7.0"])),
        ("split", s(&["split", input, "--out-dir", &d, "--shards", "3", "--prefix", "s"])),
        ("export", s(&["export", input, "--out-dir", &d, "--prefix", "e", "--blob", "gzip"])),
        ("import", s(&["import", input, "-o", &format!("{d}/i.rdb"), "--target", "redis-7.0"])),
    ]
}

fn run(args: &[String]) -> Output {
    rdbkit(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let input = testdata("redis-7.0.rdb");
    let input = p(&input);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.rdb");
    let out = p(&out);
    let d = p(dir.path());
    let writing: [&[&str]; 4] = [
        &["convert", input, "-o", out],
        &["split", input, "--out-dir", d, "--shards", "2"],
        &["export", input, "--out-dir", d, "--prefix", "x"],
        &["import", input, "-o", out],
    ];
    let bad: [(&[&str], &str); 6] = [
        (&["--target", "redis-99"], "unknown target server \"redis-99\""),
        (&["--target", "redis-1.0"], "unknown target server \"redis-1.0\""),
        (&["--rdb-version", "13"], "RDB version 13 is not one rdbkit writes"),
        (&["--rdb-version", "99"], "RDB version 99 is not one rdbkit writes"),
        (&["--tier", "zz"], "unknown tier"),
        (&["--move-db", "3"], "--move-db takes FROM:TO"),
    ];
    let mut cases: Vec<(Vec<&str>, &str)> = Vec::new();
    for cmd in writing {
        for (extra, want) in bad {
            let mut a = cmd.to_vec();
            a.extend_from_slice(extra);
            if cmd[0] == "import" && !extra.contains(&"--target") {
                a.extend_from_slice(&["--target", "redis-7.0"]);
            }
            cases.push((a, want));
        }
    }
    for cmd in ["split", "export", "import"] {
        for (n, want) in
            [("0", "0 shards: a cluster has 1 to 16384"), ("16385", "16385 shards: a cluster has 1 to 16384")]
        {
            let mut a = vec![cmd, input, "--out-dir", d, "--shards", n];
            match cmd {
                "import" => a.extend_from_slice(&["--target", "redis-7.0"]),
                _ => a.extend_from_slice(&["--prefix", "x"]),
            }
            cases.push((a, want));
        }
    }
    let more: [(&[&str], &str); 12] = [
        (&["convert", input, "-o", out, "--target", "redis-6.2", "--rdb-version", "9"], "not both"),
        (&["convert", input, "-o", out, "--type", "blob"], "unknown --type"),
        (&["split", input, "--out-dir", d], "give --shards N or --nodes FILE"),
        (&["import", input, "--target", "redis-7.0"], "needs -o OUT"),
        (&["import", input, "--target", "redis-7.0", "-o", out, "--out-dir", d], "--out-dir is for a cluster"),
        (&["dump", input, "--restore"], "--restore needs --format resp"),
        (&["dump", input, "--json", "--format", "resp"], "--json writes JSON lines"),
        (&["verify", input, "-q", "-v"], "cannot be used with"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["verify"], "required arguments were not provided"),
        (&["completions", "tcsh"], "invalid value 'tcsh'"),
        (&["verify", "/nonexistent/x.rdb"], "cannot open"),
    ];
    cases.extend(more.iter().map(|(a, w)| (a.to_vec(), *w)));
    for (args, want) in &cases {
        let o = rdbkit(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in {err}");
        assert!(!err.contains("error at byte"), "{args:?}: a usage error is not about the input: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: printed {:?}", text(&o.stdout));
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "usage errors wrote {left:?}");
}

#[test]
fn invalid_input_exits_1_and_sound_input_0_on_every_command() {
    let corrupt = testdata("corrupt-dump/003-invalid-zlbytes-header.rdb");
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in commands(p(&corrupt), dir.path()) {
        let o = run(&args);
        let err = text(&o.stderr);
        // `info` describes what it can without decoding values, so a damaged value is not its concern.
        let want = if name == "info" { 0 } else { 1 };
        assert_eq!(o.status.code(), Some(want), "{name} on a corrupt file: {err}");
        if want == 1 {
            assert!(err.contains("error at byte 17"), "{name}: {err}");
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "an invalid input publishes nothing");
    let sound = testdata("redis-7.0.rdb");
    for (name, args) in commands(p(&sound), dir.path()) {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
    }
    // A truncated file and a file that is not an RDB at all are invalid input too.
    let whole = std::fs::read(&sound).unwrap();
    let cut = dir.path().join("cut.rdb");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let junk = dir.path().join("junk.rdb");
    std::fs::write(&junk, b"hello, not an rdb").unwrap();
    for f in [&cut, &junk] {
        assert_eq!(rdbkit(&["verify", p(f)]).status.code(), Some(1), "{}", f.display());
    }
}

#[test]
fn json_on_every_command_is_valid_json() {
    let sound = testdata("redis-7.0.rdb");
    let dir = tempfile::tempdir().unwrap();
    for (name, mut args) in commands(p(&sound), dir.path()) {
        // The flag is global: after the arguments, and before the command's name.
        for front in [false, true] {
            if front {
                args.insert(0, "--json".into());
            } else {
                args.push("--json".into());
            }
            let o = run(&args);
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
            let out = text(&o.stdout);
            let docs: Vec<J> = if name == "dump" {
                out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}"))).collect()
            } else {
                vec![serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))]
            };
            assert!(!docs.is_empty() && docs.iter().all(J::is_object), "{args:?}: {out}");
            if name == "verify" {
                assert_eq!(docs[0]["ok"], true, "{out}");
                assert_eq!(docs[0]["keys"], 54, "{out}");
                assert_eq!(docs[0]["checksum"], "ok", "{out}");
            }
            args.retain(|a| a != "--json");
        }
    }
    // A dry run reports in JSON too, and an invalid file gets verify's verdict as an object (and exit 1).
    let o = rdbkit(&["import", p(&sound), "--dry-run", "--target", "redis-7.0", "--json", "-o", "x.rdb"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: J = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dry_run"], true, "{v}");
    let corrupt = testdata("corrupt-dump/003-invalid-zlbytes-header.rdb");
    let o = rdbkit(&["verify", "--json", p(&corrupt)]);
    assert_eq!(o.status.code(), Some(1));
    let v: J = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().starts_with("error at byte 17: corrupt ziplist"), "{v}");
    assert!(text(&o.stderr).contains("error at byte 17"), "the error is on stderr too");
}

#[test]
fn quiet_and_verbose_on_every_command() {
    let sound = testdata("redis-7.0.rdb");
    let dir = tempfile::tempdir().unwrap();
    for (name, mut args) in commands(p(&sound), dir.path()) {
        args.push("-q".into());
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{name} -q: {}", text(&o.stderr));
        assert!(o.stderr.is_empty(), "{name} -q wrote on stderr: {}", text(&o.stderr));
        let out = text(&o.stdout);
        match name {
            "verify" => assert!(out.is_empty(), "verify -q: {out}"),
            "convert" | "split" | "export" | "import" => assert_eq!(out.lines().count(), 1, "{name} -q: {out}"),
            _ => assert!(!out.is_empty(), "{name} -q still prints its result"),
        }
        args.pop();
        args.insert(0, "--verbose".into());
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{name} -v: {}", text(&o.stderr));
        let err = text(&o.stderr);
        let size = std::fs::metadata(&sound).unwrap().len();
        assert!(err.contains(&format!("a regular file of {size} bytes, REDIS0010")), "{name} -v: {err}");
        assert!(err.contains("finished in"), "{name} -v: {err}");
    }
    // What -q leaves out: the warning about bytes past the trailing limit (info and verify print it).
    let padded = dir.path().join("padded.rdb");
    let mut bytes = std::fs::read(&sound).unwrap();
    bytes.resize(bytes.len() + (2 << 20), 0);
    std::fs::write(&padded, &bytes).unwrap();
    for cmd in ["info", "verify"] {
        let loud = rdbkit(&[cmd, p(&padded)]);
        assert!(text(&loud.stderr).contains("warning: more than"), "{cmd}: {}", text(&loud.stderr));
        let o = rdbkit(&[cmd, "-q", p(&padded)]);
        assert_eq!(o.status.code(), Some(0));
        assert!(o.stderr.is_empty(), "{cmd} -q: {}", text(&o.stderr));
    }
}

#[test]
fn help_lines_are_short_and_wrapped() {
    let top = rdbkit(&["-h"]);
    assert_eq!(top.status.code(), Some(0));
    let mut pages = vec![("-h".to_string(), text(&top.stdout))];
    for cmd in
        ["info", "verify", "dump", "convert", "split", "export", "import", "load", "report", "diff", "completions"]
    {
        for flag in ["-h", "--help"] {
            let o = rdbkit(&[cmd, flag]);
            assert_eq!(o.status.code(), Some(0), "{cmd} {flag}");
            pages.push((format!("{cmd} {flag}"), text(&o.stdout)));
        }
    }
    for (what, page) in &pages {
        for line in page.lines() {
            assert!(line.chars().count() <= 100, "{what}: a line of {} columns: {line}", line.chars().count());
        }
    }
    // The command list holds one line per command.
    let listing = &pages[0].1;
    let commands = listing.split("Commands:").nth(1).unwrap().split("Options:").next().unwrap();
    assert_eq!(commands.lines().filter(|l| !l.trim().is_empty()).count(), 12, "{commands}");
    assert!(!listing.contains("  man "), "man is hidden");
    // -h is the short form: verify's detail is under --help only.
    let short = &pages.iter().find(|(w, _)| w == "verify -h").unwrap().1;
    let long = &pages.iter().find(|(w, _)| w == "verify --help").unwrap().1;
    assert!(long.contains("sanitize-dump-payload") && !short.contains("sanitize-dump-payload"), "{short}");
}

#[test]
fn completions_and_man_page_come_from_the_definition() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = rdbkit(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", text(&o.stderr));
        let script = text(&o.stdout);
        for word in ["rdbkit", "verify", "split", "rdb-version", "json"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rdbkit.bash");
    std::fs::write(&script, rdbkit(&["completions", "bash"]).stdout).unwrap();
    let o = common::run_bounded(Command::new("bash").arg("-n").arg(&script), Duration::from_secs(30), "bash -n");
    assert!(o.status.success(), "bash -n: {}", text(&o.stderr));

    let o = rdbkit(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let page = text(&o.stdout);
    assert!(page.contains(".TH rdbkit 1"), "{page}");
    assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"), "{page}");
    for cmd in ["info", "verify", "dump", "convert", "split", "export", "import", "load", "report", "diff"] {
        assert!(page.contains(&format!("rdbkit\\-{cmd}")), "the man page lists {cmd}");
    }
}
