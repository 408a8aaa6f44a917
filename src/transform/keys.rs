//! [`KeyFilter`]: keys kept by glob, type and expiry, with counts of what was dropped.

use super::glob::Glob;
use super::*;
use crate::error::Result;
use crate::read::{LogicalType, Record, RecordKind};

/// Why a key filter dropped a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyFilterCounts {
    /// Keys not matching the glob.
    pub pattern: u64,
    /// Keys of another type.
    pub r#type: u64,
    /// Keys already expired at the reference time.
    pub expired: u64,
}

/// Keeps keys matching a glob, of given types, and not expired at a reference time.
pub struct KeyFilter<S> {
    next: S,
    glob: Option<Glob>,
    types: Option<Vec<LogicalType>>,
    expired_before_ms: Option<i64>,
    counts: KeyFilterCounts,
}

impl<S: RecordSink> KeyFilter<S> {
    /// A filter that keeps everything until configured.
    pub fn new(next: S) -> Self {
        KeyFilter { next, glob: None, types: None, expired_before_ms: None, counts: KeyFilterCounts::default() }
    }

    /// Keeps only keys matching the Redis glob `pattern`.
    pub fn matching(mut self, pattern: &[u8]) -> Self {
        self.glob = Some(Glob::new(pattern));
        self
    }

    /// Keeps only keys of these types.
    pub fn of_types(mut self, types: Vec<LogicalType>) -> Self {
        self.types = Some(types);
        self
    }

    /// Drops keys whose expiry is at or before `now_ms` (as a loading master would).
    pub fn drop_expired_at(mut self, now_ms: i64) -> Self {
        self.expired_before_ms = Some(now_ms);
        self
    }

    /// What was dropped, by reason.
    pub fn counts(&self) -> KeyFilterCounts {
        self.counts
    }

    /// The next sink.
    pub fn inner(&self) -> &S {
        &self.next
    }

    /// Consumes the filter, returning the next sink.
    pub fn into_inner(self) -> S {
        self.next
    }
}

impl<S: RecordSink> RecordSink for KeyFilter<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        if let RecordKind::Entry(e) = rec.kind {
            if let Some(now) = self.expired_before_ms
                && e.expiry.is_some_and(|x| x.as_millis() <= now)
            {
                self.counts.expired += 1;
                return Ok(());
            }
            if let Some(types) = &self.types
                && !types.contains(&e.value.logical_type())
            {
                self.counts.r#type += 1;
                return Ok(());
            }
            if let Some(g) = &self.glob
                && !g.matches(&e.key.decode()?)
            {
                self.counts.pattern += 1;
                return Ok(());
            }
        }
        self.next.record(rec)
    }

    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
}
