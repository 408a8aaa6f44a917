//! Putting outputs where they belong without harming anything else: one writer per destination ([`DestLock`]),
//! special files written through rather than replaced ([`output_target`]), file-name prefixes kept inside their
//! directory ([`valid_prefix`]), and sets of files that appear all at once ([`FileSet`]).
//!
//! # How a set of files is published
//!
//! A split or sharded export writes `P-shard-NNN` files and a manifest `P.manifest.json` naming them, into a
//! directory that may hold other files. Renaming N files is never one atomic step, so the manifest is the commit
//! point and the files of each run are named by a *generation* (16 hex digits, new for every run):
//!
//! 1. take the destination's lock (`.P.rdbkit-lock`), and remove what killed runs of this prefix left: temporary
//!    files (`.NAME.XXXXXX.rdbkit-tmp`) and generation files the current manifest does not name;
//! 2. write every file of the set to a temporary file, fsync it and rename it to its generation name,
//!    `P-gGGGGGGGGGGGGGGGG-shard-NNN.rdb` — no manifest names it yet, so no reader sees it;
//! 3. sync the directory, then write the new manifest to a temporary file, fsync it and rename it over
//!    `P.manifest.json` (then sync the directory): from this rename on, readers see the whole new set;
//! 4. remove the previous set (files of this prefix of any other generation, and the files an older manifest
//!    named `P-shard-NNN.rdb`), then the lock.
//!
//! A reader that reads the manifest and then the files it names gets one generation, never a mix. Whatever fails
//! before step 3 completes — a write error, ENOSPC, a directory where the manifest goes, a signal — removes this
//! run's files and leaves the old set as it was. After a `kill -9`, only files with the recognisable names above
//! can be left, and the next run with the same prefix removes them in step 1.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::atomic::{AtomicFile, TEMP_SUFFIX, sync_dir};
use super::cleanup::Registration;

/// The suffix of a destination's lock file (`.STEM.rdbkit-lock`).
pub const LOCK_SUFFIX: &str = ".rdbkit-lock";

/// Whether `prefix` is one normal file-name component: not empty, no `/` (or NUL), not `.`/`..`, not hidden
/// (a leading `.` would be taken for rdbkit's own temporary and lock files).
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty() && !prefix.starts_with('.') && !prefix.contains(['/', '\0']) && !prefix.contains('\\')
}

/// An exclusive lock on a destination (a file name or a prefix in a directory), held until dropped.
///
/// The lock is `flock(2)` on `DIR/.STEM.rdbkit-lock`, which holds the owner's pid for the message of a run that
/// finds it busy. Dropping the lock removes the file; a lock file left by a killed run is taken over (the kernel
/// released its lock) and removed in turn.
#[derive(Debug)]
pub struct DestLock {
    dir: PathBuf,
    path: PathBuf,
    _file: File,
    _reg: Registration,
}

impl DestLock {
    /// Takes the lock of `stem` in `dir`, or fails at once with [`io::ErrorKind::WouldBlock`] and a message
    /// naming the pid that holds it.
    pub fn acquire(dir: &Path, stem: &str) -> io::Result<DestLock> {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let path = dir.join(format!(".{stem}{LOCK_SUFFIX}"));
        // Another run may remove the file between our open and our flock: then the lock is on a dead inode, so
        // check the path still names what we locked, and retry if not.
        for _ in 0..100 {
            let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(
                |e| match e.kind() {
                    io::ErrorKind::NotFound => {
                        io::Error::new(e.kind(), format!("{}: no such directory for the output", dir.display()))
                    }
                    _ => io::Error::new(e.kind(), format!("{}: {e}", path.display())),
                },
            )?;
            if let Err(e) = lock_exclusive(&file) {
                if e.kind() == io::ErrorKind::WouldBlock {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let who = match text.trim().parse::<u32>() {
                        Ok(pid) => format!("pid {pid}"),
                        Err(_) => "another process".to_string(),
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!("{}: busy: another rdbkit run ({who}) is writing this destination", path.display()),
                    ));
                }
                return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
            }
            if !same_inode(&file, &path) {
                continue;
            }
            // Best effort: on a full disk the lock holds without the pid (and the run fails at its first write).
            let _ = file.set_len(0).and_then(|_| writeln!(file, "{}", std::process::id()));
            let reg = Registration::new(&path);
            return Ok(DestLock { dir: dir.to_path_buf(), path, _file: file, _reg: reg });
        }
        Err(io::Error::other(format!("{}: could not take the lock", path.display())))
    }

    /// The directory of the destination.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DestLock {
    fn drop(&mut self) {
        // Remove before closing (which releases the lock): a waiting run then finds the path gone or new.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn lock_exclusive(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn lock_exclusive(_: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn same_inode(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_: &File, path: &Path) -> bool {
    path.exists()
}

/// Where the bytes of an output path go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// Standard output: `-`, `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`.
    Stdout,
    /// An existing file that is not a regular file (a device node, FIFO, socket, `>(cmd)`), or a file reached
    /// through `/dev` or `/proc` (`/dev/fd/N`): opened and written through, never replaced.
    Through(PathBuf),
    /// A regular file (existing or not) replaced atomically; symlinks are resolved, so the link stays and its
    /// target gets the new content.
    Replace(PathBuf),
}

/// Decides how to write `path` (see [`OutputTarget`]).
///
/// # Errors
/// A directory, a dangling symlink, or a path that cannot be examined.
pub fn output_target(path: &Path) -> io::Result<OutputTarget> {
    let s = path.as_os_str();
    if s == "-" || s == "/dev/stdout" || s == "/dev/fd/1" || s == "/proc/self/fd/1" {
        return Ok(OutputTarget::Stdout);
    }
    let lmeta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OutputTarget::Replace(path.to_path_buf())),
        r => r.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound && lmeta.file_type().is_symlink() => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: a symlink to nothing (refusing to replace it)", path.display()),
            ));
        }
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    if meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{}: is a directory", path.display())));
    }
    if !meta.is_file() {
        return Ok(OutputTarget::Through(path.to_path_buf()));
    }
    let special = |p: &Path| p.starts_with("/dev") || p.starts_with("/proc");
    if special(path) {
        return Ok(OutputTarget::Through(path.to_path_buf()));
    }
    if !lmeta.file_type().is_symlink() {
        return Ok(OutputTarget::Replace(path.to_path_buf()));
    }
    match fs::canonicalize(path) {
        Ok(real) if !special(&real) => Ok(OutputTarget::Replace(real)),
        _ => Ok(OutputTarget::Through(path.to_path_buf())),
    }
}

/// Opens a [`OutputTarget::Through`] path for writing: appending when it is a regular file (as the shell's
/// redirection left it), plainly otherwise.
pub fn open_through(path: &Path) -> io::Result<File> {
    let regular = fs::metadata(path).map(|m| m.is_file()).unwrap_or(false);
    OpenOptions::new()
        .write(true)
        .append(regular)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Whether the existing file at `path` may be replaced without `--force`: it is empty, an RDB file (plain or
/// page-padded), or a gzip file holding one.
pub fn looks_like_rdb(path: &Path) -> io::Result<bool> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 9];
    let n = read_up_to(&mut f, &mut head)?;
    if n == 0 {
        return Ok(true);
    }
    // Without the `gzip` feature a gzip file is not looked into: it is not taken for an RDB file.
    #[cfg(feature = "gzip")]
    if head[..n].starts_with(&[0x1f, 0x8b]) {
        let f = File::open(path)?;
        let mut gz = flate2::read::GzDecoder::new(f);
        let mut inner = [0u8; 9];
        let m = read_up_to(&mut gz, &mut inner).unwrap_or(0);
        return Ok(is_rdb_magic(&inner[..m]));
    }
    Ok(is_rdb_magic(&head[..n]))
}

fn is_rdb_magic(b: &[u8]) -> bool {
    b.starts_with(b"REDIS") || b.starts_with(b"VALKEY")
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `NAME` when `file` is `.NAME.XXXXXX.rdbkit-tmp`, the temporary file of an [`AtomicFile`] writing `NAME`.
pub fn temp_target(file: &str) -> Option<&str> {
    let inner = file.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let (name, rand) = inner.rsplit_once('.')?;
    (!name.is_empty() && !rand.is_empty() && rand.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(name)
}

/// Removes temporary files in `dir` of the outputs `owned` recognises by name (stale: the caller holds the lock
/// of those outputs, so no live run is writing them). Returns what was removed.
pub fn remove_stale_temps(dir: &Path, owned: impl Fn(&str) -> bool) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if temp_target(name).is_some_and(&owned) && e.file_type().is_ok_and(|t| t.is_file()) {
            let p = e.path();
            if fs::remove_file(&p).is_ok() {
                removed.push(p);
            }
        }
    }
    Ok(removed)
}

/// A file of a prefix's set, recognised by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The generation (16 hex digits), `None` for the names rdbkit used before generations (`P-shard-NNN.rdb`).
    pub generation: Option<String>,
    /// The shard number.
    pub index: usize,
}

/// Parses `name` as a file of `prefix`'s set: `P-gGEN-shard-NNN.rdb[.gz]` or `P-shard-NNN.rdb[.gz]`.
pub fn parse_member(prefix: &str, name: &str) -> Option<Member> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let rest = rest.strip_suffix(".rdb.gz").or_else(|| rest.strip_suffix(".rdb"))?;
    let (generation, rest) = match rest.strip_prefix('g') {
        Some(r) => {
            let (g, r) = r.split_once('-')?;
            (g.len() == 16 && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(())?;
            (Some(g.to_string()), r)
        }
        None => (None, rest),
    };
    let digits = rest.strip_prefix("shard-")?;
    if digits.len() < 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Member { generation, index: digits.parse().ok()? })
}

/// Whether `name` is one of the outputs rdbkit writes for `prefix`: its manifest, `P.rdb`, `P.rdb.gz`, or a
/// file of its set.
pub fn owned_by_prefix(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|r| matches!(r, ".manifest.json" | ".rdb" | ".rdb.gz"))
        || parse_member(prefix, name).is_some()
}

/// Every existing file in `dir` that a run writing `prefix` may replace or remove (for the caller's
/// "never over an input" check).
pub fn prefix_files(dir: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    let rd = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(v),
        r => r?,
    };
    for e in rd {
        let e = e?;
        if let Some(name) = e.file_name().to_str()
            && (owned_by_prefix(prefix, name) || temp_target(name).is_some_and(|t| owned_by_prefix(prefix, t)))
        {
            v.push(e.path());
        }
    }
    Ok(v)
}

/// A new generation: 16 hex digits from the time, the pid and a counter.
fn new_generation() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut x = (nanos as u64)
        ^ (u64::from(std::process::id()) << 40)
        ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64 finaliser, so generations of one second do not share their leading digits.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", x ^ (x >> 31))
}

/// A set of files and its manifest, published all or nothing (see the [module docs](self)).
///
/// Create each member with [`create`](FileSet::create), finish it (that renames it to its generation name, still
/// unreferenced), then [`commit`](FileSet::commit) the manifest. Dropping the set without a successful commit
/// removes every member this run published.
#[derive(Debug)]
pub struct FileSet {
    prefix: String,
    generation: String,
    members: Vec<PathBuf>,
    regs: Vec<Registration>,
    /// Old-style member names the current manifest references (removed after the commit).
    legacy: Vec<String>,
    manifest: PathBuf,
    committed: bool,
    lock: DestLock,
}

impl FileSet {
    /// Starts a set of `n` files named `PREFIX-gGEN-shard-NNN{ext}` and the manifest `PREFIX.manifest.json`, in
    /// the directory of `lock` (which must be the lock of `prefix`). `current` lists the file names the present
    /// manifest references (`None` when there is none): stale files of the prefix that it does not name, and
    /// temporary files of the prefix, are removed now.
    pub fn begin(lock: DestLock, prefix: &str, ext: &str, n: usize, current: Option<&[String]>) -> io::Result<Self> {
        let dir = lock.dir().to_path_buf();
        remove_stale_temps(&dir, |t| owned_by_prefix(prefix, t))?;
        let referenced = |name: &str| current.is_some_and(|c| c.iter().any(|x| x == name));
        let mut legacy = Vec::new();
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
            match parse_member(prefix, &name) {
                Some(Member { generation: Some(_), .. })
                    if !referenced(&name) && e.file_type().is_ok_and(|t| t.is_file()) =>
                {
                    let _ = fs::remove_file(e.path());
                }
                Some(Member { generation: None, .. }) if referenced(&name) => legacy.push(name),
                _ => {}
            }
        }
        let generation = loop {
            let g = new_generation();
            if !fs::read_dir(&dir)?.flatten().any(|e| {
                e.file_name().to_str().and_then(|n| parse_member(prefix, n)).and_then(|m| m.generation).as_deref()
                    == Some(g.as_str())
            }) {
                break g;
            }
        };
        let members: Vec<PathBuf> =
            (0..n).map(|i| dir.join(format!("{prefix}-g{generation}-shard-{i:03}{ext}"))).collect();
        let regs = members.iter().map(|p| Registration::new(p)).collect();
        Ok(FileSet {
            prefix: prefix.to_string(),
            generation,
            members,
            regs,
            legacy,
            manifest: dir.join(format!("{prefix}.manifest.json")),
            committed: false,
            lock,
        })
    }

    /// This run's generation.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// The final path of member `i`.
    pub fn member_path(&self, i: usize) -> &Path {
        &self.members[i]
    }

    /// The manifest's path.
    pub fn manifest_path(&self) -> &Path {
        &self.manifest
    }

    /// An atomic file for member `i` (its directory is synced once, by `commit`).
    pub fn create(&self, i: usize) -> io::Result<AtomicFile> {
        Ok(AtomicFile::create(&self.members[i])?.without_dir_sync())
    }

    /// Publishes the set: checks that every member was written, syncs the directory, and renames `manifest`
    /// into place; then removes the previous set. On an error the set is dropped (its members removed) and the
    /// old set stays as it was.
    pub fn commit(mut self, manifest: &[u8]) -> io::Result<()> {
        for m in &self.members {
            if !fs::symlink_metadata(m).is_ok_and(|t| t.is_file()) {
                return Err(io::Error::other(format!("{}: not written", m.display())));
            }
        }
        sync_dir(self.lock.dir());
        test_pause();
        let mut f = AtomicFile::create(&self.manifest)?;
        f.write_all(manifest)?;
        // From the rename on, the members must outlive a signal: a signal just before it leaves them as
        // unreferenced generation files, which the next run removes.
        self.regs.clear();
        f.finish()?;
        self.committed = true;
        // The old set: any other generation of this prefix, and old-style names the old manifest referenced.
        let dir = self.lock.dir().to_path_buf();
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                let old = match parse_member(&self.prefix, &name) {
                    Some(Member { generation: Some(g), .. }) => g != self.generation,
                    Some(Member { generation: None, .. }) => self.legacy.contains(&name),
                    None => false,
                };
                if old && e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        sync_dir(&dir);
        Ok(())
    }
}

impl Drop for FileSet {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for m in &self.members {
            let _ = fs::remove_file(m);
        }
        sync_dir(self.lock.dir());
    }
}

/// A pause before a set's commit, for the fault-injection tests: `RDBKIT_TEST_PUBLISH_PAUSE_MS` milliseconds
/// (unset: none). It widens the window in which a test kills a run between publishing the files and the manifest.
fn test_pause() {
    if let Some(ms) = std::env::var("RDBKIT_TEST_PUBLISH_PAUSE_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn prefixes() {
        for ok in ["dump", "a-b", "x.y", "with space"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "/tmp/abs", "a/b", ".hidden"] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn member_names() {
        let m = parse_member("p", "p-g0123456789abcdef-shard-007.rdb").unwrap();
        assert_eq!((m.generation.as_deref(), m.index), (Some("0123456789abcdef"), 7));
        assert_eq!(parse_member("p", "p-shard-012.rdb.gz").unwrap().generation, None);
        // Another prefix that starts with this one is not ours.
        assert_eq!(parse_member("p", "p-q-g0123456789abcdef-shard-000.rdb"), None);
        assert_eq!(parse_member("p", "p-g0123-shard-000.rdb"), None);
        assert_eq!(parse_member("p", "p-shard-01.rdb"), None);
        assert_eq!(temp_target(".p.manifest.json.AbC123.rdbkit-tmp"), Some("p.manifest.json"));
        assert_eq!(temp_target(".p.rdb.tmp"), None);
        assert!(owned_by_prefix("p", "p.rdb.gz") && !owned_by_prefix("p", "p.rdb.bak"));
    }

    #[test]
    fn lock_is_exclusive_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let a = DestLock::acquire(dir.path(), "x").unwrap();
        let e = DestLock::acquire(dir.path(), "x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(e.to_string().contains(&format!("pid {}", std::process::id())), "{e}");
        let _other = DestLock::acquire(dir.path(), "y").unwrap();
        drop(a);
        drop(DestLock::acquire(dir.path(), "x").unwrap());
        assert_eq!(names(dir.path()), [".y.rdbkit-lock"]);
    }

    fn set(dir: &Path, n: usize, current: Option<&[String]>) -> FileSet {
        FileSet::begin(DestLock::acquire(dir, "p").unwrap(), "p", ".rdb", n, current).unwrap()
    }

    fn write_all_members(s: &FileSet, n: usize, byte: u8) -> Vec<String> {
        (0..n)
            .map(|i| {
                let mut f = s.create(i).unwrap();
                f.write_all(&[byte; 100]).unwrap();
                f.finish().unwrap();
                s.member_path(i).file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect()
    }

    #[test]
    fn a_set_replaces_the_old_one_only_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("unrelated.txt"), b"keep").unwrap();
        let s = set(dir.path(), 3, None);
        let first = write_all_members(&s, 3, 1);
        s.commit(b"{\"one\":1}").unwrap();
        let mut want = first.clone();
        want.extend(["p.manifest.json".to_string(), "unrelated.txt".to_string()]);
        want.sort();
        assert_eq!(names(dir.path()), want);

        // A second run that fails before its commit leaves the first set untouched.
        let s = set(dir.path(), 2, Some(&first));
        write_all_members(&s, 2, 2);
        drop(s);
        assert_eq!(names(dir.path()), want);

        // A successful one replaces it entirely.
        let s = set(dir.path(), 2, Some(&first));
        let second = write_all_members(&s, 2, 3);
        s.commit(b"{\"two\":2}").unwrap();
        let mut want = second.clone();
        want.extend(["p.manifest.json".to_string(), "unrelated.txt".to_string()]);
        want.sort();
        assert_eq!(names(dir.path()), want);
        assert_eq!(fs::read(dir.path().join("p.manifest.json")).unwrap(), b"{\"two\":2}");
    }

    #[test]
    fn a_directory_in_the_manifests_place_fails_the_commit_and_removes_the_set() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("p.manifest.json")).unwrap();
        fs::write(dir.path().join("p.manifest.json/inside"), b"x").unwrap();
        let s = set(dir.path(), 2, None);
        write_all_members(&s, 2, 1);
        assert!(s.commit(b"{}").is_err());
        assert_eq!(names(dir.path()), ["p.manifest.json"]);
    }

    #[test]
    fn stale_leftovers_of_the_prefix_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            ".p-g0123456789abcdef-shard-000.rdb.Ab12Cd.rdbkit-tmp",
            "p-g0123456789abcdef-shard-000.rdb",
            ".p.manifest.json.xYz987.rdbkit-tmp",
            ".q.manifest.json.xYz987.rdbkit-tmp",
            "q-g0123456789abcdef-shard-000.rdb",
            "p-shard-000.rdb",
        ] {
            fs::write(dir.path().join(f), b"x").unwrap();
        }
        let s = set(dir.path(), 1, None);
        assert_eq!(
            names(dir.path()),
            [
                ".p.rdbkit-lock",
                ".q.manifest.json.xYz987.rdbkit-tmp",
                "p-shard-000.rdb",
                "q-g0123456789abcdef-shard-000.rdb"
            ]
        );
        drop(s);
    }

    #[test]
    fn special_outputs() {
        assert_eq!(output_target(Path::new("-")).unwrap(), OutputTarget::Stdout);
        assert_eq!(output_target(Path::new("/dev/stdout")).unwrap(), OutputTarget::Stdout);
        assert_eq!(output_target(Path::new("/dev/null")).unwrap(), OutputTarget::Through("/dev/null".into()));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.rdb");
        assert_eq!(output_target(&f).unwrap(), OutputTarget::Replace(f.clone()));
        assert!(output_target(dir.path()).is_err());
        #[cfg(unix)]
        {
            fs::write(&f, b"REDIS0011").unwrap();
            let l = dir.path().join("link.rdb");
            std::os::unix::fs::symlink(&f, &l).unwrap();
            assert_eq!(output_target(&l).unwrap(), OutputTarget::Replace(fs::canonicalize(&f).unwrap()));
            let d = dir.path().join("dangling");
            std::os::unix::fs::symlink(dir.path().join("nothing"), &d).unwrap();
            assert!(output_target(&d).is_err());
        }
    }

    #[test]
    fn what_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        for (bytes, ok) in [(&b""[..], true), (b"REDIS0011\xff", true), (b"VALKEY080", true), (b"hello", false)] {
            fs::write(&f, bytes).unwrap();
            assert_eq!(looks_like_rdb(&f).unwrap(), ok, "{bytes:?}");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"REDIS0009...").unwrap();
        fs::write(&f, gz.finish().unwrap()).unwrap();
        assert!(looks_like_rdb(&f).unwrap());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"some text").unwrap();
        fs::write(&f, gz.finish().unwrap()).unwrap();
        assert!(!looks_like_rdb(&f).unwrap());
    }
}
