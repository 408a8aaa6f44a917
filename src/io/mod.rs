//! Byte sinks: [`std::io::Write`] adapters with an explicit finish, for writing RDB files where exports put them.
//!
//! * [`AtomicFile`] — a temporary file renamed over the destination only by `finish`; a failed or abandoned write
//!   leaves nothing behind (feature `fs`, as is the next item).
//! * [`DestLock`], [`FileSet`], [`output_target`] (in [`publish`]) — one writer per destination, sets of files
//!   (shards and their manifest) published all or nothing, special files written through instead of replaced;
//!   [`remove_on_signal`] removes this run's temporary files on SIGINT/SIGTERM/SIGHUP.
//! * [`PageAlign`] — pads the output with zeros to a multiple of 512 bytes (page blobs, Premium-tier exports).
//! * [`GzipWriter`] — gzip-compresses the output (`.rdb.gz` block blobs, Enterprise-tier exports);
//!   [`ParallelGzipWriter`] does the same on several threads (one ordinary gzip member, read by any gzip reader);
//!   feature `gzip`.
//!
//! They follow flate2's adapter habits: `new(inner)`, `get_ref`, `get_mut`, an idempotent `try_finish`, and
//! `finish() -> io::Result<W>` that hands back the inner writer, which the caller finishes in turn. Page alignment
//! and gzip are alternatives for different blob kinds, each nesting over a file: `PageAlign<AtomicFile>` and
//! `GzipWriter<AtomicFile>`. Nothing is finished by `Drop` in a way you should rely on.
//!
//! [`FinishWrite`] finishes a whole chain through one call, so the sink can be chosen at run time and held as a
//! `Box<dyn FinishWrite>` (a file or stdout, padded or gzipped).
//!
//! ```
//! use rdbkit::io::{AtomicFile, PageAlign};
//! use std::io::Write;
//!
//! let path = std::env::temp_dir().join(format!("rdbkit-io-doc-{}.rdb", std::process::id()));
//! let mut w = PageAlign::new(AtomicFile::create(&path)?);
//! w.write_all(b"REDIS0011")?;
//! w.finish()?.finish()?; // pad, then publish the file
//! assert_eq!(std::fs::metadata(&path)?.len(), 512);
//! std::fs::remove_file(&path)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Choosing the sink at run time:
//!
//! ```
//! use rdbkit::io::{AtomicFile, FinishWrite, GzipWriter, PageAlign};
//! use std::io::Write;
//!
//! fn sink(path: Option<&std::path::Path>, gzip: bool) -> std::io::Result<Box<dyn FinishWrite>> {
//!     let base: Box<dyn FinishWrite> = match path {
//!         Some(p) => Box::new(AtomicFile::create(p)?),
//!         None => Box::new(std::io::stdout()),
//!     };
//!     Ok(if gzip { Box::new(GzipWriter::new_default(base)) } else { Box::new(PageAlign::new(base)) })
//! }
//!
//! let path = std::env::temp_dir().join(format!("rdbkit-io-doc2-{}.rdb.gz", std::process::id()));
//! let mut w = sink(Some(&path), true)?;
//! w.write_all(b"REDIS0011")?;
//! w.finish_write()?;
//! assert!(path.exists());
//! std::fs::remove_file(&path)?;
//! # Ok::<(), std::io::Error>(())
//! ```

#[cfg(feature = "fs")]
mod atomic;
#[cfg(feature = "fs")]
pub mod cleanup;
mod digest;
#[cfg(feature = "gzip")]
mod gzip;
mod page;
#[cfg(feature = "gzip")]
mod pgzip;
#[cfg(feature = "fs")]
pub mod publish;

use std::io::{self, BufWriter, Write};

#[cfg(feature = "fs")]
pub use atomic::{AtomicFile, TEMP_SUFFIX};
#[cfg(feature = "fs")]
pub use cleanup::remove_on_signal;
pub use digest::{DigestHandle, Digesting, crc64_xz};
#[cfg(feature = "gzip")]
pub use gzip::{DEFAULT_LEVEL, GzipWriter};
pub use page::{DEFAULT_BLOCK_SIZE, PageAlign};
#[cfg(feature = "gzip")]
pub use pgzip::ParallelGzipWriter;
#[cfg(feature = "fs")]
pub use publish::{DestLock, FileSet, OutputTarget, output_target};

/// A writer that can be finished through a trait object: it completes its own output (padding, gzip trailer,
/// rename into place, flush) and then finishes whatever it wraps, all the way down the chain.
///
/// Implemented for the adapters of this module when their inner writer is itself `FinishWrite`, for
/// `Box<dyn FinishWrite>` (so chains can be built at run time), and for the plain ends `Vec<u8>`, `File`,
/// `Stdout` and `BufWriter<W>`.
///
/// A chain can also *patch*: overwrite bytes it has already written, so a writer can leave a fixed-width
/// placeholder (a key count, say) and fill it in once the whole file has streamed out. Files and buffers can;
/// pipes and gzip streams cannot, and say so through [`can_patch`](FinishWrite::can_patch).
pub trait FinishWrite: Write {
    /// Finishes this writer and every writer inside it, consuming them.
    fn finish_write(self: Box<Self>) -> io::Result<()>;

    /// Whether [`patch`](FinishWrite::patch) works on this writer (and everything it wraps). `false` unless the
    /// implementation says otherwise.
    fn can_patch(&self) -> bool {
        false
    }

    /// Overwrites the `old.len()` bytes written at `offset` (counted from the first byte written through this
    /// writer) with `new`, of the same length. Call it only once what is patched has been written (and flushed
    /// by any buffering writer above this one); layers that digest what passes through them, like [`Digesting`],
    /// use `old` to correct their checksums. The default refuses with [`io::ErrorKind::Unsupported`].
    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        let _ = (offset, old, new);
        Err(io::Error::new(io::ErrorKind::Unsupported, "this output cannot overwrite bytes already written"))
    }
}

/// Checks the arguments of [`FinishWrite::patch`] against the bytes written so far.
pub(crate) fn check_patch(offset: u64, old: &[u8], new: &[u8], written: u64) -> io::Result<()> {
    if old.len() != new.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "patch: old and new bytes differ in length"));
    }
    if offset.checked_add(new.len() as u64).is_none_or(|end| end > written) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("patch: bytes {offset}+{} were not written yet ({written} written)", new.len()),
        ));
    }
    Ok(())
}

impl<T: FinishWrite + ?Sized> FinishWrite for Box<T> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        T::finish_write(*self)
    }

    fn can_patch(&self) -> bool {
        (**self).can_patch()
    }

    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        (**self).patch(offset, old, new)
    }
}

/// Padding goes after everything written, so offsets pass through unchanged.
impl<W: FinishWrite> FinishWrite for PageAlign<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Box::new(self.finish()?).finish_write()
    }

    fn can_patch(&self) -> bool {
        self.get_ref().can_patch()
    }

    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        self.get_mut().patch(offset, old, new)
    }
}

#[cfg(feature = "gzip")]
impl<W: FinishWrite> FinishWrite for GzipWriter<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Box::new(self.finish()?).finish_write()
    }
}

#[cfg(feature = "fs")]
impl FinishWrite for AtomicFile {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        self.finish()
    }

    fn can_patch(&self) -> bool {
        true
    }

    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        AtomicFile::patch(self, offset, old, new)
    }
}

impl<W: FinishWrite> FinishWrite for BufWriter<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Box::new(self.into_inner().map_err(|e| e.into_error())?).finish_write()
    }

    fn can_patch(&self) -> bool {
        self.get_ref().can_patch()
    }

    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        self.flush()?;
        self.get_mut().patch(offset, old, new)
    }
}

/// Nothing to complete; the bytes are dropped with the vector (useful in tests). Patch offsets are indexes
/// into the vector, so start with an empty one.
impl FinishWrite for Vec<u8> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }

    fn can_patch(&self) -> bool {
        true
    }

    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        check_patch(offset, old, new, self.len() as u64)?;
        let at = offset as usize;
        self[at..at + new.len()].copy_from_slice(new);
        Ok(())
    }
}

/// Discards everything, patches included (for measuring the work before the output).
impl FinishWrite for io::Sink {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }

    fn can_patch(&self) -> bool {
        true
    }

    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        check_patch(offset, old, new, u64::MAX)
    }
}

/// Flushes. A plain `File` is not synced to disk nor written atomically: use [`AtomicFile`] for that.
impl FinishWrite for std::fs::File {
    fn finish_write(mut self: Box<Self>) -> io::Result<()> {
        self.flush()
    }
}

/// Flushes standard output.
impl FinishWrite for io::Stdout {
    fn finish_write(mut self: Box<Self>) -> io::Result<()> {
        self.flush()
    }
}

// Every test here writes through a file or gzip.
#[cfg(all(test, any(feature = "fs", feature = "gzip")))]
mod tests {
    use super::*;

    /// A shared buffer, to see what a boxed chain wrote after it was consumed by `finish_write`.
    #[cfg(feature = "gzip")]
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>, std::rc::Rc<std::cell::Cell<bool>>);

    #[cfg(feature = "gzip")]
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[cfg(feature = "gzip")]
    impl FinishWrite for Shared {
        fn finish_write(self: Box<Self>) -> io::Result<()> {
            self.1.set(true);
            Ok(())
        }
    }

    #[test]
    #[cfg(feature = "gzip")]
    fn boxed_chains_finish_all_the_way_down() {
        let s = Shared::default();
        let base: Box<dyn FinishWrite> = Box::new(s.clone());
        let mut w: Box<dyn FinishWrite> = Box::new(PageAlign::new(BufWriter::new(base)));
        w.write_all(b"abc").unwrap();
        w.finish_write().unwrap();
        assert!(s.1.get(), "the innermost writer was finished");
        assert_eq!(s.0.borrow().len(), 512);

        let s = Shared::default();
        let mut w: Box<dyn FinishWrite> =
            Box::new(GzipWriter::new_default(Box::new(s.clone()) as Box<dyn FinishWrite>));
        w.write_all(b"hello").unwrap();
        w.finish_write().unwrap();
        assert!(s.1.get());
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&s.0.borrow()[..]), &mut back).unwrap();
        assert_eq!(back, b"hello");
    }

    #[test]
    #[cfg(feature = "fs")]
    fn page_aligned_atomic_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.rdb");
        let mut w: Box<dyn FinishWrite> = Box::new(PageAlign::new(AtomicFile::create(&path).unwrap()));
        w.write_all(&[1u8; 600]).unwrap();
        assert!(!path.exists());
        w.finish_write().unwrap();
        let out = std::fs::read(&path).unwrap();
        assert_eq!(out.len(), 1024);
        assert!(out[..600].iter().all(|&b| b == 1) && out[600..].iter().all(|&b| b == 0));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    #[cfg(feature = "fs")]
    fn patches_reach_the_file_and_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.rdb");
        let (measured, stored) = Digesting::new(AtomicFile::create(&path).unwrap());
        let mut w: Box<dyn FinishWrite> = Box::new(PageAlign::new(measured));
        assert!(w.can_patch());
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        w.write_all(&body).unwrap();
        w.flush().unwrap();
        w.patch(5, &body[5..9], b"abcd").unwrap();
        w.patch(299_990, &body[299_990..300_000], &[7; 10]).unwrap();
        assert!(w.patch(299_995, &[0; 10], &[0; 10]).is_err(), "past what was written");
        assert!(w.patch(0, &[0; 2], &[0; 3]).is_err(), "lengths differ");
        w.finish_write().unwrap();
        let out = std::fs::read(&path).unwrap();
        let mut want = body.clone();
        want[5..9].copy_from_slice(b"abcd");
        want[299_990..].fill(7);
        want.resize(300_032, 0);
        assert_eq!(out, want);
        assert_eq!(stored.bytes(), out.len() as u64);
        assert_eq!(stored.crc64_xz(), crc64_xz(&out), "the digest follows the patches");
    }

    #[test]
    #[cfg(feature = "gzip")]
    fn pipes_and_gzip_cannot_patch() {
        let mut g: Box<dyn FinishWrite> = Box::new(GzipWriter::new_default(Vec::new()));
        assert!(!g.can_patch());
        g.write_all(b"abc").unwrap();
        assert_eq!(g.patch(0, b"a", b"b").unwrap_err().kind(), io::ErrorKind::Unsupported);
        assert!(!FinishWrite::can_patch(&io::stdout()));
        let mut v = Vec::new();
        v.write_all(b"hello").unwrap();
        FinishWrite::patch(&mut v, 1, b"el", b"EL").unwrap();
        assert_eq!(v, b"hELlo");
    }

    #[test]
    #[cfg(all(feature = "fs", feature = "gzip"))]
    fn abandoned_chain_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.rdb.gz");
        {
            let mut w = GzipWriter::new_default(AtomicFile::create(&path).unwrap());
            w.write_all(b"partial").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
