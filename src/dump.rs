//! DUMP/RESTORE payloads (RDB-FORMAT.md §1.6): one value in the form Redis's `DUMP` returns and `RESTORE` accepts.
//!
//! ```text
//! TYPE (1 byte) | VALUE (the value's RDB bytes) | rdb_version (u16 LE) | CRC-64 (u64 LE)
//! ```
//!
//! The CRC is Redis's CRC-64/Jones with initial value 0 over every byte before it (the version included). There is
//! no key, no magic and no expiry in a payload. Unlike a file's footer, a payload's CRC is never 0 for "disabled":
//! servers always verify it, so [`dump_payload`] always computes it and [`parse_dump_payload`] always checks it.
//!
//! Because a [`Value`] keeps the exact bytes it was stored as, a payload is built without decoding anything: any
//! value an RDB file holds — module values included — becomes a `RESTORE` argument.
//!
//! ```
//! use rdbkit::dump::{dump_payload, parse_dump_payload};
//! use rdbkit::read::{Encoding, Value};
//! # fn main() -> rdbkit::Result<()> {
//! // The string "bar" (a 3-byte RDB string), as Redis 7.0 (RDB 10) dumps it.
//! let value = Value { encoding: Encoding::String, raw: b"\x03bar" };
//! let payload = dump_payload(&value, 10);
//! assert_eq!(&payload[..7], b"\x00\x03bar\x0a\x00");
//! assert_eq!(parse_dump_payload(&payload)?, (0, &b"\x03bar"[..], 10));
//! # Ok(()) }
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::format::crc::crc64;
use crate::read::Value;

/// Bytes after the value: the 2-byte RDB version and the 8-byte CRC-64.
const FOOTER_LEN: usize = 10;

/// Builds the DUMP payload of `value`, stamped with `rdb_version` (the RDB version of the file the value comes from;
/// `80` for a `VALKEY080` file). A server refuses payloads whose version is newer than its own.
pub fn dump_payload(value: &Value<'_>, rdb_version: u16) -> Vec<u8> {
    dump_payload_raw(value.encoding.type_byte(), value.raw, rdb_version)
}

/// Builds a DUMP payload from a type byte and the value's raw RDB bytes (what follows the key in a key record).
pub fn dump_payload_raw(type_byte: u8, value_raw: &[u8], rdb_version: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + value_raw.len() + FOOTER_LEN);
    out.push(type_byte);
    out.extend_from_slice(value_raw);
    out.extend_from_slice(&rdb_version.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Splits a DUMP payload into its type byte, the value's raw bytes and its RDB version, after checking the CRC-64.
///
/// Errors: [`ErrorKind::Truncated`] when the payload is shorter than a type byte and the footer, and
/// [`ErrorKind::ChecksumMismatch`] (at the offset of the stored CRC) when the CRC does not match. The value bytes
/// are not parsed; interpret them with the type byte (e.g. with [`crate::read::Encoding::from_type_byte`]).
pub fn parse_dump_payload(payload: &[u8]) -> Result<(u8, &[u8], u16)> {
    let min = 1 + FOOTER_LEN;
    if payload.len() < min {
        return Err(Error::truncated("DUMP payload (type byte, version and CRC-64)", min - payload.len(), 0));
    }
    let crc_at = payload.len() - 8;
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&payload[crc_at..]);
    let stored = u64::from_le_bytes(stored);
    let computed = crc64(0, &payload[..crc_at]);
    if stored != computed {
        return Err(Error::new(ErrorKind::ChecksumMismatch { stored, computed }, crc_at as u64));
    }
    let version = u16::from_le_bytes([payload[crc_at - 2], payload[crc_at - 1]]);
    Ok((payload[0], &payload[1..crc_at - 2], version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Encoding;

    #[test]
    fn string_bar_as_redis_7_dumps_it() {
        // `SET foo bar` then `DUMP foo` on Redis 7.0 (RDB 10): type 0, "\x03bar", version 10, CRC.
        let v = Value { encoding: Encoding::String, raw: b"\x03bar" };
        let p = dump_payload(&v, 10);
        let mut expected = b"\x00\x03bar\x0a\x00".to_vec();
        expected.extend_from_slice(&crc64(0, b"\x00\x03bar\x0a\x00").to_le_bytes());
        assert_eq!(p, expected);
        assert_eq!(p.len(), 15);
    }

    #[test]
    fn documented_redis_dump_example() {
        // From the Redis `DUMP` documentation: `SET mykey 10`, `DUMP mykey` on an RDB 9 server gives
        // "\x00\xc0\n\t\x00\xbem\x06\x89Z(\x00\n" (an INT8-encoded string). An independent check of the CRC.
        let v = Value { encoding: Encoding::String, raw: b"\xc0\x0a" };
        assert_eq!(dump_payload(&v, 9), b"\x00\xc0\n\t\x00\xbem\x06\x89Z(\x00\n");
    }

    #[test]
    fn round_trip() {
        let raw: Vec<u8> = (0..=255u8).collect();
        for (ty, version) in [(0u8, 1u16), (7, 9), (18, 11), (22, 80), (25, 12)] {
            let p = dump_payload_raw(ty, &raw, version);
            let (t, r, v) = parse_dump_payload(&p).unwrap();
            assert_eq!((t, r, v), (ty, &raw[..], version));
        }
        // An empty value body is structurally fine at this level.
        let p = dump_payload_raw(0, b"", 10);
        assert_eq!(parse_dump_payload(&p).unwrap(), (0, &b""[..], 10));
    }

    #[test]
    fn rejects_bad_crc_and_short_input() {
        let v = Value { encoding: Encoding::String, raw: b"\x03bar" };
        let mut p = dump_payload(&v, 10);
        let last = p.len() - 1;
        p[last] ^= 1;
        let e = parse_dump_payload(&p).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::ChecksumMismatch { .. }), "{e}");
        assert_eq!(e.offset(), Some(7));
        p[last] ^= 1;
        p[1] = b'\x04'; // a changed value byte
        assert!(matches!(parse_dump_payload(&p).unwrap_err().kind(), ErrorKind::ChecksumMismatch { .. }));
        for n in 0..11 {
            let e = parse_dump_payload(&p[..n]).unwrap_err();
            assert!(e.is_truncated(), "{n}: {e}");
        }
    }
}
