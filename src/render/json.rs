//! `dump --format json`: one JSON object per key (`{"db", "key", "type", "encoding", "expire_ms", "value"}`) and
//! per function library (`{"function": code}`), byte strings as [`super::text::json_bytes`] writes them.

use super::resp::plain_hash_survey;
use super::text::{base64, json_bytes, json_f64, json_str, push_i64, push_json_escape, push_u64};
use super::{Output, Scratch};
use crate::Error;
use crate::format::Elem;
use crate::format::string::RdbStr;
use crate::read::stream_value::StreamId;
use crate::read::value::OwnedStream;
use crate::read::visit::{
    LONG_STRING, Part, for_each_piece, is_utf8, plain_hash_fields, walk_elements, walk_hash, walk_stream_entries,
    walk_zset,
};
use crate::read::{Entry, Item, LogicalType, OwnedValue, Value};

/// Appends JSON escapes of `p`, part of a valid UTF-8 string (as `json_bytes` escapes it).
pub(crate) fn json_escape_piece(o: &mut Vec<u8>, p: &[u8]) {
    let mut run = 0;
    for (i, &c) in p.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        o.extend_from_slice(&p[run..i]);
        push_json_escape(o, c);
        run = i + 1;
    }
    o.extend_from_slice(&p[run..]);
}

/// Base64 of a byte stream given in pieces (as `base64` writes it in one go).
pub(crate) struct Base64Pieces {
    carry: Vec<u8>,
}

impl Base64Pieces {
    const T: &'static [u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    fn push(&mut self, o: &mut Vec<u8>, p: &[u8]) {
        self.carry.extend_from_slice(p);
        let whole = self.carry.len() / 3 * 3;
        Self::encode(o, &self.carry[..whole]);
        self.carry.drain(..whole);
    }

    fn encode(o: &mut Vec<u8>, data: &[u8]) {
        for c in data.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            o.push(Self::T[(n >> 18) as usize & 63]);
            o.push(Self::T[(n >> 12) as usize & 63]);
            o.push(if c.len() > 1 { Self::T[(n >> 6) as usize & 63] } else { b'=' });
            o.push(if c.len() > 2 { Self::T[n as usize & 63] } else { b'=' });
        }
    }

    fn finish(self, o: &mut Vec<u8>) {
        Self::encode(o, &self.carry);
    }
}

/// Writes a long string as a JSON value in pieces: a string when it is UTF-8, else `{"b64":"…"}`.
pub(crate) fn json_long_str(sink: &mut Output<'_>, s: RdbStr<'_>) -> crate::Result<()> {
    if is_utf8(s)? {
        sink.buf.push(b'"');
        for_each_piece(s, |p| {
            json_escape_piece(&mut sink.buf, p);
            sink.spill();
        })?;
        sink.buf.push(b'"');
    } else {
        sink.buf.extend_from_slice(b"{\"b64\":\"");
        let mut b64 = Base64Pieces { carry: Vec::new() };
        for_each_piece(s, |p| {
            b64.push(&mut sink.buf, p);
            sink.spill();
        })?;
        b64.finish(&mut sink.buf);
        sink.buf.extend_from_slice(b"\"}");
    }
    Ok(())
}

/// Writes a hash stored field by field as JSON, long values streamed.
pub(crate) fn json_plain_hash(sink: &mut Output<'_>, scratch: &mut Scratch, v: &Value<'_>) -> crate::Result<()> {
    sink.buf.push(b'[');
    let mut first = true;
    let mut err = None;
    let walked = plain_hash_fields(v, |field, value, expire_ms| {
        if err.is_some() {
            return;
        }
        let r = (|| -> crate::Result<()> {
            sink.buf.extend_from_slice(if first { b"[" } else { b",[" });
            first = false;
            json_bytes(&mut sink.buf, field.decode_reusing(&mut scratch.field)?);
            sink.buf.push(b',');
            if value.logical_len() > LONG_STRING {
                json_long_str(sink, value)?;
            } else {
                json_bytes(&mut sink.buf, value.decode_reusing(&mut scratch.value)?);
            }
            if let Some(ms) = expire_ms {
                sink.buf.push(b',');
                push_i64(&mut sink.buf, ms);
            }
            sink.buf.push(b']');
            Ok(())
        })();
        if let Err(e) = r {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    if walked.is_none() {
        return Err(Error::corrupt("hash", "a field does not decode", 0));
    }
    sink.buf.push(b']');
    Ok(())
}

pub(crate) fn json_entry(sink: &mut Output<'_>, scratch: &mut Scratch, e: &Entry<'_>, key: &[u8]) -> crate::Result<()> {
    let o = &mut sink.buf;
    o.extend_from_slice(b"{\"db\":");
    push_u64(o, e.db);
    o.extend_from_slice(b",\"key\":");
    json_bytes(o, key);
    o.extend_from_slice(b",\"type\":\"");
    o.extend_from_slice(e.value.logical_type().name().as_bytes());
    o.extend_from_slice(b"\",\"encoding\":\"");
    o.extend_from_slice(e.value.encoding.name().as_bytes());
    o.extend_from_slice(b"\",\"expire_ms\":");
    match e.expiry {
        Some(x) => push_i64(o, x.as_millis()),
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(b",\"value\":");
    match e.value.logical_type() {
        LogicalType::String => match e.value.as_string()? {
            s if s.logical_len() > LONG_STRING => json_long_str(sink, s)?,
            _ => json_value(o, scratch, &e.value)?,
        },
        LogicalType::List | LogicalType::Set => json_elements(sink, scratch, &e.value)?,
        LogicalType::Hash if plain_hash_survey(&e.value).is_some_and(|(longest, _)| longest > LONG_STRING) => {
            json_plain_hash(sink, scratch, &e.value)?
        }
        _ => json_value(o, scratch, &e.value)?,
    }
    sink.buf.extend_from_slice(b"}\n");
    Ok(())
}

/// Writes `items` as a JSON array, each with `f`.
pub(crate) fn json_array<T>(o: &mut Vec<u8>, items: impl IntoIterator<Item = T>, mut f: impl FnMut(&mut Vec<u8>, T)) {
    o.push(b'[');
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        f(o, it);
    }
    o.push(b']');
}

/// An integer as a JSON string.
pub(crate) fn json_quoted_int(o: &mut Vec<u8>, i: i64) {
    o.push(b'"');
    push_i64(o, i);
    o.push(b'"');
}

pub(crate) fn json_item(o: &mut Vec<u8>, it: &Item<'_>) {
    match it {
        Item::Borrowed(b) => json_bytes(o, b),
        Item::Owned(v) => json_bytes(o, v),
        Item::Int(i) => json_quoted_int(o, *i),
    }
}

/// A stream ID as text (`ms-seq`).
pub(crate) fn push_id(o: &mut Vec<u8>, id: StreamId) {
    push_u64(o, id.ms);
    o.push(b'-');
    push_u64(o, id.seq);
}

pub(crate) fn json_id(o: &mut Vec<u8>, id: StreamId) {
    o.push(b'"');
    push_id(o, id);
    o.push(b'"');
}

pub(crate) fn json_opt<T>(o: &mut Vec<u8>, v: Option<T>, f: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        Some(v) => f(o, v),
        None => o.extend_from_slice(b"null"),
    }
}

pub(crate) fn json_value(o: &mut Vec<u8>, scratch: &mut Scratch, v: &Value<'_>) -> crate::Result<()> {
    match v.logical_type() {
        LogicalType::String => match v.as_string()? {
            RdbStr::Int(i) => json_quoted_int(o, i),
            s => json_bytes(o, s.decode_reusing(&mut scratch.value)?),
        },
        LogicalType::List | LogicalType::Set => unreachable!("json_elements writes lists and sets"),
        LogicalType::ZSet => {
            let mark = o.len();
            o.push(b'[');
            let mut first = true;
            let walked = walk_zset(v, &mut scratch.value, |m, score| {
                o.extend_from_slice(if first { b"[" } else { b",[" });
                first = false;
                json_elem(o, m);
                o.push(b',');
                json_f64(o, score);
                o.push(b']');
            });
            if walked.is_none() {
                o.truncate(mark);
                o.push(b'[');
                for (i, r) in v.zset_entries()?.enumerate() {
                    let (m, score) = r?;
                    o.extend_from_slice(if i > 0 { b",[" } else { b"[" });
                    json_item(o, &m);
                    o.push(b',');
                    json_f64(o, score);
                    o.push(b']');
                }
            }
            o.push(b']');
        }
        LogicalType::Hash => {
            let mark = o.len();
            o.push(b'[');
            let mut first = true;
            let walked = walk_hash(v, &mut scratch.value, |field, value, expire_ms| {
                o.extend_from_slice(if first { b"[" } else { b",[" });
                first = false;
                json_elem(o, field);
                o.push(b',');
                json_elem(o, value);
                if let Some(ms) = expire_ms {
                    o.push(b',');
                    push_i64(o, ms);
                }
                o.push(b']');
            });
            if walked.is_none() {
                o.truncate(mark);
                o.push(b'[');
                for (i, r) in v.hash_fields()?.enumerate() {
                    let f = r?;
                    o.extend_from_slice(if i > 0 { b",[" } else { b"[" });
                    json_item(o, &f.field);
                    o.push(b',');
                    json_item(o, &f.value);
                    if let Some(ms) = f.expire_ms {
                        o.push(b',');
                        push_i64(o, ms);
                    }
                    o.push(b']');
                }
            }
            o.push(b']');
        }
        LogicalType::Stream => json_stream(o, scratch, v)?,
        LogicalType::Module => match v.to_owned_value()? {
            OwnedValue::Module { name, encver, payload, .. } => {
                o.extend_from_slice(b"{\"module\":");
                json_str(o, &name);
                o.extend_from_slice(b",\"encver\":");
                push_u64(o, u64::from(encver));
                o.extend_from_slice(b",\"payload_b64\":\"");
                o.extend_from_slice(base64(&payload).as_bytes());
                o.extend_from_slice(b"\"}");
            }
            // A module value decodes to a module.
            _ => o.extend_from_slice(b"null"),
        },
    }
    Ok(())
}

/// Writes the elements of a list or set as a JSON array; long strings stored on their own are streamed.
pub(crate) fn json_elements(sink: &mut Output<'_>, scratch: &mut Scratch, v: &Value<'_>) -> crate::Result<()> {
    let mark = sink.buf.len();
    sink.buf.push(b'[');
    let mut first = true;
    let mut err = None;
    let walked = walk_elements(v, &mut scratch.value, |part| {
        if !first {
            sink.buf.push(b',');
        }
        first = false;
        match part {
            Part::Elem(e) => json_elem(&mut sink.buf, e),
            Part::Long(s) => {
                if let Err(e) = json_long_str(sink, s) {
                    err.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    if walked.is_none() {
        if sink.spilled {
            return Err(Error::corrupt("collection", "an element does not decode", 0));
        }
        let o = &mut sink.buf;
        o.truncate(mark);
        o.push(b'[');
        for (i, it) in v.elements()?.enumerate() {
            if i > 0 {
                o.push(b',');
            }
            json_item(o, &it?);
        }
    }
    sink.buf.push(b']');
    Ok(())
}

/// Writes a stream: its entries straight from the node listpacks, then its metadata and groups.
pub(crate) fn json_stream(o: &mut Vec<u8>, scratch: &mut Scratch, v: &Value<'_>) -> crate::Result<()> {
    let s = v.stream()?;
    let mut meta = s.to_owned_metadata()?;
    let mark = o.len();
    o.extend_from_slice(b"{\"entries\":[");
    let mut first = true;
    let walked = walk_stream_entries(&s, &mut scratch.value, |id, fields| {
        o.extend_from_slice(if first { b"[" } else { b",[" });
        first = false;
        json_id(o, id);
        o.extend_from_slice(b",[");
        for (i, (f, v)) in fields.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            json_elem(o, *f);
            o.push(b',');
            json_elem(o, *v);
        }
        o.extend_from_slice(b"]]");
    });
    if walked {
        o.push(b']');
    } else {
        // The library decides what a node that does not have the expected shape means.
        o.truncate(mark);
        meta.entries = s.entries()?;
        o.extend_from_slice(b"{\"entries\":");
        json_array(o, &meta.entries, |o, e| {
            o.push(b'[');
            json_id(o, e.id);
            o.push(b',');
            json_array(o, e.fields.iter().flat_map(|(f, v)| [f, v]), |o, b| json_bytes(o, b));
            o.push(b']');
        });
    }
    json_stream_tail(o, &meta);
    Ok(())
}

pub(crate) fn json_elem(o: &mut Vec<u8>, e: Elem<'_>) {
    match e {
        Elem::Bytes(b) => json_bytes(o, b),
        Elem::Int(i) => json_quoted_int(o, i),
    }
}

/// Writes a stream's metadata and groups (everything after its entries) and closes the object.
pub(crate) fn json_stream_tail(o: &mut Vec<u8>, s: &OwnedStream) {
    o.extend_from_slice(b",\"length\":");
    push_u64(o, s.length);
    o.extend_from_slice(b",\"last_id\":");
    json_id(o, s.last_id);
    o.extend_from_slice(b",\"first_id\":");
    json_opt(o, s.first_id, json_id);
    o.extend_from_slice(b",\"max_deleted_id\":");
    json_opt(o, s.max_deleted_id, json_id);
    o.extend_from_slice(b",\"entries_added\":");
    json_opt(o, s.entries_added, push_u64);
    o.extend_from_slice(b",\"groups\":");
    json_array(o, &s.groups, |o, g| {
        o.extend_from_slice(b"{\"name\":");
        json_bytes(o, &g.name);
        o.extend_from_slice(b",\"last_id\":");
        json_id(o, g.last_id);
        o.extend_from_slice(b",\"entries_read\":");
        // Redis keeps entries_read as a signed 64-bit number (-1: "not known, recompute"), stored as its bits.
        json_opt(o, g.entries_read, |o, n| push_i64(o, n as i64));
        o.extend_from_slice(b",\"pel\":");
        json_array(o, &g.pel, |o, p| {
            o.push(b'[');
            json_id(o, p.id);
            o.push(b',');
            push_i64(o, p.delivery_time);
            o.push(b',');
            push_u64(o, p.delivery_count);
            o.push(b']');
        });
        o.extend_from_slice(b",\"consumers\":");
        json_array(o, &g.consumers, |o, c| {
            o.extend_from_slice(b"{\"name\":");
            json_bytes(o, &c.name);
            o.extend_from_slice(b",\"seen_time\":");
            push_i64(o, c.seen_time);
            o.extend_from_slice(b",\"active_time\":");
            json_opt(o, c.active_time, push_i64);
            o.extend_from_slice(b",\"pel\":");
            json_array(o, &c.pel, |o, id| json_id(o, *id));
            o.push(b'}');
        });
        o.push(b'}');
    });
    o.push(b'}');
}

// ---------------------------------------------------------------------------------------------------------------
// RESP
