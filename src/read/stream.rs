//! [`StreamReader`]: records from any `io::Read`, in memory bounded by the largest record.
//!
//! The reader keeps one buffer. When a record does not fit in what has been read, it reads more (at least doubling
//! what it asks for, so a large record is re-walked only a logarithmic number of times) and tries again. Gzip input
//! is recognised by its first two bytes and decompressed on the fly; bytes after the checksum are counted and, when
//! they are all zero (page-blob padding), reported as such. At most [`super::TRAILING_LIMIT`] bytes after the
//! checksum are read: a longer tail (endless zeros on stdin, a gzip bomb) is reported as such, not read to its end.

use super::dupkeys::{FileChecks, Verdict, duplicate_error};
use super::module::ModuleAux;
use super::parse::{Parser, ReadOptions, Step, eof_opcode_at};
use super::slice::finish_checksum;
use super::{
    Checksum, Encoding, Entry, Expiry, Header, Record, RecordKind, Trailing, Value, Warning, WarningKind, Warnings,
};
use crate::error::{Error, Result};
use crate::format::crc::Crc64;
use crate::format::string::RdbStr;
use crate::read::header::MAGIC_LEN;
use std::io::{self, Chain, Cursor, Read};

const MIN_READ: usize = 64 * 1024;

/// The byte source: plain, or gzip-decompressed. The sniffed prefix is put back in front with `chain`.
enum Source<R: Read> {
    Plain(Chain<Cursor<Vec<u8>>, R>),
    Gzip(Box<super::Gunzip<Chain<Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Gzip(r) => r.read(buf),
        }
    }
}

/// Reads records from an `io::Read`. Records borrow the reader's buffer, so each must be dropped before the next
/// call (a lending iterator):
///
/// ```
/// use rdbkit::read::{RecordKind, StreamReader};
/// # fn main() -> rdbkit::Result<()> {
/// let mut file = b"REDIS0011\xfe\x00\x00\x01k\x01v\xff".to_vec();
/// file.extend_from_slice(&[0; 8]);
/// let mut reader = StreamReader::new(&file[..])?;
/// let mut n = 0;
/// while let Some(rec) = reader.next_record()? {
///     n += matches!(rec.kind, RecordKind::Entry(_)) as usize;
/// }
/// assert_eq!(n, 1);
/// # Ok(()) }
/// ```
pub struct StreamReader<R: Read> {
    src: Source<R>,
    gzip: bool,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset in the (decompressed) stream of `buf[start]`.
    offset: u64,
    /// Bytes of the previous record still to be consumed (dropped) on the next call.
    pending: usize,
    /// Consumed bytes from `buf[crc_from]` to `buf[start]` are not yet in `crc` (checksummed in large runs:
    /// before the buffer is compacted, and at EOF).
    crc_from: usize,
    src_done: bool,
    parser: Parser,
    crc: Crc64,
    finished: Option<(Checksum, Trailing)>,
    failed: bool,
    /// Duplicate keys and function libraries (deep validation), run on the records in file order.
    checks: Option<Box<FileChecks>>,
}

impl<R: Read> std::fmt::Debug for StreamReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("header", &self.parser.header)
            .field("offset", &self.offset)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl<R: Read> StreamReader<R> {
    /// A reader with default options (deep validation, checksum verification).
    pub fn new(reader: R) -> Result<Self> {
        Self::with_options(reader, ReadOptions::default())
    }

    /// A reader with the given options; reads and checks the header.
    pub fn with_options(mut reader: R, opts: ReadOptions) -> Result<Self> {
        let mut sniff = Vec::with_capacity(2);
        (&mut reader).take(2).read_to_end(&mut sniff)?;
        let gzip = sniff == [0x1f, 0x8b];
        let chained = Cursor::new(sniff).chain(reader);
        let src = if gzip { Source::Gzip(Box::new(super::Gunzip::new(chained))) } else { Source::Plain(chained) };
        let mut r = StreamReader {
            src,
            gzip,
            buf: vec![0; MIN_READ],
            start: 0,
            end: 0,
            offset: 0,
            pending: 0,
            crc_from: 0,
            src_done: false,
            parser: Parser::new(Header::new(super::Flavor::Redis, 1), opts),
            crc: Crc64::new(),
            finished: None,
            failed: false,
            // A stream's length is unknown: hints make room for at most 2^20 keys ahead (32 MiB).
            checks: FileChecks::new(&opts, true, 1 << 20).map(Box::new),
        };
        while r.end < MAGIC_LEN && !r.src_done {
            r.fill(MAGIC_LEN)?;
        }
        let header = Header::parse(&r.buf[..r.end])?;
        r.parser = Parser::new(header, opts);
        r.start = MAGIC_LEN;
        r.offset = MAGIC_LEN as u64;
        Ok(r)
    }

    /// The file header.
    pub fn header(&self) -> Header {
        self.parser.header
    }

    /// Whether the input was gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// The current database.
    pub fn current_db(&self) -> u64 {
        self.parser.db
    }

    /// Offset (in the decompressed stream) of the next record.
    pub fn position(&self) -> u64 {
        self.offset + self.pending as u64
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

    /// Size of the internal buffer: the memory this reader holds, about the size of the largest record read.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.len()
    }

    /// Reads more input so that at least `want` unread bytes are buffered, or the source is exhausted.
    fn fill(&mut self, want: usize) -> Result<()> {
        if self.start > 0 && (self.start >= self.buf.len() / 2 || self.buf.len() - self.end < want) {
            self.update_crc();
            self.crc_from = 0;
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let needed_len = self.start.saturating_add(want.max(MIN_READ));
        if self.buf.len() < needed_len {
            // Grow geometrically, but only as far as bytes actually arrive: `want` may come from a corrupt length.
            let target = needed_len.min(self.buf.len().saturating_mul(2).max(MIN_READ)).max(self.end + MIN_READ);
            self.buf.resize(target, 0);
        }
        while self.end - self.start < want && !self.src_done {
            if self.end == self.buf.len() {
                let grow = self.buf.len();
                self.buf.resize(self.buf.len() + grow, 0);
            }
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.src_done = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::from(e).at(self.offset + (self.end - self.start) as u64)),
            }
        }
        Ok(())
    }

    /// Adds the consumed bytes not yet checksummed to the checksum.
    fn update_crc(&mut self) {
        if self.crc_from < self.start {
            // The checksum is only ever compared when it is verified and the format has one.
            if self.parser.opts.verify_checksum && self.parser.header.has_checksum() {
                self.crc.update(&self.buf[self.crc_from..self.start]);
            }
            self.crc_from = self.start;
        }
    }

    fn consume_pending(&mut self) {
        if self.pending > 0 {
            self.start += self.pending;
            self.offset += self.pending as u64;
            self.pending = 0;
        }
    }

    /// The next record, `Ok(None)` after EOF (or after an error).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        if self.finished.is_some() || self.failed {
            return Ok(None);
        }
        self.consume_pending();
        let offset = self.offset;
        // Common case: the buffer already holds the whole record, and one parse gives it. Its borrowed parts are
        // kept as ranges (the borrow checker cannot return a borrow from one branch and refill the buffer in
        // another) and borrowed again below without parsing.
        let first = {
            let avail = &self.buf[self.start..self.end];
            match self.parser.parse(avail, offset) {
                Ok(Step::Done(n, kind)) => First::Done(n, Detached::new(&kind, avail)),
                Ok(Step::Need(_)) => First::Refill,
                Err(e) if !self.parser.opts.deep => First::Fail(e, 0),
                Err(e) => {
                    // A deep check failed inside the buffered part. The record is reported as truncated rather
                    // than invalid if it never completes, and a walk error wins over a deep one: decide as the
                    // refill path does.
                    match self.probe().parse(avail, offset) {
                        Ok(Step::Done(n, _)) => First::Fail(e, n),
                        Ok(Step::Need(_)) => First::Refill,
                        Err(walk_err) => First::Fail(walk_err, 0),
                    }
                }
            }
        };
        let (n, detached) = match first {
            First::Done(n, d) => (n, Some(d)),
            First::Refill => (self.extent()?, None),
            First::Fail(e, n) => {
                // As on the refill path: a record found complete counts as read (see `position`).
                self.pending = n;
                self.failed = true;
                return Err(e);
            }
        };
        self.pending = n;
        let eof_at = eof_opcode_at(&self.buf[self.start..self.start + n]);
        if self.buf[self.start + eof_at] == 0xFF && self.is_eof_record(n) {
            // EOF: handled here, before any borrow of the buffer is taken for the returned record.
            let at = self.start + eof_at;
            let checksum = self.parser.header.has_checksum().then(|| {
                let mut c = [0u8; 8];
                c.copy_from_slice(&self.buf[at + 1..at + 9]);
                u64::from_le_bytes(c)
            });
            self.update_crc();
            self.crc.update(&self.buf[self.start..at + 1]);
            let crc = self.crc.value();
            let verdict = match finish_checksum(checksum, self.parser.opts.verify_checksum, || crc) {
                Ok(v) => v,
                Err(e) => {
                    self.failed = true;
                    return Err(e.at(offset + eof_at as u64 + 1));
                }
            };
            let trailing = match self.drain_trailing(n) {
                Ok(t) => t,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            };
            self.finished = Some((verdict, trailing));
            let raw = &self.buf[self.start..self.start + n];
            return Ok(Some(Record { offset, raw, kind: RecordKind::Eof { checksum } }));
        }
        let slice = &self.buf[self.start..self.start + n];
        if let Some(d) = detached {
            let kind = d.attach(slice);
            if let Some(checks) = self.checks.as_mut() {
                if let Err(e) = file_checks(checks, &mut self.parser, &kind, offset) {
                    self.failed = true;
                    return Err(e);
                }
                self.parser.prefetch_next_key(&self.buf[self.start + n..self.end], offset + n as u64);
            }
            return Ok(Some(Record { offset, raw: slice, kind }));
        }
        match self.parser.parse(slice, offset) {
            Ok(Step::Done(_, kind)) => {
                if let Some(checks) = self.checks.as_mut()
                    && let Err(e) = file_checks(checks, &mut self.parser, &kind, offset)
                {
                    self.failed = true;
                    return Err(e);
                }
                Ok(Some(Record { offset, raw: slice, kind }))
            }
            Ok(Step::Need(k)) => {
                self.failed = true;
                Err(Error::truncated("a record", k, offset + n as u64))
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// Whether the complete record of `n` bytes at the buffer's start is the EOF record (possibly after metadata
    /// opcodes the server ignores): its EOF opcode is followed by exactly the checksum.
    fn is_eof_record(&self, n: usize) -> bool {
        let rec = &self.buf[self.start..self.start + n];
        let at = eof_opcode_at(rec);
        let tail = if self.parser.header.has_checksum() { 9 } else { 1 };
        rec.get(at) == Some(&0xFF) && at + tail == n
    }

    /// A parser that only walks records (no deep validation), in the current parser state: finds a record's extent.
    fn probe(&self) -> Parser {
        let mut probe = Parser::new(self.parser.header, super::dupkeys::WALK_ONLY);
        probe.db = self.parser.db;
        probe
    }

    /// Reads until the buffer holds the next record, and returns its length. Each attempt only walks the record
    /// (when deep validation is on, the caller validates it once it is complete).
    fn extent(&mut self) -> Result<usize> {
        loop {
            let avail = &self.buf[self.start..self.end];
            // Always a probe: the record is parsed once more when complete, and warnings must be taken only once.
            let step = self.probe().parse(avail, self.offset);
            match step {
                Ok(Step::Done(n, _)) => return Ok(n),
                Ok(Step::Need(k)) => {
                    if self.src_done {
                        self.failed = true;
                        let what = if avail.is_empty() { "the next record (no EOF opcode)" } else { "a record" };
                        return Err(Error::truncated(what, k, self.offset + avail.len() as u64).in_db(self.parser.db));
                    }
                    let have = self.end - self.start;
                    if let Err(e) = self.fill(have.saturating_add(k.max(have).max(1))) {
                        self.failed = true;
                        return Err(e);
                    }
                }
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }

    /// Reads what follows the EOF record, up to [`super::TRAILING_LIMIT`] bytes (and one more, to know whether
    /// the input goes on): endless padding or a gzip bomb after the checksum is not read to its end.
    fn drain_trailing(&mut self, eof_len: usize) -> Result<Trailing> {
        let limit = super::TRAILING_LIMIT;
        let after = &self.buf[self.start + eof_len..self.end];
        if after.len() as u64 > limit {
            return Ok(Trailing::of(after));
        }
        let mut t = Trailing::of(after);
        let mut chunk = vec![0u8; MIN_READ];
        while !self.src_done {
            // One byte past the limit tells a tail longer than the limit from one that ends there.
            let want = (limit + 1 - t.len).min(MIN_READ as u64) as usize;
            match self.src.read(&mut chunk[..want]) {
                Ok(0) => self.src_done = true,
                Ok(k) => {
                    let examined = k.min((limit - t.len) as usize);
                    t.all_zero &= chunk[..examined].iter().all(|&b| b == 0);
                    t.len += examined as u64;
                    if examined < k {
                        t.beyond_limit = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A broken gzip trailer after a complete RDB is still an error: the input is damaged.
                Err(e) => return Err(Error::from(e)),
            }
        }
        Ok(t)
    }
}

/// The outcome of the first parse attempt on the buffered bytes.
enum First {
    /// The record is complete: its length and its parts.
    Done(usize, Detached),
    /// More input may be needed: find the extent by refilling.
    Refill,
    /// The record is invalid; the record's length if it is complete in the buffer (0 otherwise).
    Fail(Error, usize),
}

/// A string of a record as a range of the record's bytes (or an integer).
#[derive(Clone, Copy)]
enum DStr {
    Raw(usize, usize),
    Int(i64),
    Lzf(usize, usize, u64),
}

/// The range of `sub` (a part of `base`) in `base`.
fn range_in(base: &[u8], sub: &[u8]) -> (usize, usize) {
    let start = (sub.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    debug_assert!(start.checked_add(sub.len()).is_some_and(|end| end <= base.len()));
    (start, sub.len())
}

fn part(base: &[u8], (start, len): (usize, usize)) -> &[u8] {
    &base[start..start + len]
}

impl DStr {
    fn new(s: &RdbStr<'_>, base: &[u8]) -> DStr {
        match *s {
            RdbStr::Raw(b) => {
                let (at, n) = range_in(base, b);
                DStr::Raw(at, n)
            }
            RdbStr::Int(i) => DStr::Int(i),
            RdbStr::Lzf { compressed, len } => {
                let (at, n) = range_in(base, compressed);
                DStr::Lzf(at, n, len)
            }
        }
    }

    fn attach(self, base: &[u8]) -> RdbStr<'_> {
        match self {
            DStr::Raw(at, n) => RdbStr::Raw(part(base, (at, n))),
            DStr::Int(i) => RdbStr::Int(i),
            DStr::Lzf(at, n, len) => RdbStr::Lzf { compressed: part(base, (at, n)), len },
        }
    }
}

/// A parsed record with its borrowed parts as ranges of the bytes it was parsed from.
enum Detached {
    /// A record that borrows nothing.
    Plain(RecordKind<'static>),
    Aux {
        key: DStr,
        value: DStr,
    },
    Function {
        code: DStr,
    },
    ModuleAux {
        module_id: u64,
        when: u64,
        payload: (usize, usize),
    },
    Entry {
        db: u64,
        key: DStr,
        expiry: Option<Expiry>,
        idle: Option<u64>,
        freq: Option<u8>,
        encoding: Encoding,
        raw: (usize, usize),
    },
}

impl Detached {
    /// `kind`, parsed from `base`.
    fn new(kind: &RecordKind<'_>, base: &[u8]) -> Detached {
        match *kind {
            RecordKind::Aux { key, value } => {
                Detached::Aux { key: DStr::new(&key, base), value: DStr::new(&value, base) }
            }
            RecordKind::SelectDb { db } => Detached::Plain(RecordKind::SelectDb { db }),
            RecordKind::ResizeDb { db_size, expires_size } => {
                Detached::Plain(RecordKind::ResizeDb { db_size, expires_size })
            }
            RecordKind::Function { code } => Detached::Function { code: DStr::new(&code, base) },
            RecordKind::ModuleAux(m) => {
                Detached::ModuleAux { module_id: m.module_id, when: m.when, payload: range_in(base, m.payload) }
            }
            RecordKind::SlotInfo { slot, size, expires_size } => {
                Detached::Plain(RecordKind::SlotInfo { slot, size, expires_size })
            }
            RecordKind::Entry(e) => Detached::Entry {
                db: e.db,
                key: DStr::new(&e.key, base),
                expiry: e.expiry,
                idle: e.idle,
                freq: e.freq,
                encoding: e.value.encoding,
                raw: range_in(base, e.value.raw),
            },
            RecordKind::Eof { checksum } => Detached::Plain(RecordKind::Eof { checksum }),
        }
    }

    /// The record again, borrowing from `base` (the same bytes, at any address).
    fn attach(self, base: &[u8]) -> RecordKind<'_> {
        match self {
            Detached::Plain(k) => k,
            Detached::Aux { key, value } => RecordKind::Aux { key: key.attach(base), value: value.attach(base) },
            Detached::Function { code } => RecordKind::Function { code: code.attach(base) },
            Detached::ModuleAux { module_id, when, payload } => {
                RecordKind::ModuleAux(ModuleAux { module_id, when, payload: part(base, payload) })
            }
            Detached::Entry { db, key, expiry, idle, freq, encoding, raw } => RecordKind::Entry(Entry {
                db,
                key: key.attach(base),
                expiry,
                idle,
                freq,
                value: Value { encoding, raw: part(base, raw) },
            }),
        }
    }
}

/// The file-level checks of a stream reader for `kind` at `offset`: a repeated (db, key) hash pair is taken as a
/// duplicate (see [`super::dupkeys`] for the odds).
pub(crate) fn file_checks(
    checks: &mut FileChecks,
    parser: &mut Parser,
    kind: &RecordKind<'_>,
    offset: u64,
) -> Result<()> {
    let verdict = checks.check(kind, offset, parser.header.flavor, parser.key_memo_for(offset));
    // The table may have moved: the parser prefetches the next key's slot from this.
    parser.key_hint = checks.hint();
    let warnings = &mut parser.warnings;
    if let Verdict::Repeat { kept } = verdict?
        && let RecordKind::Entry(e) = kind
    {
        if kept {
            return Err(duplicate_error(e, offset, None));
        }
        let key = e.key.decode().ok().map(|k| k.into_owned());
        warnings.push(Warning { offset, db: Some(e.db), key, kind: WarningKind::DuplicateKeySkipped });
    }
    Ok(())
}
