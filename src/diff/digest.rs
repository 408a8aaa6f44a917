//! The logical digest of one value: 128 bits that are equal for two values exactly when a server holding them
//! would answer every read command alike (up to hash collisions), whatever their encodings.
//!
//! * Strings and lists hash their bytes / elements in order (an integer-encoded element hashes as its decimal
//!   text, as the server returns it).
//! * Sets, hashes and sorted sets hash each member (with its value and field TTL, or its score) on its own and add
//!   the member hashes (mod 2¹²⁸), so the order the members were stored in does not matter.
//! * Streams hash their entries in order, then the metadata a server keeps — length, last ID, first ID, greatest
//!   deleted ID, entries added — and the consumer groups (each with its last ID, entries read, PEL and consumers,
//!   groups and consumers in any order). Metadata an older stream layout does not store is filled in the way a
//!   server loading that layout fills it in (`rdbLoadObject`): first ID from the first entry, greatest deleted ID
//!   0-0, entries added = length, a group's entries read estimated from its last ID
//!   (`streamEstimateDistanceFromFirstEverEntry`), a consumer's active time = its seen time.
//! * Module values hash their module id and raw payload (opaque: two encodings of the same module data differ).
//! * Function libraries hash their code.

use crate::error::Result;
use crate::read::stream_value::StreamId;
use crate::read::{Item, LogicalType, Value};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

/// `entries_read` a server keeps for "unknown" (Redis's `SCG_INVALID_ENTRIES_READ`, −1).
#[cfg(test)]
const ENTRIES_READ_INVALID: u64 = u64::MAX;

/// The digest of a function library's code.
pub fn function_digest(code: &[u8]) -> u128 {
    xxh3_128(code)
}

/// The logical digest of `value` (see the module docs).
///
/// # Errors
/// The value's bytes do not decode (a deep-validated value always does).
pub fn value_digest(value: &Value<'_>) -> Result<u128> {
    let mut scratch = Vec::new();
    Ok(match value.logical_type() {
        LogicalType::String => xxh3_128(&value.as_string()?.decode()?),
        LogicalType::List => {
            let mut h = Xxh3::new();
            let mut n = 0u64;
            for it in value.elements()? {
                scratch.clear();
                push_item(&mut scratch, &it?);
                h.update(&scratch);
                n += 1;
            }
            h.update(&n.to_le_bytes());
            h.digest128()
        }
        LogicalType::Set => {
            let mut acc = Unordered::default();
            for it in value.elements()? {
                scratch.clear();
                it?.write_to(&mut scratch);
                acc.add(xxh3_128(&scratch));
            }
            acc.finish()
        }
        LogicalType::ZSet => {
            let mut acc = Unordered::default();
            for e in value.zset_entries()? {
                let (m, score) = e?;
                scratch.clear();
                push_item(&mut scratch, &m);
                scratch.extend_from_slice(&score.to_bits().to_le_bytes());
                acc.add(xxh3_128(&scratch));
            }
            acc.finish()
        }
        LogicalType::Hash => {
            let mut acc = Unordered::default();
            for f in value.hash_fields()? {
                let f = f?;
                scratch.clear();
                push_item(&mut scratch, &f.field);
                push_item(&mut scratch, &f.value);
                match f.expire_ms {
                    Some(t) => {
                        scratch.push(1);
                        scratch.extend_from_slice(&t.to_le_bytes());
                    }
                    None => scratch.push(0),
                }
                acc.add(xxh3_128(&scratch));
            }
            acc.finish()
        }
        LogicalType::Stream => stream_digest(value)?,
        LogicalType::Module => {
            let (id, payload) = value.module()?;
            let mut h = Xxh3::new();
            h.update(&id.to_le_bytes());
            h.update(payload);
            h.digest128()
        }
    })
}

/// Length-prefixed logical bytes of an element (an integer as its decimal text, without allocating).
fn push_item(out: &mut Vec<u8>, it: &Item<'_>) {
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    it.write_to(out);
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

/// An order-independent accumulator: the sum of the members' hashes, and their count.
#[derive(Default)]
struct Unordered {
    sum: u128,
    n: u64,
}

impl Unordered {
    fn add(&mut self, h: u128) {
        self.sum = self.sum.wrapping_add(h);
        self.n += 1;
    }

    fn finish(&self) -> u128 {
        let mut b = [0u8; 24];
        b[..16].copy_from_slice(&self.sum.to_le_bytes());
        b[16..].copy_from_slice(&self.n.to_le_bytes());
        xxh3_128(&b)
    }
}

fn id_bytes(h: &mut Xxh3, id: StreamId) {
    h.update(&id.ms.to_le_bytes());
    h.update(&id.seq.to_le_bytes());
}

fn stream_digest(value: &Value<'_>) -> Result<u128> {
    let s = value.stream()?;
    let entries = s.entries()?;
    let mut h = Xxh3::new();
    for e in &entries {
        id_bytes(&mut h, e.id);
        h.update(&(e.fields.len() as u64).to_le_bytes());
        for (f, v) in &e.fields {
            h.update(&(f.len() as u64).to_le_bytes());
            h.update(f);
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v);
        }
    }
    h.update(&(entries.len() as u64).to_le_bytes());
    // What a server holds after loading, whatever the layout stored (see the module docs).
    let first_id = s.first_id.unwrap_or_else(|| entries.first().map(|e| e.id).unwrap_or_default());
    let max_deleted = s.max_deleted_id.unwrap_or_default();
    let entries_added = s.entries_added.unwrap_or(s.length);
    h.update(&s.length.to_le_bytes());
    id_bytes(&mut h, s.last_id);
    id_bytes(&mut h, first_id);
    id_bytes(&mut h, max_deleted);
    h.update(&entries_added.to_le_bytes());
    let meta = StreamMeta { length: s.length, last_id: s.last_id, first_id, max_deleted, entries_added };
    let mut groups = Unordered::default();
    for g in &s.groups {
        let mut gh = Xxh3::new();
        let name = g.name.decode()?;
        gh.update(&(name.len() as u64).to_le_bytes());
        gh.update(&name);
        id_bytes(&mut gh, g.last_id);
        let entries_read = g.entries_read.unwrap_or_else(|| meta.estimate_entries_read(g.last_id));
        gh.update(&entries_read.to_le_bytes());
        gh.update(&(g.pel.len() as u64).to_le_bytes());
        for p in &g.pel {
            id_bytes(&mut gh, p.id);
            gh.update(&p.delivery_time.to_le_bytes());
            gh.update(&p.delivery_count.to_le_bytes());
        }
        let mut consumers = Unordered::default();
        for c in &g.consumers {
            let mut ch = Xxh3::new();
            let name = c.name.decode()?;
            ch.update(&(name.len() as u64).to_le_bytes());
            ch.update(&name);
            ch.update(&c.seen_time.to_le_bytes());
            ch.update(&c.active_time.unwrap_or(c.seen_time).to_le_bytes());
            ch.update(&(c.pel.len() as u64).to_le_bytes());
            for id in &c.pel {
                id_bytes(&mut ch, *id);
            }
            consumers.add(ch.digest128());
        }
        gh.update(&consumers.finish().to_le_bytes());
        groups.add(gh.digest128());
    }
    h.update(&groups.finish().to_le_bytes());
    Ok(h.digest128())
}

/// The stream metadata a group's entries-read estimate depends on.
struct StreamMeta {
    length: u64,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
}

impl StreamMeta {
    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: what a server loading a stream of the first layout
    /// (no stored entries-read) sets a group's entries read to.
    fn estimate_entries_read(&self, id: StreamId) -> u64 {
        crate::read::stream_value::estimate_entries_read(
            self.length,
            self.last_id,
            self.first_id,
            self.max_deleted,
            self.entries_added,
            id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    #[test]
    fn entries_read_is_estimated_as_redis_does() {
        let m = StreamMeta {
            length: 3,
            last_id: id(9, 0),
            first_id: id(5, 0),
            max_deleted: StreamId::default(),
            entries_added: 10,
        };
        assert_eq!(m.estimate_entries_read(id(9, 0)), 10, "the last entry");
        assert_eq!(m.estimate_entries_read(id(9, 1)), ENTRIES_READ_INVALID, "a future ID");
        assert_eq!(m.estimate_entries_read(id(1, 0)), 7, "before the first entry");
        assert_eq!(m.estimate_entries_read(id(5, 0)), 8, "the first entry");
        assert_eq!(m.estimate_entries_read(id(6, 0)), ENTRIES_READ_INVALID, "inside the stream");
        let tomb = StreamMeta { max_deleted: id(7, 0), ..m };
        assert_eq!(tomb.estimate_entries_read(id(1, 0)), ENTRIES_READ_INVALID, "a deletion after the first entry");
        let never = StreamMeta { entries_added: 0, length: 0, ..m };
        assert_eq!(never.estimate_entries_read(id(3, 0)), 0, "a never-used stream");
        let emptied = StreamMeta { length: 0, ..m };
        assert_eq!(emptied.estimate_entries_read(id(8, 0)), 10, "an emptied stream, at or before its last ID");
    }

    #[test]
    fn the_unordered_sum_ignores_order_but_not_members_or_count() {
        let digest = |items: &[&[u8]]| {
            let mut acc = Unordered::default();
            for i in items {
                acc.add(xxh3_128(i));
            }
            acc.finish()
        };
        assert_eq!(digest(&[b"a", b"b", b"c"]), digest(&[b"c", b"a", b"b"]));
        assert_ne!(digest(&[b"a", b"b"]), digest(&[b"a", b"c"]));
        assert_ne!(digest(&[b"a"]), digest(&[]));
    }
}
