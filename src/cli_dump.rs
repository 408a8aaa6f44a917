//! `rdbkit dump`: every key as a JSON line, or as RESP commands that `redis-cli --pipe` loads into a live server.
//!
//! RESP output recreates the data set with ordinary commands: `SELECT` before the first key and whenever the
//! database changes, `FUNCTION LOAD REPLACE` per function library (servers write them before any key), `SET`,
//! `RPUSH`/`SADD`/`ZADD`/`HSET` in batches of at most 1000 elements, `HPEXPIREAT … FIELDS 1 field` per field TTL,
//! `PEXPIREAT` for the key's expiry; streams with `XADD` per entry (explicit IDs), `XSETID`, `XGROUP CREATE`,
//! `XGROUP CREATECONSUMER` and one `XCLAIM … FORCE JUSTID RETRYCOUNT n TIME ms` per pending entry. A pending entry
//! whose stream entry was deleted is recreated by adding a placeholder entry with its ID, claiming it, and deleting
//! it again (a server drops claims on missing entries). Module values, and every value with `--restore`, become
//! `RESTORE key ttl payload ABSTTL REPLACE` with a DUMP payload stamped with the file's RDB version, so the target
//! server must be at least as new as the one that wrote the file.
//!
//! Values ordinary commands cannot recreate exactly are written as `RESTORE` too, and stderr says how many and
//! why: sorted sets with a −0 score (Redis 7.0+ `ZADD` stores −0 as the integer 0 in a listpack), hashes with a
//! field expiry `HPEXPIREAT` refuses (above 2^46 − 1 ms, though files hold up to 2^48 − 1), streams whose
//! metadata `XSETID` refuses (entries_added below the length or negative, max_deleted_id or the top entry above
//! the last ID), consumer groups whose entries_read `XGROUP CREATE … ENTRIESREAD` refuses (negative other than
//! −1), streams with deleted pending entries whose max_deleted_id is 0-0 (deleting the placeholders raises it), and
//! strings or list/set elements over 512 MiB (no command takes a string longer than `proto-max-bulk-len`).
//! Strings over 1 MiB — values, list/set elements and hash values stored on their own — are written in pieces as
//! they are decoded, so memory stays bounded whatever their length.
//!
//! Empty lists, sets, sorted sets and hashes are skipped (a server drops them on load too). MODULE_AUX records
//! cannot be recreated with commands and are not exported.

use crate::Format;
use crate::cli_common::{
    Failure, base64, for_each_validated_record, i64_text, json_bytes, json_f64, json_str, out_err, push_i64,
    push_json_escape, push_u64, room, take_out_of_memory, value_error,
};
use rdbkit::Error;
use rdbkit::format::crc::crc64;
use rdbkit::format::double::format_human_double;
use rdbkit::format::intset::Intset;
use rdbkit::format::length::{array, length};
use rdbkit::format::listpack::Listpack;
use rdbkit::format::string::{RdbStr, rdb_str};
use rdbkit::format::ziplist::Ziplist;
use rdbkit::format::{BlobElems, Elem};
use rdbkit::read::stream_value::{StreamId, StreamValue};
use rdbkit::read::value::OwnedStream;
use rdbkit::read::{Encoding, Entry, Item, LogicalType, OwnedValue, Record, RecordKind, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;

/// Most elements per `RPUSH`/`SADD`/`ZADD`/`HSET` command.
const BATCH: usize = 1000;

/// Options of `rdbkit dump`.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// Output format.
    pub format: Format,
    /// Only this database.
    pub db: Option<u64>,
    /// RESP: RESTORE every value.
    pub restore: bool,
    /// Deep-validate the whole input before writing anything (the verdict of `verify`).
    pub validate: bool,
}

/// Output is gathered in memory and written in chunks of about this size.
const CHUNK: usize = 1 << 20;

/// Largest absolute time `HPEXPIREAT` accepts (Redis 7.4+ `HFE_MAX_ABS_TIME_MSEC`, 2^46 − 1 ms); a file may hold
/// field expiries up to 2^48 − 1.
const HPEXPIREAT_MAX: i64 = (1 << 46) - 1;

/// Why a value was written as `RESTORE` although ordinary commands exist for its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fallback {
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
    const ALL: [Fallback; 8] = [
        Fallback::NegativeZero,
        Fallback::NanScore,
        Fallback::FieldTtl,
        Fallback::StreamSetId,
        Fallback::EntriesRead,
        Fallback::StreamState,
        Fallback::Placeholders,
        Fallback::LongString,
    ];

    fn why(self) -> &'static str {
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

/// Buffers reused from key to key.
#[derive(Default)]
struct Scratch {
    /// A decoded string value.
    value: Vec<u8>,
    /// RESP: the elements of the command being built.
    body: Vec<u8>,
    /// RESP: a formatted score.
    score: Vec<u8>,
    /// A decoded hash field (beside its value in `value`).
    field: Vec<u8>,
    /// RESP: keys written as RESTORE although ordinary commands exist for their type, by reason.
    fallbacks: [u64; Fallback::ALL.len()],
}

/// Strings longer than this are written in pieces, straight to the output, instead of being decoded and
/// formatted in one buffer: memory stays bounded whatever the declared length of an LZF string.
const STREAM_MIN: u64 = 1 << 20;

/// Bytes handed to the formatter at a time when streaming a raw string.
const PIECE: usize = 64 << 10;

/// Where the output goes: `buf`, written out to `out` whenever it holds a chunk.
struct Sink<'o> {
    buf: Vec<u8>,
    out: &'o mut dyn Write,
    /// Part of the current record was already written out (a long string streamed in pieces).
    spilled: bool,
    /// The first error writing a streamed piece.
    write_err: Option<std::io::Error>,
}

/// Calls `f` with consecutive pieces of the logical bytes of a string (raw or LZF), never holding more than
/// one piece of it.
fn for_each_piece(s: RdbStr<'_>, mut f: impl FnMut(&[u8])) -> rdbkit::Result<()> {
    match s {
        RdbStr::Raw(b) => b.chunks(PIECE).for_each(f),
        RdbStr::Int(i) => f(i.to_string().as_bytes()),
        RdbStr::Lzf { compressed, len } => {
            let n = rdbkit::format::string::checked_lzf_len(compressed.len(), len)?;
            let mut decoder = rdbkit::format::lzf::Decoder::new(compressed, n);
            while let Some(piece) = decoder.next_chunk()? {
                f(piece);
            }
        }
    }
    Ok(())
}

/// Whether the logical bytes of `s` are UTF-8, checked piece by piece.
fn is_utf8(s: RdbStr<'_>) -> rdbkit::Result<bool> {
    let mut ok = true;
    // Up to 3 bytes of a character cut by a piece boundary.
    let mut carry: Vec<u8> = Vec::with_capacity(PIECE + 4);
    for_each_piece(s, |p| {
        if !ok {
            return;
        }
        carry.extend_from_slice(p);
        match std::str::from_utf8(&carry) {
            Ok(_) => carry.clear(),
            Err(e) if e.error_len().is_none() => {
                let tail = carry.split_off(e.valid_up_to());
                carry = tail;
            }
            Err(_) => ok = false,
        }
    })?;
    Ok(ok && carry.is_empty())
}

/// Appends JSON escapes of `p`, part of a valid UTF-8 string (as `json_bytes` escapes it).
fn json_escape_piece(o: &mut Vec<u8>, p: &[u8]) {
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
struct Base64Pieces {
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

impl Sink<'_> {
    /// Writes `buf` out if it holds a chunk (remembering a write error for the caller).
    fn spill(&mut self) {
        if self.buf.len() >= CHUNK {
            self.spilled = true;
            if self.write_err.is_none()
                && let Err(e) = self.out.write_all(&self.buf)
            {
                self.write_err = Some(e);
            }
            self.buf.clear();
        }
    }
}

/// Writes a long string as a JSON value in pieces: a string when it is UTF-8, else `{"b64":"…"}`.
fn json_long_str(sink: &mut Sink<'_>, s: RdbStr<'_>) -> rdbkit::Result<()> {
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

/// Longest string a server creates with commands (`proto-max-bulk-len`, 512 MiB by default; `APPEND` and
/// `SETRANGE` stop there too). A file can hold longer ones, which only `RESTORE` recreates.
const PROTO_MAX_BULK_LEN: u64 = 512 << 20;

/// Writes `SET key value` for a long string, the value streamed in pieces.
fn resp_long_set(sink: &mut Sink<'_>, key: &[u8], s: RdbStr<'_>) -> rdbkit::Result<()> {
    resp_head(&mut sink.buf, 3);
    bulk(&mut sink.buf, b"SET");
    bulk(&mut sink.buf, key);
    resp_long_bulk(sink, s)
}

/// Writes a long string as a RESP bulk string, in pieces.
fn resp_long_bulk(sink: &mut Sink<'_>, s: RdbStr<'_>) -> rdbkit::Result<()> {
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

/// `rdbkit dump FILE --format json|resp [--db N] [--restore]`.
pub fn dump(path: &str, opts: &DumpOptions, out: &mut dyn Write) -> Result<(), Failure> {
    // Records are appended to `buf`, which is written out whenever it holds a chunk; a record that fails leaves
    // nothing behind, and everything before it is still written. Long strings are the exception: they go out in
    // pieces as they are decoded (the input was deep-validated first, so a decoding error there is not expected
    // unless validation was turned off).
    let mut sink = Sink { buf: Vec::with_capacity(CHUNK + (CHUNK >> 2)), out, spilled: false, write_err: None };
    let mut scratch = Scratch::default();
    let mut selected: Option<u64> = None;
    let res = for_each_validated_record(path, opts.validate, |header, rec| {
        let mark = sink.buf.len();
        sink.spilled = false;
        let mut r = dump_record(&mut sink, &mut scratch, &mut selected, opts, header.version, rec);
        if let Some(e) = take_out_of_memory(rec.offset) {
            r = Err(e.into());
        }
        if let Some(e) = sink.write_err.take() {
            return Err(out_err(e));
        }
        if r.is_err() {
            if sink.spilled {
                sink.buf.clear();
            } else {
                sink.buf.truncate(mark);
            }
            return r;
        }
        if sink.buf.len() >= CHUNK {
            let w = sink.out.write_all(&sink.buf);
            sink.buf.clear();
            w.map_err(out_err)?;
        }
        Ok(())
    });
    let w = sink.out.write_all(&sink.buf).map_err(out_err);
    report_fallbacks(&scratch.fallbacks);
    res?;
    w
}

/// Tells on stderr how many keys were written as RESTORE because ordinary commands cannot recreate them exactly.
fn report_fallbacks(counts: &[u64; Fallback::ALL.len()]) {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return;
    }
    let why: Vec<String> =
        Fallback::ALL.iter().zip(counts).filter(|(_, n)| **n > 0).map(|(f, n)| format!("{n} {}", f.why())).collect();
    eprintln!(
        "rdbkit dump: {total} key(s) written as RESTORE (the server must load RDB payloads of this file's version): {}",
        why.join("; ")
    );
}

/// Appends the output of one record.
fn dump_record(
    sink: &mut Sink<'_>,
    scratch: &mut Scratch,
    selected: &mut Option<u64>,
    opts: &DumpOptions,
    version: u32,
    rec: &Record<'_>,
) -> Result<(), Failure> {
    match rec.kind {
        RecordKind::Function { code } => {
            let buf = &mut sink.buf;
            let code = code.decode()?;
            match opts.format {
                Format::Json => {
                    buf.extend_from_slice(b"{\"function\":");
                    json_bytes(buf, &code);
                    buf.extend_from_slice(b"}\n");
                }
                Format::Resp => resp_cmd(buf, &[b"FUNCTION", b"LOAD", b"REPLACE", &code]),
            }
        }
        RecordKind::Entry(ref e) if opts.db.is_none_or(|d| d == e.db) => {
            let key = e.key.decode().map_err(|err| value_error(err, rec, e.value.raw, e.db, b""))?;
            let failed = |err: Error| value_error(err, rec, e.value.raw, e.db, &key);
            match opts.format {
                Format::Json => json_entry(sink, scratch, e, &key).map_err(failed)?,
                Format::Resp => {
                    let buf = &mut sink.buf;
                    // RDB versions fit in u16 (REDIS is 4 digits, VALKEY 3).
                    let version = version as u16;
                    let mark = buf.len();
                    if *selected != Some(e.db) {
                        let mut db = Vec::new();
                        push_u64(&mut db, e.db);
                        resp_cmd(buf, &[b"SELECT", &db]);
                    }
                    let start = buf.len();
                    let wrote = resp_entry(sink, scratch, e, &key, opts.restore, version).map_err(failed)?;
                    if wrote {
                        *selected = Some(e.db);
                    } else {
                        debug_assert_eq!(sink.buf.len(), start);
                        sink.buf.truncate(mark);
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Collections, walked straight from their bytes
//
// The records reach `dump` deep-validated, so their values have the shape the library's iterators expect. The
// walkers below visit the same elements as `Value::elements`, `zset_entries` and `hash_fields` without wrapping
// each in an `Item` (or copying elements of compressed blobs out one by one): elements borrow from the input, or
// from one decompressed blob. A walker returns None for an encoding it does not cover, or as soon as anything does
// not have the expected shape; the caller then discards what it wrote and lets the library iterator decide (the
// elements, or the error).

/// The elements of one ziplist, listpack or intset.
enum Blob<'a> {
    /// A ziplist or a listpack.
    Elems(BlobElems<'a>),
    Intset(Intset<'a>, usize),
}

#[derive(Clone, Copy)]
enum BlobKind {
    Ziplist,
    Listpack,
    Intset,
}

impl<'a> Blob<'a> {
    fn open(bytes: &'a [u8], kind: BlobKind) -> Option<Blob<'a>> {
        Some(match kind {
            BlobKind::Ziplist => Blob::Elems(Ziplist::new(bytes).ok()?.iter()),
            BlobKind::Listpack => Blob::Elems(Listpack::new(bytes).ok()?.iter()),
            BlobKind::Intset => Blob::Intset(Intset::new(bytes).ok()?, 0),
        })
    }

    /// The next element: `Ok(None)` at the end, `Err(())` for an element that does not decode.
    #[inline]
    fn next_elem(&mut self) -> Result<Option<Elem<'a>>, ()> {
        match self {
            Blob::Elems(it) => it.next().transpose().map_err(drop),
            Blob::Intset(set, i) => {
                let v = set.get(*i);
                *i += 1;
                Ok(v.map(Elem::Int))
            }
        }
    }
}

/// The bytes of a blob stored as an RDB string (LZF-compressed ones decompressed into `buf`).
fn blob_bytes<'b>(s: RdbStr<'b>, buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    match s {
        RdbStr::Int(_) => None,
        s => s.decode_reusing(buf).ok(),
    }
}

/// One element of a list or set: decoded, or (a string stored on its own, over 1 MiB) still as stored, for the
/// caller to stream.
enum Part<'a> {
    Elem(Elem<'a>),
    Long(RdbStr<'a>),
}

/// Calls `f` with each element of the blob stored as `s`.
fn each_in_blob(s: RdbStr<'_>, kind: BlobKind, buf: &mut Vec<u8>, f: &mut impl FnMut(Part<'_>)) -> Option<()> {
    let mut blob = Blob::open(blob_bytes(s, buf)?, kind)?;
    while let Some(e) = blob.next_elem().ok()? {
        f(Part::Elem(e));
    }
    Some(())
}

/// Calls `f` with a string stored as an element of its own.
fn each_str(s: RdbStr<'_>, buf: &mut Vec<u8>, f: &mut impl FnMut(Part<'_>)) -> Option<()> {
    match s {
        RdbStr::Int(i) => f(Part::Elem(Elem::Int(i))),
        long if long.logical_len() > STREAM_MIN => f(Part::Long(long)),
        RdbStr::Raw(b) => f(Part::Elem(Elem::Bytes(b))),
        lzf => f(Part::Elem(Elem::Bytes(lzf.decode_reusing(buf).ok()?))),
    }
    Some(())
}

/// The longest string stored on its own (not inside a blob) among the elements of a list or set, read from the
/// lengths alone; `None` when the value does not have the expected shape.
fn longest_plain_elem(v: &Value<'_>) -> Option<u64> {
    use Encoding::*;
    let (mut r, n) = match v.encoding {
        ListLinked | Set | ListQuicklist2 => length(v.raw).ok()?,
        _ => return Some(0),
    };
    let mut longest = 0;
    for _ in 0..n {
        let mut plain = v.encoding != ListQuicklist2;
        if !plain {
            let (rest, container) = length(r).ok()?;
            r = rest;
            plain = container == 1;
        }
        let (rest, s) = rdb_str(r).ok()?;
        r = rest;
        if plain {
            longest = longest.max(s.logical_len());
        }
    }
    Some(longest)
}

/// The fields of a hash stored field by field (hashtable layouts), as stored, with their expiries as
/// [`Value::hash_fields`] gives them; `None` for other encodings or a value without the expected shape.
fn plain_hash_fields<'a>(v: &Value<'a>, mut f: impl FnMut(RdbStr<'a>, RdbStr<'a>, Option<i64>)) -> Option<()> {
    use Encoding::*;
    let raw = v.raw;
    let (mut r, min) = match v.encoding {
        HashMetadata => {
            let (r, m) = array::<8>(raw).ok()?;
            (r, i64::from_le_bytes(m))
        }
        Hash | HashMetadataPreGa | ValkeyHash2 => (raw, 0),
        _ => return None,
    };
    let (rest, n) = length(r).ok()?;
    r = rest;
    for _ in 0..n {
        let mut expire = None;
        if matches!(v.encoding, HashMetadata | HashMetadataPreGa) {
            let (rest, t) = length(r).ok()?;
            r = rest;
            expire = if v.encoding == HashMetadata {
                // expireAt = ttl + minExpire - 1; 0 (and a ttl of 0) is "no TTL".
                (t != 0).then(|| (t as i64).wrapping_add(min).wrapping_sub(1)).filter(|&e| e != 0)
            } else {
                (t != 0).then_some(t as i64)
            };
        }
        let (rest, field) = rdb_str(r).ok()?;
        let (rest, value) = rdb_str(rest).ok()?;
        r = rest;
        if v.encoding == ValkeyHash2 {
            let (rest, e) = array::<8>(r).ok()?;
            r = rest;
            let e = i64::from_le_bytes(e);
            expire = (e != -1).then_some(e);
        }
        f(field, value, expire);
    }
    Some(())
}

/// What streaming a hash stored field by field needs to know first: its longest value and whether every field
/// expiry is one `HPEXPIREAT` takes. `None` for other encodings.
fn plain_hash_survey(v: &Value<'_>) -> Option<(u64, bool)> {
    let (mut longest, mut ttls_ok) = (0, true);
    plain_hash_fields(v, |_, value, e| {
        longest = longest.max(value.logical_len());
        ttls_ok &= e.is_none_or(|ms| (0..=HPEXPIREAT_MAX).contains(&ms));
    })?;
    Some((longest, ttls_ok))
}

/// Writes a hash stored field by field as JSON, long values streamed.
fn json_plain_hash(sink: &mut Sink<'_>, scratch: &mut Scratch, v: &Value<'_>) -> rdbkit::Result<()> {
    sink.buf.push(b'[');
    let mut first = true;
    let mut err = None;
    let walked = plain_hash_fields(v, |field, value, expire_ms| {
        if err.is_some() {
            return;
        }
        let r = (|| -> rdbkit::Result<()> {
            sink.buf.extend_from_slice(if first { b"[" } else { b",[" });
            first = false;
            json_bytes(&mut sink.buf, field.decode_reusing(&mut scratch.field)?);
            sink.buf.push(b',');
            if value.logical_len() > STREAM_MIN {
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

/// Appends `HSET` commands (batches of [`BATCH`] pairs; a field with a value over 1 MiB gets one of its own, its
/// value streamed), the field expiries and the key's expiry, for a hash stored field by field.
fn resp_plain_hash(sink: &mut Sink<'_>, scratch: &mut Scratch, e: &Entry<'_>, key: &[u8]) -> rdbkit::Result<bool> {
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
        let r = (|| -> rdbkit::Result<()> {
            let f = field.decode_reusing(&mut scratch.field)?;
            if let Some(ms) = expire_ms {
                ttls.push((f.to_vec(), ms));
            }
            if value.logical_len() > STREAM_MIN {
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

/// The elements of a list or set, as [`Value::elements`] yields them.
fn walk_elements(v: &Value<'_>, buf: &mut Vec<u8>, mut f: impl FnMut(Part<'_>)) -> Option<()> {
    use Encoding::*;
    let raw = v.raw;
    match v.encoding {
        ListZiplist | SetIntset | SetListpack => {
            let kind = match v.encoding {
                ListZiplist => BlobKind::Ziplist,
                SetIntset => BlobKind::Intset,
                _ => BlobKind::Listpack,
            };
            each_in_blob(rdb_str(raw).ok()?.1, kind, buf, &mut f)
        }
        ListLinked | Set => {
            let (mut r, n) = length(raw).ok()?;
            for _ in 0..n {
                let (rest, s) = rdb_str(r).ok()?;
                r = rest;
                each_str(s, buf, &mut f)?;
            }
            Some(())
        }
        ListQuicklist | ListQuicklist2 => {
            let (mut r, n) = length(raw).ok()?;
            for _ in 0..n {
                // A quicklist node is a ziplist; a quicklist2 node a listpack, or with container 1 a plain node
                // (the string is the element).
                let mut kind = Some(BlobKind::Ziplist);
                if v.encoding == ListQuicklist2 {
                    let (rest, container) = length(r).ok()?;
                    r = rest;
                    kind = (container != 1).then_some(BlobKind::Listpack);
                }
                let (rest, s) = rdb_str(r).ok()?;
                r = rest;
                match kind {
                    Some(kind) => each_in_blob(s, kind, buf, &mut f)?,
                    None => each_str(s, buf, &mut f)?,
                }
            }
            Some(())
        }
        _ => None,
    }
}

/// The members and scores of a sorted set stored as a ziplist or listpack, as [`Value::zset_entries`] yields them.
fn walk_zset(v: &Value<'_>, buf: &mut Vec<u8>, mut f: impl FnMut(Elem<'_>, f64)) -> Option<()> {
    let kind = match v.encoding {
        Encoding::ZsetZiplist => BlobKind::Ziplist,
        Encoding::ZsetListpack => BlobKind::Listpack,
        _ => return None,
    };
    let mut blob = Blob::open(blob_bytes(rdb_str(v.raw).ok()?.1, buf)?, kind)?;
    while let Some(m) = blob.next_elem().ok()? {
        let score = match blob.next_elem().ok()?? {
            Elem::Int(i) => i as f64,
            Elem::Bytes(b) => rdbkit::format::double::listpack_score(b),
        };
        f(m, score);
    }
    Some(())
}

/// The fields of a hash stored as a ziplist or listpack (with per-field expiries for listpack-ex), as
/// [`Value::hash_fields`] yields them.
fn walk_hash(v: &Value<'_>, buf: &mut Vec<u8>, mut f: impl FnMut(Elem<'_>, Elem<'_>, Option<i64>)) -> Option<()> {
    let (blob, kind, triples) = match v.encoding {
        Encoding::HashZiplist => (v.raw, BlobKind::Ziplist, false),
        Encoding::HashListpack => (v.raw, BlobKind::Listpack, false),
        Encoding::HashListpackEx => (array::<8>(v.raw).ok()?.0, BlobKind::Listpack, true),
        Encoding::HashListpackExPreGa => (v.raw, BlobKind::Listpack, true),
        _ => return None,
    };
    let mut blob = Blob::open(blob_bytes(rdb_str(blob).ok()?.1, buf)?, kind)?;
    while let Some(field) = blob.next_elem().ok()? {
        let value = blob.next_elem().ok()??;
        let mut expire_ms = None;
        if triples {
            let t = blob.next_elem().ok()??.as_i64()?;
            expire_ms = (t != 0).then_some(t);
        }
        f(field, value, expire_ms);
    }
    Some(())
}

// ---------------------------------------------------------------------------------------------------------------
// JSON

fn json_entry(sink: &mut Sink<'_>, scratch: &mut Scratch, e: &Entry<'_>, key: &[u8]) -> rdbkit::Result<()> {
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
            s if s.logical_len() > STREAM_MIN => json_long_str(sink, s)?,
            _ => json_value(o, scratch, &e.value)?,
        },
        LogicalType::List | LogicalType::Set => json_elements(sink, scratch, &e.value)?,
        LogicalType::Hash if plain_hash_survey(&e.value).is_some_and(|(longest, _)| longest > STREAM_MIN) => {
            json_plain_hash(sink, scratch, &e.value)?
        }
        _ => json_value(o, scratch, &e.value)?,
    }
    sink.buf.extend_from_slice(b"}\n");
    Ok(())
}

/// Writes `items` as a JSON array, each with `f`.
fn json_array<T>(o: &mut Vec<u8>, items: impl IntoIterator<Item = T>, mut f: impl FnMut(&mut Vec<u8>, T)) {
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
fn json_quoted_int(o: &mut Vec<u8>, i: i64) {
    o.push(b'"');
    push_i64(o, i);
    o.push(b'"');
}

fn json_item(o: &mut Vec<u8>, it: &Item<'_>) {
    match it {
        Item::Borrowed(b) => json_bytes(o, b),
        Item::Owned(v) => json_bytes(o, v),
        Item::Int(i) => json_quoted_int(o, *i),
    }
}

/// A stream ID as text (`ms-seq`).
fn push_id(o: &mut Vec<u8>, id: StreamId) {
    push_u64(o, id.ms);
    o.push(b'-');
    push_u64(o, id.seq);
}

fn json_id(o: &mut Vec<u8>, id: StreamId) {
    o.push(b'"');
    push_id(o, id);
    o.push(b'"');
}

fn json_opt<T>(o: &mut Vec<u8>, v: Option<T>, f: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        Some(v) => f(o, v),
        None => o.extend_from_slice(b"null"),
    }
}

fn json_value(o: &mut Vec<u8>, scratch: &mut Scratch, v: &Value<'_>) -> rdbkit::Result<()> {
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
fn json_elements(sink: &mut Sink<'_>, scratch: &mut Scratch, v: &Value<'_>) -> rdbkit::Result<()> {
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
fn json_stream(o: &mut Vec<u8>, scratch: &mut Scratch, v: &Value<'_>) -> rdbkit::Result<()> {
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

fn json_elem(o: &mut Vec<u8>, e: Elem<'_>) {
    match e {
        Elem::Bytes(b) => json_bytes(o, b),
        Elem::Int(i) => json_quoted_int(o, i),
    }
}

/// Stream entry flags in a node listpack.
const STREAM_DELETED: i64 = 1;
const STREAM_SAMEFIELDS: i64 = 2;

/// Walks the live entries of a stream in node order, as [`StreamValue::entries`] decodes them but without copying
/// anything out: `f` gets each entry's ID and field/value pairs, borrowed from the node (LZF nodes are decoded into
/// `buf`). Returns false as soon as a node does not have the shape `entries` expects (deep validation rules that
/// out); the caller then discards what `f` wrote and lets `entries` decide.
fn walk_stream_entries(
    s: &StreamValue<'_>,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(StreamId, &[(Elem<'_>, Elem<'_>)]),
) -> bool {
    for (master, lp) in &s.nodes {
        let Ok(bytes) = lp.decode_reusing(buf) else { return false };
        let Ok(lp) = Listpack::new(bytes) else { return false };
        let mut it = lp.iter();
        let mut next = || it.next().and_then(|r| r.ok());
        let (Some(count), Some(deleted), Some(nmaster)) =
            (next().and_then(int), next().and_then(int), next().and_then(int))
        else {
            return false;
        };
        if count < 0 || deleted < 0 || nmaster < 0 {
            return false;
        }
        let Some(total) = count.checked_add(deleted).filter(|&t| t > 0) else { return false };
        let mut master_fields = Vec::new();
        for _ in 0..nmaster {
            let Some(name) = next() else { return false };
            master_fields.push(name);
        }
        if next().and_then(int) != Some(0) {
            return false;
        }
        let mut fields = Vec::new();
        for _ in 0..total {
            let (Some(flags), Some(ms_delta), Some(seq_delta)) =
                (next().and_then(int), next().and_then(int), next().and_then(int))
            else {
                return false;
            };
            let id = StreamId {
                ms: master.ms.wrapping_add(ms_delta as u64),
                seq: master.seq.wrapping_add(seq_delta as u64),
            };
            fields.clear();
            let expect = if flags & STREAM_SAMEFIELDS != 0 {
                for name in &master_fields {
                    let Some(v) = next() else { return false };
                    fields.push((*name, v));
                }
                i128::from(nmaster) + 3
            } else {
                let Some(n) = next().and_then(int).filter(|&n| n >= 0) else { return false };
                for _ in 0..n {
                    let (Some(k), Some(v)) = (next(), next()) else { return false };
                    fields.push((k, v));
                }
                2 * i128::from(n) + 4
            };
            if next().and_then(int).map(i128::from) != Some(expect) {
                return false;
            }
            if flags & STREAM_DELETED == 0 {
                f(id, &fields);
            }
        }
        if it.next().is_some() {
            return false;
        }
    }
    true
}

/// An element that must be an integer.
fn int(e: Elem<'_>) -> Option<i64> {
    e.as_i64()
}

/// Writes a stream's metadata and groups (everything after its entries) and closes the object.
fn json_stream_tail(o: &mut Vec<u8>, s: &OwnedStream) {
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

/// Appends one command.
fn resp_cmd(o: &mut Vec<u8>, args: &[&[u8]]) {
    resp_head(o, args.len());
    for a in args {
        bulk(o, a);
    }
}

/// Appends a command's header: its number of arguments.
fn resp_head(o: &mut Vec<u8>, n: usize) {
    o.push(b'*');
    push_u64(o, n as u64);
    o.extend_from_slice(b"\r\n");
}

fn bulk(o: &mut Vec<u8>, a: &[u8]) {
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
fn bulk_int(o: &mut Vec<u8>, i: i64) {
    o.push(b'$');
    push_u64(o, u64::from(i < 0) + i.unsigned_abs().checked_ilog10().map_or(1, |d| u64::from(d) + 1));
    o.extend_from_slice(b"\r\n");
    push_i64(o, i);
    o.extend_from_slice(b"\r\n");
}

/// A command whose arguments are added one by one (batches of elements), gathered in a reused buffer.
struct Cmd<'h, 'b> {
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
fn resp_entry(
    sink: &mut Sink<'_>,
    scratch: &mut Scratch,
    e: &Entry<'_>,
    key: &[u8],
    restore: bool,
    version: u16,
) -> rdbkit::Result<bool> {
    let v = &e.value;
    let ty = v.logical_type();
    if !restore
        && ty == LogicalType::String
        && let s = v.as_string()?
        && s.logical_len() > STREAM_MIN
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
        && longest > STREAM_MIN
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
fn resp_restore(o: &mut Vec<u8>, e: &Entry<'_>, key: &[u8], version: u16) -> rdbkit::Result<bool> {
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
        // The DUMP payload (rdbkit::dump::dump_payload) written in place, not built as a copy of the value first.
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
fn resp_commands(
    o: &mut Vec<u8>,
    scratch: &mut Scratch,
    e: &Entry<'_>,
    key: &[u8],
) -> rdbkit::Result<Result<bool, Fallback>> {
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
fn resp_expiry(o: &mut Vec<u8>, e: &Entry<'_>, key: &[u8]) {
    if let Some(x) = e.expiry {
        resp_head(o, 3);
        bulk(o, b"PEXPIREAT");
        bulk(o, key);
        bulk_int(o, x.as_millis());
    }
}

/// Appends `RPUSH`/`SADD` commands (batches of [`BATCH`]) recreating a list or set; an element over 1 MiB stored on
/// its own gets a command of its own, streamed. Returns false (nothing written) for an empty collection.
fn resp_elements(sink: &mut Sink<'_>, scratch: &mut Scratch, e: &Entry<'_>, key: &[u8]) -> rdbkit::Result<bool> {
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
fn is_empty_collection(v: &Value<'_>) -> rdbkit::Result<bool> {
    Ok(match v.logical_type().name() {
        "list" | "set" => v.elements()?.next().transpose()?.is_none(),
        "zset" => v.zset_entries()?.next().transpose()?.is_none(),
        "hash" => v.hash_fields()?.next().transpose()?.is_none(),
        _ => false,
    })
}

fn id_text(id: StreamId) -> String {
    id.to_string()
}

/// Appends the commands recreating a stream, its entries written straight from the node listpacks. Pending entries
/// whose stream entry was deleted are recreated as placeholders (see [`resp_stream_owned`]); placing them in one
/// pass relies on the entries being in ascending ID order, so a stream that is not falls back to decoding.
fn resp_stream(
    o: &mut Vec<u8>,
    scratch: &mut Scratch,
    key: &[u8],
    v: &Value<'_>,
) -> rdbkit::Result<Result<(), Fallback>> {
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
fn resp_placeholder(o: &mut Vec<u8>, key: &[u8], id: StreamId) {
    resp_cmd(o, &[b"XADD", key, id_text(id).as_bytes(), b"rdbkit-placeholder", b""]);
}

fn bulk_elem(o: &mut Vec<u8>, e: Elem<'_>) {
    match e {
        Elem::Bytes(b) => bulk(o, b),
        Elem::Int(i) => bulk_int(o, i),
    }
}

/// Appends the commands recreating a decoded stream.
fn resp_stream_owned(o: &mut Vec<u8>, key: &[u8], s: &OwnedStream) -> Result<(), Fallback> {
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
fn resp_stream_tail(
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
