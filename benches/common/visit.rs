//! What the read benchmarks and `examples/throughput.rs` do with each value: the visit modes and a walk of every
//! element through the lazy API. Included by path from both (`#[path]`), so the two measure the same work.

use rdbkit::read::{Item, LogicalType, Value};

/// What to do with each entry's value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Key, expiry and type only.
    Walk,
    /// `to_owned_value`.
    Owned,
    /// Every element through the lazy iterators.
    Iter,
}

fn item(acc: &mut u64, it: &Item<'_>) {
    *acc = acc.wrapping_add(match it {
        Item::Borrowed(b) => b.len() as u64 ^ u64::from(b.first().copied().unwrap_or(0)),
        Item::Owned(v) => v.len() as u64,
        Item::Int(i) => *i as u64,
    });
}

/// Visits every element, field, score and stream entry of `v` through the lazy API; returns a digest.
pub fn visit_all(v: &Value<'_>, buf: &mut Vec<u8>) -> rdbkit::Result<u64> {
    let mut acc = 0u64;
    match v.logical_type() {
        LogicalType::String => {
            buf.clear();
            v.as_string()?.decode_into(buf)?;
            acc = buf.len() as u64;
        }
        LogicalType::List | LogicalType::Set => {
            for e in v.elements()? {
                item(&mut acc, &e?);
            }
        }
        LogicalType::ZSet => {
            for e in v.zset_entries()? {
                let (m, s) = e?;
                item(&mut acc, &m);
                acc = acc.wrapping_add(s.to_bits());
            }
        }
        LogicalType::Hash => {
            for f in v.hash_fields()? {
                let f = f?;
                item(&mut acc, &f.field);
                item(&mut acc, &f.value);
                acc = acc.wrapping_add(f.expire_ms.unwrap_or(0) as u64);
            }
        }
        LogicalType::Stream => {
            let s = v.stream()?;
            for e in s.entries()? {
                acc = acc.wrapping_add(e.id.ms ^ e.id.seq);
                for (f, x) in &e.fields {
                    acc = acc.wrapping_add((f.len() + x.len()) as u64);
                }
            }
            for g in &s.groups {
                acc = acc.wrapping_add(g.pel.len() as u64 + g.consumers.len() as u64);
            }
        }
        LogicalType::Module => acc = v.module()?.1.len() as u64,
        // A type a later version adds: counted as nothing.
        _ => {}
    }
    Ok(acc)
}
