//! Redis's byte rules: every primitive and embedded-blob encoding of the RDB format, decoder and encoder side by
//! side, one file per encoding. Nothing above this module knows a byte layout.
//!
//! Decoders here work on complete byte slices and report errors with offsets relative to the slice they were
//! given; the record parser shifts them to file offsets.

pub mod crc;
pub mod double;
pub mod intset;
pub mod length;
pub mod listpack;
pub mod lzf;
pub mod opcode;
pub mod string;
#[cfg(test)]
pub(crate) mod testing;
pub mod ziplist;
pub mod zipmap;

/// The checks a blob gets before it is walked: at least `min` bytes (`what` names them), the total-size field
/// named `total` (a little-endian `u32` at offset 0, when the layout has one) equal to the blob's size, and the
/// end byte `0xFF` last.
pub(crate) fn check_frame(
    data: &[u8],
    structure: &'static str,
    what: &'static str,
    min: usize,
    total: Option<&'static str>,
) -> crate::Result<()> {
    use crate::Error;
    if data.len() < min {
        return Err(Error::truncated(what, min - data.len(), data.len() as u64));
    }
    if let Some(field) = total {
        let n = data.get(0..4).and_then(|s| <[u8; 4]>::try_from(s).ok()).map_or(0, u32::from_le_bytes);
        if u64::from(n) != data.len() as u64 {
            return Err(Error::corrupt(structure, format!("{field} is {n}, expected the blob size {}", data.len()), 0));
        }
    }
    if data.last() != Some(&0xFF) {
        return Err(Error::corrupt(structure, "expected the end byte 0xff as the last byte", data.len() as u64 - 1));
    }
    Ok(())
}

/// After a walk of a blob's entries stopped at the first `0xFF` byte at `pos`: that byte must be the last one.
pub(crate) fn check_walk_end(data: &[u8], pos: usize, structure: &'static str) -> crate::Result<()> {
    let end_pos = data.len() - 1;
    if pos != end_pos {
        return Err(crate::Error::corrupt(
            structure,
            format!("end byte 0xff found at offset {pos}, expected it only at the last byte {end_pos}"),
            pos as u64,
        ));
    }
    Ok(())
}

/// The entry layout a [`BlobElems`] walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Ziplist,
    Listpack,
}

/// Iterator over the elements of a ziplist or a listpack, front to back ([`ziplist::Ziplist::iter`],
/// [`listpack::Listpack::iter`]). Each item is an element, or the error that stopped the walk, after which the
/// iterator ends. The walk ends at the first `0xFF` byte in element position; per-entry back-links (ziplist
/// prevlens, listpack backlens) are skipped, not checked (that is what `validate` does).
#[derive(Debug, Clone)]
pub struct BlobElems<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
    layout: Layout,
}

impl<'a> BlobElems<'a> {
    fn new(data: &'a [u8], pos: usize, layout: Layout) -> Self {
        BlobElems { data, pos, done: false, layout }
    }

    /// Byte offset of the next element (see `iter_from` of [`ziplist::Ziplist`] and [`listpack::Listpack`]).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BlobElems<'a> {
    type Item = crate::Result<Elem<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if matches!(self.data.get(self.pos), None | Some(&0xFF)) {
            self.done = true;
            return None;
        }
        let entry = match self.layout {
            Layout::Ziplist => ziplist::read_entry(self.data, self.pos).map(|e| (e.elem, e.end)),
            Layout::Listpack => listpack::read_entry(self.data, self.pos).map(|e| (e.elem, e.end)),
        };
        match entry {
            Ok((elem, end)) => {
                self.pos = end;
                Some(Ok(elem))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for BlobElems<'_> {}

/// One element of an embedded collection blob (ziplist, listpack, intset, zipmap): bytes borrowed from the blob,
/// or an integer the blob stored in integer form. Both stand for the same logical Redis string: an integer is the
/// string of its decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    /// A byte string, borrowed from the blob.
    Bytes(&'a [u8]),
    /// An integer stored in integer form.
    Int(i64),
}

impl<'a> Elem<'a> {
    /// Appends the element's logical bytes (decimal text for an integer) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match *self {
            Elem::Bytes(b) => out.extend_from_slice(b),
            Elem::Int(i) => {
                let mut buf = itoa_buf();
                out.extend_from_slice(fmt_i64(i, &mut buf));
            }
        }
    }

    /// The element's logical bytes as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }

    /// The element as an integer: an `Int`, or `Bytes` holding a canonical integer (see [`parse_canonical_i64`]).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Elem::Int(i) => Some(i),
            Elem::Bytes(b) => parse_canonical_i64(b),
        }
    }
}

/// A stack buffer large enough for any `i64` in decimal.
pub(crate) fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Formats `v` in decimal into `buf`, returning the used tail.
pub(crate) fn fmt_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Parses `s` as Redis's `string2ll` does: an optional `-`, then decimal digits with no leading zero (except "0"
/// itself), no `+`, no spaces, not "-0", fitting in `i64`, at most 20 bytes. Such strings are the ones Redis stores in
/// integer form, so the round trip through the integer is exact.
pub fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 { None } else { Some((v as i64).wrapping_neg()) }
    } else {
        i64::try_from(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers() {
        assert_eq!(parse_canonical_i64(b"0"), Some(0));
        assert_eq!(parse_canonical_i64(b"-1"), Some(-1));
        assert_eq!(parse_canonical_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_canonical_i64(b"9223372036854775808"), None);
        for bad in [&b""[..], b"-0", b"01", b"+1", b" 1", b"1 ", b"-", b"1a"] {
            assert_eq!(parse_canonical_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integer_text() {
        for v in [0, 1, -1, 12, i64::MAX, i64::MIN, 1000, -4096] {
            assert_eq!(Elem::Int(v).to_vec(), v.to_string().into_bytes());
        }
    }
}
