//! Replays the inputs in `tests/regressions/` that once made a fuzz target panic or hang (see the README there):
//! every one must now make both readers return, with an error or not, and decode every value they yield.

mod common;

use rdbkit::read::{Encoding, Flavor, Header, ReadOptions, RecordKind, SliceReader, StreamReader, Value};
use std::io::Read;

/// Reads `data` in chunks of the given sizes, in turn.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.sizes[self.i % self.sizes.len()].min(buf.len()).min(self.data.len());
        self.i += 1;
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn drain_slice(data: &[u8], opts: ReadOptions) -> usize {
    let Ok(mut r) = SliceReader::with_options(data, opts) else { return 0 };
    let mut n = 0;
    while let Ok(Some(rec)) = r.next_record() {
        if let RecordKind::Entry(e) = rec.kind {
            let _ = e.value.to_owned_value();
        }
        n += 1;
    }
    n
}

fn drain_stream(data: &[u8], sizes: Vec<usize>, opts: ReadOptions) -> usize {
    let Ok(mut r) = StreamReader::with_options(Chunked { data, sizes, i: 0 }, opts) else { return 0 };
    let mut n = 0;
    while let Ok(Some(rec)) = r.next_record() {
        if let RecordKind::Entry(e) = rec.kind {
            let _ = e.value.to_owned_value();
        }
        n += 1;
    }
    n
}

#[test]
fn fuzz_regressions_terminate_without_panicking() {
    let dir = common::manifest_dir().join("tests").join("regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/regressions") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(&path).unwrap();
        let mut built: Vec<u8> = Vec::new();
        let file: &[u8] = if let Some(rest) = name.strip_prefix("stream_reader-").map(|_| &input[..]) {
            // Control byte, then 1-4 chunk-size bytes, then the file.
            let Some((&ctl, rest)) = rest.split_first() else { continue };
            let n = usize::from(ctl & 3) + 1;
            if rest.len() < n {
                continue;
            }
            let (sizes, data) = rest.split_at(n);
            let sizes = sizes
                .iter()
                .map(|&s| if s & 0x80 != 0 { usize::from(s & 0x0f) * 4096 + 4096 } else { usize::from(s) + 1 })
                .collect();
            drain_stream(data, sizes, ReadOptions::default().with_deep(ctl & 4 != 0).with_checksum(ctl & 8 != 0));
            data
        } else if name.starts_with("slice_reader-") {
            &input[..]
        } else if name.starts_with("value_decode-") {
            // Type byte, header selector, value body: replayed as the target does, as one key in a file.
            let [ty, ver, body @ ..] = &input[..] else { continue };
            let header = match ver % 4 {
                0 => Header::new(Flavor::Redis, 12),
                1 => Header::new(Flavor::Redis, 9),
                2 => Header::new(Flavor::Valkey, 80),
                _ => Header::new(Flavor::Redis, 11),
            };
            if let Some(encoding) = Encoding::from_type_byte(*ty, header) {
                let _ = Value { encoding, raw: body }.to_owned_value();
            }
            built.extend_from_slice(&header.magic_bytes());
            built.extend_from_slice(&[0xfe, 0x00, *ty, 0x01, b'k']);
            built.extend_from_slice(body);
            built.push(0xff);
            built.extend_from_slice(&[0; 8]);
            &built[..]
        } else {
            continue;
        };
        for opts in [ReadOptions::default(), ReadOptions::fast()] {
            drain_slice(file, opts);
            drain_stream(file, vec![1, 7, 300, 65536], opts);
        }
        replayed += 1;
    }
    assert!(replayed >= 1, "no regression inputs found in {}", dir.display());
}
