//! Ziplists (RDB types 10, 12, 13 and the nodes of quicklist v1, type 14): a decoder that borrows from the blob,
//! a deep validator equivalent to Redis's `ziplistValidateIntegrity`, and an encoder that writes exactly what a
//! sequence of Redis `ziplistPush(.., ZIPLIST_TAIL)` calls would produce.
//!
//! Layout (spec §5.2): a 10-byte header `zlbytes u32 LE`, `zltail u32 LE`, `zllen u16 LE`, then entries
//! `prevlen | encoding | data`, then the end byte `0xFF`.

use super::{Elem, parse_canonical_i64};
use crate::error::{Error, Result};

/// Structure name used in error messages.
const NAME: &str = "ziplist";
/// Size of the header (`zlbytes`, `zltail`, `zllen`).
pub const HEADER_SIZE: usize = 10;
/// The end-of-ziplist byte.
pub const END: u8 = 0xFF;
/// First byte of a 5-byte prevlen.
const BIG_PREVLEN: u8 = 0xFE;
/// `zllen` value meaning "count unknown, walk the entries".
const UNKNOWN_COUNT: u16 = u16::MAX;

/// A ziplist blob whose header has been checked (see [`Ziplist::new`]); entries are decoded lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ziplist<'a> {
    data: &'a [u8],
}

impl<'a> Ziplist<'a> {
    /// Wraps `data` after the cheap header checks: at least 11 bytes, `zlbytes` equal to the blob size, last byte
    /// `0xFF`. Entries are not looked at; use [`Ziplist::validate`] for the deep check.
    pub fn new(data: &'a [u8]) -> Result<Self> {
        super::check_frame(data, NAME, "ziplist header and end byte", HEADER_SIZE + 1, Some("zlbytes"))?;
        Ok(Ziplist { data })
    }

    /// The whole blob, header and end byte included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The entry count from the header (`zllen`), or `None` when it is 65535 ("unknown, walk the entries").
    pub fn header_count(&self) -> Option<usize> {
        let n = read_u16(self.data, 8);
        (n != UNKNOWN_COUNT).then_some(usize::from(n))
    }

    /// The header's `zltail`: the offset of the last entry (10 when the ziplist is empty).
    pub fn tail_offset(&self) -> u64 {
        read_u32(self.data, 4)
    }

    /// Iterates over the entries, front to back. Each item is the entry's value, or the error that stopped the
    /// walk (after which the iterator ends). The walk ends at the first `0xFF` byte in entry position.
    pub fn iter(&self) -> ZiplistIter<'a> {
        super::BlobElems::new(self.data, HEADER_SIZE, super::Layout::Ziplist)
    }

    /// Like [`Ziplist::iter`], resuming at byte offset `pos` (a [`ZiplistIter::position`] of an earlier
    /// iterator over the same blob), so that an iteration can be suspended without holding a borrow.
    pub fn iter_from(&self, pos: usize) -> ZiplistIter<'a> {
        super::BlobElems::new(self.data, pos.max(HEADER_SIZE), super::Layout::Ziplist)
    }

    /// Deep validation, as Redis's `ziplistValidateIntegrity(.., deep=1)`: every entry decodes inside the blob,
    /// every prevlen equals the previous entry's size (0 for the first), the end byte follows the last entry,
    /// `zltail` points at the last entry (or is 10 when empty), and the count equals `zllen` unless that is 65535.
    /// Returns the number of entries.
    pub fn validate(&self) -> Result<usize> {
        self.validate_with(|_| {})
    }

    /// [`Ziplist::validate`], calling `each` with every entry's value (in order) as the walk decodes it, so that a
    /// caller needing the values too walks the blob once. When validation fails, `each` has seen the entries before
    /// the faulty one (and possibly that one); callers must let the error take precedence.
    pub fn validate_with(&self, mut each: impl FnMut(Elem<'a>)) -> Result<usize> {
        let data = self.data;
        let end_pos = data.len() - 1;
        let zltail = self.tail_offset();
        if zltail > end_pos as u64 {
            return Err(Error::corrupt(NAME, format!("zltail {zltail} points past the end byte at {end_pos}"), 4));
        }
        let mut pos = HEADER_SIZE;
        let mut prev_size = 0usize;
        let mut last_entry = None;
        let mut count = 0usize;
        while data.get(pos).is_some_and(|&b| b != END) {
            let entry = read_entry(data, pos)?;
            each(entry.elem);
            if entry.prevlen != prev_size as u64 {
                return Err(Error::corrupt(
                    NAME,
                    format!("entry prevlen is {}, expected the previous entry's size {prev_size}", entry.prevlen),
                    pos as u64,
                ));
            }
            prev_size = entry.end - pos;
            last_entry = Some(pos);
            pos = entry.end;
            count += 1;
        }
        super::check_walk_end(data, pos, NAME)?;
        let expected_tail = last_entry.unwrap_or(HEADER_SIZE) as u64;
        if zltail != expected_tail {
            return Err(Error::corrupt(
                NAME,
                format!("zltail is {zltail}, expected {expected_tail} (offset of the last entry)"),
                4,
            ));
        }
        if let Some(n) = self.header_count()
            && n != count
        {
            return Err(Error::corrupt(NAME, format!("zllen is {n}, but the ziplist holds {count} entries"), 8));
        }
        Ok(count)
    }

    /// Appends to `out` the ziplist Redis builds by pushing `items` to the tail of an empty ziplist, one by one.
    ///
    /// Text under 32 bytes that Redis's `string2ll` accepts is stored as the smallest integer encoding (immediate
    /// 0..=12, int8, int16, int24, int32, int64); other strings use the 6-bit (≤ 63), 14-bit (≤ 16383) or 32-bit
    /// length. A prevlen takes 1 byte when the previous entry is under 254 bytes, else 5. `zllen` saturates at
    /// 65535; an empty ziplist has `zltail` = 10.
    ///
    /// # Panics
    ///
    /// If the ziplist would be larger than `u32::MAX` bytes (which Redis cannot represent either).
    pub fn encode<'e, I: IntoIterator<Item = &'e [u8]>>(items: I, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; HEADER_SIZE]);
        let mut prev_size = 0usize;
        let mut tail = HEADER_SIZE;
        let mut count = 0usize;
        for item in items {
            let entry_start = out.len();
            if prev_size < usize::from(BIG_PREVLEN) {
                out.push(prev_size as u8);
            } else {
                out.push(BIG_PREVLEN);
                out.extend_from_slice(&to_u32(prev_size).to_le_bytes());
            }
            push_value(item, out);
            tail = entry_start - start;
            prev_size = out.len() - entry_start;
            count += 1;
        }
        out.push(END);
        let total = to_u32(out.len() - start);
        let zllen = u16::try_from(count).unwrap_or(UNKNOWN_COUNT);
        let header = &mut out[start..start + HEADER_SIZE];
        header[0..4].copy_from_slice(&total.to_le_bytes());
        header[4..8].copy_from_slice(&to_u32(tail).to_le_bytes());
        header[8..10].copy_from_slice(&zllen.to_le_bytes());
    }
}

impl<'a> IntoIterator for &Ziplist<'a> {
    type Item = Result<Elem<'a>>;
    type IntoIter = ZiplistIter<'a>;

    fn into_iter(self) -> ZiplistIter<'a> {
        self.iter()
    }
}

/// Iterator over a ziplist's elements (see [`Ziplist::iter`]): the iterator shared with the other blob layout.
pub type ZiplistIter<'a> = super::BlobElems<'a>;

/// One decoded entry.
pub(super) struct Entry<'a> {
    /// The prevlen field's value.
    prevlen: u64,
    /// The value.
    pub(super) elem: Elem<'a>,
    /// Offset just past the entry.
    pub(super) end: usize,
}

/// Decodes the entry at `pos` (which must not hold the end byte). The whole entry must lie before the blob's last
/// byte (the end byte).
pub(super) fn read_entry(data: &[u8], pos: usize) -> Result<Entry<'_>> {
    let limit = data.len().saturating_sub(1);
    let first = take(data, pos, 1, limit, "entry prevlen")?;
    let (prevlen, mut p) = if first.first() == Some(&BIG_PREVLEN) {
        let b: [u8; 4] = take_array(data, pos + 1, limit, "5-byte entry prevlen")?;
        (u64::from(u32::from_le_bytes(b)), pos + 5)
    } else {
        (first.first().copied().map_or(0, u64::from), pos + 1)
    };
    let enc_pos = p;
    let enc = take(data, p, 1, limit, "entry encoding")?.first().copied().unwrap_or(END);
    p += 1;
    let string = |len: usize, p: usize| -> Result<Entry<'_>> {
        let s = take(data, p, len, limit, "string entry data")?;
        Ok(Entry { prevlen, elem: Elem::Bytes(s), end: p + len })
    };
    let int = |n: usize, p: usize| -> Result<Entry<'_>> {
        let b = take(data, p, n, limit, "integer entry data")?;
        Ok(Entry { prevlen, elem: Elem::Int(le_signed(b)), end: p + n })
    };
    match enc {
        0x00..=0x3F => string(usize::from(enc & 0x3F), p),
        0x40..=0x7F => {
            let b = take(data, p, 1, limit, "14-bit string length")?.first().copied().unwrap_or(0);
            string((usize::from(enc & 0x3F) << 8) | usize::from(b), p + 1)
        }
        0x80..=0xBF => {
            let b: [u8; 4] = take_array(data, p, limit, "32-bit string length")?;
            string(u32::from_be_bytes(b) as usize, p + 4)
        }
        0xC0 => int(2, p),
        0xD0 => int(4, p),
        0xE0 => int(8, p),
        0xF0 => int(3, p),
        0xFE => int(1, p),
        0xF1..=0xFD => Ok(Entry { prevlen, elem: Elem::Int(i64::from(enc & 0x0F) - 1), end: p }),
        _ => Err(Error::corrupt(
            NAME,
            format!("invalid entry encoding byte 0x{enc:02x}, expected a string length or 0xc0/0xd0/0xe0/0xf0..0xfe"),
            enc_pos as u64,
        )),
    }
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

/// Like [`take`], as an array.
fn take_array<const N: usize>(data: &[u8], from: usize, limit: usize, what: &'static str) -> Result<[u8; N]> {
    take(data, from, N, limit, what)?
        .try_into()
        .map_err(|_| Error::corrupt(NAME, format!("{what}: expected {N} bytes"), from as u64))
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

/// The u32 LE at `at` as u64 (0 when out of range; callers check the length first).
fn read_u32(data: &[u8], at: usize) -> u64 {
    data.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()).map_or(0, |b| u64::from(u32::from_le_bytes(b)))
}

/// The u16 LE at `at` (0 when out of range).
fn read_u16(data: &[u8], at: usize) -> u16 {
    data.get(at..at + 2).and_then(|s| <[u8; 2]>::try_from(s).ok()).map_or(0, u16::from_le_bytes)
}

/// A size as a u32 field.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("ziplist larger than u32::MAX bytes")
}

/// Appends an entry's encoding and data for `item` (Redis `zipTryEncoding` then `zipStoreEntryEncoding`).
fn push_value(item: &[u8], out: &mut Vec<u8>) {
    if !item.is_empty()
        && item.len() < 32
        && let Some(v) = parse_canonical_i64(item)
    {
        push_int(v, out);
        return;
    }
    let len = item.len();
    if len <= 0x3F {
        out.push(len as u8);
    } else if len <= 0x3FFF {
        out.push(0x40 | (len >> 8) as u8);
        out.push((len & 0xFF) as u8);
    } else {
        out.push(0x80);
        out.extend_from_slice(&to_u32(len).to_be_bytes());
    }
    out.extend_from_slice(item);
}

/// Appends the smallest integer encoding of `v` and its data.
fn push_int(v: i64, out: &mut Vec<u8>) {
    if (0..=12).contains(&v) {
        out.push(0xF1 + v as u8);
    } else if let Ok(x) = i8::try_from(v) {
        out.push(0xFE);
        out.extend_from_slice(&x.to_le_bytes());
    } else if let Ok(x) = i16::try_from(v) {
        out.push(0xC0);
        out.extend_from_slice(&x.to_le_bytes());
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        out.push(0xF0);
        out.extend_from_slice(&v.to_le_bytes()[..3]);
    } else if let Ok(x) = i32::try_from(v) {
        out.push(0xD0);
        out.extend_from_slice(&x.to_le_bytes());
    } else {
        out.push(0xE0);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;

    fn enc(items: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        Ziplist::encode(items.iter().copied(), &mut out);
        out
    }

    fn values(data: &[u8]) -> Vec<Vec<u8>> {
        Ziplist::new(data).unwrap().iter().map(|e| e.unwrap().to_vec()).collect()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// `ziplist_with_integers.rdb` from the corpus (redis-rdb-tools, written by Redis, RDB 6).
    #[test]
    fn real_redis_blob() {
        let blob = hex(
            "550000004a000000180000f102f202f302f402f502f602f702f802f902fa02fb02fc02fd02fefe03fe0d03fe1903fec303fe3f\
             03c0fc3f04c080c104f0ffff0005f00d00ff05f000004005e0ffffffffffffff7fff",
        );
        let z = Ziplist::new(&blob).unwrap();
        assert_eq!(z.validate().unwrap(), 24);
        let mut want: Vec<i64> = (0..=12).collect();
        want.extend([-2, 13, 25, -61, 63, 16380, -16000, 65535, -65523, 4194304, i64::MAX]);
        let got: Vec<Elem> = z.iter().map(|e| e.unwrap()).collect();
        assert_eq!(got, want.iter().map(|&v| Elem::Int(v)).collect::<Vec<_>>());
        let texts: Vec<Vec<u8>> = got.iter().map(Elem::to_vec).collect();
        let mut out = Vec::new();
        Ziplist::encode(texts.iter().map(|t| t.as_slice()), &mut out);
        assert_eq!(out, blob, "re-encoding reproduces Redis's bytes");
    }

    fn is_corrupt(e: &Error) -> bool {
        matches!(e.kind(), ErrorKind::Corrupt { .. })
    }

    /// Builds a ziplist from raw entry bytes with a correct header.
    fn raw(entries: &[&[u8]], zllen: u16) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_SIZE];
        let mut tail = HEADER_SIZE;
        for e in entries {
            tail = v.len();
            v.extend_from_slice(e);
        }
        v.push(END);
        let n = v.len() as u32;
        v[0..4].copy_from_slice(&n.to_le_bytes());
        v[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
        v[8..10].copy_from_slice(&zllen.to_le_bytes());
        v
    }

    #[test]
    fn encodes_every_integer_width_exactly() {
        let items: [&[u8]; 8] = [b"0", b"12", b"13", b"-1", b"32767", b"32768", b"8388608", b"2147483648"];
        let expected: Vec<u8> = [
            &[46, 0, 0, 0, 35, 0, 0, 0, 8, 0][..],
            &[0x00, 0xF1],
            &[0x02, 0xFD],
            &[0x02, 0xFE, 0x0D],
            &[0x03, 0xFE, 0xFF],
            &[0x03, 0xC0, 0xFF, 0x7F],
            &[0x04, 0xF0, 0x00, 0x80, 0x00],
            &[0x05, 0xD0, 0x00, 0x00, 0x80, 0x00],
            &[0x06, 0xE0, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00],
            &[0xFF],
        ]
        .concat();
        assert_eq!(enc(&items), expected);
        let zl = Ziplist::new(&expected).unwrap();
        assert_eq!(zl.validate().unwrap(), 8);
        let got: Vec<Elem> = zl.iter().map(|e| e.unwrap()).collect();
        assert_eq!(
            got,
            [0, 12, 13, -1, 32767, 32768, 8388608, 2147483648].map(Elem::Int).to_vec(),
            "all stored as integers"
        );
    }

    #[test]
    fn integer_boundaries() {
        let cases: [(&[u8], &[u8]); 10] = [
            (b"127", &[0xFE, 0x7F]),
            (b"-128", &[0xFE, 0x80]),
            (b"128", &[0xC0, 0x80, 0x00]),
            (b"-129", &[0xC0, 0x7F, 0xFF]),
            (b"8388607", &[0xF0, 0xFF, 0xFF, 0x7F]),
            (b"-8388608", &[0xF0, 0x00, 0x00, 0x80]),
            (b"-8388609", &[0xD0, 0xFF, 0xFF, 0x7F, 0xFF]),
            (b"012", &[0x03, b'0', b'1', b'2']),
            (b"-0", &[0x02, b'-', b'0']),
            (b"", &[0x00]),
        ];
        for (text, body) in cases {
            let out = enc(&[text]);
            assert_eq!(&out[HEADER_SIZE + 1..out.len() - 1], body, "{text:?}");
        }
        // Integer text of 32+ bytes cannot exist, but 21-byte text is a string.
        let long = b"-92233720368547758080";
        let out = enc(&[long]);
        assert_eq!(out[HEADER_SIZE + 1], 21);
    }

    #[test]
    fn string_lengths_and_big_prevlen() {
        let s100 = vec![b'x'; 100];
        let s300 = vec![b'y'; 300];
        let s16384 = vec![b'z'; 16384];
        let out = enc(&[&s100, &s300, b"a", &s16384]);
        // entry 1: prevlen 0, 14-bit BE length 100
        assert_eq!(&out[10..13], &[0x00, 0x40, 100]);
        // entry 2 at 10+103: prevlen 103, 14-bit length 300 = 0x012c
        assert_eq!(&out[113..116], &[103, 0x41, 0x2C]);
        // entry 3 at 113+303=416: prevlen 303 needs 5 bytes
        assert_eq!(&out[416..423], &[0xFE, 0x2F, 0x01, 0x00, 0x00, 0x01, b'a']);
        // entry 4 at 423: prevlen 7, 32-bit BE length 16384
        assert_eq!(&out[423..429], &[7, 0x80, 0x00, 0x00, 0x40, 0x00]);
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 423);
        assert_eq!(Ziplist::new(&out).unwrap().validate().unwrap(), 4);
        assert_eq!(values(&out), vec![s100, s300, b"a".to_vec(), s16384]);
        // 16383 still takes the 14-bit form
        let s = vec![0u8; 16383];
        assert_eq!(&enc(&[&s])[10..13], &[0x00, 0x7F, 0xFF]);
    }

    #[test]
    fn five_byte_prevlen_for_small_entry() {
        let zl = raw(&[&[0x00, 0x01, b'a'], &[0xFE, 0x03, 0x00, 0x00, 0x00, 0xF2]], 2);
        assert_eq!(zl.len(), 20);
        let z = Ziplist::new(&zl).unwrap();
        assert_eq!(z.validate().unwrap(), 2);
        assert_eq!(z.iter().map(|e| e.unwrap()).collect::<Vec<_>>(), vec![Elem::Bytes(b"a"), Elem::Int(1)]);
    }

    #[test]
    fn empty_and_unknown_count() {
        let out = enc(&[]);
        assert_eq!(out, [11, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0xFF]);
        let z = Ziplist::new(&out).unwrap();
        assert_eq!(z.validate().unwrap(), 0);
        assert_eq!(z.header_count(), Some(0));
        assert!(z.iter().next().is_none());
        let zl = raw(&[&[0x00, 0xF1], &[0x02, 0xF2]], 0xFFFF);
        let z = Ziplist::new(&zl).unwrap();
        assert_eq!(z.header_count(), None);
        assert_eq!(z.validate().unwrap(), 2);
    }

    #[test]
    fn count_saturates() {
        let items = vec![&b"1"[..]; 65536];
        let out = enc(&items);
        assert_eq!(&out[8..10], &[0xFF, 0xFF]);
        assert_eq!(Ziplist::new(&out).unwrap().validate().unwrap(), 65536);
        let out = enc(&items[..65534]);
        assert_eq!(u16::from_le_bytes([out[8], out[9]]), 65534);
    }

    #[test]
    fn header_errors() {
        assert!(Ziplist::new(&[11, 0, 0]).unwrap_err().is_truncated());
        let mut zl = enc(&[b"abc"]);
        let cut = &zl[..zl.len() - 1];
        assert!(is_corrupt(&Ziplist::new(cut).unwrap_err()), "zlbytes no longer matches");
        zl[0] += 1;
        assert!(is_corrupt(&Ziplist::new(&zl).unwrap_err()));
        zl[0] -= 1;
        let last = zl.len() - 1;
        zl[last] = 0;
        assert!(is_corrupt(&Ziplist::new(&zl).unwrap_err()));
    }

    #[test]
    fn deep_errors() {
        // wrong prevlen
        let zl = raw(&[&[0x00, 0xF1], &[0x03, 0xF2]], 2);
        let e = Ziplist::new(&zl).unwrap().validate().unwrap_err();
        assert!(is_corrupt(&e));
        assert_eq!(e.offset(), Some(12));
        // first entry prevlen not 0
        let zl = raw(&[&[0x01, 0xF1]], 1);
        assert!(is_corrupt(&Ziplist::new(&zl).unwrap().validate().unwrap_err()));
        // wrong count
        let zl = raw(&[&[0x00, 0xF1]], 2);
        assert_eq!(Ziplist::new(&zl).unwrap().validate().unwrap_err().offset(), Some(8));
        // wrong zltail
        let mut zl = raw(&[&[0x00, 0xF1], &[0x02, 0xF2]], 2);
        zl[4] = 10;
        assert_eq!(Ziplist::new(&zl).unwrap().validate().unwrap_err().offset(), Some(4));
        // string overruns the blob
        let zl = raw(&[&[0x00, 0x05, b'a']], 1);
        let z = Ziplist::new(&zl).unwrap();
        assert!(is_corrupt(&z.validate().unwrap_err()));
        let mut it = z.iter();
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // invalid encoding
        let zl = raw(&[&[0x00, 0xC1]], 1);
        let e = Ziplist::new(&zl).unwrap().validate().unwrap_err();
        assert_eq!(e.offset(), Some(11));
        // end byte in the middle
        let mut zl = raw(&[&[0x00, 0xF1], &[0x02, 0xF2]], 2);
        zl[12] = 0xFF;
        let z = Ziplist::new(&zl).unwrap();
        assert_eq!(z.iter().count(), 1);
        assert!(is_corrupt(&z.validate().unwrap_err()));
        // empty with a bad zltail
        let mut zl = enc(&[]);
        zl[4] = 3;
        assert!(Ziplist::new(&zl).unwrap().validate().is_err());
    }

    /// Elements around this encoding's size steps.
    fn item() -> impl Strategy<Value = Vec<u8>> {
        crate::format::testing::element(&[200..400, 16380..16390])
    }

    proptest! {
        #[test]
        fn round_trip(items in prop::collection::vec(item(), 0..40)) {
            let mut out = vec![0xAA];
            Ziplist::encode(items.iter().map(|v| v.as_slice()), &mut out);
            prop_assert_eq!(out[0], 0xAA, "appends");
            let z = Ziplist::new(&out[1..]).unwrap();
            prop_assert_eq!(z.validate().unwrap(), items.len());
            prop_assert_eq!(z.header_count(), Some(items.len()));
            let got: Vec<Vec<u8>> = z.iter().map(|e| e.unwrap().to_vec()).collect();
            prop_assert_eq!(got, items);
        }

        #[test]
        fn random_bytes_never_panic(mut data in prop::collection::vec(any::<u8>(), 0..300), fix in any::<bool>()) {
            if fix && data.len() >= 11 {
                let n = data.len() as u32;
                data[0..4].copy_from_slice(&n.to_le_bytes());
                let last = data.len() - 1;
                data[last] = END;
            }
            if let Ok(z) = Ziplist::new(&data) {
                let _ = z.validate();
                let _ = z.header_count();
                for _ in z.iter() {}
            }
        }

        #[test]
        fn mutations_never_panic(items in prop::collection::vec(item(), 1..10), at in any::<usize>(), byte in any::<u8>()) {
            let mut out = Vec::new();
            Ziplist::encode(items.iter().map(|v| v.as_slice()), &mut out);
            let i = at % out.len();
            out[i] = byte;
            if let Ok(z) = Ziplist::new(&out) {
                let ok = z.validate();
                let n = z.iter().count();
                if let Ok(count) = ok {
                    prop_assert_eq!(count, n);
                }
            }
        }
    }
}
