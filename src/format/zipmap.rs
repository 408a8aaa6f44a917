//! Zipmaps (RDB type 9, hashes written by Redis before 2.6): a decoder of the field/value pairs that borrows from
//! the blob, a deep validator equivalent to Redis's `zipmapValidateIntegrity` plus the loader's duplicate-field
//! check, and an encoder producing what Redis's `zipmapSet` builds on a fresh zipmap.
//!
//! Layout (spec §5.1): `zmlen(1)`, then pairs `len field, len value, free(1), value, free bytes`, then `0xFF`.
//! A length is 1 byte when < 254, else `0xFE` and a u32 LE.

use crate::error::{Error, Result};
use std::collections::HashSet;

/// Structure name used in error messages.
const NAME: &str = "zipmap";
/// The end-of-zipmap byte.
pub const END: u8 = 0xFF;
/// Length byte announcing a 4-byte length; also the `zmlen` value meaning "count unknown".
const BIGLEN: u8 = 0xFE;

/// A zipmap blob whose framing has been checked (see [`Zipmap::new`]); pairs are decoded lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zipmap<'a> {
    data: &'a [u8],
}

impl<'a> Zipmap<'a> {
    /// Wraps `data` after the cheap checks: at least 2 bytes (`zmlen` and the end byte) and last byte `0xFF`.
    pub fn new(data: &'a [u8]) -> Result<Self> {
        super::check_frame(data, NAME, "zipmap count and end byte", 2, None)?;
        Ok(Zipmap { data })
    }

    /// The whole blob, count and end byte included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The pair count from `zmlen`, or `None` when it is 254 ("unknown, walk the pairs"). 255 is a count like any
    /// other for the servers' `zipmapValidateIntegrity` (`zm[0] != ZIPMAP_BIGLEN && zm[0] != count` fails), so a
    /// zipmap whose `zmlen` is 255 is valid only with exactly 255 pairs.
    pub fn header_count(&self) -> Option<usize> {
        self.data.first().copied().filter(|&n| n != BIGLEN).map(usize::from)
    }

    /// Iterates over the `(field, value)` pairs, front to back; `free` padding is skipped. After an error the
    /// iterator ends. The walk ends at the first `0xFF` byte in field-length position.
    pub fn iter(&self) -> ZipmapIter<'a> {
        ZipmapIter { data: self.data, pos: 1, done: false }
    }

    /// Deep validation: every pair lies inside the blob, there is at least one pair, the end byte is the last
    /// byte, the count equals `zmlen` unless that is 254, and no field name repeats (the check Redis's
    /// loader adds). Returns the number of pairs.
    pub fn validate(&self) -> Result<usize> {
        let data = self.data;
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let mut pos = 1;
        let mut count = 0usize;
        while data.get(pos).is_some_and(|&b| b != END) {
            let pair = read_pair(data, pos)?;
            if !seen.insert(pair.field) {
                return Err(Error::corrupt(
                    NAME,
                    format!("duplicate field {}, expected distinct field names", crate::escape_bytes(pair.field)),
                    pos as u64,
                ));
            }
            pos = pair.end;
            count += 1;
        }
        super::check_walk_end(data, pos, NAME)?;
        if count == 0 {
            return Err(Error::corrupt(NAME, "no pairs, expected at least one", 1));
        }
        if let Some(n) = self.header_count()
            && n != count
        {
            return Err(Error::corrupt(NAME, format!("zmlen is {n}, but the zipmap holds {count} pairs"), 0));
        }
        Ok(count)
    }

    /// Appends to `out` the zipmap Redis's `zipmapSet` builds by adding `pairs` to a fresh zipmap: `zmlen` is the
    /// count, or 254 when the count is 254 or more; lengths under 254 take 1 byte, others `0xFE` + u32 LE; every
    /// value has `free` = 0. Field names must be distinct (Redis would overwrite the earlier value).
    ///
    /// # Panics
    ///
    /// If a field or value is longer than `u32::MAX` bytes.
    pub fn encode<'e, I: IntoIterator<Item = (&'e [u8], &'e [u8])>>(pairs: I, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(0);
        let mut count = 0usize;
        for (field, value) in pairs {
            push_len(field.len(), out);
            out.extend_from_slice(field);
            push_len(value.len(), out);
            out.push(0);
            out.extend_from_slice(value);
            count += 1;
        }
        out.push(END);
        out[start] = u8::try_from(count).map_or(BIGLEN, |n| n.min(BIGLEN));
    }
}

impl<'a> IntoIterator for &Zipmap<'a> {
    type Item = Result<(&'a [u8], &'a [u8])>;
    type IntoIter = ZipmapIter<'a>;

    fn into_iter(self) -> ZipmapIter<'a> {
        self.iter()
    }
}

/// Iterator over a zipmap's `(field, value)` pairs (see [`Zipmap::iter`]).
#[derive(Debug, Clone)]
pub struct ZipmapIter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for ZipmapIter<'a> {
    type Item = Result<(&'a [u8], &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.data.get(self.pos) {
            None | Some(&END) => {
                self.done = true;
                None
            }
            Some(_) => match read_pair(self.data, self.pos) {
                Ok(pair) => {
                    self.pos = pair.end;
                    Some(Ok((pair.field, pair.value)))
                }
                Err(e) => {
                    self.done = true;
                    Some(Err(e))
                }
            },
        }
    }
}

impl std::iter::FusedIterator for ZipmapIter<'_> {}

/// One decoded pair.
struct Pair<'a> {
    field: &'a [u8],
    value: &'a [u8],
    /// Offset just past the value's free bytes.
    end: usize,
}

/// Decodes the pair at `pos` (which must not hold the end byte). Everything must lie before the last byte.
fn read_pair(data: &[u8], pos: usize) -> Result<Pair<'_>> {
    let limit = data.len().saturating_sub(1);
    let (field_len, p) = read_len(data, pos, limit, "field length")?;
    let field = take(data, p, field_len, limit, "field")?;
    let (value_len, p) = read_len(data, p + field_len, limit, "value length")?;
    let free = usize::from(take(data, p, 1, limit, "free byte count")?.first().copied().unwrap_or(0));
    let value = take(data, p + 1, value_len, limit, "value")?;
    let free_pos = p + 1 + value_len;
    take(data, free_pos, free, limit, "free padding bytes")?;
    Ok(Pair { field, value, end: free_pos + free })
}

/// Reads a length at `pos`, returning it and the offset after it.
fn read_len(data: &[u8], pos: usize, limit: usize, what: &'static str) -> Result<(usize, usize)> {
    let b = take(data, pos, 1, limit, what)?.first().copied().unwrap_or(END);
    match b {
        0..BIGLEN => Ok((usize::from(b), pos + 1)),
        BIGLEN => {
            let s = take(data, pos + 1, 4, limit, what)?;
            Ok((<[u8; 4]>::try_from(s).map_or(0, u32::from_le_bytes) as usize, pos + 5))
        }
        END => Err(Error::corrupt(NAME, format!("end byte 0xff where the {what} was expected"), pos as u64)),
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

/// Appends a zipmap length (Redis `zipmapEncodeLength`).
fn push_len(len: usize, out: &mut Vec<u8>) {
    if len < usize::from(BIGLEN) {
        out.push(len as u8);
    } else {
        out.push(BIGLEN);
        out.extend_from_slice(&u32::try_from(len).expect("zipmap string longer than u32::MAX").to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;

    fn enc(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        Zipmap::encode(pairs.iter().copied(), &mut out);
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// `hash-zipmap.rdb` (Redis test assets) and `zipmap_big_len.rdb` (HDT3213/rdb, zmlen 255 = unknown).
    #[test]
    fn real_redis_blobs() {
        let blob = hex("020266310200763102663202007632ff");
        let zm = Zipmap::new(&blob).unwrap();
        assert_eq!(zm.validate().unwrap(), 2);
        let pairs: Vec<_> = zm.iter().map(|p| p.unwrap()).collect();
        assert_eq!(pairs, vec![(&b"f1"[..], &b"v1"[..]), (b"f2", b"v2")]);
        assert_eq!(enc(&pairs), blob);
        // zmlen 255 with 2 pairs: Redis 7.0, Redis 8.2 and Valkey 9.1 refuse it ("Zipmap integrity check
        // failed"), checked by loading a file holding it; the pairs still decode.
        let blob = hex("ff064d4b4431473601003205594e4e584b040046375449ff");
        let zm = Zipmap::new(&blob).unwrap();
        assert_eq!(zm.header_count(), Some(255));
        assert!(zm.validate().is_err());
        let pairs: Vec<_> = zm.iter().map(|p| p.unwrap()).collect();
        assert_eq!(pairs, vec![(&b"MKD1G6"[..], &b"2"[..]), (b"YNNXK", b"F7TI")]);
        let mut unknown = blob.clone();
        unknown[0] = 254;
        assert_eq!(Zipmap::new(&unknown).unwrap().header_count(), None);
        assert_eq!(Zipmap::new(&unknown).unwrap().validate().unwrap(), 2);
    }

    fn is_corrupt(e: &Error) -> bool {
        matches!(e.kind(), ErrorKind::Corrupt { .. })
    }

    #[test]
    fn big_value_and_free_bytes() {
        let v300 = vec![b'v'; 300];
        let out = enc(&[(b"f", &v300), (b"g", b"x")]);
        let expected =
            [&[0x02, 0x01, b'f', 0xFE, 0x2C, 0x01, 0x00, 0x00, 0x00][..], &v300, &[0x01, b'g', 0x01, 0x00, b'x', 0xFF]]
                .concat();
        assert_eq!(out, expected);
        let zm = Zipmap::new(&out).unwrap();
        assert_eq!(zm.validate().unwrap(), 2);
        let pairs: Vec<_> = zm.iter().map(|p| p.unwrap()).collect();
        assert_eq!(pairs, vec![(&b"f"[..], &v300[..]), (b"g", b"x")]);

        // hand-made, with 2 free bytes after the value and a big field length
        let mut hand = vec![0x02, 0x01, b'a', 0x03, 0x02, b'x', b'y', b'z', 0xAA, 0xBB];
        hand.extend_from_slice(&[0xFE, 0x02, 0x00, 0x00, 0x00, b'b', b'c', 0x00, 0x00, 0xFF]);
        let zm = Zipmap::new(&hand).unwrap();
        assert_eq!(zm.header_count(), Some(2));
        assert_eq!(zm.validate().unwrap(), 2);
        let pairs: Vec<_> = zm.iter().map(|p| p.unwrap()).collect();
        assert_eq!(pairs, vec![(&b"a"[..], &b"xyz"[..]), (b"bc", b"")]);
    }

    #[test]
    fn count_saturates() {
        let fields: Vec<Vec<u8>> = (0..300).map(|i: i32| i.to_string().into_bytes()).collect();
        let pairs: Vec<(&[u8], &[u8])> = fields.iter().map(|f| (f.as_slice(), &b"v"[..])).collect();
        let out = enc(&pairs);
        assert_eq!(out[0], 254);
        let zm = Zipmap::new(&out).unwrap();
        assert_eq!(zm.header_count(), None);
        assert_eq!(zm.validate().unwrap(), 300);
        assert_eq!(enc(&pairs[..253])[0], 253);
        assert_eq!(enc(&pairs[..254])[0], 254);
        // 253-byte strings take 1 length byte, 254-byte ones take 5
        let f253 = vec![b'a'; 253];
        let f254 = vec![b'b'; 254];
        let out = enc(&[(&f253, &f254)]);
        assert_eq!(&out[..2], &[1, 253]);
        assert_eq!(&out[255..261], &[0xFE, 254, 0, 0, 0, 0]);
    }

    #[test]
    fn errors() {
        assert!(Zipmap::new(&[]).unwrap_err().is_truncated());
        assert!(Zipmap::new(&[0xFF]).unwrap_err().is_truncated());
        assert!(is_corrupt(&Zipmap::new(&[1, 1, b'a', 0]).unwrap_err()));
        // duplicate field
        let dup = [0x02, 0x01, b'a', 0x01, 0x00, b'x', 0x01, b'a', 0x01, 0x00, b'y', 0xFF];
        let zm = Zipmap::new(&dup).unwrap();
        let e = zm.validate().unwrap_err();
        assert!(is_corrupt(&e));
        assert_eq!(e.offset(), Some(6));
        assert_eq!(zm.iter().count(), 2, "iteration does not look for duplicates");
        // empty zipmap
        assert!(is_corrupt(&Zipmap::new(&[0, 0xFF]).unwrap().validate().unwrap_err()));
        // wrong count
        let bad = [0x02, 0x01, b'a', 0x01, 0x00, b'x', 0xFF];
        assert_eq!(Zipmap::new(&bad).unwrap().validate().unwrap_err().offset(), Some(0));
        // value overruns (truncated blob re-terminated)
        let bad = [0x01, 0x01, b'a', 0x05, 0x00, b'x', 0xFF];
        let zm = Zipmap::new(&bad).unwrap();
        assert!(is_corrupt(&zm.validate().unwrap_err()));
        let mut it = zm.iter();
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // free bytes overrun
        let bad = [0x01, 0x01, b'a', 0x01, 0x03, b'x', 0, 0xFF];
        assert!(Zipmap::new(&bad).unwrap().validate().is_err());
        // end byte before the last byte
        let bad = [0x01, 0x01, b'a', 0x01, 0x00, b'x', 0xFF, 0x00, 0xFF];
        assert!(is_corrupt(&Zipmap::new(&bad).unwrap().validate().unwrap_err()));
        // value length byte 0xFF
        let bad = [0x01, 0x01, b'a', 0xFF, 0x00, b'x', 0xFF];
        assert!(Zipmap::new(&bad).unwrap().validate().is_err());
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => prop::collection::vec(any::<u8>(), 0..40),
            1 => prop::collection::vec(any::<u8>(), 250..260),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(map in prop::collection::btree_map(bytes(), bytes(), 1..30)) {
            let pairs: Vec<(&[u8], &[u8])> = map.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            let mut out = vec![0xAA];
            Zipmap::encode(pairs.iter().copied(), &mut out);
            let zm = Zipmap::new(&out[1..]).unwrap();
            prop_assert_eq!(zm.validate().unwrap(), pairs.len());
            prop_assert_eq!(zm.header_count(), Some(pairs.len()));
            let got: Vec<(&[u8], &[u8])> = zm.iter().map(|p| p.unwrap()).collect();
            prop_assert_eq!(got, pairs);
        }

        #[test]
        fn random_bytes_never_panic(mut data in prop::collection::vec(any::<u8>(), 0..300), fix in any::<bool>()) {
            if fix && !data.is_empty() {
                let last = data.len() - 1;
                data[last] = END;
            }
            if let Ok(zm) = Zipmap::new(&data) {
                let _ = zm.validate();
                let _ = zm.header_count();
                for _ in zm.iter() {}
            }
        }

        #[test]
        fn mutations_never_panic(map in prop::collection::btree_map(bytes(), bytes(), 1..8), at in any::<usize>(), byte in any::<u8>()) {
            let mut out = Vec::new();
            Zipmap::encode(map.iter().map(|(k, v)| (k.as_slice(), v.as_slice())), &mut out);
            let i = at % out.len();
            out[i] = byte;
            if let Ok(zm) = Zipmap::new(&out) {
                let ok = zm.validate();
                let n = zm.iter().count();
                if let Ok(count) = ok {
                    prop_assert_eq!(count, n);
                }
            }
        }
    }
}
