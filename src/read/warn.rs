//! Warnings: oddities in a file that the servers load anyway.
//!
//! Deep validation gives the server's verdict (Redis 7.0 for RDB ≤ 10, Redis 8.2 for RDB 11–12, Valkey 9.1 for
//! `VALKEY080`, all with `sanitize-dump-payload yes`). Some bytes no server writes are still loaded — a plain length
//! in the `11xxxxxx` form, an LZF string of uncompressed length 0, a text score with bytes after the number, an
//! expiry right before EOF… Such a file is accepted, and each oddity is recorded as a [`Warning`] (where, which
//! database and key, what) so that `rdbkit verify` can report it and `verify --strict` can refuse it.
//!
//! The readers keep the first [`Warnings::KEPT`] warnings and a count of all of them, so memory stays bounded
//! whatever the input. Decoders deep inside the parser report an oddity with `note` (a thread-local list the
//! record parser drains after each record), so the primitives need no extra parameter on their hot paths.

use std::cell::RefCell;
use std::fmt;

/// What kind of oddity was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// A plain length (a count, a database number…) stored in the `11xxxxxx` string-encoding form: the server
    /// reads its low 6 bits as the length.
    EncodedPlainLength,
    /// An LZF string whose uncompressed length is 0: the server loads an empty string whatever the compressed
    /// bytes are.
    EmptyLzf,
    /// A text (RDB ≤ 7) double with leading blanks or bytes after the number: the server reads the number that
    /// `sscanf("%lg")` finds at the start.
    TextDoubleTrailing,
    /// A ziplist/listpack sorted-set score that is NaN or not a number at all: Redis loads it (and reads a
    /// non-number as 0); Valkey refuses NaN.
    ZsetScoreNotNumber,
    /// A stream node listpack whose `num_elements` header does not match its elements: Redis and Valkey do not
    /// check it for stream nodes.
    StreamNodeCount,
    /// A listpack back-length with a redundant continuation bit that still decodes to the element size the way
    /// the server decodes it.
    ListpackBacklen,
    /// Key metadata (expiry, idle time, frequency) directly before the EOF opcode: the server ignores it.
    MetadataBeforeEof,
    /// The same key twice in a database where one copy is expired or an empty collection, which the server skips
    /// when loading as a master (so the file loads; a replica would abort on it).
    DuplicateKeySkipped,
}

impl WarningKind {
    /// Whether only deep validation finds it (the walk without deep validation cannot).
    pub(crate) fn is_deep(self) -> bool {
        matches!(self, WarningKind::ZsetScoreNotNumber | WarningKind::StreamNodeCount | WarningKind::ListpackBacklen)
    }

    /// A sentence saying what was found and what the server does with it.
    pub fn describe(self) -> &'static str {
        match self {
            WarningKind::EncodedPlainLength => {
                "a length stored in the 11xxxxxx (string encoding) form; the server reads its low 6 bits"
            }
            WarningKind::EmptyLzf => "an LZF string of uncompressed length 0; the server loads an empty string",
            WarningKind::TextDoubleTrailing => {
                "a text double with extra bytes around the number; the server takes the numeric prefix"
            }
            WarningKind::ZsetScoreNotNumber => {
                "a sorted-set score that is not a number (NaN loads into Redis only); the server loads it"
            }
            WarningKind::StreamNodeCount => "a stream node listpack whose element count header is wrong (not checked)",
            WarningKind::ListpackBacklen => "a listpack back-length with a redundant continuation bit",
            WarningKind::MetadataBeforeEof => "key metadata (expiry, idle, freq) directly before EOF; ignored",
            WarningKind::DuplicateKeySkipped => {
                "the same key twice in one database, one copy expired or empty (skipped by a master; a replica aborts)"
            }
        }
    }
}

/// One oddity: where it is, in which database and key when known, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Byte offset in the (decompressed) input: of the odd bytes when known, else of the record holding them.
    pub offset: u64,
    /// Database being read.
    pub db: Option<u64>,
    /// Key of the record, for key records.
    pub key: Option<Vec<u8>>,
    /// What was found.
    pub kind: WarningKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning at byte {}: {}", self.offset, self.kind.describe())?;
        match (self.db, &self.key) {
            (Some(db), Some(k)) => write!(f, " (db {db}, key {})", crate::escape_bytes(k)),
            (Some(db), None) => write!(f, " (db {db})"),
            (None, Some(k)) => write!(f, " (key {})", crate::escape_bytes(k)),
            (None, None) => Ok(()),
        }
    }
}

/// The warnings of one read: how many there were, and the first [`Warnings::KEPT`] of them in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings {
    count: u64,
    first: Vec<Warning>,
}

impl Warnings {
    /// How many warnings are kept in full (the rest are only counted).
    pub const KEPT: usize = 100;

    /// The number of warnings found.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether there were none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first warnings found (at most [`Warnings::KEPT`]), in file order.
    pub fn first(&self) -> &[Warning] {
        &self.first
    }

    pub(crate) fn push(&mut self, w: Warning) {
        self.count += 1;
        if self.first.len() < Self::KEPT {
            self.first.push(w);
        }
    }

    /// Adds the warnings of another part of the same read (the parallel drive validates on two threads), keeping
    /// the first ones in file order.
    pub(crate) fn merge(&mut self, other: Warnings) {
        self.count += other.count;
        self.first.extend(other.first);
        self.first.sort_by_key(|w| w.offset);
        self.first.truncate(Self::KEPT);
    }

    /// Counts of each kind among the kept warnings, in first-seen order (for a summary line).
    pub fn kinds(&self) -> Vec<(WarningKind, usize)> {
        let mut out: Vec<(WarningKind, usize)> = Vec::new();
        for w in &self.first {
            match out.iter_mut().find(|(k, _)| *k == w.kind) {
                Some((_, n)) => *n += 1,
                None => out.push((w.kind, 1)),
            }
        }
        out
    }
}

/// Notes of the record being parsed: the address of the odd bytes and the kind. Bounded: a record with more
/// oddities than this keeps the first ones (the count of a kind inside one record is not interesting).
const MAX_NOTES: usize = 16;

thread_local! {
    static NOTES: RefCell<Vec<(usize, WarningKind)>> = const { RefCell::new(Vec::new()) };
}

/// Records an oddity found at `at` (a pointer into the bytes being parsed, or into decompressed data, in which
/// case the record's offset is reported).
pub(crate) fn note(at: &[u8], kind: WarningKind) {
    let addr = at.as_ptr() as usize;
    NOTES.with(|n| {
        let mut n = n.borrow_mut();
        if n.len() < MAX_NOTES && !n.iter().any(|&(a, k)| a == addr && k == kind) {
            n.push((addr, kind));
        }
    });
}

/// Forgets the notes (before a parse attempt).
pub(crate) fn clear_notes() {
    NOTES.with(|n| {
        let mut n = n.borrow_mut();
        if !n.is_empty() {
            n.clear();
        }
    });
}

/// Takes the notes of the last parse, as (offset, kind): offsets inside `input` (at file offset `offset`) become
/// file offsets, others the record's offset.
pub(crate) fn take_notes(input: &[u8], offset: u64, mut each: impl FnMut(u64, WarningKind)) {
    NOTES.with(|n| {
        let mut n = n.borrow_mut();
        if n.is_empty() {
            return;
        }
        let start = input.as_ptr() as usize;
        for (addr, kind) in n.drain(..) {
            let at = if addr >= start && addr < start + input.len() { offset + (addr - start) as u64 } else { offset };
            each(at, kind);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_ordered() {
        let mut w = Warnings::default();
        for i in 0..(Warnings::KEPT as u64 + 50) {
            w.push(Warning { offset: 1000 + i, db: Some(0), key: None, kind: WarningKind::EmptyLzf });
        }
        assert_eq!(w.count(), Warnings::KEPT as u64 + 50);
        assert_eq!(w.first().len(), Warnings::KEPT);
        let mut other = Warnings::default();
        other.push(Warning { offset: 5, db: None, key: Some(b"k".to_vec()), kind: WarningKind::StreamNodeCount });
        w.merge(other);
        assert_eq!(w.count(), Warnings::KEPT as u64 + 51);
        assert_eq!(w.first()[0].offset, 5);
        assert_eq!(w.first().len(), Warnings::KEPT);
        assert_eq!(w.kinds(), vec![(WarningKind::StreamNodeCount, 1), (WarningKind::EmptyLzf, Warnings::KEPT - 1)]);
        assert!(w.first()[0].to_string().contains("key \"k\""), "{}", w.first()[0]);
    }

    #[test]
    fn notes_map_to_offsets() {
        let input = [0u8; 10];
        clear_notes();
        note(&input[3..], WarningKind::EmptyLzf);
        note(&input[3..], WarningKind::EmptyLzf);
        note(&[1u8][..], WarningKind::EncodedPlainLength);
        let mut got = Vec::new();
        take_notes(&input, 100, |o, k| got.push((o, k)));
        assert_eq!(got, vec![(103, WarningKind::EmptyLzf), (100, WarningKind::EncodedPlainLength)]);
        take_notes(&input, 100, |_, _| panic!("drained"));
    }
}
