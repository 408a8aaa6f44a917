//! What every subcommand shares: opening an input (file, `.gz`, or `-` for stdin), the record loop over either
//! reader, the error type with its exit code, and small output helpers (JSON byte strings, base64).

use rdbkit::read::{Checksum, Header, ReadOptions, Record, SliceReader, StreamReader, Trailing};
use rdbkit::{Error, ErrorKind};
use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::rc::Rc;

/// Exit code: the input is not a sound RDB file.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: bad usage, or an I/O error (file not found, disk error).
pub const EXIT_IO: i32 = 2;

/// Why a command stopped.
#[derive(Debug)]
pub enum Failure {
    /// The input is invalid or corrupt (exit 1). The message starts with `error at byte N:` when the position is
    /// known.
    Invalid(String),
    /// An I/O or usage error (exit 2).
    Io(String),
    /// Writing to stdout failed because the reader went away: exit quietly.
    BrokenPipe,
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Invalid(_) => EXIT_INVALID,
            Failure::Io(_) => EXIT_IO,
            Failure::BrokenPipe => 0,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e.kind() {
            // Damaged gzip data surfaces as an I/O error of these kinds: that is bad input, not a failing disk.
            ErrorKind::Io(io)
                if !matches!(
                    io.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
                ) =>
            {
                Failure::Io(e.to_string())
            }
            _ => Failure::Invalid(e.to_string()),
        }
    }
}

/// An error writing the output.
pub fn out_err(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe { Failure::BrokenPipe } else { Failure::Io(format!("stdout: {e}")) }
}

/// Everything known about an input once its last record was read.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// The file header.
    pub header: Header,
    /// The reader's checksum verdict.
    pub checksum: Checksum,
    /// Bytes after the checksum.
    pub trailing: Trailing,
    /// Size of the RDB stream (decompressed when the input is gzip), trailing bytes included.
    pub stream_bytes: u64,
    /// Size of the input as read (the compressed size for gzip input).
    pub input_bytes: u64,
}

/// Counts the bytes that pass through a reader (the size of stdin or of a gzip file).
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The two readers behind one `next_record`, so the record loop is written once.
enum Reader<'a> {
    Slice(Box<SliceReader<'a>>),
    Stream(Box<StreamReader<Box<dyn Read + 'a>>>),
}

impl Reader<'_> {
    fn header(&self) -> Header {
        match self {
            Reader::Slice(r) => r.header(),
            Reader::Stream(r) => r.header(),
        }
    }

    fn next_record(&mut self) -> rdbkit::Result<Option<Record<'_>>> {
        match self {
            Reader::Slice(r) => r.next_record(),
            Reader::Stream(r) => r.next_record(),
        }
    }

    fn end(&self) -> Option<(Checksum, Trailing, u64)> {
        match self {
            Reader::Slice(r) => Some((r.checksum()?, r.trailing()?, SliceReader::position(r))),
            Reader::Stream(r) => Some((r.checksum()?, r.trailing()?, r.position())),
        }
    }
}

/// Opens `path` (`-` is stdin) and calls `on_record` with the header and each record in file order, up to and
/// including EOF. Plain files are memory-mapped and read with the zero-copy [`SliceReader`]; gzip files, stdin and
/// anything that cannot be mapped go through the [`StreamReader`] (which detects gzip itself).
///
/// Errors from the reader or from `on_record` stop the loop and are returned as they are.
pub fn for_each_record(
    path: &str,
    opts: ReadOptions,
    mut on_record: impl FnMut(Header, &Record<'_>) -> Result<(), Failure>,
) -> Result<Summary, Failure> {
    let count = Rc::new(Cell::new(0u64));
    let io_err = |e: io::Error| Failure::Io(format!("cannot read: {e}"));
    let mapped;
    let mut input_len = None;
    let mut reader = if path == "-" {
        let stdin: Box<dyn Read> = Box::new(Counting { inner: io::stdin().lock(), count: count.clone() });
        Reader::Stream(Box::new(StreamReader::with_options(stdin, opts)?))
    } else {
        let file = File::open(path).map_err(|e| Failure::Io(format!("cannot open: {e}")))?;
        let meta = file.metadata().map_err(io_err)?;
        // SAFETY: mapping is only tried for regular files, and the file stays open for the life of the map. The
        // hazard of `Mmap::map` is another process truncating or rewriting the file while it is mapped, which could
        // change the bytes under us or fault (SIGBUS). That is acceptable for a command-line tool reading snapshot
        // files: servers write a snapshot to a temporary name and rename it into place, never rewriting a file in
        // place, and the parser treats every byte as untrusted input, so changed bytes can only cause a parse error.
        let map = if meta.is_file() { unsafe { memmap2::MmapOptions::new().populate().map(&file) }.ok() } else { None };
        match map {
            Some(m) => {
                mapped = m;
                input_len = Some(mapped.len() as u64);
                if mapped.starts_with(&[0x1f, 0x8b]) {
                    let r: Box<dyn Read> = Box::new(&mapped[..]);
                    Reader::Stream(Box::new(StreamReader::with_options(r, opts)?))
                } else {
                    Reader::Slice(Box::new(SliceReader::with_options(&mapped, opts)?))
                }
            }
            None => {
                let r: Box<dyn Read> = Box::new(Counting { inner: file, count: count.clone() });
                Reader::Stream(Box::new(StreamReader::with_options(r, opts)?))
            }
        }
    };
    let header = reader.header();
    while let Some(rec) = reader.next_record()? {
        on_record(header, &rec)?;
    }
    let (checksum, trailing, end) =
        reader.end().ok_or_else(|| Failure::Invalid("the reader stopped before the EOF record".into()))?;
    Ok(Summary {
        header,
        checksum,
        trailing,
        stream_bytes: end + trailing.len,
        input_bytes: input_len.unwrap_or_else(|| count.get()),
    })
}

/// The file offset of a key record's value (where its bytes start in the input).
pub fn value_offset(rec: &Record<'_>, value_raw: &[u8]) -> u64 {
    let delta = (value_raw.as_ptr() as usize).wrapping_sub(rec.raw.as_ptr() as usize);
    if delta <= rec.raw.len() { rec.offset + delta as u64 } else { rec.offset }
}

/// Gives a value-decoding error the position of the value in the file, and the key's database and name.
///
/// Errors from decoding a value carry offsets relative to some part of the value, so they are replaced by the
/// offset where the value starts.
pub fn value_error(e: Error, rec: &Record<'_>, value_raw: &[u8], db: u64, key: &[u8]) -> Failure {
    Failure::from(e.at(value_offset(rec, value_raw)).in_db(db).for_key(key))
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        s.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    s
}

/// Writes a byte string as a JSON value: a string when the bytes are valid UTF-8, else `{"b64":"…"}`.
pub fn json_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => json_str(out, s),
        Err(_) => {
            out.extend_from_slice(b"{\"b64\":\"");
            out.extend_from_slice(base64(b).as_bytes());
            out.extend_from_slice(b"\"}");
        }
    }
}

/// Writes a JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail, and serde_json escapes exactly as JSON requires.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Writes an integer.
pub fn json_int(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

/// Writes a double as a JSON number (shortest round-trip form), or `"inf"`, `"-inf"`, `"nan"`.
pub fn json_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"\"nan\"");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"\"inf\"" } else { b"\"-inf\"" });
    } else {
        let _ = serde_json::to_writer(&mut *out, &v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (i, o) in cases {
            assert_eq!(base64(i), o);
        }
    }

    #[test]
    fn json_helpers() {
        let mut v = Vec::new();
        json_bytes(&mut v, b"a\"\n\x00");
        v.push(b' ');
        json_bytes(&mut v, b"\xff\x00");
        v.push(b' ');
        json_f64(&mut v, f64::NEG_INFINITY);
        v.push(b' ');
        json_f64(&mut v, 2.5);
        assert_eq!(String::from_utf8(v).unwrap(), r#""a\"\n\u0000" {"b64":"/wA="} "-inf" 2.5"#);
    }
}
