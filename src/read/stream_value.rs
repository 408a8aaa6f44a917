//! Redis stream values (types 15, 19, 21): listpack nodes of entries, the stream metadata, and consumer groups
//! with their pending-entry lists and consumers.
//!
//! [`StreamValue::parse`] decodes the metadata and keeps each node's listpack encoded; [`StreamValue::entries`]
//! decodes the entries (deltas against the node's master ID, SAMEFIELDS, deleted tombstones).

use crate::error::{Error, Result};
use crate::format::Elem;
use crate::format::length::{PError, PResult, array, le_i64, length};
use crate::format::listpack::Listpack;
use crate::format::string::{RdbStr, raw_str_exact, rdb_str};
use std::borrow::Cow;
use std::collections::HashSet;

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl StreamId {
    /// Parses the 16-byte big-endian form used for node keys and PEL entries.
    pub fn from_be_bytes(b: &[u8; 16]) -> StreamId {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId { ms: u64::from_be_bytes(ms), seq: u64::from_be_bytes(seq) }
    }

    /// The 16-byte big-endian form.
    pub fn to_be_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }
}

/// A decoded stream value; node listpacks stay encoded.
#[derive(Debug, Clone)]
pub struct StreamValue<'a> {
    /// Metadata version: 1 (type 15), 2 (type 19) or 3 (type 21).
    pub version: u8,
    /// Nodes: master ID and the listpack of entries.
    pub nodes: Vec<(StreamId, RdbStr<'a>)>,
    /// Number of live entries.
    pub length: u64,
    /// Last ID ever added.
    pub last_id: StreamId,
    /// v2+: first live entry ID.
    pub first_id: Option<StreamId>,
    /// v2+: greatest deleted ID.
    pub max_deleted_id: Option<StreamId>,
    /// v2+: number of entries ever added.
    pub entries_added: Option<u64>,
    /// Consumer groups.
    pub groups: Vec<Group<'a>>,
}

/// A consumer group.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    /// Group name.
    pub name: RdbStr<'a>,
    /// Last delivered ID.
    pub last_id: StreamId,
    /// v2+: entries read; `u64::MAX` stands for Redis's −1 ("invalid, recompute").
    pub entries_read: Option<u64>,
    /// Pending entries of the group.
    pub pel: Vec<PendingEntry>,
    /// Consumers.
    pub consumers: Vec<Consumer<'a>>,
}

/// A pending entry of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEntry {
    /// Entry ID.
    pub id: StreamId,
    /// Last delivery time, ms since the epoch.
    pub delivery_time: i64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone)]
pub struct Consumer<'a> {
    /// Consumer name.
    pub name: RdbStr<'a>,
    /// Last seen time, ms.
    pub seen_time: i64,
    /// v3: last active time, ms.
    pub active_time: Option<i64>,
    /// IDs this consumer owns (each must be in the group PEL).
    pub pel: Vec<StreamId>,
}

/// One decoded stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Entry ID.
    pub id: StreamId,
    /// Field/value pairs in order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

fn stream_id_lens(i: &[u8]) -> PResult<'_, StreamId> {
    let (r, ms) = length(i)?;
    let (r, seq) = length(r)?;
    Ok((r, StreamId { ms, seq }))
}

fn raw_id(i: &[u8]) -> PResult<'_, StreamId> {
    let (r, b) = array::<16>(i)?;
    Ok((r, StreamId::from_be_bytes(&b)))
}

impl<'a> StreamValue<'a> {
    /// Decodes a stream value body of metadata `version` (1–3).
    pub fn parse(raw: &'a [u8], version: u8) -> Result<StreamValue<'a>> {
        match parse(raw, version) {
            Ok((_, v)) => Ok(v),
            Err(nom::Err::Incomplete(_)) => Err(Error::truncated("stream", 0, raw.len() as u64)),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                let off = e.offset_in(raw, 0);
                Err(e.error.at(off))
            }
        }
    }

    /// Decodes every live entry, in ID order.
    pub fn entries(&self) -> Result<Vec<StreamEntry>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for (master, lp) in &self.nodes {
            let bytes: Cow<'_, [u8]> = match lp {
                RdbStr::Raw(b) => Cow::Borrowed(b),
                other => {
                    buf.clear();
                    other.decode_into(&mut buf)?;
                    Cow::Borrowed(&buf[..])
                }
            };
            decode_node(*master, &bytes, &mut |e| out.push(e))?;
        }
        Ok(out)
    }
}

fn parse(i: &[u8], version: u8) -> PResult<'_, StreamValue<'_>> {
    let (mut r, n) = length(i)?;
    let mut nodes = Vec::new();
    for _ in 0..n {
        let (r2, key) = raw_str_exact(r, 16)?;
        let mut k = [0u8; 16];
        k.copy_from_slice(key);
        let at = r2;
        let (r2, lp) = rdb_str(r2)?;
        if matches!(lp, RdbStr::Int(_)) || lp.logical_len() == 0 {
            return PError::nested(at, Error::corrupt("stream", "empty or integer listpack node", 0));
        }
        nodes.push((StreamId::from_be_bytes(&k), lp));
        r = r2;
    }
    let (r, length_) = length(r)?;
    let (mut r, last_id) = stream_id_lens(r)?;
    let (mut first_id, mut max_deleted_id, mut entries_added) = (None, None, None);
    if version >= 2 {
        let (r2, f) = stream_id_lens(r)?;
        let (r2, m) = stream_id_lens(r2)?;
        let (r2, a) = length(r2)?;
        (first_id, max_deleted_id, entries_added) = (Some(f), Some(m), Some(a));
        r = r2;
    }
    let (mut r, ngroups) = length(r)?;
    let mut groups = Vec::new();
    for _ in 0..ngroups {
        let (r2, name) = rdb_str(r)?;
        let (mut r2, last) = stream_id_lens(r2)?;
        let mut entries_read = None;
        if version >= 2 {
            let (r3, er) = length(r2)?;
            entries_read = Some(er);
            r2 = r3;
        }
        let (mut r2, npel) = length(r2)?;
        let mut pel = Vec::new();
        for _ in 0..npel {
            let (r3, id) = raw_id(r2)?;
            let (r3, delivery_time) = le_i64(r3)?;
            let (r3, delivery_count) = length(r3)?;
            pel.push(PendingEntry { id, delivery_time, delivery_count });
            r2 = r3;
        }
        let (mut r2, ncons) = length(r2)?;
        let mut consumers = Vec::new();
        for _ in 0..ncons {
            let (r3, cname) = rdb_str(r2)?;
            let (mut r3, seen_time) = le_i64(r3)?;
            let mut active_time = None;
            if version >= 3 {
                let (r4, a) = le_i64(r3)?;
                active_time = Some(a);
                r3 = r4;
            }
            let (mut r3, ncpel) = length(r3)?;
            let mut cpel = Vec::new();
            for _ in 0..ncpel {
                let (r4, id) = raw_id(r3)?;
                cpel.push(id);
                r3 = r4;
            }
            consumers.push(Consumer { name: cname, seen_time, active_time, pel: cpel });
            r2 = r3;
        }
        groups.push(Group { name, last_id: last, entries_read, pel, consumers });
        r = r2;
    }
    Ok((r, StreamValue { version, nodes, length: length_, last_id, first_id, max_deleted_id, entries_added, groups }))
}

/// Walks (and with `deep`, validates) a stream value.
///
/// `valkey` adds what Valkey 9.1 checks and Redis does not (observed by loading files into both): each node's
/// live and deleted counts equal the entries without and with the DELETED flag ("Stream listpack integrity check
/// failed"), and the stream length equals the live entries ("Stream length inconsistent with the number of valid
/// entries").
pub(crate) fn walk<'a>(i: &'a [u8], version: u8, deep: bool, valkey: bool, scratch: &mut Vec<u8>) -> PResult<'a, ()> {
    let (r, v) = parse(i, version)?;
    if deep && let Err(e) = validate(&v, valkey, scratch) {
        return PError::nested(i, e.at(0));
    }
    Ok((r, ()))
}

/// Checks the invariants Redis's deep sanitization checks.
fn validate(v: &StreamValue<'_>, valkey: bool, scratch: &mut Vec<u8>) -> Result<()> {
    if v.nodes.is_empty() && v.length > 0 {
        return Err(Error::corrupt("stream", format!("length {} but no nodes", v.length), 0));
    }
    let mut seen_nodes = HashSet::new();
    let mut live_total = 0u64;
    for (master, lp) in &v.nodes {
        if !seen_nodes.insert(*master) {
            return Err(Error::corrupt("stream", format!("duplicate node {master}"), 0));
        }
        scratch.clear();
        lp.decode_into(scratch)?;
        // Redis validates a node's listpack entry by entry but never compares its `num_elements` header with
        // them (`streamValidateListpackIntegrity` checks the header size only): a wrong count loads. Valkey 9.1
        // refuses it ("Stream listpack integrity check failed.", observed).
        let node = Listpack::new(scratch)?;
        let n = if valkey { node.validate()? } else { node.validate_elements()? };
        if node.header_count().is_some_and(|h| h != n) {
            let at = match lp {
                RdbStr::Raw(b) => b,
                RdbStr::Lzf { compressed, .. } => compressed,
                RdbStr::Int(_) => &[][..],
            };
            crate::read::note_warning(at, crate::read::WarningKind::StreamNodeCount);
        }
        let (live, deleted, flagged) = walk_node(*master, scratch, None)?;
        if valkey && (flagged != deleted) {
            return Err(Error::corrupt(
                "stream node",
                format!("{deleted} entries counted deleted, {flagged} flagged deleted (Valkey refuses it)"),
                0,
            ));
        }
        live_total = live_total.saturating_add(live);
    }
    if valkey && live_total != v.length {
        return Err(Error::corrupt(
            "stream",
            format!("length {} but {live_total} live entries (Valkey refuses it)", v.length),
            0,
        ));
    }
    let mut names = HashSet::new();
    for g in &v.groups {
        if !names.insert(g.name.decode()?.into_owned()) {
            return Err(Error::corrupt("stream", "duplicate consumer group", 0));
        }
        let pel: HashSet<StreamId> = g.pel.iter().map(|p| p.id).collect();
        if pel.len() != g.pel.len() {
            return Err(Error::corrupt("stream", "duplicate ID in a group PEL", 0));
        }
        let mut cnames = HashSet::new();
        let mut owned = HashSet::new();
        for c in &g.consumers {
            if !cnames.insert(c.name.decode()?.into_owned()) {
                return Err(Error::corrupt("stream", "duplicate consumer", 0));
            }
            for id in &c.pel {
                if !pel.contains(id) {
                    return Err(Error::corrupt(
                        "stream",
                        format!("consumer PEL entry {id} is not in the group PEL"),
                        0,
                    ));
                }
                if !owned.insert(*id) {
                    return Err(Error::corrupt("stream", format!("PEL entry {id} owned by two consumers"), 0));
                }
            }
        }
        // Every server refuses a group PEL entry no consumer owns ("Stream CG PEL entry without consumer").
        if let Some(p) = g.pel.iter().find(|p| !owned.contains(&p.id)) {
            return Err(Error::corrupt("stream", format!("group PEL entry {} has no consumer", p.id), 0));
        }
    }
    Ok(())
}

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// Decodes the entries of one node listpack, calling `f` for each live entry; checks the node's structure.
fn decode_node(master: StreamId, lp: &[u8], f: &mut dyn FnMut(StreamEntry)) -> Result<()> {
    walk_node(master, lp, Some(f)).map(|_| ())
}

/// Walks the entries of one node listpack, checking its structure; with `f`, decodes each live entry for it
/// (validation alone passes `None` and allocates nothing per entry). Returns the master entry's live count, its
/// deleted count, and the number of entries with the DELETED flag.
fn walk_node(master: StreamId, lp: &[u8], mut f: Option<&mut dyn FnMut(StreamEntry)>) -> Result<(u64, u64, u64)> {
    let bad = |d: &str| Error::corrupt("stream node", d.to_string(), 0);
    let lpv = Listpack::new(lp)?;
    let mut it = lpv.iter();
    let mut next = || -> Result<Elem<'_>> { it.next().ok_or_else(|| bad("listpack ends inside an entry"))? };
    let int = |e: Elem<'_>| e.as_i64().ok_or_else(|| bad("expected an integer"));
    let count = int(next()?)?;
    let deleted = int(next()?)?;
    let nmaster = int(next()?)?;
    if count < 0 || deleted < 0 || nmaster < 0 {
        return Err(bad("negative count in master entry"));
    }
    let total = count.checked_add(deleted).ok_or_else(|| bad("entry count overflows"))?;
    if total == 0 {
        return Err(bad("node with no entries"));
    }
    let decode = f.is_some();
    let mut flagged = 0u64;
    let mut master_fields = Vec::new();
    for _ in 0..nmaster {
        let name = next()?;
        if decode {
            master_fields.push(name.to_vec());
        }
    }
    if int(next()?)? != 0 {
        return Err(bad("master entry terminator is not 0"));
    }
    for _ in 0..total {
        let flags = int(next()?)?;
        let ms_delta = int(next()?)?;
        let seq_delta = int(next()?)?;
        let id =
            StreamId { ms: master.ms.wrapping_add(ms_delta as u64), seq: master.seq.wrapping_add(seq_delta as u64) };
        let mut fields = Vec::new();
        let same = flags & FLAG_SAMEFIELDS != 0;
        let nfields = if same {
            for i in 0..nmaster {
                let v = next()?;
                if let Some(name) = master_fields.get(i as usize) {
                    fields.push((name.clone(), v.to_vec()));
                }
            }
            nmaster
        } else {
            let n = int(next()?)?;
            if n < 0 {
                return Err(bad("negative field count"));
            }
            for _ in 0..n {
                let k = next()?;
                let v = next()?;
                if decode {
                    fields.push((k.to_vec(), v.to_vec()));
                }
            }
            n
        };
        let lp_count = i128::from(int(next()?)?);
        let expect = if same { i128::from(nfields) + 3 } else { 2 * i128::from(nfields) + 4 };
        if lp_count != expect {
            return Err(bad("entry back-count does not match its fields"));
        }
        flagged += u64::from(flags & FLAG_DELETED != 0);
        if flags & FLAG_DELETED == 0
            && let Some(f) = f.as_mut()
        {
            f(StreamEntry { id, fields });
        }
    }
    if it.next().is_some() {
        return Err(bad("extra elements after the last entry"));
    }
    Ok((count as u64, deleted as u64, flagged))
}

/// What a server loading a stream of the first layout (RDB 9, no stored entries-read) sets a consumer group's
/// entries-read to: Redis's `streamEstimateDistanceFromFirstEverEntry` for a group whose last delivered ID is `id`,
/// given the stream's length, last ID, first ID, greatest deleted ID and entries added. `u64::MAX` is "unknown".
pub(crate) fn estimate_entries_read(
    length: u64,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    id: StreamId,
) -> u64 {
    const INVALID: u64 = u64::MAX;
    if entries_added == 0 {
        return 0;
    }
    if length == 0 && id <= last_id {
        return entries_added;
    }
    match id.cmp(&last_id) {
        std::cmp::Ordering::Equal => return entries_added,
        std::cmp::Ordering::Greater => return INVALID,
        std::cmp::Ordering::Less => {}
    }
    if max_deleted == StreamId::default() || max_deleted < first_id {
        match id.cmp(&first_id) {
            std::cmp::Ordering::Less => return entries_added.saturating_sub(length),
            std::cmp::Ordering::Equal => return entries_added.saturating_sub(length) + 1,
            std::cmp::Ordering::Greater => {}
        }
    }
    INVALID
}
