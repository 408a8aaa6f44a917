//! [`SliceReader`]: the zero-copy reader over a complete byte slice (a memory-mapped file, a buffer).

use super::dupkeys::{EarlierCopy, FileChecks, Verdict, WALK_ONLY, duplicate_error};
use super::parse::{Parser, Step, eof_opcode_at};
use super::{Checksum, Entry, Header, ReadOptions, Record, RecordKind, Trailing, Warning, WarningKind, Warnings};
use crate::error::{Error, ErrorKind, Result};
use crate::format::crc::crc64;
use crate::read::header::MAGIC_LEN;

/// Reads records from a byte slice. Records borrow from the slice; nothing is allocated per record on the
/// walk-only path.
///
/// ```
/// use rdbkit::read::{RecordKind, SliceReader};
/// # fn main() -> rdbkit::Result<()> {
/// // REDIS0011, one key "k" = "v" in db 0, EOF, checksum disabled (0).
/// let mut file = b"REDIS0011\xfe\x00\x00\x01k\x01v\xff".to_vec();
/// file.extend_from_slice(&[0; 8]);
/// let mut reader = SliceReader::new(&file)?;
/// let mut keys = Vec::new();
/// while let Some(rec) = reader.next_record()? {
///     if let RecordKind::Entry(e) = rec.kind {
///         keys.push(e.key.decode()?.into_owned());
///     }
/// }
/// assert_eq!(keys, [b"k".to_vec()]);
/// assert_eq!(reader.checksum().map(|c| c.status()), Some("disabled"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SliceReader<'a> {
    data: &'a [u8],
    pos: usize,
    parser: Parser,
    end: Option<(Checksum, Trailing)>,
    failed: bool,
    /// Bytes before this offset have had a prefetch hint issued.
    prefetched: usize,
    /// Duplicate keys and function libraries (deep validation), run on the records in file order.
    checks: Option<Box<FileChecks>>,
}

impl<'a> SliceReader<'a> {
    /// A reader with default options (deep validation and checksum verification on).
    pub fn new(data: &'a [u8]) -> Result<Self> {
        Self::with_options(data, ReadOptions::default())
    }

    /// A reader with the given options. Fails if the magic is not a supported RDB header.
    pub fn with_options(data: &'a [u8], opts: ReadOptions) -> Result<Self> {
        let header = Header::parse(data)?;
        Ok(SliceReader {
            data,
            pos: MAGIC_LEN,
            parser: Parser::new(header, opts),
            end: None,
            failed: false,
            prefetched: 0,
            checks: FileChecks::new(&opts, false, data.len() as u64 / 4).map(Box::new),
        })
    }

    /// The oddities found so far that the servers load anyway (see [`super::warn`]).
    pub fn warnings(&self) -> &Warnings {
        &self.parser.warnings
    }

    /// Bytes held by the duplicate-key check (see [`super::dupkeys`]).
    pub fn duplicate_check_memory(&self) -> usize {
        self.checks.as_ref().map_or(0, |c| c.memory())
    }

    /// Adds warnings found by deep validation elsewhere (the parallel drive's [`DeepCheck`]s).
    pub(crate) fn merge_warnings(&mut self, w: Warnings) {
        self.parser.warnings.merge(w);
    }

    /// The file header.
    pub fn header(&self) -> Header {
        self.parser.header
    }

    /// The current database (the last SELECTDB seen).
    pub fn current_db(&self) -> u64 {
        self.parser.db
    }

    /// Byte offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    /// After EOF: the checksum verdict.
    pub fn checksum(&self) -> Option<Checksum> {
        self.end.map(|e| e.0)
    }

    /// After EOF: the bytes found after the checksum.
    pub fn trailing(&self) -> Option<Trailing> {
        self.end.map(|e| e.1)
    }

    /// The next record, `Ok(None)` after EOF. After an error, returns `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<Record<'a>>> {
        if self.end.is_some() || self.failed {
            return Ok(None);
        }
        self.prefetch_ahead();
        let rest = &self.data[self.pos..];
        let offset = self.pos as u64;
        match self.parser.parse(rest, offset) {
            Ok(Step::Done(n, kind)) => {
                let raw = &rest[..n];
                self.pos += n;
                if let RecordKind::Eof { checksum } = kind {
                    let eof_at = offset as usize + eof_opcode_at(raw);
                    let verdict = finish_checksum(checksum, self.parser.opts.verify_checksum, || {
                        crc64(0, &self.data[..eof_at + 1])
                    });
                    if let Err(e) = verdict {
                        self.failed = true;
                        return Err(e.at(eof_at as u64 + 1));
                    }
                    let tail = &self.data[self.pos..];
                    // Only the first TRAILING_LIMIT bytes are looked at: the rest of a huge tail stays unread.
                    let trailing = Trailing::of(tail);
                    self.end = Some((verdict?, trailing));
                } else if self.checks.is_some() {
                    // The next key's slot is fetched while this record is checked (see `Parser::key_memo`).
                    self.parser.prefetch_next_key(&self.data[self.pos..], self.pos as u64);
                    if let Err(e) = self.file_checks(&kind, offset) {
                        self.failed = true;
                        return Err(e);
                    }
                }
                Ok(Some(Record { offset, raw, kind }))
            }
            Ok(Step::Need(n)) => {
                self.failed = true;
                let what = if rest.is_empty() { "the next record (no EOF opcode)" } else { "a record" };
                Err(Error::truncated(what, n, self.data.len() as u64).in_db(self.parser.db))
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

impl<'a> SliceReader<'a> {
    /// The reader's options.
    pub fn options(&self) -> ReadOptions {
        self.parser.opts
    }

    /// Turns deep validation on or off for the records still to come (the parallel drive walks with it off and
    /// validates with a [`DeepCheck`] instead).
    pub(crate) fn set_deep(&mut self, deep: bool) {
        self.parser.opts.deep = deep;
    }

    /// What a deep-validating reader at `pos` (a record start, with this reader's current database) would return
    /// next: used when a walk without deep validation fails, to report the error a deep reader would have
    /// reported first.
    pub(crate) fn deep_next_at(&self, pos: u64) -> Result<Option<Record<'a>>> {
        let pos = usize::try_from(pos).unwrap_or(usize::MAX).min(self.data.len());
        let mut deep = SliceReader {
            data: self.data,
            pos,
            parser: Parser::new(self.parser.header, ReadOptions { deep: true, ..self.parser.opts }),
            end: None,
            failed: false,
            prefetched: pos,
            checks: None,
        };
        deep.parser.db = self.parser.db;
        deep.next_record()
    }
}

/// Deep validation of records that were walked without it, record by record, on any thread: the same checks and
/// the same errors (offset, database, key) as a reader with `deep: true`.
pub(crate) struct DeepCheck {
    parser: Parser,
}

impl DeepCheck {
    pub(crate) fn new(header: super::Header, opts: ReadOptions) -> Self {
        let mut parser = Parser::new(header, ReadOptions { deep: true, ..opts });
        // The walk beside it reports the warnings a walk finds.
        parser.deep_warnings_only = true;
        DeepCheck { parser }
    }

    /// The warnings only deep validation finds, of the records checked so far.
    pub(crate) fn take_warnings(&mut self) -> Warnings {
        std::mem::take(&mut self.parser.warnings)
    }

    /// Checks `rec`, read while the current database was `db`.
    pub(crate) fn check(&mut self, rec: &Record<'_>, db: u64) -> Result<()> {
        self.parser.db = db;
        match self.parser.parse(rec.raw, rec.offset)? {
            Step::Done(n, _) if n == rec.raw.len() => Ok(()),
            // Deep validation reads within the bytes the walk delimited; anything else is a bug, not bad input.
            _ => Err(Error::new(
                ErrorKind::Invalid("deep validation and the record walk disagree on the record's length".into()),
                rec.offset,
            )),
        }
    }
}

impl<'a> SliceReader<'a> {
    /// The file-level checks of record `kind` at `offset` (not EOF).
    fn file_checks(&mut self, kind: &RecordKind<'a>, offset: u64) -> Result<()> {
        let Some(checks) = self.checks.as_mut() else {
            return Ok(());
        };
        let verdict = checks.check(kind, offset, self.parser.header.flavor, self.parser.key_memo_for(offset));
        // The table may have moved: the parser prefetches the next key's slot from this.
        self.parser.key_hint = checks.hint();
        let Verdict::Repeat { kept } = verdict? else {
            return Ok(());
        };
        let RecordKind::Entry(e) = kind else {
            return Ok(());
        };
        if !kept && !checks.may_confirm_skipped() {
            return Ok(());
        }
        let now = checks.now();
        match self.earlier_kept_copy(e, offset, now) {
            Some(at) if kept => Err(duplicate_error(e, offset, Some(at))),
            Some(_) => {
                let key = e.key.decode().ok().map(|k| k.into_owned());
                self.parser.warnings.push(Warning {
                    offset,
                    db: Some(e.db),
                    key,
                    kind: WarningKind::DuplicateKeySkipped,
                });
                Ok(())
            }
            // Two different keys with the same hash.
            None => Ok(()),
        }
    }

    /// The offset of an earlier copy of `e`'s key in its database that the server keeps, found by walking the
    /// records before `end` again (the confirmation step of the duplicate-key check).
    fn earlier_kept_copy(&self, e: &Entry<'_>, end: u64, now: i64) -> Option<u64> {
        let mut copy = EarlierCopy::of(e, now)?;
        let mut walk = SliceReader {
            data: self.data,
            pos: MAGIC_LEN,
            parser: Parser::new(self.parser.header, WALK_ONLY),
            end: None,
            failed: false,
            prefetched: 0,
            checks: None,
        };
        while walk.position() < end {
            let rec = walk.next_record().ok()??;
            if copy.matches(&rec.kind) {
                return Some(rec.offset);
            }
        }
        None
    }
}

impl SliceReader<'_> {
    /// Asks the CPU to fetch the cache lines up to `PREFETCH_DISTANCE` bytes past the current record. Each
    /// record's start is known only once the previous one is parsed, so a key scan that skips over values would
    /// otherwise wait on memory at nearly every record.
    #[inline]
    fn prefetch_ahead(&mut self) {
        const PREFETCH_DISTANCE: usize = 1024;
        const LINE: usize = 64;
        let end = (self.pos + PREFETCH_DISTANCE).min(self.data.len());
        let mut at = self.prefetched.max(self.pos);
        while at < end {
            prefetch(&self.data[at]);
            at += LINE;
        }
        self.prefetched = at;
    }
}

#[inline(always)]
pub(crate) fn prefetch(byte: &u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint: it reads nothing the
        // program can observe and never faults (the address is a valid reference anyway).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(byte as *const u8 as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = byte;
}

impl<'a> Iterator for SliceReader<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

impl<'a> SliceReader<'a> {
    /// Only the keys: the entries of the file in order, every other record (AUX fields, database selectors,
    /// function libraries, the EOF and its checksum) still read and checked, but not handed out. Stops after
    /// the first error.
    ///
    /// ```
    /// let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/redis-7.0.rdb")).unwrap();
    /// for entry in rdbkit::read::SliceReader::new(&data).unwrap().entries() {
    ///     let entry = entry.unwrap();
    ///     let key = entry.key.decode().unwrap();
    ///     println!("db {} {} {}: ttl {:?}", entry.db, entry.value.logical_type(), String::from_utf8_lossy(&key),
    ///              entry.expiry.map(|x| x.as_millis()));
    /// }
    /// ```
    pub fn entries(self) -> Entries<'a> {
        Entries { reader: self, done: false }
    }
}

/// The entries of a file: [`SliceReader::entries`].
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Entries<'a> {
    reader: SliceReader<'a>,
    done: bool,
}

impl<'a> Entries<'a> {
    /// The reader, for what it knows once the iterator is done (checksum, trailing bytes, warnings).
    pub fn reader(&self) -> &SliceReader<'a> {
        &self.reader
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.reader.next_record() {
                Ok(Some(Record { kind: RecordKind::Entry(e), .. })) => return Some(Ok(e)),
                Ok(Some(_)) => {}
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl std::iter::FusedIterator for Entries<'_> {}

/// Decides the checksum verdict at EOF; `compute` is only called when the stored value must be compared.
pub(crate) fn finish_checksum(stored: Option<u64>, verify: bool, compute: impl FnOnce() -> u64) -> Result<Checksum> {
    match stored {
        None => Ok(Checksum::Absent),
        Some(0) => Ok(Checksum::Disabled),
        Some(_) if !verify => Ok(Checksum::NotChecked),
        Some(stored) => {
            let computed = compute();
            if computed == stored {
                Ok(Checksum::Ok(stored))
            } else {
                Err(Error::without_offset(ErrorKind::ChecksumMismatch { stored, computed }))
            }
        }
    }
}
