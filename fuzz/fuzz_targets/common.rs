//! Shared helpers of the fuzz targets: drain a reader, decode everything a record holds, and summarize the walk
//! so two readers over the same bytes can be compared.

#![allow(dead_code)]

use rdbkit::read::{Record, RecordKind, SliceReader, StreamReader};
use std::io::Read;

/// What a reader did with an input: the (offset, raw length) of every record, and whether it ended cleanly.
#[derive(Debug, PartialEq, Eq)]
pub struct Walk {
    pub records: Vec<(u64, usize)>,
    pub ok: bool,
}

/// Decodes every string and value a record holds. Errors are fine after a fast walk, but a record that passed
/// deep validation must decode (`rdbkit verify` relies on it); panics are never fine.
pub fn decode_record(rec: &Record<'_>, deep: bool) {
    match rec.kind {
        RecordKind::Entry(e) => {
            let key = e.key.decode();
            let value = e.value.to_owned_value();
            if deep {
                assert!(key.is_ok(), "deep-validated key fails to decode: {key:?}");
                assert!(value.is_ok(), "deep-validated value fails to decode: {:?}", value.err());
            }
        }
        RecordKind::Aux { key, value } => {
            let _ = key.decode();
            let _ = value.decode();
        }
        RecordKind::Function { code } => {
            let _ = code.decode();
        }
        RecordKind::ModuleAux(m) => {
            let _ = m.name();
        }
        _ => {}
    }
}

/// Drains a [`SliceReader`], decoding every record.
pub fn drain_slice(data: &[u8], opts: rdbkit::read::ReadOptions) -> Option<Walk> {
    let mut r = SliceReader::with_options(data, opts).ok()?;
    let mut records = Vec::new();
    let ok = loop {
        match r.next_record() {
            Ok(Some(rec)) => {
                assert_eq!(rec.raw.len() as u64 + rec.offset, r.position(), "record span and position disagree");
                records.push((rec.offset, rec.raw.len()));
                decode_record(&rec, opts.deep);
            }
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    // After the end (or an error) the reader must stay finished.
    assert!(matches!(r.next_record(), Ok(None)));
    Some(Walk { records, ok })
}

/// Drains a [`StreamReader`] over `src`, decoding every record.
pub fn drain_stream<R: Read>(src: R, opts: rdbkit::read::ReadOptions) -> Option<Walk> {
    let mut r = StreamReader::with_options(src, opts).ok()?;
    let mut records = Vec::new();
    let ok = loop {
        match r.next_record() {
            Ok(Some(rec)) => {
                records.push((rec.offset, rec.raw.len()));
                decode_record(&rec, opts.deep);
            }
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    assert!(matches!(r.next_record(), Ok(None)));
    Some(Walk { records, ok })
}

/// A reader that hands out the input in chunks whose sizes cycle through `sizes` (each at least 1).
pub struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl<'a> Chunked<'a> {
    pub fn new(data: &'a [u8], sizes: Vec<usize>) -> Self {
        Chunked { data, sizes, i: 0 }
    }
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()].max(1);
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
