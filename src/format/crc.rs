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

/// Lookup table for CRC-16/XMODEM (polynomial 0x1021, MSB first).
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-16/XMODEM (polynomial 0x1021, init 0, no reflection, xorout 0), as Redis's `crc16.c`.
/// `crc16_xmodem(b"123456789") == 0x31C3`.
pub fn crc16_xmodem(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)])
}

/// The Redis Cluster hash slot (0..16384) of `key`, with the hash-tag rule of `keyHashSlot`: if the key has a `{`
/// and a `}` somewhere after the first `{`, with at least one byte between them, only the bytes between the first
/// `{` and the first `}` after it are hashed; otherwise the whole key is.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
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

    proptest! {
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
        fn crc16_matches_bitwise(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(crc16_xmodem(&data), bitwise_crc16(&data));
            prop_assert!(key_hash_slot(&data) < 16384);
        }
    }
}
