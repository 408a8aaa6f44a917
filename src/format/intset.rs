//! Intsets (RDB type 11): a sorted array of distinct integers of one width. A zero-copy reader, the strict-order
//! check of Redis's `intsetValidateIntegrity`, and an encoder producing what Redis builds by adding the values.
//!
//! Layout (spec §5.4): `encoding u32 LE` (bytes per element: 2, 4 or 8), `length u32 LE`, then `length` signed
//! little-endian integers of that width, strictly ascending.

use crate::error::{Error, Result};

/// Structure name used in error messages.
const NAME: &str = "intset";
/// Size of the header (`encoding`, `length`).
pub const HEADER_SIZE: usize = 8;

/// An intset blob whose header and size have been checked (see [`Intset::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intset<'a> {
    data: &'a [u8],
    width: usize,
    len: usize,
}

impl<'a> Intset<'a> {
    /// Wraps `data` after checking the header: encoding 2, 4 or 8, length not 0, and the blob exactly
    /// `8 + length × encoding` bytes. The order of the values is checked by [`Intset::validate`].
    pub fn new(data: &'a [u8]) -> Result<Self> {
        let header = data
            .get(..HEADER_SIZE)
            .ok_or_else(|| Error::truncated("intset header", HEADER_SIZE - data.len(), data.len() as u64))?;
        let word =
            |at: usize| header.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()).map_or(0, u32::from_le_bytes);
        let encoding = word(0);
        let length = word(4);
        let width = match encoding {
            2 | 4 | 8 => encoding as usize,
            _ => {
                return Err(Error::corrupt(
                    NAME,
                    format!("encoding is {encoding}, expected 2, 4 or 8 bytes per element"),
                    0,
                ));
            }
        };
        if length == 0 {
            return Err(Error::corrupt(NAME, "length is 0, expected at least one element", 4));
        }
        let expected = u64::from(length) * width as u64 + HEADER_SIZE as u64;
        if expected != data.len() as u64 {
            return Err(Error::corrupt(
                NAME,
                format!(
                    "{length} elements of {width} bytes need a blob of {expected} bytes, but it is {} bytes",
                    data.len()
                ),
                4,
            ));
        }
        Ok(Intset { data, width, len: length as usize })
    }

    /// The whole blob, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Number of elements (never 0 for a checked intset).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: [`Intset::new`] refuses an empty intset.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes per element: 2, 4 or 8.
    pub fn encoding(&self) -> usize {
        self.width
    }

    /// The elements in stored order (ascending when [`Intset::validate`] passes).
    pub fn iter(&self) -> impl Iterator<Item = i64> + 'a {
        self.data.get(HEADER_SIZE..).unwrap_or_default().chunks_exact(self.width).map(le_signed)
    }

    /// The element at index `i`, if `i < len`.
    pub fn get(&self, i: usize) -> Option<i64> {
        let start = i.checked_mul(self.width)?.checked_add(HEADER_SIZE)?;
        self.data.get(start..start.checked_add(self.width)?).map(le_signed)
    }

    /// Deep validation, as Redis's `intsetValidateIntegrity(.., deep=1)`: values strictly ascending (sorted, no
    /// duplicates). The error offset is that of the first out-of-order element.
    pub fn validate(&self) -> Result<()> {
        let mut prev: Option<i64> = None;
        for (i, v) in self.iter().enumerate() {
            if let Some(p) = prev
                && v <= p
            {
                return Err(Error::corrupt(
                    NAME,
                    format!("element {i} is {v}, expected a value greater than the previous element {p}"),
                    (HEADER_SIZE + i * self.width) as u64,
                ));
            }
            prev = Some(v);
        }
        Ok(())
    }

    /// Appends to `out` the intset holding `sorted_values` (which must be strictly ascending), with the smallest
    /// width that holds every value: 2 bytes if all fit `i16`, else 4 if all fit `i32`, else 8. An empty slice
    /// gives a 2-byte-encoding, length-0 header, which [`Intset::new`] refuses as Redis's loader does.
    ///
    /// # Panics
    ///
    /// If there are more than `u32::MAX` values.
    pub fn encode(sorted_values: &[i64], out: &mut Vec<u8>) {
        debug_assert!(sorted_values.windows(2).all(|w| w[0] < w[1]), "intset values must be strictly ascending");
        // Checking every value (not just the ends) keeps the result sound even for unsorted input in release builds.
        let fits = |min: i64, max: i64| sorted_values.iter().all(|v| (min..=max).contains(v));
        let width: usize = if fits(i16::MIN.into(), i16::MAX.into()) {
            2
        } else if fits(i32::MIN.into(), i32::MAX.into()) {
            4
        } else {
            8
        };
        let length = u32::try_from(sorted_values.len()).expect("intset with more than u32::MAX elements");
        out.extend_from_slice(&(width as u32).to_le_bytes());
        out.extend_from_slice(&length.to_le_bytes());
        for v in sorted_values {
            out.extend_from_slice(&v.to_le_bytes()[..width]);
        }
    }
}

/// Little-endian two's-complement integer of 2, 4 or 8 bytes, sign-extended.
fn le_signed(b: &[u8]) -> i64 {
    let n = b.len().min(8);
    let mut v = 0u64;
    for (i, &x) in b.iter().take(n).enumerate() {
        v |= u64::from(x) << (8 * i);
    }
    let shift = 64 - 8 * n as u32;
    if shift == 0 || shift == 64 { v as i64 } else { ((v << shift) as i64) >> shift }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;

    fn enc(values: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        Intset::encode(values, &mut out);
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// `intset_32.rdb` from the corpus (redis-rdb-tools).
    #[test]
    fn real_redis_blob() {
        let blob = hex("0400000003000000fcfffe7ffdfffe7ffefffe7f");
        let s = Intset::new(&blob).unwrap();
        s.validate().unwrap();
        let values: Vec<i64> = s.iter().collect();
        assert_eq!(values, [0x7ffefffc, 0x7ffefffd, 0x7ffefffe]);
        assert_eq!(enc(&values), blob);
    }

    fn is_corrupt(e: &Error) -> bool {
        matches!(e.kind(), ErrorKind::Corrupt { .. })
    }

    #[test]
    fn widths() {
        let v16 = enc(&[-2, 1, 32767]);
        assert_eq!(v16, [2, 0, 0, 0, 3, 0, 0, 0, 0xFE, 0xFF, 1, 0, 0xFF, 0x7F]);
        let v32 = enc(&[-40000, 5]);
        assert_eq!(v32, [4, 0, 0, 0, 2, 0, 0, 0, 0xC0, 0x63, 0xFF, 0xFF, 5, 0, 0, 0]);
        let v64 = enc(&[1, 1 << 40]);
        assert_eq!(v64, [8, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
        for (blob, width, values) in
            [(&v16, 2, vec![-2, 1, 32767]), (&v32, 4, vec![-40000, 5]), (&v64, 8, vec![1, 1 << 40])]
        {
            let s = Intset::new(blob).unwrap();
            s.validate().unwrap();
            assert_eq!(s.encoding(), width);
            assert_eq!(s.len(), values.len());
            assert!(!s.is_empty());
            assert_eq!(s.iter().collect::<Vec<_>>(), values);
            assert_eq!(s.get(0), Some(values[0]));
            assert_eq!(s.get(values.len()), None);
            assert_eq!(s.get(usize::MAX), None);
        }
        assert_eq!(enc(&[-32769])[0], 4);
        assert_eq!(enc(&[i32::MIN.into()])[0], 4);
        assert_eq!(enc(&[i64::from(i32::MAX) + 1])[0], 8);
        assert_eq!(enc(&[i64::MIN, i64::MAX])[0], 8);
    }

    #[test]
    fn errors() {
        assert!(Intset::new(&[2, 0, 0]).unwrap_err().is_truncated());
        // unsorted and duplicate values
        let unsorted = [2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 4, 0];
        let e = Intset::new(&unsorted).unwrap().validate().unwrap_err();
        assert!(is_corrupt(&e));
        assert_eq!(e.offset(), Some(10));
        let dup = [2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 5, 0];
        assert!(is_corrupt(&Intset::new(&dup).unwrap().validate().unwrap_err()));
        // bad encoding, length 0, size mismatch
        assert!(is_corrupt(&Intset::new(&[3, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3]).unwrap_err()));
        assert!(is_corrupt(&Intset::new(&[2, 0, 0, 0, 0, 0, 0, 0]).unwrap_err()));
        assert!(is_corrupt(&Intset::new(&[2, 0, 0, 0, 2, 0, 0, 0, 1, 0]).unwrap_err()));
        assert!(is_corrupt(&Intset::new(&[8, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 1, 0]).unwrap_err()));
    }

    proptest! {
        #[test]
        fn round_trip(set in prop::collection::btree_set(prop_oneof![
            any::<i16>().prop_map(i64::from),
            any::<i32>().prop_map(i64::from),
            any::<i64>(),
        ], 1..50)) {
            let values: Vec<i64> = set.into_iter().collect();
            let mut out = vec![0xAA];
            Intset::encode(&values, &mut out);
            let s = Intset::new(&out[1..]).unwrap();
            prop_assert!(s.validate().is_ok());
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), values.clone());
            let min_width = values.iter().map(|&v| if i16::try_from(v).is_ok() { 2 } else if i32::try_from(v).is_ok() { 4 } else { 8 }).max().unwrap();
            prop_assert_eq!(s.encoding(), min_width);
        }

        #[test]
        fn random_bytes_never_panic(mut data in prop::collection::vec(any::<u8>(), 0..100), w in prop::sample::select(vec![2u8, 4, 8])) {
            if data.len() >= 8 {
                data[0..4].copy_from_slice(&[w, 0, 0, 0]);
                let n = ((data.len() - 8) / usize::from(w)) as u32;
                data[4..8].copy_from_slice(&n.to_le_bytes());
                data.truncate(8 + n as usize * usize::from(w));
            }
            if let Ok(s) = Intset::new(&data) {
                let _ = s.validate();
                prop_assert_eq!(s.iter().count(), s.len());
                let _ = s.get(s.len());
            }
        }

        #[test]
        fn raw_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(s) = Intset::new(&data) {
                let _ = s.validate();
                for _ in s.iter() {}
            }
        }
    }
}
