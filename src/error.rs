//! The one error type of the crate.
//!
//! Every failure — malformed bytes, an unsupported version, a checksum mismatch, an I/O error — is an [`Error`]:
//! an [`ErrorKind`] saying what was wrong or expected, the byte offset in the input where it was found, and, when
//! the parser knows them, the database index and key being read. Nothing in this crate panics on bad input.

use std::fmt;

/// What went wrong. Each variant says what the parser expected to find.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before a structure was complete.
    #[error("unexpected end of input while reading {what} ({needed} more byte(s) needed at least)")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// The minimum number of further bytes needed (0 when unknown).
        needed: usize,
    },
    /// The first 9 bytes are not an RDB magic.
    #[error("bad magic {found:?}: expected \"REDIS\" + 4 digits or \"VALKEY\" + 3 digits{hint}")]
    BadMagic {
        /// The bytes found (lossy text).
        found: String,
        /// Extra hint (e.g. for a Valkey compression envelope or an AOF file).
        hint: &'static str,
    },
    /// The RDB version is one this crate cannot read exactly.
    #[error("unsupported RDB version {version} (magic {magic}): this reader knows REDIS 1-12 and VALKEY 80")]
    UnsupportedVersion {
        /// `REDIS` or `VALKEY`.
        magic: &'static str,
        /// The version number from the magic.
        version: u32,
    },
    /// A length prefix byte that no encoding uses.
    #[error("invalid length encoding byte 0x{0:02x}")]
    InvalidLength(u8),
    /// A string special-encoding byte (`11xxxxxx`) that no encoding uses.
    #[error("invalid string encoding byte 0x{0:02x}")]
    InvalidStringEncoding(u8),
    /// A length or count that does not fit what the structure allows.
    #[error("{what} of {value} is out of range")]
    OutOfRange {
        /// Which length or field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// LZF data that does not decompress to the declared length.
    #[error("corrupt LZF data: {0}")]
    Lzf(&'static str),
    /// A type or opcode byte unknown for this magic and version.
    #[error("unknown value type or opcode {byte} (0x{byte:02x}) for {magic} version {version}")]
    UnknownType {
        /// The byte read.
        byte: u8,
        /// `REDIS` or `VALKEY`.
        magic: &'static str,
        /// RDB version of the file.
        version: u32,
    },
    /// A feature this crate recognises but cannot decode (pre-release formats).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A structure whose bytes break one of its invariants.
    #[error("corrupt {structure}: {detail}")]
    Corrupt {
        /// The structure (e.g. `ziplist`, `listpack`, `stream`).
        structure: &'static str,
        /// The invariant that failed.
        detail: String,
    },
    /// The CRC-64 stored after the EOF opcode does not match the file.
    #[error("checksum mismatch: stored 0x{stored:016x}, computed 0x{computed:016x}")]
    ChecksumMismatch {
        /// The checksum in the file.
        stored: u64,
        /// The checksum of the bytes read.
        computed: u64,
    },
    /// An I/O error from the underlying reader or writer.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A request the caller made that cannot be honoured (bad option, bad argument).
    #[error("{0}")]
    Invalid(String),
    /// Data the target cannot hold (a conversion would lose it): a feature its RDB version lacks, a module it
    /// does not have, a value out of its range. Branch on `what`.
    #[error("{}", unrepresentable_text(what, target, items, *count))]
    Unrepresentable {
        /// What the target cannot hold (the first item, when a checking pass listed several).
        what: crate::write::encode::Unrepresentable,
        /// The target file format.
        target: crate::read::Header,
        /// When a checking pass listed everything before writing: the first items (at most
        /// [`UNREPRESENTABLE_SHOWN`]), one line each (`input: db N key K: reason`). Empty when the error is about
        /// one item (named by the error's context).
        items: Vec<String>,
        /// How many items were refused in all (1 for a single item).
        count: u64,
    },
    /// Memory for a value the input holds could not be had (the machine's memory or the process's address-space
    /// limit): a clean error where the default would abort. The offset is where the value starts.
    #[error("cannot allocate {bytes} bytes for {what} (out of memory, or beyond the address-space limit)")]
    OutOfMemory {
        /// What the memory was for.
        what: &'static str,
        /// How much was asked for.
        bytes: u64,
    },
}

/// How many refused items an [`ErrorKind::Unrepresentable`] error lists.
pub const UNREPRESENTABLE_SHOWN: usize = 50;

fn unrepresentable_text(
    what: &crate::write::encode::Unrepresentable,
    target: &crate::read::Header,
    items: &[String],
    count: u64,
) -> String {
    if items.is_empty() {
        return format!("cannot be written to {}: {what}", target.magic());
    }
    let shown = items.join("\n  ");
    let rest = count.saturating_sub(items.len() as u64);
    let more = if rest > 0 { format!("\n  … and {rest} more") } else { String::new() };
    format!("{count} item(s) cannot be written to {} (use --lossy to drop them):\n  {shown}{more}", target.magic())
}

/// Makes room for `additional` more bytes in `v`, or an [`ErrorKind::OutOfMemory`] for `what` at `offset`: for
/// buffers sized by the input (a record, a value, its output), so an allocation the machine cannot give is an
/// error, not an abort.
pub(crate) fn try_reserve<T>(v: &mut Vec<T>, additional: usize, what: &'static str, offset: u64) -> Result<()> {
    v.try_reserve(additional).map_err(|_| {
        let bytes = (v.len().saturating_add(additional) as u64).saturating_mul(std::mem::size_of::<T>() as u64);
        Error::new(ErrorKind::OutOfMemory { what, bytes }, offset)
    })
}

/// An error with its position: byte offset in the input, and the database and key being read when known.
///
/// It is one pointer wide, so `Result<T>` stays small on the hot parsing paths.
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    offset: Option<u64>,
    db: Option<u64>,
    key: Option<Vec<u8>>,
    file: Option<String>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` at byte `offset` (for [`RecordSink`](crate::transform::RecordSink) implementations and
    /// other code built on the readers: a sink that refuses a record returns one).
    pub fn new(kind: ErrorKind, offset: u64) -> Self {
        Error(Box::new(Inner { kind, offset: Some(offset), db: None, key: None, file: None }))
    }

    /// An error that has no position in an input (I/O, bad options).
    pub fn without_offset(kind: ErrorKind) -> Self {
        Error(Box::new(Inner { kind, offset: None, db: None, key: None, file: None }))
    }

    /// Shorthand for a [`ErrorKind::Corrupt`] error.
    pub(crate) fn corrupt(structure: &'static str, detail: impl Into<String>, offset: u64) -> Self {
        Error::new(ErrorKind::Corrupt { structure, detail: detail.into() }, offset)
    }

    /// An [`ErrorKind::Unrepresentable`] error about one item.
    pub(crate) fn unrepresentable(what: crate::write::encode::Unrepresentable, target: crate::read::Header) -> Self {
        Error::without_offset(ErrorKind::Unrepresentable { what, target, items: Vec::new(), count: 1 })
    }

    /// Shorthand for a [`ErrorKind::Truncated`] error.
    pub(crate) fn truncated(what: &'static str, needed: usize, offset: u64) -> Self {
        Error::new(ErrorKind::Truncated { what, needed }, offset)
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Consumes the error, returning its kind.
    pub fn into_kind(self) -> ErrorKind {
        self.0.kind
    }

    /// Byte offset in the input where the problem was found, if it has one.
    pub fn offset(&self) -> Option<u64> {
        self.0.offset
    }

    /// Database index being read, if known.
    pub fn db(&self) -> Option<u64> {
        self.0.db
    }

    /// Key being read, if known.
    pub fn key(&self) -> Option<&[u8]> {
        self.0.key.as_deref()
    }

    /// Whether the error is the input ending early (as opposed to bytes being wrong).
    pub fn is_truncated(&self) -> bool {
        matches!(self.0.kind, ErrorKind::Truncated { .. })
    }

    /// Moves the offset by `base` (offsets inside a sub-slice become offsets in the whole input).
    pub fn shifted(mut self, base: u64) -> Self {
        if let Some(o) = self.0.offset.as_mut() {
            *o += base;
        }
        self
    }

    /// Replaces the offset (used when an offset inside decompressed data means nothing in the file).
    pub fn at(mut self, offset: u64) -> Self {
        self.0.offset = Some(offset);
        self
    }

    /// Adds the database index, unless one is already known.
    pub fn in_db(mut self, db: u64) -> Self {
        self.0.db.get_or_insert(db);
        self
    }

    /// Names the input or output file, unless one is already named.
    pub fn in_file(mut self, name: &str) -> Self {
        if self.0.file.is_none() {
            self.0.file = Some(name.to_string());
        }
        self
    }

    /// The file named by [`Error::in_file`], if any.
    pub fn file(&self) -> Option<&str> {
        self.0.file.as_deref()
    }

    /// Adds the key being read, unless one is already known.
    pub fn for_key(mut self, key: &[u8]) -> Self {
        if self.0.key.is_none() {
            self.0.key = Some(key.to_vec());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.0.file {
            write!(f, "{file}: ")?;
        }
        if let Some(o) = self.0.offset {
            write!(f, "error at byte {o}: ")?;
        }
        write!(f, "{}", self.0.kind)?;
        if let Some(db) = self.0.db {
            write!(f, " (db {db}")?;
            if let Some(k) = &self.0.key {
                write!(f, ", key {}", crate::escape_bytes(k))?;
            }
            write!(f, ")")?;
        } else if let Some(k) = &self.0.key {
            write!(f, " (key {})", crate::escape_bytes(k))?;
        }
        Ok(())
    }
}

/// The message already includes the I/O cause (`I/O error: …`), so it is not repeated as a `source()`: error
/// reporters that print the chain print it once. The `io::Error` itself is in [`ErrorKind::Io`].
impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::without_offset(ErrorKind::Io(e))
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::without_offset(kind)
    }
}
