//! Damaged input: truncation at (almost) every offset, byte flips, random bytes after a valid magic; and the input
//! forms the stream reader accepts besides a plain file: page padding, gzip, small reads. Nothing may panic, a
//! truncated file must always end in an error, and a damaged checksum must be noticed.

mod common;

use common::{ChunkedReader, XorShift, read, short};
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use rdbkit::ErrorKind;
use rdbkit::read::{Checksum, ReadOptions, RecordKind, SliceReader, StreamReader};
use rdbkit::transform::RecordSource;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Files up to this size are truncated at every offset.
const EVERY_OFFSET_UP_TO: usize = 4096;
/// Beyond the first `EVERY_OFFSET_UP_TO` bytes, every `STRIDE`-th offset, but no more than `MAX_SAMPLES` of them
/// (each cut re-reads the file up to the cut: the sweep is quadratic, and debug builds are slow).
const STRIDE: usize = 97;
const MAX_SAMPLES: usize = 120;
/// Corpus files above this size are left out of the truncation sweep (the fixtures are always in).
const CORPUS_MAX: usize = 64 * 1024;
/// Files up to this size get the every-byte flip sweep.
const FLIP_MAX: usize = 4096;

/// What walking some input to its end produced.
#[derive(Debug)]
struct Outcome {
    records: usize,
    /// End offset of the last record returned.
    end: u64,
    saw_eof: bool,
    result: Result<(), rdbkit::Error>,
    /// What one more `next_record` call returned after the walk ended: must be `Ok(None)`.
    after_end: Result<Option<u64>, String>,
}

impl Outcome {
    fn new() -> Self {
        Outcome { records: 0, end: 0, saw_eof: false, result: Ok(()), after_end: Ok(None) }
    }

    /// The reader stays finished after the end or an error.
    fn assert_stays_finished(&self, what: &str) {
        assert!(
            matches!(self.after_end, Ok(None)),
            "{what}: reader goes on after it finished ({:?}): {:?}",
            self.result.as_ref().err().map(ToString::to_string),
            self.after_end
        );
    }
}

/// Walks `data` with a SliceReader, decoding values when `decode` (errors there are fine, panics are not).
fn drain_slice(data: &[u8], opts: ReadOptions, decode: bool) -> Outcome {
    drain(SliceReader::with_options(data, opts), decode)
}

/// Walks `src` with a StreamReader.
fn drain_stream<R: Read>(src: R, opts: ReadOptions, decode: bool) -> Outcome {
    drain(StreamReader::with_options(src, opts), decode)
}

/// Walks either reader to its end or first error, then asks it once more (it must stay finished).
fn drain<S: RecordSource>(reader: rdbkit::Result<S>, decode: bool) -> Outcome {
    let mut out = Outcome::new();
    let mut r = match reader {
        Ok(r) => r,
        Err(e) => {
            out.result = Err(e);
            return out;
        }
    };
    loop {
        match r.next_rec() {
            Ok(Some(rec)) => {
                out.records += 1;
                out.end = rec.offset + rec.raw.len() as u64;
                match rec.kind {
                    RecordKind::Eof { .. } => out.saw_eof = true,
                    RecordKind::Entry(e) if decode => {
                        let _ = e.value.to_owned_value();
                    }
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                out.result = Err(e);
                break;
            }
        }
    }
    out.after_end = r.next_rec().map(|o| o.map(|rec| rec.offset)).map_err(|e| e.to_string());
    out
}

/// The inputs of the sweeps: every fixture, every corpus RDB up to `max` bytes (identical files once).
fn inputs(corpus_max: usize) -> Vec<(String, Vec<u8>)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (rdb, _) in common::fixtures() {
        let data = read(&rdb);
        if seen.insert(data.clone()) {
            out.push((short(&rdb), data));
        }
    }
    if let Some(corpus) = common::corpus_dir() {
        for p in common::corpus_inputs(&corpus) {
            let data = read(&p);
            if data.len() <= corpus_max && seen.insert(data.clone()) {
                out.push((short(&p), data));
            }
        }
    } else {
        eprintln!("skipped: ../shared/corpus not found (corpus files left out; fixtures still swept)");
    }
    out
}

/// Truncation points: every offset of the first `EVERY_OFFSET_UP_TO` bytes, a sample after (every `STRIDE`-th byte,
/// or sparser for big files), and the last 24 (the EOF opcode and checksum).
fn cut_points(len: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..len.min(EVERY_OFFSET_UP_TO)).collect();
    let stride = STRIDE.max(len.saturating_sub(EVERY_OFFSET_UP_TO) / MAX_SAMPLES);
    v.extend((EVERY_OFFSET_UP_TO..len).step_by(stride));
    v.extend(len.saturating_sub(24)..len);
    v.sort_unstable();
    v.dedup();
    v
}

/// Runs `f` over `items` on a few threads.
fn parallel<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    f(item);
                }
            });
        }
    });
}

/// Where the complete file's EOF record ends (`None` when the file does not parse, e.g. the corrupt one).
fn eof_end(data: &[u8]) -> Option<u64> {
    let o = drain_slice(data, ReadOptions::default(), false);
    (o.result.is_ok() && o.saw_eof).then_some(o.end)
}

/// Checks what a reader did with `data[..n]`.
fn check_truncated(who: &str, name: &str, n: usize, full_end: Option<u64>, o: &Outcome) {
    o.assert_stays_finished(&format!("{who} {name}[..{n}]"));
    let complete = full_end.is_some_and(|end| n as u64 >= end);
    if complete {
        // Cut only in the bytes after the checksum: still a whole file.
        assert!(o.result.is_ok() && o.saw_eof, "{who} {name}[..{n}]: whole RDB with a cut tail: {:?}", o.result);
        return;
    }
    assert!(!o.saw_eof, "{who} {name}[..{n}]: EOF record returned from a truncated file");
    let Err(e) = &o.result else {
        panic!("{who} {name}[..{n}]: Ok(None) after {} records without reaching EOF", o.records);
    };
    assert!(o.end <= n as u64, "{who} {name}[..{n}]: a record ends at {} beyond the input", o.end);
    if full_end.is_some() && n >= 9 {
        // A prefix of a valid file: the error is the input ending, found where it ends. (A cut inside the magic is
        // `truncated_header_is_reported_as_truncation`.)
        assert!(e.is_truncated(), "{who} {name}[..{n}]: a cut-off file reported as {e}");
        assert_eq!(e.offset(), Some(n as u64), "{who} {name}[..{n}]: truncation offset: {e}");
    }
}

#[test]
fn truncation_slice_reader() {
    let files = inputs(CORPUS_MAX);
    parallel(&files, |(name, data)| {
        let full = eof_end(data);
        for (i, n) in cut_points(data.len()).into_iter().enumerate() {
            let o = drain_slice(&data[..n], ReadOptions::default(), false);
            check_truncated("slice", name, n, full, &o);
            // Fast mode must agree on where the input ends (sampled).
            if i % 5 == 0 {
                let f = drain_slice(&data[..n], ReadOptions::fast(), false);
                check_truncated("slice/fast", name, n, full, &f);
                if full.is_some() {
                    assert_eq!(f.records, o.records, "slice {name}[..{n}]: fast and deep read different records");
                }
            }
        }
    });
}

#[test]
fn truncation_stream_reader_small_chunks() {
    let files = inputs(CORPUS_MAX);
    parallel(&files, |(name, data)| {
        let full = eof_end(data);
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ data.len() as u64);
        for n in cut_points(data.len()) {
            let seed = rng.next_u64();
            let o = drain_stream(ChunkedReader::new(&data[..n], seed, 64), ReadOptions::default(), false);
            check_truncated("stream", name, n, full, &o);
        }
    });
}

#[test]
fn truncated_header_is_reported_as_truncation() {
    for magic in [&b"REDIS0011"[..], b"REDIS0003", b"VALKEY080"] {
        for n in 0..9 {
            let e = SliceReader::new(&magic[..n]).expect_err("a partial magic is not a header");
            assert!(e.is_truncated(), "{:?}: {e}", String::from_utf8_lossy(&magic[..n]));
            let e = StreamReader::new(&magic[..n]).expect_err("a partial magic is not a header");
            assert!(e.is_truncated(), "stream {:?}: {e}", String::from_utf8_lossy(&magic[..n]));
        }
    }
}

#[test]
fn whole_files_through_small_chunks_match_the_slice_reader() {
    for (name, data) in inputs(usize::MAX) {
        let full = common::walk_slice(&data, ReadOptions::default());
        for (seed, max) in [(1u64, 1usize), (7, 13), (42, 700)] {
            let s = common::walk_stream(ChunkedReader::new(&data, seed, max), ReadOptions::default());
            match (&full, &s) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.recs, b.recs, "{name}: chunks of 1..={max}");
                    assert_eq!(a.checksum, b.checksum, "{name}");
                    assert_eq!(a.trailing, b.trailing, "{name}");
                }
                (Err((ra, ea)), Err((rb, eb))) => {
                    assert_eq!(ra, rb, "{name}: records before the error");
                    assert_eq!(ea.offset(), eb.offset(), "{name}: error offsets: {ea} / {eb}");
                }
                _ => panic!("{name}: readers disagree: {:?} / {:?}", full.is_ok(), s.is_ok()),
            }
            if max == 1 {
                // Byte-at-a-time is slow for the big ones; once is enough.
                if data.len() > 20_000 {
                    break;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Byte flips
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn byte_flips_never_panic() {
    let files: Vec<(String, Vec<u8>)> = inputs(FLIP_MAX).into_iter().filter(|(_, d)| d.len() <= FLIP_MAX).collect();
    let min = if common::corpus_dir().is_some() { 40 } else { 1 };
    assert!(files.len() >= min, "only {} small files", files.len());
    let slowest = std::sync::Mutex::new(Duration::ZERO);
    parallel(&files, |(name, data)| {
        let mut buf = data.clone();
        for i in 0..buf.len() {
            buf[i] ^= 0xFF;
            let t = Instant::now();
            // Deep validation, values decoded; then fast mode (no validation) with values decoded, which is where a
            // decoder meets unchecked blobs; then the stream reader.
            let deep = drain_slice(&buf, ReadOptions::default(), true);
            let _ = drain_slice(&buf, ReadOptions::fast(), true);
            let stream = drain_stream(&buf[..], ReadOptions::default(), false);
            let took = t.elapsed();
            deep.assert_stays_finished(&format!("slice {name} flip at {i}"));
            stream.assert_stays_finished(&format!("stream {name} flip at {i}"));
            // Both readers agree on whether a deep walk succeeds.
            assert_eq!(
                deep.result.is_ok(),
                stream.result.is_ok(),
                "{name}: flip at {i}: slice {:?} / stream {:?}",
                deep.result.as_ref().err().map(ToString::to_string),
                stream.result.as_ref().err().map(ToString::to_string)
            );
            if deep.result.is_ok() {
                assert!(deep.saw_eof, "{name}: flip at {i}: Ok(None) without EOF");
            }
            assert!(took < Duration::from_secs(2), "{name}: flip at {i} took {took:?}");
            let mut s = slowest.lock().unwrap();
            *s = (*s).max(took);
            buf[i] ^= 0xFF;
        }
    });
    eprintln!("slowest flipped parse: {:?}", slowest.into_inner().unwrap());
}

// ---------------------------------------------------------------------------------------------------------------
// Page padding, gzip, checksum
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn page_padding_is_reported_as_zero_trailing() {
    for (rdb, _) in common::fixtures() {
        let name = short(&rdb);
        let mut data = read(&rdb);
        let orig = data.len();
        let padded = (orig / 512 + 1) * 512;
        data.resize(padded, 0);
        let pad = (padded - orig) as u64;
        let s = common::ok_walk(&name, common::walk_slice(&data, ReadOptions::default()));
        let t = s.trailing.expect("trailing after EOF");
        assert_eq!((t.len, t.all_zero), (pad, true), "{name}: slice");
        assert!(matches!(s.checksum, Some(Checksum::Ok(_))), "{name}");
        let st = common::ok_walk(&name, common::walk_stream(ChunkedReader::new(&data, 5, 300), ReadOptions::default()));
        assert_eq!(st.trailing, s.trailing, "{name}: stream");
        assert_eq!(st.recs, s.recs, "{name}: stream records");
        // One non-zero byte in the padding is no longer padding.
        *data.last_mut().unwrap() = 1;
        let s = common::ok_walk(&name, common::walk_slice(&data, ReadOptions::default()));
        assert_eq!(s.trailing.map(|t| (t.len, t.all_zero)), Some((pad, false)), "{name}");
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_input_reads_the_same_records() {
    for (rdb, _) in common::fixtures() {
        let name = short(&rdb);
        let data = read(&rdb);
        let gz = gzip(&data);
        assert_eq!(&gz[..2], [0x1f, 0x8b]);
        let plain = common::ok_walk(&name, common::walk_slice(&data, ReadOptions::default()));
        let r = StreamReader::new(&gz[..]).unwrap();
        assert!(r.is_gzip(), "{name}: gzip not detected");
        assert_eq!(r.header(), plain.header);
        let z = common::ok_walk(&name, common::walk_stream(&gz[..], ReadOptions::default()));
        assert_eq!(z.recs, plain.recs, "{name}: gzip records (offsets are in the decompressed stream)");
        assert_eq!(z.checksum, plain.checksum, "{name}");
        assert_eq!(z.trailing, plain.trailing, "{name}");
        let zc = common::ok_walk(&name, common::walk_stream(ChunkedReader::new(&gz, 3, 37), ReadOptions::fast()));
        assert_eq!(zc.recs, plain.recs, "{name}: gzip through small reads");
        // A plain file is not reported as gzip.
        assert!(!StreamReader::new(&data[..]).unwrap().is_gzip());
        // A cut-off gzip stream is an error, never a silent end. (That the reader then stays finished is
        // `stream_reader_stays_finished_after_an_io_error`.)
        for cut in [gz.len() / 3, gz.len() / 2, gz.len() - 9] {
            let o = drain_stream(&gz[..cut], ReadOptions::default(), false);
            assert!(o.result.is_err() && !o.saw_eof, "{name}: gzip cut at {cut}/{}: {:?}", gz.len(), o.result);
        }
    }
}

/// Hands out `ok` bytes of `data`, then fails every read.
struct FailingReader<'a> {
    data: &'a [u8],
    ok: usize,
    pos: usize,
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.ok {
            return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "source failed"));
        }
        let n = buf.len().min(self.ok - self.pos).min(100);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn stream_reader_stays_finished_after_an_io_error() {
    // `next_record` promises `Ok(None)` after an error; an I/O error of the source is an error too.
    let data = read(&common::testdata_dir().join("redis-7.0-multidb64.rdb"));
    for ok in [100, 1000, data.len() - 4] {
        let o = drain_stream(FailingReader { data: &data, ok, pos: 0 }, ReadOptions::default(), false);
        let e = o.result.as_ref().expect_err("the source failed");
        assert!(matches!(e.kind(), ErrorKind::Io(_)), "{e}");
        assert!(!o.saw_eof);
        o.assert_stays_finished(&format!("failing source after {ok} bytes"));
    }
    // The same through gzip: a cut-off gzip stream.
    let gz = gzip(&data);
    let o = drain_stream(&gz[..gz.len() / 2], ReadOptions::default(), false);
    assert!(o.result.is_err());
    o.assert_stays_finished("gzip cut in half");
}

/// Finds a raw-stored string value of at least 4 bytes and returns the absolute offset of its middle byte.
fn string_value_byte(data: &[u8]) -> Option<usize> {
    let r = SliceReader::new(data).ok()?;
    for rec in r {
        if let RecordKind::Entry(e) = rec.ok()?.kind
            && let Ok(s) = e.value.as_string()
            && let Some(raw) = s.as_raw()
            && raw.len() >= 4
        {
            let off = raw.as_ptr() as usize - data.as_ptr() as usize;
            return Some(off + raw.len() / 2);
        }
    }
    None
}

#[test]
fn checksum_mismatch_is_detected() {
    let mut files: Vec<(String, Vec<u8>)> =
        common::fixtures().into_iter().map(|(p, _)| (short(&p), read(&p))).collect();
    if let Some(c) = common::corpus_dir() {
        for rel in
            ["rdbtools/rdb_version_5_with_checksum.rdb", "hdt3213-rdb/memory.rdb", "rdbtools/non_ascii_values.rdb"]
        {
            files.push((rel.to_string(), read(&c.join(rel))));
        }
    }
    for (name, data) in files {
        assert!(data[5..9].iter().all(u8::is_ascii_digit) || data.starts_with(b"VALKEY"));
        let at = string_value_byte(&data).unwrap_or_else(|| panic!("{name}: no raw string value"));
        let mut bad = data.clone();
        bad[at] ^= 0x01;
        let expected_offset = {
            let w = common::ok_walk(&name, common::walk_slice(&data, ReadOptions::default()));
            w.recs.last().unwrap().offset + 1
        };
        // Default options: the mismatch is an error, from both readers, at the checksum.
        for (who, o) in [
            ("slice", drain_slice(&bad, ReadOptions::default(), false)),
            ("stream", drain_stream(&bad[..], ReadOptions::default(), false)),
            ("stream/chunks", drain_stream(ChunkedReader::new(&bad, 11, 50), ReadOptions::default(), false)),
        ] {
            let e = o.result.as_ref().expect_err("a damaged file must not pass the checksum");
            match e.kind() {
                ErrorKind::ChecksumMismatch { stored, computed } => {
                    assert_ne!(stored, computed, "{name} {who}");
                    let s = u64::from_le_bytes(data[data.len() - 8..].try_into().unwrap());
                    assert_eq!(*stored, s, "{name} {who}: stored checksum");
                }
                other => panic!("{name} {who}: expected a checksum mismatch, got {other}"),
            }
            assert_eq!(e.offset(), Some(expected_offset), "{name} {who}: offset of the checksum");
            assert!(!o.saw_eof, "{name} {who}: EOF returned despite the mismatch");
            o.assert_stays_finished(&format!("{name} {who}"));
        }
        // Verification off: the file reads, with the flipped byte, and the verdict says it was not checked.
        let opts = ReadOptions::default().with_checksum(false);
        let s = common::ok_walk(&name, common::walk_slice(&bad, opts));
        assert_eq!(s.checksum, Some(Checksum::NotChecked), "{name}");
        let t = common::ok_walk(&name, common::walk_stream(&bad[..], opts));
        assert_eq!(t.checksum, Some(Checksum::NotChecked), "{name}");
        assert_eq!(s.recs, t.recs);
        assert!(s.recs.iter().any(|r| {
            let start = r.offset as usize;
            (start..start + r.raw.len()).contains(&at) && r.raw[at - start] == bad[at]
        }));
        // The intact file verifies.
        let ok = common::ok_walk(&name, common::walk_slice(&data, ReadOptions::default()));
        assert!(matches!(ok.checksum, Some(Checksum::Ok(_))), "{name}: {:?}", ok.checksum);
    }
}

#[test]
fn checksum_zero_means_disabled() {
    // A writer with `rdbchecksum no` stores 0: nothing to verify.
    let mut data = read(&common::testdata_dir().join("redis-7.0-multidb64.rdb"));
    let n = data.len();
    data[n - 8..].fill(0);
    let s = common::ok_walk("multidb64 (crc 0)", common::walk_slice(&data, ReadOptions::default()));
    assert_eq!(s.checksum, Some(Checksum::Disabled));
    let t = common::ok_walk("multidb64 (crc 0)", common::walk_stream(&data[..], ReadOptions::default()));
    assert_eq!(t.checksum, Some(Checksum::Disabled));
}

// ---------------------------------------------------------------------------------------------------------------
// Random input
// ---------------------------------------------------------------------------------------------------------------

const MAGICS: [&[u8; 9]; 7] =
    [b"REDIS0003", b"REDIS0006", b"REDIS0009", b"REDIS0010", b"REDIS0011", b"REDIS0012", b"VALKEY080"];

fn check_garbage(data: &[u8]) -> Result<(), TestCaseError> {
    for opts in [ReadOptions::default(), ReadOptions::fast()] {
        let s = drain_slice(data, opts, true);
        prop_assert!(s.result.is_err() || s.saw_eof, "slice: Ok(None) without EOF");
        let t = drain_stream(data, opts, true);
        prop_assert!(t.result.is_err() || t.saw_eof, "stream: Ok(None) without EOF");
        prop_assert!(matches!(s.after_end, Ok(None)), "slice goes on after the end: {:?}", s.after_end);
        prop_assert!(matches!(t.after_end, Ok(None)), "stream goes on after the end: {:?}", t.after_end);
        prop_assert_eq!(s.result.is_ok(), t.result.is_ok(), "readers disagree");
        prop_assert_eq!(s.records, t.records, "readers read different record counts");
        let c = drain_stream(ChunkedReader::new(data, data.len() as u64, 7), opts, false);
        prop_assert_eq!(c.records, t.records, "chunked stream differs");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_after_a_valid_magic_never_panic(
        magic in 0usize..MAGICS.len(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut data = MAGICS[magic].to_vec();
        data.extend_from_slice(&body);
        check_garbage(&data)?;
    }

    #[test]
    fn random_records_after_a_valid_magic_never_panic(
        magic in 0usize..MAGICS.len(),
        // Bias towards bytes that mean something: opcodes, type bytes, small lengths, string encodings.
        body in proptest::collection::vec(
            prop_oneof![
                0u8..32,
                240u8..=255,
                Just(0xC0u8), Just(0xC3u8), Just(0x40u8), Just(0x80u8), Just(0x81u8),
                any::<u8>(),
            ],
            0..400,
        ),
    ) {
        let mut data = MAGICS[magic].to_vec();
        data.extend_from_slice(&body);
        check_garbage(&data)?;
    }

    #[test]
    fn random_damage_to_a_small_fixture_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        // A small real file (many types, several databases) with a few bytes overwritten.
        let mut data = read(&common::testdata_dir().join("redis-7.0-multidb64.rdb"));
        for (at, b) in edits {
            let i = 9 + at % (data.len() - 9);
            data[i] = b;
        }
        check_garbage(&data)?;
    }
}

/// Every byte offset of every input, cheaply: each record is cut at every offset inside it (records over 4 KiB at
/// every offset of their first and last 512 bytes and every 7th byte between) and parsed on its own behind the
/// file's magic and a SELECTDB for the database it belongs to — the same parser state the whole-file reader has at
/// that point. Each cut must be reported as the input ending exactly there, by both readers.
#[test]
fn truncation_inside_every_record() {
    use rdbkit::read::RecordKind;
    let files = inputs(usize::MAX);
    parallel(&files, |(name, data)| {
        let Ok(reader) = SliceReader::new(data) else { return };
        let mut records = Vec::new();
        let mut db = 0u64;
        for rec in reader {
            let Ok(rec) = rec else { return }; // the corrupt file: covered by the whole-file sweeps
            let at_db = db;
            if let RecordKind::SelectDb { db: d } = rec.kind {
                db = d;
            }
            if matches!(rec.kind, RecordKind::Eof { .. }) {
                break;
            }
            records.push((at_db, rec.raw));
        }
        let mut buf = Vec::new();
        for (db, raw) in records {
            buf.clear();
            buf.extend_from_slice(&data[..9]);
            buf.push(0xFE);
            rdbkit::format::length::encode_length(db, &mut buf);
            let base = buf.len();
            buf.extend_from_slice(raw);
            let len = raw.len();
            let cuts: Vec<usize> = if len <= 4096 {
                (0..len).collect()
            } else {
                (0..512).chain((512..len - 512).step_by(7)).chain(len - 512..len).collect()
            };
            for k in cuts {
                let n = base + k;
                let o = drain_slice(&buf[..n], ReadOptions::default(), false);
                let e = o.result.as_ref().err().unwrap_or_else(|| panic!("{name}: record cut at {k}/{len} parsed"));
                assert!(e.is_truncated() && e.offset() == Some(n as u64), "{name}: cut at {k}/{len}: {e}");
                if k % 3 == 0 {
                    let s = drain_stream(ChunkedReader::new(&buf[..n], k as u64, 16), ReadOptions::default(), false);
                    assert!(s.result.as_ref().is_err_and(|e| e.is_truncated()), "{name}: stream cut at {k}/{len}");
                }
            }
        }
    });
}

/// Collects what a sink is given; fails on the `fail_at`-th record.
struct Collect {
    seen: Vec<(u64, usize)>,
    fail_at: Option<usize>,
}

impl rdbkit::transform::RecordSink for Collect {
    fn record(&mut self, rec: &rdbkit::read::Record<'_>) -> rdbkit::Result<()> {
        if self.fail_at == Some(self.seen.len()) {
            return Err(rdbkit::Error::new(ErrorKind::Invalid("sink full".into()), rec.offset));
        }
        self.seen.push((rec.offset, rec.raw.len()));
        Ok(())
    }
    fn finish(&mut self) -> rdbkit::Result<()> {
        Ok(())
    }
}

/// Parsing on a second thread changes nothing the sink sees: the same records in the same order, the same error
/// at the same offset for a truncated file, and a failing sink stops the reader.
#[test]
fn parallel_drive_matches_serial_drive() {
    use rdbkit::transform::{drive, drive_parallel};
    for (name, data) in inputs(CORPUS_MAX) {
        let cuts = [data.len(), data.len() * 2 / 3, data.len() / 3];
        for cut in cuts {
            let slice = &data[..cut];
            let Ok(mut serial_reader) = SliceReader::with_options(slice, ReadOptions::fast()) else { continue };
            let mut serial = Collect { seen: Vec::new(), fail_at: None };
            let serial_result = drive(&mut serial_reader, &mut serial).map_err(|e| e.to_string());
            let mut reader = SliceReader::with_options(slice, ReadOptions::fast()).unwrap();
            let mut par = Collect { seen: Vec::new(), fail_at: None };
            let par_result = drive_parallel(&mut reader, &mut par).map_err(|e| e.to_string());
            assert_eq!(par.seen, serial.seen, "{name} cut at {cut}");
            assert_eq!(par_result, serial_result, "{name} cut at {cut}");
            assert_eq!(reader.checksum(), serial_reader.checksum(), "{name}");
            if serial.seen.len() > 3 {
                let mut failing = Collect { seen: Vec::new(), fail_at: Some(2) };
                let mut reader = SliceReader::with_options(slice, ReadOptions::fast()).unwrap();
                let err = drive_parallel(&mut reader, &mut failing).unwrap_err();
                assert!(err.to_string().contains("sink full"), "{err}");
                assert_eq!(failing.seen.len(), 2);
            }
        }
    }
}
