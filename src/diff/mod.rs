//! Comparing the logical data of two RDB inputs: which keys only one of them holds, and which keys differ in type,
//! value or expiry — whatever the RDB versions, families (Redis, Valkey) and encodings of the two files.
//!
//! What is compared, per database: each key's type, its value up to encoding (sets, hashes and sorted sets in any
//! member order; lists and stream entries in order; hash field TTLs and stream metadata — groups, PEL, consumers,
//! last ID, entries added — as part of the value; see [`value_digest`]) and its expiry (equal within
//! [`DiffOptions::ttl_tolerance_ms`]). Function libraries are compared by name and code, module values by module id
//! and raw payload. AUX fields, module AUX data, LRU/LFU hints, RESIZEDB and slot hints are not compared.
//!
//! # How: digests partitioned by key hash
//! The two files list their keys in different orders and may each be larger than memory, so neither data set is
//! held. Each input is read once (the two at the same time, on two threads), deep-validated as `verify` validates
//! it, and reduced to one small record per key — database, key, type tag, expiry, a 128-bit order-independent
//! digest of the value, the record's offset — which goes to one of 64 partitions by a hash of the database and key.
//! The partitions stay in memory while both inputs' records fit half of [`DiffOptions::memory_budget`] each;
//! beyond that every partition goes to an unlinked temporary file in `$TMPDIR`. Then the partitions are compared
//! pairwise (A's partition *i* with B's), holding one pair at a time, sorted by key hash, database and key; a pair
//! larger than the budget is split again by the next six bits of the hash (up to nine levels). Key names travel in
//! the records, so the report needs no second pass over the inputs (stdin is read once).
//!
//! Peak memory, independent of the inputs' sizes: the budget (records held for comparison, their 16-byte index
//! entries included) + 2 × 64 partition write buffers of at most 64 KiB (8 MiB) + the readers' buffers (a large
//! file is read in 8 MiB chunks, a few in flight per input) + the largest single record of either input (which any
//! reader holds, decoded once to digest it) + the report's samples. The full lists of differences go to temporary
//! files too ([`DiffOptions::keep_all`]). Measured on two 105 MB inputs of 800 k keys: 52 MB resident with a 1 MiB
//! budget, 57 MB with 8 MiB, 164 MB with the default 256 MiB (everything held, nothing spilled).
//!
//! ```
//! use rdbkit::diff::{Class, DiffOptions, diff};
//! use rdbkit::input::Input;
//! # fn main() -> rdbkit::Result<()> {
//! let a = Input::open("testdata/redis-7.0.rdb")?;
//! let b = Input::open("testdata/redis-7.0.rdb")?;
//! let report = diff(&a, &b, &DiffOptions::default())?;
//! assert!(report.is_equal());
//! assert_eq!(report.count(Class::Different), 0);
//! # Ok(()) }
//! ```

mod digest;
mod spill;

pub use digest::{function_digest, value_digest};

use crate::error::{Error, ErrorKind, Result};
use crate::input::Input;
use crate::read::{LogicalType, ReadOptions, Record, RecordKind};
use crate::transform::RecordSink;
use spill::{FANOUT, INDEX_COST, MAX_LEVEL, Partitions, Rec};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::sync::atomic::{AtomicU8, Ordering};

/// The database number records of function libraries are filed under (no real database has it).
pub const FUNCTIONS_DB: u64 = u64::MAX;

/// Options of [`diff`].
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Two expiries are equal when they differ by at most this many milliseconds (a key with an expiry never
    /// equals one without).
    pub ttl_tolerance_ms: u64,
    /// Bytes of per-key records held in memory, while reading and while comparing (see the module docs).
    pub memory_budget: usize,
    /// Differences of each class kept in [`DiffReport::samples`].
    pub samples: usize,
    /// Keep every difference (in temporary files) for [`DiffReport::for_each`]; otherwise only the counts and the
    /// samples.
    pub keep_all: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions { ttl_tolerance_ms: 0, memory_budget: 256 << 20, samples: 20, keep_all: false }
    }
}

/// Where a key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// A database.
    Db(u64),
    /// The function libraries (the "key" is the library name).
    Function,
}

/// What differs in a key both inputs hold (the first that applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum What {
    /// The type (so the value too).
    Type,
    /// The value (for a library: the code).
    Value,
    /// Only the expiry (beyond the tolerance).
    Expiry,
}

impl What {
    /// `type`, `value` or `expiry`.
    pub fn name(&self) -> &'static str {
        match self {
            What::Type => "type",
            What::Value => "value",
            What::Expiry => "expiry",
        }
    }
}

/// The three lists of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Keys only the first input holds.
    OnlyInA,
    /// Keys only the second input holds.
    OnlyInB,
    /// Keys both hold, differing.
    Different,
}

impl Class {
    /// The three classes, in report order.
    pub const ALL: [Class; 3] = [Class::OnlyInA, Class::OnlyInB, Class::Different];

    fn index(self) -> usize {
        self as usize
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Database (or the function libraries).
    pub scope: Scope,
    /// The key (library name).
    pub key: Vec<u8>,
    /// For [`Class::Different`]: what differs.
    pub what: Option<What>,
}

/// Figures about how a comparison ran.
#[derive(Debug, Clone, Default)]
pub struct DiffStats {
    /// Bytes of per-key records written to temporary files (0: everything fitted the budget).
    pub spilled_bytes: u64,
    /// Most bytes of records held in memory at once (index included).
    pub peak_held_bytes: u64,
    /// Deepest partition level used (0: no partition had to be split again).
    pub max_level: u32,
}

/// The result of [`diff`].
#[derive(Debug)]
pub struct DiffReport {
    /// Keys (and libraries) of the first input.
    pub records_a: u64,
    /// Keys (and libraries) of the second input.
    pub records_b: u64,
    /// How the comparison ran.
    pub stats: DiffStats,
    counts: [u64; 3],
    samples: [Vec<Difference>; 3],
    spools: [Option<File>; 3],
}

impl DiffReport {
    /// Whether the inputs hold the same data.
    pub fn is_equal(&self) -> bool {
        self.counts.iter().all(|&n| n == 0)
    }

    /// Differences of `class`.
    pub fn count(&self, class: Class) -> u64 {
        self.counts[class.index()]
    }

    /// The first [`DiffOptions::samples`] differences of `class`, in the order of the key hashes (stable from run to
    /// run, unrelated to either file's order).
    pub fn samples(&self, class: Class) -> &[Difference] {
        &self.samples[class.index()]
    }

    /// Calls `f` with every difference of `class`, in the order of [`DiffReport::samples`]; read back from a
    /// temporary file, so memory stays flat.
    ///
    /// # Errors
    /// The comparison ran without [`DiffOptions::keep_all`] (and found more differences than the samples), a
    /// temporary file cannot be read, or `f` fails.
    pub fn for_each(&mut self, class: Class, mut f: impl FnMut(&Difference) -> Result<()>) -> Result<()> {
        let i = class.index();
        let Some(file) = self.spools[i].as_mut() else {
            if self.counts[i] > self.samples[i].len() as u64 {
                return Err(Error::without_offset(ErrorKind::Invalid(
                    "diff: the full list of differences was not kept (DiffOptions::keep_all)".into(),
                )));
            }
            return self.samples[i].iter().try_for_each(f);
        };
        file.rewind()?;
        let mut r = BufReader::with_capacity(64 << 10, &*file);
        let mut head = [0u8; 13];
        for _ in 0..self.counts[i] {
            r.read_exact(&mut head)?;
            let db = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
            let what = match head[8] {
                1 => Some(What::Type),
                2 => Some(What::Value),
                3 => Some(What::Expiry),
                _ => None,
            };
            let mut key = vec![0u8; u32::from_le_bytes(head[9..13].try_into().unwrap_or_default()) as usize];
            r.read_exact(&mut key)?;
            f(&Difference { scope: scope_of(db), key, what })?;
        }
        Ok(())
    }
}

fn scope_of(db: u64) -> Scope {
    if db == FUNCTIONS_DB { Scope::Function } else { Scope::Db(db) }
}

/// Type tags of the records: the logical types, and function libraries.
fn type_tag(t: LogicalType) -> u8 {
    match t {
        LogicalType::String => 0,
        LogicalType::List => 1,
        LogicalType::Set => 2,
        LogicalType::ZSet => 3,
        LogicalType::Hash => 4,
        LogicalType::Stream => 5,
        LogicalType::Module => 6,
    }
}

const FUNCTION_TAG: u8 = 7;

/// Hash of a key in its database: partitions the records.
fn key_hash(db: u64, key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, db)
}

/// How [`diff`] reads its inputs: deep validation as `verify` does it, checksum verified. Duplicate keys are found
/// by the comparison itself (its records are sorted by key), so the reader's per-key table is not needed.
pub fn read_options() -> ReadOptions {
    ReadOptions { deep: true, verify_checksum: true, duplicate_keys: false }
}

/// Compares the logical data of `a` and `b` (see the module docs). Each input is read once.
///
/// # Errors
/// Either input is not a valid RDB file (the error names the file and the byte offset), holds the same key twice
/// in a database, or a temporary file cannot be written in `$TMPDIR`.
pub fn diff(a: &Input, b: &Input, opts: &DiffOptions) -> Result<DiffReport> {
    let budget = opts.memory_budget.max(1);
    // The inputs are read at the same time, each into at most half the budget; the first to fail stops the other.
    let failed = AtomicU8::new(0);
    let (ra, rb) = std::thread::scope(|s| {
        let tb = s.spawn(|| read_input(b, budget / 2, &failed, 2));
        let ra = read_input(a, budget / 2, &failed, 1);
        let rb = tb.join().unwrap_or_else(|_| {
            Err(Error::without_offset(ErrorKind::Invalid(format!("diff: reading {} failed (panic)", b.name()))))
        });
        (ra, rb)
    });
    let (mut pa, mut pb) = match (ra, rb) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) if failed.load(Ordering::Relaxed) != 2 => return Err(e),
        (_, Err(e)) | (Err(e), _) => return Err(e),
    };
    let mut stats = DiffStats { peak_held_bytes: (pa.held() + pb.held()) as u64, ..Default::default() };
    if pa.spilled() || pb.spilled() {
        pa.spill()?;
        pb.spill()?;
    }
    pa.finish()?;
    pb.finish()?;
    let (records_a, records_b) = (pa.count(), pb.count());
    let mut out = Collector::new(opts)?;
    let names = [a.name(), b.name()];
    let mut cmp = Compare { budget, tolerance: opts.ttl_tolerance_ms, names, stats: &mut stats, out: &mut out };
    cmp.pairs(&mut pa, &mut pb)?;
    stats.spilled_bytes += pa.spilled_bytes + pb.spilled_bytes;
    let (counts, samples, spools) = out.finish()?;
    Ok(DiffReport { records_a, records_b, stats, counts, samples, spools })
}

/// Reads one input (`side` 1 or 2) into partitions; records in `failed` that it failed, unless the other side
/// failed first, and stops as soon as `failed` is set.
fn read_input(input: &Input, limit: usize, failed: &AtomicU8, side: u8) -> Result<Partitions> {
    let mut sink = KeySink { parts: Partitions::new(0, limit), key: Vec::new(), stop: failed };
    let r = input.drive(read_options(), &mut sink, true);
    if r.is_err() {
        let _ = failed.compare_exchange(0, side, Ordering::Relaxed, Ordering::Relaxed);
    }
    r.map(|()| sink.parts)
}

/// Turns key records and function libraries into partition records.
struct KeySink<'s> {
    parts: Partitions,
    key: Vec<u8>,
    /// Set when an input failed.
    stop: &'s AtomicU8,
}

impl RecordSink for KeySink<'_> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) != 0 {
            return Err(Error::without_offset(ErrorKind::Invalid("diff: stopped (the other input failed)".into())));
        }
        match rec.kind {
            RecordKind::Entry(e) => {
                self.key.clear();
                e.key.decode_into(&mut self.key)?;
                let digest = value_digest(&e.value).map_err(|err| err.at(rec.offset).in_db(e.db).for_key(&self.key))?;
                self.parts.push(&Rec {
                    hash: key_hash(e.db, &self.key),
                    db: e.db,
                    offset: rec.offset,
                    ty: type_tag(e.value.logical_type()),
                    expiry: e.expiry.map(|x| x.as_millis()),
                    digest,
                    key: &self.key,
                })
            }
            RecordKind::Function { code } => {
                let code = code.decode()?;
                // Deep validation has checked the `#!lua name=…` line; a library without one is filed by its code.
                let name = crate::read::library_metadata(&code).unwrap_or_else(|_| code.to_vec());
                self.parts.push(&Rec {
                    hash: key_hash(FUNCTIONS_DB, &name),
                    db: FUNCTIONS_DB,
                    offset: rec.offset,
                    ty: FUNCTION_TAG,
                    expiry: None,
                    digest: function_digest(&code),
                    key: &name,
                })
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The comparison of partition pairs.
struct Compare<'c> {
    budget: usize,
    tolerance: u64,
    names: [&'c str; 2],
    stats: &'c mut DiffStats,
    out: &'c mut Collector,
}

impl Compare<'_> {
    /// Compares A's partitions with B's, one pair at a time.
    fn pairs(&mut self, pa: &mut Partitions, pb: &mut Partitions) -> Result<()> {
        let level = pa.level();
        self.stats.max_level = self.stats.max_level.max(level);
        let (mut abuf, mut bbuf) = (Vec::new(), Vec::new());
        for i in 0..FANOUT {
            let ((ab, an), (bb, bn)) = (pa.size(i), pb.size(i));
            if an + bn == 0 {
                continue;
            }
            let need = ab + bb + (an + bn) * INDEX_COST as u64;
            // Splitting helps only a pair of more than one record on a side.
            if pa.spilled() && need > self.budget as u64 && level < MAX_LEVEL && an.max(bn) > 1 {
                // Too large to hold: split the pair again by the next bits of the hash.
                let half = self.budget / 2;
                let mut ca = Partitions::new(level + 1, half);
                let mut cb = Partitions::new(level + 1, half);
                pa.each(i, |r| ca.push(r))?;
                pb.each(i, |r| cb.push(r))?;
                pa.release(i);
                pb.release(i);
                if ca.spilled() || cb.spilled() {
                    ca.spill()?;
                    cb.spill()?;
                }
                ca.finish()?;
                cb.finish()?;
                self.stats.spilled_bytes += ca.spilled_bytes + cb.spilled_bytes;
                self.pairs(&mut ca, &mut cb)?;
                continue;
            }
            if pa.spilled() {
                self.stats.peak_held_bytes = self.stats.peak_held_bytes.max(need);
            }
            let a = pa.load(i, &mut abuf)?;
            let b = pb.load(i, &mut bbuf)?;
            self.pair((a, an), (b, bn))?;
            pa.release(i);
            pb.release(i);
        }
        Ok(())
    }

    /// Compares one pair of partitions held in memory.
    fn pair(&mut self, (a, an): (&[u8], u64), (b, bn): (&[u8], u64)) -> Result<()> {
        let ia = self.sorted(a, an, 0)?;
        let ib = self.sorted(b, bn, 1)?;
        let (mut i, mut j) = (0, 0);
        while i < ia.len() || j < ib.len() {
            let x = ia.get(i).map(|e| record_at(a, e.1)).transpose()?;
            let y = ib.get(j).map(|e| record_at(b, e.1)).transpose()?;
            match (x, y) {
                (Some(x), Some(y)) if order(&x, &y) == std::cmp::Ordering::Equal => {
                    let what = if x.ty != y.ty {
                        Some(What::Type)
                    } else if x.digest != y.digest {
                        Some(What::Value)
                    } else if !self.expiry_equal(x.expiry, y.expiry) {
                        Some(What::Expiry)
                    } else {
                        None
                    };
                    if let Some(w) = what {
                        self.out.push(Class::Different, x.db, x.key, Some(w))?;
                    }
                    i += 1;
                    j += 1;
                }
                (Some(x), y) if y.is_none_or(|y| order(&x, &y) == std::cmp::Ordering::Less) => {
                    self.out.push(Class::OnlyInA, x.db, x.key, None)?;
                    i += 1;
                }
                (_, Some(y)) => {
                    self.out.push(Class::OnlyInB, y.db, y.key, None)?;
                    j += 1;
                }
                (_, None) => break,
            }
        }
        Ok(())
    }

    /// The index of a partition's records — (hash, offset), [`INDEX_COST`] bytes each — sorted by hash, database
    /// and key; a key found twice is an error of input `side`.
    fn sorted(&self, bytes: &[u8], count: u64, side: usize) -> Result<Vec<(u64, usize)>> {
        let mut idx = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut off = 0;
        while off < bytes.len() {
            let (r, n) = Rec::decode(&bytes[off..])?;
            idx.push((r.hash, off));
            off += n;
        }
        let rec = |e: &(u64, usize)| Rec::decode(&bytes[e.1..]).map(|(r, _)| r).ok();
        // Ties on the hash (the same key, or a rare collision) are broken by database, key and offset.
        idx.sort_unstable_by(|x, y| {
            x.0.cmp(&y.0).then_with(|| match (rec(x), rec(y)) {
                (Some(a), Some(b)) => order(&a, &b).then(a.offset.cmp(&b.offset)),
                _ => std::cmp::Ordering::Equal,
            })
        });
        for w in idx.windows(2) {
            if w[0].0 != w[1].0 {
                continue;
            }
            let (Some(first), Some(second)) = (rec(&w[0]), rec(&w[1])) else { continue };
            if order(&first, &second) != std::cmp::Ordering::Equal {
                continue;
            }
            let what = if first.db == FUNCTIONS_DB {
                format!("duplicate function library: the same library is at byte {}", first.offset)
            } else {
                format!(
                    "duplicate key: the same key is in this database at byte {} (servers abort loading)",
                    first.offset
                )
            };
            let mut e = Error::new(ErrorKind::Invalid(what), second.offset);
            if second.db != FUNCTIONS_DB {
                e = e.in_db(second.db).for_key(second.key);
            }
            return Err(e.in_file(self.names[side]));
        }
        Ok(idx)
    }

    fn expiry_equal(&self, a: Option<i64>, b: Option<i64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => x.abs_diff(y) <= self.tolerance,
            _ => false,
        }
    }
}

/// The record at `off` of a partition's bytes.
fn record_at(bytes: &[u8], off: usize) -> Result<Rec<'_>> {
    Ok(Rec::decode(&bytes[off..])?.0)
}

/// The order of records in a compared partition: hash, then database and key.
fn order(a: &Rec<'_>, b: &Rec<'_>) -> std::cmp::Ordering {
    (a.hash, a.db, a.key).cmp(&(b.hash, b.db, b.key))
}

type Finished = ([u64; 3], [Vec<Difference>; 3], [Option<File>; 3]);

/// Collects differences: counts, the first few, and (with `keep_all`) every one in a temporary file.
struct Collector {
    counts: [u64; 3],
    samples: [Vec<Difference>; 3],
    cap: usize,
    spools: [Option<BufWriter<File>>; 3],
    keep_all: bool,
}

impl Collector {
    fn new(opts: &DiffOptions) -> Result<Self> {
        Ok(Collector {
            counts: [0; 3],
            samples: Default::default(),
            cap: opts.samples,
            spools: Default::default(),
            keep_all: opts.keep_all,
        })
    }

    fn push(&mut self, class: Class, db: u64, key: &[u8], what: Option<What>) -> Result<()> {
        let i = class.index();
        self.counts[i] += 1;
        if self.samples[i].len() < self.cap {
            self.samples[i].push(Difference { scope: scope_of(db), key: key.to_vec(), what });
        }
        if self.keep_all {
            if self.spools[i].is_none() {
                self.spools[i] = Some(BufWriter::with_capacity(64 << 10, spill::temp_file()?));
            }
            if let Some(w) = self.spools[i].as_mut() {
                let tag = match what {
                    None => 0u8,
                    Some(What::Type) => 1,
                    Some(What::Value) => 2,
                    Some(What::Expiry) => 3,
                };
                w.write_all(&db.to_le_bytes())?;
                w.write_all(&[tag])?;
                w.write_all(&(key.len() as u32).to_le_bytes())?;
                w.write_all(key)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Finished> {
        let mut files: [Option<File>; 3] = Default::default();
        for (slot, w) in files.iter_mut().zip(self.spools) {
            if let Some(w) = w {
                *slot = Some(w.into_inner().map_err(|e| Error::from(e.into_error()))?);
            }
        }
        Ok((self.counts, self.samples, files))
    }
}
