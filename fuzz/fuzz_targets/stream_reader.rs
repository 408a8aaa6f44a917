//! Fuzz target: [`rdbkit::read::StreamReader`] over a reader that returns small chunks of varying sizes (chosen by
//! the first input bytes), draining and decoding every record; compared with [`rdbkit::read::SliceReader`] on the
//! same bytes, which must find the same records and the same outcome.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use rdbkit::read::ReadOptions;

fuzz_target!(|input: &[u8]| {
    // Byte 0: bits 0-1 = how many chunk-size bytes follow (1..=4), bit 2 = deep, bit 3 = verify checksum.
    let Some((&ctl, rest)) = input.split_first() else { return };
    let n = usize::from(ctl & 3) + 1;
    if rest.len() < n {
        return;
    }
    let (sizes, data) = rest.split_at(n);
    // Chunk sizes 1..=256, or 4 KiB..=64 KiB when the byte's top bit is set.
    let sizes: Vec<usize> = sizes
        .iter()
        .map(|&s| if s & 0x80 != 0 { usize::from(s & 0x0f) * 4096 + 4096 } else { usize::from(s) + 1 })
        .collect();
    let opts = ReadOptions::default().with_deep(ctl & 4 != 0).with_checksum(ctl & 8 != 0);
    let streamed = common::drain_stream(common::Chunked::new(data, sizes), opts);
    // gzip input is decompressed by the stream reader only; the slice reader sees the compressed bytes.
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let sliced = common::drain_slice(data, opts);
    assert_eq!(streamed.is_some(), sliced.is_some(), "readers disagree on the header");
    if let (Some(s), Some(l)) = (streamed, sliced) {
        assert_eq!(s, l, "stream and slice readers disagree");
    }
});
