//! The 9-byte magic: `REDIS` + 4 digits or `VALKEY` + 3 digits, and what it means for the rest of the file.

use crate::error::{Error, ErrorKind, Result};

/// Which server family's numbering a file uses. Type bytes 22/23 and opcodes 242/243 mean different things to
/// Redis (≥ 7.4) and Valkey (≥ 9.0), so every dispatch looks at this first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// `REDIS` magic (written by Redis, and by Valkey before 9.0).
    Redis,
    /// `VALKEY` magic (Valkey ≥ 9.0).
    Valkey,
}

impl Flavor {
    /// The magic's text prefix.
    pub fn name(&self) -> &'static str {
        match self {
            Flavor::Redis => "REDIS",
            Flavor::Valkey => "VALKEY",
        }
    }
}

/// The file header: flavor and RDB version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Which numbering the file uses.
    pub flavor: Flavor,
    /// The RDB version.
    pub version: u32,
}

/// Length of the magic.
pub const MAGIC_LEN: usize = 9;

impl Header {
    /// A header for `flavor` and `version` (not checked).
    pub fn new(flavor: Flavor, version: u32) -> Self {
        Header { flavor, version }
    }

    /// Parses and checks the magic. Versions this crate can read exactly: `REDIS0001`–`REDIS0012`, `VALKEY080`.
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        if bytes.len() < MAGIC_LEN {
            let prefix_of = |word: &[u8]| {
                let k = bytes.len().min(word.len());
                word.starts_with(&bytes[..k]) && bytes[k..].iter().all(u8::is_ascii_digit)
            };
            if bytes.is_empty() || prefix_of(b"REDIS") || prefix_of(b"VALKEY") {
                return Err(Error::truncated("magic", MAGIC_LEN - bytes.len(), bytes.len() as u64));
            }
            return Err(bad_magic(bytes));
        }
        let m = &bytes[..MAGIC_LEN];
        let (flavor, digits) = if &m[..5] == b"REDIS" {
            (Flavor::Redis, &m[5..])
        } else if &m[..6] == b"VALKEY" {
            (Flavor::Valkey, &m[6..])
        } else {
            return Err(bad_magic(m));
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad_magic(m));
        }
        let version = digits.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        let supported = match flavor {
            Flavor::Redis => (1..=12).contains(&version),
            Flavor::Valkey => version == 80,
        };
        if !supported {
            return Err(Error::new(ErrorKind::UnsupportedVersion { magic: flavor.name(), version }, 5));
        }
        Ok(Header { flavor, version })
    }

    /// The 9 magic bytes for this header.
    pub fn magic_bytes(&self) -> [u8; MAGIC_LEN] {
        let s = match self.flavor {
            Flavor::Redis => format!("REDIS{:04}", self.version),
            Flavor::Valkey => format!("VALKEY{:03}", self.version),
        };
        let mut out = [0u8; MAGIC_LEN];
        out.copy_from_slice(&s.as_bytes()[..MAGIC_LEN]);
        out
    }

    /// The magic as text, e.g. `REDIS0011`.
    pub fn magic(&self) -> String {
        String::from_utf8_lossy(&self.magic_bytes()).into_owned()
    }

    /// Whether a CRC-64 follows the EOF opcode (RDB ≥ 5).
    pub fn has_checksum(&self) -> bool {
        self.version >= 5
    }

    /// The Redis-numbering feature level: Valkey 80 holds everything Redis 11 does (plus Valkey's own types).
    pub fn redis_level(&self) -> u32 {
        match self.flavor {
            Flavor::Redis => self.version,
            Flavor::Valkey => 11,
        }
    }
}

fn bad_magic(m: &[u8]) -> Error {
    let hint = if m.starts_with(b"VKCS") {
        " (this is a Valkey compression envelope, not a plain RDB)"
    } else if m.starts_with(b"*") {
        " (this looks like an AOF command stream)"
    } else if m.starts_with(&[0x1f, 0x8b]) {
        " (this is gzip data: use a reader that detects gzip)"
    } else {
        ""
    };
    Error::new(ErrorKind::BadMagic { found: String::from_utf8_lossy(m).into_owned(), hint }, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        assert_eq!(Header::parse(b"REDIS0011").unwrap(), Header::new(Flavor::Redis, 11));
        assert_eq!(Header::parse(b"VALKEY080").unwrap(), Header::new(Flavor::Valkey, 80));
        assert_eq!(Header::new(Flavor::Valkey, 80).magic(), "VALKEY080");
        assert_eq!(Header::new(Flavor::Redis, 3).magic(), "REDIS0003");
        assert!(matches!(
            Header::parse(b"REDIS0013").unwrap_err().kind(),
            ErrorKind::UnsupportedVersion { version: 13, .. }
        ));
        assert!(matches!(Header::parse(b"REDIS0000").unwrap_err().kind(), ErrorKind::UnsupportedVersion { .. }));
        assert!(matches!(Header::parse(b"VALKEY081").unwrap_err().kind(), ErrorKind::UnsupportedVersion { .. }));
        assert!(matches!(Header::parse(b"REDIS00x1").unwrap_err().kind(), ErrorKind::BadMagic { .. }));
        assert!(Header::parse(b"REDIS").unwrap_err().is_truncated());
        assert!(matches!(Header::parse(b"*2\r\n$6\r\nSEL").unwrap_err().kind(), ErrorKind::BadMagic { .. }));
    }
}
