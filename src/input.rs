//! Opening inputs: a path (memory-mapped when it is a plain file), a `.gz` file (decompressed while streaming),
//! or standard input (`-`, spooled to a temporary file so it can be read more than once).
//!
//! A workflow whose output cannot be taken back (stdout, gzip) reads an input twice — a check pass before anything
//! is written, then the writing pass — so an [`Input`] can hand out a fresh record source as often as needed.

use crate::error::{Error, Result};
use crate::read::{Header, ReadOptions, SliceReader, StreamReader};
use crate::transform::RecordSource;
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

enum Data {
    /// A plain RDB file, memory-mapped.
    Mapped(Mmap),
    /// An empty plain file (cannot be mapped).
    Empty,
    /// A gzip file, re-read and decompressed on every pass.
    Gzip(PathBuf),
}

/// An input file that can be read any number of times.
pub struct Input {
    name: String,
    data: Data,
    file_len: u64,
    _spool: Option<tempfile::NamedTempFile>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("name", &self.name).field("file_len", &self.file_len).finish_non_exhaustive()
    }
}

impl Input {
    /// Opens `path`; `-` reads standard input (spooled to a temporary file).
    pub fn open(path: impl AsRef<Path>) -> Result<Input> {
        let path = path.as_ref();
        if path == Path::new("-") {
            let mut spool = tempfile::NamedTempFile::new()?;
            std::io::copy(&mut std::io::stdin().lock(), spool.as_file_mut())?;
            let mut input = Self::open_file(spool.path(), "<stdin>".to_string())?;
            input._spool = Some(spool);
            return Ok(input);
        }
        Self::open_file(path, path.display().to_string())
    }

    fn open_file(path: &Path, name: String) -> Result<Input> {
        let mut file = File::open(path).map_err(|e| Error::from(e).in_file(&name))?;
        let file_len = file.metadata()?.len();
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic)?;
        let data = if n == 2 && magic == [0x1f, 0x8b] {
            Data::Gzip(path.to_path_buf())
        } else if file_len == 0 {
            Data::Empty
        } else {
            // SAFETY: the map is read-only and private to this process. If another process truncates the file
            // while it is mapped, reads past the new end raise SIGBUS; that is the documented cost of mapping,
            // accepted for the speed of zero-copy parsing (a `.gz` or stdin input is streamed instead).
            Data::Mapped(unsafe { Mmap::map(&file)? })
        };
        Ok(Input { name, data, file_len, _spool: None })
    }

    /// The name for messages (the path, or `<stdin>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size of the file as stored (compressed size for `.gz`).
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Whether the input is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        matches!(self.data, Data::Gzip(_))
    }

    /// The bytes, when the input is a plain mapped file.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            Data::Mapped(m) => Some(&m[..]),
            Data::Empty => Some(&[]),
            Data::Gzip(_) => None,
        }
    }

    /// Reads the header only.
    pub fn header(&self) -> Result<Header> {
        self.with_source(ReadOptions::fast(), |s| Ok(s.header()))
    }

    /// Runs `f` with a fresh record source over the input.
    /// Errors are tagged with the input's name.
    pub fn with_source<T>(&self, opts: ReadOptions, f: impl FnOnce(&mut dyn Source) -> Result<T>) -> Result<T> {
        self.with_source_inner(opts, f).map_err(|e| e.in_file(&self.name))
    }

    /// Feeds every record to `sink` (without finishing it). With `parallel`, a memory-mapped input of at least
    /// [`PARALLEL_MIN_BYTES`] on a machine with more than one core is parsed on a second thread
    /// ([`crate::transform::drive_parallel`]); otherwise, and for gzip inputs, on this one.
    pub fn drive(&self, opts: ReadOptions, sink: &mut dyn crate::transform::RecordSink, parallel: bool) -> Result<()> {
        let r = match &self.data {
            Data::Mapped(m) if parallel && parallel_pays(m.len()) => {
                SliceReader::with_options(&m[..], opts).and_then(|mut r| crate::transform::drive_parallel(&mut r, sink))
            }
            _ => self.with_source_inner(opts, |src| crate::transform::drive(src, sink)),
        };
        r.map_err(|e| e.in_file(&self.name))
    }

    fn with_source_inner<T>(&self, opts: ReadOptions, f: impl FnOnce(&mut dyn Source) -> Result<T>) -> Result<T> {
        match &self.data {
            Data::Mapped(m) => f(&mut SliceReader::with_options(&m[..], opts)?),
            Data::Empty => f(&mut SliceReader::with_options(&[], opts)?),
            Data::Gzip(p) => {
                let file = File::open(p)?;
                f(&mut StreamReader::with_options(BufReader::with_capacity(1 << 16, file), opts)?)
            }
        }
    }
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
