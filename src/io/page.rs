//! [`PageAlign`]: a writer that pads its output with zero bytes to a multiple of a block size.
//!
//! Azure Premium exports go to *page blobs*, whose size must be a multiple of 512 bytes (IMPORT-EXPORT.md). Redis
//! ignores every byte after the RDB checksum, so an RDB padded with zeros still loads with the same data.

use std::io::{self, Write};

use crate::{Error, ErrorKind, Result};

/// The default block size: one page-blob page, 512 bytes.
pub const DEFAULT_BLOCK_SIZE: u64 = 512;

/// Zeros written in chunks of this size, so any block size pads without allocating.
const ZEROS: [u8; 4096] = [0; 4096];

/// A writer that counts the bytes passed through it and, on [`finish`](PageAlign::finish), pads the output with
/// zero bytes up to the next multiple of its block size (nothing when already aligned, including an empty output).
///
/// Shaped like flate2's encoders: [`new`](PageAlign::new), [`get_ref`](PageAlign::get_ref),
/// [`get_mut`](PageAlign::get_mut), an idempotent [`try_finish`](PageAlign::try_finish) and
/// [`finish`](PageAlign::finish) returning the inner writer. Wrappers nest: `PageAlign<AtomicFile>`,
/// `PageAlign<BufWriter<File>>`.
///
/// **Dropping** a `PageAlign` that was not finished pads on a best-effort basis and ignores any error, like
/// flate2's encoders do. Do not rely on it: call [`finish`](PageAlign::finish) and check its result.
///
/// After padding, further writes are refused with an error, since they would break the alignment.
///
/// ```
/// use rdbkit::io::PageAlign;
/// use std::io::Write;
///
/// let mut w = PageAlign::new(Vec::new());
/// w.write_all(b"REDIS0011")?;
/// let out = w.finish()?;
/// assert_eq!(out.len(), 512);
/// assert!(out[9..].iter().all(|&b| b == 0));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PageAlign<W: Write> {
    /// `Some` until [`PageAlign::finish`] takes it out.
    inner: Option<W>,
    block: u64,
    written: u64,
    padded: bool,
}

impl<W: Write> PageAlign<W> {
    /// Wraps `inner`, aligning to [`DEFAULT_BLOCK_SIZE`] (512 bytes).
    pub fn new(inner: W) -> Self {
        PageAlign { inner: Some(inner), block: DEFAULT_BLOCK_SIZE, written: 0, padded: false }
    }

    /// Wraps `inner`, aligning to `block_size` bytes, which must be a power of two (1 disables padding).
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when `block_size` is not a power of two (0 included).
    pub fn with_block_size(inner: W, block_size: u64) -> Result<Self> {
        if !block_size.is_power_of_two() {
            return Err(Error::without_offset(ErrorKind::Invalid(format!(
                "page alignment block size {block_size} is not a power of two"
            ))));
        }
        Ok(PageAlign { inner: Some(inner), block: block_size, written: 0, padded: false })
    }

    /// The block size the output is padded to.
    pub fn block_size(&self) -> u64 {
        self.block
    }

    /// Bytes passed to the inner writer so far, padding included: after a successful
    /// [`try_finish`](PageAlign::try_finish), the length of the whole output.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The number of zero bytes [`try_finish`](PageAlign::try_finish) would still append now.
    pub fn padding_needed(&self) -> u64 {
        // `block` is a power of two, so this is `(block - written % block) % block` without overflow.
        self.written.wrapping_neg() & (self.block - 1)
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        self.inner.as_ref().expect("PageAlign: inner writer is present until finish")
    }

    /// The inner writer, mutably. Writing to it directly bypasses the byte count and so breaks the alignment.
    pub fn get_mut(&mut self) -> &mut W {
        self.inner.as_mut().expect("PageAlign: inner writer is present until finish")
    }

    /// Pads the output with zeros to a multiple of the block size and flushes the inner writer, without giving it
    /// up. Idempotent: a second call writes nothing more and only flushes again. If padding fails half-way,
    /// calling it again continues where it stopped.
    pub fn try_finish(&mut self) -> io::Result<()> {
        let Some(inner) = self.inner.as_mut() else { return Ok(()) };
        while !self.padded {
            let need = self.written.wrapping_neg() & (self.block - 1);
            if need == 0 {
                self.padded = true;
                break;
            }
            let chunk = need.min(ZEROS.len() as u64) as usize;
            match inner.write(&ZEROS[..chunk]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "failed to write page padding")),
                Ok(n) => self.written += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        inner.flush()
    }

    /// Pads and flushes as [`try_finish`](PageAlign::try_finish) does, then returns the inner writer (which may
    /// itself need finishing, e.g. an [`AtomicFile`](crate::io::AtomicFile)).
    pub fn finish(mut self) -> io::Result<W> {
        self.try_finish()?;
        self.inner.take().ok_or_else(|| io::Error::other("PageAlign: inner writer already taken"))
    }
}

impl<W: Write> Write for PageAlign<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.padded {
            return Err(io::Error::other("PageAlign: write after the output was padded (finished)"));
        }
        let n = self.get_mut().write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.get_mut().flush()
    }
}

impl<W: Write> Drop for PageAlign<W> {
    /// Best effort: pads and flushes if [`finish`](PageAlign::finish) was not called; errors are ignored.
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.try_finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 | 1).collect()
    }

    #[test]
    fn pads_to_block_multiples() {
        for block in [512u64, 4096] {
            for size in [0usize, 1, 511, 512, 513, 1023, 1024, 4096 + 3] {
                let input = data(size);
                let mut w = PageAlign::with_block_size(Vec::new(), block).unwrap();
                w.write_all(&input).unwrap();
                assert_eq!(w.bytes_written(), size as u64);
                let out = w.finish().unwrap();
                assert_eq!(out.len() as u64 % block, 0, "size {size} block {block}");
                assert!(out.len() >= size && out.len() < size + block as usize);
                assert_eq!(&out[..size], &input[..]);
                assert!(out[size..].iter().all(|&b| b == 0));
                if (size as u64).is_multiple_of(block) {
                    assert_eq!(out.len(), size, "already aligned adds nothing");
                }
            }
        }
    }

    #[test]
    fn default_is_512_and_try_finish_is_idempotent() {
        let mut w = PageAlign::new(Vec::new());
        assert_eq!(w.block_size(), 512);
        w.write_all(&data(700)).unwrap();
        assert_eq!(w.padding_needed(), 324);
        w.try_finish().unwrap();
        w.try_finish().unwrap();
        assert_eq!(w.bytes_written(), 1024);
        assert_eq!(w.padding_needed(), 0);
        assert_eq!(w.get_ref().len(), 1024);
        assert!(w.write(b"x").is_err(), "writes after padding are refused");
        assert_eq!(w.write(b"").unwrap(), 0);
        assert_eq!(w.finish().unwrap().len(), 1024);
    }

    #[test]
    fn block_sizes() {
        for bad in [0u64, 3, 500, 513, 1000, u64::MAX] {
            let err = PageAlign::with_block_size(Vec::new(), bad).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Invalid(_)), "{bad}");
        }
        let mut w = PageAlign::with_block_size(Vec::new(), 1).unwrap();
        w.write_all(b"abc").unwrap();
        assert_eq!(w.finish().unwrap(), b"abc");
        let mut w = PageAlign::with_block_size(Vec::new(), 1 << 16).unwrap();
        w.write_all(b"abc").unwrap();
        assert_eq!(w.finish().unwrap().len(), 1 << 16);
    }

    #[test]
    fn drop_pads_best_effort() {
        let mut out = Vec::new();
        {
            let mut w = PageAlign::new(&mut out);
            w.write_all(b"hello").unwrap();
        }
        assert_eq!(out.len(), 512);
    }

    /// Accepts at most `left` bytes, then fails; short writes of 3 bytes to exercise the padding loop.
    struct Limited {
        out: Vec<u8>,
        left: usize,
    }

    impl Write for Limited {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("full"));
            }
            let n = buf.len().min(self.left).min(3);
            self.out.extend_from_slice(&buf[..n]);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn padding_resumes_after_an_error() {
        let mut w = PageAlign::new(Limited { out: Vec::new(), left: 100 });
        w.write_all(b"abcde").unwrap();
        assert!(w.try_finish().is_err());
        w.get_mut().left = usize::MAX;
        w.try_finish().unwrap();
        let inner = w.finish().unwrap();
        assert_eq!(inner.out.len(), 512);
        assert_eq!(&inner.out[..5], b"abcde");
    }
}
