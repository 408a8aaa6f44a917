//! Keys rendered as text: a JSON line per key, or the RESP commands that recreate it on a live server (what
//! `rdbkit dump` writes, and what a loader sends).
//!
//! RESP output recreates the data set with ordinary commands: `SELECT` before the first key and whenever the
//! database changes, `FUNCTION LOAD REPLACE` per function library (servers write them before any key), `SET`,
//! `RPUSH`/`SADD`/`ZADD`/`HSET` in batches of at most 1000 elements, `HPEXPIREAT … FIELDS 1 field` per field TTL,
//! `PEXPIREAT` for the key's expiry; streams with `XADD` per entry (explicit IDs), `XSETID`, `XGROUP CREATE`,
//! `XGROUP CREATECONSUMER` and one `XCLAIM … FORCE JUSTID RETRYCOUNT n TIME ms` per pending entry. A pending entry
//! whose stream entry was deleted is recreated by adding a placeholder entry with its ID, claiming it, and deleting
//! it again (a server drops claims on missing entries). Module values, and every value with `--restore`, become
//! `RESTORE key ttl payload ABSTTL REPLACE` with a DUMP payload stamped with the file's RDB version, so the target
//! server must be at least as new as the one that wrote the file.
//!
//! Values ordinary commands cannot recreate exactly are written as `RESTORE` too, and stderr says how many and
//! why: sorted sets with a −0 score (Redis 7.0+ `ZADD` stores −0 as the integer 0 in a listpack), hashes with a
//! field expiry `HPEXPIREAT` refuses (above 2^46 − 1 ms, though files hold up to 2^48 − 1), streams whose
//! metadata `XSETID` refuses (entries_added below the length or negative, max_deleted_id or the top entry above
//! the last ID), consumer groups whose entries_read `XGROUP CREATE … ENTRIESREAD` refuses (negative other than
//! −1), streams with deleted pending entries whose max_deleted_id is 0-0 (deleting the placeholders raises it), and
//! strings or list/set elements over 512 MiB (no command takes a string longer than `proto-max-bulk-len`).
//! Strings over 1 MiB — values, list/set elements and hash values stored on their own — are written in pieces as
//! they are decoded, so memory stays bounded whatever their length.
//!
//! Empty lists, sets, sorted sets and hashes are skipped (a server drops them on load too). MODULE_AUX records
//! cannot be recreated with commands and are not exported.
//!
//! Output goes through an [`Output`]: a buffer written out in chunks of about a MiB, so that a record that fails
//! leaves nothing behind while long strings still stream through in pieces.
//!
//! ```
//! use rdbkit::read::SliceReader;
//! use rdbkit::render::{Format, Output, Renderer};
//! let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/redis-7.0.rdb")).unwrap();
//! let mut reader = SliceReader::new(&data).unwrap();
//! let header = reader.header();
//! let mut text = Vec::new();
//! let mut out = Output::new(&mut text);
//! let mut renderer = Renderer::new(Format::Resp, false);
//! while let Some(rec) = reader.next_record().unwrap() {
//!     renderer.record(&mut out, header, &rec).unwrap();
//! }
//! out.flush().unwrap();
//! drop(out);
//! assert!(text.starts_with(b"*"));
//! ```

mod json;
mod resp;
pub mod text;

pub use resp::Fallback;

use crate::Error;
use crate::read::{Header, Record, RecordKind};
use std::io::Write;

/// Output is gathered in memory and written in chunks of about this size.
const CHUNK: usize = 1 << 20;

/// The text forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// RESP commands (what `redis-cli --pipe` sends).
    Resp,
}

/// Buffers reused from key to key.
#[derive(Default)]
struct Scratch {
    /// A decoded string value.
    value: Vec<u8>,
    /// RESP: the elements of the command being built.
    body: Vec<u8>,
    /// RESP: a formatted score.
    score: Vec<u8>,
    /// A decoded hash field (beside its value in `value`).
    field: Vec<u8>,
    /// RESP: keys written as RESTORE although ordinary commands exist for their type, by reason.
    fallbacks: [u64; Fallback::ALL.len()],
}

/// Where rendered text goes: a buffer, written out to the writer whenever it holds about a MiB.
pub struct Output<'o> {
    buf: Vec<u8>,
    out: &'o mut dyn Write,
    /// Part of the current record was already written out (a long string streamed in pieces).
    spilled: bool,
    /// The first error writing a streamed piece.
    write_err: Option<std::io::Error>,
}

impl<'o> Output<'o> {
    /// Rendered text for `out`.
    pub fn new(out: &'o mut dyn Write) -> Self {
        Output { buf: Vec::with_capacity(CHUNK + (CHUNK >> 2)), out, spilled: false, write_err: None }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> std::io::Result<()> {
        let r = self.out.write_all(&self.buf);
        self.buf.clear();
        r?;
        self.out.flush()
    }

    /// Writes `buf` out if it holds a chunk (remembering a write error for the caller).
    fn spill(&mut self) {
        if self.buf.len() >= CHUNK {
            self.spilled = true;
            if self.write_err.is_none()
                && let Err(e) = self.out.write_all(&self.buf)
            {
                self.write_err = Some(e);
            }
            self.buf.clear();
        }
    }
}

/// Like `BufWriter`, what is still buffered is written out when the output is dropped (errors then are lost:
/// call [`Output::flush`] to see them).
impl Drop for Output<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.out.write_all(&self.buf);
            self.buf.clear();
        }
    }
}

/// Why [`Renderer::record`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RenderError {
    /// Writing the output failed (a closed pipe, a full disk).
    Write(std::io::Error),
    /// The record could not be rendered: a value that does not decode (with its offset, database and key).
    Record(Error),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Write(e) => write!(f, "writing the output: {e}"),
            RenderError::Record(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RenderError {}

/// Renders records one at a time, keeping what spans records: the database last selected (RESP) and the count of
/// keys written as `RESTORE` although ordinary commands exist for their type ([`Renderer::fallbacks`]).
pub struct Renderer {
    format: Format,
    restore: bool,
    selected: Option<u64>,
    scratch: Scratch,
}

impl Renderer {
    /// A renderer for `format`; with `restore` (RESP), every key becomes `RESTORE` with a DUMP payload.
    pub fn new(format: Format, restore: bool) -> Self {
        Renderer { format, restore, selected: None, scratch: Scratch::default() }
    }

    /// Appends the text of one record (keys and function libraries; other records render as nothing) of a file
    /// with `header`. A record that fails leaves nothing in the output, unless part of a long string was
    /// already streamed out (records from a deep-validated reader do not fail).
    pub fn record(&mut self, out: &mut Output<'_>, header: Header, rec: &Record<'_>) -> Result<(), RenderError> {
        let mark = out.buf.len();
        out.spilled = false;
        let mut r = self.record_inner(out, header.version, rec);
        if let Some(e) = text::take_out_of_memory(rec.offset) {
            r = Err(e);
        }
        if let Some(e) = out.write_err.take() {
            return Err(RenderError::Write(e));
        }
        if let Err(e) = r {
            if out.spilled {
                out.buf.clear();
            } else {
                out.buf.truncate(mark);
            }
            return Err(RenderError::Record(e));
        }
        if out.buf.len() >= CHUNK {
            let w = out.out.write_all(&out.buf);
            out.buf.clear();
            w.map_err(RenderError::Write)?;
        }
        Ok(())
    }

    /// Keys written as `RESTORE` so far although ordinary commands exist for their type, by reason (reasons with
    /// none left out).
    pub fn fallbacks(&self) -> Vec<(Fallback, u64)> {
        Fallback::ALL.iter().zip(self.scratch.fallbacks).filter(|(_, n)| *n > 0).map(|(f, n)| (*f, n)).collect()
    }

    fn record_inner(&mut self, out: &mut Output<'_>, version: u32, rec: &Record<'_>) -> crate::Result<()> {
        match rec.kind {
            RecordKind::Function { code } => {
                let buf = &mut out.buf;
                let code = code.decode()?;
                match self.format {
                    Format::Json => {
                        buf.extend_from_slice(b"{\"function\":");
                        text::json_bytes(buf, &code);
                        buf.extend_from_slice(b"}\n");
                    }
                    Format::Resp => resp::resp_cmd(buf, &[b"FUNCTION", b"LOAD", b"REPLACE", &code]),
                }
            }
            RecordKind::Entry(ref e) => {
                let at = value_offset(rec, e.value.raw);
                let key = e.key.decode().map_err(|err| err.at(at).in_db(e.db))?;
                let failed = |err: Error| err.at(at).in_db(e.db).for_key(&key);
                match self.format {
                    Format::Json => json::json_entry(out, &mut self.scratch, e, &key).map_err(failed)?,
                    Format::Resp => {
                        // RDB versions fit in u16 (REDIS is 4 digits, VALKEY 3).
                        let version = version as u16;
                        let mark = out.buf.len();
                        if self.selected != Some(e.db) {
                            let mut db = Vec::new();
                            text::push_u64(&mut db, e.db);
                            resp::resp_cmd(&mut out.buf, &[b"SELECT", &db]);
                        }
                        let start = out.buf.len();
                        let wrote =
                            resp::resp_entry(out, &mut self.scratch, e, &key, self.restore, version).map_err(failed)?;
                        if wrote {
                            self.selected = Some(e.db);
                        } else {
                            debug_assert_eq!(out.buf.len(), start);
                            out.buf.truncate(mark);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Offset of a value's bytes in the file (errors decoding a value carry offsets relative to some part of it).
pub(crate) fn value_offset(rec: &Record<'_>, value_raw: &[u8]) -> u64 {
    let delta = (value_raw.as_ptr() as usize).wrapping_sub(rec.raw.as_ptr() as usize);
    if delta <= rec.raw.len() { rec.offset + delta as u64 } else { rec.offset }
}
