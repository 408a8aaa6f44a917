//! Measures how fast rdbkit reads one file: `throughput FILE MODE [--seconds S]`.
//!
//! Modes:
//! - `full`: memory-mapped [`SliceReader`], default options (deep validation, checksum), `to_owned_value` on every
//!   entry;
//! - `full-iter`: memory-mapped, default options, every element / field / score of every value visited through the
//!   lazy iterators (`elements()`, `zset_entries()`, `hash_fields()`, stream entries), strings decoded into a reused
//!   buffer — a full decode without building owned values;
//! - `verify`: memory-mapped, default options, walk only (what a `check` does);
//! - `keys`: memory-mapped, `ReadOptions::fast()` (checksum on), reads key, expiry and type of every entry;
//! - `keys-nocrc`: as `keys` without the checksum;
//! - `stream`: [`StreamReader`] over a `BufReader<File>`, default options, `to_owned_value` on every entry;
//! - `stream-iter`: as `stream`, visiting values as `full-iter` does;
//! - `stream-verify`: as `stream`, walk only (deep validation + checksum).
//!
//! Prints one line: `mode=… bytes=… secs=… mb_s=… keys=…` (MB = 10^6 bytes; `secs` is the best pass). With
//! `--seconds S` it repeats the pass until S seconds have gone by (for `perf record`). Used by `scripts/compare.sh`.

use rdbkit::read::{ReadOptions, RecordKind, SliceReader, StreamReader};
use std::hint::black_box;
use std::io::BufReader;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "../benches/common/visit.rs"]
mod visit;
use visit::{Visit, visit_all};

fn walk_slice(data: &[u8], opts: ReadOptions, visit: Visit) -> rdbkit::Result<u64> {
    let mut r = SliceReader::with_options(data, opts)?;
    let (mut keys, mut acc) = (0u64, 0u64);
    let mut buf = Vec::new();
    while let Some(rec) = r.next_record()? {
        if let RecordKind::Entry(e) = rec.kind {
            keys += 1;
            match visit {
                Visit::Owned => {
                    black_box(e.value.to_owned_value()?);
                }
                Visit::Iter => acc = acc.wrapping_add(visit_all(&e.value, &mut buf)?),
                Visit::Walk => {
                    acc = acc.wrapping_add(e.key.logical_len());
                    acc = acc.wrapping_add(e.expiry.map_or(0, |x| x.as_millis() as u64));
                    acc = acc.wrapping_add(u64::from(e.value.encoding.type_byte()));
                }
            }
        }
    }
    black_box(acc);
    Ok(keys)
}

/// Returns the number of keys and the reader's largest buffer.
fn walk_stream(path: &str, visit: Visit) -> rdbkit::Result<(u64, usize)> {
    let f = std::fs::File::open(path)?;
    let mut r = StreamReader::new(BufReader::with_capacity(1 << 16, f))?;
    let (mut keys, mut buf, mut acc) = (0u64, 0usize, 0u64);
    let mut scratch = Vec::new();
    while let Some(rec) = r.next_record()? {
        if let RecordKind::Entry(e) = rec.kind {
            keys += 1;
            match visit {
                Visit::Owned => {
                    black_box(e.value.to_owned_value()?);
                }
                Visit::Iter => acc = acc.wrapping_add(visit_all(&e.value, &mut scratch)?),
                Visit::Walk => acc = acc.wrapping_add(e.key.logical_len()),
            }
        }
        buf = buf.max(r.buffer_capacity());
    }
    black_box(acc);
    Ok((keys, buf))
}

const MODES: &str = "full|full-iter|verify|keys|keys-nocrc|stream|stream-iter|stream-verify";

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, mode, seconds) = match args.as_slice() {
        [p, m] => (p, m.as_str(), 0.0),
        [p, m, flag, s] if flag == "--seconds" => (p, m.as_str(), s.parse::<f64>()?),
        _ => return Err(format!("usage: throughput FILE {MODES} [--seconds S]").into()),
    };
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let streaming = mode.starts_with("stream");
    // Not mapped in the `stream*` modes, so their peak RSS is the reader's own.
    let map = if streaming {
        None
    } else {
        // SAFETY: the file is not modified while this process maps it (a concurrent truncation would raise SIGBUS).
        Some(unsafe { memmap2::Mmap::map(&file) }?)
    };
    let data: &[u8] = map.as_deref().unwrap_or_default();
    let deadline = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut extra = String::new();
    let keys = loop {
        let t = Instant::now();
        let keys = match mode {
            "full" => walk_slice(data, ReadOptions::default(), Visit::Owned)?,
            "full-iter" => walk_slice(data, ReadOptions::default(), Visit::Iter)?,
            "verify" => walk_slice(data, ReadOptions::default(), Visit::Walk)?,
            "keys" => walk_slice(data, ReadOptions::fast(), Visit::Walk)?,
            "keys-nocrc" => walk_slice(data, ReadOptions::fast().with_checksum(false), Visit::Walk)?,
            "stream" | "stream-iter" | "stream-verify" => {
                let visit = match mode {
                    "stream" => Visit::Owned,
                    "stream-iter" => Visit::Iter,
                    _ => Visit::Walk,
                };
                let (k, buf) = walk_stream(path, visit)?;
                extra = format!(" max_buffer={buf}");
                k
            }
            other => return Err(format!("unknown mode {other:?}; modes: {MODES}").into()),
        };
        best = best.min(t.elapsed());
        if start.elapsed() >= deadline {
            break keys;
        }
    };
    let secs = best.as_secs_f64();
    println!("mode={mode} bytes={len} secs={secs:.4} mb_s={:.1} keys={keys}{extra}", len as f64 / secs / 1e6);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throughput: {e}");
            ExitCode::FAILURE
        }
    }
}
