//! What every subcommand shares: opening an input (file, `.gz`, or `-` for stdin), the record loop over either
//! reader, the error type with its exit code, and small output helpers (JSON byte strings, base64).

use rdbkit::input::Input;
use rdbkit::read::{Checksum, Header, ReadOptions, Record, Trailing};
use rdbkit::{Error, ErrorKind};
use std::io;

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
#[derive(Debug, Clone)]
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
    /// What deep validation found odd but the servers load.
    pub warnings: rdbkit::read::Warnings,
}

/// Feeds records to a closure; keeps the closure's own failure (the sink error only stops the reader).
struct CallSink<F> {
    on_record: F,
    failure: Option<Failure>,
}

impl<F: FnMut(&Record<'_>) -> Result<(), Failure>> rdbkit::transform::RecordSink for CallSink<F> {
    fn record(&mut self, rec: &Record<'_>) -> rdbkit::Result<()> {
        (self.on_record)(rec).map_err(|f| {
            self.failure = Some(f);
            Error::without_offset(ErrorKind::Invalid("stopped by the record handler".into()))
        })
    }

    fn finish(&mut self) -> rdbkit::Result<()> {
        Ok(())
    }
}

/// Opens `path` (`-` is stdin) and calls `on_record` with the header and each record in file order, up to and
/// including EOF. The input is read as [`Input`] reads it: a regular file with positioned reads into buffers (a
/// large one parsed on a second thread), anything else streamed once; gzip is detected. Nothing is mapped, so a
/// file truncated while it is read gives an error, not a crash.
///
/// Errors from the reader or from `on_record` stop the loop and are returned as they are.
pub fn for_each_record(
    path: &str,
    opts: ReadOptions,
    on_record: impl FnMut(Header, &Record<'_>) -> Result<(), Failure>,
) -> Result<Summary, Failure> {
    records_of(&open_input(path)?, opts, on_record)
}

/// [`for_each_record`] for a command whose output goes out as it is made (`dump`): the whole input is
/// deep-validated first, with the verdict of `verify`, so a damaged file produces no output at all; then the records
/// are walked again (a stream was spooled by the first pass). Without `validate`, records are only walked (the
/// checksum is still verified, at the end, after the output).
pub fn for_each_validated_record(
    path: &str,
    validate: bool,
    on_record: impl FnMut(Header, &Record<'_>) -> Result<(), Failure>,
) -> Result<Summary, Failure> {
    let input = open_input(path)?;
    if validate {
        if input.is_stream() {
            input
                .with_source(ReadOptions::default(), |src| {
                    while src.next_rec()?.is_some() {}
                    Ok(())
                })
                .map_err(untagged)?;
        } else {
            input.read_to_end(ReadOptions::default(), &mut NullSink, true)?;
        }
    }
    records_of(&input, ReadOptions::fast(), on_record)
}

/// The failure for `e` without the input's name that [`Input::with_source`] adds (the CLI names the input itself).
fn untagged(e: Error) -> Failure {
    let name = e.file().map(|f| format!("{f}: "));
    match (Failure::from(e), name) {
        (Failure::Invalid(m), Some(n)) => Failure::Invalid(m.strip_prefix(&n).map(str::to_string).unwrap_or(m)),
        (Failure::Io(m), Some(n)) => Failure::Io(m.strip_prefix(&n).map(str::to_string).unwrap_or(m)),
        (f, _) => f,
    }
}

/// A sink that takes every record and does nothing with it.
struct NullSink;

impl rdbkit::transform::RecordSink for NullSink {
    fn record(&mut self, _: &Record<'_>) -> rdbkit::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> rdbkit::Result<()> {
        Ok(())
    }
}

fn open_input(path: &str) -> Result<Input, Failure> {
    Input::open(path).map_err(|e| match e.kind() {
        ErrorKind::Io(_) if e.offset().is_none() => Failure::Io(format!("cannot open: {e}")),
        _ => Failure::from(e),
    })
}

fn records_of(
    input: &Input,
    opts: ReadOptions,
    mut on_record: impl FnMut(Header, &Record<'_>) -> Result<(), Failure>,
) -> Result<Summary, Failure> {
    let header = input.header()?;
    let mut sink = CallSink { on_record: |rec: &Record<'_>| on_record(header, rec), failure: None };
    let f = match input.read_to_end(opts, &mut sink, true) {
        Ok(f) => f,
        Err(e) => return Err(sink.failure.take().unwrap_or_else(|| e.into())),
    };
    if f.trailing.beyond_limit {
        // Endless padding, a gzip bomb or an appended file: the RDB is complete, the rest is not read.
        eprintln!(
            "rdbkit: warning: more than {} bytes follow the checksum; they are ignored and were not read to their end",
            rdbkit::read::TRAILING_LIMIT
        );
    }
    let stream_bytes = f.end + f.trailing.len;
    // Only a gzip input differs in size from its RDB stream; a plain one may be read ahead of its end when the
    // reader stops after TRAILING_LIMIT bytes, which must not look like compression.
    let input_bytes = if input.is_gzip() { f.input_bytes } else { stream_bytes };
    Ok(Summary {
        header: f.header,
        checksum: f.checksum,
        trailing: f.trailing,
        stream_bytes,
        input_bytes,
        warnings: f.warnings,
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

thread_local! {
    /// The size of the first output buffer that could not be grown since [`take_out_of_memory`] (see [`room`]).
    static OUT_OF_MEMORY: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Makes room for `n` more bytes in an output buffer, as writing one element of a value needs. When the memory
/// cannot be had, returns false and latches the failure: the writer skips the element and its caller turns the
/// latch ([`take_out_of_memory`]) into an error for the record, instead of the abort an infallible growth would be.
pub fn room(o: &mut Vec<u8>, n: usize) -> bool {
    if o.capacity() - o.len() >= n || o.try_reserve(n).is_ok() {
        return true;
    }
    OUT_OF_MEMORY.set(Some(o.len().saturating_add(n) as u64));
    false
}

/// The error for an output buffer [`room`] could not grow since the last call, for the record at `offset`.
pub fn take_out_of_memory(offset: u64) -> Option<rdbkit::Error> {
    let bytes = OUT_OF_MEMORY.take()?;
    Some(rdbkit::Error::new(rdbkit::ErrorKind::OutOfMemory { what: "a record's output", bytes }, offset))
}

/// Writes a byte string as a JSON value: a string when the bytes are valid UTF-8, else `{"b64":"…"}`.
pub fn json_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let start = out.len();
    if !json_escape(out, b, false) {
        out.truncate(start);
        out.extend_from_slice(b"{\"b64\":\"");
        out.extend_from_slice(base64(b).as_bytes());
        out.extend_from_slice(b"\"}");
    }
}

/// Writes a JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    json_escape(out, s.as_bytes(), true);
}

/// Writes an integer.
pub fn json_int(out: &mut Vec<u8>, v: impl JsonInt) {
    v.push_to(out);
}

/// Integers [`json_int`] writes (in decimal, without allocating).
pub trait JsonInt {
    /// Appends the decimal text.
    fn push_to(self, out: &mut Vec<u8>);
}

macro_rules! json_int_impl {
    ($($u:ty),*; $($i:ty),*) => {
        $(impl JsonInt for $u {
            fn push_to(self, out: &mut Vec<u8>) {
                push_u64(out, self as u64);
            }
        })*
        $(impl JsonInt for $i {
            fn push_to(self, out: &mut Vec<u8>) {
                push_i64(out, self as i64);
            }
        })*
    };
}
json_int_impl!(u8, u16, u32, u64, usize; i8, i16, i32, i64, isize);

/// The two-digit decimal numbers 00 to 99, back to back.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869\
    707172737475767778798081828384858687888990919293949596979899";

/// Writes the `n` decimal digits of `v` into `out[..n]`.
#[inline(always)]
fn fill_digits(mut v: u64, out: &mut [u8], mut n: usize) {
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        n -= 2;
        out[n..n + 2].copy_from_slice(&PAIRS[d..d + 2]);
    }
    if v >= 10 {
        let d = v as usize * 2;
        out[n - 2..n].copy_from_slice(&PAIRS[d..d + 2]);
    } else {
        out[n - 1] = b'0' + v as u8;
    }
}

/// The number of decimal digits of `v`.
#[inline(always)]
fn digit_count(v: u64) -> usize {
    v.checked_ilog10().unwrap_or(0) as usize + 1
}

/// Formats `v` in decimal into `buf` (20 bytes hold any `i64`), returning the text.
pub fn i64_text(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let neg = usize::from(v < 0);
    let n = digit_count(v.unsigned_abs());
    buf[0] = b'-';
    fill_digits(v.unsigned_abs(), &mut buf[neg..], n);
    &buf[..neg + n]
}

/// Appends `v` in decimal.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    if v >= 10_000_000_000_000_000 {
        let mut buf = [0u8; 20];
        let n = digit_count(v);
        fill_digits(v, &mut buf, n);
        out.extend_from_slice(&buf[..n]);
        return;
    }
    // At most 16 digits: gathered in a register, most significant in the lowest byte, and stored with one
    // fixed-size copy (digits written to a buffer one pair at a time and copied out stall the copy).
    let n = digit_count(v);
    let mut acc = 0u128;
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        acc = (acc << 16) | u128::from(u16::from_le_bytes([PAIRS[d], PAIRS[d + 1]]));
    }
    if v >= 10 {
        let d = v as usize * 2;
        acc = (acc << 16) | u128::from(u16::from_le_bytes([PAIRS[d], PAIRS[d + 1]]));
    } else {
        acc = (acc << 8) | u128::from(b'0' + v as u8);
    }
    let len = out.len();
    out.extend_from_slice(&acc.to_le_bytes());
    out.truncate(len + n);
}

/// Appends `v` in decimal.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The bytes of an 8-byte little-endian word that need attention, each flagged by its high bit: control characters,
/// `"` and `\`, and with `NON_ASCII` every byte ≥ 0x80. The lowest flag is always exact (a borrow can only raise
/// false flags above a true one), which is all [`next_special`] uses.
///
/// `t = w ^ 0x02…` maps `"` to 0x20 and leaves control characters below 0x20, so "`t` < 0x21" finds both; `v = w ^
/// 0x5c…` is zero where `w` holds a backslash. Subtracting sets a byte's high bit where it is below the subtrahend,
/// provided it had no high bit before, which `| t` (all non-ASCII bytes flagged) or `& !w` (none) settles.
#[inline(always)]
fn special_mask<const NON_ASCII: bool>(w: u64) -> u64 {
    let t = w ^ (LO * 0x02);
    let v = w ^ (LO * u64::from(b'\\'));
    let below = t.wrapping_sub(LO * 0x21) | v.wrapping_sub(LO);
    if NON_ASCII { (below | t) & HI } else { below & !w & HI }
}

#[inline(always)]
fn is_special<const NON_ASCII: bool>(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\' || (NON_ASCII && c >= 0x80)
}

/// The index of the first byte at or after `i` that [`special_mask`] flags, or `b.len()`.
#[inline(always)]
fn next_special<const NON_ASCII: bool>(b: &[u8], i: usize) -> usize {
    let word = |c: &[u8]| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let rest = &b[i..];
    let mut chunks = rest.chunks_exact(16);
    let mut at = i;
    for c in chunks.by_ref() {
        let lo = special_mask::<NON_ASCII>(word(&c[..8]));
        let hi = special_mask::<NON_ASCII>(word(&c[8..]));
        if lo | hi != 0 {
            let tz = if lo != 0 { lo.trailing_zeros() } else { 64 + hi.trailing_zeros() };
            return at + (tz / 8) as usize;
        }
        at += 16;
    }
    let tail = chunks.remainder();
    if tail.len() >= 8 {
        let m = special_mask::<NON_ASCII>(word(tail));
        if m != 0 {
            return at + (m.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    if at < b.len() && b.len() >= 8 {
        // The last 8 bytes, overlapping what was scanned: flags below `at` are shifted out. A flag is never missed,
        // but one above a shifted-out flag may be false, so a flagged tail is settled byte by byte below.
        let start = b.len() - 8;
        if special_mask::<NON_ASCII>(word(&b[start..])) >> (8 * (at - start)) == 0 {
            return b.len();
        }
    }
    while at < b.len() && !is_special::<NON_ASCII>(b[at]) {
        at += 1;
    }
    at
}

/// Appends `b` as a JSON string literal, escaped exactly as serde_json does: `\"`, `\\`, `\b` `\t` `\n` `\f` `\r`, other
/// control characters as `\u00xx`; everything else verbatim. Unless `valid_utf8`, checks that `b` is UTF-8 and
/// returns false (with a partial literal appended) when it is not.
fn json_escape(out: &mut Vec<u8>, b: &[u8], mut valid_utf8: bool) -> bool {
    if !room(out, b.len() + 64) {
        // Latched: the record fails; what is written does not matter.
        return true;
    }
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    loop {
        i = if valid_utf8 { next_special::<false>(b, i) } else { next_special::<true>(b, i) };
        let Some(&c) = b.get(i) else { break };
        if c >= 0x80 {
            // Everything before is ASCII, so the rest decides whether the whole string is UTF-8.
            if std::str::from_utf8(&b[i..]).is_err() {
                return false;
            }
            valid_utf8 = true;
            continue;
        }
        out.extend_from_slice(&b[run..i]);
        push_json_escape(out, c);
        i += 1;
        run = i;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
    true
}

/// Appends the JSON escape of the ASCII character `c` (a quote, a backslash or a control character), as serde_json
/// writes it.
pub fn push_json_escape(out: &mut Vec<u8>, c: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let esc: &[u8] = match c {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        0x08 => b"\\b",
        0x0c => b"\\f",
        _ => &[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]],
    };
    out.extend_from_slice(esc);
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

    /// What `json_bytes` wrote before it had its own escaper: serde_json for UTF-8, base64 otherwise.
    fn reference_json_bytes(b: &[u8]) -> Vec<u8> {
        match std::str::from_utf8(b) {
            Ok(s) => serde_json::to_vec(s).unwrap(),
            Err(_) => format!("{{\"b64\":\"{}\"}}", base64(b)).into_bytes(),
        }
    }

    fn check_json_bytes(b: &[u8]) {
        let mut out = b"prefix".to_vec();
        json_bytes(&mut out, b);
        assert_eq!(out[6..], reference_json_bytes(b)[..], "input {b:?}");
    }

    #[test]
    fn json_bytes_escapes_like_serde_json() {
        // Every byte value at every position of strings up to 40 bytes, in plain ASCII and in UTF-8 text, so each
        // lands in each lane of the word-at-a-time scan and in the byte-at-a-time tail.
        for len in 0..40 {
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut b = vec![b'a'; len];
                    b[pos] = c;
                    check_json_bytes(&b);
                    let mut u = "é".repeat(len).into_bytes();
                    u[pos] = c;
                    check_json_bytes(&u);
                }
            }
        }
        // Random strings over an alphabet dense in special bytes, and fully random bytes.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: &[u8] =
            b"ab\"\\\x00\x01\x1f\x20\x21\x22\x23\x5b\x5c\x5d\x7f\x80\xbf\xc3\xa9\xe2\x9c\x93\xff\n\r\t\x08\x0c";
        for _ in 0..20_000 {
            let len = (rnd() % 70) as usize;
            let dense: Vec<u8> = (0..len).map(|_| alphabet[(rnd() % alphabet.len() as u64) as usize]).collect();
            check_json_bytes(&dense);
            let random: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            check_json_bytes(&random);
            // Valid UTF-8 with escapes after the first non-ASCII character.
            let text: String = dense.iter().map(|&c| char::from(c)).collect();
            check_json_bytes(text.as_bytes());
            let mut via_str = Vec::new();
            json_str(&mut via_str, &text);
            assert_eq!(via_str, serde_json::to_vec(&text).unwrap());
        }
    }

    #[test]
    fn integers_format_like_display() {
        let mut cases: Vec<i64> = vec![0, 1, 9, 10, 99, 100, 101, 999, 1000, i64::MAX, i64::MIN, i64::MIN + 1, -1, -10];
        for p in 0..19 {
            let t = 10i64.pow(p);
            cases.extend([t - 1, t, t + 1, -t, -t + 1, -t - 1]);
        }
        for v in cases {
            let mut out = b"x".to_vec();
            push_i64(&mut out, v);
            assert_eq!(out, format!("x{v}").into_bytes());
            let mut buf = [0u8; 20];
            assert_eq!(i64_text(v, &mut buf), v.to_string().as_bytes());
            let mut out = Vec::new();
            json_int(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
        for v in [u64::MAX, u64::MAX - 1, 10_000_000_000_000_000, 9_999_999_999_999_999, 1 << 63] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
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
