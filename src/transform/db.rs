//! [`DbFilter`]: the database limit, selection and moves ([`DbRules`]) — where a tier's database limit is applied.

use super::*;
use crate::error::Result;
use crate::read::{Record, RecordKind};
use std::collections::BTreeMap;

/// Which databases to keep and where to put them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbRules {
    /// Keep only databases whose (remapped) index is below this (a server's `databases` setting).
    pub limit: Option<u64>,
    /// Keep only this source database.
    pub only: Option<u64>,
    /// Move source database → target database.
    pub moves: BTreeMap<u64, u64>,
}

impl DbRules {
    /// The target database for source `db`, or `None` if it is dropped.
    pub fn map(&self, db: u64) -> Option<u64> {
        if self.only.is_some_and(|o| o != db) {
            return None;
        }
        let target = self.moves.get(&db).copied().unwrap_or(db);
        if self.limit.is_some_and(|l| target >= l) {
            return None;
        }
        Some(target)
    }
}

/// Keeps, drops and renumbers databases; counts the keys it drops per source database.
pub struct DbFilter<S> {
    next: S,
    rules: DbRules,
    keeping: bool,
    buf: Vec<u8>,
    dropped: BTreeMap<u64, u64>,
}

impl<S: RecordSink> DbFilter<S> {
    /// A filter with the given rules.
    pub fn new(next: S, rules: DbRules) -> Self {
        DbFilter { next, keeping: rules.map(0).is_some(), rules, buf: Vec::new(), dropped: BTreeMap::new() }
    }

    /// Keeps databases `0..limit`.
    pub fn limit(next: S, limit: u64) -> Self {
        Self::new(next, DbRules { limit: Some(limit), ..DbRules::default() })
    }

    /// Keys dropped, per source database.
    pub fn dropped_keys(&self) -> &BTreeMap<u64, u64> {
        &self.dropped
    }

    /// The next sink.
    pub fn inner(&self) -> &S {
        &self.next
    }

    /// The next sink.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.next
    }

    /// Consumes the filter, returning the next sink.
    pub fn into_inner(self) -> S {
        self.next
    }
}

impl<S: RecordSink> RecordSink for DbFilter<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        match rec.kind {
            RecordKind::SelectDb { db } => match self.rules.map(db) {
                Some(target) => {
                    self.keeping = true;
                    if target == db {
                        self.next.record(rec)
                    } else {
                        crate::format::opcode::select_db_record(target, &mut self.buf);
                        let synth =
                            Record { offset: rec.offset, raw: &self.buf, kind: RecordKind::SelectDb { db: target } };
                        self.next.record(&synth)
                    }
                }
                None => {
                    self.keeping = false;
                    Ok(())
                }
            },
            RecordKind::Entry(e) => {
                if self.rules.map(e.db).is_some() {
                    self.next.record(rec)
                } else {
                    *self.dropped.entry(e.db).or_default() += 1;
                    Ok(())
                }
            }
            RecordKind::ResizeDb { .. } | RecordKind::SlotInfo { .. } if !self.keeping => Ok(()),
            _ => self.next.record(rec),
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
}
