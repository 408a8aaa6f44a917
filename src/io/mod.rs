//! Byte sinks: [`std::io::Write`] adapters with an explicit finish, for writing RDB files where exports put them.
//!
//! * [`AtomicFile`] — a temporary file renamed over the destination only by `finish`; a failed or abandoned write
//!   leaves nothing behind.
//! * [`PageAlign`] — pads the output with zeros to a multiple of 512 bytes (page blobs, Premium-tier exports).
//! * [`GzipWriter`] — gzip-compresses the output (`.rdb.gz` block blobs, Enterprise-tier exports).
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

mod atomic;
mod digest;
mod gzip;
mod page;

use std::io::{self, BufWriter, Write};

pub use atomic::AtomicFile;
pub use digest::{DigestHandle, Digesting, crc64_xz};
pub use gzip::{DEFAULT_LEVEL, GzipWriter};
pub use page::{DEFAULT_BLOCK_SIZE, PageAlign};

/// A writer that can be finished through a trait object: it completes its own output (padding, gzip trailer,
/// rename into place, flush) and then finishes whatever it wraps, all the way down the chain.
///
/// Implemented for the adapters of this module when their inner writer is itself `FinishWrite`, for
/// `Box<dyn FinishWrite>` (so chains can be built at run time), and for the plain ends `Vec<u8>`, `File`,
/// `Stdout` and `BufWriter<W>`.
pub trait FinishWrite: Write {
    /// Finishes this writer and every writer inside it, consuming them.
    fn finish_write(self: Box<Self>) -> io::Result<()>;
}

impl<T: FinishWrite + ?Sized> FinishWrite for Box<T> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        T::finish_write(*self)
    }
}

impl<W: FinishWrite> FinishWrite for PageAlign<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Box::new(self.finish()?).finish_write()
    }
}

impl<W: FinishWrite> FinishWrite for GzipWriter<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Box::new(self.finish()?).finish_write()
    }
}

impl FinishWrite for AtomicFile {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        self.finish()
    }
}

impl<W: FinishWrite> FinishWrite for BufWriter<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Box::new(self.into_inner().map_err(|e| e.into_error())?).finish_write()
    }
}

/// Nothing to complete; the bytes are dropped with the vector (useful in tests).
impl FinishWrite for Vec<u8> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A shared buffer, to see what a boxed chain wrote after it was consumed by `finish_write`.
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>, std::rc::Rc<std::cell::Cell<bool>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl FinishWrite for Shared {
        fn finish_write(self: Box<Self>) -> io::Result<()> {
            self.1.set(true);
            Ok(())
        }
    }

    #[test]
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
        flate2::read::MultiGzDecoder::new(&s.0.borrow()[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello");
    }

    #[test]
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
