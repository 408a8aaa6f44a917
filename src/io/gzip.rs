//! [`GzipWriter`]: gzip compression of a whole output, as Enterprise-tier exports store RDB files (`.rdb.gz`).
//!
//! A thin wrapper over [`flate2::write::GzEncoder`] that validates the level and makes finishing explicit: the
//! gzip trailer (CRC-32 and length) is written by [`finish`](GzipWriter::finish), and a writer dropped without it
//! leaves a stream that only flate2's best-effort `Drop` may have completed.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::{Error, ErrorKind, Result};

/// The compression level [`GzipWriter::new_default`] uses (gzip's own default).
pub const DEFAULT_LEVEL: u32 = 6;

/// A writer that gzip-compresses everything written to it into `W`.
///
/// Call [`finish`](GzipWriter::finish) (or [`try_finish`](GzipWriter::try_finish)) to write the gzip trailer;
/// never rely on `Drop`, which can only finish on a best-effort basis and swallows errors.
///
/// ```
/// use rdbkit::io::GzipWriter;
/// use std::io::{Read, Write};
///
/// let mut w = GzipWriter::new_default(Vec::new());
/// w.write_all(b"REDIS0011")?;
/// let gz = w.finish()?;
/// let mut back = Vec::new();
/// flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut back)?;
/// assert_eq!(back, b"REDIS0011");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct GzipWriter<W: Write> {
    enc: GzEncoder<W>,
    total_in: u64,
}

impl<W: Write> GzipWriter<W> {
    /// Wraps `inner`, compressing at `level` (0 = store only, 1 = fastest … 9 = smallest).
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when `level` is above 9.
    pub fn new(inner: W, level: u32) -> Result<Self> {
        if level > 9 {
            return Err(Error::without_offset(ErrorKind::Invalid(format!(
                "gzip compression level {level} is out of range 0-9"
            ))));
        }
        Ok(GzipWriter { enc: GzEncoder::new(inner, Compression::new(level)), total_in: 0 })
    }

    /// Wraps `inner`, compressing at the default level [`DEFAULT_LEVEL`] (6).
    pub fn new_default(inner: W) -> Self {
        GzipWriter { enc: GzEncoder::new(inner, Compression::new(DEFAULT_LEVEL)), total_in: 0 }
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        self.enc.get_ref()
    }

    /// The inner writer, mutably. Writing to it directly corrupts the gzip stream.
    pub fn get_mut(&mut self) -> &mut W {
        self.enc.get_mut()
    }

    /// Bytes of uncompressed input consumed so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// Writes all pending compressed data and the gzip trailer to the inner writer, without giving it up.
    /// Idempotent; no more data may be written afterwards.
    pub fn try_finish(&mut self) -> io::Result<()> {
        self.enc.try_finish()
    }

    /// Writes the gzip trailer and returns the inner writer (which may itself need finishing).
    pub fn finish(self) -> io::Result<W> {
        self.enc.finish()
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.enc.write(buf)?;
        self.total_in += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    /// xorshift64*: deterministic incompressible bytes without a `rand` dependency.
    fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(n);
        out
    }

    fn sample() -> Vec<u8> {
        let mut v = random_bytes(300_001, 0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000u32 {
            v.extend_from_slice(format!("key:{i} value-{}\n", i % 17).as_bytes());
        }
        v.extend(std::iter::repeat_n(0u8, 100_000));
        v
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn round_trips_at_every_level() {
        let data = sample();
        for level in 0..=9 {
            // The full sample at the levels that use distinct strategies; a slice of it elsewhere (debug builds of
            // the compressor are slow).
            let data = if matches!(level, 0 | 1 | 6 | 9) { &data[..] } else { &data[290_000..340_000] };
            let mut w = GzipWriter::new(Vec::new(), level).unwrap();
            for chunk in data.chunks(7919) {
                w.write_all(chunk).unwrap();
            }
            assert_eq!(w.total_in(), data.len() as u64);
            let gz = w.finish().unwrap();
            assert_eq!(&gz[..2], &[0x1f, 0x8b]);
            assert_eq!(gunzip(&gz), data, "level {level}");
        }
        let gz = GzipWriter::new_default(Vec::new()).finish().unwrap();
        assert!(gunzip(&gz).is_empty());
    }

    #[test]
    fn level_out_of_range() {
        assert!(matches!(GzipWriter::new(Vec::new(), 10).unwrap_err().kind(), ErrorKind::Invalid(_)));
    }

    #[test]
    fn try_finish_is_idempotent() {
        let mut w = GzipWriter::new_default(Vec::new());
        w.write_all(b"abc").unwrap();
        w.try_finish().unwrap();
        let len = w.get_ref().len();
        w.try_finish().unwrap();
        assert_eq!(w.get_ref().len(), len);
        assert_eq!(gunzip(&w.finish().unwrap()), b"abc");
    }

    #[test]
    fn system_gzip_decompresses_identically() {
        let data = sample();
        let mut w = GzipWriter::new_default(Vec::new());
        w.write_all(&data).unwrap();
        let gz = w.finish().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.rdb.gz");
        std::fs::write(&path, &gz).unwrap();
        let out = match Command::new("gzip").arg("-dc").arg(&path).stderr(Stdio::inherit()).output() {
            Ok(out) => out,
            Err(e) => {
                println!("notice: system `gzip` not available ({e}); skipping the external check");
                return;
            }
        };
        assert!(out.status.success(), "gzip -dc failed: {:?}", out.status);
        assert!(out.stdout == data, "gzip -dc output differs from the input");
    }
}
