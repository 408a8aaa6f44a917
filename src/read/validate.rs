//! Deep validation of what a record embeds, as `sanitize-dump-payload yes` checks it: blobs (ziplist, listpack,
//! intset, zipmap, stream listpacks) walked element by element, LZF-compressed ones prechecked before they are
//! inflated, duplicate members found with a seeded hash set (and confirmed exactly), scores read as the servers
//! read them. The parser ([`super::parse`]) calls in here for each value when deep validation is on.

use super::parse::*;
use super::warn::{self, WarningKind};
use crate::error::{Error, Result};
use crate::format::length::{PError, PResult};
use crate::format::string::{RdbStr, rdb_str};
use crate::format::{Elem, intset::Intset, listpack::Listpack, ziplist::Ziplist, zipmap::Zipmap};
use crate::read::header::Flavor;
use std::cmp::Ordering;

/// Checks that an LZF string decompresses to its declared length, without decompressing it: the check needs no
/// buffer, so a string that claims 89 times its compressed size costs no memory (see [`crate::format::lzf`]).
pub(super) fn check_str<'a>(_ctx: &mut Ctx<'_>, at: &'a [u8], s: &RdbStr<'_>) -> PResult<'a, ()> {
    if let RdbStr::Lzf { compressed, len } = *s
        && let Err(e) = crate::format::string::checked_lzf_len(compressed.len(), len)
            .and_then(|n| crate::format::lzf::validate(compressed, n))
    {
        return PError::nested(at, e.at(0));
    }
    Ok((at, ()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Pairs {
    /// A plain sequence (list).
    No,
    /// Distinct members (set).
    Set,
    /// member, score pairs.
    Zset,
    /// field, value pairs.
    Hash,
    /// field, value, ttl triples.
    HashTtl,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Blob {
    Zipmap,
    Ziplist(Pairs),
    QuicklistZiplist,
    Intset,
    Listpack(Pairs),
    Plain,
}

/// Walks an STR holding a blob; with deep validation, decodes and checks it.
pub(super) fn blob<'a>(ctx: &mut Ctx<'_>, i: &'a [u8], kind: Blob) -> PResult<'a, ()> {
    let (r, s) = rdb_str(i)?;
    if !ctx.deep {
        return Ok((r, ()));
    }
    let (bytes, base): (&[u8], Option<u64>) = match s {
        RdbStr::Raw(b) => (b, Some((i.len() - r.len() - b.len()) as u64)),
        RdbStr::Lzf { compressed, len } => match lzf_blob_precheck(compressed, len, kind) {
            Ok(false) => return Ok((r, ())),
            Err(e) => return PError::nested(i, e.at(0)),
            Ok(true) => match s.decode_reusing(ctx.scratch) {
                Ok(b) => (b, None),
                Err(e) => return PError::nested(i, e.at(0)),
            },
        },
        RdbStr::Int(_) => {
            if kind == Blob::Plain {
                return Ok((r, ()));
            }
            return corrupt(i, "blob", "a ziplist/listpack/intset blob stored as an integer");
        }
    };
    match validate_blob(bytes, kind, ctx.header.flavor, ctx.dups) {
        Ok(()) => Ok((r, ())),
        // Offsets inside decompressed data mean nothing in the file: point at the string instead.
        Err(e) => PError::nested(
            i,
            match base {
                Some(b) => e.shifted(b),
                None => e.at(0),
            },
        ),
    }
}

/// What can be checked of an LZF-compressed blob without holding it: whether it must be decompressed in full at all
/// (`Ok(false)`: a plain quicklist node is any non-empty string, so a valid LZF stream is all it takes), and for a
/// large ziplist or listpack, that the stream is valid and the header's total length is the declared length. Only
/// then are the declared bytes (up to 89 times the compressed ones) decompressed; the errors are those the full
/// check would report.
pub(super) fn lzf_blob_precheck(compressed: &[u8], len: u64, kind: Blob) -> Result<bool> {
    let n = crate::format::string::checked_lzf_len(compressed.len(), len)?;
    let (structure, field) = match kind {
        Blob::Plain => {
            crate::format::lzf::validate(compressed, n)?;
            return Ok(false);
        }
        _ if n <= 64 * 1024 => return Ok(true),
        Blob::Ziplist(_) | Blob::QuicklistZiplist => ("ziplist", "zlbytes"),
        Blob::Listpack(_) => ("listpack", "total_bytes"),
        Blob::Intset | Blob::Zipmap => return Ok(true),
    };
    let mut head = [0u8; 4];
    crate::format::lzf::peek(compressed, n, &mut head)?;
    let total = u32::from_le_bytes(head);
    if u64::from(total) != len {
        return Err(Error::corrupt(structure, format!("{field} is {total}, expected the blob size {len}"), 0));
    }
    Ok(true)
}

pub(super) fn validate_blob(bytes: &[u8], kind: Blob, flavor: Flavor, dups: &mut Dups) -> Result<()> {
    match kind {
        Blob::Plain => {
            if bytes.is_empty() {
                return Err(Error::corrupt("quicklist", "empty plain node", 0));
            }
        }
        Blob::Intset => Intset::new(bytes)?.validate()?,
        Blob::Zipmap => {
            Zipmap::new(bytes)?.validate()?;
        }
        Blob::QuicklistZiplist | Blob::Ziplist(Pairs::No) => {
            // Redis skips empty quicklist nodes; the element walk handles that.
            Ziplist::new(bytes)?.validate()?;
        }
        Blob::Listpack(Pairs::No) => {
            Listpack::new(bytes)?.validate()?;
        }
        Blob::Ziplist(pairs) => {
            let zl = Ziplist::new(bytes)?;
            let mut g = Grouping::new(pairs, flavor, bytes, dups);
            let n = zl.validate_with(|e| g.elem(e))?;
            g.finish(n, || zl.iter())?;
        }
        Blob::Listpack(pairs) => {
            let lp = Listpack::new(bytes)?;
            let mut g = Grouping::new(pairs, flavor, bytes, dups);
            let n = lp.validate_with(|e| g.elem(e))?;
            g.finish(n, || lp.iter())?;
        }
    }
    Ok(())
}

/// The grouping rules of a ziplist/listpack, checked during its validation walk: pair/triple counts, numeric
/// scores, distinct fields/members, and the field-TTL ordering of listpack hashes with TTLs.
///
/// Errors come out as if the rules were checked after a successful structural validation, element by element:
/// a structural error first, then the element count, then whichever of a repeated field/member and a bad
/// score/TTL comes first in the blob.
pub(super) struct Grouping<'b, 'd> {
    pub(super) pairs: Pairs,
    pub(super) flavor: Flavor,
    pub(super) group: usize,
    pub(super) what: &'static str,
    pub(super) base: &'b [u8],
    pub(super) dups: &'d mut Dups,
    pub(super) idx: usize,
    pub(super) last_ttl: Option<i64>,
    /// The first score/TTL error; once set, later elements are not looked at.
    pub(super) first_err: Option<Error>,
}

impl<'b, 'd> Grouping<'b, 'd> {
    pub(super) fn new(pairs: Pairs, flavor: Flavor, base: &'b [u8], dups: &'d mut Dups) -> Self {
        let (group, what) = match pairs {
            Pairs::No | Pairs::Set => (1, "set"),
            Pairs::Zset => (2, "zset"),
            Pairs::Hash => (2, "hash"),
            Pairs::HashTtl => (3, "hash"),
        };
        dups.clear();
        Grouping { pairs, flavor, group, what, base, dups, idx: 0, last_ttl: None, first_err: None }
    }

    #[inline]
    pub(super) fn elem(&mut self, e: Elem<'b>) {
        if self.first_err.is_some() {
            return;
        }
        let idx = self.idx;
        self.idx += 1;
        let what = self.what;
        match idx % self.group {
            0 => {
                let k = Dups::elem_key(self.base, idx, e);
                self.dups.push(k);
            }
            1 if self.pairs == Pairs::Zset => {
                // Redis 7.0/8.2 check no score; Valkey 9.1 refuses NaN (`strtod` of the text) and nothing else.
                if let Elem::Bytes(b) = e
                    && !plain_decimal(b)
                    && crate::format::double::parse_text_double(b).is_none_or(|v| v.is_nan())
                {
                    if self.flavor == Flavor::Valkey && strtod_is_nan(b) {
                        self.first_err = Some(Error::corrupt(what, "NaN score (Valkey refuses it)", 0));
                    } else {
                        warn::note(b, WarningKind::ZsetScoreNotNumber);
                    }
                }
            }
            2 => {
                let Elem::Int(ttl) = e else {
                    self.first_err = Some(Error::corrupt(what, "field TTL is not an integer", 0));
                    return;
                };
                if !(0..=EXPIRE_MAX).contains(&ttl) {
                    self.first_err = Some(Error::corrupt(what, format!("field TTL {ttl} out of range"), 0));
                    return;
                }
                match self.last_ttl {
                    Some(0) if ttl != 0 => {
                        self.first_err = Some(Error::corrupt(what, "a field with a TTL follows one without", 0));
                        return;
                    }
                    Some(p) if ttl != 0 && ttl < p => {
                        self.first_err = Some(Error::corrupt(what, "field TTLs are not in ascending order", 0));
                        return;
                    }
                    _ => {}
                }
                self.last_ttl = Some(ttl);
            }
            _ => {}
        }
    }

    /// After a successful validation of `n` elements; `elems` walks them again (only when two keys share a hash).
    pub(super) fn finish<I: Iterator<Item = Result<Elem<'b>>>>(
        self,
        n: usize,
        elems: impl FnOnce() -> I,
    ) -> Result<()> {
        let (group, what) = (self.group, self.what);
        if !n.is_multiple_of(group) {
            return Err(Error::corrupt(what, format!("{n} elements is not a multiple of {group}"), 0));
        }
        if self.dups.suspect() {
            self.dups.start_exact();
            // Only the elements the fast pass looked at (it stops at the first bad score or TTL).
            for (idx, e) in elems().take(self.idx).enumerate().step_by(group) {
                let Ok(e) = e else { break };
                self.dups.push(Dups::elem_key(self.base, idx, e));
            }
            if self.dups.first_dup(self.base).is_some() {
                return Err(Error::corrupt(what, "duplicate member or field", 0));
            }
        }
        match self.first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Whether `b` is `-?[0-9]+(\.[0-9]+)?`: the form of nearly every listpack score, a number (never NaN) to every
/// parser involved, recognised without parsing it.
#[inline]
pub(super) fn plain_decimal(b: &[u8]) -> bool {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let (int, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    !int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// Whether Valkey 9.1's ziplist/listpack score check finds NaN in `b`. Observed on the server: `nan`, `-NaN`,
/// `+nan`, `nanx` and `NAN(abc)` are refused; ` nan`, `\tnan`, `1nan` and `abc` load. That is an optional sign,
/// then `nan` in any case, at the very start (a leading blank makes it not a number at all).
pub(super) fn strtod_is_nan(b: &[u8]) -> bool {
    let t = b.strip_prefix(b"-").or_else(|| b.strip_prefix(b"+")).unwrap_or(b);
    t.get(..3).is_some_and(|w| w.eq_ignore_ascii_case(b"nan"))
}

/// Duplicate detection for deep validation, reused across records so that it allocates only while growing.
///
/// Keys are collected with a 64-bit hash each. Sorting the hashes shows, in the common case, that they are all
/// distinct and so are the keys; otherwise the keys themselves are sorted so that equal keys are neighbours. A key
/// is an integer or a byte string: byte strings holding a canonical integer (see
/// [`crate::format::parse_canonical_i64`]) are turned into that integer, so keys compare equal exactly when their
/// logical Redis strings are equal, whether stored as text, as an integer or LZF-compressed. Sorting keeps the
/// worst case at O(n log n) comparisons whatever the input (no hash flooding).
///
/// That exact pass only runs when two keys share a hash. Before it, each key is only a 64-bit hash in an
/// open-addressing set (linear probing, at most 7/8 full): 8 bytes a slot, **9.1–18.3 bytes per member**, and no
/// sort; a repeat is almost always a real duplicate (an error), so the exact pass (40 bytes per member, the keys
/// walked again) runs about once per refused file, or when two distinct members' hashes collide.
#[derive(Debug, Default)]
pub(crate) struct Dups {
    /// The hash set of the fast pass (0 marks an empty slot; a hash of 0 is stored as 1). Only `set[..cap]` is in
    /// use, and the rest of the vector is all zero: a small collection after a large one clears only the slots
    /// it used, not the whole vector.
    pub(super) set: Vec<u64>,
    pub(super) cap: usize,
    pub(super) set_len: usize,
    /// A hash was seen twice.
    pub(super) suspect: bool,
    /// In the exact pass: keys are kept, not hashed into `set`.
    pub(super) exact: bool,
    /// Each key's position and value (its hash is in `hashes`), in the exact pass.
    pub(super) keys: Vec<(usize, KeySrc)>,
    /// The keys' hashes: when they are distinct (the common case), so are the keys.
    pub(super) hashes: Vec<u64>,
    /// Decompressed LZF keys.
    pub(super) arena: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct DupKey {
    pub(super) hash: u64,
    /// Where the item is (an offset in the base slice, or an element index): the order of the items.
    pub(super) pos: usize,
    pub(super) src: KeySrc,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum KeySrc {
    Int(i64),
    /// A range of the base slice the keys were taken from.
    Base(usize, usize),
    /// A range of the arena.
    Arena(usize, usize),
}

pub(super) const K1: u64 = 0x9E37_79B9_7F4A_7C15;
pub(super) const K2: u64 = 0xD6E8_FEB8_6659_FD93;

/// The folded 128-bit product: a cheap, well-mixing step.
#[inline(always)]
pub(super) fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline]
pub(super) fn hash_int(v: i64) -> u64 {
    fold_mul(v as u64 ^ K2, K1)
}

#[inline(always)]
pub(super) fn load_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
pub(super) fn load_u32(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// A fast, non-cryptographic hash; given the length, the words it mixes cover every byte.
#[inline]
pub(super) fn hash_bytes(b: &[u8]) -> u64 {
    let len = b.len();
    let mut h = fold_mul(len as u64 ^ K1, K2);
    if len >= 8 {
        let mut at = 0;
        while at + 8 <= len {
            h = fold_mul(h ^ load_u64(b, at), K1);
            at += 8;
        }
        if at < len {
            h = fold_mul(h ^ load_u64(b, len - 8), K2);
        }
    } else if len >= 4 {
        h = fold_mul(h ^ (load_u32(b, 0) | load_u32(b, len - 4) << 32), K2);
    } else if len > 0 {
        let v = u64::from(b[0]) << 16 | u64::from(b[len / 2]) << 8 | u64::from(b[len - 1]);
        h = fold_mul(h ^ v, K2);
    }
    h
}

impl Dups {
    /// Starts the fast pass over a new collection.
    pub(super) fn clear(&mut self) {
        // Memory for an unusually large collection is given back rather than kept for every later one.
        const KEEP: usize = 4096;
        if self.keys.capacity() > KEEP {
            self.keys = Vec::new();
            self.hashes = Vec::new();
        }
        if self.set.len() > KEEP * 2 {
            self.set = Vec::new();
        } else if self.set_len > 0 {
            self.set[..self.cap].fill(0);
        }
        self.cap = self.set.len().min(64);
        if self.arena.capacity() > KEEP * 16 {
            self.arena = Vec::new();
        }
        self.set_len = 0;
        self.suspect = false;
        self.exact = false;
        self.keys.clear();
        self.hashes.clear();
        self.arena.clear();
    }

    /// Whether the fast pass saw a hash twice (then the exact pass decides).
    pub(super) fn suspect(&self) -> bool {
        self.suspect
    }

    /// Starts the exact pass over the same collection: push its keys again.
    pub(super) fn start_exact(&mut self) {
        self.keys.clear();
        self.hashes.clear();
        self.arena.clear();
        self.exact = true;
    }

    #[inline]
    pub(super) fn push(&mut self, k: DupKey) {
        if self.exact {
            self.hashes.push(k.hash);
            self.keys.push((k.pos, k.src));
            return;
        }
        if let KeySrc::Arena(start, _) = k.src {
            // The fast pass needs only the hash of a decompressed key.
            self.arena.truncate(start);
        }
        if self.suspect {
            return;
        }
        if (self.set_len + 1) * 8 > self.cap * 7 {
            self.grow();
        }
        let h = k.hash.max(1);
        let mask = self.cap - 1;
        // The hash's high bits pick the slot (its low bits feed the multiply; either is well mixed).
        let mut at = (h >> 32 ^ h) as usize & mask;
        loop {
            match self.set[at] {
                0 => {
                    self.set[at] = h;
                    self.set_len += 1;
                    return;
                }
                x if x == h => {
                    self.suspect = true;
                    return;
                }
                _ => at = (at + 1) & mask,
            }
        }
    }

    pub(super) fn grow(&mut self) {
        let cap = (self.cap * 2).max(64);
        // The entries so far, moved out (the exact pass's hash list is free during the fast pass).
        let mut old = std::mem::take(&mut self.hashes);
        old.clear();
        old.extend(self.set[..self.cap].iter().copied().filter(|&h| h != 0));
        if self.set.len() < cap {
            self.set = vec![0; cap];
        } else {
            self.set[..self.cap].fill(0);
        }
        self.cap = cap;
        let mask = cap - 1;
        for &h in &old {
            let mut at = (h >> 32 ^ h) as usize & mask;
            while self.set[at] != 0 {
                at = (at + 1) & mask;
            }
            self.set[at] = h;
        }
        old.clear();
        self.hashes = old;
    }

    #[inline]
    pub(super) fn int_key(pos: usize, v: i64) -> DupKey {
        DupKey { hash: hash_int(v), pos, src: KeySrc::Int(v) }
    }

    /// The key of bytes `b`, which lie inside `base`.
    #[inline]
    pub(super) fn bytes_key(base: &[u8], pos: usize, b: &[u8]) -> DupKey {
        if let Some(v) = crate::format::parse_canonical_i64(b) {
            return Self::int_key(pos, v);
        }
        let start = (b.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        debug_assert!(start.checked_add(b.len()).is_some_and(|end| end <= base.len()));
        DupKey { hash: hash_bytes(b), pos, src: KeySrc::Base(start, b.len()) }
    }

    #[inline]
    pub(super) fn elem_key(base: &[u8], pos: usize, e: Elem<'_>) -> DupKey {
        match e {
            Elem::Int(v) => Self::int_key(pos, v),
            Elem::Bytes(b) => Self::bytes_key(base, pos, b),
        }
    }

    /// The key of string `s` (raw bytes inside `base`); an LZF string is decompressed into the arena.
    pub(super) fn str_key(&mut self, base: &[u8], pos: usize, s: &RdbStr<'_>) -> Result<DupKey> {
        match *s {
            RdbStr::Raw(b) => Ok(Self::bytes_key(base, pos, b)),
            RdbStr::Int(v) => Ok(Self::int_key(pos, v)),
            RdbStr::Lzf { len, .. } => {
                let start = self.arena.len();
                // Amortized growth (decode_into reserves exactly); on failure decode_into reports the error.
                let _ = self.arena.try_reserve(usize::try_from(len).unwrap_or(usize::MAX));
                s.decode_into(&mut self.arena)?;
                let b = &self.arena[start..];
                if let Some(v) = crate::format::parse_canonical_i64(b) {
                    self.arena.truncate(start);
                    return Ok(Self::int_key(pos, v));
                }
                Ok(DupKey { hash: hash_bytes(b), pos, src: KeySrc::Arena(start, b.len()) })
            }
        }
    }

    /// Whether two hashes are equal (false: all keys are distinct).
    pub(super) fn hashes_may_repeat(&mut self) -> bool {
        self.hashes.sort_unstable();
        self.hashes.windows(2).any(|w| w[0] == w[1])
    }

    /// After the exact pass: the position of the first key equal to an earlier one (in `pos` order), if any.
    /// Reorders the keys and their hashes (so call it once per set of keys).
    pub(super) fn first_dup(&mut self, base: &[u8]) -> Option<usize> {
        if self.keys.len() < 2 || !self.hashes_may_repeat() {
            return None;
        }
        let keys = &mut self.keys;
        let arena = &self.arena[..];
        let bytes = |src: KeySrc| -> &[u8] {
            match src {
                KeySrc::Base(s, n) => base.get(s..s + n).unwrap_or_default(),
                KeySrc::Arena(s, n) => arena.get(s..s + n).unwrap_or_default(),
                KeySrc::Int(_) => &[],
            }
        };
        // Only reached when two hashes are equal (a duplicate, in practice): sort by value.
        let cmp = |a: &(usize, KeySrc), b: &(usize, KeySrc)| -> Ordering {
            match (a.1, b.1) {
                (KeySrc::Int(x), KeySrc::Int(y)) => x.cmp(&y),
                (KeySrc::Int(_), _) => Ordering::Less,
                (_, KeySrc::Int(_)) => Ordering::Greater,
                (x, y) => bytes(x).cmp(bytes(y)),
            }
        };
        keys.sort_unstable_by(cmp);
        let mut first: Option<usize> = None;
        let mut i = 0;
        while i < keys.len() {
            // A run of equal keys: the second smallest position is where the repetition is found.
            let (mut lo, mut second) = (keys[i].0, usize::MAX);
            let mut j = i + 1;
            while j < keys.len() && cmp(&keys[j - 1], &keys[j]) == Ordering::Equal {
                let p = keys[j].0;
                if p < lo {
                    second = lo;
                    lo = p;
                } else if p < second {
                    second = p;
                }
                j += 1;
            }
            if j > i + 1 {
                first = Some(first.map_or(second, |f| f.min(second)));
            }
            i = j;
        }
        first
    }
}
