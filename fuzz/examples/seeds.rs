//! Builds the fuzz seed corpora from real RDB files: `seeds OUT_DIR FILE...` writes
//! `OUT_DIR/slice_reader/` (the files as they are), `OUT_DIR/stream_reader/` (each file behind a few
//! chunk-size/option prefixes) and `OUT_DIR/value_decode/` (type byte + version selector + body of every distinct
//! value found in the files). Seeds are named by a hash of their content, so reruns add nothing twice.

use rdbkit::read::{Flavor, RecordKind, SliceReader};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// Seeds larger than this slow the fuzzer down more than they help.
const MAX_SEED: usize = 256 * 1024;

fn write_seed(dir: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if bytes.len() > MAX_SEED {
        return Ok(false);
    }
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let path = dir.join(format!("seed-{:016x}", h.finish()));
    if path.exists() {
        return Ok(false);
    }
    std::fs::write(path, bytes)?;
    Ok(true)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: seeds OUT_DIR FILE..."));
    let dirs = ["slice_reader", "stream_reader", "value_decode"].map(|t| out.join(t));
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let mut counts = [0usize; 3];
    for file in args {
        let data = std::fs::read(&file)?;
        counts[0] += write_seed(&dirs[0], &data)? as usize;
        // Prefixes: ctl byte (bits 0-1: chunk-size count - 1, bit 2 deep, bit 3 checksum) + chunk sizes.
        for prefix in [&[0x0c, 0x00][..], &[0x0d, 0x06, 0x80][..], &[0x07, 0x02, 0x10, 0x7f, 0x8f][..]] {
            let mut seed = prefix.to_vec();
            seed.extend_from_slice(&data);
            counts[1] += write_seed(&dirs[1], &seed)? as usize;
        }
        let Ok(mut r) = SliceReader::new(&data) else { continue };
        let ver = match (r.header().flavor, r.header().version) {
            (Flavor::Valkey, _) => 2,
            (_, 12) => 0,
            (_, 11) => 3,
            _ => 1,
        };
        while let Ok(Some(rec)) = r.next_record() {
            if let RecordKind::Entry(e) = rec.kind {
                let mut seed = vec![e.value.encoding.type_byte(), ver];
                seed.extend_from_slice(e.value.raw);
                counts[2] += write_seed(&dirs[2], &seed)? as usize;
            }
        }
    }
    println!("seeds: {} slice_reader, {} stream_reader, {} value_decode (new)", counts[0], counts[1], counts[2]);
    Ok(())
}
