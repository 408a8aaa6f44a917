//! [`StreamReader`]: records from any `io::Read`, in memory bounded by the largest record.
//!
//! The reader keeps one buffer. When a record does not fit in what has been read, it reads more (at least doubling
//! what it asks for, so a large record is re-walked only a logarithmic number of times) and tries again. Gzip input
//! is recognised by its first two bytes and decompressed on the fly; bytes after the checksum are counted and, when
//! they are all zero (page-blob padding), reported as such.

use super::parse::{Parser, ReadOptions, Step};
use super::slice::finish_checksum;
use super::{Checksum, Header, Record, RecordKind, Trailing};
use crate::error::{Error, Result};
use crate::format::crc::Crc64;
use crate::read::header::MAGIC_LEN;
use flate2::read::MultiGzDecoder;
use std::io::{self, Chain, Cursor, Read};

const MIN_READ: usize = 64 * 1024;

/// The byte source: plain, or gzip-decompressed. The sniffed prefix is put back in front with `chain`.
enum Source<R: Read> {
    Plain(Chain<Cursor<Vec<u8>>, R>),
    Gzip(Box<MultiGzDecoder<Chain<Cursor<Vec<u8>>, R>>>),
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
    /// Bytes of the previous record still to be consumed (checksummed and dropped) on the next call.
    pending: usize,
    src_done: bool,
    parser: Parser,
    crc: Crc64,
    finished: Option<(Checksum, Trailing)>,
    failed: bool,
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
        let src = if gzip { Source::Gzip(Box::new(MultiGzDecoder::new(chained))) } else { Source::Plain(chained) };
        let mut r = StreamReader {
            src,
            gzip,
            buf: vec![0; MIN_READ],
            start: 0,
            end: 0,
            offset: 0,
            pending: 0,
            src_done: false,
            parser: Parser::new(Header::new(super::Flavor::Redis, 1), opts),
            crc: Crc64::new(),
            finished: None,
            failed: false,
        };
        while r.end < MAGIC_LEN && !r.src_done {
            r.fill(MAGIC_LEN)?;
        }
        let header = Header::parse(&r.buf[..r.end])?;
        r.parser = Parser::new(header, opts);
        r.crc.update(&r.buf[..MAGIC_LEN]);
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

    /// Size of the internal buffer: the memory this reader holds, about the size of the largest record read.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.len()
    }

    /// Reads more input so that at least `want` unread bytes are buffered, or the source is exhausted.
    fn fill(&mut self, want: usize) -> Result<()> {
        if self.start > 0 && (self.start >= self.buf.len() / 2 || self.buf.len() - self.end < want) {
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

    fn consume_pending(&mut self) {
        if self.pending > 0 {
            self.crc.update(&self.buf[self.start..self.start + self.pending]);
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
        // Find the record's extent first; the borrow checker cannot return a borrow from inside the refill loop.
        let n = loop {
            let avail = &self.buf[self.start..self.end];
            let step = if self.parser.opts.deep {
                let mut probe = Parser::new(self.parser.header, ReadOptions { deep: false, verify_checksum: false });
                probe.db = self.parser.db;
                probe.parse(avail, self.offset)
            } else {
                self.parser.parse(avail, self.offset).map(|s| match s {
                    Step::Done(n, _) => Step::Done(n, super::RecordKind::SelectDb { db: 0 }),
                    Step::Need(k) => Step::Need(k),
                })
            };
            match step {
                Ok(Step::Done(n, _)) => break n,
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
        };
        let offset = self.offset;
        self.pending = n;
        if self.buf[self.start] == 0xFF {
            // EOF: handled here, before any borrow of the buffer is taken for the returned record.
            let checksum = self.parser.header.has_checksum().then(|| {
                let mut c = [0u8; 8];
                c.copy_from_slice(&self.buf[self.start + 1..self.start + 9]);
                u64::from_le_bytes(c)
            });
            self.crc.update(&self.buf[self.start..self.start + 1]);
            let crc = self.crc.value();
            let verdict = match finish_checksum(checksum, self.parser.opts.verify_checksum, || crc) {
                Ok(v) => v,
                Err(e) => {
                    self.failed = true;
                    return Err(e.at(offset + 1));
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
        match self.parser.parse(slice, offset) {
            Ok(Step::Done(_, kind)) => Ok(Some(Record { offset, raw: slice, kind })),
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

    /// Reads everything after the EOF record, counting bytes and checking they are zero.
    fn drain_trailing(&mut self, eof_len: usize) -> Result<Trailing> {
        let mut t = Trailing { len: 0, all_zero: true };
        let after = &self.buf[self.start + eof_len..self.end];
        t.len += after.len() as u64;
        t.all_zero &= after.iter().all(|&b| b == 0);
        let mut chunk = vec![0u8; MIN_READ];
        while !self.src_done {
            match self.src.read(&mut chunk) {
                Ok(0) => self.src_done = true,
                Ok(k) => {
                    t.len += k as u64;
                    t.all_zero &= chunk[..k].iter().all(|&b| b == 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A broken gzip trailer after a complete RDB is still an error: the input is damaged.
                Err(e) => return Err(Error::from(e)),
            }
        }
        Ok(t)
    }
}
