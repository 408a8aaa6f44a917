//! [`ClusterSplit`]: keys routed to one sink per shard by hash slot, with exact hints ([`shard_hints`]).

use super::*;
use crate::cluster::ShardLayout;
use crate::error::{Error, ErrorKind, Result};
use crate::read::{Record, RecordKind};
use std::collections::BTreeMap;

/// Per-shard key counts, gathered by a first pass so each shard's RESIZEDB and SLOT_INFO hints are exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardHints {
    /// Keys in database 0 of the shard.
    pub keys: u64,
    /// Of which with an expiry.
    pub expires: u64,
    /// Per slot: keys and keys with an expiry.
    pub slots: BTreeMap<u16, (u64, u64)>,
}

/// Keys (and keys with an expiry) per hash slot, counted in a flat table while a file is walked.
#[derive(Debug, Clone)]
pub struct SlotCounts(Box<[(u64, u64)]>);

impl Default for SlotCounts {
    fn default() -> Self {
        SlotCounts(vec![(0, 0); usize::from(crate::cluster::SLOTS)].into_boxed_slice())
    }
}

impl SlotCounts {
    /// Counts `key`.
    pub fn add(&mut self, key: &[u8], has_expiry: bool) {
        let c = &mut self.0[usize::from(crate::cluster::key_hash_slot(key))];
        c.0 += 1;
        c.1 += u64::from(has_expiry);
    }

    /// The per-shard hints for `layout`.
    pub fn hints(&self, layout: &ShardLayout) -> Vec<ShardHints> {
        let mut hints = vec![ShardHints::default(); layout.len()];
        for (slot, &(k, x)) in self.0.iter().enumerate() {
            if k == 0 {
                continue;
            }
            let slot = slot as u16;
            if let Some(i) = layout.shard_of_slot(slot) {
                let h = &mut hints[i];
                h.keys += k;
                h.expires += x;
                h.slots.insert(slot, (k, x));
            }
        }
        hints
    }
}

/// Counts keys per shard (database 0 only) for [`ClusterSplit`]'s hints.
pub fn shard_hints(source: &mut dyn RecordSource, layout: &ShardLayout) -> Result<Vec<ShardHints>> {
    let mut counts = SlotCounts::default();
    while let Some(rec) = source.next_rec()? {
        if let RecordKind::Entry(e) = rec.kind
            && e.db == 0
        {
            counts.add(&e.key.decode()?, e.expiry.is_some());
        }
    }
    Ok(counts.hints(layout))
}

/// Routes keys of database 0 to one sink per shard by hash slot; every shard gets the AUX fields, function
/// libraries and module AUX records, so each is a complete RDB. Keys in other databases are counted and dropped
/// (a cluster has database 0 only).
pub struct ClusterSplit<S> {
    layout: ShardLayout,
    shards: Vec<S>,
    hints: Option<Vec<ShardHints>>,
    db: u64,
    opened: Vec<bool>,
    keys: Vec<u64>,
    dropped: BTreeMap<u64, u64>,
    buf: Vec<u8>,
}

impl<S: RecordSink> ClusterSplit<S> {
    /// A splitter over `shards` (one sink per shard of `layout`, in order). With `hints` (from
    /// [`shard_hints`]), each shard gets exact RESIZEDB and, for Redis ≥ 7.4 targets, SLOT_INFO records. Without,
    /// it writes none: give the shards [`WriterSink::recounting_hints`] to have them counted while writing, in
    /// one pass.
    pub fn new(layout: ShardLayout, shards: Vec<S>, hints: Option<Vec<ShardHints>>) -> Result<Self> {
        if shards.len() != layout.len() || hints.as_ref().is_some_and(|h| h.len() != layout.len()) {
            return Err(Error::without_offset(ErrorKind::Invalid(format!(
                "{} shard outputs for a layout of {} shards",
                shards.len(),
                layout.len()
            ))));
        }
        let n = shards.len();
        Ok(ClusterSplit {
            layout,
            shards,
            hints,
            db: 0,
            opened: vec![false; n],
            keys: vec![0; n],
            dropped: BTreeMap::new(),
            buf: Vec::new(),
        })
    }

    /// Keys routed to each shard.
    pub fn keys_per_shard(&self) -> &[u64] {
        &self.keys
    }

    /// Keys dropped because they are not in database 0, per database.
    pub fn dropped_keys(&self) -> &BTreeMap<u64, u64> {
        &self.dropped
    }

    /// The shard sinks.
    pub fn shards(&self) -> &[S] {
        &self.shards
    }

    /// The layout.
    pub fn layout(&self) -> &ShardLayout {
        &self.layout
    }

    /// Consumes the splitter, returning the shard sinks.
    pub fn into_shards(self) -> Vec<S> {
        self.shards
    }

    /// Writes SELECTDB 0 (and hints) to shard `i` before its first key.
    fn open(&mut self, i: usize, offset: u64) -> Result<()> {
        crate::format::opcode::select_db_record(0, &mut self.buf);
        let rec = Record { offset, raw: &self.buf, kind: RecordKind::SelectDb { db: 0 } };
        self.shards[i].record(&rec)?;
        if let Some(h) = self.hints.as_ref().map(|h| h[i].clone()) {
            crate::format::opcode::resize_db_record(h.keys, h.expires, &mut self.buf);
            let rec = Record {
                offset,
                raw: &self.buf,
                kind: RecordKind::ResizeDb { db_size: h.keys, expires_size: h.expires },
            };
            self.shards[i].record(&rec)?;
            for (slot, (k, x)) in &h.slots {
                crate::format::opcode::slot_info_record(u64::from(*slot), *k, *x, &mut self.buf);
                let rec = Record {
                    offset,
                    raw: &self.buf,
                    kind: RecordKind::SlotInfo { slot: u64::from(*slot), size: *k, expires_size: *x },
                };
                self.shards[i].record(&rec)?;
            }
        }
        self.opened[i] = true;
        Ok(())
    }
}

impl<S: RecordSink> RecordSink for ClusterSplit<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        match rec.kind {
            RecordKind::SelectDb { db } => {
                self.db = db;
                Ok(())
            }
            // Hints are per shard: recomputed in `open` from the first pass, or left out.
            RecordKind::ResizeDb { .. } | RecordKind::SlotInfo { .. } => Ok(()),
            RecordKind::Entry(e) => {
                if e.db != 0 {
                    *self.dropped.entry(e.db).or_default() += 1;
                    return Ok(());
                }
                let key = e.key.decode()?;
                let i = self.layout.shard_of(&key);
                if !self.opened[i] {
                    self.open(i, rec.offset)?;
                }
                self.keys[i] += 1;
                self.shards[i].record(rec)
            }
            _ => {
                for s in &mut self.shards {
                    s.record(rec)?;
                }
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        for s in &mut self.shards {
            s.finish()?;
        }
        Ok(())
    }
}
