//! LZF decompression in bounded memory: the output of one compressed string handed out in pieces, with only the
//! last 8 KiB (the longest back-reference distance) kept, so a string declaring 1 GB never needs 1 GB.
//!
//! [`decompress_chunks`] applies the checks of [`super::lzf::decompress_into`] (the same errors, at the same
//! offsets): input that runs out, back-references before the start of the output, output past or short of the
//! declared length, input left over.

use crate::error::{Error, ErrorKind, Result};

/// Longest back-reference distance.
const WINDOW: usize = 1 << 13;
/// Output handed out per call (at most).
const PIECE: usize = 64 << 10;
/// Longest output of one instruction (a back-reference of 7 + 255 + 2 bytes).
const MAX_INSTR: usize = 264;

fn lzf_err(what: &'static str, offset: usize) -> Error {
    Error::new(ErrorKind::Lzf(what), offset as u64)
}

/// Decompresses `input`, which must produce exactly `out_len` bytes, calling `f` with consecutive pieces of the
/// output (each at most 72 KiB, none empty). Memory: one buffer of 72 KiB whatever `out_len`. On error, `f` may
/// already have seen a prefix of the output.
pub fn decompress_chunks(input: &[u8], out_len: u64, mut f: impl FnMut(&[u8])) -> Result<()> {
    let in_len = input.len();
    let mut buf = vec![0u8; WINDOW + PIECE];
    let cap = buf.len();
    // Bytes of the output before buf[0]; `op` is the write position in `buf`, `shown` what `f` has seen.
    let mut base: u64 = 0;
    let mut op = 0usize;
    let mut shown = 0usize;
    let mut ip = 0usize;
    while ip < in_len {
        if cap - op < MAX_INSTR {
            f(&buf[shown..op]);
            let keep_from = op - WINDOW;
            buf.copy_within(keep_from..op, 0);
            base += keep_from as u64;
            op = WINDOW;
            shown = WINDOW;
        }
        let at = ip;
        let ctrl = usize::from(input[ip]);
        ip += 1;
        let produced = base + op as u64;
        if ctrl < 32 {
            let n = ctrl + 1;
            if out_len - produced < n as u64 {
                return Err(overflow(at, produced == out_len));
            }
            if in_len - ip < n {
                return Err(lzf_err("literal run extends past the end of the compressed data", at));
            }
            buf[op..op + n].copy_from_slice(&input[ip..ip + n]);
            ip += n;
            op += n;
        } else {
            let mut len = ctrl >> 5;
            if ip >= in_len {
                return Err(lzf_err("back-reference truncated at the end of the compressed data", at));
            }
            if len == 7 {
                len += usize::from(input[ip]);
                ip += 1;
                if ip >= in_len {
                    return Err(lzf_err("back-reference truncated at the end of the compressed data", at));
                }
            }
            let off = ((ctrl & 0x1f) << 8) + usize::from(input[ip]) + 1;
            ip += 1;
            let n = len + 2;
            if out_len - produced < n as u64 {
                return Err(overflow(at, produced == out_len));
            }
            if off as u64 > produced {
                return Err(lzf_err("back-reference points before the start of the output", at));
            }
            // off <= WINDOW <= op once anything was shifted out, and off <= op before.
            let r = op - off;
            if off >= n {
                buf.copy_within(r..r + n, op);
            } else if off == 1 {
                let b = buf[r];
                buf[op..op + n].fill(b);
            } else {
                let mut done = 0;
                while done < n {
                    let k = (off + done).min(n - done);
                    buf.copy_within(r..r + k, op + done);
                    done += k;
                }
            }
            op += n;
        }
    }
    if base + op as u64 != out_len {
        return Err(lzf_err("compressed data ends before the declared uncompressed length", in_len));
    }
    if op > shown {
        f(&buf[shown..op]);
    }
    Ok(())
}

fn overflow(at: usize, full: bool) -> Error {
    if full {
        lzf_err("compressed data continues after the declared uncompressed length was reached", at)
    } else {
        lzf_err("instruction writes past the declared uncompressed length", at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lzf::{Compressor, decompress_into};
    use proptest::prelude::*;

    fn chunks(input: &[u8], len: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        decompress_chunks(input, len, |p| {
            assert!(!p.is_empty() && p.len() <= WINDOW + PIECE);
            out.extend_from_slice(p)
        })?;
        Ok(out)
    }

    /// `len` (> 0) bytes of one repeated byte: a literal, then back-references of distance 1 (88x).
    fn run(len: usize) -> Vec<u8> {
        let mut c = vec![0, b'a'];
        let mut left = len - 1;
        while left > 0 {
            let n = left.min(MAX_INSTR);
            if n < 3 {
                c.push((n - 1) as u8);
                c.extend_from_slice(&vec![b'a'; n]);
            } else if n - 2 < 7 {
                c.extend_from_slice(&[((n - 2) << 5) as u8, 0]);
            } else {
                c.extend_from_slice(&[0xE0, (n - 2 - 7) as u8, 0]);
            }
            left -= n;
        }
        c
    }

    #[test]
    fn long_runs_and_errors() {
        let c = run(1_000_000);
        assert_eq!(chunks(&c, 1_000_000).unwrap(), vec![b'a'; 1_000_000]);
        let mut whole = Vec::new();
        decompress_into(&c, 1_000_000, &mut whole).unwrap();
        for bad_len in [999_999u64, 1_000_001, 0] {
            let a = chunks(&c, bad_len).unwrap_err();
            let b = decompress_into(&c, bad_len as usize, &mut Vec::new()).unwrap_err();
            assert_eq!((a.offset(), a.to_string()), (b.offset(), b.to_string()), "{bad_len}");
        }
        assert!(chunks(&[0x20, 0], 3).is_err(), "reference before the start");
        assert!(chunks(&[5, 1], 6).is_err(), "literal past the input");
        assert!(chunks(&[0xE0], 9).is_err(), "truncated reference");
        assert_eq!(chunks(&[], 0).unwrap(), b"");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn same_as_whole_decompression(seed in any::<u64>(), len in 1usize..150_000) {
            // Runs and noise, so that the output has long and short back-references across piece boundaries.
            let mut x = seed | 1;
            let data: Vec<u8> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if (i / 3000) % 2 == 0 { b'x' } else { (x % 7) as u8 }
                })
                .collect();
            let mut c = Vec::new();
            if Compressor::new().compress(&data, &mut c, data.len() * 2) {
                prop_assert_eq!(chunks(&c, data.len() as u64).unwrap(), data);
            }
        }

        #[test]
        fn same_verdict_on_garbage(input in proptest::collection::vec(any::<u8>(), 0..300), len in 0u64..2000) {
            let a = chunks(&input, len);
            let b = decompress_into(&input, len as usize, &mut Vec::new());
            match (a, b) {
                (Ok(x), Ok(())) => {
                    let mut y = Vec::new();
                    decompress_into(&input, len as usize, &mut y).unwrap();
                    prop_assert_eq!(x, y);
                }
                (Err(x), Err(y)) => prop_assert_eq!((x.offset(), x.to_string()), (y.offset(), y.to_string())),
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a.map(|v| v.len()), b),
            }
        }
    }
}
