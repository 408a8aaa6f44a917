//! Listpacks (RDB types 16, 17, 18, 20, 25 and stream nodes): a decoder that borrows from the blob, a deep
//! validator equivalent to Redis's `lpValidateIntegrity`, and an encoder that writes exactly what a sequence of
//! Redis `lpAppend` calls would produce.
//!
//! Layout (spec §5.3): a 6-byte header `total_bytes u32 LE`, `num_elements u16 LE`, then elements
//! `encoding+data | backlen`, then the end byte `0xFF`. The backlen (1–5 bytes) holds the size of the element's
//! encoding and data so the listpack can be walked backwards.

use super::{Elem, parse_canonical_i64};
use crate::error::{Error, Result};

/// Structure name used in error messages.
const NAME: &str = "listpack";
/// Size of the header (`total_bytes`, `num_elements`).
pub const HEADER_SIZE: usize = 6;
/// The end-of-listpack byte.
pub const END: u8 = 0xFF;
/// `num_elements` value meaning "count unknown, walk the elements".
const UNKNOWN_COUNT: u16 = u16::MAX;

/// A listpack blob whose header has been checked (see [`Listpack::new`]); elements are decoded lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listpack<'a> {
    data: &'a [u8],
}

impl<'a> Listpack<'a> {
    /// Wraps `data` after the cheap header checks: at least 7 bytes, `total_bytes` equal to the blob size, last
    /// byte `0xFF`. Elements are not looked at; use [`Listpack::validate`] for the deep check.
    pub fn new(data: &'a [u8]) -> Result<Self> {
        super::check_frame(data, NAME, "listpack header and end byte", HEADER_SIZE + 1, Some("total_bytes"))?;
        Ok(Listpack { data })
    }

    /// The whole blob, header and end byte included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The element count from the header (`num_elements`), or `None` when it is 65535 ("unknown, walk").
    pub fn header_count(&self) -> Option<usize> {
        let n = self.data.get(4..6).and_then(|s| <[u8; 2]>::try_from(s).ok()).map_or(0, u16::from_le_bytes);
        (n != UNKNOWN_COUNT).then_some(usize::from(n))
    }

    /// Iterates over the elements, front to back. Each item is the element's value, or the error that stopped the
    /// walk (after which the iterator ends). The walk ends at the first `0xFF` byte in element position. Backlens
    /// are skipped, not checked (see [`Listpack::validate`]).
    pub fn iter(&self) -> ListpackIter<'a> {
        super::BlobElems::new(self.data, HEADER_SIZE, super::Layout::Listpack)
    }

    /// Like [`Listpack::iter`], resuming at byte offset `pos` (a [`ListpackIter::position`] of an earlier
    /// iterator over the same blob), so that an iteration can be suspended without holding a borrow.
    pub fn iter_from(&self, pos: usize) -> ListpackIter<'a> {
        super::BlobElems::new(self.data, pos.max(HEADER_SIZE), super::Layout::Listpack)
    }

    /// Deep validation, as Redis's `lpValidateIntegrity(.., deep=1)`: every element decodes inside the blob, each
    /// backlen encodes the element's encoding+data size in exactly the number of bytes Redis uses for that size,
    /// the end byte follows the last element, and the count equals `num_elements` unless that is 65535. Returns
    /// the number of elements.
    pub fn validate(&self) -> Result<usize> {
        self.validate_with(|_| {})
    }

    /// [`Listpack::validate`], calling `each` with every element (in order) once its encoding has been checked, so
    /// that a caller needing the elements too walks the blob once. When validation fails, `each` has seen the
    /// elements before the faulty one (and possibly that one); callers must let the error take precedence.
    pub fn validate_with(&self, each: impl FnMut(Elem<'a>)) -> Result<usize> {
        let count = self.validate_elements_with(each)?;
        if let Some(n) = self.header_count()
            && n != count
        {
            return Err(Error::corrupt(NAME, format!("num_elements is {n}, but the listpack holds {count}"), 4));
        }
        Ok(count)
    }

    /// [`Listpack::validate`] without comparing `num_elements` with the elements (what the servers check for
    /// stream nodes): returns the number of elements.
    pub fn validate_elements(&self) -> Result<usize> {
        self.validate_elements_with(|_| {})
    }

    fn validate_elements_with(&self, mut each: impl FnMut(Elem<'a>)) -> Result<usize> {
        let data = self.data;
        let mut pos = HEADER_SIZE;
        let mut count = 0usize;
        while data.get(pos).is_some_and(|&b| b != END) {
            let entry = read_entry(data, pos)?;
            let backlen_pos = pos + entry.size;
            each(entry.elem);
            // The common 1-byte backlen (entry.end is past a backlen of exactly `backlen_size(size)` bytes).
            if entry.size <= 127 && data.get(backlen_pos) == Some(&(entry.size as u8)) {
                pos = entry.end;
                count += 1;
                continue;
            }
            let actual = data.get(backlen_pos..entry.end).unwrap_or_default();
            let mut buf = [0u8; 5];
            let expected = encode_backlen(entry.size, &mut buf);
            if actual != expected && server_backlen(data, entry.end - 1) == Some(entry.size as u64) {
                // Not what the servers write, but what their `lpValidateNext` accepts.
                crate::read::note_warning(&data[backlen_pos..], crate::read::WarningKind::ListpackBacklen);
            } else if actual != expected {
                return Err(Error::corrupt(
                    NAME,
                    format!(
                        "element backlen bytes {actual:02x?} do not encode the element size {}, expected {expected:02x?}",
                        entry.size
                    ),
                    backlen_pos as u64,
                ));
            }
            pos = entry.end;
            count += 1;
        }
        super::check_walk_end(data, pos, NAME)?;
        Ok(count)
    }

    /// Appends to `out` the listpack Redis builds by `lpAppend`ing `items` to an empty listpack, one by one.
    ///
    /// Canonical int64 text (see [`parse_canonical_i64`]) is stored as the smallest integer encoding (7-bit
    /// 0..=127, 13-bit −4096..=4095, then int16, int24, int32, int64); other strings use the 6-bit (< 64), 12-bit
    /// (< 4096) or 32-bit length. `num_elements` saturates at 65535.
    ///
    /// # Panics
    ///
    /// If the listpack would be larger than `u32::MAX` bytes (which Redis cannot represent either).
    pub fn encode<'e, I: IntoIterator<Item = &'e [u8]>>(items: I, out: &mut Vec<u8>) {
        Self::encode_elems(items.into_iter().map(Elem::Bytes), out);
    }

    /// Like [`Listpack::encode`], but an [`Elem::Int`] is written directly in integer form (stream node and
    /// hash-TTL listpacks hold integers that are not text); an [`Elem::Bytes`] follows the rule of `encode`.
    ///
    /// # Panics
    ///
    /// If the listpack would be larger than `u32::MAX` bytes.
    pub fn encode_elems<'e, I: IntoIterator<Item = Elem<'e>>>(items: I, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; HEADER_SIZE]);
        let mut count = 0usize;
        for item in items {
            push_elem(item, out);
            count += 1;
        }
        out.push(END);
        let total = to_u32(out.len() - start);
        let n = u16::try_from(count).unwrap_or(UNKNOWN_COUNT);
        let header = &mut out[start..start + HEADER_SIZE];
        header[0..4].copy_from_slice(&total.to_le_bytes());
        header[4..6].copy_from_slice(&n.to_le_bytes());
    }
}

impl<'a> IntoIterator for &Listpack<'a> {
    type Item = Result<Elem<'a>>;
    type IntoIter = ListpackIter<'a>;

    fn into_iter(self) -> ListpackIter<'a> {
        self.iter()
    }
}

/// Iterator over a listpack's elements (see [`Listpack::iter`]): the iterator shared with the other blob layout.
pub type ListpackIter<'a> = super::BlobElems<'a>;

/// Number of bytes Redis's `lpEncodeBacklen` uses for an element of encoding+data size `size` (note the strict
/// upper bounds: 16383 takes 3 bytes).
pub fn backlen_size(size: usize) -> usize {
    match size {
        0..=127 => 1,
        128..16383 => 2,
        16383..2097151 => 3,
        2097151..268435455 => 4,
        _ => 5,
    }
}

/// The servers' `lpDecodeBacklen`, reading backwards from the backlen's last byte at `last`: 7 bits a byte while
/// the high bit is set, at most 5 bytes (`None` past that, or before the start of `data`). It can read into the
/// element's own bytes when the last backlen byte has a continuation bit it does not need.
fn server_backlen(data: &[u8], last: usize) -> Option<u64> {
    let (mut val, mut shift, mut p) = (0u64, 0u32, last);
    loop {
        let b = *data.get(p)?;
        val |= u64::from(b & 127) << shift;
        if b & 128 == 0 {
            return Some(val);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
        p = p.checked_sub(1)?;
    }
}

/// Encodes `size` as a backlen into `buf`, returning the used prefix: the leftmost byte holds the most significant
/// 7 bits without the 0x80 flag, every following byte has 0x80 set, the last holds the least significant 7 bits.
pub fn encode_backlen(size: usize, buf: &mut [u8; 5]) -> &[u8] {
    let n = backlen_size(size);
    for (i, b) in buf.iter_mut().take(n).enumerate() {
        let shift = 7 * (n - 1 - i);
        let bits = ((size as u64) >> shift) as u8 & 0x7F;
        *b = if i == 0 { bits } else { bits | 0x80 };
    }
    &buf[..n]
}

/// One decoded element.
pub(super) struct Entry<'a> {
    /// The value.
    pub(super) elem: Elem<'a>,
    /// Size of encoding + data (what the backlen must say).
    size: usize,
    /// Offset just past the backlen.
    pub(super) end: usize,
}

/// Decodes the element at `pos` (which must not hold the end byte). The element and its backlen must lie before
/// the blob's last byte (the end byte).
#[inline]
pub(super) fn read_entry(data: &[u8], pos: usize) -> Result<Entry<'_>> {
    // Fast paths for the common small encodings; anything they do not accept whole goes through the general
    // decoder, which gives the same result for what they accept.
    let limit = data.len().saturating_sub(1);
    if let Some(&b0) = data.get(pos) {
        match b0 {
            // 7-bit unsigned integer: size 1, 1-byte backlen.
            0x00..=0x7F if pos + 2 <= limit => {
                return Ok(Entry { elem: Elem::Int(i64::from(b0)), size: 1, end: pos + 2 });
            }
            // 6-bit string: size <= 64, 1-byte backlen.
            0x80..=0xBF => {
                let n = usize::from(b0 & 0x3F);
                if pos + n + 2 <= limit
                    && let Some(b) = data.get(pos + 1..pos + 1 + n)
                {
                    return Ok(Entry { elem: Elem::Bytes(b), size: n + 1, end: pos + n + 2 });
                }
            }
            // 13-bit signed integer: size 2, 1-byte backlen.
            0xC0..=0xDF if pos + 3 <= limit => {
                let raw = (i64::from(b0 & 0x1F) << 8) | i64::from(data[pos + 1]);
                let v = if raw >= 4096 { raw - 8192 } else { raw };
                return Ok(Entry { elem: Elem::Int(v), size: 2, end: pos + 3 });
            }
            _ => {}
        }
    }
    read_entry_general(data, pos)
}

/// [`read_entry`] for every encoding.
fn read_entry_general(data: &[u8], pos: usize) -> Result<Entry<'_>> {
    let limit = data.len().saturating_sub(1);
    let b0 = take(data, pos, 1, limit, "element encoding")?.first().copied().unwrap_or(END);
    // (size of encoding+data, offset of the data, value kind)
    enum Kind {
        Str(usize),
        Int(i64),
        IntBytes(usize),
    }
    let second = |what| take(data, pos + 1, 1, limit, what).map(|s| usize::from(s.first().copied().unwrap_or(0)));
    let (hdr, kind) = match b0 {
        0x00..=0x7F => (1, Kind::Int(i64::from(b0))),
        0x80..=0xBF => (1, Kind::Str(usize::from(b0 & 0x3F))),
        0xC0..=0xDF => {
            let raw = (usize::from(b0 & 0x1F) << 8) | second("13-bit integer")?;
            let v = raw as i64;
            (2, Kind::Int(if v >= 4096 { v - 8192 } else { v }))
        }
        0xE0..=0xEF => (2, Kind::Str((usize::from(b0 & 0x0F) << 8) | second("12-bit string length")?)),
        0xF0 => {
            let s = take(data, pos + 1, 4, limit, "32-bit string length")?;
            let len = <[u8; 4]>::try_from(s).map_or(0, u32::from_le_bytes);
            (5, Kind::Str(len as usize))
        }
        0xF1 => (1, Kind::IntBytes(2)),
        0xF2 => (1, Kind::IntBytes(3)),
        0xF3 => (1, Kind::IntBytes(4)),
        0xF4 => (1, Kind::IntBytes(8)),
        _ => {
            return Err(Error::corrupt(
                NAME,
                format!("invalid element encoding byte 0x{b0:02x}, expected 0x00..0xf4"),
                pos as u64,
            ));
        }
    };
    let data_len = match kind {
        Kind::Str(n) | Kind::IntBytes(n) => n,
        Kind::Int(_) => 0,
    };
    let overflow = || Error::corrupt(NAME, format!("element size {data_len} overflows"), pos as u64);
    let size = data_len.checked_add(hdr).ok_or_else(overflow)?;
    let total = size.checked_add(backlen_size(size)).ok_or_else(overflow)?;
    let body = take(data, pos, total, limit, "element")?;
    let payload = body.get(hdr..size).unwrap_or_default();
    let elem = match kind {
        Kind::Str(_) => Elem::Bytes(payload),
        Kind::Int(v) => Elem::Int(v),
        Kind::IntBytes(_) => Elem::Int(le_signed(payload)),
    };
    Ok(Entry { elem, size, end: pos + total })
}

/// `n` bytes at `from`, which must end at or before `limit` (the end byte's offset).
fn take<'a>(data: &'a [u8], from: usize, n: usize, limit: usize, what: &'static str) -> Result<&'a [u8]> {
    from.checked_add(n).filter(|&end| end <= limit).and_then(|end| data.get(from..end)).ok_or_else(|| {
        Error::corrupt(
            NAME,
            format!("{what} needs {n} byte(s) at offset {from}, overrunning the end byte at offset {limit}"),
            from as u64,
        )
    })
}

/// Little-endian two's-complement integer of 1 to 8 bytes, sign-extended.
fn le_signed(b: &[u8]) -> i64 {
    let n = b.len().min(8);
    let mut v = 0u64;
    for (i, &x) in b.iter().take(n).enumerate() {
        v |= u64::from(x) << (8 * i);
    }
    let shift = 64 - 8 * n as u32;
    if shift == 0 || shift == 64 { v as i64 } else { ((v << shift) as i64) >> shift }
}

/// A size as a u32 field.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("listpack larger than u32::MAX bytes")
}

/// Appends one element (encoding, data, backlen).
fn push_elem(item: Elem<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    match item {
        Elem::Int(v) => push_int(v, out),
        Elem::Bytes(b) => match parse_canonical_i64(b) {
            Some(v) => push_int(v, out),
            None => push_str(b, out),
        },
    }
    let mut buf = [0u8; 5];
    let backlen = encode_backlen(out.len() - start, &mut buf);
    out.extend_from_slice(backlen);
}

/// Appends the smallest integer encoding of `v` (Redis `lpEncodeGetType` / `lpEncodeIntegerGetType`).
fn push_int(v: i64, out: &mut Vec<u8>) {
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { v + 8192 } else { v } as u16;
        out.push(0xC0 | (u >> 8) as u8);
        out.push((u & 0xFF) as u8);
    } else if let Ok(x) = i16::try_from(v) {
        out.push(0xF1);
        out.extend_from_slice(&x.to_le_bytes());
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        out.push(0xF2);
        out.extend_from_slice(&v.to_le_bytes()[..3]);
    } else if let Ok(x) = i32::try_from(v) {
        out.push(0xF3);
        out.extend_from_slice(&x.to_le_bytes());
    } else {
        out.push(0xF4);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends a string encoding and the bytes.
fn push_str(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 64 {
        out.push(0x80 | len as u8);
    } else if len < 4096 {
        out.push(0xE0 | (len >> 8) as u8);
        out.push((len & 0xFF) as u8);
    } else {
        out.push(0xF0);
        out.extend_from_slice(&to_u32(len).to_le_bytes());
    }
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;

    fn enc(items: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        Listpack::encode(items.iter().copied(), &mut out);
        out
    }

    /// The bytes of the single element of a one-element listpack.
    fn one(item: &[u8]) -> Vec<u8> {
        let out = enc(&[item]);
        out[HEADER_SIZE..out.len() - 1].to_vec()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Blobs from the corpus (HDT3213/rdb cases, written by Redis 7): a zset listpack, a set listpack and a stream
    /// node; re-encoding the decoded elements reproduces them byte for byte.
    #[test]
    fn real_redis_blobs() {
        for (h, n) in [
            (
                "5b00000018000b01f400000000feffffff090901f3000000f0050701f20000f0040501f104c0030c01d8300203010001\
                 010101010201c7d0020401f1fc3f030601f2000010040801f300000010050a01f4000000000200000009ff",
                24,
            ),
            ("130000000400816102816202816302816402ff", 4),
            ("230000000c00010100010201816b02816b0200010201000100018176028176020501ff", 12),
        ] {
            let blob = hex(h);
            let lp = Listpack::new(&blob).unwrap();
            assert_eq!(lp.validate().unwrap(), n);
            let elems: Vec<Elem> = lp.iter().map(|e| e.unwrap()).collect();
            let mut out = Vec::new();
            Listpack::encode_elems(elems.iter().copied(), &mut out);
            assert_eq!(out, blob);
            let texts: Vec<Vec<u8>> = elems.iter().map(Elem::to_vec).collect();
            let mut out = Vec::new();
            Listpack::encode(texts.iter().map(|t| t.as_slice()), &mut out);
            assert_eq!(out, blob);
        }
    }

    fn is_corrupt(e: &Error) -> bool {
        matches!(e.kind(), ErrorKind::Corrupt { .. })
    }

    /// A listpack with a correct header around raw element bytes.
    fn raw(body: &[u8], count: u16) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_SIZE];
        v.extend_from_slice(body);
        v.push(END);
        let n = v.len() as u32;
        v[0..4].copy_from_slice(&n.to_le_bytes());
        v[4..6].copy_from_slice(&count.to_le_bytes());
        v
    }

    #[test]
    fn hand_computed_listpack() {
        let expected = [
            0x10, 0x00, 0x00, 0x00, 0x03, 0x00, // header
            0x81, b'a', 0x02, // "a"
            0xC4, 0x00, 0x02, // 1024 as 13-bit
            0xDF, 0xFF, 0x02, // -1 as 13-bit
            0xFF,
        ];
        assert_eq!(enc(&[b"a", b"1024", b"-1"]), expected);
        let lp = Listpack::new(&expected).unwrap();
        assert_eq!(lp.validate().unwrap(), 3);
        let got: Vec<Elem> = lp.iter().map(|e| e.unwrap()).collect();
        assert_eq!(got, vec![Elem::Bytes(b"a"), Elem::Int(1024), Elem::Int(-1)]);
    }

    #[test]
    fn integer_encodings() {
        let cases: [(&[u8], &[u8]); 16] = [
            (b"0", &[0x00, 0x01]),
            (b"127", &[0x7F, 0x01]),
            (b"128", &[0xC0, 0x80, 0x02]),
            (b"4095", &[0xCF, 0xFF, 0x02]),
            (b"-4096", &[0xD0, 0x00, 0x02]),
            (b"-4097", &[0xF1, 0xFF, 0xEF, 0x03]),
            (b"4096", &[0xF1, 0x00, 0x10, 0x03]),
            (b"-32768", &[0xF1, 0x00, 0x80, 0x03]),
            (b"32768", &[0xF2, 0x00, 0x80, 0x00, 0x04]),
            (b"8388607", &[0xF2, 0xFF, 0xFF, 0x7F, 0x04]),
            (b"-8388608", &[0xF2, 0x00, 0x00, 0x80, 0x04]),
            (b"8388608", &[0xF3, 0x00, 0x00, 0x80, 0x00, 0x05]),
            (b"2147483648", &[0xF4, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x09]),
            (b"012", &[0x83, b'0', b'1', b'2', 0x04]),
            (b"-0", &[0x82, b'-', b'0', 0x03]),
            (b"", &[0x80, 0x01]),
        ];
        for (text, bytes) in cases {
            assert_eq!(one(text), bytes, "{text:?}");
            let out = enc(&[text]);
            let lp = Listpack::new(&out).unwrap();
            assert_eq!(lp.validate().unwrap(), 1);
            assert_eq!(lp.iter().next().unwrap().unwrap().to_vec(), text);
        }
        // negative 13-bit values decode signed
        for v in [-1i64, -4096, -100, 4095, 128] {
            let out = enc(&[v.to_string().as_bytes()]);
            let got = Listpack::new(&out).unwrap().iter().next().unwrap().unwrap();
            assert_eq!(got, Elem::Int(v));
        }
    }

    #[test]
    fn encode_elems_writes_ints() {
        let mut a = Vec::new();
        Listpack::encode_elems([Elem::Int(-5), Elem::Bytes(b"77"), Elem::Bytes(b"x")], &mut a);
        assert_eq!(a, raw(&[0xDF, 0xFB, 0x02, 0x4D, 0x01, 0x81, b'x', 0x02], 3));
        let mut b = Vec::new();
        Listpack::encode_elems([Elem::Int(i64::MIN)], &mut b);
        assert_eq!(b[6], 0xF4);
        assert_eq!(Listpack::new(&b).unwrap().iter().next().unwrap().unwrap(), Elem::Int(i64::MIN));
    }

    #[test]
    fn string_encodings() {
        let s63 = vec![b'a'; 63];
        assert_eq!(&one(&s63)[..1], &[0xBF]);
        let s64 = vec![b'a'; 64];
        assert_eq!(&one(&s64)[..2], &[0xE0, 0x40]);
        let s4095 = vec![b'a'; 4095];
        let e = one(&s4095);
        assert_eq!(&e[..2], &[0xEF, 0xFF]);
        // size 4097 → backlen 2 bytes: 4097 = 32*128 + 1
        assert_eq!(&e[e.len() - 2..], &[0x20, 0x81]);
        let s4096 = vec![b'a'; 4096];
        let e = one(&s4096);
        assert_eq!(&e[..5], &[0xF0, 0x00, 0x10, 0x00, 0x00]);
        for s in [s63, s64, s4095, s4096] {
            let out = enc(&[&s]);
            let lp = Listpack::new(&out).unwrap();
            assert_eq!(lp.validate().unwrap(), 1);
            assert_eq!(lp.iter().next().unwrap().unwrap(), Elem::Bytes(&s));
        }
    }

    #[test]
    fn backlen_boundaries() {
        let mut buf = [0u8; 5];
        assert_eq!(encode_backlen(1, &mut buf), &[0x01]);
        assert_eq!(encode_backlen(127, &mut buf), &[0x7F]);
        assert_eq!(encode_backlen(128, &mut buf), &[0x01, 0x80]);
        assert_eq!(encode_backlen(16382, &mut buf), &[0x7F, 0xFE]);
        assert_eq!(encode_backlen(16383, &mut buf), &[0x00, 0xFF, 0xFF]);
        assert_eq!(encode_backlen(2097150, &mut buf), &[0x7F, 0xFF, 0xFE]);
        assert_eq!(encode_backlen(2097151, &mut buf), &[0x00, 0xFF, 0xFF, 0xFF]);
        assert_eq!(encode_backlen(268435455, &mut buf), &[0x00, 0xFF, 0xFF, 0xFF, 0xFF]);
        // Whole elements at the size boundaries: 12-bit strings of 125/126 bytes are 127/128 bytes with their
        // encoding; 32-bit strings of 16377/16378 bytes are 16382/16383.
        for (len, backlen) in
            [(125, &[0x7F][..]), (126, &[0x01, 0x80]), (16377, &[0x7F, 0xFE]), (16378, &[0x00, 0xFF, 0xFF])]
        {
            let s = vec![b'q'; len];
            let e = one(&s);
            assert_eq!(&e[e.len() - backlen.len()..], backlen, "len {len}");
            assert_eq!(e.len(), len + if len < 4096 { 2 } else { 5 } + backlen.len());
            let out = enc(&[&s, b"z"]);
            assert_eq!(Listpack::new(&out).unwrap().validate().unwrap(), 2);
        }
    }

    #[test]
    fn count_saturates() {
        let items = vec![&b"x"[..]; 65535];
        let out = enc(&items);
        assert_eq!(&out[4..6], &[0xFF, 0xFF]);
        let lp = Listpack::new(&out).unwrap();
        assert_eq!(lp.header_count(), None);
        assert_eq!(lp.validate().unwrap(), 65535);
        let out = enc(&items[..65534]);
        assert_eq!(Listpack::new(&out).unwrap().header_count(), Some(65534));
    }

    #[test]
    fn empty() {
        let out = enc(&[]);
        assert_eq!(out, [7, 0, 0, 0, 0, 0, 0xFF]);
        let lp = Listpack::new(&out).unwrap();
        assert_eq!(lp.validate().unwrap(), 0);
        assert!(lp.iter().next().is_none());
    }

    #[test]
    fn errors() {
        assert!(Listpack::new(&[7, 0, 0]).unwrap_err().is_truncated());
        let good = enc(&[b"abc", b"5"]);
        assert!(is_corrupt(&Listpack::new(&good[..good.len() - 1]).unwrap_err()));
        let mut bad = good.clone();
        bad[0] = 99;
        assert!(is_corrupt(&Listpack::new(&bad).unwrap_err()));
        // bad backlen
        let mut bad = good.clone();
        bad[10] = 0x05;
        let e = Listpack::new(&bad).unwrap().validate().unwrap_err();
        assert!(is_corrupt(&e));
        assert_eq!(e.offset(), Some(10));
        assert_eq!(Listpack::new(&bad).unwrap().iter().count(), 2, "iteration skips backlens");
        // backlen with the right value in the wrong form (0x80 flag on a 1-byte backlen)
        let mut bad = good.clone();
        bad[10] = 0x84;
        assert!(Listpack::new(&bad).unwrap().validate().is_err());
        // wrong count
        let mut bad = good.clone();
        bad[4] = 3;
        assert_eq!(Listpack::new(&bad).unwrap().validate().unwrap_err().offset(), Some(4));
        // string overrunning the blob
        let bad = raw(&[0x85, b'a', 0x06], 1);
        let lp = Listpack::new(&bad).unwrap();
        assert!(is_corrupt(&lp.validate().unwrap_err()));
        let mut it = lp.iter();
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // invalid encoding byte
        let bad = raw(&[0xF5, 0x01], 1);
        assert_eq!(Listpack::new(&bad).unwrap().validate().unwrap_err().offset(), Some(6));
        // end byte in the middle
        let bad = raw(&[0x01, 0x01, 0xFF, 0x02, 0x01], 1);
        let lp = Listpack::new(&bad).unwrap();
        assert_eq!(lp.iter().count(), 1);
        assert!(is_corrupt(&lp.validate().unwrap_err()));
    }

    /// Elements around this encoding's size steps.
    fn item() -> impl Strategy<Value = Vec<u8>> {
        crate::format::testing::element(&[120..140, 4090..4100, 16370..16390])
    }

    proptest! {
        #[test]
        fn round_trip(items in prop::collection::vec(item(), 0..40)) {
            let mut out = vec![0xAA];
            Listpack::encode(items.iter().map(|v| v.as_slice()), &mut out);
            prop_assert_eq!(out[0], 0xAA, "appends");
            let lp = Listpack::new(&out[1..]).unwrap();
            prop_assert_eq!(lp.validate().unwrap(), items.len());
            prop_assert_eq!(lp.header_count(), Some(items.len()));
            let got: Vec<Vec<u8>> = lp.iter().map(|e| e.unwrap().to_vec()).collect();
            prop_assert_eq!(got, items);
        }

        #[test]
        fn round_trip_ints(values in prop::collection::vec(any::<i64>(), 0..40)) {
            let mut out = Vec::new();
            Listpack::encode_elems(values.iter().map(|&v| Elem::Int(v)), &mut out);
            let lp = Listpack::new(&out).unwrap();
            prop_assert_eq!(lp.validate().unwrap(), values.len());
            let got: Vec<Elem> = lp.iter().map(|e| e.unwrap()).collect();
            prop_assert_eq!(got, values.iter().map(|&v| Elem::Int(v)).collect::<Vec<_>>());
            // same bytes as encoding the decimal text
            let texts: Vec<Vec<u8>> = values.iter().map(|v| v.to_string().into_bytes()).collect();
            let mut out2 = Vec::new();
            Listpack::encode(texts.iter().map(|v| v.as_slice()), &mut out2);
            prop_assert_eq!(out, out2);
        }

        #[test]
        fn random_bytes_never_panic(mut data in prop::collection::vec(any::<u8>(), 0..300), fix in any::<bool>()) {
            if fix && data.len() >= 7 {
                let n = data.len() as u32;
                data[0..4].copy_from_slice(&n.to_le_bytes());
                let last = data.len() - 1;
                data[last] = END;
            }
            if let Ok(lp) = Listpack::new(&data) {
                let _ = lp.validate();
                let _ = lp.header_count();
                for _ in lp.iter() {}
            }
        }

        #[test]
        fn mutations_never_panic(items in prop::collection::vec(item(), 1..10), at in any::<usize>(), byte in any::<u8>()) {
            let mut out = Vec::new();
            Listpack::encode(items.iter().map(|v| v.as_slice()), &mut out);
            let i = at % out.len();
            out[i] = byte;
            if let Ok(lp) = Listpack::new(&out) {
                let ok = lp.validate();
                let n = lp.iter().count();
                if let Ok(count) = ok {
                    prop_assert_eq!(count, n);
                }
            }
        }
    }
}
