//! rdbkit: read, write and transform Redis and Valkey RDB snapshot files.
//!
//! Data flows one way — bytes → records → sinks → records → bytes — and each module knows only the one below it:
//!
//! * [`format`](mod@format): the byte rules of every encoding (lengths, strings, LZF, doubles, CRCs, ziplist, listpack,
//!   intset, zipmap), decoder and encoder side by side.
//! * [`read`]: [`read::Record`]s that borrow the input and keep their raw bytes; [`read::SliceReader`] (zero-copy,
//!   for memory maps) and [`read::StreamReader`] (any `io::Read`, bounded memory, gzip detected); lazy
//!   [`read::Value`] views.
//! * [`write`](mod@write): [`write::RdbWriter`] for any version from `REDIS0001` to `REDIS0012` and `VALKEY080`, raw
//!   pass-through or re-encoding the way Redis would for that version.
//! * [`transform`]: record sinks — database limits and moves, key filters, merges, cluster split by hash slot.
//! * [`io`]: byte sinks — 512-byte page alignment, gzip, atomic files.
//! * [`workflow`]: convert, split, export and import as library calls with reports ([`input`] opens files, gzip
//!   and stdin; [`target`] knows which server loads which version; [`cluster`] lays out shards).
//! * `report` (feature `report`): what each key costs in a server's memory, and the totals of a memory report.
//!
//! ```
//! use rdbkit::read::{RecordKind, SliceReader};
//!
//! # fn main() -> rdbkit::Result<()> {
//! let bytes = std::fs::read("testdata/valkey-9.1.rdb")?;
//! let mut reader = SliceReader::new(&bytes)?;
//! let mut hashes_with_field_ttls = 0;
//! while let Some(rec) = reader.next_record()? {
//!     if let RecordKind::Entry(e) = rec.kind {
//!         if let Ok(fields) = e.value.hash_fields() {
//!             let mut any_ttl = false;
//!             for f in fields {
//!                 any_ttl |= f?.expire_ms.is_some();
//!             }
//!             hashes_with_field_ttls += usize::from(any_ttl);
//!         }
//!     }
//! }
//! assert!(hashes_with_field_ttls > 0);
//! # Ok(()) }
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod cluster;
pub mod dump;
pub mod error;
pub mod format;
pub mod input;
pub mod io;
pub mod read;
#[cfg(feature = "render")]
pub mod render;
#[cfg(feature = "report")]
pub mod report;
pub mod target;
pub mod transform;
pub mod workflow;
pub mod write;

pub use error::{Error, ErrorKind, Result};

/// Renders bytes for humans: printable ASCII as is, everything else as `\xNN`, in double quotes.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
