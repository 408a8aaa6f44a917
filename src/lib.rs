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
//! * `diff` (feature `diff`): the logical comparison of two inputs, whatever their versions and encodings.
//! * [`io`]: byte sinks — 512-byte page alignment, gzip, atomic files.
//! * `live` (feature `live`): a running Redis/Valkey server read as an RDB stream (replication, or SCAN + DUMP).
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
//!
//! # Cargo features
//!
//! With `default-features = false` the crate builds on `nom`, `thiserror` and `crc-fast` only: every reader,
//! [`read::Value`], the writer, the transforms, the workflows over [`input::Input`] and any
//! [`io::FinishWrite`], page alignment and the CRC-64 digest. The rest is opt-in:
//!
//! | feature | adds | pulls in |
//! |---------|------|----------|
//! | `gzip` | gzip inputs in every reader (without it they are refused at byte 0), `io::GzipWriter`, `io::ParallelGzipWriter` | `flate2` (zlib-rs) |
//! | `fs` | `io::AtomicFile`, `io::publish` (locks, file sets published all or nothing), removal of temporary files on signals, a stream [`input::Input`] read twice (spooled to a file) | `tempfile`, `libc` |
//! | `mmap` | `input::Input::open_mapped`; the duplicate-key table of a large input in huge pages | `memmap2` |
//! | `render` | `render`: keys as JSON lines and as the RESP commands that recreate them | `serde_json` |
//! | `diff` | `diff`: the logical comparison of two inputs (per-key digests partitioned by key hash); enables `fs` | `xxhash-rust` |
//! | `lua` | deep validation compiles function libraries with Lua 5.1, as the servers do | `mlua` (vendored Lua) |
//! | `cli` | the `rdbkit` binary; enables `fs`, `gzip`, `mmap`, `render` and `diff` | `clap`, `clap_complete`, `clap_mangen`, `serde_json`, `indicatif` |
//!
//! The default features are `cli` and `lua`, so everything.
#![forbid(unsafe_op_in_unsafe_fn)]
// The docs are written for every feature (as docs.rs builds them); with fewer, links to what is left out dangle.
#![cfg_attr(not(all(feature = "fs", feature = "gzip", feature = "mmap")), allow(rustdoc::broken_intra_doc_links))]
#![warn(missing_docs)]

pub mod cluster;
#[cfg(feature = "diff")]
pub mod diff;
pub mod dump;
pub mod error;
pub mod format;
pub mod input;
pub mod io;
#[cfg(feature = "live")]
pub mod live;
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
