//! Reading RDB files: the record types, the record parser, and the readers built on it —
//! [`SliceReader`] over a byte slice (zero-copy), [`StreamReader`] over any `io::Read` (bounded memory, gzip
//! detected, page padding tolerated), and [`ChunkedReader`], which reads any `io::Read` into large buffers and
//! parses them on a second thread (the fast path for files, without mapping them).
//!
//! A file is a [`Header`] followed by [`Record`]s. Every record borrows from the input and keeps its raw bytes, so
//! it can be written out untouched; key records carry a [`Value`] that is decoded lazily (see [`value`]).

mod chunked;
mod header;
pub mod module;
mod parse;
mod slice;
mod stream;
pub mod stream_value;
pub mod value;

pub use chunked::ChunkedReader;
pub(crate) use chunked::Gunzip;
pub use header::{Flavor, Header};
pub use parse::{EXPIRE_MAX, Encoding, LogicalType, ReadOptions};
pub(crate) use slice::DeepCheck;
pub use slice::SliceReader;
pub use stream::StreamReader;
pub use value::{Item, OwnedValue, Value};

use crate::format::string::RdbStr;

/// One record of an RDB file, with where it was found and its raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Byte offset of the record's first byte in the (decompressed) input.
    pub offset: u64,
    /// The record's bytes exactly as they are in the input (opcode included).
    pub raw: &'a [u8],
    /// What the record says.
    pub kind: RecordKind<'a>,
}

/// What a record says.
#[derive(Debug, Clone, Copy)]
pub enum RecordKind<'a> {
    /// AUX field (opcode 250): metadata such as `redis-ver` or `ctime`.
    Aux {
        /// Field name.
        key: RdbStr<'a>,
        /// Field value.
        value: RdbStr<'a>,
    },
    /// SELECTDB (254): the following keys belong to database `db`.
    SelectDb {
        /// Database index.
        db: u64,
    },
    /// RESIZEDB (251): size hints for the current database.
    ResizeDb {
        /// Number of keys hinted.
        db_size: u64,
        /// Number of keys with an expiry hinted.
        expires_size: u64,
    },
    /// FUNCTION2 (245): one function library's source code.
    Function {
        /// The library code (starts with a `#!engine name=…` line).
        code: RdbStr<'a>,
    },
    /// MODULE_AUX (247): module-global data, opaque without the module.
    ModuleAux(module::ModuleAux<'a>),
    /// SLOT_INFO (244): key counts of one cluster slot.
    SlotInfo {
        /// Slot number.
        slot: u64,
        /// Keys in the slot.
        size: u64,
        /// Keys with an expiry in the slot.
        expires_size: u64,
    },
    /// A key and its value, with expiry and eviction metadata.
    Entry(Entry<'a>),
    /// EOF (255) and the stored checksum.
    Eof {
        /// The CRC-64 stored after EOF: `None` before RDB 5, `Some(0)` when the writer disabled checksums.
        checksum: Option<u64>,
    },
}

/// A key record.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Database the key belongs to.
    pub db: u64,
    /// The key.
    pub key: RdbStr<'a>,
    /// Absolute expiry, if any.
    pub expiry: Option<Expiry>,
    /// LRU idle time in seconds (IDLE opcode), if present.
    pub idle: Option<u64>,
    /// LFU counter (FREQ opcode), if present.
    pub freq: Option<u8>,
    /// The value.
    pub value: Value<'a>,
}

/// An absolute expiry time, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// EXPIRETIME (253): seconds since the epoch.
    Seconds(i32),
    /// EXPIRETIME_MS (252): milliseconds since the epoch.
    Millis(i64),
}

impl Expiry {
    /// The expiry in milliseconds since the Unix epoch.
    pub fn as_millis(&self) -> i64 {
        match *self {
            Expiry::Seconds(s) => i64::from(s) * 1000,
            Expiry::Millis(ms) => ms,
        }
    }
}

/// What the reader found after the EOF record: the checksum verdict and any trailing bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// RDB < 5: the format has no checksum.
    Absent,
    /// The writer stored 0 (`rdbchecksum no`): not checked.
    Disabled,
    /// The stored checksum matches.
    Ok(u64),
    /// The stored checksum does not match. The readers themselves fail with [`crate::ErrorKind::ChecksumMismatch`]
    /// instead; this verdict is for tools that compute the CRC on their own and report it (`rdbkit info` does).
    Mismatch {
        /// Stored value.
        stored: u64,
        /// Computed value.
        computed: u64,
    },
    /// Not verified (checksum verification turned off).
    NotChecked,
}

impl Checksum {
    /// The status word used by the CLI: `ok`, `absent`, `disabled`, `mismatch` or `unchecked`.
    pub fn status(&self) -> &'static str {
        match self {
            Checksum::Absent => "absent",
            Checksum::Disabled => "disabled",
            Checksum::Ok(_) => "ok",
            Checksum::Mismatch { .. } => "mismatch",
            Checksum::NotChecked => "unchecked",
        }
    }
}

/// How many bytes after the checksum the readers look at: at most this many are read (from a stream) or examined
/// (in a slice), so that endless padding (`cat x.rdb /dev/zero`) or a gzip bomb after a complete file costs
/// milliseconds, not gigabytes.
///
/// A page blob is padded with zeros to a multiple of 512 bytes, and one created larger than its data (as a writer of
/// unknown length does before shrinking it) reads as zeros to its end, since unwritten pages read as zeros: zero
/// padding longer than one page is legitimate, and a server ignores whatever follows the checksum anyway. 1 MiB covers the padding of any page-aligned export and of a blob allocated up to 1 MiB
/// beyond its data; anything longer is reported as more trailing data than was read ([`Trailing::beyond_limit`]).
pub const TRAILING_LIMIT: u64 = 1 << 20;

/// Bytes after the checksum, as far as the reader looked ([`TRAILING_LIMIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trailing {
    /// Number of bytes after the checksum, at most [`TRAILING_LIMIT`]: when [`Trailing::beyond_limit`], the first
    /// `TRAILING_LIMIT` bytes (and more follow).
    pub len: u64,
    /// Whether those `len` bytes are all zero (page-blob padding).
    pub all_zero: bool,
    /// More than [`TRAILING_LIMIT`] bytes follow the checksum: the reader stopped after the first
    /// `TRAILING_LIMIT` (a stream is not read any further), so neither the length nor the contents of the rest
    /// are known.
    pub beyond_limit: bool,
}

impl Trailing {
    /// The report for the bytes `tail` after the checksum: only the first [`TRAILING_LIMIT`] of them are looked
    /// at (a longer `tail` may be the part of a stream read so far, one byte past the limit).
    pub(crate) fn of(tail: &[u8]) -> Trailing {
        let examined = &tail[..tail.len().min(TRAILING_LIMIT as usize)];
        Trailing {
            len: examined.len() as u64,
            all_zero: examined.iter().all(|&b| b == 0),
            beyond_limit: tail.len() as u64 > TRAILING_LIMIT,
        }
    }
}

/// The library name from a function library's code: the `name=` attribute of its `#!engine` first line.
pub fn function_name(code: &[u8]) -> Option<String> {
    let first = code.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?;
    if !first.starts_with("#!") {
        return None;
    }
    first.split_whitespace().find_map(|tok| tok.strip_prefix("name=")).map(str::to_string)
}
