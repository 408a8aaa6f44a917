//! rdbkit: read, write and transform Redis and Valkey RDB snapshot files.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod cluster;
pub mod dump;
pub mod error;
pub mod format;
pub mod input;
pub mod io;
pub mod read;
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
