//! Opening inputs: a path or standard input (`-`), plain or gzip-compressed, read safely and in bounded memory.
//!
//! - A **regular file** is opened once and read with positioned reads (`pread`) into buffers on every pass: never
//!   memory-mapped, so another process truncating or rewriting it while it is read makes the read fail with an
//!   error ("unexpected end of input", a parse error), never crash the process. Large files are parsed on a
//!   second thread while a third reads ahead ([`ChunkedReader`]). Mapping is an explicit, `unsafe` opt-in:
//!   [`Input::open_mapped`].
//! - **Standard input**, and any other file that is not a regular file (a FIFO, `<(cmd)` process substitution,
//!   a character device), is streamed. Its first bytes are checked at once (an RDB magic or the gzip magic), so
//!   `/dev/zero` or a stray text file is refused at byte 0. A job that must read an input twice (a check pass
//!   before writing to stdout or gzip) reads the stream through [`Input::with_source`], which copies what it reads
//!   to a spool file in `$TMPDIR` (named `rdbkit-stdin-*`, unlinked as soon as it is created, so it never outlives
//!   the process); the copy advances only as fast as the parser accepts the bytes, so it stops at the first
//!   invalid byte. [`Input::drive`], the writing pass, never spools: a job that reads its inputs once (every job
//!   into files) reads a stream with no copy at all.
//!
//! - **Bytes in memory** ([`Input::from_bytes`]) are read in place; **any `io::Read`** ([`Input::from_stream`]: a
//!   socket, a decompressor, a download) is streamed like standard input.
//!
//! A workflow whose output cannot be taken back (stdout, gzip) reads an input twice — a check pass before anything
//! is written, then the writing pass — so an [`Input`] can hand out a fresh record source as often as needed.
//!
//! ```
//! use rdbkit::input::Input;
//! use rdbkit::read::{Checksum, ReadOptions, Record, RecordKind};
//! use rdbkit::transform::RecordSink;
//! use std::collections::BTreeMap;
//!
//! /// Counts keys per database.
//! #[derive(Default)]
//! struct KeysPerDb(BTreeMap<u64, u64>);
//!
//! impl RecordSink for KeysPerDb {
//!     fn record(&mut self, rec: &Record<'_>) -> rdbkit::Result<()> {
//!         if let RecordKind::Entry(e) = &rec.kind {
//!             *self.0.entry(e.db).or_default() += 1;
//!         }
//!         Ok(())
//!     }
//!     fn finish(&mut self) -> rdbkit::Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> rdbkit::Result<()> {
//! // A file: deep validation (the servers' verdict) and the checksum, with the records handed to the sink.
//! let file = Input::open("testdata/redis-7.0.rdb")?;
//! let mut keys = KeysPerDb::default();
//! let end = file.read_to_end(ReadOptions::default(), &mut keys, false)?;
//! assert!(matches!(end.checksum, Checksum::Ok(_)));
//! assert_eq!(keys.0[&0], 43);
//!
//! // Any `io::Read` (here bytes in memory) is a stream: read as it arrives.
//! let bytes = std::fs::read("testdata/redis-7.0.rdb")?;
//! let stream = Input::from_stream("in-memory", std::io::Cursor::new(bytes))?;
//! assert!(stream.is_stream());
//! let mut again = KeysPerDb::default();
//! stream.read_to_end(ReadOptions::default(), &mut again, false)?;
//! assert_eq!(again.0, keys.0);
//! # Ok(()) }
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::read::{Checksum, ChunkedReader, Header, ReadOptions, SliceReader, StreamReader, Trailing};
use crate::transform::{RecordSink, RecordSource};
#[cfg(feature = "mmap")]
use memmap2::Mmap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Length of the RDB magic (`REDIS0011`).
const MAGIC_LEN: usize = 9;

enum Data {
    /// A regular file, read with positioned reads.
    File(Arc<File>),
    /// A regular file, memory-mapped ([`Input::open_mapped`]).
    #[cfg(feature = "mmap")]
    Mapped(Mmap),
    /// Bytes in memory ([`Input::from_bytes`]): read in place, or as a stream when gzip-compressed.
    Memory(Arc<[u8]>),
    /// A stream (stdin, FIFO, device), with what a spooling pass copied of it.
    Stream(Arc<Mutex<Replay>>),
}

/// An input file that can be read any number of times (a stream: see the module docs).
pub struct Input {
    name: String,
    data: Data,
    file_len: u64,
    gzip: bool,
    header: Header,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("name", &self.name).field("file_len", &self.file_len).finish_non_exhaustive()
    }
}

/// Everything known about an input once its EOF record was read ([`Input::read_to_end`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Finished {
    /// The file header.
    pub header: Header,
    /// The checksum verdict.
    pub checksum: Checksum,
    /// Bytes after the checksum.
    pub trailing: Trailing,
    /// Offset just after the EOF record, in the (decompressed) stream.
    pub end: u64,
    /// Bytes of the input as stored (compressed, for gzip) that were read.
    pub input_bytes: u64,
    /// What deep validation found odd but the servers load (see [`crate::read::warn`]).
    pub warnings: crate::read::Warnings,
}

impl Input {
    /// Opens `path`; `-` reads standard input. A regular file is read with positioned reads, anything else
    /// (stdin, a FIFO, a device) is streamed; either may be gzip-compressed. The path is opened once: a FIFO
    /// with no writer yet waits for one here, as `cat` does, and a process substitution (`<(cmd)`) is read as
    /// the pipe it is.
    ///
    /// # Errors
    /// The file cannot be opened or is a directory; a stream does not start with an RDB or gzip magic. The
    /// errors of opening are not tagged with the name (the caller knows it); those of reading are.
    pub fn open(path: impl AsRef<Path>) -> Result<Input> {
        let path = path.as_ref();
        if path == Path::new("-") {
            return Self::from_stream("<stdin>", io::stdin());
        }
        let name = path.display().to_string();
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(Error::from(io::Error::new(io::ErrorKind::InvalidInput, "is a directory")));
        }
        if !meta.is_file() {
            return Self::from_stream(&name, file);
        }
        let mut magic = [0u8; 2];
        let n = read_at_most(&file, &mut magic, 0)?;
        let gzip = n == 2 && magic == [0x1f, 0x8b];
        let file = Arc::new(file);
        let header = read_header(&mut At { file: file.clone(), pos: 0 }, gzip)?;
        Ok(Input { name, data: Data::File(file), file_len: meta.len(), gzip, header })
    }

    /// Opens `path` as a memory map when it is a plain (not gzip) regular file, for zero-copy reading
    /// ([`Input::bytes`]); anything else is opened as by [`Input::open`].
    ///
    /// # Safety
    /// Nothing may truncate or modify the file while the returned `Input` (or any record borrowed from it) lives:
    /// a read past a new end raises SIGBUS and kills the process, and bytes changing under a shared reference
    /// break Rust's aliasing rules. Only map files this process controls (e.g. written by it and not shared).
    ///
    /// Feature `mmap`.
    #[cfg(feature = "mmap")]
    pub unsafe fn open_mapped(path: impl AsRef<Path>) -> Result<Input> {
        let mut input = Self::open(path)?;
        if let Data::File(f) = &input.data
            && !input.gzip
            && input.file_len > 0
        {
            // SAFETY: the caller guarantees the file is not changed while mapped.
            let map = unsafe { Mmap::map(&**f) }?;
            input.file_len = map.len() as u64;
            input.data = Data::Mapped(map);
        }
        Ok(input)
    }

    /// An input held in memory, read in place (zero-copy) and as often as a job needs; gzip-compressed bytes are
    /// decompressed as they are read. `name` is what messages call it.
    ///
    /// # Errors
    /// The bytes do not start with an RDB magic (or the gzip magic).
    ///
    /// ```
    /// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/redis-7.0.rdb")).unwrap();
    /// let input = rdbkit::input::Input::from_bytes("snapshot", bytes).unwrap();
    /// assert_eq!(input.header().unwrap().version, 10);
    /// ```
    pub fn from_bytes(name: &str, data: impl Into<Arc<[u8]>>) -> Result<Input> {
        let data: Arc<[u8]> = data.into();
        let gzip = data.starts_with(&[0x1f, 0x8b]);
        let header = read_header(&mut &data[..], gzip)?;
        let file_len = data.len() as u64;
        Ok(Input { name: name.to_string(), data: Data::Memory(data), file_len, gzip, header })
    }

    /// A streamed input read from `reader` (used for stdin and non-regular files; also for tests). Its first
    /// bytes are read and checked now.
    ///
    /// # Errors
    /// The stream does not start with an RDB magic (or the gzip magic), or cannot be read (not tagged with the
    /// name).
    pub fn from_stream(name: &str, mut reader: impl Read + Send + 'static) -> Result<Input> {
        let mut head = Vec::with_capacity(MAGIC_LEN);
        (&mut reader).take(2).read_to_end(&mut head).map_err(|e| Error::from(e).at(0))?;
        let gzip = head == [0x1f, 0x8b];
        // Refused at byte 0: nothing more is read from a stream that is not an RDB file. What the check read is
        // kept, to be read again by the passes.
        let mut copy =
            Recording { inner: io::Cursor::new(std::mem::take(&mut head)).chain(&mut reader), seen: Vec::new() };
        let header = read_header(&mut copy, gzip)?;
        let head = copy.seen;
        let replay = Replay {
            src: Box::new(io::Cursor::new(head).chain(reader)),
            spool: None,
            spooled: 0,
            read: 0,
            name: name.to_string(),
        };
        Ok(Input {
            name: name.to_string(),
            data: Data::Stream(Arc::new(Mutex::new(replay))),
            file_len: 0,
            gzip,
            header,
        })
    }

    /// The name for messages (the path, or `<stdin>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size of the file as stored (compressed size for `.gz`); 0 for a stream.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Whether the input is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Whether the input is a stream (stdin, FIFO, device) rather than a regular file.
    pub fn is_stream(&self) -> bool {
        matches!(self.data, Data::Stream(_))
    }

    /// The RDB bytes, when they are in memory: an input opened with [`Input::open_mapped`] and mapped, or made by
    /// [`Input::from_bytes`] (not gzip-compressed).
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            #[cfg(feature = "mmap")]
            Data::Mapped(m) => Some(&m[..]),
            Data::Memory(m) if !self.gzip => Some(&m[..]),
            _ => None,
        }
    }

    /// The header (read when the input was opened).
    pub fn header(&self) -> Result<Header> {
        Ok(self.header)
    }

    /// Runs `f` with a fresh record source over the input (a stream is spooled: see the module docs).
    /// Errors are tagged with the input's name.
    pub fn with_source<T>(&self, opts: ReadOptions, f: impl FnOnce(&mut dyn Source) -> Result<T>) -> Result<T> {
        self.with_source_inner(opts, f).map_err(|e| e.in_file(&self.name))
    }

    /// Feeds every record to `sink` (without finishing it). With `parallel`, an input of at least
    /// [`PARALLEL_MIN_BYTES`] (and any stream) on a machine with more than one core is parsed on a second thread
    /// ([`crate::transform::drive_parallel`]); otherwise on this one. Errors are tagged with the input's name.
    pub fn drive(&self, opts: ReadOptions, sink: &mut dyn RecordSink, parallel: bool) -> Result<()> {
        self.read_to_end(opts, sink, parallel).map(|_| ()).map_err(|e| e.in_file(&self.name))
    }

    /// [`Input::drive`], returning what the end of the input says (checksum verdict, trailing bytes, sizes).
    /// Errors are not tagged with the input's name.
    pub fn read_to_end(&self, opts: ReadOptions, sink: &mut dyn RecordSink, parallel: bool) -> Result<Finished> {
        let multi_core = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        match &self.data {
            #[cfg(feature = "mmap")]
            Data::Mapped(m) => drive_slice(&m[..], opts, sink, parallel),
            Data::Memory(m) if !self.gzip => drive_slice(m, opts, sink, parallel),
            Data::Memory(m) => {
                // gzip: decompressed as a stream.
                let src = io::Cursor::new(m.clone());
                if parallel && multi_core {
                    chunked(ChunkedReader::new(src, opts)?, sink, || self.file_len)
                } else {
                    let mut r = StreamReader::with_options(src, opts)?;
                    crate::transform::drive(&mut r, sink)?;
                    finished(r.header(), r.checksum(), r.trailing(), r.position(), self.file_len, r.warnings())
                }
            }
            Data::File(f) => {
                let src = At { file: f.clone(), pos: 0 };
                if parallel && parallel_pays(usize::try_from(self.file_len).unwrap_or(usize::MAX)) {
                    let file = f.clone();
                    let reopen: crate::read::Reopen = Arc::new(move || {
                        let again: Box<dyn Read + Send> = Box::new(At { file: file.clone(), pos: 0 });
                        Ok(again)
                    });
                    chunked(ChunkedReader::with_reopen(Box::new(src), opts, reopen)?, sink, || self.file_len)
                } else {
                    let mut r = StreamReader::with_options(src, opts)?;
                    crate::transform::drive(&mut r, sink)?;
                    finished(r.header(), r.checksum(), r.trailing(), r.position(), self.file_len, r.warnings())
                }
            }
            Data::Stream(s) => {
                let src = ReplayReader { shared: s.clone(), pos: 0, tee: false };
                let read = |s: &Arc<Mutex<Replay>>| s.lock().map_or(0, |r| r.read);
                if parallel && multi_core {
                    chunked(ChunkedReader::new(src, opts)?, sink, || read(s))
                } else {
                    let mut r = StreamReader::with_options(src, opts)?;
                    crate::transform::drive(&mut r, sink)?;
                    finished(r.header(), r.checksum(), r.trailing(), r.position(), read(s), r.warnings())
                }
            }
        }
    }

    fn with_source_inner<T>(&self, opts: ReadOptions, f: impl FnOnce(&mut dyn Source) -> Result<T>) -> Result<T> {
        match &self.data {
            #[cfg(feature = "mmap")]
            Data::Mapped(m) => f(&mut SliceReader::with_options(&m[..], opts)?),
            Data::Memory(m) if !self.gzip => f(&mut SliceReader::with_options(m, opts)?),
            Data::Memory(m) => f(&mut StreamReader::with_options(io::Cursor::new(m.clone()), opts)?),
            Data::File(file) => f(&mut StreamReader::with_options(At { file: file.clone(), pos: 0 }, opts)?),
            Data::Stream(s) => {
                f(&mut StreamReader::with_options(ReplayReader { shared: s.clone(), pos: 0, tee: true }, opts)?)
            }
        }
    }
}

/// Drives a reader over `bytes` (in place) to its end into `sink`.
fn drive_slice(bytes: &[u8], opts: ReadOptions, sink: &mut dyn RecordSink, parallel: bool) -> Result<Finished> {
    let mut r = SliceReader::with_options(bytes, opts)?;
    if parallel && parallel_pays(bytes.len()) {
        crate::transform::drive_parallel(&mut r, sink)?;
    } else {
        crate::transform::drive(&mut r, sink)?;
    }
    finished(r.header(), r.checksum(), r.trailing(), r.position(), bytes.len() as u64, r.warnings())
}

/// Drives `r` to its end into `sink`; `input_bytes` tells, afterwards, how much of the input was read.
fn chunked(mut r: ChunkedReader, sink: &mut dyn RecordSink, input_bytes: impl FnOnce() -> u64) -> Result<Finished> {
    r.drive(sink)?;
    finished(r.header(), r.checksum(), r.trailing(), r.position(), input_bytes(), r.warnings())
}

fn finished(
    header: Header,
    checksum: Option<Checksum>,
    trailing: Option<Trailing>,
    end: u64,
    input_bytes: u64,
    warnings: &crate::read::Warnings,
) -> Result<Finished> {
    match (checksum, trailing) {
        (Some(checksum), Some(trailing)) => {
            Ok(Finished { header, checksum, trailing, end, input_bytes, warnings: warnings.clone() })
        }
        _ => Err(Error::without_offset(ErrorKind::Invalid("the reader stopped before the EOF record".into()))),
    }
}

/// Reads and checks the header at the start of `r` (decompressing it when `gzip`).
fn read_header(r: &mut dyn Read, gzip: bool) -> Result<Header> {
    let mut head = Vec::with_capacity(MAGIC_LEN);
    let res = if gzip {
        crate::read::Gunzip::new(r).take(MAGIC_LEN as u64).read_to_end(&mut head)
    } else {
        r.take(MAGIC_LEN as u64).read_to_end(&mut head)
    };
    res.map_err(|e| Error::from(e).at(head.len() as u64))?;
    Header::parse(&head)
}

/// A reader that keeps a copy of what it reads.
struct Recording<R> {
    inner: R,
    seen: Vec<u8>,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Reads into `buf` at `pos` until it is full or the file ends; returns the bytes read.
fn read_at_most(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], pos + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A regular file read with positioned reads from its own cursor (passes share the open file).
struct At {
    file: Arc<File>,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A stream, and what spooling passes copied of it.
struct Replay {
    src: Box<dyn Read + Send>,
    /// The spool (unlinked), created by the first spooling pass.
    spool: Option<File>,
    /// Bytes in the spool: the stream's first `spooled` bytes.
    spooled: u64,
    /// Bytes read from the stream.
    read: u64,
    name: String,
}

/// One pass over a [`Replay`]: the spool first, then the stream (copied to the spool when `tee`).
struct ReplayReader {
    shared: Arc<Mutex<Replay>>,
    pos: u64,
    tee: bool,
}

impl Read for ReplayReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut r = self.shared.lock().map_err(|_| io::Error::other("a pass over the stream panicked"))?;
        if self.pos < r.spooled {
            let spool = r.spool.as_ref().ok_or_else(|| io::Error::other("spool missing"))?;
            let want = buf.len().min(usize::try_from(r.spooled - self.pos).unwrap_or(usize::MAX));
            let n = spool.read_at(&mut buf[..want], self.pos)?;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.pos < r.read {
            return Err(io::Error::other(format!(
                "{} is a stream and was already read; a job that reads it twice (output to stdout or gzip) \
                 spools it in its first pass, this one did not (save it to a file first)",
                r.name
            )));
        }
        let n = r.src.read(buf)?;
        if self.tee && n > 0 && r.spooled == r.read {
            if r.spool.is_none() {
                r.spool = Some(new_spool()?);
            }
            let dir = std::env::temp_dir();
            if let Some(spool) = r.spool.as_mut() {
                spool
                    .write_all(&buf[..n])
                    .map_err(|e| io::Error::new(e.kind(), format!("spooling {} to {}: {e}", r.name, dir.display())))?;
            }
            r.spooled += n as u64;
        }
        r.read += n as u64;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A spool file in `$TMPDIR`, with a recognisable name, unlinked at once (the open file is all that remains).
#[cfg(feature = "fs")]
fn new_spool() -> io::Result<File> {
    let dir = std::env::temp_dir();
    let named = tempfile::Builder::new()
        .prefix("rdbkit-stdin-")
        .tempfile_in(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create a spool file in {}: {e}", dir.display())))?;
    let (file, path) = named.into_parts();
    path.close()?;
    Ok(file)
}

/// Without the `fs` feature a stream cannot be read twice.
#[cfg(not(feature = "fs"))]
fn new_spool() -> io::Result<File> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "reading a stream twice needs a spool file, and rdbkit was built without its `fs` feature",
    ))
}

/// Inputs smaller than this are parsed on the calling thread: starting a thread would cost more than it saves.
pub const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Whether parsing an input of `len` bytes on a second thread pays here: it is at least [`PARALLEL_MIN_BYTES`]
/// and the machine has more than one core.
pub fn parallel_pays(len: usize) -> bool {
    len >= PARALLEL_MIN_BYTES && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// A record source that also knows its header and end-of-file verdicts (both readers).
pub trait Source: RecordSource {
    /// The file header.
    fn header(&self) -> Header;
    /// After EOF: the checksum verdict.
    fn checksum(&self) -> Option<crate::read::Checksum>;
    /// After EOF: trailing bytes.
    fn trailing(&self) -> Option<crate::read::Trailing>;
    /// Offset of the next record in the (decompressed) input.
    fn position(&self) -> u64;
}

impl Source for SliceReader<'_> {
    fn header(&self) -> Header {
        SliceReader::header(self)
    }
    fn checksum(&self) -> Option<crate::read::Checksum> {
        SliceReader::checksum(self)
    }
    fn trailing(&self) -> Option<crate::read::Trailing> {
        SliceReader::trailing(self)
    }
    fn position(&self) -> u64 {
        SliceReader::position(self)
    }
}

impl<R: Read> Source for StreamReader<R> {
    fn header(&self) -> Header {
        StreamReader::header(self)
    }
    fn checksum(&self) -> Option<crate::read::Checksum> {
        StreamReader::checksum(self)
    }
    fn trailing(&self) -> Option<crate::read::Trailing> {
        StreamReader::trailing(self)
    }
    fn position(&self) -> u64 {
        StreamReader::position(self)
    }
}
