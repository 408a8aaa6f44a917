//! [`Digesting`]: counts the bytes that pass to a writer and their CRC-64/XZ, readable through a
//! [`DigestHandle`] after the writer chain has been finished and consumed.
//!
//! Put it directly around the file (under page alignment or gzip) so the figures describe the file as stored;
//! the CRC-64/XZ (the variant `xz` uses) is chosen because the RDB's own Redis CRC-64, taken over a whole RDB file
//! including its footer, is always 0.

use crate::format::crc::Crc64Kind;
use crc_fast::{CrcAlgorithm, Digest};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

#[derive(Debug)]
struct State {
    bytes: u64,
    crc: Digest,
    /// Ranges overwritten since they passed: (offset, old XOR new).
    patches: Vec<(u64, Vec<u8>)>,
}

/// Reads the figures of a [`Digesting`] writer, also after it is gone.
#[derive(Debug, Clone)]
pub struct DigestHandle(Arc<Mutex<State>>);

impl DigestHandle {
    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.0.lock().map_or(0, |s| s.bytes)
    }

    /// CRC-64/XZ of the bytes written so far, as they stand after any patches.
    pub fn crc64_xz(&self) -> u64 {
        self.0.lock().map_or(0, |s| {
            let mut patches = s.patches.clone();
            crate::format::crc::patched_checksum(Crc64Kind::Xz, s.crc.finalize(), s.bytes, &mut patches)
        })
    }
}

/// A writer that counts and checksums what passes through it.
#[derive(Debug)]
pub struct Digesting<W: Write> {
    inner: W,
    state: Arc<Mutex<State>>,
}

impl<W: Write> Digesting<W> {
    /// Wraps `inner`; the handle reads the figures.
    pub fn new(inner: W) -> (Self, DigestHandle) {
        let state =
            Arc::new(Mutex::new(State { bytes: 0, crc: Digest::new(CrcAlgorithm::Crc64Xz), patches: Vec::new() }));
        (Digesting { inner, state: state.clone() }, DigestHandle(state))
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Ok(mut s) = self.state.lock() {
            s.bytes += n as u64;
            s.crc.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: super::FinishWrite> super::FinishWrite for Digesting<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Box::new(self.inner).finish_write()
    }

    fn can_patch(&self) -> bool {
        self.inner.can_patch()
    }

    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock().map_err(|_| io::Error::other("Digesting: state poisoned"))?;
        super::check_patch(offset, old, new, s.bytes)?;
        self.inner.patch(offset, old, new)?;
        s.patches.push((offset, old.iter().zip(new).map(|(a, b)| a ^ b).collect()));
        Ok(())
    }
}

/// CRC-64/XZ of `data` (the checksum [`DigestHandle::crc64_xz`] reports).
pub fn crc64_xz(data: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Xz, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_checksums_what_passes() {
        let (mut w, h) = Digesting::new(Vec::new());
        w.write_all(b"1234").unwrap();
        w.write_all(b"56789").unwrap();
        assert_eq!(w.into_inner(), b"123456789");
        assert_eq!(h.bytes(), 9);
        // The CRC-64/XZ check value.
        assert_eq!(h.crc64_xz(), 0x995d_c9bb_df19_39fa);
        assert_eq!(crc64_xz(b"123456789"), 0x995d_c9bb_df19_39fa);
    }
}
