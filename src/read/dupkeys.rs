//! The duplicate-key check of deep validation: Redis 7.0/8.2 and Valkey 9.1 abort with "Duplicated key found in
//! RDB file" when one database holds the same key twice (unless one copy is skipped on load: expired, when the
//! server is a master, or an empty collection).
//!
//! State per key is one 64-bit hash of (database, key) in an open-addressing table (linear probing, at most 3/4
//! full, doubled when it gets there): **8 bytes per slot, 10.7–21.3 bytes per key** depending on where the table
//! is in its growth cycle (a fresh doubling is 3/8 full). A hash that is already present is confirmed exactly:
//!
//! - [`SliceReader`](super::SliceReader) walks the file again from the start up to the current record and
//!   compares the keys themselves (so a reported duplicate is certain, and a hash collision between different
//!   keys costs one walk and is then ignored). The hash is seeded per reader, so a file cannot be built to
//!   collide on purpose.
//! - [`StreamReader`](super::StreamReader) cannot go back, so it keeps a second, independent 64-bit hash per key
//!   (16 bytes per slot, 21.3–42.7 bytes per key) and reports a duplicate only when both match: for a file of
//!   `n` distinct keys, the chance of a false report is below n²/2¹²⁹ (under 10⁻²⁰ for 10⁹ keys).
//!
//! Only keys the server keeps (not expired at the time the reader was made, not an empty collection) enter the
//! table; a skipped copy that repeats a kept key is a [`WarningKind::DuplicateKeySkipped`] warning (confirmed
//! the same way; on a slice, only the first few are confirmed, so repeated skipped copies cannot make the check
//! quadratic).
//!
//! [`WarningKind::DuplicateKeySkipped`]: super::WarningKind::DuplicateKeySkipped

use super::{Entry, Expiry};
use crate::format::string::RdbStr;

/// Open-addressing table of key hashes (0 marks an empty slot; a hash of 0 is stored as 1).
#[derive(Debug)]
pub(crate) struct KeyTable {
    slots: Vec<u64>,
    /// Second hash per slot (stream readers only; empty otherwise).
    second: Vec<u64>,
    len: usize,
    seed: u64,
    exact_pairs: bool,
}

/// What [`KeyTable::probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The hash (pair) is new.
    New,
    /// The hash (pair) is already in the table.
    Seen,
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xD6E8_FEB8_6659_FD93;
const K3: u64 = 0xA076_1D64_78BD_642F;

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A seeded hash of (db, key): 8-byte words folded through 64×64→128-bit multiplies.
#[inline]
fn hash_key(seed: u64, k: u64, db: u64, key: &[u8]) -> u64 {
    let mut h = fold_mul(seed ^ key.len() as u64 ^ K3, k ^ db.rotate_left(17));
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = fold_mul(h ^ u64::from_le_bytes(w), k);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fold_mul(h ^ u64::from_le_bytes(w) ^ K1, k);
    }
    fold_mul(h ^ seed, K2 ^ k)
}

impl KeyTable {
    /// An empty table; `exact_pairs` keeps a second hash per key (for readers that cannot re-read the input).
    pub(crate) fn new(exact_pairs: bool) -> Self {
        use std::hash::{BuildHasher, Hasher};
        // A per-process random seed (std's SipHash keys are random), so hashes cannot be predicted from a file.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5EED);
        KeyTable { slots: Vec::new(), second: Vec::new(), len: 0, seed: h.finish(), exact_pairs }
    }

    /// Number of keys in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held by the table.
    pub(crate) fn memory(&self) -> usize {
        (self.slots.capacity() + self.second.capacity()) * 8
    }

    fn hashes(&self, db: u64, key: &[u8]) -> (u64, u64) {
        let h1 = hash_key(self.seed, K1, db, key).max(1);
        let h2 = if self.exact_pairs { hash_key(self.seed.rotate_left(32), K2 ^ K3, db, key) } else { 0 };
        (h1, h2)
    }

    fn grow(&mut self) -> crate::Result<()> {
        let cap = (self.slots.len() * 2).max(1024);
        let mut slots = Vec::new();
        let mut second = Vec::new();
        let oom = |_| {
            crate::Error::without_offset(crate::ErrorKind::Invalid("out of memory for the duplicate-key check".into()))
        };
        slots.try_reserve_exact(cap).map_err(oom)?;
        slots.resize(cap, 0);
        if self.exact_pairs {
            second.try_reserve_exact(cap).map_err(oom)?;
            second.resize(cap, 0);
        }
        let old = std::mem::replace(&mut self.slots, slots);
        let old2 = std::mem::replace(&mut self.second, second);
        let mask = cap - 1;
        for (i, &h) in old.iter().enumerate() {
            if h == 0 {
                continue;
            }
            let mut at = (h as usize) & mask;
            while self.slots[at] != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = h;
            if self.exact_pairs {
                self.second[at] = old2[i];
            }
        }
        Ok(())
    }

    /// Looks (db, key) up, and with `insert` adds it when new.
    pub(crate) fn probe(&mut self, db: u64, key: &[u8], insert: bool) -> crate::Result<Probe> {
        if insert && (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow()?;
        }
        if self.slots.is_empty() {
            return Ok(Probe::New);
        }
        let (h1, h2) = self.hashes(db, key);
        let mask = self.slots.len() - 1;
        let mut at = (h1 as usize) & mask;
        loop {
            let s = self.slots[at];
            if s == 0 {
                break;
            }
            if s == h1 && (!self.exact_pairs || self.second[at] == h2) {
                return Ok(Probe::Seen);
            }
            at = (at + 1) & mask;
        }
        if insert {
            self.slots[at] = h1;
            if self.exact_pairs {
                self.second[at] = h2;
            }
            self.len += 1;
        }
        Ok(Probe::New)
    }
}

/// The key's bytes as the server sees them (an integer-encoded key is its decimal text), in `buf` when they have
/// to be built.
pub(crate) fn key_bytes<'k>(key: &RdbStr<'k>, buf: &'k mut Vec<u8>) -> Option<&'k [u8]> {
    match *key {
        RdbStr::Raw(b) => Some(b),
        RdbStr::Int(v) => {
            buf.clear();
            buf.extend_from_slice(v.to_string().as_bytes());
            Some(&buf[..])
        }
        RdbStr::Lzf { .. } => {
            buf.clear();
            key.decode_into(buf).ok()?;
            Some(&buf[..])
        }
    }
}

/// Whether a server loading the file as a master at `now_ms` keeps this key (not expired, not an empty
/// collection).
pub(crate) fn kept(e: &Entry<'_>, now_ms: i64) -> bool {
    let expired = match e.expiry {
        Some(Expiry::Seconds(s)) => i64::from(s) * 1000 < now_ms,
        Some(Expiry::Millis(ms)) => ms < now_ms,
        None => false,
    };
    !expired && !e.value.is_empty_collection().unwrap_or(false)
}

/// The current time in ms since the epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_repeats_per_database() {
        for exact in [false, true] {
            let mut t = KeyTable::new(exact);
            for i in 0..5000u32 {
                assert_eq!(t.probe(0, &i.to_le_bytes(), true).unwrap(), Probe::New);
            }
            assert_eq!(t.len(), 5000);
            assert_eq!(t.probe(0, &7u32.to_le_bytes(), true).unwrap(), Probe::Seen);
            assert_eq!(t.probe(1, &7u32.to_le_bytes(), true).unwrap(), Probe::New);
            assert_eq!(t.probe(1, &7u32.to_le_bytes(), false).unwrap(), Probe::Seen);
            assert_eq!(t.probe(0, b"", false).unwrap(), Probe::New);
            // 5001 keys in a table at most 3/4 full: 8192 slots.
            assert_eq!(t.memory(), 8192 * 8 * if exact { 2 } else { 1 });
        }
    }
}

/// The file-level checks of deep validation that need every record in file order: duplicate keys per database
/// and duplicate function library names. The readers run them on each record they return.
#[derive(Debug)]
pub(crate) struct FileChecks {
    keys: Option<KeyTable>,
    libraries: std::collections::HashSet<Vec<u8>>,
    now_ms: i64,
    /// Skipped copies still confirmed on a slice (each confirmation walks the file once).
    skipped_confirms: u32,
    buf: Vec<u8>,
}

/// What a record is, for [`FileChecks::check`]'s caller to confirm.
pub(crate) enum Verdict {
    /// Nothing to report.
    Fine,
    /// The key's hash was seen before: `kept` says whether the server keeps this copy. A slice reader confirms by
    /// walking the file; a stream reader's pair of hashes is taken as confirmation.
    Repeat { kept: bool },
}

impl FileChecks {
    /// Checks for a reader with `opts`; `exact_pairs` for readers that cannot walk the input again.
    pub(crate) fn new(opts: &super::ReadOptions, exact_pairs: bool) -> Option<Self> {
        opts.file_checks().then(|| FileChecks {
            keys: opts.duplicate_keys.then(|| KeyTable::new(exact_pairs)),
            libraries: Default::default(),
            now_ms: now_ms(),
            skipped_confirms: 8,
            buf: Vec::new(),
        })
    }

    /// The current time used for "expired".
    pub(crate) fn now(&self) -> i64 {
        self.now_ms
    }

    /// Bytes held by the duplicate-key table.
    pub(crate) fn memory(&self) -> usize {
        self.keys.as_ref().map_or(0, KeyTable::memory)
    }

    /// Whether one more skipped copy may be confirmed by a walk (a slice reader asks before walking).
    pub(crate) fn may_confirm_skipped(&mut self) -> bool {
        if self.skipped_confirms == 0 {
            return false;
        }
        self.skipped_confirms -= 1;
        true
    }

    /// Checks one record (at `offset`); an error for a repeated function library.
    pub(crate) fn check(&mut self, kind: &super::RecordKind<'_>, offset: u64) -> crate::Result<Verdict> {
        match kind {
            super::RecordKind::Function { code } => {
                let text = code.decode().map_err(|e| e.at(offset))?;
                if let Ok(name) = super::library_metadata(&text)
                    && !self.libraries.insert(name.clone())
                {
                    return Err(crate::Error::corrupt(
                        "function library",
                        format!("library {} is defined twice", crate::escape_bytes(&name)),
                        offset,
                    ));
                }
                Ok(Verdict::Fine)
            }
            super::RecordKind::Entry(e) => {
                let Some(table) = self.keys.as_mut() else {
                    return Ok(Verdict::Fine);
                };
                let Some(key) = key_bytes(&e.key, &mut self.buf) else {
                    return Ok(Verdict::Fine);
                };
                let keep = kept(e, self.now_ms);
                match table.probe(e.db, key, keep).map_err(|err| err.at(offset))? {
                    Probe::New => Ok(Verdict::Fine),
                    Probe::Seen => Ok(Verdict::Repeat { kept: keep }),
                }
            }
            _ => Ok(Verdict::Fine),
        }
    }
}

/// The error for a key the server would abort on.
pub(crate) fn duplicate_error(e: &Entry<'_>, offset: u64, earlier: Option<u64>) -> crate::Error {
    let detail = match earlier {
        Some(at) => format!("duplicate key: the same key is in this database at byte {at} (servers abort loading)"),
        None => "duplicate key: the same key is earlier in this database (servers abort loading)".to_string(),
    };
    let mut err = crate::Error::corrupt("database", detail, offset).in_db(e.db);
    if let Ok(k) = e.key.decode() {
        err = err.for_key(&k);
    }
    err
}
