//! Fast walks over the elements of a value, straight from its bytes: the elements of a list or set, the
//! members and scores of a sorted set, the fields of a hash, the entries of a stream — each handed to a closure,
//! borrowed from the input (or from one decompressed blob, reused from value to value), without wrapping each in
//! an [`Item`](crate::read::Item) as [`Value::elements`] and its siblings do. `rdbkit dump` writes its JSON and
//! RESP output through them.
//!
//! They are a fast path for **deep-validated** records (the default [`ReadOptions`](crate::read::ReadOptions)):
//! each returns `None` (or `false`) for an encoding it does not cover, or as soon as something does not have the
//! shape validation guarantees. What the closure received is then incomplete: discard it and use the value's
//! iterators ([`Value::elements`], [`Value::zset_entries`], [`Value::hash_fields`], [`StreamValue::entries`]),
//! which decode every encoding and name the problem.
//!
//! ```
//! use rdbkit::read::{RecordKind, SliceReader, visit};
//! let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/redis-7.0.rdb")).unwrap();
//! let (mut buf, mut elements) = (Vec::new(), 0);
//! for rec in SliceReader::new(&data).unwrap() {
//!     if let RecordKind::Entry(e) = rec.unwrap().kind
//!         && e.value.logical_type().name() == "list"
//!     {
//!         visit::walk_elements(&e.value, &mut buf, |_| elements += 1).expect("a validated list");
//!     }
//! }
//! assert!(elements > 0);
//! ```

use crate::format::intset::Intset;
use crate::format::length::{array, length};
use crate::format::listpack::Listpack;
use crate::format::string::{RdbStr, rdb_str};
use crate::format::ziplist::Ziplist;
use crate::format::{BlobElems, Elem};
use crate::read::stream_value::{StreamId, StreamValue};
use crate::read::{Encoding, Value};

/// Strings longer than this are written in pieces, straight to the output, instead of being decoded and
/// formatted in one buffer: memory stays bounded whatever the declared length of an LZF string.
pub const LONG_STRING: u64 = 1 << 20;

/// Bytes handed to the formatter at a time when streaming a raw string.
pub const PIECE: usize = 64 << 10;

/// Calls `f` with consecutive pieces of the logical bytes of a string (raw or LZF), never holding more than
/// one piece of it.
pub fn for_each_piece(s: RdbStr<'_>, mut f: impl FnMut(&[u8])) -> crate::Result<()> {
    match s {
        RdbStr::Raw(b) => b.chunks(PIECE).for_each(f),
        RdbStr::Int(i) => f(i.to_string().as_bytes()),
        RdbStr::Lzf { compressed, len } => {
            let n = crate::format::string::checked_lzf_len(compressed.len(), len)?;
            let mut decoder = crate::format::lzf::Decoder::new(compressed, n);
            while let Some(piece) = decoder.next_chunk()? {
                f(piece);
            }
        }
    }
    Ok(())
}

/// Whether the logical bytes of `s` are UTF-8, checked piece by piece.
pub fn is_utf8(s: RdbStr<'_>) -> crate::Result<bool> {
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
pub enum Part<'a> {
    /// An element, decoded (borrowed from the input or from one decompressed blob).
    Elem(Elem<'a>),
    /// A string stored on its own and longer than [`LONG_STRING`], as stored: stream it with [`for_each_piece`].
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
        long if long.logical_len() > LONG_STRING => f(Part::Long(long)),
        RdbStr::Raw(b) => f(Part::Elem(Elem::Bytes(b))),
        lzf => f(Part::Elem(Elem::Bytes(lzf.decode_reusing(buf).ok()?))),
    }
    Some(())
}

/// The longest string stored on its own (not inside a blob) among the elements of a list or set, read from the
/// lengths alone; `None` when the value does not have the expected shape.
pub fn longest_plain_elem(v: &Value<'_>) -> Option<u64> {
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
pub fn plain_hash_fields<'a>(v: &Value<'a>, mut f: impl FnMut(RdbStr<'a>, RdbStr<'a>, Option<i64>)) -> Option<()> {
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

/// The elements of a list or set, as [`Value::elements`] yields them.
pub fn walk_elements(v: &Value<'_>, buf: &mut Vec<u8>, mut f: impl FnMut(Part<'_>)) -> Option<()> {
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
pub fn walk_zset(v: &Value<'_>, buf: &mut Vec<u8>, mut f: impl FnMut(Elem<'_>, f64)) -> Option<()> {
    let kind = match v.encoding {
        Encoding::ZsetZiplist => BlobKind::Ziplist,
        Encoding::ZsetListpack => BlobKind::Listpack,
        _ => return None,
    };
    let mut blob = Blob::open(blob_bytes(rdb_str(v.raw).ok()?.1, buf)?, kind)?;
    while let Some(m) = blob.next_elem().ok()? {
        let score = match blob.next_elem().ok()?? {
            Elem::Int(i) => i as f64,
            Elem::Bytes(b) => crate::format::double::listpack_score(b),
        };
        f(m, score);
    }
    Some(())
}

/// The fields of a hash stored as a ziplist or listpack (with per-field expiries for listpack-ex), as
/// [`Value::hash_fields`] yields them.
pub fn walk_hash(v: &Value<'_>, buf: &mut Vec<u8>, mut f: impl FnMut(Elem<'_>, Elem<'_>, Option<i64>)) -> Option<()> {
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

/// Stream entry flags in a node listpack.
const STREAM_DELETED: i64 = 1;
const STREAM_SAMEFIELDS: i64 = 2;

/// Walks the live entries of a stream in node order, as [`StreamValue::entries`] decodes them but without copying
/// anything out: `f` gets each entry's ID and field/value pairs, borrowed from the node (LZF nodes are decoded into
/// `buf`). Returns false as soon as a node does not have the shape `entries` expects (deep validation rules that
/// out); the caller then discards what `f` wrote and lets `entries` decide.
pub fn walk_stream_entries(
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
