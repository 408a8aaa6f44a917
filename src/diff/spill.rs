//! Per-key records, partitioned by key hash: in memory while they fit the budget, in unlinked temporary files in
//! `$TMPDIR` once they do not.
//!
//! A record is `hash u64 | db u64 | offset u64 | type u8 | has-expiry u8 | expiry i64 | digest u128 | key-len u32 |
//! key` (little-endian), [`FIXED`] bytes before the key. Partition `p` at level `l` holds the records whose hash
//! has `p` in bits `58 − 6l … 63 − 6l`, so a partition too large to compare is split again by the next six bits.

use crate::error::{Error, ErrorKind, Result};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::Path;

/// Partitions per level (six bits of the hash).
pub const FANOUT: usize = 64;
/// Bits of the hash one level uses.
const BITS: u32 = 6;
/// Levels of splitting (60 of the hash's 64 bits); a partition at the last level is compared whatever its size.
pub const MAX_LEVEL: u32 = 9;
/// Bytes of a record before its key.
pub const FIXED: usize = 8 + 8 + 8 + 1 + 1 + 8 + 16 + 4;
/// What a record costs in memory beyond its bytes, when compared: its index entry (hash, offset).
pub const INDEX_COST: usize = std::mem::size_of::<(u64, usize)>();

/// One key's record, borrowed from a partition's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Rec<'a> {
    /// Hash of the database and key (partitioning).
    pub hash: u64,
    /// Database (or [`super::FUNCTIONS_DB`]).
    pub db: u64,
    /// Offset of the key record in its input.
    pub offset: u64,
    /// Type tag ([`super::type_tag`]).
    pub ty: u8,
    /// Absolute expiry in ms.
    pub expiry: Option<i64>,
    /// Value digest.
    pub digest: u128,
    /// The key (library name for a function).
    pub key: &'a [u8],
}

impl<'a> Rec<'a> {
    /// Appends the record's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hash.to_le_bytes());
        out.extend_from_slice(&self.db.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.push(self.ty);
        out.push(u8::from(self.expiry.is_some()));
        out.extend_from_slice(&self.expiry.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.digest.to_le_bytes());
        out.extend_from_slice(&(self.key.len() as u32).to_le_bytes());
        out.extend_from_slice(self.key);
    }

    /// Decodes the record at the start of `b`, with its length. Only bytes this module wrote are decoded, so a
    /// short buffer is an internal error, reported rather than panicking.
    pub fn decode(b: &'a [u8]) -> Result<(Rec<'a>, usize)> {
        let bad = || Error::without_offset(ErrorKind::Invalid("diff: a temporary partition file is damaged".into()));
        if b.len() < FIXED {
            return Err(bad());
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let key_len = u32::from_le_bytes(b[50..54].try_into().unwrap_or_default()) as usize;
        let end = FIXED.checked_add(key_len).filter(|&e| e <= b.len()).ok_or_else(bad)?;
        let rec = Rec {
            hash: u64_at(0),
            db: u64_at(8),
            offset: u64_at(16),
            ty: b[24],
            expiry: (b[25] != 0).then(|| u64_at(26) as i64),
            digest: u128::from_le_bytes(b[34..50].try_into().unwrap_or_default()),
            key: &b[FIXED..end],
        };
        Ok((rec, end))
    }
}

/// Partition of `hash` at `level`.
pub fn partition_of(hash: u64, level: u32) -> usize {
    let shift = 64 - BITS * (level + 1);
    ((hash >> shift) as usize) & (FANOUT - 1)
}

/// One partition: bytes in memory, and (once spilled) a temporary file holding the bytes written before them.
#[derive(Default)]
struct Part {
    mem: Vec<u8>,
    file: Option<File>,
    bytes: u64,
    count: u64,
}

/// The records of one input, partitioned at one level.
pub struct Partitions {
    parts: Vec<Part>,
    level: u32,
    /// Bytes held in memory, index costs included.
    held: usize,
    /// Spill everything once `held` exceeds this.
    limit: usize,
    /// Once spilled, a partition's buffer is written out when it reaches this.
    buf: usize,
    spilled: bool,
    /// Bytes written to temporary files (statistics).
    pub spilled_bytes: u64,
}

impl Partitions {
    /// Empty partitions at `level`, holding at most `limit` bytes in memory before spilling.
    pub fn new(level: u32, limit: usize) -> Self {
        Partitions {
            parts: (0..FANOUT).map(|_| Part::default()).collect(),
            level,
            held: 0,
            limit,
            buf: (limit / (2 * FANOUT)).clamp(1 << 10, 64 << 10),
            spilled: false,
            spilled_bytes: 0,
        }
    }

    /// Adds a record.
    pub fn push(&mut self, rec: &Rec<'_>) -> Result<()> {
        let p = &mut self.parts[partition_of(rec.hash, self.level)];
        let (before, cap) = (p.mem.len(), p.mem.capacity());
        rec.encode(&mut p.mem);
        p.bytes += (p.mem.len() - before) as u64;
        p.count += 1;
        if self.spilled {
            if p.mem.len() >= self.buf {
                self.spilled_bytes += flush(p)?;
            }
        } else {
            // What is allocated counts (a growing buffer holds up to twice its bytes), and the index to come.
            self.held += p.mem.capacity() - cap + INDEX_COST;
            if self.held > self.limit {
                self.spill()?;
            }
        }
        Ok(())
    }

    /// Writes every partition's bytes to its temporary file (from now on, memory holds only small buffers).
    pub fn spill(&mut self) -> Result<()> {
        for p in &mut self.parts {
            self.spilled_bytes += flush(p)?;
            p.mem = Vec::new();
        }
        self.spilled = true;
        self.held = 0;
        Ok(())
    }

    /// Bytes held in memory while not spilled (allocated buffers and the index they will need).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Whether the records went to temporary files.
    pub fn spilled(&self) -> bool {
        self.spilled
    }

    /// The level.
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Bytes and records of partition `i`.
    pub fn size(&self, i: usize) -> (u64, u64) {
        (self.parts[i].bytes, self.parts[i].count)
    }

    /// Records in all partitions.
    pub fn count(&self) -> u64 {
        self.parts.iter().map(|p| p.count).sum()
    }

    /// Finishes writing (buffers to files when spilled).
    pub fn finish(&mut self) -> Result<()> {
        if self.spilled {
            self.spill()?;
        }
        Ok(())
    }

    /// Partition `i`'s bytes: borrowed when in memory, read from its file into `buf` otherwise.
    pub fn load<'s>(&'s mut self, i: usize, buf: &'s mut Vec<u8>) -> Result<&'s [u8]> {
        let p = &mut self.parts[i];
        match p.file.as_mut() {
            None => Ok(&p.mem),
            Some(f) => {
                buf.clear();
                buf.shrink_to(0);
                buf.reserve_exact(usize::try_from(p.bytes).unwrap_or(usize::MAX));
                f.rewind().map_err(tmp_err)?;
                f.read_to_end(buf).map_err(tmp_err)?;
                Ok(buf)
            }
        }
    }

    /// Streams partition `i`'s records to `f` without loading it (a partition too large to hold).
    pub fn each(&mut self, i: usize, mut f: impl FnMut(&Rec<'_>) -> Result<()>) -> Result<()> {
        let p = &mut self.parts[i];
        let Some(file) = p.file.as_mut() else {
            let mut b = &p.mem[..];
            while !b.is_empty() {
                let (r, n) = Rec::decode(b)?;
                f(&r)?;
                b = &b[n..];
            }
            return Ok(());
        };
        file.rewind().map_err(tmp_err)?;
        let mut r = BufReader::with_capacity(64 << 10, &*file);
        let mut rec = Vec::new();
        loop {
            rec.clear();
            rec.resize(FIXED, 0);
            match r.read_exact(&mut rec) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(tmp_err(e)),
            }
            let key_len = u32::from_le_bytes(rec[50..54].try_into().unwrap_or_default()) as usize;
            rec.resize(FIXED + key_len, 0);
            r.read_exact(&mut rec[FIXED..]).map_err(tmp_err)?;
            f(&Rec::decode(&rec)?.0)?;
        }
    }

    /// Drops partition `i` (its memory and file) once compared.
    pub fn release(&mut self, i: usize) {
        self.parts[i] = Part::default();
    }
}

/// Appends a partition's buffer to its file (created on first use: an empty partition gets none); returns the
/// bytes written.
fn flush(p: &mut Part) -> Result<u64> {
    if p.mem.is_empty() {
        return Ok(0);
    }
    if p.file.is_none() {
        p.file = Some(temp_file()?);
    }
    let n = p.mem.len() as u64;
    if let Some(f) = p.file.as_mut() {
        f.write_all(&p.mem).map_err(tmp_err)?;
    }
    p.mem.clear();
    Ok(n)
}

/// A temporary file in `$TMPDIR`, already unlinked (nothing to clean up, even on a crash).
pub fn temp_file() -> Result<File> {
    tempfile::tempfile_in(std::env::temp_dir()).map_err(tmp_err)
}

fn tmp_err(e: io::Error) -> Error {
    let dir = std::env::temp_dir();
    Error::from(io::Error::new(e.kind(), format!("diff: temporary file in {}: {e}", show(&dir))))
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &[u8], hash: u64, expiry: Option<i64>) -> Rec<'_> {
        Rec { hash, db: 3, offset: 77, ty: 4, expiry, digest: u128::MAX - 5, key }
    }

    #[test]
    fn records_round_trip_and_a_short_buffer_is_an_error() {
        for (key, expiry) in [(&b""[..], None), (&b"k\x00\xff"[..], Some(-1)), (&b"key"[..], Some(i64::MAX))] {
            let r = rec(key, 0xdead_beef, expiry);
            let mut b = Vec::new();
            r.encode(&mut b);
            assert_eq!(b.len(), FIXED + key.len());
            let (d, n) = Rec::decode(&b).unwrap();
            assert_eq!(n, b.len());
            assert_eq!(
                (d.hash, d.db, d.offset, d.ty, d.expiry, d.digest, d.key),
                (r.hash, 3, 77, 4, expiry, r.digest, key)
            );
            for cut in 0..b.len() {
                assert!(Rec::decode(&b[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn each_level_uses_the_next_six_bits() {
        let h = 0b101010_000011_u64 << 52;
        assert_eq!(partition_of(h, 0), 0b101010);
        assert_eq!(partition_of(h, 1), 0b000011);
        assert_eq!(partition_of(u64::MAX, MAX_LEVEL), FANOUT - 1);
    }

    #[test]
    fn spilled_partitions_give_back_what_was_pushed() {
        let mut p = Partitions::new(0, 256);
        let keys: Vec<Vec<u8>> = (0..200u32).map(|i| format!("key-{i}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate() {
            p.push(&rec(k, (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15), None)).unwrap();
        }
        assert!(p.spilled());
        p.finish().unwrap();
        let mut seen = Vec::new();
        let mut buf = Vec::new();
        for i in 0..FANOUT {
            let size = p.size(i).0;
            let bytes = p.load(i, &mut buf).unwrap();
            assert_eq!(bytes.len() as u64, size);
            let mut b = bytes;
            while !b.is_empty() {
                let (r, n) = Rec::decode(b).unwrap();
                assert_eq!(partition_of(r.hash, 0), i);
                seen.push(r.key.to_vec());
                b = &b[n..];
            }
        }
        seen.sort();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(seen, want);
    }
}
