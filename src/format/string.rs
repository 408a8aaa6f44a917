//! RDB strings (STR): a LEN-prefixed byte string, or one of the special encodings — an 8/16/32-bit integer that
//! stands for its decimal text, or an LZF-compressed string with its compressed and uncompressed lengths.
//!
//! [`RdbStr`] keeps the encoded form and borrows from the input, so a string can be copied out untouched, compared
//! cheaply, or decoded only when its bytes are needed.

use super::length::{Len, PError, PResult, encode_length, le_i32, length, length_or_special, take, take_u64};
use crate::error::{ErrorKind, Result};
use nom::Err as NomErr;
use std::borrow::Cow;

/// LZF output is at most this many times its input (a 3-byte back-reference expands to 264 bytes), so an
/// uncompressed length above `compressed * LZF_MAX_RATIO` is corrupt and is refused before allocating.
pub const LZF_MAX_RATIO: u64 = 89;

/// An RDB string as it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdbStr<'a> {
    /// Raw bytes.
    Raw(&'a [u8]),
    /// An integer (INT8/16/32 encoding); its logical value is the decimal text.
    Int(i64),
    /// LZF-compressed bytes and the length they decompress to.
    Lzf {
        /// The compressed bytes.
        compressed: &'a [u8],
        /// The decompressed length declared by the file.
        len: u64,
    },
}

impl<'a> RdbStr<'a> {
    /// The logical bytes: borrowed for raw strings, decoded for integers and LZF.
    pub fn decode(&self) -> Result<Cow<'a, [u8]>> {
        match *self {
            RdbStr::Raw(b) => Ok(Cow::Borrowed(b)),
            _ => {
                let mut v = Vec::new();
                self.decode_into(&mut v)?;
                Ok(Cow::Owned(v))
            }
        }
    }

    /// Appends the logical bytes to `out`.
    pub fn decode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        match *self {
            RdbStr::Raw(b) => out.extend_from_slice(b),
            RdbStr::Int(i) => super::Elem::Int(i).write_to(out),
            RdbStr::Lzf { compressed, len } => {
                let len = checked_lzf_len(compressed.len(), len)?;
                super::lzf::decompress_into(compressed, len, out)?;
            }
        }
        Ok(())
    }

    /// The logical bytes, borrowed for raw strings; integers and LZF strings are decoded into `buf`, which is
    /// overwritten and only ever grown (so a reused buffer is not cleared each time). Same errors as
    /// [`RdbStr::decode`].
    pub fn decode_reusing<'s>(&self, buf: &'s mut Vec<u8>) -> Result<&'s [u8]>
    where
        'a: 's,
    {
        match *self {
            RdbStr::Raw(b) => Ok(b),
            RdbStr::Int(i) => {
                buf.clear();
                super::Elem::Int(i).write_to(buf);
                Ok(&buf[..])
            }
            RdbStr::Lzf { compressed, len } => {
                let len = checked_lzf_len(compressed.len(), len)?;
                super::lzf::decompress_reusing(compressed, len, buf)
            }
        }
    }

    /// The logical length in bytes, without decoding.
    pub fn logical_len(&self) -> u64 {
        match *self {
            RdbStr::Raw(b) => b.len() as u64,
            RdbStr::Int(i) => {
                let mut buf = super::itoa_buf();
                super::fmt_i64(i, &mut buf).len() as u64
            }
            RdbStr::Lzf { len, .. } => len,
        }
    }

    /// The raw bytes when the string is stored raw.
    pub fn as_raw(&self) -> Option<&'a [u8]> {
        match *self {
            RdbStr::Raw(b) => Some(b),
            _ => None,
        }
    }

    /// Name of the encoding (`raw`, `int`, `lzf`).
    pub fn encoding_name(&self) -> &'static str {
        match self {
            RdbStr::Raw(_) => "raw",
            RdbStr::Int(_) => "int",
            RdbStr::Lzf { .. } => "lzf",
        }
    }
}

/// Checks a declared LZF output length against what the compressed bytes can possibly produce.
pub fn checked_lzf_len(compressed_len: usize, len: u64) -> Result<usize> {
    let max = (compressed_len as u64).saturating_mul(LZF_MAX_RATIO);
    if len > max || len == 0 {
        return Err(crate::Error::new(ErrorKind::OutOfRange { what: "LZF uncompressed length", value: len }, 0));
    }
    usize::try_from(len)
        .map_err(|_| crate::Error::new(ErrorKind::OutOfRange { what: "LZF uncompressed length", value: len }, 0))
}

/// Decodes one RDB string (plain, integer or LZF form; LZF left compressed) at the start of `bytes`: the string
/// and how many bytes it took.
///
/// ```
/// use rdbkit::format::string::{RdbStr, decode_str};
/// assert_eq!(decode_str(b"\x03abc!").unwrap(), (RdbStr::Raw(b"abc"), 4));
/// assert_eq!(decode_str(&[0xc0, 0x7b]).unwrap(), (RdbStr::Int(123), 2));
/// ```
pub fn decode_str(bytes: &[u8]) -> crate::Result<(RdbStr<'_>, usize)> {
    crate::format::length::run_parser(bytes, "string", rdb_str)
}

/// Parses one STR.
#[inline]
pub(crate) fn rdb_str(i: &[u8]) -> PResult<'_, RdbStr<'_>> {
    let (r, l) = length_or_special(i)?;
    match l {
        Len::Len(n) => {
            let (r, b) = take_u64(r, n)?;
            Ok((r, RdbStr::Raw(b)))
        }
        Len::Special(0) => {
            let (r, b) = take(r, 1)?;
            Ok((r, RdbStr::Int(i64::from(b[0] as i8))))
        }
        Len::Special(1) => {
            let (r, b) = take(r, 2)?;
            Ok((r, RdbStr::Int(i64::from(i16::from_le_bytes([b[0], b[1]])))))
        }
        Len::Special(2) => {
            let (r, v) = le_i32(r)?;
            Ok((r, RdbStr::Int(i64::from(v))))
        }
        Len::Special(3) => {
            let (r, clen) = length(r)?;
            let (r, ulen) = length(r)?;
            let (r, compressed) = take_u64(r, clen)?;
            if ulen == 0 {
                // The servers' `lzf_decompress` into 0 bytes returns 0, which equals the declared length: they
                // load an empty string, whatever the compressed bytes.
                crate::read::note_warning(i, crate::read::WarningKind::EmptyLzf);
                // (An empty slice of the input, not a static one: callers locate parts by address.)
                return Ok((r, RdbStr::Raw(&compressed[compressed.len()..])));
            }
            if ulen > (clen.saturating_mul(LZF_MAX_RATIO)) {
                return PError::fail(i, ErrorKind::OutOfRange { what: "LZF uncompressed length", value: ulen });
            }
            Ok((r, RdbStr::Lzf { compressed, len: ulen }))
        }
        Len::Special(_) => PError::fail(i, ErrorKind::InvalidStringEncoding(i[0])),
    }
}

/// Parses a STR that must be stored raw with exactly `n` bytes (stream node keys), returning the bytes.
pub(crate) fn raw_str_exact(i: &[u8], n: usize) -> PResult<'_, &[u8]> {
    let (r, s) = rdb_str(i)?;
    match s {
        RdbStr::Raw(b) if b.len() == n => Ok((r, b)),
        _ => Err(NomErr::Failure(PError {
            at: i,
            error: crate::Error::corrupt("string", format!("expected a raw string of {n} bytes"), 0),
        })),
    }
}

/// How the string encoder treats long strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Never LZF-compress (Redis `rdbcompression no`).
    Off,
    /// Compress strings longer than 20 bytes when it saves at least 4 bytes, as Redis does.
    Lzf,
}

/// Appends `s` as an STR the way Redis's `rdbSaveRawString` does: a canonical integer of at most 11 bytes in
/// int32 range → smallest INT form; else, when compression is on and `s` is longer than 20 bytes, LZF if it saves
/// at least 4 bytes; else raw.
pub fn encode_str(s: &[u8], compression: Compression, lzf: &mut super::lzf::Compressor, out: &mut Vec<u8>) {
    if s.len() <= 11
        && let Some(v) = super::parse_canonical_i64(s)
        && encode_int(v, out)
    {
        return;
    }
    if compression == Compression::Lzf && s.len() > 20 {
        let start = out.len();
        // Header is written after we know the compressed size; compress into a scratch area at the end first.
        let mut tmp = Vec::new();
        if lzf.compress(s, &mut tmp, s.len() - 4) {
            out.push(0xC3);
            encode_length(tmp.len() as u64, out);
            encode_length(s.len() as u64, out);
            out.extend_from_slice(&tmp);
            return;
        }
        out.truncate(start);
    }
    encode_raw_str(s, out);
}

/// Appends `s` as a plain LEN-prefixed STR.
pub fn encode_raw_str(s: &[u8], out: &mut Vec<u8>) {
    encode_length(s.len() as u64, out);
    out.extend_from_slice(s);
}

/// Appends `v` in the smallest INT encoding if it fits in 32 bits; returns false (writing nothing) otherwise.
pub fn encode_int(v: i64, out: &mut Vec<u8>) -> bool {
    if let Ok(b) = i8::try_from(v) {
        out.extend_from_slice(&[0xC0, b as u8]);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xC1);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xC2);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_forms() {
        assert_eq!(rdb_str(&[0xC0, 0xFF]).unwrap().1, RdbStr::Int(-1));
        assert_eq!(rdb_str(&[0xC1, 0xAB, 0xAB]).unwrap().1, RdbStr::Int(i64::from(0xABABu16 as i16)));
        assert_eq!(rdb_str(&[0xC2, 0x25, 0xD3, 0xED, 0x0A]).unwrap().1, RdbStr::Int(0x0AEDD325));
        assert_eq!(RdbStr::Int(-123).decode().unwrap().as_ref(), b"-123");
        assert!(matches!(rdb_str(&[0xC4]), Err(NomErr::Failure(_))));
        assert!(matches!(rdb_str(&[0x03, b'a']), Err(NomErr::Incomplete(_))));
    }

    #[test]
    fn lzf_length_is_bounded() {
        // 2 compressed bytes cannot yield 1 GiB.
        let mut v = vec![0xC3, 0x02];
        encode_length(1 << 30, &mut v);
        v.extend_from_slice(&[0, 0]);
        assert!(matches!(rdb_str(&v), Err(NomErr::Failure(_))));
    }

    #[test]
    fn encoder_matches_redis_rules() {
        let mut c = crate::format::lzf::Compressor::new();
        let mut out = Vec::new();
        encode_str(b"12345", Compression::Lzf, &mut c, &mut out);
        assert_eq!(out, [0xC1, 0x39, 0x30]);
        out.clear();
        encode_str(b"2147483648", Compression::Lzf, &mut c, &mut out);
        assert_eq!(out[0], 10, "outside int32 stays text");
        out.clear();
        encode_str(b"007", Compression::Lzf, &mut c, &mut out);
        assert_eq!(out, [3, b'0', b'0', b'7']);
        out.clear();
        let long = vec![b'a'; 200];
        encode_str(&long, Compression::Lzf, &mut c, &mut out);
        assert_eq!(out[0], 0xC3);
        let (rest, s) = rdb_str(&out).unwrap();
        assert!(rest.is_empty());
        assert_eq!(s.decode().unwrap().as_ref(), &long[..]);
        out.clear();
        encode_str(&long, Compression::Off, &mut c, &mut out);
        assert_eq!(out.len(), 2 + 200);
    }
}
