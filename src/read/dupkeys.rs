//! The duplicate-key check of deep validation: Redis 7.0/8.2 and Valkey 9.1 abort with "Duplicated key found in
//! RDB file" when one database holds the same key twice (unless one copy is skipped on load: expired, when the
//! server is a master, or an empty collection).
//!
//! State per key is one 64-bit hash of (database, key) in an open-addressing table (linear probing, at most 3/4
//! full, doubled when it gets there): **8 bytes per slot, 10.7–21.3 bytes per key** depending on where the table
//! is in its growth cycle (a fresh doubling is 3/8 full). A hash that is already present is confirmed exactly:
//!
//! - [`SliceReader`](super::SliceReader), and [`ChunkedReader`](super::ChunkedReader) over a file
//!   ([`crate::input::Input`] reads files so), walk the file again from the start up to the current record and
//!   compare the keys themselves (so a reported duplicate is certain, and a hash collision between different
//!   keys costs one walk and is then ignored). The hash is seeded per reader, so a file cannot be built to
//!   collide on purpose.
//! - [`StreamReader`](super::StreamReader), and [`ChunkedReader`](super::ChunkedReader) over a stream (stdin, a
//!   pipe), cannot go back, so they keep a second, independent 64-bit hash per key (16 bytes per slot, 21.3–42.7
//!   bytes per key) and report a duplicate only when both match: for a file of `n` distinct keys, the chance of
//!   a false report is below n²/2¹²⁹ (under 10⁻²⁰ for 10⁹ keys). (Input reads a file under 1 MiB with a
//!   StreamReader too: few keys, so the second hash costs little.)
//!
//! **Bounded memory on a file.** A [`ChunkedReader`](super::ChunkedReader) over a file (how `verify`, `info`, `dump`
//! and the writing commands read a file of 1 MiB or more on a machine with two cores or more) stops its table at
//! `SPILL_BUDGET_SLOTS` slots (16 MiB, about 1.57 million keys). A full table is written as a sorted run (8
//! bytes per distinct key hash of the run, the key's "kept" state in the lowest bit) to a temporary file in
//! `$TMPDIR` that is unlinked as soon as it is created, and starts again empty; it then also records keys the
//! server skips, so that a run can say a skipped copy came after a kept one. A repeat within a run is found when
//! its record is checked, as above. After the last record is checked, or before the reader's first error is
//! reported, the runs are merged:
//! a hash kept in one run and present in a later one is confirmed by walking the input again, in file order, with
//! the same confirmation as above, so the verdict (the first duplicate, its offset, the earlier copy's offset, the
//! skipped-copy warnings) is the one the unbounded table gives. When nothing crosses runs (the normal case) the
//! merge reads the spill file once and walks nothing. The spill file takes 8 bytes per key record at most (a key
//! record takes at least 3 bytes: at most `SPILL_RATIO` = 8/3 of the input bytes read; 8 bytes per key on a
//! real file). The difference: a duplicate whose earlier copy is in an earlier run is reported after later
//! records have reached the sink (the error and its offset are the same). Other readers' tables are not bounded.
//!
//! Only keys the server keeps (not expired at the time the reader was made, not an empty collection) enter the
//! table; a skipped copy that repeats a kept key is a [`WarningKind::DuplicateKeySkipped`] warning (confirmed
//! the same way; on a slice, only the first few are confirmed, so repeated skipped copies cannot make the check
//! quadratic).
//!
//! [`WarningKind::DuplicateKeySkipped`]: super::WarningKind::DuplicateKeySkipped

use super::{Entry, Expiry};
use crate::format::string::RdbStr;

/// Open-addressing table of key hashes (0 marks an empty slot; a hash of 0 is stored as 1). With `exact_pairs`
/// each slot is two words, the second hash beside the first (one cache line holds both).
#[derive(Debug)]
pub(crate) struct KeyTable {
    slots: Slots,
    /// Slots (not words) in `slots`.
    cap: usize,
    len: usize,
    seed: u64,
    exact_pairs: bool,
    /// With a spill file: the most slots the table may have (a power of two); a full table is written out as a
    /// sorted run and emptied (see [`Spill`]).
    budget: Option<usize>,
    spill: Option<Spill>,
}

/// Slots of a spilling table by default: 2²¹ slots of 8 bytes, **16 MiB** (about 1.57 million keys per run).
pub(crate) const SPILL_BUDGET_SLOTS: usize = 1 << 21;

/// The sorted runs of a table that reached its budget, in an unlinked temporary file in `$TMPDIR`, and the
/// record offset at which each later window of the table began.
///
/// Each run holds the table's values (8 bytes each: the key hash with its lowest bit replaced by "kept"), one
/// value per distinct (hash, kept) of its window, so the file is at most 8 bytes per key record read: as a key
/// record takes at least 3 bytes, **at most 8/3 of the input bytes read** (`SPILL_RATIO`).
#[derive(Debug)]
struct Spill {
    file: std::fs::File,
    /// (first value index, values) of each run, in file order.
    runs: Vec<(u64, u64)>,
    /// The offset of the first record of window `i + 1` (window 0 starts at the file's first record).
    windows: Vec<u64>,
    bytes: u64,
}

/// The spill file's bound: at most this many bytes per byte of input read (8 bytes per key record of at least 3).
#[cfg(test)]
pub(crate) const SPILL_RATIO: f64 = 8.0 / 3.0;

/// A table value: the hash with its lowest bit replaced by `kept` (never 0, which marks an empty slot).
#[inline(always)]
fn value_of(h1: u64, kept: bool) -> u64 {
    (h1 & !1).max(2) | u64::from(kept)
}

/// The table's words: on the heap while small; a large table is an anonymous map advised to use huge pages, as a
/// table of many megabytes probed at random otherwise misses the TLB on nearly every key (measured: most of the
/// check's time on a 100 MB file). Without the `mmap` feature every table is on the heap.
#[derive(Debug)]
enum Slots {
    Heap(Vec<u64>),
    #[cfg(feature = "mmap")]
    Mapped(memmap2::MmapMut),
}

impl Slots {
    /// `words` zero words.
    fn zeroed(words: usize) -> crate::Result<Slots> {
        let oom = || {
            crate::Error::without_offset(crate::ErrorKind::Invalid("out of memory for the duplicate-key check".into()))
        };
        let bytes = words.checked_mul(8).ok_or_else(oom)?;
        #[cfg(not(feature = "mmap"))]
        let _ = bytes;
        #[cfg(feature = "mmap")]
        if bytes >= 2 << 20
            && let Ok(m) = memmap2::MmapMut::map_anon(bytes)
        {
            let _ = m.advise(memmap2::Advice::HugePage);
            return Ok(Slots::Mapped(m));
        }
        let mut v = Vec::new();
        v.try_reserve_exact(words).map_err(|_| oom())?;
        v.resize(words, 0);
        Ok(Slots::Heap(v))
    }

    fn words(&self) -> &[u64] {
        match self {
            Slots::Heap(v) => v,
            // SAFETY: an anonymous map is page-aligned (so aligned for u64) and zero-filled, its length is a
            // multiple of 8 (`zeroed` maps `words * 8` bytes), every bit pattern is a valid u64, and the slice
            // borrows the map.
            #[cfg(feature = "mmap")]
            Slots::Mapped(m) => unsafe { std::slice::from_raw_parts(m.as_ptr().cast::<u64>(), m.len() / 8) },
        }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        match self {
            Slots::Heap(v) => v,
            // SAFETY: as in `words`, and the slice borrows the map mutably.
            #[cfg(feature = "mmap")]
            Slots::Mapped(m) => unsafe { std::slice::from_raw_parts_mut(m.as_mut_ptr().cast::<u64>(), m.len() / 8) },
        }
    }
}

/// Where the slot of a key will be, for a prefetch while the rest of its record is parsed (the table is far
/// larger than the caches, so without it nearly every key waits on memory).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrefetchHint {
    addr: usize,
    mask: usize,
    seed: u64,
    words: usize,
}

impl PrefetchHint {
    /// Asks the CPU to fetch the slot of (db, key); returns the key's hash (the table's first hash).
    #[inline]
    pub(crate) fn prefetch(&self, db: u64, key: &[u8]) -> u64 {
        let h = hash_key(self.seed, K1, db, key).max(1);
        let at = ((h >> 1) as usize) & self.mask;
        let addr = self.addr + at * self.words * 8;
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: a prefetch is only a hint: it reads nothing the program can observe and never faults, whatever
            // the address (this one lies inside the table's allocation).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(addr as *const i8) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = addr;
        h
    }
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
        KeyTable {
            slots: Slots::Heap(Vec::new()),
            cap: 0,
            len: 0,
            seed: h.finish(),
            exact_pairs,
            budget: None,
            spill: None,
        }
    }

    /// Bounds the table to `slots` slots (rounded up to a power of two, at least 1024): when it is full, its
    /// values go to a temporary file as a sorted run and it starts again empty. Only for a table whose reader can
    /// read its input again ([`FileChecks::settle`] confirms what crosses runs by reading it).
    pub(crate) fn with_budget(mut self, slots: usize) -> Self {
        self.budget = Some(slots.next_power_of_two().max(1024));
        self
    }

    /// Bytes written to the spill file so far.
    #[cfg(test)]
    pub(crate) fn spilled_bytes(&self) -> u64 {
        self.spill.as_ref().map_or(0, |s| s.bytes)
    }

    /// Whether the table is at its budget and one more key would need room.
    fn at_budget(&self) -> bool {
        self.budget.is_some_and(|b| self.cap >= b) && (self.len + 1) * 4 > self.cap * 3
    }

    /// Writes the table's values as a sorted run to the spill file and empties the table; records of `offset`
    /// and later belong to the next window.
    fn spill_run(&mut self, offset: u64) -> crate::Result<()> {
        use std::io::Write;
        let io_err = |e: std::io::Error| crate::Error::from(e).at(offset);
        if self.spill.is_none() {
            let dir = std::env::temp_dir();
            let file = spill_file(&dir).map_err(|e| {
                crate::Error::new(
                    crate::ErrorKind::Invalid(format!(
                        "cannot create the duplicate-key spill file in {}: {e}",
                        dir.display()
                    )),
                    offset,
                )
            })?;
            self.spill = Some(Spill { file, runs: Vec::new(), windows: Vec::new(), bytes: 0 });
        }
        let words = self.slots.words_mut();
        let mut n = 0;
        for i in 0..words.len() {
            if words[i] != 0 {
                words[n] = words[i];
                n += 1;
            }
        }
        words[..n].sort_unstable();
        let Some(spill) = self.spill.as_mut() else { return Ok(()) };
        let mut out = std::io::BufWriter::with_capacity(1 << 16, &spill.file);
        for v in &words[..n] {
            out.write_all(&v.to_le_bytes()).map_err(io_err)?;
        }
        out.flush().map_err(io_err)?;
        drop(out);
        spill.runs.push((spill.bytes / 8, n as u64));
        spill.bytes += n as u64 * 8;
        spill.windows.push(offset);
        words.fill(0);
        self.len = 0;
        Ok(())
    }

    fn words(&self) -> usize {
        if self.exact_pairs { 2 } else { 1 }
    }

    /// Number of keys in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held by the table.
    pub(crate) fn memory(&self) -> usize {
        self.slots.words().len() * 8
    }

    /// Where the next key's slot will be.
    pub(crate) fn hint(&self) -> Option<PrefetchHint> {
        (self.cap > 0).then(|| PrefetchHint {
            addr: self.slots.words().as_ptr() as usize,
            mask: self.cap - 1,
            seed: self.seed,
            words: self.words(),
        })
    }

    fn hashes(&self, db: u64, key: &[u8], h1: Option<u64>) -> (u64, u64) {
        let h1 = h1.unwrap_or_else(|| hash_key(self.seed, K1, db, key).max(1));
        let h2 = if self.exact_pairs { hash_key(self.seed.rotate_left(32), K2 ^ K3, db, key) } else { 0 };
        (h1, h2)
    }

    fn grow(&mut self) -> crate::Result<()> {
        let cap = (self.cap * 2).max(1024);
        let w = self.words();
        let old = std::mem::replace(&mut self.slots, Slots::zeroed(cap * w)?);
        self.cap = cap;
        let mask = cap - 1;
        let slots = self.slots.words_mut();
        for pair in old.words().chunks_exact(w) {
            let h = pair[0];
            if h == 0 {
                continue;
            }
            let mut at = ((h >> 1) as usize) & mask;
            while slots[at * w] != 0 {
                at = (at + 1) & mask;
            }
            slots[at * w] = h;
            if w == 2 {
                slots[at * w + 1] = pair[1];
            }
        }
        Ok(())
    }

    /// Makes room for `keys` keys in all (a RESIZEDB hint), so the table does not rehash while it fills.
    pub(crate) fn reserve(&mut self, keys: usize) -> crate::Result<()> {
        while keys * 4 > self.cap * 3 && self.budget.is_none_or(|b| self.cap < b) {
            self.grow()?;
        }
        Ok(())
    }

    /// Looks (db, key) up, and with `insert` adds it when new.
    #[cfg(test)]
    pub(crate) fn probe(&mut self, db: u64, key: &[u8], insert: bool) -> crate::Result<Probe> {
        self.probe_hashed(db, key, None, insert, 0)
    }

    /// [`KeyTable::probe`], with the first hash of (db, key) when it is known (from a [`PrefetchHint`]).
    ///
    /// Kept keys (`insert`) are stored as "kept" values and are what a later key is `Seen` against. A spilling
    /// table also stores the others as "skipped" values (they are never `Seen` against, but a run must say that
    /// such a key came after a kept copy in an earlier run); a table that does not spill stores only kept keys.
    /// `offset` is the record's, for a spill.
    pub(crate) fn probe_hashed(
        &mut self,
        db: u64,
        key: &[u8],
        h1: Option<u64>,
        insert: bool,
        offset: u64,
    ) -> crate::Result<Probe> {
        let store = insert || self.budget.is_some();
        if store && (self.len + 1) * 4 > self.cap * 3 {
            if self.at_budget() {
                self.spill_run(offset)?;
            } else {
                self.grow()?;
            }
        }
        if self.cap == 0 {
            return Ok(Probe::New);
        }
        let (h1, h2) = self.hashes(db, key, h1);
        let (kept_v, skip_v) = (value_of(h1, true), value_of(h1, false));
        let (mask, w, pairs) = (self.cap - 1, self.words(), self.exact_pairs);
        let slots = self.slots.words_mut();
        let mut at = ((kept_v >> 1) as usize) & mask;
        let mut skip_seen = false;
        loop {
            let s = slots[at * w];
            if s == 0 {
                break;
            }
            if s == kept_v && (!pairs || slots[at * w + 1] == h2) {
                return Ok(Probe::Seen);
            }
            skip_seen |= s == skip_v && (!pairs || slots[at * w + 1] == h2);
            at = (at + 1) & mask;
        }
        if store && (insert || !skip_seen) {
            slots[at * w] = if insert { kept_v } else { skip_v };
            if pairs {
                slots[at * w + 1] = h2;
            }
            self.len += 1;
        }
        Ok(Probe::New)
    }

    /// The group of (db, key) in the table's values: its value without the "kept" bit, halved.
    pub(crate) fn group_of(&self, db: u64, key: &[u8]) -> u64 {
        value_of(hash_key(self.seed, K1, db, key).max(1), false) >> 1
    }
}

/// A k-way merge of a spill file's runs, yielding the groups (key hash without the "kept" bit) that cross runs:
/// kept in one run and present (kept or not) in a later one. A repeat within one run was found when its record
/// was checked; only these are left to confirm.
pub(crate) struct CrossRuns<'f> {
    file: &'f std::fs::File,
    /// Per run: buffered values, the position in the buffer, and the next value index / the end in the file.
    runs: Vec<(Vec<u64>, usize, u64, u64)>,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>>,
}

/// Values read at once per run during a merge (32 KiB).
const MERGE_BUF: usize = 4096;

impl<'f> CrossRuns<'f> {
    fn new(spill: &'f Spill) -> crate::Result<Self> {
        let mut m = CrossRuns {
            file: &spill.file,
            runs: spill.runs.iter().map(|&(start, n)| (Vec::new(), 0, start, start + n)).collect(),
            heap: Default::default(),
        };
        for r in 0..m.runs.len() {
            if let Some(v) = m.pull(r)? {
                m.heap.push(std::cmp::Reverse((v, r)));
            }
        }
        Ok(m)
    }

    /// The next value of run `r`.
    fn pull(&mut self, r: usize) -> crate::Result<Option<u64>> {
        use std::os::unix::fs::FileExt;
        let (buf, pos, next, end) = &mut self.runs[r];
        if *pos == buf.len() {
            let n = usize::try_from((*end - *next).min(MERGE_BUF as u64)).unwrap_or(MERGE_BUF);
            if n == 0 {
                return Ok(None);
            }
            let mut bytes = vec![0u8; n * 8];
            self.file.read_exact_at(&mut bytes, *next * 8).map_err(crate::Error::from)?;
            buf.clear();
            buf.extend(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())));
            *next += n as u64;
            *pos = 0;
        }
        let v = buf[*pos];
        *pos += 1;
        Ok(Some(v))
    }

    /// Up to `max` more crossing groups, in ascending order (empty at the end).
    pub(crate) fn next_batch(&mut self, max: usize) -> crate::Result<Vec<u64>> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(&std::cmp::Reverse((v, _))) = self.heap.peek() else { break };
            let group = v >> 1;
            // The group's entries, one per (run, kept) at most: the first run it is kept in, the last it is in.
            let (mut first_kept, mut last) = (usize::MAX, 0usize);
            while let Some(&std::cmp::Reverse((v, r))) = self.heap.peek() {
                if v >> 1 != group {
                    break;
                }
                self.heap.pop();
                if v & 1 == 1 {
                    first_kept = first_kept.min(r);
                }
                last = last.max(r);
                if let Some(next) = self.pull(r)? {
                    self.heap.push(std::cmp::Reverse((next, r)));
                }
            }
            if first_kept < last {
                out.push(group);
            }
        }
        Ok(out)
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

/// Records only, no checks: what a confirming walk (over bytes already checked) or a probe for a record's extent
/// reads with.
pub(crate) const WALK_ONLY: super::ReadOptions =
    super::ReadOptions { deep: false, verify_checksum: false, duplicate_keys: false };

/// Recognises earlier copies of one key during a confirming walk: a key record of the same database, with the same
/// key bytes, that the server keeps.
pub(crate) struct EarlierCopy {
    db: u64,
    want: Vec<u8>,
    buf: Vec<u8>,
    now_ms: i64,
}

impl EarlierCopy {
    /// A matcher for `e`'s key (`None` if its bytes cannot be had: an LZF key that does not decompress).
    pub(crate) fn of(e: &Entry<'_>, now_ms: i64) -> Option<Self> {
        let mut buf = Vec::new();
        let want = key_bytes(&e.key, &mut buf)?.to_vec();
        Some(EarlierCopy { db: e.db, want, buf, now_ms })
    }

    /// Whether `kind` is a kept copy of the key.
    pub(crate) fn matches(&mut self, kind: &super::RecordKind<'_>) -> bool {
        let super::RecordKind::Entry(old) = kind else { return false };
        old.db == self.db
            && key_bytes(&old.key, &mut self.buf).is_some_and(|k| k == self.want.as_slice())
            && kept(old, self.now_ms)
    }
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

    /// A hint makes room in advance; a table of megabytes is a map, and works the same.
    #[test]
    fn reserved_and_mapped() {
        let mut t = KeyTable::new(true);
        t.reserve(400_000).unwrap();
        // 400 000 keys at most 3/4 full: 2^20 slots of two words.
        assert_eq!(t.memory(), (1 << 20) * 16);
        #[cfg(feature = "mmap")]
        assert!(matches!(t.slots, Slots::Mapped(_)));
        #[cfg(not(feature = "mmap"))]
        assert!(matches!(t.slots, Slots::Heap(_)));
        for i in 0..1000u32 {
            assert_eq!(t.probe(3, &i.to_be_bytes(), true).unwrap(), Probe::New);
        }
        assert_eq!(t.probe(3, &999u32.to_be_bytes(), false).unwrap(), Probe::Seen);
        assert_eq!(t.memory(), (1 << 20) * 16, "no growth below the reserved size");
    }
}

/// The file-level checks of deep validation that need every record in file order: duplicate keys per database
/// and duplicate function library names. The readers run them on each record they return.
#[derive(Debug)]
pub(crate) struct FileChecks {
    keys: Option<KeyTable>,
    libraries: std::collections::HashSet<Vec<u8>>,
    /// The functions the libraries so far registered.
    #[cfg(feature = "lua")]
    functions: super::lua::Libraries,
    /// Keys the RESIZEDB hints announce (the table is sized for them, up to `hint_limit`).
    hinted: u64,
    hint_limit: u64,
    now_ms: i64,
    /// Skipped copies still confirmed on a slice (each confirmation walks the file once).
    skipped_confirms: u32,
    buf: Vec<u8>,
    /// The size the spill file had when [`FileChecks::settle`] closed it.
    settled_spill: u64,
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
    ///
    /// `hint_limit` bounds the keys a RESIZEDB hint may make room for in advance (a hint is not trusted beyond
    /// what the input can hold: a slice reader passes a quarter of its length, as a key record takes 4 bytes).
    pub(crate) fn new(opts: &super::ReadOptions, exact_pairs: bool, hint_limit: u64) -> Option<Self> {
        opts.file_checks().then(|| FileChecks {
            keys: opts.duplicate_keys.then(|| KeyTable::new(exact_pairs)),
            libraries: Default::default(),
            #[cfg(feature = "lua")]
            functions: Default::default(),
            hinted: 0,
            hint_limit,
            now_ms: now_ms(),
            skipped_confirms: 8,
            buf: Vec::new(),
            settled_spill: 0,
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

    /// Bounds the duplicate-key table to `slots` slots, spilling sorted runs to a temporary file beyond that (see
    /// [`Spill`]); for a reader that can read its input again and calls [`FileChecks::settle`] before its verdict.
    pub(crate) fn spilling(mut self, slots: usize) -> Self {
        self.keys = self.keys.map(|t| t.with_budget(slots));
        self
    }

    /// Bytes written to the spill file so far.
    #[cfg(test)]
    pub(crate) fn spilled_bytes(&self) -> u64 {
        self.keys.as_ref().map_or(self.settled_spill, KeyTable::spilled_bytes)
    }

    /// Settles the repeats that cross the spilled runs, for the records before `end`. `entries(limit, visit)`
    /// walks the input's key records before `limit` again from the start (with their offsets), until `visit` says
    /// stop. `confirm(checks, entry, offset, kept)` is called, in file order, for each record whose key has a kept
    /// copy with the same hash in an earlier run (and none earlier in its own run: the record's own check saw
    /// that one): it confirms it as the record's check would have, and returns `true` to stop (a duplicate, which
    /// it keeps as the error to report). The table is done with afterwards (a reader settles once, at EOF or at its
    /// first error). Nothing happens when nothing was spilled.
    pub(crate) fn settle(
        &mut self,
        end: u64,
        entries: &mut dyn FnMut(u64, &mut EntryVisit<'_>) -> crate::Result<()>,
        confirm: &mut dyn FnMut(&mut Self, &Entry<'_>, u64, bool) -> crate::Result<bool>,
    ) -> crate::Result<()> {
        let Some(mut table) = self.keys.take() else { return Ok(()) };
        if table.spill.is_none() {
            self.keys = Some(table);
            return Ok(());
        }
        table.spill_run(u64::MAX)?;
        // Only the seed is needed from here on: the slots go before the merge takes its own memory.
        table.slots = Slots::Heap(Vec::new());
        table.cap = 0;
        let Some(spill) = table.spill.take() else { return Ok(()) };
        self.settled_spill = spill.bytes;
        let window_of = |at: u64| spill.windows.partition_point(|&w| w <= at);
        let mut merge = CrossRuns::new(&spill)?;
        let mut limit = end;
        let mut buf = Vec::new();
        loop {
            let batch = merge.next_batch(1 << 20)?;
            if batch.is_empty() {
                break;
            }
            // The run of the last kept copy of each group so far.
            let mut last_kept: Vec<usize> = vec![usize::MAX; batch.len()];
            let mut stop_at = None;
            entries(limit, &mut |offset, e| {
                let Some(key) = key_bytes(&e.key, &mut buf) else { return Ok(false) };
                let Ok(i) = batch.binary_search(&table.group_of(e.db, key)) else { return Ok(false) };
                let (w, keep) = (window_of(offset), kept(e, self.now_ms));
                if last_kept[i] != usize::MAX
                    && last_kept[i] != w
                    && (keep || self.may_confirm_skipped())
                    && confirm(self, e, offset, keep)?
                {
                    stop_at = Some(offset);
                    return Ok(true);
                }
                if keep {
                    last_kept[i] = w;
                }
                Ok(false)
            })?;
            // Later batches look only before a duplicate found.
            if let Some(at) = stop_at {
                limit = at;
            }
        }
        Ok(())
    }

    /// Where the next key's slot will be (see [`PrefetchHint`]).
    pub(crate) fn hint(&self) -> Option<PrefetchHint> {
        self.keys.as_ref().and_then(KeyTable::hint)
    }

    /// Whether one more skipped copy may be confirmed by a walk (a slice reader asks before walking).
    pub(crate) fn may_confirm_skipped(&mut self) -> bool {
        if self.skipped_confirms == 0 {
            return false;
        }
        self.skipped_confirms -= 1;
        true
    }

    /// Checks one record (at `offset`) of a file of `flavor`; an error for a repeated function library, or (feature
    /// `lua`) one the server refuses when it runs it (`read::lua`). `memo` is what
    /// [`super::parse::Parser::key_memo`] held: the key hash of the record at its offset, when it was prefetched.
    pub(crate) fn check(
        &mut self,
        kind: &super::RecordKind<'_>,
        offset: u64,
        flavor: super::Flavor,
        memo: Option<(u64, u64)>,
    ) -> crate::Result<Verdict> {
        match kind {
            super::RecordKind::Function { code } => {
                let text = code.decode().map_err(|e| e.at(offset))?;
                // A library without valid metadata is the parser's to refuse.
                let Ok(name) = super::library_metadata(&text) else {
                    return Ok(Verdict::Fine);
                };
                if !self.libraries.insert(name.clone()) {
                    return Err(crate::Error::corrupt(
                        "function library",
                        format!("library {} is defined twice", crate::escape_bytes(&name)),
                        offset,
                    ));
                }
                #[cfg(feature = "lua")]
                self.functions
                    .load(&text, flavor)
                    .map_err(|why| crate::Error::corrupt("function library", why, offset))?;
                #[cfg(not(feature = "lua"))]
                let _ = flavor;
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
                let h1 = memo.and_then(|(at, h)| (at == offset).then_some(h));
                match table.probe_hashed(e.db, key, h1, keep, offset).map_err(|err| err.at(offset))? {
                    Probe::New => Ok(Verdict::Fine),
                    Probe::Seen => Ok(Verdict::Repeat { kept: keep }),
                }
            }
            super::RecordKind::ResizeDb { db_size, .. } => {
                self.hinted = self.hinted.saturating_add(*db_size);
                if let Some(table) = self.keys.as_mut() {
                    let want = usize::try_from(self.hinted.min(self.hint_limit)).unwrap_or(usize::MAX);
                    // Only an optimisation: a hint too large to allocate for is ignored.
                    let _ = table.reserve(want);
                }
                Ok(Verdict::Fine)
            }
            _ => Ok(Verdict::Fine),
        }
    }
}

/// What [`FileChecks::settle`] calls with each key record (its offset and entry) of a walk: `true` stops the walk.
pub(crate) type EntryVisit<'v> = dyn FnMut(u64, &Entry<'_>) -> crate::Result<bool> + 'v;

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

/// A new file `rdbkit-keys-*` in `dir` (created exclusively, mode 0600), unlinked at once: the open file is all
/// that remains, and it goes when the reader does. Plain std, so the parser needs no file-handling feature.
fn spill_file(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for _ in 0..64 {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("rdbkit-keys-{}-{:x}-{n}", std::process::id(), nanos as u64 ^ n.wrapping_mul(0x9E37_79B9));
        let path = dir.join(name);
        match std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path) {
            Ok(f) => {
                std::fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free name for the spill file"))
}
