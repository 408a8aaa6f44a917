//! `dump --format resp`: the commands that recreate each key on a live server (see the [module](super) docs).

use super::text::{i64_text, push_i64, push_u64, room};
use super::{Output, Scratch};
use crate::Error;
use crate::format::Elem;
use crate::format::crc::crc64;
use crate::format::double::format_human_double;
use crate::format::string::RdbStr;
use crate::read::stream_value::StreamId;
use crate::read::value::OwnedStream;
use crate::read::visit::{
    LONG_STRING, Part, for_each_piece, longest_plain_elem, plain_hash_fields, walk_elements, walk_hash,
    walk_stream_entries, walk_zset,
};
use crate::read::{Entry, Item, LogicalType, Value};
use std::collections::{BTreeSet, HashMap};

/// Most elements per `RPUSH`/`SADD`/`ZADD`/`HSET` command.
pub(crate) const BATCH: usize = 1000;

/// Largest absolute time `HPEXPIREAT` accepts (Redis 7.4+ `HFE_MAX_ABS_TIME_MSEC`, 2^46 − 1 ms); a file may hold
/// field expiries up to 2^48 − 1.
pub(crate) const HPEXPIREAT_MAX: i64 = (1 << 46) - 1;

/// Why a value was written as `RESTORE` although ordinary commands exist for its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Fallback {
    /// A sorted-set score is −0.0: `ZADD` stores it as 0 in a listpack (Redis 7.0+).
    NegativeZero,
    /// A sorted-set score is NaN (a listpack or ziplist score text the servers load but `ZADD` refuses).
    NanScore,
    /// A hash field expiry `HPEXPIREAT` refuses (beyond 2^46 − 1 ms, or negative).
    FieldTtl,
    /// Stream metadata `XSETID` refuses (entries_added below the length or past 2^63, max_deleted_id above the
    /// last ID, last ID below the top entry).
    StreamSetId,
    /// A consumer group's entries_read `XGROUP CREATE … ENTRIESREAD` refuses (negative other than −1).
    EntriesRead,
    /// Stream state no command sets: a length other than the live entries, a recorded first ID other than the
    /// first live entry's, entries out of ID order (`XADD` refuses them), or consumer groups without a stored
    /// entries_read (RDB < 10: the server estimates it when loading, `XGROUP CREATE` leaves it unknown).
    StreamState,
    /// Pending entries whose stream entry is gone, in a stream whose max_deleted_id is 0-0: deleting the
    /// placeholders that recreate them would change max_deleted_id.
    Placeholders,
    /// A string (value, or element of a list or set) over 512 MiB, more than a command takes
    /// (`proto-max-bulk-len`).
    LongString,
}

impl Fallback {
    /// Every reason.
    pub const ALL: [Fallback; 8] = [
        Fallback::NegativeZero,
        Fallback::NanScore,
        Fallback::FieldTtl,
        Fallback::StreamSetId,
        Fallback::EntriesRead,
        Fallback::StreamState,
        Fallback::Placeholders,
        Fallback::LongString,
    ];

    /// The reason, for messages.
    pub fn why(self) -> &'static str {
        match self {
            Fallback::NegativeZero => "sorted-set score -0 (ZADD stores 0 in a listpack)",
            Fallback::NanScore => "sorted-set score NaN (ZADD refuses it)",
            Fallback::FieldTtl => "hash field expiry beyond what HPEXPIREAT accepts (2^46-1 ms)",
            Fallback::StreamSetId => "stream metadata XSETID refuses",
            Fallback::EntriesRead => "consumer-group entries_read XGROUP CREATE refuses",
            Fallback::StreamState => {
                "stream length, first ID, entry order or group entries_read that commands cannot set"
            }
            Fallback::Placeholders => "deleted pending entries in a stream whose max_deleted_id is 0-0",
            Fallback::LongString => "string or element over 512 MiB (proto-max-bulk-len)",
        }
    }
}

/// Longest string a server creates with commands (`proto-max-bulk-len`, 512 MiB by default; `APPEND` and
/// `SETRANGE` stop there too). A file can hold longer ones, which only `RESTORE` recreates.
pub(crate) const PROTO_MAX_BULK_LEN: u64 = 512 << 20;

/// Writes `SET key value` for a long string, the value streamed in pieces.
pub(crate) fn resp_long_set(sink: &mut Output<'_>, key: &[u8], s: RdbStr<'_>) -> crate::Result<()> {
    resp_head(&mut sink.buf, 3);
    bulk(&mut sink.buf, b"SET");
    bulk(&mut sink.buf, key);
    resp_long_bulk(sink, s)
}

/// Writes a long string as a RESP bulk string, in pieces.
pub(crate) fn resp_long_bulk(sink: &mut Output<'_>, s: RdbStr<'_>) -> crate::Result<()> {
    sink.buf.push(b'$');
    push_u64(&mut sink.buf, s.logical_len());
    sink.buf.extend_from_slice(b"\r\n");
    for_each_piece(s, |p| {
        sink.buf.extend_from_slice(p);
        sink.spill();
    })?;
    sink.buf.extend_from_slice(b"\r\n");
    Ok(())
}

/// What streaming a hash stored field by field needs to know first: its longest value and whether every field
/// expiry is one `HPEXPIREAT` takes. `None` for other encodings.
pub(crate) fn plain_hash_survey(v: &Value<'_>) -> Option<(u64, bool)> {
    let (mut longest, mut ttls_ok) = (0, true);
    plain_hash_fields(v, |_, value, e| {
        longest = longest.max(value.logical_len());
        ttls_ok &= e.is_none_or(|ms| (0..=HPEXPIREAT_MAX).contains(&ms));
    })?;
    Some((longest, ttls_ok))
}

/// Appends `HSET` commands (batches of [`BATCH`] pairs; a field with a value over 1 MiB gets one of its own, its
/// value streamed), the field expiries and the key's expiry, for a hash stored field by field.
pub(crate) fn resp_plain_hash(
    sink: &mut Output<'_>,
    scratch: &mut Scratch,
    e: &Entry<'_>,
    key: &[u8],
) -> crate::Result<bool> {
    let v = &e.value;
    let head: [&[u8]; 2] = [b"HSET", key];
    let start = sink.buf.len();
    let mut cmd = Cmd::new(&head, &mut scratch.body);
    let mut ttls: Vec<(Vec<u8>, i64)> = Vec::new();
    let mut err = None;
    let walked = plain_hash_fields(v, |field, value, expire_ms| {
        if err.is_some() {
            return;
        }
        let r = (|| -> crate::Result<()> {
            let f = field.decode_reusing(&mut scratch.field)?;
            if let Some(ms) = expire_ms {
                ttls.push((f.to_vec(), ms));
            }
            if value.logical_len() > LONG_STRING {
                cmd.flush(&mut sink.buf);
                resp_head(&mut sink.buf, 4);
                bulk(&mut sink.buf, b"HSET");
                bulk(&mut sink.buf, key);
                bulk(&mut sink.buf, f);
                resp_long_bulk(sink, value)?;
            } else {
                cmd.arg(f);
                cmd.arg(value.decode_reusing(&mut scratch.value)?);
                if cmd.args == 2 * BATCH {
                    cmd.flush(&mut sink.buf);
                }
            }
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
    cmd.flush(&mut sink.buf);
    if sink.buf.len() == start && !sink.spilled {
        return Ok(false);
    }
    let mut digits = [0u8; 20];
    for (field, ms) in &ttls {
        resp_cmd(&mut sink.buf, &[b"HPEXPIREAT", key, i64_text(*ms, &mut digits), b"FIELDS", b"1", field]);
    }
    resp_expiry(&mut sink.buf, e, key);
    Ok(true)
}

/// Appends one command.
pub(crate) fn resp_cmd(o: &mut Vec<u8>, args: &[&[u8]]) {
    resp_head(o, args.len());
    for a in args {
        bulk(o, a);
    }
}

/// Appends a command's header: its number of arguments.
pub(crate) fn resp_head(o: &mut Vec<u8>, n: usize) {
    o.push(b'*');
    push_u64(o, n as u64);
    o.extend_from_slice(b"\r\n");
}

pub(crate) fn bulk(o: &mut Vec<u8>, a: &[u8]) {
    if !room(o, a.len() + 32) {
        return;
    }
    o.push(b'$');
    push_u64(o, a.len() as u64);
    o.extend_from_slice(b"\r\n");
    o.extend_from_slice(a);
    o.extend_from_slice(b"\r\n");
}

/// An integer as a bulk string.
pub(crate) fn bulk_int(o: &mut Vec<u8>, i: i64) {
    o.push(b'$');
    push_u64(o, u64::from(i < 0) + i.unsigned_abs().checked_ilog10().map_or(1, |d| u64::from(d) + 1));
    o.extend_from_slice(b"\r\n");
    push_i64(o, i);
    o.extend_from_slice(b"\r\n");
}

/// A command whose arguments are added one by one (batches of elements), gathered in a reused buffer.
pub(crate) struct Cmd<'h, 'b> {
    head: &'h [&'h [u8]],
    args: usize,
    body: &'b mut Vec<u8>,
}

impl<'h, 'b> Cmd<'h, 'b> {
    fn new(head: &'h [&'h [u8]], body: &'b mut Vec<u8>) -> Cmd<'h, 'b> {
        body.clear();
        Cmd { head, args: 0, body }
    }

    fn arg(&mut self, a: &[u8]) {
        bulk(self.body, a);
        self.args += 1;
    }

    fn elem(&mut self, e: Elem<'_>) {
        match e {
            Elem::Bytes(b) => bulk(self.body, b),
            Elem::Int(i) => bulk_int(self.body, i),
        }
        self.args += 1;
    }

    /// Drops the arguments gathered so far.
    fn clear(&mut self) {
        self.body.clear();
        self.args = 0;
    }

    fn item(&mut self, it: &Item<'_>) {
        match it {
            Item::Borrowed(b) => bulk(self.body, b),
            Item::Owned(v) => bulk(self.body, v),
            Item::Int(i) => bulk_int(self.body, *i),
        }
        self.args += 1;
    }

    /// Writes the command if it has any argument beyond its head, and starts over.
    fn flush(&mut self, o: &mut Vec<u8>) {
        if self.args == 0 {
            return;
        }
        resp_head(o, self.head.len() + self.args);
        for h in self.head {
            bulk(o, h);
        }
        if room(o, self.body.len()) {
            o.extend_from_slice(self.body);
        }
        self.body.clear();
        self.args = 0;
    }
}

/// Appends the commands recreating one key; returns false (and appends nothing) for an empty collection.
pub(crate) fn resp_entry(
    sink: &mut Output<'_>,
    scratch: &mut Scratch,
    e: &Entry<'_>,
    key: &[u8],
    restore: bool,
    version: u16,
) -> crate::Result<bool> {
    let v = &e.value;
    let ty = v.logical_type();
    if !restore
        && ty == LogicalType::String
        && let s = v.as_string()?
        && s.logical_len() > LONG_STRING
    {
        if s.logical_len() > PROTO_MAX_BULK_LEN {
            scratch.fallbacks[Fallback::LongString as usize] += 1;
            return resp_restore(&mut sink.buf, e, key, version);
        }
        resp_long_set(sink, key, s)?;
        resp_expiry(&mut sink.buf, e, key);
        return Ok(true);
    }
    if !restore && matches!(ty, LogicalType::List | LogicalType::Set) {
        if longest_plain_elem(v).is_some_and(|n| n > PROTO_MAX_BULK_LEN) {
            scratch.fallbacks[Fallback::LongString as usize] += 1;
            return resp_restore(&mut sink.buf, e, key, version);
        }
        return resp_elements(sink, scratch, e, key);
    }
    if !restore
        && ty == LogicalType::Hash
        && let Some((longest, ttls_ok)) = plain_hash_survey(v)
        && longest > LONG_STRING
    {
        let why = if !ttls_ok {
            Some(Fallback::FieldTtl)
        } else {
            (longest > PROTO_MAX_BULK_LEN).then_some(Fallback::LongString)
        };
        if let Some(why) = why {
            scratch.fallbacks[why as usize] += 1;
            return resp_restore(&mut sink.buf, e, key, version);
        }
        return resp_plain_hash(sink, scratch, e, key);
    }
    let o = &mut sink.buf;
    if restore || ty == LogicalType::Module {
        return resp_restore(o, e, key, version);
    }
    let start = o.len();
    match resp_commands(o, scratch, e, key)? {
        Ok(wrote) => Ok(wrote),
        Err(why) => {
            o.truncate(start);
            scratch.fallbacks[why as usize] += 1;
            resp_restore(o, e, key, version)
        }
    }
}

/// Appends `RESTORE key ttl payload ABSTTL REPLACE` for one key; returns false (and appends nothing) for an
/// empty collection.
pub(crate) fn resp_restore(o: &mut Vec<u8>, e: &Entry<'_>, key: &[u8], version: u16) -> crate::Result<bool> {
    let v = &e.value;
    {
        if is_empty_collection(v)? {
            return Ok(false);
        }
        let ttl = e.expiry.map_or(0, |x| x.as_millis()).to_string();
        // A record holds IDLE under an LRU policy and FREQ under an LFU policy (RESTORE takes one of them).
        let idle = e.idle.map(|s| s.to_string());
        let freq = e.freq.map(|f| f.to_string());
        let mut tail: Vec<&[u8]> = vec![b"ABSTTL", b"REPLACE"];
        if let Some(s) = &idle {
            tail.extend([&b"IDLETIME"[..], s.as_bytes()]);
        } else if let Some(f) = &freq {
            tail.extend([&b"FREQ"[..], f.as_bytes()]);
        }
        resp_head(o, 4 + tail.len());
        for a in [&b"RESTORE"[..], key, ttl.as_bytes()] {
            bulk(o, a);
        }
        // The DUMP payload (crate::dump::dump_payload) written in place, not built as a copy of the value first.
        let ty = [v.encoding.type_byte()];
        let ver = version.to_le_bytes();
        let crc = crc64(crc64(crc64(0, &ty), v.raw), &ver);
        if room(o, v.raw.len() + 64) {
            o.push(b'$');
            push_u64(o, (1 + v.raw.len() + ver.len() + 8) as u64);
            o.extend_from_slice(b"\r\n");
            o.extend_from_slice(&ty);
            o.extend_from_slice(v.raw);
            o.extend_from_slice(&ver);
            o.extend_from_slice(&crc.to_le_bytes());
            o.extend_from_slice(b"\r\n");
        }
        for a in tail {
            bulk(o, a);
        }
        Ok(true)
    }
}

/// Appends the ordinary commands recreating one key: `Ok(false)` (nothing appended) for an empty collection,
/// `Err(why)` (with output the caller discards) when they cannot recreate it exactly.
pub(crate) fn resp_commands(
    o: &mut Vec<u8>,
    scratch: &mut Scratch,
    e: &Entry<'_>,
    key: &[u8],
) -> crate::Result<Result<bool, Fallback>> {
    let v = &e.value;
    let ty = v.logical_type();
    let start = o.len();
    match ty {
        LogicalType::String => {
            let s = v.as_string()?;
            resp_head(o, 3);
            bulk(o, b"SET");
            bulk(o, key);
            match s {
                RdbStr::Int(i) => bulk_int(o, i),
                s => bulk(o, s.decode_reusing(&mut scratch.value)?),
            }
        }
        LogicalType::List | LogicalType::Set => unreachable!("resp_elements writes lists and sets"),
        LogicalType::ZSet => {
            let head: [&[u8]; 2] = [b"ZADD", key];
            let mut cmd = Cmd::new(&head, &mut scratch.body);
            let score = &mut scratch.score;
            let (mut neg_zero, mut nan) = (false, false);
            let walked = walk_zset(v, &mut scratch.value, |m, s| {
                neg_zero |= s.to_bits() == (-0.0f64).to_bits();
                nan |= s.is_nan();
                score.clear();
                format_human_double(s, score);
                cmd.arg(score);
                cmd.elem(m);
                if cmd.args == 2 * BATCH {
                    cmd.flush(o);
                }
            });
            if walked.is_none() {
                o.truncate(start);
                cmd.clear();
                (neg_zero, nan) = (false, false);
                for r in v.zset_entries()? {
                    let (m, s) = r?;
                    neg_zero |= s.to_bits() == (-0.0f64).to_bits();
                    nan |= s.is_nan();
                    score.clear();
                    format_human_double(s, score);
                    cmd.arg(score);
                    cmd.item(&m);
                    if cmd.args == 2 * BATCH {
                        cmd.flush(o);
                    }
                }
            }
            cmd.flush(o);
            if nan {
                return Ok(Err(Fallback::NanScore));
            }
            if neg_zero {
                return Ok(Err(Fallback::NegativeZero));
            }
        }
        LogicalType::Hash => {
            let head: [&[u8]; 2] = [b"HSET", key];
            let mut cmd = Cmd::new(&head, &mut scratch.body);
            let mut ttls = Vec::new();
            let walked = walk_hash(v, &mut scratch.value, |field, value, expire_ms| {
                cmd.elem(field);
                cmd.elem(value);
                if let Some(ms) = expire_ms {
                    ttls.push((field.to_vec(), ms));
                }
                if cmd.args == 2 * BATCH {
                    cmd.flush(o);
                }
            });
            if walked.is_none() {
                o.truncate(start);
                cmd.clear();
                ttls.clear();
                for r in v.hash_fields()? {
                    let f = r?;
                    cmd.item(&f.field);
                    cmd.item(&f.value);
                    if let Some(ms) = f.expire_ms {
                        ttls.push((f.field.into_vec(), ms));
                    }
                    if cmd.args == 2 * BATCH {
                        cmd.flush(o);
                    }
                }
            }
            cmd.flush(o);
            if ttls.iter().any(|(_, ms)| !(0..=HPEXPIREAT_MAX).contains(ms)) {
                return Ok(Err(Fallback::FieldTtl));
            }
            if o.len() > start {
                let mut digits = [0u8; 20];
                for (field, ms) in &ttls {
                    resp_cmd(o, &[b"HPEXPIREAT", key, i64_text(*ms, &mut digits), b"FIELDS", b"1", field]);
                }
            }
        }
        LogicalType::Stream => {
            if let Err(why) = resp_stream(o, scratch, key, v)? {
                return Ok(Err(why));
            }
        }
        LogicalType::Module => unreachable!("module values are restored above"),
    }
    if o.len() == start {
        return Ok(Ok(false));
    }
    resp_expiry(o, e, key);
    Ok(Ok(true))
}

/// Appends `PEXPIREAT key ms` when the key has an expiry.
pub(crate) fn resp_expiry(o: &mut Vec<u8>, e: &Entry<'_>, key: &[u8]) {
    if let Some(x) = e.expiry {
        resp_head(o, 3);
        bulk(o, b"PEXPIREAT");
        bulk(o, key);
        bulk_int(o, x.as_millis());
    }
}

/// Appends `RPUSH`/`SADD` commands (batches of [`BATCH`]) recreating a list or set; an element over 1 MiB stored on
/// its own gets a command of its own, streamed. Returns false (nothing written) for an empty collection.
pub(crate) fn resp_elements(
    sink: &mut Output<'_>,
    scratch: &mut Scratch,
    e: &Entry<'_>,
    key: &[u8],
) -> crate::Result<bool> {
    let v = &e.value;
    let name: &[u8] = if v.logical_type() == LogicalType::List { b"RPUSH" } else { b"SADD" };
    let head: [&[u8]; 2] = [name, key];
    let start = sink.buf.len();
    let mut cmd = Cmd::new(&head, &mut scratch.body);
    let mut err = None;
    let walked = walk_elements(v, &mut scratch.value, |part| match part {
        Part::Elem(x) => {
            cmd.elem(x);
            if cmd.args == BATCH {
                cmd.flush(&mut sink.buf);
            }
        }
        Part::Long(s) => {
            // Order matters for lists: what was gathered goes first.
            cmd.flush(&mut sink.buf);
            resp_head(&mut sink.buf, 3);
            bulk(&mut sink.buf, name);
            bulk(&mut sink.buf, key);
            if let Err(x) = resp_long_bulk(sink, s) {
                err.get_or_insert(x);
            }
        }
    });
    if let Some(x) = err {
        return Err(x);
    }
    if walked.is_none() {
        if sink.spilled {
            return Err(Error::corrupt("collection", "an element does not decode", 0));
        }
        sink.buf.truncate(start);
        cmd.clear();
        for it in v.elements()? {
            cmd.item(&it?);
            if cmd.args == BATCH {
                cmd.flush(&mut sink.buf);
            }
        }
    }
    cmd.flush(&mut sink.buf);
    if sink.buf.len() == start && !sink.spilled {
        return Ok(false);
    }
    resp_expiry(&mut sink.buf, e, key);
    Ok(true)
}

/// Whether a list, set, sorted set or hash has no element (RESTORE refuses those, like a load skips them).
pub(crate) fn is_empty_collection(v: &Value<'_>) -> crate::Result<bool> {
    Ok(match v.logical_type().name() {
        "list" | "set" => v.elements()?.next().transpose()?.is_none(),
        "zset" => v.zset_entries()?.next().transpose()?.is_none(),
        "hash" => v.hash_fields()?.next().transpose()?.is_none(),
        _ => false,
    })
}

pub(crate) fn id_text(id: StreamId) -> String {
    id.to_string()
}

/// Appends the commands recreating a stream, its entries written straight from the node listpacks. Pending entries
/// whose stream entry was deleted are recreated as placeholders (see [`resp_stream_owned`]); placing them in one
/// pass relies on the entries being in ascending ID order, so a stream that is not falls back to decoding.
pub(crate) fn resp_stream(
    o: &mut Vec<u8>,
    scratch: &mut Scratch,
    key: &[u8],
    v: &Value<'_>,
) -> crate::Result<Result<(), Fallback>> {
    let s = v.stream()?;
    let mut meta = s.to_owned_metadata()?;
    let start = o.len();
    let pel: BTreeSet<StreamId> =
        meta.groups.iter().flat_map(|g| g.pel.iter().map(|p| p.id)).filter(|id| *id > StreamId::default()).collect();
    let mut pending = pel.iter().peekable();
    let mut placeholders = BTreeSet::new();
    let mut entries = 0usize;
    let (mut first, mut last): (Option<StreamId>, Option<StreamId>) = (None, None);
    let mut ordered = true;
    let walked = walk_stream_entries(&s, &mut scratch.value, |id, fields| {
        if !ordered || last.is_some_and(|l| id <= l) {
            ordered = false;
            return;
        }
        first = first.or(Some(id));
        last = Some(id);
        while let Some(p) = pending.next_if(|p| **p < id) {
            resp_placeholder(o, key, *p);
            placeholders.insert(*p);
        }
        // A pending entry that is live needs no placeholder.
        pending.next_if(|p| **p == id);
        entries += 1;
        resp_head(o, 3 + 2 * fields.len());
        bulk(o, b"XADD");
        bulk(o, key);
        bulk(o, id_text(id).as_bytes());
        for (f, v) in fields {
            bulk_elem(o, *f);
            bulk_elem(o, *v);
        }
    });
    if walked && ordered {
        for p in pending {
            resp_placeholder(o, key, *p);
            placeholders.insert(*p);
        }
        return Ok(resp_stream_tail(o, key, &meta, &placeholders, entries as u64, first, last));
    }
    o.truncate(start);
    if !ordered {
        return Ok(Err(Fallback::StreamState));
    }
    meta.entries = s.entries()?;
    Ok(resp_stream_owned(o, key, &meta))
}

/// A placeholder entry for a pending entry whose stream entry was deleted.
pub(crate) fn resp_placeholder(o: &mut Vec<u8>, key: &[u8], id: StreamId) {
    resp_cmd(o, &[b"XADD", key, id_text(id).as_bytes(), b"rdbkit-placeholder", b""]);
}

pub(crate) fn bulk_elem(o: &mut Vec<u8>, e: Elem<'_>) {
    match e {
        Elem::Bytes(b) => bulk(o, b),
        Elem::Int(i) => bulk_int(o, i),
    }
}

/// Appends the commands recreating a decoded stream.
pub(crate) fn resp_stream_owned(o: &mut Vec<u8>, key: &[u8], s: &OwnedStream) -> Result<(), Fallback> {
    // Pending entries whose stream entry was deleted: re-added as placeholders so XCLAIM can recreate them.
    let live: BTreeSet<StreamId> = s.entries.iter().map(|e| e.id).collect();
    let placeholders: BTreeSet<StreamId> = s
        .groups
        .iter()
        .flat_map(|g| g.pel.iter().map(|p| p.id))
        .filter(|id| !live.contains(id) && *id > StreamId::default())
        .collect();
    if s.entries.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(Fallback::StreamState);
    }
    let mut ph = placeholders.iter().peekable();
    for e in &s.entries {
        while let Some(p) = ph.next_if(|p| **p < e.id) {
            resp_placeholder(o, key, *p);
        }
        let id = id_text(e.id);
        let mut args: Vec<&[u8]> = vec![b"XADD", key, id.as_bytes()];
        for (f, v) in &e.fields {
            args.push(f);
            args.push(v);
        }
        resp_cmd(o, &args);
    }
    for p in ph {
        resp_placeholder(o, key, *p);
    }
    let top = s.entries.iter().map(|e| e.id).max();
    let first = s.entries.first().map(|e| e.id);
    resp_stream_tail(o, key, s, &placeholders, s.entries.len() as u64, first, top)
}

/// Appends the commands that follow a stream's entries (`live` of them, the highest `top_live`): creating it
/// when it has none (nor placeholders), its last ID, its groups with their consumers and pending entries, and the
/// removal of the placeholders. `Err` when the server would refuse one of these commands, or they cannot give
/// the stream its exact metadata (the caller then discards the output).
pub(crate) fn resp_stream_tail(
    o: &mut Vec<u8>,
    key: &[u8],
    s: &OwnedStream,
    placeholders: &BTreeSet<StreamId>,
    live: u64,
    first_live: Option<StreamId>,
    top_live: Option<StreamId>,
) -> Result<(), Fallback> {
    // What the replay leaves (placeholders deleted): `live` entries, the first live one recorded as the first
    // ID, groups with the entries_read given to XGROUP CREATE.
    if s.length != live
        || s.first_id.is_some_and(|f| f != first_live.unwrap_or_default())
        || s.groups.iter().any(|g| g.entries_read.is_none())
    {
        return Err(Fallback::StreamState);
    }
    // XSETID's checks (t_stream.c), against the stream the commands above built: live entries and placeholders.
    let length = live + placeholders.len() as u64;
    let top = top_live.max(placeholders.last().copied());
    if s.entries_added.is_some_and(|n| n > i64::MAX as u64 || n < length)
        || s.max_deleted_id.is_some_and(|m| m > s.last_id)
        || top.is_some_and(|t| t > s.last_id)
    {
        return Err(Fallback::StreamSetId);
    }
    // XGROUP CREATE … ENTRIESREAD takes n >= 0 or -1 (u64::MAX in the file).
    if s.groups.iter().any(|g| g.entries_read.is_some_and(|n| n != u64::MAX && n > i64::MAX as u64)) {
        return Err(Fallback::EntriesRead);
    }
    // XDEL of the placeholders raises max_deleted_id; a second XSETID puts it back unless it must be 0-0.
    if !placeholders.is_empty() && s.max_deleted_id == Some(StreamId::default()) {
        return Err(Fallback::Placeholders);
    }
    let no_entries = live == 0;
    if no_entries && placeholders.is_empty() {
        // No command creates an empty stream directly; a group created with MKSTREAM does.
        resp_cmd(o, &[b"XGROUP", b"CREATE", key, b"rdbkit-tmp", b"0", b"MKSTREAM"]);
        resp_cmd(o, &[b"XGROUP", b"DESTROY", key, b"rdbkit-tmp"]);
    }
    let last = id_text(s.last_id);
    match (s.entries_added, s.max_deleted_id) {
        (Some(added), Some(maxdel)) => resp_cmd(
            o,
            &[
                b"XSETID",
                key,
                last.as_bytes(),
                b"ENTRIESADDED",
                added.to_string().as_bytes(),
                b"MAXDELETEDID",
                id_text(maxdel).as_bytes(),
            ],
        ),
        _ => resp_cmd(o, &[b"XSETID", key, last.as_bytes()]),
    }
    for g in &s.groups {
        let gid = id_text(g.last_id);
        let mut args: Vec<&[u8]> = vec![b"XGROUP", b"CREATE", key, &g.name, gid.as_bytes()];
        let read = g.entries_read.filter(|&n| n != u64::MAX).map(|n| n.to_string());
        if let Some(n) = &read {
            args.extend([&b"ENTRIESREAD"[..], n.as_bytes()]);
        }
        resp_cmd(o, &args);
        let pel: HashMap<StreamId, _> = g.pel.iter().map(|p| (p.id, p)).collect();
        for c in &g.consumers {
            resp_cmd(o, &[b"XGROUP", b"CREATECONSUMER", key, &g.name, &c.name]);
            for id in &c.pel {
                let Some(p) = pel.get(id) else { continue };
                resp_cmd(
                    o,
                    &[
                        b"XCLAIM",
                        key,
                        &g.name,
                        &c.name,
                        b"0",
                        id_text(*id).as_bytes(),
                        b"FORCE",
                        b"JUSTID",
                        b"RETRYCOUNT",
                        p.delivery_count.to_string().as_bytes(),
                        b"TIME",
                        p.delivery_time.to_string().as_bytes(),
                    ],
                );
            }
        }
    }
    if !placeholders.is_empty() {
        let ids: Vec<String> = placeholders.iter().map(|p| id_text(*p)).collect();
        let mut args: Vec<&[u8]> = vec![b"XDEL", key];
        args.extend(ids.iter().map(|s| s.as_bytes()));
        resp_cmd(o, &args);
        if let (Some(added), Some(maxdel)) = (s.entries_added, s.max_deleted_id) {
            resp_cmd(
                o,
                &[
                    b"XSETID",
                    key,
                    last.as_bytes(),
                    b"ENTRIESADDED",
                    added.to_string().as_bytes(),
                    b"MAXDELETEDID",
                    id_text(maxdel).as_bytes(),
                ],
            );
        }
    }
    Ok(())
}
