//! Checksums: the CRC-64 of RDB footers and DUMP payloads (RDB-FORMAT.md §1.2) and the CRC-16 of cluster hash
//! slots (§7).
//!
//! The CRC-64 is Redis's "Jones" variant (reflected, polynomial 0xAD93D23594C935A9, init 0, xorout 0), computed
//! with `crc-fast`'s SIMD implementation (`CrcAlgorithm::Crc64Redis`). Because init and xorout are both 0, the
//! running register *is* the checksum, so a computation can be continued from any previous value.

use crc_fast::{CrcAlgorithm, Digest};

/// Redis's `crc64(init, data)`: continues the CRC-64/Jones computation from `init` (0 for a fresh one) over `data`.
///
/// `crc64(crc64(0, a), b) == crc64(0, ab)`; the check value of `b"123456789"` from 0 is `0xe9c6d914c4b8d9ca`.
pub fn crc64(init: u64, data: &[u8]) -> u64 {
    let mut d = Digest::new_with_init_state(CrcAlgorithm::Crc64Redis, init);
    d.update(data);
    d.finalize()
}

/// A streaming CRC-64/Jones digest (the RDB footer checksum).
#[derive(Clone, Copy, Debug)]
pub struct Crc64 {
    digest: Digest,
}

impl Crc64 {
    /// A digest of no bytes (value 0).
    pub fn new() -> Self {
        Crc64 { digest: Digest::new(CrcAlgorithm::Crc64Redis) }
    }

    /// Feeds `data`.
    #[inline]
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// The CRC-64 of everything fed so far; does not consume or reset the digest.
    #[inline]
    pub fn value(&self) -> u64 {
        self.digest.finalize()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

/// A CRC-64 variant that [`patched_checksum`] can correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Crc64Kind {
    /// Redis's CRC-64/Jones (init 0, xorout 0): the RDB footer.
    Redis,
    /// CRC-64/XZ (init and xorout all ones): what `xz` and the manifests use.
    Xz,
}

impl Crc64Kind {
    fn algorithm(self) -> CrcAlgorithm {
        match self {
            Crc64Kind::Redis => CrcAlgorithm::Crc64Redis,
            Crc64Kind::Xz => CrcAlgorithm::Crc64Xz,
        }
    }

    fn xorout(self) -> u64 {
        match self {
            Crc64Kind::Redis => 0,
            Crc64Kind::Xz => u64::MAX,
        }
    }

    /// The register after feeding `data` to a register holding `state`.
    fn advance(self, state: u64, data: &[u8]) -> u64 {
        let mut d = Digest::new_with_init_state(self.algorithm(), state);
        d.update(data);
        d.finalize() ^ self.xorout()
    }

    /// The register after feeding `n` zero bytes to a register holding `state`.
    fn advance_zeros(self, mut state: u64, mut n: u64) -> u64 {
        // Both variants have init == xorout, so crc-fast's combine(x, 0, n) is exactly "feed n zero bytes"; its
        // matrix method costs about as much as feeding a MiB of zeros, so short gaps are fed directly.
        const ZEROS: [u8; 4096] = [0; 4096];
        if n >= 1 << 20 {
            return crc_fast::checksum_combine(self.algorithm(), state, 0, n);
        }
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            state = self.advance(state, &ZEROS[..k]);
            n -= k as u64;
        }
        state
    }
}

/// The checksum of a message of `len` bytes whose checksum was `checksum`, after some of its bytes were
/// overwritten: `patches` holds (offset, old XOR new) for each overwritten range, ranges not overlapping.
///
/// A CRC is affine in the message, so two messages of the same length differ in CRC by the raw CRC (zero init,
/// no final xor) of their XOR; that difference is zero outside the patches and is computed in time linear in the
/// span of the patches (not the message), which is what lets a writer fill in placeholders after streaming a
/// whole file out.
pub fn patched_checksum(kind: Crc64Kind, checksum: u64, len: u64, patches: &mut [(u64, Vec<u8>)]) -> u64 {
    patches.sort_unstable_by_key(|p| p.0);
    let Some(first) = patches.first() else {
        return checksum;
    };
    // The raw CRC of the difference; its leading zero bytes leave a zero register unchanged.
    let (mut delta, mut pos) = (0u64, first.0);
    for (at, diff) in patches.iter() {
        debug_assert!(*at >= pos, "patches overlap");
        delta = kind.advance_zeros(delta, at.saturating_sub(pos));
        delta = kind.advance(delta, diff);
        pos = at + diff.len() as u64;
    }
    delta = kind.advance_zeros(delta, len.saturating_sub(pos));
    checksum ^ delta
}

/// Lookup tables for CRC-16/XMODEM, sliced by 8: `CRC16_TABLES[k][b]` is the CRC of byte `b` followed by `k`
/// zero bytes, so eight input bytes fold into the CRC with eight independent lookups instead of a chain of eight
/// (routing a key to its hash slot is the hottest step of a cluster split).
const CRC16_TABLES: [[u16; 256]; 8] = {
    let mut tables = [[0u16; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev << 8) ^ tables[0][(prev >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
};

/// CRC-16/XMODEM (polynomial 0x1021, init 0, no reflection, xorout 0), as Redis's `crc16.c`.
/// `crc16_xmodem(b"123456789") == 0x31C3`.
pub fn crc16_xmodem(data: &[u8]) -> u16 {
    let t = &CRC16_TABLES;
    let mut crc = 0u16;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let (b0, b1) = (c[0] ^ (crc >> 8) as u8, c[1] ^ crc as u8);
        crc = t[7][usize::from(b0)]
            ^ t[6][usize::from(b1)]
            ^ t[5][usize::from(c[2])]
            ^ t[4][usize::from(c[3])]
            ^ t[3][usize::from(c[4])]
            ^ t[2][usize::from(c[5])]
            ^ t[1][usize::from(c[6])]
            ^ t[0][usize::from(c[7])];
    }
    chunks.remainder().iter().fold(crc, |crc, &b| (crc << 8) ^ t[0][usize::from((crc >> 8) as u8 ^ b)])
}

/// The index of the first `needle` in `hay`, eight bytes at a time (most keys have no `{`, so the whole key is
/// searched).
#[inline]
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().unwrap_or_default()) ^ pattern;
        // A zero byte of x is a match; this flags the lowest one exactly (higher flags may be false positives).
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| base + i)
}

/// The Redis Cluster hash slot (0..16384) of `key`, with the hash-tag rule of `keyHashSlot`: if the key has a `{`
/// and a `}` somewhere after the first `{`, with at least one byte between them, only the bytes between the first
/// `{` and the first `}` after it are hashed; otherwise the whole key is.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    let hashed = match find_byte(key, b'{') {
        Some(open) => match find_byte(&key[open + 1..], b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16_xmodem(hashed) & 0x3FFF
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc64_check_values() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
        assert_eq!(crc64(0, b""), 0);
        assert_eq!(crc64(0x1234, b""), 0x1234);
        assert_eq!(crc64(crc64(0, b"1234"), b"56789"), 0xe9c6d914c4b8d9ca);
        let mut d = Crc64::new();
        assert_eq!(d.value(), 0);
        d.update(b"12345");
        d.update(b"");
        d.update(b"6789");
        assert_eq!(d.value(), 0xe9c6d914c4b8d9ca);
        assert_eq!(d.value(), 0xe9c6d914c4b8d9ca);
        assert_eq!(Crc64::default().value(), 0);
    }

    #[test]
    fn crc16_check_values() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(crc16_xmodem(b""), 0);
    }

    #[test]
    fn hash_slots() {
        let cases: [(&[u8], u16); 7] = [
            (b"foo", 12182),
            (b"123456789", 12739),
            (b"{user1000}.following", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"", 0),
        ];
        for (key, slot) in cases {
            assert_eq!(key_hash_slot(key), slot, "{}", String::from_utf8_lossy(key));
        }
        assert_eq!(key_hash_slot(b"{user1000}.following"), key_hash_slot(b"user1000"));
        assert_eq!(key_hash_slot(b"foo{{bar}}zap"), key_hash_slot(b"{bar"));
        assert_eq!(key_hash_slot(b"{"), crc16_xmodem(b"{") & 0x3FFF);
        assert_eq!(key_hash_slot(b"}{"), crc16_xmodem(b"}{") & 0x3FFF);
    }

    fn bitwise_crc16(data: &[u8]) -> u16 {
        let mut crc = 0u16;
        for &b in data {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc
    }

    fn xz(data: &[u8]) -> u64 {
        crc_fast::checksum(CrcAlgorithm::Crc64Xz, data)
    }

    /// Overwrites `data` at the given places and checks the corrected checksums against recomputed ones.
    fn check_patches(data: &mut [u8], edits: &[(usize, Vec<u8>)]) {
        let (before_redis, before_xz) = (crc64(0, data), xz(data));
        let mut diffs = Vec::new();
        for (at, new) in edits {
            let diff: Vec<u8> = data[*at..*at + new.len()].iter().zip(new).map(|(a, b)| a ^ b).collect();
            data[*at..*at + new.len()].copy_from_slice(new);
            diffs.push((*at as u64, diff));
        }
        let len = data.len() as u64;
        assert_eq!(patched_checksum(Crc64Kind::Redis, before_redis, len, &mut diffs.clone()), crc64(0, data));
        assert_eq!(patched_checksum(Crc64Kind::Xz, before_xz, len, &mut diffs), xz(data));
    }

    #[test]
    fn patches_far_apart_use_the_combine_path() {
        let mut data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        check_patches(&mut data, &[(10, vec![1, 2, 3]), (2_500_000, vec![9; 20]), (100, vec![0xFF; 9])]);
        check_patches(&mut data, &[]);
    }

    proptest! {
        #[test]
        fn patched_checksums_match_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 1..20_000),
            edits in proptest::collection::vec((any::<usize>(), proptest::collection::vec(any::<u8>(), 1..24)), 0..6),
        ) {
            // Place the edits in disjoint, increasing windows of the message.
            let window = data.len() / edits.len().max(1);
            let mut placed = Vec::new();
            for (k, (at, new)) in edits.into_iter().enumerate() {
                let n = new.len().min(window);
                if n == 0 {
                    continue;
                }
                let start = k * window + at % (window - n + 1);
                placed.push((start, new[..n].to_vec()));
            }
            placed.reverse(); // order given does not matter
            check_patches(&mut data, &placed);
        }

        #[test]
        fn crc64_matches_crc64_crate(data in proptest::collection::vec(any::<u8>(), 0..5000), init in any::<u64>()) {
            prop_assert_eq!(crc64(0, &data), crc64::crc64(0, &data));
            prop_assert_eq!(crc64(init, &data), crc64::crc64(init, &data));
        }

        #[test]
        fn crc64_chunked(data in proptest::collection::vec(any::<u8>(), 0..5000),
                         mut cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            for c in cuts.iter_mut() {
                *c %= data.len() + 1;
            }
            cuts.sort_unstable();
            let mut d = Crc64::new();
            let mut running = 0u64;
            let mut prev = 0;
            for &c in cuts.iter().chain(std::iter::once(&data.len())) {
                d.update(&data[prev..c]);
                running = crc64(running, &data[prev..c]);
                prop_assert_eq!(d.value(), crc64::crc64(0, &data[..c]));
                prev = c;
            }
            prop_assert_eq!(d.value(), crc64::crc64(0, &data));
            prop_assert_eq!(running, d.value());
        }

        #[test]
        fn find_byte_matches_position(hay in proptest::collection::vec(prop_oneof![Just(b'{'), Just(0x7au8), Just(0xFBu8), any::<u8>()], 0..40)) {
            prop_assert_eq!(find_byte(&hay, b'{'), hay.iter().position(|&b| b == b'{'));
        }

        #[test]
        fn crc16_matches_bitwise(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(crc16_xmodem(&data), bitwise_crc16(&data));
            prop_assert!(key_hash_slot(&data) < 16384);
        }
    }
}
