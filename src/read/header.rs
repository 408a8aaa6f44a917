//! The 9-byte magic: `REDIS` + 4 digits or `VALKEY` + 3 digits, and what it means for the rest of the file.

use crate::error::{Error, ErrorKind, Result};

/// Which server family's numbering a file uses. Type bytes 22/23 and opcodes 242/243 mean different things to
/// Redis (≥ 7.4) and Valkey (≥ 9.0), so every dispatch looks at this first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

/// `REDIS` or `VALKEY`.
impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The magic, e.g. `REDIS0011`.
impl std::fmt::Display for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.magic())
    }
}

/// A magic such as `REDIS0011` or `VALKEY080` ([`Header::parse`]).
impl std::str::FromStr for Header {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Header> {
        if s.len() != MAGIC_LEN {
            return Err(bad_magic(s.as_bytes()));
        }
        Header::parse(s.as_bytes())
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

/// Something an RDB file can hold only from some version on. This is the one table of which version holds what:
/// the survey, the encoder, the writer and the reports all ask [`Header::supports`].
///
/// (Which *encodings* of a value a version holds is the type-byte table, [`crate::read::Encoding::allowed_in`];
/// [`crate::read::Encoding::feature`] says which feature an encoding stands for.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// Key expiries in milliseconds (EXPIRETIME_MS): RDB 3 (Redis 2.6).
    MillisecondExpiry,
    /// A CRC-64 after the EOF opcode: RDB 5 (Redis 2.6).
    Checksum,
    /// AUX fields and RESIZEDB hints: RDB 7 (Redis 3.2).
    AuxAndResizeDb,
    /// Module values: RDB 8 (Redis 4.0).
    ModuleValues,
    /// Streams: RDB 9 (Redis 5.0).
    Streams,
    /// Module AUX records: RDB 9 (Redis 5.0).
    ModuleAux,
    /// LRU idle times and LFU counters (IDLE / FREQ opcodes): RDB 9 (Redis 5.0).
    IdleAndFreq,
    /// Function libraries: RDB 10 (Redis 7.0).
    Functions,
    /// Hash field TTLs: REDIS0012 (Redis 7.4) and VALKEY080 (Valkey 9.0).
    FieldTtls,
    /// SLOT_INFO records (per-slot key counts): REDIS0012 (Redis 7.4); Valkey files have none.
    SlotInfo,
}

impl Feature {
    /// Every feature, oldest first.
    pub const ALL: [Feature; 10] = [
        Feature::MillisecondExpiry,
        Feature::Checksum,
        Feature::AuxAndResizeDb,
        Feature::ModuleValues,
        Feature::Streams,
        Feature::ModuleAux,
        Feature::IdleAndFreq,
        Feature::Functions,
        Feature::FieldTtls,
        Feature::SlotInfo,
    ];

    /// The first Redis-numbered RDB version that holds it.
    pub fn since_redis(self) -> u32 {
        match self {
            Feature::MillisecondExpiry => 3,
            Feature::Checksum => 5,
            Feature::AuxAndResizeDb => 7,
            Feature::ModuleValues => 8,
            Feature::Streams | Feature::ModuleAux | Feature::IdleAndFreq => 9,
            Feature::Functions => 10,
            Feature::FieldTtls | Feature::SlotInfo => 12,
        }
    }

    /// Whether `VALKEY` files (version 80) hold it.
    pub fn in_valkey(self) -> bool {
        !matches!(self, Feature::SlotInfo)
    }

    /// A short name for messages: "streams", "function libraries", …
    pub fn name(self) -> &'static str {
        match self {
            Feature::MillisecondExpiry => "millisecond expiries",
            Feature::Checksum => "checksums",
            Feature::AuxAndResizeDb => "AUX fields and RESIZEDB hints",
            Feature::ModuleValues => "module values",
            Feature::Streams => "streams",
            Feature::ModuleAux => "module AUX data",
            Feature::IdleAndFreq => "LRU/LFU metadata",
            Feature::Functions => "function libraries",
            Feature::FieldTtls => "hash field TTLs",
            Feature::SlotInfo => "SLOT_INFO records",
        }
    }

    /// Which files hold it, for messages: "RDB 9+, Redis 5.0", "REDIS0012 or VALKEY080".
    pub fn needs(self) -> String {
        let server = match self.since_redis() {
            3 | 5 => "Redis 2.6",
            7 => "Redis 3.2",
            8 => "Redis 4.0",
            9 => "Redis 5.0",
            10 => "Redis 7.0",
            _ => "Redis 7.4",
        };
        match (self.since_redis(), self.in_valkey()) {
            (12, true) => "REDIS0012 or VALKEY080".into(),
            (12, false) => "REDIS0012".into(),
            (v, _) => format!("RDB {v}+, {server}"),
        }
    }
}

/// `streams (needs RDB 9+)`.
impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (needs {})", self.name(), self.needs())
    }
}

impl Header {
    /// Whether files with this header can hold `feature`.
    pub fn supports(&self, feature: Feature) -> bool {
        match self.flavor {
            Flavor::Redis => self.version >= feature.since_redis(),
            Flavor::Valkey => feature.in_valkey(),
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

    /// The feature table agrees with the type-byte table (an encoding standing for a feature exists exactly from
    /// the feature's version on) and with the servers' history.
    #[test]
    fn features_by_version() {
        use crate::read::Encoding;
        let redis = |v| Header::new(Flavor::Redis, v);
        let valkey = Header::new(Flavor::Valkey, 80);
        for f in Feature::ALL {
            for v in 1..=12 {
                assert_eq!(redis(v).supports(f), v >= f.since_redis(), "{f:?} in RDB {v}");
            }
            assert_eq!(valkey.supports(f), f != Feature::SlotInfo, "{f:?} in VALKEY080");
        }
        for byte in 0..=255u8 {
            for h in (1..=12).map(redis).chain([valkey]) {
                if let Some(e) = Encoding::from_type_byte(byte, h)
                    && let Some(f) = e.feature()
                {
                    assert!(h.supports(f), "{e:?} in {} but {f:?} is not", h.magic());
                }
            }
        }
        assert_eq!(Feature::Streams.to_string(), "streams (needs RDB 9+, Redis 5.0)");
        assert_eq!(Feature::FieldTtls.to_string(), "hash field TTLs (needs REDIS0012 or VALKEY080)");
    }
}
