//! Values, decoded lazily: every encoding of a type is presented the same way.
//!
//! A [`Value`] is the encoding and the raw bytes of a key's value. Its iterators walk those bytes on demand: a list
//! is a sequence of [`Item`]s whether it was stored as a linked list, a ziplist, a quicklist or a quicklist of
//! listpacks; a hash is a sequence of [`HashField`]s (with per-field expiry where the encoding has one), and so on.
//! Items borrow from the input where the bytes are stored plainly; integers stay integers; LZF-compressed blobs are
//! decompressed once per blob. [`Value::to_owned_value`] decodes everything into an [`OwnedValue`].
//!
//! ```
//! use rdbkit::read::{Item, OwnedValue, RecordKind, SliceReader};
//!
//! # fn main() -> rdbkit::Result<()> {
//! let bytes = std::fs::read("testdata/redis-7.0.rdb")?;
//! let mut reader = SliceReader::new(&bytes)?;
//! while let Some(rec) = reader.next_record()? {
//!     let RecordKind::Entry(e) = rec.kind else { continue };
//!     match &*e.key.decode()? {
//!         // A listpack hash, walked in place: fields borrow the file's bytes, integers stay integers.
//!         b"hash:small" => {
//!             let mut n = None;
//!             for f in e.value.hash_fields()? {
//!                 let f = f?;
//!                 if f.field.as_bytes().as_ref() == b"n" {
//!                     n = f.value.as_i64();
//!                 }
//!             }
//!             assert_eq!(n, Some(42));
//!         }
//!         // An intset, as any set: members in stored order.
//!         b"set:int16" => {
//!             let first = e.value.elements()?.next().transpose()?;
//!             assert_eq!(first, Some(Item::Int(-32768)));
//!         }
//!         // Or everything decoded into owned data.
//!         b"list:small" => match e.value.to_owned_value()? {
//!             OwnedValue::List(items) => assert_eq!(items[..3], [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]),
//!             other => panic!("not a list: {other:?}"),
//!         },
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

use super::encoding::{Encoding, LogicalType};
use super::module::{module_name, split_module_value};
use super::parse::old_double;
use super::stream_value::{StreamEntry, StreamId, StreamValue};
use crate::error::{Error, Result};
use crate::format::length::{PResult, array, le_i64, length};
use crate::format::string::{RdbStr, rdb_str};
use crate::format::{Elem, intset::Intset, listpack::Listpack, ziplist::Ziplist, zipmap::Zipmap};
use std::borrow::Cow;

/// A key's value: its encoding and its raw bytes (everything after the key in the record).
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    /// How the value is stored.
    pub encoding: Encoding,
    /// The stored bytes of the value, exactly as in the file.
    pub raw: &'a [u8],
}

/// One element of a collection: borrowed bytes, an integer (its logical value is its decimal text), or bytes that
/// had to be decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// Bytes borrowed from the input.
    Borrowed(&'a [u8]),
    /// An integer stored in integer form.
    Int(i64),
    /// Bytes decoded from compressed data.
    Owned(Vec<u8>),
}

impl<'a> Item<'a> {
    /// The logical bytes.
    pub fn as_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Item::Borrowed(b) => Cow::Borrowed(b),
            Item::Owned(v) => Cow::Borrowed(v),
            Item::Int(i) => Cow::Owned(Elem::Int(*i).to_vec()),
        }
    }

    /// Appends the logical bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Item::Borrowed(b) => out.extend_from_slice(b),
            Item::Owned(v) => out.extend_from_slice(v),
            Item::Int(i) => Elem::Int(*i).write_to(out),
        }
    }

    /// The logical bytes as a vector.
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Item::Owned(v) => v,
            other => other.as_bytes().into_owned(),
        }
    }

    /// The item as an integer, if it is one (stored as such, or canonical decimal text).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Item::Int(i) => Some(*i),
            Item::Borrowed(b) => crate::format::parse_canonical_i64(b),
            Item::Owned(v) => crate::format::parse_canonical_i64(v),
        }
    }

    fn from_elem(e: Elem<'a>) -> Item<'a> {
        match e {
            Elem::Bytes(b) => Item::Borrowed(b),
            Elem::Int(i) => Item::Int(i),
        }
    }

    fn from_str(s: RdbStr<'a>) -> Result<Item<'a>> {
        Ok(match s {
            RdbStr::Raw(b) => Item::Borrowed(b),
            RdbStr::Int(i) => Item::Int(i),
            lzf => Item::Owned(lzf.decode()?.into_owned()),
        })
    }

    fn to_static(&self) -> Item<'static> {
        match self {
            Item::Borrowed(b) => Item::Owned(b.to_vec()),
            Item::Int(i) => Item::Int(*i),
            Item::Owned(v) => Item::Owned(v.clone()),
        }
    }
}

/// A hash field with its value and, where the encoding stores one, its absolute expiry in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct HashField<'a> {
    /// Field name.
    pub field: Item<'a>,
    /// Field value.
    pub value: Item<'a>,
    /// Absolute expiry (ms since the epoch), if the field has one. Redis 7.4+ stores "no TTL" as an expiry of 0
    /// in every layout, so a Redis field never has `Some(0)`; in Valkey's layout 0 is a real expiry in the past
    /// (the server drops the field when loading it) and −1 means none.
    pub expire_ms: Option<i64>,
}

/// A value decoded into owned Rust data.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OwnedValue {
    /// String bytes.
    String(Vec<u8>),
    /// List elements in order.
    List(Vec<Vec<u8>>),
    /// Set members in stored order.
    Set(Vec<Vec<u8>>),
    /// Sorted-set members and scores in stored order.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// Hash fields, values and per-field expiries in stored order.
    Hash(Vec<(Vec<u8>, Vec<u8>, Option<i64>)>),
    /// A stream.
    Stream(OwnedStream),
    /// A module value, opaque.
    Module {
        /// Module type id.
        id: u64,
        /// Module name (9 characters).
        name: String,
        /// Module encoding version.
        encver: u16,
        /// The payload (module opcodes up to and including EOF).
        payload: Vec<u8>,
    },
}

/// A fully decoded stream.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedStream {
    /// Live entries in ID order.
    pub entries: Vec<StreamEntry>,
    /// Number of live entries (from the metadata).
    pub length: u64,
    /// Last ID ever added.
    pub last_id: StreamId,
    /// First live ID (v2+).
    pub first_id: Option<StreamId>,
    /// Greatest deleted ID (v2+).
    pub max_deleted_id: Option<StreamId>,
    /// Entries ever added (v2+).
    pub entries_added: Option<u64>,
    /// Consumer groups: name, last delivered ID, entries read, PEL, consumers.
    pub groups: Vec<OwnedGroup>,
}

/// A fully decoded consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedGroup {
    /// Group name.
    pub name: Vec<u8>,
    /// Last delivered ID.
    pub last_id: StreamId,
    /// Entries read (v2+); `u64::MAX` is Redis's −1.
    pub entries_read: Option<u64>,
    /// Pending entries.
    pub pel: Vec<super::stream_value::PendingEntry>,
    /// Consumers.
    pub consumers: Vec<OwnedConsumer>,
}

/// A fully decoded consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedConsumer {
    /// Consumer name.
    pub name: Vec<u8>,
    /// Last seen time, ms.
    pub seen_time: i64,
    /// Last active time, ms (v3).
    pub active_time: Option<i64>,
    /// IDs this consumer owns.
    pub pel: Vec<StreamId>,
}

fn run<'a, T>(i: &'a [u8], r: PResult<'a, T>) -> Result<(&'a [u8], T)> {
    r.map_err(|e| match e {
        nom::Err::Incomplete(_) => Error::truncated("value", 0, i.len() as u64),
        nom::Err::Error(e) | nom::Err::Failure(e) => {
            let off = e.offset_in(i, 0);
            e.error.at(off)
        }
    })
}

fn type_error(expected: &str, enc: Encoding) -> Error {
    Error::without_offset(crate::ErrorKind::Invalid(format!(
        "value is a {} ({}), not a {expected}",
        enc.logical_type().name(),
        enc.name()
    )))
}

impl<'a> Value<'a> {
    /// The logical type.
    pub fn logical_type(&self) -> LogicalType {
        self.encoding.logical_type()
    }

    /// Whether a collection holds no element (Redis skips such "empty keys" on load). Cheap: it reads counts and
    /// blob headers, and decompresses a blob only when it is small enough to be empty. Strings, streams and
    /// module values are never empty in this sense.
    pub fn is_empty_collection(&self) -> Result<bool> {
        use Encoding::*;
        let raw = self.raw;
        match self.encoding {
            String | StreamV1 | StreamV2 | StreamV3 | Module2 => Ok(false),
            ListLinked | Set | ZsetText | Zset2 | Hash | HashMetadataPreGa | ValkeyHash2 => {
                Ok(run(raw, length(raw))?.1 == 0)
            }
            HashMetadata => {
                let (r, _) = run(raw, le_i64(raw))?;
                Ok(run(r, length(r))?.1 == 0)
            }
            HashZipmap | ListZiplist | SetIntset | ZsetZiplist | HashZiplist | HashListpack | ZsetListpack
            | SetListpack | HashListpackExPreGa => {
                let (_, s) = run(raw, rdb_str(raw))?;
                blob_is_empty(s, blob_kind(self.encoding))
            }
            HashListpackEx => {
                let (r, _) = run(raw, array::<8>(raw))?;
                let (_, s) = run(r, rdb_str(r))?;
                blob_is_empty(s, BlobKind::Listpack)
            }
            ListQuicklist | ListQuicklist2 => {
                let (mut r, n) = run(raw, length(raw))?;
                for _ in 0..n {
                    let kind = if self.encoding == ListQuicklist2 {
                        let (r2, container) = run(r, length(r))?;
                        r = r2;
                        if container == 1 { BlobKind::Plain } else { BlobKind::Listpack }
                    } else {
                        BlobKind::Ziplist
                    };
                    let (r2, s) = run(r, rdb_str(r))?;
                    r = r2;
                    if !blob_is_empty(s, kind)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    /// The string of a string value.
    pub fn as_string(&self) -> Result<RdbStr<'a>> {
        if self.encoding != Encoding::String {
            return Err(type_error("string", self.encoding));
        }
        Ok(run(self.raw, rdb_str(self.raw))?.1)
    }

    /// Elements of a list, or members of a set, in stored order.
    pub fn elements(&self) -> Result<Elements<'a>> {
        use Encoding::*;
        let (rest, mode) = match self.encoding {
            ListLinked | Set => {
                let (r, n) = run(self.raw, length(self.raw))?;
                (r, Mode::Strs(n))
            }
            ListZiplist | SetIntset | SetListpack => (self.raw, Mode::OneBlob(blob_kind(self.encoding))),
            ListQuicklist => {
                let (r, n) = run(self.raw, length(self.raw))?;
                (r, Mode::Quicklist(n))
            }
            ListQuicklist2 => {
                let (r, n) = run(self.raw, length(self.raw))?;
                (r, Mode::Quicklist2(n))
            }
            _ => return Err(type_error("list or set", self.encoding)),
        };
        Ok(Elements { rest, mode, cur: None, failed: false })
    }

    /// Members and scores of a sorted set, in stored order.
    pub fn zset_entries(&self) -> Result<ZsetEntries<'a>> {
        use Encoding::*;
        let inner = match self.encoding {
            ZsetText | Zset2 => {
                let (r, n) = run(self.raw, length(self.raw))?;
                ZInner::Plain { rest: r, left: n, binary: self.encoding == Zset2 }
            }
            ZsetZiplist | ZsetListpack => ZInner::Flat(Elements {
                rest: self.raw,
                mode: Mode::OneBlob(blob_kind(self.encoding)),
                cur: None,
                failed: false,
            }),
            _ => return Err(type_error("zset", self.encoding)),
        };
        Ok(ZsetEntries { inner })
    }

    /// Fields of a hash (with per-field expiries where stored), in stored order.
    pub fn hash_fields(&self) -> Result<HashFields<'a>> {
        use Encoding::*;
        let flat =
            |raw: &'a [u8], kind: BlobKind| Elements { rest: raw, mode: Mode::OneBlob(kind), cur: None, failed: false };
        let inner = match self.encoding {
            Hash => {
                let (r, n) = run(self.raw, length(self.raw))?;
                HInner::Plain { rest: r, left: n, layout: PlainHash::Pairs }
            }
            HashMetadata => {
                let (r, min) = run(self.raw, le_i64(self.raw))?;
                let (r, n) = run(r, length(r))?;
                HInner::Plain { rest: r, left: n, layout: PlainHash::RelativeTtlFirst(min) }
            }
            HashMetadataPreGa => {
                let (r, n) = run(self.raw, length(self.raw))?;
                HInner::Plain { rest: r, left: n, layout: PlainHash::AbsoluteTtlFirst }
            }
            ValkeyHash2 => {
                let (r, n) = run(self.raw, length(self.raw))?;
                HInner::Plain { rest: r, left: n, layout: PlainHash::ExpiryLast }
            }
            HashZipmap | HashZiplist | HashListpack => HInner::Pairs(flat(self.raw, blob_kind(self.encoding))),
            HashListpackEx => HInner::Triples(flat(run(self.raw, array::<8>(self.raw))?.0, BlobKind::Listpack)),
            HashListpackExPreGa => HInner::Triples(flat(self.raw, BlobKind::Listpack)),
            _ => return Err(type_error("hash", self.encoding)),
        };
        Ok(HashFields { inner })
    }

    /// The stream of a stream value.
    pub fn stream(&self) -> Result<StreamValue<'a>> {
        let version = match self.encoding {
            Encoding::StreamV1 => 1,
            Encoding::StreamV2 => 2,
            Encoding::StreamV3 => 3,
            _ => return Err(type_error("stream", self.encoding)),
        };
        StreamValue::parse(self.raw, version)
    }

    /// The module id and payload of a module value.
    pub fn module(&self) -> Result<(u64, &'a [u8])> {
        if self.encoding != Encoding::Module2 {
            return Err(type_error("module value", self.encoding));
        }
        split_module_value(self.raw).ok_or_else(|| Error::truncated("module id", 1, 0))
    }

    /// Decodes the whole value.
    pub fn to_owned_value(&self) -> Result<OwnedValue> {
        Ok(match self.logical_type() {
            LogicalType::String => OwnedValue::String(self.as_string()?.decode()?.into_owned()),
            LogicalType::List => {
                OwnedValue::List(self.elements()?.map(|r| r.map(Item::into_vec)).collect::<Result<_>>()?)
            }
            LogicalType::Set => {
                OwnedValue::Set(self.elements()?.map(|r| r.map(Item::into_vec)).collect::<Result<_>>()?)
            }
            LogicalType::ZSet => OwnedValue::ZSet(
                self.zset_entries()?.map(|r| r.map(|(m, s)| (m.into_vec(), s))).collect::<Result<_>>()?,
            ),
            LogicalType::Hash => OwnedValue::Hash(
                self.hash_fields()?
                    .map(|r| r.map(|f| (f.field.into_vec(), f.value.into_vec(), f.expire_ms)))
                    .collect::<Result<_>>()?,
            ),
            LogicalType::Stream => {
                let s = self.stream()?;
                let mut owned = s.to_owned_metadata()?;
                owned.entries = s.entries()?;
                OwnedValue::Stream(owned)
            }
            LogicalType::Module => {
                let (id, payload) = self.module()?;
                let (name, encver) = module_name(id);
                OwnedValue::Module { id, name, encver, payload: payload.to_vec() }
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobKind {
    Ziplist,
    Listpack,
    Intset,
    Zipmap,
    Plain,
}

/// Whether a collection blob has no element. An empty ziplist is 11 bytes and an empty listpack 7, so a larger
/// LZF-compressed blob is not empty and need not be decompressed.
fn blob_is_empty(s: RdbStr<'_>, kind: BlobKind) -> Result<bool> {
    let small = match kind {
        BlobKind::Plain => return Ok(false),
        BlobKind::Ziplist => 11,
        _ => 7,
    };
    if let RdbStr::Lzf { len, .. } = s
        && len > small
    {
        return Ok(false);
    }
    match BlobIter::from_str(s, kind)?.next() {
        None => Ok(true),
        Some(r) => r.map(|_| false),
    }
}

fn blob_kind(e: Encoding) -> BlobKind {
    use Encoding::*;
    match e {
        ListZiplist | ZsetZiplist | HashZiplist | ListQuicklist => BlobKind::Ziplist,
        SetIntset => BlobKind::Intset,
        HashZipmap => BlobKind::Zipmap,
        _ => BlobKind::Listpack,
    }
}

/// Iteration state inside one blob.
enum BlobIter<'a> {
    /// A ziplist or a listpack.
    Elems(crate::format::BlobElems<'a>),
    Intset(Intset<'a>, usize),
    Zipmap(crate::format::zipmap::ZipmapIter<'a>, Option<&'a [u8]>),
    Owned(std::vec::IntoIter<Item<'static>>),
    /// A decompressed ziplist, listpack or intset, walked lazily from `pos` (a byte offset, or the intset index).
    Decoded {
        bytes: Vec<u8>,
        kind: BlobKind,
        pos: usize,
        done: bool,
    },
    One(Option<Item<'a>>),
}

impl<'a> BlobIter<'a> {
    fn open(bytes: &'a [u8], kind: BlobKind) -> Result<BlobIter<'a>> {
        Ok(match kind {
            BlobKind::Ziplist => BlobIter::Elems(Ziplist::new(bytes)?.iter()),
            BlobKind::Listpack => BlobIter::Elems(Listpack::new(bytes)?.iter()),
            BlobKind::Intset => BlobIter::Intset(Intset::new(bytes)?, 0),
            BlobKind::Zipmap => BlobIter::Zipmap(Zipmap::new(bytes)?.iter(), None),
            BlobKind::Plain => BlobIter::One(Some(Item::Borrowed(bytes))),
        })
    }

    fn from_str(s: RdbStr<'a>, kind: BlobKind) -> Result<BlobIter<'a>> {
        match s {
            RdbStr::Raw(b) => BlobIter::open(b, kind),
            RdbStr::Int(i) if kind == BlobKind::Plain => Ok(BlobIter::One(Some(Item::Int(i)))),
            RdbStr::Int(_) => Err(Error::corrupt("blob", "stored as an integer", 0)),
            lzf => {
                let bytes = lzf.decode()?.into_owned();
                if kind == BlobKind::Plain {
                    return Ok(BlobIter::One(Some(Item::Owned(bytes))));
                }
                if kind == BlobKind::Zipmap {
                    let items: Vec<Item<'static>> =
                        BlobIter::open(&bytes, kind)?.map(|r| r.map(|i| i.to_static())).collect::<Result<_>>()?;
                    return Ok(BlobIter::Owned(items.into_iter()));
                }
                // A blob that fails to decode fails here, before any of its elements is returned; the elements
                // are then copied out one at a time.
                for r in BlobIter::open(&bytes, kind)? {
                    r?;
                }
                let pos = match kind {
                    BlobKind::Ziplist => crate::format::ziplist::HEADER_SIZE,
                    BlobKind::Listpack => crate::format::listpack::HEADER_SIZE,
                    _ => 0,
                };
                Ok(BlobIter::Decoded { bytes, kind, pos, done: false })
            }
        }
    }
}

impl<'a> Iterator for BlobIter<'a> {
    type Item = Result<Item<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            BlobIter::Elems(it) => it.next().map(|r| r.map(Item::from_elem)),
            BlobIter::Intset(set, i) => {
                let v = set.get(*i)?;
                *i += 1;
                Some(Ok(Item::Int(v)))
            }
            BlobIter::Zipmap(it, pending) => {
                if let Some(v) = pending.take() {
                    return Some(Ok(Item::Borrowed(v)));
                }
                match it.next()? {
                    Ok((f, v)) => {
                        *pending = Some(v);
                        Some(Ok(Item::Borrowed(f)))
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            BlobIter::Owned(it) => it.next().map(Ok),
            BlobIter::Decoded { bytes, kind, pos, done } => {
                if *done {
                    return None;
                }
                let next = match *kind {
                    BlobKind::Ziplist => Ziplist::new(bytes).map(|z| {
                        let mut it = z.iter_from(*pos);
                        let e = it.next();
                        *pos = it.position();
                        e
                    }),
                    BlobKind::Listpack => Listpack::new(bytes).map(|l| {
                        let mut it = l.iter_from(*pos);
                        let e = it.next();
                        *pos = it.position();
                        e
                    }),
                    _ => Intset::new(bytes).map(|set| {
                        let v = set.get(*pos);
                        *pos += 1;
                        v.map(|v| Ok(Elem::Int(v)))
                    }),
                };
                let item = match next {
                    Ok(Some(Ok(Elem::Bytes(b)))) => Item::Owned(b.to_vec()),
                    Ok(Some(Ok(Elem::Int(v)))) => Item::Int(v),
                    Ok(Some(Err(e))) | Err(e) => {
                        *done = true;
                        return Some(Err(e));
                    }
                    Ok(None) => {
                        *done = true;
                        return None;
                    }
                };
                Some(Ok(item))
            }
            BlobIter::One(v) => v.take().map(Ok),
        }
    }
}

enum Mode {
    /// `n` more plain STRs.
    Strs(u64),
    /// One STR holding a blob.
    OneBlob(BlobKind),
    /// `n` more quicklist nodes (ziplists).
    Quicklist(u64),
    /// `n` more quicklist2 nodes (container + STR).
    Quicklist2(u64),
    Done,
}

/// The elements of a list or set (or the flat elements of a blob-encoded zset/hash), in stored order.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Elements<'a> {
    rest: &'a [u8],
    mode: Mode,
    cur: Option<BlobIter<'a>>,
    failed: bool,
}

impl<'a> Elements<'a> {
    fn advance(&mut self) -> Result<Option<Item<'a>>> {
        loop {
            if let Some(cur) = self.cur.as_mut() {
                match cur.next() {
                    Some(r) => return r.map(Some),
                    None => self.cur = None,
                }
            }
            match self.mode {
                Mode::Done => return Ok(None),
                Mode::Strs(0) | Mode::Quicklist(0) | Mode::Quicklist2(0) => {
                    self.mode = Mode::Done;
                    return Ok(None);
                }
                Mode::Strs(n) => {
                    let (r, s) = run(self.rest, rdb_str(self.rest))?;
                    self.rest = r;
                    self.mode = Mode::Strs(n - 1);
                    return Item::from_str(s).map(Some);
                }
                Mode::OneBlob(kind) => {
                    let (r, s) = run(self.rest, rdb_str(self.rest))?;
                    self.rest = r;
                    self.mode = Mode::Done;
                    self.cur = Some(BlobIter::from_str(s, kind)?);
                }
                Mode::Quicklist(n) => {
                    let (r, s) = run(self.rest, rdb_str(self.rest))?;
                    self.rest = r;
                    self.mode = Mode::Quicklist(n - 1);
                    self.cur = Some(BlobIter::from_str(s, BlobKind::Ziplist)?);
                }
                Mode::Quicklist2(n) => {
                    let (r, container) = run(self.rest, length(self.rest))?;
                    let (r, s) = run(r, rdb_str(r))?;
                    self.rest = r;
                    self.mode = Mode::Quicklist2(n - 1);
                    let kind = if container == 1 { BlobKind::Plain } else { BlobKind::Listpack };
                    self.cur = Some(BlobIter::from_str(s, kind)?);
                }
            }
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Item<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.advance().transpose();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

enum ZInner<'a> {
    Plain { rest: &'a [u8], left: u64, binary: bool },
    Flat(Elements<'a>),
}

/// Members and scores of a sorted set.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct ZsetEntries<'a> {
    inner: ZInner<'a>,
}

/// A ziplist/listpack score as the servers read it (the number at the start of the text; see
/// [`crate::format::double::listpack_score`]).
fn score_of(item: &Item<'_>) -> Result<f64> {
    match item {
        Item::Int(i) => Ok(*i as f64),
        other => Ok(crate::format::double::listpack_score(&other.as_bytes())),
    }
}

fn pair_from<'a>(it: &mut Elements<'a>, what: &'static str) -> Option<Result<(Item<'a>, Item<'a>)>> {
    let a = match it.next()? {
        Ok(a) => a,
        Err(e) => return Some(Err(e)),
    };
    match it.next() {
        Some(Ok(b)) => Some(Ok((a, b))),
        Some(Err(e)) => Some(Err(e)),
        None => Some(Err(Error::corrupt(what, "odd number of elements", 0))),
    }
}

impl<'a> Iterator for ZsetEntries<'a> {
    type Item = Result<(Item<'a>, f64)>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            ZInner::Flat(it) => {
                let r = pair_from(it, "zset")?;
                Some(r.and_then(|(m, s)| Ok((m, score_of(&s)?))))
            }
            ZInner::Plain { rest, left, binary } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                let r = (|| {
                    let (r, m) = run(rest, rdb_str(rest))?;
                    let (r, score) = if *binary {
                        let (r, b) = run(r, array::<8>(r))?;
                        (r, f64::from_le_bytes(b))
                    } else {
                        run(r, old_double(r))?
                    };
                    *rest = r;
                    Ok((Item::from_str(m)?, score))
                })();
                if r.is_err() {
                    *left = 0;
                }
                Some(r)
            }
        }
    }
}

#[derive(Clone, Copy)]
enum PlainHash {
    Pairs,
    RelativeTtlFirst(i64),
    AbsoluteTtlFirst,
    ExpiryLast,
}

enum HInner<'a> {
    Plain { rest: &'a [u8], left: u64, layout: PlainHash },
    Pairs(Elements<'a>),
    Triples(Elements<'a>),
}

/// Fields of a hash.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct HashFields<'a> {
    inner: HInner<'a>,
}

impl<'a> Iterator for HashFields<'a> {
    type Item = Result<HashField<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            HInner::Pairs(it) => {
                Some(pair_from(it, "hash")?.map(|(field, value)| HashField { field, value, expire_ms: None }))
            }
            HInner::Triples(it) => {
                let r = pair_from(it, "hash")?;
                let ttl = match it.next() {
                    Some(Ok(t)) => t,
                    Some(Err(e)) => return Some(Err(e)),
                    None => return Some(Err(Error::corrupt("hash", "field without a TTL element", 0))),
                };
                Some(r.and_then(|(field, value)| {
                    let t = ttl.as_i64().ok_or_else(|| Error::corrupt("hash", "field TTL is not an integer", 0))?;
                    Ok(HashField { field, value, expire_ms: (t != 0).then_some(t) })
                }))
            }
            HInner::Plain { rest, left, layout } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                let layout = *layout;
                let r = (|| {
                    let mut r = *rest;
                    let mut expire = None;
                    match layout {
                        PlainHash::RelativeTtlFirst(min) => {
                            let (r2, ttl) = run(r, length(r))?;
                            // Redis: expireAt = ttl + minExpire - 1, and an expireAt of 0 (ttl 1 with minExpire 0)
                            // means "no TTL" too, exactly as a ttl of 0 does (rdb.c, RDB_TYPE_HASH_METADATA).
                            expire =
                                (ttl != 0).then(|| (ttl as i64).wrapping_add(min).wrapping_sub(1)).filter(|&e| e != 0);
                            r = r2;
                        }
                        PlainHash::AbsoluteTtlFirst => {
                            let (r2, abs) = run(r, length(r))?;
                            expire = (abs != 0).then_some(abs as i64);
                            r = r2;
                        }
                        _ => {}
                    }
                    let (r2, f) = run(r, rdb_str(r))?;
                    let (mut r2, v) = run(r2, rdb_str(r2))?;
                    if let PlainHash::ExpiryLast = layout {
                        let (r3, e) = run(r2, le_i64(r2))?;
                        expire = (e != -1).then_some(e);
                        r2 = r3;
                    }
                    *rest = r2;
                    Ok(HashField { field: Item::from_str(f)?, value: Item::from_str(v)?, expire_ms: expire })
                })();
                if r.is_err() {
                    *left = 0;
                }
                Some(r)
            }
        }
    }
}

impl StreamValue<'_> {
    /// The stream's metadata and consumer groups as owned data; `entries` is left empty (fill it from
    /// [`StreamValue::entries`], or stream them from the nodes).
    pub fn to_owned_metadata(&self) -> Result<OwnedStream> {
        let mut groups = Vec::new();
        for g in &self.groups {
            let mut consumers = Vec::new();
            for c in &g.consumers {
                consumers.push(OwnedConsumer {
                    name: c.name.decode()?.into_owned(),
                    seen_time: c.seen_time,
                    active_time: c.active_time,
                    pel: c.pel.clone(),
                });
            }
            groups.push(OwnedGroup {
                name: g.name.decode()?.into_owned(),
                last_id: g.last_id,
                entries_read: g.entries_read,
                pel: g.pel.clone(),
                consumers,
            });
        }
        Ok(OwnedStream {
            entries: Vec::new(),
            length: self.length,
            last_id: self.last_id,
            first_id: self.first_id,
            max_deleted_id: self.max_deleted_id,
            entries_added: self.entries_added,
            groups,
        })
    }
}
