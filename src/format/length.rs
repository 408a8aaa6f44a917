//! The RDB length encoding (LEN) and the (crate-private) `nom` plumbing shared by every primitive parser;
//! [`decode_length`] and [`encode_length`] are the public entry points.
//!
//! A LEN is 1, 2, 5 or 9 bytes chosen by the top two bits of its first byte; the 14-, 32- and 64-bit forms are
//! **big-endian**, unlike everything else in the format. The `11xxxxxx` form is not a length but a string
//! special-encoding marker, which the string parser reads as such (where a plain length is expected, the low 6
//! bits are the length, as the servers read them, with a warning).

use crate::error::{Error, ErrorKind};
use nom::{Err as NomErr, IResult, Needed};

/// Error type of the `nom` parsers: the remaining input at the point of failure and the crate error, whose offset
/// is relative to that point (0 unless the error came from inside a nested structure).
#[derive(Debug)]
pub(crate) struct PError<'a> {
    /// The input remaining where the error was found.
    pub(crate) at: &'a [u8],
    /// The error; its offset is relative to `at`.
    pub(crate) error: Error,
}

impl<'a> PError<'a> {
    /// A parser failure (`nom::Err::Failure`: the bytes are wrong, backtracking would not help).
    pub(crate) fn fail<T>(at: &'a [u8], kind: ErrorKind) -> PResult<'a, T> {
        Err(NomErr::Failure(PError { at, error: Error::new(kind, 0) }))
    }

    /// Wraps an error from a nested decoder whose offset is relative to `at`.
    pub(crate) fn nested<T>(at: &'a [u8], error: Error) -> PResult<'a, T> {
        Err(NomErr::Failure(PError { at, error }))
    }

    /// The absolute offset of the error, given the input the whole parse started from and its file offset.
    pub(crate) fn offset_in(&self, base: &[u8], base_offset: u64) -> u64 {
        let consumed = base.len().saturating_sub(self.at.len()) as u64;
        base_offset + consumed + self.error.offset().unwrap_or(0)
    }
}

impl<'a> nom::error::ParseError<&'a [u8]> for PError<'a> {
    fn from_error_kind(input: &'a [u8], kind: nom::error::ErrorKind) -> Self {
        PError { at: input, error: Error::corrupt("input", format!("parser rule {kind:?} failed"), 0) }
    }

    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

/// Result of the `nom` parsers in this crate. `Err(Incomplete)` means more input is needed.
pub(crate) type PResult<'a, T> = IResult<&'a [u8], T, PError<'a>>;

/// Takes `n` bytes, or reports how many more are needed (streaming semantics).
#[inline]
pub(crate) fn take(i: &[u8], n: usize) -> PResult<'_, &[u8]> {
    if i.len() >= n { Ok((&i[n..], &i[..n])) } else { Err(NomErr::Incomplete(Needed::new(n - i.len()))) }
}

/// Takes `n` bytes where `n` came from the file as a `u64`.
#[inline]
pub(crate) fn take_u64(i: &[u8], n: u64) -> PResult<'_, &[u8]> {
    match usize::try_from(n) {
        Ok(n) => take(i, n),
        // More than the address space: it can never be satisfied, call it truncated by a lot.
        Err(_) => Err(NomErr::Incomplete(Needed::Unknown)),
    }
}

/// Reads one byte.
#[inline]
pub(crate) fn u8(i: &[u8]) -> PResult<'_, u8> {
    match i.first() {
        Some(&b) => Ok((&i[1..], b)),
        None => Err(NomErr::Incomplete(Needed::new(1))),
    }
}

/// Reads a fixed-size array.
#[inline]
pub(crate) fn array<const N: usize>(i: &[u8]) -> PResult<'_, [u8; N]> {
    let (rest, b) = take(i, N)?;
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    Ok((rest, a))
}

/// Reads a little-endian `i64` (millisecond times).
#[inline]
pub(crate) fn le_i64(i: &[u8]) -> PResult<'_, i64> {
    array::<8>(i).map(|(r, a)| (r, i64::from_le_bytes(a)))
}

/// Reads a little-endian `i32` (second-precision expiry).
#[inline]
pub(crate) fn le_i32(i: &[u8]) -> PResult<'_, i32> {
    array::<4>(i).map(|(r, a)| (r, i32::from_le_bytes(a)))
}

/// A decoded LEN: a plain length, or the 6-bit selector of a string special encoding (`11xxxxxx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    /// A length or count.
    Len(u64),
    /// A string special encoding; the value is the low 6 bits (0 int8, 1 int16, 2 int32, 3 LZF).
    Special(u8),
}

/// Parses a LEN that may also be a string special-encoding marker.
#[inline]
pub(crate) fn length_or_special(i: &[u8]) -> PResult<'_, Len> {
    let Some(&b) = i.first() else {
        return Err(NomErr::Incomplete(Needed::new(1)));
    };
    match b >> 6 {
        0 => Ok((&i[1..], Len::Len(u64::from(b & 0x3F)))),
        1 => {
            let (r, a) = array::<2>(i)?;
            Ok((r, Len::Len(u64::from(a[0] & 0x3F) << 8 | u64::from(a[1]))))
        }
        3 => Ok((&i[1..], Len::Special(b & 0x3F))),
        _ => match b {
            0x80 => {
                let (r, a) = array::<4>(&i[1..])?;
                Ok((r, Len::Len(u64::from(u32::from_be_bytes(a)))))
            }
            0x81 => {
                let (r, a) = array::<8>(&i[1..])?;
                Ok((r, Len::Len(u64::from_be_bytes(a))))
            }
            _ => PError::fail(i, ErrorKind::InvalidLength(b)),
        },
    }
}

/// Runs a crate parser over a whole buffer: the value and the bytes it took, or a typed error (the input ending
/// early is [`ErrorKind::Truncated`] naming `what`; offsets count from the start of `bytes`).
pub(crate) fn run_parser<'a, T>(
    bytes: &'a [u8],
    what: &'static str,
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> crate::Result<(T, usize)> {
    match parser(bytes) {
        Ok((rest, v)) => Ok((v, bytes.len() - rest.len())),
        Err(NomErr::Incomplete(n)) => {
            let needed = match n {
                Needed::Size(k) => k.get(),
                Needed::Unknown => 0,
            };
            Err(Error::truncated(what, needed, bytes.len() as u64))
        }
        Err(NomErr::Error(e) | NomErr::Failure(e)) => {
            let at = e.offset_in(bytes, 0);
            Err(e.error.at(at))
        }
    }
}

/// Decodes one RDB length at the start of `bytes`: its value and how many bytes it took.
///
/// ```
/// assert_eq!(rdbkit::format::length::decode_length(&[0x40, 0x01, 0xff]).unwrap(), (1, 2));
/// assert!(rdbkit::format::length::decode_length(&[0x80, 0x00]).is_err());
/// ```
pub fn decode_length(bytes: &[u8]) -> crate::Result<(u64, usize)> {
    run_parser(bytes, "length", length)
}

/// Parses a LEN where only a plain length is valid. A `11xxxxxx` byte is read as its low 6 bits, as Redis's
/// `rdbLoadLen` does (it ignores the "encoded" flag), and noted as a warning: no server writes it.
#[inline]
pub(crate) fn length(i: &[u8]) -> PResult<'_, u64> {
    match length_or_special(i)? {
        (r, Len::Len(n)) => Ok((r, n)),
        (r, Len::Special(v)) => {
            crate::read::note_warning(i, crate::read::WarningKind::EncodedPlainLength);
            Ok((r, u64::from(v)))
        }
    }
}

/// Appends the LEN encoding of `n` (smallest form; the 64-bit form only when `n` needs it).
pub fn encode_length(n: u64, out: &mut Vec<u8>) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// The number of bytes [`encode_length`] writes for `n`.
pub fn encoded_length_size(n: u64) -> usize {
    if n < 1 << 6 {
        1
    } else if n < 1 << 14 {
        2
    } else if n <= u64::from(u32::MAX) {
        5
    } else {
        9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        assert_eq!(length(&[0x05]).unwrap().1, 5);
        assert_eq!(length(&[0x41, 0x02]).unwrap().1, 0x102);
        assert_eq!(length(&[0x80, 0, 1, 0, 0]).unwrap().1, 0x10000);
        assert_eq!(length(&[0x81, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap().1, 1 << 32);
        assert_eq!(length_or_special(&[0xC3]).unwrap().1, Len::Special(3));
        assert!(matches!(length(&[0x82]), Err(NomErr::Failure(_))));
        // Redis's rdbLoadLen reads the low 6 bits of a string-encoding byte.
        assert_eq!(length(&[0xC0]).unwrap().1, 0);
        assert_eq!(length(&[0xFF, 7]).unwrap(), (&[7u8][..], 63));
        assert!(matches!(length(&[0x80, 0]), Err(NomErr::Incomplete(Needed::Size(_)))));
        assert!(matches!(length(&[]), Err(NomErr::Incomplete(_))));
    }

    proptest! {
        #[test]
        fn round_trip(n in any::<u64>()) {
            let mut v = Vec::new();
            encode_length(n, &mut v);
            prop_assert_eq!(v.len(), encoded_length_size(n));
            let (rest, back) = length(&v).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(back, n);
            // Every proper prefix asks for more input.
            for cut in 0..v.len() {
                prop_assert!(matches!(length(&v[..cut]), Err(NomErr::Incomplete(_))));
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = length_or_special(&bytes);
        }
    }
}
