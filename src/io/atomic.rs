//! [`AtomicFile`]: a file that appears at its path complete or not at all.
//!
//! Bytes go to a temporary file next to the destination (same directory, so same file system); only
//! [`finish`](AtomicFile::finish) makes it durable and renames it over the destination. A writer that is dropped,
//! or whose writes failed, leaves nothing behind — neither a partial destination file nor the temporary file. This
//! is the "a failed export leaves no partial file" rule of IMPORT-EXPORT.md.
//!
//! Temporary files are named `.<name>.<random>.rdbkit-tmp`, so a later run (which holds the destination's lock,
//! see [`super::DestLock`]) can recognise and remove those a killed run left behind; while a signal handler is
//! installed ([`super::remove_on_signal`]) they are removed on SIGINT/SIGTERM/SIGHUP too.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::cleanup::Registration;

/// The suffix of every temporary file rdbkit creates next to an output.
pub const TEMP_SUFFIX: &str = ".rdbkit-tmp";

/// Buffer size of the writes to the temporary file.
const BUF_SIZE: usize = 256 * 1024;

/// A buffered writer to a temporary file that [`finish`](AtomicFile::finish) flushes, syncs to disk and renames
/// over the destination path in one atomic step.
///
/// Until then the destination keeps its old content (or does not exist). On drop without `finish` the temporary
/// file is removed. After any write or flush error the file is *poisoned*: `finish` refuses to publish it and
/// removes the temporary file instead, so a half-written file can never replace the destination.
///
/// The temporary file is named `.<name>.<random>.rdbkit-tmp` in the destination's directory. The new file gets the
/// permissions of the file it replaces, or those of a newly created file (`0o666` less the umask on Unix).
///
/// ```
/// use rdbkit::io::AtomicFile;
/// use std::io::Write;
///
/// let path = std::env::temp_dir().join(format!("rdbkit-atomic-doc-{}.rdb", std::process::id()));
/// let mut f = AtomicFile::create(&path)?;
/// f.write_all(b"REDIS0011")?;
/// assert!(!path.exists(), "nothing at the destination before finish");
/// f.finish()?;
/// assert_eq!(std::fs::read(&path)?, b"REDIS0011");
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    /// `Some` until [`AtomicFile::finish`] takes it out.
    file: Option<LazyBuf>,
    poisoned: bool,
    /// Bytes accepted so far.
    written: u64,
    /// Sync the directory after the rename (off when a [`super::FileSet`] syncs it once for all its files).
    sync_dir: bool,
    /// Removes the temporary file if a signal ends the process.
    _reg: Registration,
}

impl AtomicFile {
    /// Starts writing a file that will replace `path` on [`finish`](AtomicFile::finish).
    ///
    /// # Errors
    /// When `path` has no file name (e.g. ends in `..`), or the temporary file cannot be created in its directory.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a file path", path.display()))
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let existing = std::fs::metadata(&path).ok().filter(|m| m.is_file()).map(|m| m.permissions());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(TEMP_SUFFIX);
        // Registered for removal on a signal *before* it exists, so no moment leaves it behind unregistered.
        let mut reg = None;
        let tmp = builder
            .make_in(dir, |p| {
                let r = Registration::new(p);
                let mut o = std::fs::OpenOptions::new();
                o.read(true).write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o666);
                let f = o.open(p)?;
                reg = Some(r);
                Ok(f)
            })
            .map_err(|e| named(e, dir))?;
        let reg = reg.unwrap_or_default();
        if let Some(perm) = existing {
            // Best effort: keep the replaced file's mode (the umask applied to the default above otherwise).
            let _ = tmp.as_file().set_permissions(perm);
        }
        Ok(AtomicFile {
            path,
            file: Some(LazyBuf { file: tmp, buf: Vec::new() }),
            poisoned: false,
            written: 0,
            sync_dir: true,
            _reg: reg,
        })
    }

    /// Leaves the directory unsynced after the rename in [`finish`](AtomicFile::finish): for a caller that
    /// renames several files and syncs the directory once.
    pub fn without_dir_sync(mut self) -> Self {
        self.sync_dir = false;
        self
    }

    /// The destination path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file's path (removed on drop, renamed to [`path`](AtomicFile::path) by `finish`).
    pub fn temp_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.get_ref().path())
    }

    /// Flushes, syncs the data to disk, renames the temporary file over the destination, and (on Unix, best
    /// effort) syncs the directory so the rename itself is durable.
    ///
    /// # Errors
    /// Any I/O error on the way, or an earlier write error; in every error case the temporary file is removed and
    /// the destination is left as it was.
    pub fn finish(mut self) -> io::Result<()> {
        let buf = self.file.take().ok_or_else(|| io::Error::other("AtomicFile: already finished"))?;
        if self.poisoned {
            return Err(io::Error::other(format!(
                "{}: not written because an earlier write failed",
                self.path.display()
            )));
        }
        let path = self.path.clone();
        let tmp = buf.into_inner().map_err(|e| named(e, &path))?;
        tmp.as_file().sync_all().map_err(|e| named(e, &path))?;
        tmp.persist(&self.path).map_err(|e| named(e.error, &path))?;
        if let Some(dir) = self.path.parent().filter(|_| self.sync_dir) {
            sync_dir(dir);
        }
        Ok(())
    }

    /// Overwrites `new.len()` bytes at `offset` of what was written (flushing the buffer first); `old` is what
    /// the caller wrote there, checked only for its length. See [`super::FinishWrite::patch`].
    pub fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        // Bad arguments change nothing, so they do not poison the file.
        super::check_patch(offset, old, new, self.written)?;
        let r = self.writer().and_then(|w| {
            w.flush()?;
            write_all_at(w.get_ref().as_file(), new, offset)
        });
        self.check(r)
    }

    fn writer(&mut self) -> io::Result<&mut LazyBuf> {
        self.file.as_mut().ok_or_else(|| io::Error::other("AtomicFile: already finished"))
    }

    fn check<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        match r {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                self.poisoned = true;
                // Name the file whose disk filled or failed (the input's name is all the caller knows).
                Err(named(e, &self.path))
            }
            r => r,
        }
    }
}

/// `e` with `path` in its message (same kind).
fn named(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Syncs a directory (best effort: some file systems refuse), so renames in it are durable.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// A write buffer over the temporary file that grows as bytes come, up to [`BUF_SIZE`]: thousands of outputs open
/// at once (one per shard of a large cluster) cost memory in proportion to what is written to them, not 256 KiB
/// each.
#[derive(Debug)]
struct LazyBuf {
    file: NamedTempFile,
    buf: Vec<u8>,
}

impl LazyBuf {
    fn get_ref(&self) -> &NamedTempFile {
        &self.file
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.as_file_mut().write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and hands back the file.
    fn into_inner(mut self) -> io::Result<NamedTempFile> {
        self.flush_buf()?;
        Ok(self.file)
    }
}

impl Write for LazyBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > BUF_SIZE {
            self.flush_buf()?;
        }
        if data.len() >= BUF_SIZE {
            return self.file.as_file_mut().write(data);
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.file.as_file_mut().flush()
    }
}

#[cfg(unix)]
fn write_all_at(f: &std::fs::File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

#[cfg(not(unix))]
fn write_all_at(f: &std::fs::File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = f;
    let end = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)?;
    f.seek(SeekFrom::Start(end))?;
    Ok(())
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.writer().and_then(|w| w.write(buf));
        let n = self.check(r)?;
        self.written += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = self.writer().and_then(|w| w.write_all(buf));
        self.check(r)?;
        self.written += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.writer().and_then(|w| w.flush());
        self.check(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn appears_only_after_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb");
        let mut f = AtomicFile::create(&path).unwrap();
        assert_eq!(f.path(), path);
        let tmp = f.temp_path().unwrap().to_path_buf();
        assert_eq!(tmp.parent(), Some(dir.path()));
        let tmp_name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(tmp_name.starts_with(".dump.rdb.") && tmp_name.ends_with(".rdbkit-tmp"), "{tmp_name}");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        f.write_all(&data).unwrap();
        f.flush().unwrap();
        assert!(!path.exists());
        f.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(entries(dir.path()), ["dump.rdb"]);
    }

    #[test]
    fn drop_without_finish_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(&[7u8; 100_000]).unwrap();
            f.flush().unwrap();
            assert_eq!(entries(dir.path()).len(), 1, "the temporary file exists while writing");
        }
        assert!(entries(dir.path()).is_empty());
    }

    /// Feeds an `AtomicFile` until a simulated upstream failure; the caller bails out and drops it.
    fn export(path: &Path, fail_after: usize) -> io::Result<()> {
        let mut f = AtomicFile::create(path)?;
        for i in 0..100usize {
            if i * 1000 >= fail_after {
                return Err(io::Error::other("upstream failed"));
            }
            f.write_all(&[1u8; 1000])?;
        }
        f.finish()
    }

    #[test]
    fn error_mid_way_leaves_nothing_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb");
        assert!(export(&path, 5000).is_err());
        assert!(entries(dir.path()).is_empty());
        std::fs::write(&path, b"old").unwrap();
        assert!(export(&path, 5000).is_err());
        assert_eq!(entries(dir.path()), ["dump.rdb"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        export(&path, usize::MAX).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 100_000);
    }

    #[test]
    fn poisoned_file_is_not_published() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"partial").unwrap();
        let r = f.check::<()>(Err(io::Error::other("disk full")));
        assert!(r.is_err());
        assert!(f.finish().is_err());
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn overwrite_is_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb");
        std::fs::write(&path, b"old content").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"new content, longer than the old one").unwrap();
        f.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old content");
        f.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new content, longer than the old one");
        assert_eq!(entries(dir.path()), ["dump.rdb"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        }
    }

    #[test]
    fn bad_paths() {
        assert!(AtomicFile::create("..").is_err());
        assert!(AtomicFile::create("/").is_err());
        let dir = tempfile::tempdir().unwrap();
        assert!(AtomicFile::create(dir.path().join("missing/dump.rdb")).is_err());
    }
}
