//! [`ChunkedReader`]: the safe fast path for large inputs. It reads any `io::Read` (a file, a pipe, a gzip
//! stream) into large owned buffers and walks each buffer with the zero-copy record parser on a second thread
//! (see [`crate::transform::drive_parallel`]), while a third thread reads the next buffer.
//!
//! Nothing is memory-mapped, so another process truncating or rewriting the file while it is read can only make
//! the read fail ("unexpected end of input" or a parse error), never fault; memory is bounded by two buffers
//! plus the largest record.

use super::dupkeys::{EarlierCopy, FileChecks, SPILL_BUDGET_SLOTS, Verdict, WALK_ONLY, duplicate_error};
use super::parse::{Parser, Step};
use super::slice::finish_checksum;
use super::{
    Checksum, Entry, Header, ReadOptions, Record, RecordKind, StreamReader, TRAILING_LIMIT, Trailing, Warning,
    WarningKind, Warnings,
};
use crate::error::{Error, Result};
use crate::format::crc::Crc64;
use crate::read::header::MAGIC_LEN;
use crate::transform::RecordSink;
use std::io::{self, Read};
#[cfg(feature = "gzip")]
use std::io::{BufRead, BufReader};

/// Bytes read per buffer.
pub const CHUNK: usize = 2 << 20;
/// Room kept in front of a fresh buffer for the unfinished record at the end of the previous one (a longer
/// record is copied into a larger buffer instead): an eighth of the buffer, at most 1 MiB.
fn head_room(chunk: usize) -> usize {
    (chunk / 8).min(1 << 20)
}

/// A byte source that may be shared with a reading thread.
type Src = Box<dyn Read + Send>;

/// Opens the input again from its first byte: given for a re-readable input (a file), it lets the duplicate-key
/// check keep one hash per key and confirm a repeated hash by reading the earlier records again, as a
/// [`super::SliceReader`] does, instead of keeping two hashes per key.
pub(crate) type Reopen = std::sync::Arc<dyn Fn() -> io::Result<Src> + Send + Sync>;

/// Reads records from an `io::Read` in large buffers, with parsing on a second thread. Gzip input (by its first
/// two bytes) is decompressed on the reading thread.
///
/// ```
/// use rdbkit::read::ChunkedReader;
/// use rdbkit::transform::{RecordSink, drive};
/// # fn main() -> rdbkit::Result<()> {
/// let mut file = b"REDIS0011\xfe\x00\x00\x01k\x01v\xff".to_vec();
/// file.extend_from_slice(&[0; 8]);
/// struct Count(usize);
/// impl RecordSink for Count {
///     fn record(&mut self, _: &rdbkit::read::Record<'_>) -> rdbkit::Result<()> { self.0 += 1; Ok(()) }
///     fn finish(&mut self) -> rdbkit::Result<()> { Ok(()) }
/// }
/// let mut reader = ChunkedReader::new(std::io::Cursor::new(file), Default::default())?;
/// let mut n = Count(0);
/// reader.drive(&mut n)?;
/// assert_eq!(n.0, 3); // SELECTDB, the key, EOF
/// assert_eq!(reader.checksum().unwrap().status(), "disabled");
/// # Ok(()) }
/// ```
pub struct ChunkedReader {
    src: Option<Src>,
    gzip: bool,
    /// Unread bytes are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    src_done: bool,
    parser: Parser,
    /// CRC-64 of the stream bytes before `buf[start]` (only kept when it will be compared).
    crc: Crc64,
    keep_crc: bool,
    finished: Option<(Checksum, Trailing)>,
    chunk: usize,
    /// Duplicate keys and function libraries (deep validation), run by the walk in file order. Without `reopen`
    /// a chunked reader cannot walk back to confirm a repeated key hash, so it keeps pairs of hashes, as a stream
    /// reader does; with it, one hash per key in a table bounded to 16 MiB that spills sorted runs to a temporary
    /// file (see [`super::dupkeys`]).
    checks: Option<Box<FileChecks>>,
    /// How to read the input again (to confirm a repeated key hash), when it can be.
    reopen: Option<Reopen>,
    /// The buffer before the current one, to be read into next (two buffers are reused, not reallocated: freed
    /// and reallocated on changing threads, they would pile up in the allocator's per-thread arenas).
    spare: Vec<u8>,
}

impl std::fmt::Debug for ChunkedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedReader")
            .field("header", &self.parser.header)
            .field("position", &self.position())
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl ChunkedReader {
    /// A reader over `reader`; reads and checks the header (gzip is recognised and decompressed).
    pub fn new(reader: impl Read + Send + 'static, opts: ReadOptions) -> Result<Self> {
        Self::with_chunk(Box::new(reader), opts, CHUNK)
    }

    /// [`ChunkedReader::new`] over a boxed reader, reading `chunk` bytes per buffer (tests use small chunks to put
    /// records across buffer boundaries).
    pub fn with_chunk(reader: Box<dyn Read + Send>, opts: ReadOptions, chunk: usize) -> Result<Self> {
        Self::build(reader, opts, chunk, None)
    }

    /// [`ChunkedReader::new`] over an input that `reopen` can read again from its start (see [`Reopen`]).
    pub(crate) fn with_reopen(reader: Box<dyn Read + Send>, opts: ReadOptions, reopen: Reopen) -> Result<Self> {
        Self::build(reader, opts, CHUNK, Some(reopen))
    }

    fn build(mut reader: Src, opts: ReadOptions, chunk: usize, reopen: Option<Reopen>) -> Result<Self> {
        let mut sniff = Vec::with_capacity(MAGIC_LEN);
        (&mut reader).take(2).read_to_end(&mut sniff).map_err(|e| Error::from(e).at(0))?;
        let gzip = sniff == [0x1f, 0x8b];
        let chained = io::Cursor::new(sniff).chain(reader);
        let mut src: Src = if gzip { Box::new(Gunzip::new(chained)) } else { Box::new(chained) };
        let mut head = Vec::with_capacity(MAGIC_LEN);
        (&mut src).take(MAGIC_LEN as u64).read_to_end(&mut head).map_err(|e| Error::from(e).at(0))?;
        let header = Header::parse(&head)?;
        let keep_crc = opts.verify_checksum && header.has_checksum();
        let mut crc = Crc64::new();
        if keep_crc {
            crc.update(&head);
        }
        Ok(ChunkedReader {
            src: Some(src),
            gzip,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: MAGIC_LEN as u64,
            src_done: false,
            parser: Parser::new(header, opts),
            crc,
            keep_crc,
            finished: None,
            checks: FileChecks::new(&opts, reopen.is_none(), 1 << 20)
                .map(|c| if reopen.is_some() { c.spilling(SPILL_BUDGET_SLOTS) } else { c })
                .map(Box::new),
            reopen,
            chunk: chunk.max(1),
            spare: Vec::new(),
        })
    }

    /// The file header.
    pub fn header(&self) -> Header {
        self.parser.header
    }

    /// Whether the input was gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Offset (in the decompressed stream) of the next record.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// After EOF: the checksum verdict.
    pub fn checksum(&self) -> Option<Checksum> {
        self.finished.map(|f| f.0)
    }

    /// After EOF: bytes after the checksum.
    pub fn trailing(&self) -> Option<Trailing> {
        self.finished.map(|f| f.1)
    }

    /// The oddities found so far that the servers load anyway (see [`super::warn`]).
    pub fn warnings(&self) -> &Warnings {
        &self.parser.warnings
    }

    /// Bytes held by the duplicate-key check (see [`super::dupkeys`]).
    pub fn duplicate_check_memory(&self) -> usize {
        self.checks.as_ref().map_or(0, |c| c.memory())
    }

    /// Bounds the duplicate-key table of a re-readable input to `slots` slots (tests use a tiny budget to make it
    /// spill); call it before reading.
    #[cfg(test)]
    pub(crate) fn set_key_budget(&mut self, slots: usize) {
        if self.reopen.is_some() {
            self.checks = self.checks.take().map(|c| Box::new(c.spilling(slots)));
        }
    }

    /// Bytes the duplicate-key check wrote to its spill file.
    #[cfg(test)]
    pub(crate) fn spilled_bytes(&self) -> u64 {
        self.checks.as_ref().map_or(0, |c| c.spilled_bytes())
    }

    /// Feeds every record, up to and including EOF, to `sink` (without finishing it), parsing on a second thread
    /// and reading ahead on a third. Records reach `sink` in file order; a damaged input fails with the same error,
    /// after the same records, as the other readers.
    pub fn drive(&mut self, sink: &mut dyn RecordSink) -> Result<()> {
        if self.finished.is_some() {
            return Ok(());
        }
        let mut src = self.src.take().ok_or_else(|| {
            Error::without_offset(crate::error::ErrorKind::Invalid("the reader failed before".into()))
        })?;
        let r = self.drive_from(&mut src, sink);
        if r.is_ok() {
            self.src = Some(src);
        }
        r
    }

    /// Stream offset of the first byte not yet read from the source.
    fn read_at(&self) -> u64 {
        self.offset + (self.end - self.start) as u64
    }

    fn drive_from(&mut self, src: &mut Src, sink: &mut dyn RecordSink) -> Result<()> {
        let mut next = Some(read_chunk(src, self.chunk, self.read_at(), std::mem::take(&mut self.spare))?);
        loop {
            if let Some(fresh) = next.take() {
                self.take_fresh(fresh)?;
            }
            let placeholder = Parser::new(Header::new(super::Flavor::Redis, 1), ReadOptions::default());
            let mut w = Window {
                data: &self.buf[self.start..self.end],
                pos: 0,
                base: self.offset,
                parser: std::mem::replace(&mut self.parser, placeholder),
                partial: !self.src_done,
                crc: self.keep_crc.then_some(self.crc),
                checks: self.checks.take(),
                reopen: self.reopen.clone(),
                end: None,
                need: None,
                failed: false,
                prefetched: 0,
            };
            let (chunk, at, src_done) = (self.chunk, self.read_at(), self.src_done);
            let spare = std::mem::take(&mut self.spare);
            let (walked, read) = std::thread::scope(|scope| {
                // Read the next buffer while this one is parsed.
                let reader = (!src_done).then(|| scope.spawn(|| read_chunk(src, chunk, at, spare)));
                let walked = crate::transform::drive_parallel_walk(&mut w, sink);
                (walked, reader.map(|h| h.join().unwrap_or_else(|_| Err(io_panic()))))
            });
            let Window { pos, parser, end, need, checks, .. } = w;
            self.parser = parser;
            self.checks = checks;
            if self.keep_crc {
                self.crc.update(&self.buf[self.start..self.start + pos]);
            }
            self.start += pos;
            self.offset += pos as u64;
            if let Err(e) = walked {
                // A repeat across the duplicate-key check's spilled runs, before the error, is reported first.
                let at = e.offset().unwrap_or(self.offset);
                return Err(match (self.checks.as_deref_mut(), self.reopen.as_ref()) {
                    (Some(checks), Some(reopen)) => settle(checks, &mut self.parser, reopen, at).err().unwrap_or(e),
                    _ => e,
                });
            }
            if let Some(checksum) = end {
                // Every record is checked (deep validation included, on either thread): what crosses the
                // duplicate-key check's spilled runs is settled last.
                if let (Some(checks), Some(reopen)) = (self.checks.as_deref_mut(), self.reopen.as_ref()) {
                    settle(checks, &mut self.parser, reopen, u64::MAX)?;
                }
                let tail = &self.buf[self.start..self.end];
                let mut t = Trailing { len: 0, all_zero: true, beyond_limit: false };
                add_trailing(&mut t, tail);
                if let Some(r) = read {
                    let fresh = r?;
                    let fresh = &fresh.data[fresh.head..];
                    add_trailing(&mut t, fresh);
                    if !fresh.is_empty() && !t.beyond_limit {
                        drain(src, &mut t, self.read_at() + fresh.len() as u64)?;
                    }
                }
                self.start = self.end;
                self.finished = Some((checksum, t));
                return Ok(());
            }
            let (Some(_), Some(read)) = (need, read) else {
                // A walk ends at EOF, at an error (returned above) or at a record the buffer cuts short, and a
                // final buffer reports a cut-short record as a truncation error.
                return Err(Error::without_offset(crate::error::ErrorKind::Invalid(
                    "the record walk stopped without a reason".into(),
                )));
            };
            // A record longer than a buffer: read in larger steps (only as the bytes arrive) until it fits.
            if self.end - self.start >= self.chunk / 2 {
                self.chunk = self.chunk.saturating_mul(2);
            }
            next = Some(read?);
        }
    }

    /// Makes `fresh` (the bytes after `buf[end]`) the buffer, with the unread tail in front of it (a record longer
    /// than memory allows is an [`crate::error::ErrorKind::OutOfMemory`] error at its offset).
    fn take_fresh(&mut self, fresh: Fresh) -> Result<()> {
        self.src_done |= fresh.at_end;
        let (head, mut fresh) = (fresh.head, fresh.data);
        let tail = self.end - self.start;
        if tail <= head {
            fresh[head - tail..head].copy_from_slice(&self.buf[self.start..self.end]);
            self.spare = std::mem::replace(&mut self.buf, fresh);
            self.start = head - tail;
        } else {
            let mut b = Vec::new();
            crate::error::try_reserve(&mut b, tail + fresh.len() - head, "a record", self.offset)?;
            b.extend_from_slice(&self.buf[self.start..self.end]);
            b.extend_from_slice(&fresh[head..]);
            self.buf = b;
            self.start = 0;
        }
        self.end = self.buf.len();
        Ok(())
    }
}

/// Bytes read from the source, after `head` bytes of room.
struct Fresh {
    data: Vec<u8>,
    head: usize,
    /// The source ended.
    at_end: bool,
}

fn io_panic() -> Error {
    Error::without_offset(crate::error::ErrorKind::Invalid("the reading thread panicked".into()))
}

/// Reads up to `chunk` bytes (fewer only at the end of the source) into `data` (emptied first). `at` is the stream
/// offset of the first byte, for errors.
fn read_chunk(src: &mut Src, chunk: usize, at: u64, mut data: Vec<u8>) -> Result<Fresh> {
    let head = head_room(chunk);
    // A reused buffer is already initialized up to its length: resizing it zeroes nothing, and reading into the
    // initialized slice (not through `read_to_end`, which zeroes spare capacity on every call) copies only what
    // the source delivers. A buffer larger than usual grows only as bytes arrive.
    data.resize(head + chunk.min(CHUNK), 0);
    let mut n = 0;
    loop {
        if head + n == data.len() {
            if n >= chunk {
                break;
            }
            let grown = data.len().saturating_mul(2).min(head + chunk);
            let more = grown - data.len();
            crate::error::try_reserve(&mut data, more, "a record", at)?;
            data.resize(grown, 0);
        }
        match src.read(&mut data[head + n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from(e).at(at + n as u64)),
        }
    }
    data.truncate(head + n);
    Ok(Fresh { data, head, at_end: n < chunk })
}

/// Reads the rest of `src`, counting the bytes after the checksum and whether they are all zero.
fn drain(src: &mut Src, t: &mut Trailing, at: u64) -> Result<()> {
    let mut chunk = vec![0u8; 1 << 16];
    let mut at = at;
    // Only up to TRAILING_LIMIT bytes are read: a gzip bomb or endless zeros after the checksum stop there.
    while !t.beyond_limit {
        match src.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(k) => {
                add_trailing(t, &chunk[..k]);
                at += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::from(e).at(at)),
        }
    }
    Ok(())
}

/// The file-level checks of record `kind` at `offset` (not EOF). Without `reopen`, a repeated pair of key hashes
/// is taken as a duplicate (as a stream reader does); with it, a repeated hash is confirmed by reading the records
/// before `offset` again and comparing the keys.
fn file_checks(
    checks: &mut FileChecks,
    parser: &mut Parser,
    reopen: Option<&Reopen>,
    kind: &RecordKind<'_>,
    offset: u64,
) -> Result<()> {
    let Some(reopen) = reopen else {
        return super::stream::file_checks(checks, parser, kind, offset);
    };
    let verdict = checks.check(kind, offset, parser.header.flavor, parser.key_memo_for(offset));
    // The table may have moved: the parser prefetches the next key's slot from this.
    parser.key_hint = checks.hint();
    let (Verdict::Repeat { kept }, RecordKind::Entry(e)) = (verdict?, kind) else {
        return Ok(());
    };
    if !kept && !checks.may_confirm_skipped() {
        return Ok(());
    }
    match earlier_kept_copy(reopen, parser.header, e, offset, checks.now())? {
        Some(at) if kept => Err(duplicate_error(e, offset, Some(at))),
        Some(_) => {
            let key = e.key.decode().ok().map(|k| k.into_owned());
            parser.warnings.push(Warning { offset, db: Some(e.db), key, kind: WarningKind::DuplicateKeySkipped });
            Ok(())
        }
        // Two different keys with the same hash.
        None => Ok(()),
    }
}

/// Settles the duplicate-key check's repeats across spilled runs before `end` (see [`FileChecks::settle`]): the
/// first duplicate is the error, and a skipped copy of a kept key a warning, as the record's own check reports them.
fn settle(checks: &mut FileChecks, parser: &mut Parser, reopen: &Reopen, end: u64) -> Result<()> {
    let header = parser.header;
    let mut found = None;
    let mut entries = |limit: u64, visit: &mut super::dupkeys::EntryVisit<'_>| -> Result<()> {
        let src = reopen().map_err(|err| Error::from(err).at(limit))?;
        let mut walk = StreamReader::with_options(src, WALK_ONLY)?;
        if walk.header() != header {
            return Err(Error::new(crate::error::ErrorKind::Invalid("the input changed while it was read".into()), 0));
        }
        while walk.position() < limit {
            let Some(rec) = walk.next_record()? else { break };
            if let RecordKind::Entry(e) = &rec.kind
                && visit(rec.offset, e)?
            {
                break;
            }
        }
        Ok(())
    };
    let mut warnings = Warnings::default();
    checks.settle(end, &mut entries, &mut |checks, e, offset, keep| {
        match earlier_kept_copy(reopen, header, e, offset, checks.now())? {
            Some(at) if keep => {
                found = Some(duplicate_error(e, offset, Some(at)));
                Ok(true)
            }
            Some(_) => {
                let key = e.key.decode().ok().map(|k| k.into_owned());
                warnings.push(Warning { offset, db: Some(e.db), key, kind: WarningKind::DuplicateKeySkipped });
                Ok(false)
            }
            // Two different keys with the same hash.
            None => Ok(false),
        }
    })?;
    // In file order among the others.
    parser.warnings.merge(warnings);
    found.map_or(Ok(()), Err)
}

/// The offset of an earlier copy of `e`'s key in its database that the server keeps, found by reading the records
/// before `end` again. An input that no longer reads as it did (changed while read) is an error.
fn earlier_kept_copy(reopen: &Reopen, header: Header, e: &Entry<'_>, end: u64, now: i64) -> Result<Option<u64>> {
    let Some(mut copy) = EarlierCopy::of(e, now) else {
        return Ok(None);
    };
    let src = reopen().map_err(|err| Error::from(err).at(end))?;
    let mut walk = StreamReader::with_options(src, WALK_ONLY)?;
    if walk.header() != header {
        return Err(Error::new(crate::error::ErrorKind::Invalid("the input changed while it was read".into()), 0));
    }
    while walk.position() < end {
        let Some(rec) = walk.next_record()? else { break };
        if copy.matches(&rec.kind) {
            return Ok(Some(rec.offset));
        }
    }
    Ok(None)
}

/// Counts `bytes` into `t`, looking at no more than [`TRAILING_LIMIT`] trailing bytes in all.
fn add_trailing(t: &mut Trailing, bytes: &[u8]) {
    if t.beyond_limit {
        return;
    }
    let room = (TRAILING_LIMIT - t.len) as usize;
    let seen = &bytes[..bytes.len().min(room)];
    t.all_zero &= seen.iter().all(|&b| b == 0);
    t.len += seen.len() as u64;
    t.beyond_limit = bytes.len() > room;
}

/// One buffer of a [`ChunkedReader`], walked record by record: a complete record is returned; a record cut short
/// by the buffer's end (when more input follows) ends the walk with [`Window::need`] set.
pub(crate) struct Window<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    parser: Parser,
    /// More input follows `data`.
    partial: bool,
    /// CRC-64 of the stream before `data`, when it is to be compared at EOF.
    crc: Option<Crc64>,
    /// The reader's file-level checks, lent to the walk.
    checks: Option<Box<FileChecks>>,
    reopen: Option<Reopen>,
    /// The checksum verdict, once EOF was read.
    end: Option<Checksum>,
    /// Set when the walk stopped at a record the buffer does not hold entirely: at least this many more bytes.
    need: Option<usize>,
    failed: bool,
    /// Bytes before this index have had a prefetch hint issued.
    prefetched: usize,
}

impl Window<'_> {
    /// As [`super::SliceReader`] does: asks for the cache lines of the next KiB, so a walk that skips over values
    /// does not wait on memory at every record.
    #[inline]
    fn prefetch_ahead(&mut self) {
        const PREFETCH_DISTANCE: usize = 1024;
        const LINE: usize = 64;
        let end = (self.pos + PREFETCH_DISTANCE).min(self.data.len());
        let mut at = self.prefetched.max(self.pos);
        while at < end {
            super::slice::prefetch(&self.data[at]);
            at += LINE;
        }
        self.prefetched = at;
    }
}

impl<'a> crate::transform::Walk<'a> for Window<'a> {
    fn options(&self) -> ReadOptions {
        self.parser.opts
    }
    fn header(&self) -> Header {
        self.parser.header
    }
    fn set_deep(&mut self, deep: bool) {
        self.parser.opts.deep = deep;
    }
    fn current_db(&self) -> u64 {
        self.parser.db
    }
    fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn next_record(&mut self) -> Result<Option<Record<'a>>> {
        if self.end.is_some() || self.failed || self.need.is_some() {
            return Ok(None);
        }
        self.prefetch_ahead();
        let rest = &self.data[self.pos..];
        let offset = self.base + self.pos as u64;
        match self.parser.parse(rest, offset) {
            Ok(Step::Done(n, kind)) => {
                let raw = &rest[..n];
                if let RecordKind::Eof { checksum } = kind {
                    let (data, crc) = (self.data, self.crc);
                    let verdict = finish_checksum(checksum, self.parser.opts.verify_checksum, || {
                        let mut c = crc.unwrap_or_default();
                        c.update(&data[..self.pos + 1]);
                        c.value()
                    });
                    match verdict {
                        Ok(v) => self.end = Some(v),
                        Err(e) => {
                            self.failed = true;
                            return Err(e.at(offset + 1));
                        }
                    }
                } else if let Some(checks) = self.checks.as_deref_mut() {
                    // The next key's slot in the duplicate-key table is fetched while this record is checked (the
                    // two table accesses overlap) and handled.
                    let next = self.pos + n;
                    self.parser.prefetch_next_key(&self.data[next..], self.base + next as u64);
                    if let Err(e) = file_checks(checks, &mut self.parser, self.reopen.as_ref(), &kind, offset) {
                        self.failed = true;
                        return Err(e);
                    }
                }
                self.pos += n;
                Ok(Some(Record { offset, raw, kind }))
            }
            Ok(Step::Need(n)) if self.partial => {
                self.need = Some(n);
                Ok(None)
            }
            Ok(Step::Need(n)) => {
                self.failed = true;
                let what = if rest.is_empty() { "the next record (no EOF opcode)" } else { "a record" };
                Err(Error::truncated(what, n, self.base + self.data.len() as u64).in_db(self.parser.db))
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn deep_next_at(&self, pos: u64) -> Result<Option<Record<'a>>> {
        let at = usize::try_from(pos.saturating_sub(self.base)).unwrap_or(usize::MAX).min(self.data.len());
        let mut parser = Parser::new(self.parser.header, ReadOptions { deep: true, ..self.parser.opts });
        parser.db = self.parser.db;
        let rest = &self.data[at..];
        match parser.parse(rest, pos)? {
            Step::Done(n, kind) => Ok(Some(Record { offset: pos, raw: &rest[..n], kind })),
            // Cut short by the buffer: the walk's own error stands.
            Step::Need(_) => Ok(None),
        }
    }

    fn merge_warnings(&mut self, w: Warnings) {
        self.parser.warnings.merge(w);
    }
}

/// Gzip decompression that names both offsets in its errors: the compressed byte (how far the compressed input
/// was consumed) and the uncompressed byte (how much had been produced).
#[cfg(feature = "gzip")]
pub(crate) struct Gunzip<R: Read> {
    dec: flate2::bufread::MultiGzDecoder<Counting<BufReader<R>>>,
    produced: u64,
}

#[cfg(feature = "gzip")]
impl<R: Read> Gunzip<R> {
    pub(crate) fn new(inner: R) -> Self {
        let counting = Counting { inner: BufReader::with_capacity(1 << 16, inner), consumed: 0 };
        Gunzip { dec: flate2::bufread::MultiGzDecoder::new(counting), produced: 0 }
    }
}

#[cfg(feature = "gzip")]
impl<R: Read> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.dec.read(buf) {
            Ok(n) => {
                self.produced += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!(
                    "gzip: {e} (at compressed byte {}, uncompressed byte {})",
                    self.dec.get_ref().consumed,
                    self.produced
                ),
            )),
        }
    }
}

/// Without the `gzip` feature a gzip input is recognised (by its magic) and refused at its first byte.
#[cfg(not(feature = "gzip"))]
pub(crate) struct Gunzip<R: Read>(std::marker::PhantomData<R>);

#[cfg(not(feature = "gzip"))]
impl<R: Read> Gunzip<R> {
    pub(crate) fn new(_: R) -> Self {
        Gunzip(std::marker::PhantomData)
    }
}

#[cfg(not(feature = "gzip"))]
impl<R: Read> Read for Gunzip<R> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "gzip-compressed input, and rdbkit was built without its `gzip` feature",
        ))
    }
}

/// A `BufRead` that counts the bytes its consumer has consumed.
#[cfg(feature = "gzip")]
pub(crate) struct Counting<B> {
    inner: B,
    consumed: u64,
}

#[cfg(feature = "gzip")]
impl<B: BufRead> Read for Counting<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

#[cfg(feature = "gzip")]
impl<B: BufRead> BufRead for Counting<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod spill_tests {
    //! The duplicate-key check of a re-readable input with a tiny table budget, so that it spills sorted runs:
    //! the same verdict as the in-memory table, a spill file that never has a name and stays within its bound.
    use super::*;
    use crate::read::dupkeys::SPILL_RATIO;
    use std::sync::Arc;

    /// A sink that counts records.
    struct Count(usize);
    impl RecordSink for Count {
        fn record(&mut self, _: &Record<'_>) -> Result<()> {
            self.0 += 1;
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// What a read says: the error (its message) or the records, and the warnings; with the bytes spilled.
    fn verdict(file: &[u8], budget: Option<usize>) -> (std::result::Result<usize, String>, Vec<Warning>, u64) {
        let data = Arc::new(file.to_vec());
        let again = data.clone();
        let reopen: Reopen = Arc::new(move || {
            let r: Box<dyn Read + Send> = Box::new(io::Cursor::new(again.as_ref().clone()));
            Ok(r)
        });
        let src: Box<dyn Read + Send> = Box::new(io::Cursor::new(data.as_ref().clone()));
        let mut r = ChunkedReader::with_reopen(src, ReadOptions::default(), reopen).unwrap();
        if let Some(b) = budget {
            r.set_key_budget(b);
        }
        let mut n = Count(0);
        let res = r.drive(&mut n).map(|()| n.0).map_err(|e| e.to_string());
        (res, r.warnings().first().to_vec(), r.spilled_bytes())
    }

    /// An RDB 11 file (checksum disabled) of the given records.
    fn file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut f = b"REDIS0011".to_vec();
        for r in records {
            f.extend_from_slice(r);
        }
        f.push(0xFF);
        f.extend_from_slice(&[0; 8]);
        f
    }

    fn key(k: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8, k.len() as u8];
        r.extend_from_slice(k);
        r.extend_from_slice(&[1, b'v']);
        r
    }

    fn expired(k: &[u8]) -> Vec<u8> {
        let mut r = vec![0xFC];
        r.extend_from_slice(&1000i64.to_le_bytes());
        r.extend(key(k));
        r
    }

    fn fillers(from: u32, n: u32) -> Vec<Vec<u8>> {
        (from..from + n).map(|i| key(format!("filler:{i}").as_bytes())).collect()
    }

    /// Runs `records` through the in-memory table and a 1024-slot one (768 keys a run): the same verdict, and the
    /// small one did spill.
    fn same_verdict(records: Vec<Vec<u8>>) -> (std::result::Result<usize, String>, Vec<Warning>) {
        let f = file(&records);
        let (mem, mem_w, none) = verdict(&f, None);
        let (spilled, spilled_w, bytes) = verdict(&f, Some(1024));
        assert_eq!(none, 0, "the default budget does not spill a small file");
        assert!(bytes > 0, "the tiny budget spilled");
        assert_eq!(spilled, mem);
        assert_eq!(spilled_w, mem_w);
        (mem, mem_w)
    }

    #[test]
    fn distinct_keys_pass() {
        let mut recs = vec![vec![0xFE, 0]];
        recs.extend(fillers(0, 5000));
        recs.push(vec![0xFE, 1]);
        // The same names in another database are no repeat.
        recs.extend(fillers(0, 3000));
        let (res, w) = same_verdict(recs);
        assert_eq!(res, Ok(8003));
        assert!(w.is_empty());
    }

    #[test]
    fn repeat_across_runs_is_the_error() {
        let mut recs = vec![vec![0xFE, 0], key(b"twice")];
        recs.extend(fillers(0, 4000));
        recs.push(key(b"twice"));
        recs.extend(fillers(4000, 10));
        let (res, _) = same_verdict(recs);
        let e = res.unwrap_err();
        assert!(e.contains("duplicate key") && e.contains("at byte 11"), "{e}");
    }

    #[test]
    fn earlier_repeat_across_runs_beats_a_later_error() {
        // A repeat across runs, then one inside a run, then a record of an unknown type: the first repeat.
        let mut recs = vec![vec![0xFE, 0], key(b"first")];
        recs.extend(fillers(0, 3000));
        recs.push(key(b"first"));
        recs.push(key(b"second"));
        recs.push(key(b"second"));
        recs.push(vec![0x7F, 1, b'x', 1, b'y']);
        let (res, _) = same_verdict(recs.clone());
        let e = res.unwrap_err();
        assert!(e.contains("duplicate key") && e.contains("at byte 11") && e.contains("key \"first\""), "{e}");
        // Without the repeats, the unknown type is the error, read as far on both paths.
        recs.retain(|r| r != &key(b"first") && r != &key(b"second"));
        let (res, _) = same_verdict(recs);
        let e = res.unwrap_err();
        assert!(!e.contains("duplicate") && e.contains("type"), "{e}");
    }

    /// A repeat across runs, then a record only deep validation refuses (an intset of encoding 3), read on the
    /// other thread: the repeat, whichever thread gets there first.
    #[test]
    fn repeat_across_runs_beats_a_later_deep_error() {
        let mut recs = vec![vec![0xFE, 0], key(b"first")];
        recs.extend(fillers(0, 3000));
        recs.push(key(b"first"));
        recs.extend(fillers(3000, 3000));
        recs.push(vec![11, 1, b'i', 8, 3, 0, 0, 0, 0, 0, 0, 0]);
        let (res, _) = same_verdict(recs.clone());
        let e = res.unwrap_err();
        assert!(e.contains("duplicate key") && e.contains("key \"first\""), "{e}");
        recs.retain(|r| r != &key(b"first"));
        let (res, _) = same_verdict(recs);
        let e = res.unwrap_err();
        assert!(e.contains("intset"), "{e}");
    }

    #[test]
    fn skipped_copy_after_a_kept_one_warns() {
        let mut recs = vec![vec![0xFE, 0], key(b"kept"), expired(b"early")];
        recs.extend(fillers(0, 3000));
        // Expired copies: of a kept key (a warning), and of a key only ever expired (none).
        recs.push(expired(b"kept"));
        recs.push(expired(b"early"));
        let (res, w) = same_verdict(recs);
        assert_eq!(res, Ok(3006));
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].kind, WarningKind::DuplicateKeySkipped);
        assert_eq!(w[0].key.as_deref(), Some(&b"kept"[..]));
    }

    /// The smallest key records there are (4 bytes: type, a 1-byte key, an empty value), in many databases: the
    /// spill file stays within its stated ratio of the input, and it never has a name in `$TMPDIR`.
    #[test]
    fn hostile_spill_is_bounded_and_unnamed() {
        let mut recs = Vec::new();
        for db in 0..60u8 {
            recs.push(vec![0xFE, db]);
            for k in 0..=255u8 {
                recs.push(vec![0, 1, k, 0]);
            }
        }
        let f = file(&recs);
        let (res, _, bytes) = verdict(&f, Some(1024));
        assert_eq!(res, Ok(60 * 257 + 1));
        assert!(bytes > 0);
        assert!(bytes as f64 <= SPILL_RATIO * f.len() as f64, "{bytes} spilled for {} input bytes", f.len());
        let named = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("rdbkit-keys-"))
            .count();
        assert_eq!(named, 0, "the spill file is unlinked as soon as it is created");
    }
}
