//! Value encoder: turns an [`OwnedValue`] into the value body Redis or Valkey would write for a target file
//! version, choosing the encoding the server would choose.
//!
//! [`Encoder::encode`] picks the encoding from the value's shape, the target's feature level and the
//! [`Thresholds`] (Redis's defaults unless configured), appends the body (no type byte, no key) and returns the
//! [`Encoding`] whose [`Encoding::type_byte`] the caller writes before the key. The rules follow Redis's own code:
//!
//! * **strings**: `rdbSaveRawString` (small canonical integers as INT, LZF for strings over 20 bytes when it
//!   saves at least 4 bytes).
//! * **lists**: quicklists of listpacks (RDB ≥ 10) or ziplists (RDB 7–9) packed the way repeated `RPUSH`es
//!   pack them (`list-max-listpack-size`, default −2 = 8 KiB per node, with Redis's own size estimate);
//!   from RDB 11 (Redis 7.2) an element larger than the node limit gets its own PLAIN node. RDB 2–6: one
//!   ziplist when small, else a linked list.
//! * **sets**: intset for up to 512 canonical integers, listpack (RDB ≥ 11) for up to 128 short members, else a
//!   hashtable.
//! * **sorted sets**: listpack (RDB ≥ 10) or ziplist (RDB 2–9) for up to 128 short members, ordered by score then
//!   member, scores as Redis's `zzlInsertAt` writes them (see [`Encoder`]); else a skiplist, written from the
//!   highest score to the lowest (binary doubles from RDB 8, text before).
//! * **hashes**: listpack / ziplist / zipmap when small, else a hashtable; hashes with field TTLs become type 25
//!   (small) or 24 in Redis 7.4+ files and Valkey's type 22 in `VALKEY080` files.
//! * **streams**: nodes rebuilt as `XADD` builds them (`stream-node-max-bytes` / `-entries`), metadata v1/v2/v3
//!   by target; deleted-entry tombstones are not reproduced.
//! * **modules**: the payload passes through untouched (RDB ≥ 8).
//!
//! A value the target cannot hold at all is an [`Unrepresentable`] error naming the feature and the first
//! version that has it; with [`EncodeOptions::lossy`], field TTLs are dropped instead and reported in
//! [`Encoded::dropped`].
//!
//! Members are written in the order given where the encoding keeps an order the server chose (hashtables,
//! set and hash listpacks), so re-encoding a decoded value reproduces the server's bytes; encodings with a
//! defined order (intsets, sorted-set blobs and skiplists, stream groups, consumers and PELs in rax order) are
//! sorted. Duplicate members or fields, which no server loads, are written as given (intsets drop them).
//! Compact encodings are only chosen while the blob stays under 1 GiB, so no blob limit is ever exceeded.

use crate::format::double::{format_g17, format_human_double, format_old_double};
use crate::format::length::encode_length;
use crate::format::lzf::Compressor;
use crate::format::string::{Compression, encode_raw_str, encode_str};
use crate::format::{Elem, intset::Intset, listpack::Listpack, parse_canonical_i64, ziplist::Ziplist, zipmap::Zipmap};
use crate::read::stream_value::{StreamEntry, StreamId};
use crate::read::value::{OwnedConsumer, OwnedGroup, OwnedStream};
use crate::read::{Encoding, Feature, Flavor, Header, OwnedValue};

/// Hash fields as [`OwnedValue::Hash`] holds them: field, value, absolute expiry in ms.
type Field = (Vec<u8>, Vec<u8>, Option<i64>);

use crate::read::EXPIRE_MAX as FIELD_EXPIRE_MAX;

/// Compact blobs (listpack, ziplist, intset, zipmap) are only chosen while their contents stay under Redis's
/// listpack safety size (1 GiB); the blob formats cannot exceed 4 GiB at all.
const BLOB_SAFETY_LIMIT: usize = 1 << 30;

/// Largest single element a listpack or ziplist can hold (32-bit lengths, with room for headers).
const MAX_BLOB_ELEMENT: usize = u32::MAX as usize - 64;

/// Quicklist node size limits for negative `list-max-listpack-size` values −1 … −5.
const QUICKLIST_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

/// Quicklist size limit that applies when nodes are limited by element count (`SIZE_SAFETY_LIMIT`).
const QUICKLIST_SAFETY_LIMIT: usize = 8192;

/// Redis 7.0's fixed PLAIN-node threshold (`packed_threshold`, 1 GiB).
const PACKED_THRESHOLD_7_0: usize = 1 << 30;

/// Redis's upper bound for `stream-node-max-bytes` (`STREAM_LISTPACK_MAX_SIZE`, 1 GiB).
const STREAM_LISTPACK_MAX_SIZE: usize = 1 << 30;

/// Encoding thresholds: the `*-max-listpack-*` style settings that decide when Redis leaves a compact
/// encoding. [`Default`] gives Redis's (and Valkey's) defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Thresholds {
    /// `hash-max-listpack-entries` (also the ziplist/zipmap limit for older targets): 512.
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value`: longest field or value (bytes) of a compact hash: 64.
    pub hash_max_listpack_value: usize,
    /// `zset-max-listpack-entries`: 128.
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value`: longest member (bytes) of a compact sorted set: 64.
    pub zset_max_listpack_value: usize,
    /// `set-max-intset-entries`: 512.
    pub set_max_intset_entries: usize,
    /// `set-max-listpack-entries` (RDB ≥ 11): 128.
    pub set_max_listpack_entries: usize,
    /// `set-max-listpack-value` (RDB ≥ 11): 64.
    pub set_max_listpack_value: usize,
    /// `list-max-listpack-size`: −1 … −5 limit each quicklist node to 4, 8, 16, 32 or 64 KiB; a positive value
    /// limits the number of elements per node (nodes then also stay within 8 KiB). Default −2.
    pub list_max_listpack_size: i64,
    /// `list-max-ziplist-entries` for RDB 2–6 targets (before quicklists): 512.
    pub list_max_ziplist_entries: usize,
    /// `list-max-ziplist-value` for RDB 2–6 targets: 64.
    pub list_max_ziplist_value: usize,
    /// `stream-node-max-bytes`: 4096 (0 = no limit, i.e. 1 GiB).
    pub stream_node_max_bytes: usize,
    /// `stream-node-max-entries`: 100 (0 = no limit).
    pub stream_node_max_entries: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            list_max_listpack_size: -2,
            list_max_ziplist_entries: 512,
            list_max_ziplist_value: 64,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
        }
    }
}

/// Options of an [`Encoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodeOptions {
    /// Encoding thresholds.
    pub thresholds: Thresholds,
    /// LZF compression of long strings and blobs (Redis `rdbcompression`, on by default).
    pub compression: Compression,
    /// Drop what the target cannot hold (field TTLs) instead of failing; what was dropped is reported in
    /// [`Encoded::dropped`].
    pub lossy: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions { thresholds: Thresholds::default(), compression: Compression::Lzf, lossy: false }
    }
}

/// Something a target file version cannot hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unrepresentable {
    /// Hash field TTLs: only Redis RDB 12 (7.4+) and Valkey `VALKEY080` (9.0+) files have them.
    FieldTtls,
    /// A field expiry the target's layout cannot store: Redis keeps 1 … 2^48 − 1 ms (an expiry of 0 means "no
    /// TTL" in every Redis layout, so a Valkey field that expired at 0 has no Redis form); Valkey keeps any
    /// value ≥ 0 (−1 means "no TTL").
    FieldTtlOutOfRange {
        /// The expiry, ms since the epoch.
        expire_ms: i64,
    },
    /// A key expiry after 2038-01-19: RDB 1 and 2 store expiries as 32-bit seconds.
    KeyExpiryOutOfRange {
        /// The expiry, ms since the epoch.
        expire_ms: i64,
    },
    /// Streams: RDB 9 (Redis 5.0) and later.
    Stream,
    /// Module values: RDB 8 (Redis 4.0) and later.
    Module,
    /// A sorted-set score is NaN, which no Redis or Valkey version loads.
    NanScore,
    /// An element too large for the blob format it must go into (a stream entry or a pre-7.0 quicklist
    /// element over 4 GiB).
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes.
        len: u64,
    },
    /// The target header is not a version this crate writes (REDIS0001–REDIS0012 and VALKEY080).
    UnsupportedTarget(Header),
    /// Something only later versions hold (function libraries before RDB 10, module AUX data before RDB 9, …).
    Lacks(Feature),
    /// A module value or module AUX data of a module the target server does not have.
    MissingModule(String),
    /// Stream metadata an older stream layout does not store (and a server loading it would derive otherwise).
    StreamMetadata {
        /// What is lost.
        what: &'static str,
        /// The first RDB version that stores it.
        needs: u32,
    },
}

impl Unrepresentable {
    /// The version feature the target lacks, when that is the reason.
    pub fn feature(&self) -> Option<Feature> {
        match self {
            Unrepresentable::FieldTtls => Some(Feature::FieldTtls),
            Unrepresentable::Stream => Some(Feature::Streams),
            Unrepresentable::Module => Some(Feature::ModuleValues),
            Unrepresentable::KeyExpiryOutOfRange { .. } => Some(Feature::MillisecondExpiry),
            Unrepresentable::Lacks(f) => Some(*f),
            _ => None,
        }
    }
}

impl std::fmt::Display for Unrepresentable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The version table is `Feature`'s: one place says which version holds what.
            Unrepresentable::FieldTtls => write!(f, "{}", Feature::FieldTtls),
            Unrepresentable::FieldTtlOutOfRange { expire_ms } => write!(
                f,
                "hash field expiry {expire_ms} ms cannot be stored: REDIS0012 (Redis 7.4) holds 1..=2^48-1 \
                 (0 means no TTL there), VALKEY080 (Valkey 9.0) holds any expiry >= 0"
            ),
            Unrepresentable::KeyExpiryOutOfRange { expire_ms } => write!(
                f,
                "key expiry {expire_ms} ms is outside the 32-bit seconds of RDB 1-2 (millisecond expiries need RDB 3)"
            ),
            Unrepresentable::Stream => write!(f, "{}", Feature::Streams),
            Unrepresentable::Module => write!(f, "{}", Feature::ModuleValues),
            Unrepresentable::NanScore => {
                f.write_str("a sorted-set score is NaN, which no RDB version can hold (Redis refuses to load it)")
            }
            Unrepresentable::TooLarge { what, len } => {
                write!(f, "{what} of {len} bytes is too large for a listpack or ziplist (4 GiB limit)")
            }
            Unrepresentable::UnsupportedTarget(h) => {
                write!(f, "{} is not a target this encoder writes (REDIS0001 to REDIS0012 and VALKEY080)", h.magic())
            }
            Unrepresentable::Lacks(feature) => write!(f, "{feature}"),
            Unrepresentable::StreamMetadata { what, needs } => write!(f, "stream {what} (need RDB {needs}+)"),
            Unrepresentable::MissingModule(name) => write!(f, "the target server lacks module {name}"),
        }
    }
}

impl std::error::Error for Unrepresentable {}

/// The outcome of [`Encoder::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Encoded {
    /// The encoding written; the caller writes its [`Encoding::type_byte`].
    pub encoding: Encoding,
    /// What a lossy encoding dropped (always empty without [`EncodeOptions::lossy`]).
    pub dropped: Vec<Unrepresentable>,
}

/// What stream layout `version` (1: RDB 9, 2: RDB 10, 3: RDB 11+) cannot store of `s`, where a server loading it
/// would derive something else: consumer active times before layout 3; first ID, greatest deleted ID, entries
/// added and group entries-read before layout 2.
pub fn stream_losses(s: &OwnedStream, version: u32) -> Vec<Unrepresentable> {
    let mut lost = Vec::new();
    if version < 3
        && s.groups.iter().flat_map(|g| &g.consumers).any(|c| c.active_time.is_some_and(|a| a != c.seen_time))
    {
        lost.push(Unrepresentable::StreamMetadata { what: "consumer active times", needs: 11 });
    }
    if version < 2 {
        let len = s.entries.len() as u64;
        let first = s.entries.first().map(|e| e.id).unwrap_or_default();
        if s.first_id.is_some_and(|f| f != first)
            || s.max_deleted_id.is_some_and(|m| m != StreamId::default())
            || s.entries_added.is_some_and(|n| n != len)
        {
            lost.push(Unrepresentable::StreamMetadata {
                what: "first ID, greatest deleted ID or entries added",
                needs: 10,
            });
        }
        let derived =
            |id| crate::read::stream_value::estimate_entries_read(len, s.last_id, first, StreamId::default(), len, id);
        if s.groups.iter().any(|g| g.entries_read.is_some_and(|r| r != derived(g.last_id))) {
            lost.push(Unrepresentable::StreamMetadata { what: "consumer-group entries read", needs: 10 });
        }
    }
    lost
}

/// Encodes values for a target file version. Keeps an LZF compressor and scratch buffers across calls.
///
/// Sorted-set scores in listpacks and ziplists are written as the server writes them: for RDB ≤ 10 targets the
/// text of C's `%.17g` (Redis ≤ 7.0 `d2string`; integral values come out as integers and are stored in integer
/// form), for RDB ≥ 11 an integral score within ±2^62 as a listpack integer and anything else as the shortest
/// round-trip text (Redis 7.2+ `double2ll` / `d2string`). One deliberate difference: −0.0 is written as the text
/// `-0` (Redis 7.0+ would store the integer 0 and lose the sign). The old text form of skiplist scores
/// (RDB < 8) writes −0.0 as `-0` too (Redis's integer shortcut wrote `0`), so every score of every encoding reads
/// back bit for bit.
#[derive(Debug)]
pub struct Encoder {
    lzf: Compressor,
    opts: EncodeOptions,
    /// Holds one blob (listpack, ziplist, …) before it is written as an STR.
    blob: Vec<u8>,
    /// Element-size probe.
    probe: Vec<u8>,
    /// Quicklist nodes / stream nodes before their count is known.
    body: Vec<u8>,
    /// Score texts.
    text: Vec<u8>,
}

/// The value types' feature levels of one target.
#[derive(Debug, Clone, Copy)]
struct Target {
    header: Header,
    level: u32,
}

impl Encoder {
    /// An encoder with `opts`.
    pub fn new(opts: EncodeOptions) -> Self {
        Encoder {
            lzf: Compressor::new(),
            opts,
            blob: Vec::new(),
            probe: Vec::new(),
            body: Vec::new(),
            text: Vec::new(),
        }
    }

    /// The options this encoder uses.
    pub fn options(&self) -> &EncodeOptions {
        &self.opts
    }

    /// Appends the value body of `v` (no type byte, no key) as Redis/Valkey would write it in a file with header
    /// `target`, and returns the encoding chosen (whose [`Encoding::type_byte`] the caller writes) and what a lossy
    /// encoding dropped. On error nothing is appended.
    pub fn encode(&mut self, v: &OwnedValue, target: Header, out: &mut Vec<u8>) -> Result<Encoded, Unrepresentable> {
        let supported = match target.flavor {
            Flavor::Redis => (1..=12).contains(&target.version),
            Flavor::Valkey => target.version == 80,
        };
        if !supported {
            return Err(Unrepresentable::UnsupportedTarget(target));
        }
        let t = Target { header: target, level: target.redis_level() };
        let start = out.len();
        let mut dropped = Vec::new();
        let res = match v {
            OwnedValue::String(s) => {
                encode_str(s, self.opts.compression, &mut self.lzf, out);
                Ok(Encoding::String)
            }
            OwnedValue::List(items) => self.list(items, t, out),
            OwnedValue::Set(members) => Ok(self.set(members, t, out)),
            OwnedValue::ZSet(entries) => self.zset(entries, t, out),
            OwnedValue::Hash(fields) => self.hash(fields, t, out, &mut dropped),
            OwnedValue::Stream(s) => self.stream(s, t, out, &mut dropped),
            OwnedValue::Module { id, payload, .. } => {
                if !t.header.supports(Feature::ModuleValues) {
                    Err(Unrepresentable::Module)
                } else {
                    encode_length(*id, out);
                    out.extend_from_slice(payload);
                    Ok(Encoding::Module2)
                }
            }
        };
        match res {
            Ok(encoding) if encoding.allowed_in(target) => Ok(Encoded { encoding, dropped }),
            Ok(_) => {
                // Every branch above only picks encodings of its target's level; this is a safety net.
                out.truncate(start);
                Err(Unrepresentable::UnsupportedTarget(target))
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Writes `self.blob` as an STR (integer/LZF rules of `rdbSaveRawString`).
    fn blob_str(&mut self, out: &mut Vec<u8>) {
        encode_str(&self.blob, self.opts.compression, &mut self.lzf, out);
    }

    fn str(&mut self, s: &[u8], out: &mut Vec<u8>) {
        encode_str(s, self.opts.compression, &mut self.lzf, out);
    }

    /// Size of one listpack element (encoding + data + backlen).
    fn lp_elem_size(&mut self, e: Elem<'_>) -> usize {
        self.probe.clear();
        Listpack::encode_elems(std::iter::once(e), &mut self.probe);
        self.probe.len() - 7
    }

    /// Size of one ziplist entry's encoding + data (without its prevlen).
    fn zl_entry_size(&mut self, item: &[u8]) -> usize {
        self.probe.clear();
        Ziplist::encode(std::iter::once(item), &mut self.probe);
        self.probe.len() - 12
    }

    // ---------------------------------------------------------------------------------------------------------
    // Lists

    fn list(&mut self, items: &[Vec<u8>], t: Target, out: &mut Vec<u8>) -> Result<Encoding, Unrepresentable> {
        let th = self.opts.thresholds;
        if t.level >= 10 {
            self.quicklist2(items, t.level, out);
            Ok(Encoding::ListQuicklist2)
        } else if t.level >= 7 {
            self.quicklist_ziplist(items, out)?;
            Ok(Encoding::ListQuicklist)
        } else if t.level >= 2
            && items.len() <= th.list_max_ziplist_entries
            && items.iter().all(|e| e.len() <= th.list_max_ziplist_value)
            && blob_fits(items.iter().map(Vec::len))
        {
            self.blob.clear();
            Ziplist::encode(items.iter().map(Vec::as_slice), &mut self.blob);
            self.blob_str(out);
            Ok(Encoding::ListZiplist)
        } else {
            encode_length(items.len() as u64, out);
            for e in items {
                self.str(e, out);
            }
            Ok(Encoding::ListLinked)
        }
    }

    /// Quicklist of listpacks (type 18), packed as `quicklistPushTail` packs them.
    fn quicklist2(&mut self, items: &[Vec<u8>], level: u32, out: &mut Vec<u8>) {
        let (size_limit, count_limit) = node_limits(self.opts.thresholds.list_max_listpack_size);
        let is_large = |sz: usize| -> bool {
            if level < 11 {
                // Redis 7.0: a fixed 1 GiB threshold.
                sz >= PACKED_THRESHOLD_7_0
            } else {
                match size_limit {
                    Some(limit) => sz > limit,
                    None => sz > QUICKLIST_SAFETY_LIMIT,
                }
            }
        };
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let mut nodes = 0u64;
        // The open PACKED node: first item index, item count, listpack bytes.
        let mut node: Option<(usize, usize, usize)> = None;
        for (i, item) in items.iter().enumerate() {
            let sz = item.len();
            if is_large(sz) {
                if let Some((first, count, _)) = node.take() {
                    self.packed_node(&items[first..first + count], &mut body);
                    nodes += 1;
                }
                encode_length(1, &mut body);
                self.str(item, &mut body);
                nodes += 1;
                continue;
            }
            let elem = self.lp_elem_size(Elem::Bytes(item));
            if let Some((first, count, bytes)) = node {
                // `_quicklistNodeAllowInsert`: the element's raw length plus an 8-byte overhead estimate.
                let new_sz = bytes + sz + 8;
                let allowed = match size_limit {
                    Some(limit) => new_sz <= limit,
                    None => new_sz <= QUICKLIST_SAFETY_LIMIT && count < count_limit,
                };
                if allowed {
                    node = Some((first, count + 1, bytes + elem));
                    continue;
                }
                self.packed_node(&items[first..first + count], &mut body);
                nodes += 1;
            }
            node = Some((i, 1, 7 + elem));
        }
        if let Some((first, count, _)) = node {
            self.packed_node(&items[first..first + count], &mut body);
            nodes += 1;
        }
        encode_length(nodes, out);
        out.extend_from_slice(&body);
        self.body = body;
    }

    fn packed_node(&mut self, items: &[Vec<u8>], body: &mut Vec<u8>) {
        encode_length(2, body);
        self.blob.clear();
        Listpack::encode(items.iter().map(Vec::as_slice), &mut self.blob);
        self.blob_str(body);
    }

    /// Quicklist of ziplists (type 14), packed as Redis 3.2–6.2 `quicklistPushTail` packs them.
    fn quicklist_ziplist(&mut self, items: &[Vec<u8>], out: &mut Vec<u8>) -> Result<(), Unrepresentable> {
        let (size_limit, count_limit) = node_limits(self.opts.thresholds.list_max_listpack_size);
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let mut nodes = 0u64;
        // The open node: first item index, item count, ziplist bytes, size of its last entry.
        let mut node: Option<(usize, usize, usize, usize)> = None;
        let mut res = Ok(());
        for (i, item) in items.iter().enumerate() {
            let sz = item.len();
            if sz > MAX_BLOB_ELEMENT {
                res = Err(Unrepresentable::TooLarge { what: "list element", len: sz as u64 });
                break;
            }
            let data = self.zl_entry_size(item);
            if let Some((first, count, bytes, last)) = node {
                let overhead = if sz < 254 { 1 } else { 5 }
                    + if sz < 64 {
                        1
                    } else if sz < 16384 {
                        2
                    } else {
                        5
                    };
                let new_sz = bytes + sz + overhead;
                let allowed = match size_limit {
                    Some(limit) => new_sz <= limit,
                    None => new_sz <= QUICKLIST_SAFETY_LIMIT && count < count_limit,
                };
                if allowed {
                    let entry = prevlen_size(last) + data;
                    node = Some((first, count + 1, bytes + entry, entry));
                    continue;
                }
                self.ziplist_node(&items[first..first + count], &mut body);
                nodes += 1;
            }
            node = Some((i, 1, 11 + 1 + data, 1 + data));
        }
        if res.is_ok()
            && let Some((first, count, _, _)) = node
        {
            self.ziplist_node(&items[first..first + count], &mut body);
            nodes += 1;
        }
        if res.is_ok() {
            encode_length(nodes, out);
            out.extend_from_slice(&body);
        }
        self.body = body;
        res
    }

    fn ziplist_node(&mut self, items: &[Vec<u8>], body: &mut Vec<u8>) {
        self.blob.clear();
        Ziplist::encode(items.iter().map(Vec::as_slice), &mut self.blob);
        self.blob_str(body);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Sets

    fn set(&mut self, members: &[Vec<u8>], t: Target, out: &mut Vec<u8>) -> Encoding {
        let th = self.opts.thresholds;
        let n = members.len();
        if t.level >= 2 && n > 0 && n <= th.set_max_intset_entries {
            let ints: Option<Vec<i64>> = members.iter().map(|m| parse_canonical_i64(m)).collect();
            if let Some(mut ints) = ints
                && u32::try_from(ints.len()).is_ok()
            {
                ints.sort_unstable();
                ints.dedup();
                self.blob.clear();
                Intset::encode(&ints, &mut self.blob);
                self.blob_str(out);
                return Encoding::SetIntset;
            }
        }
        if t.level >= 11
            && n <= th.set_max_listpack_entries
            && members.iter().all(|m| m.len() <= th.set_max_listpack_value)
            && blob_fits(members.iter().map(Vec::len))
        {
            self.blob.clear();
            Listpack::encode(members.iter().map(Vec::as_slice), &mut self.blob);
            self.blob_str(out);
            return Encoding::SetListpack;
        }
        encode_length(n as u64, out);
        for m in members {
            self.str(m, out);
        }
        Encoding::Set
    }

    // ---------------------------------------------------------------------------------------------------------
    // Sorted sets

    fn zset(&mut self, entries: &[(Vec<u8>, f64)], t: Target, out: &mut Vec<u8>) -> Result<Encoding, Unrepresentable> {
        if entries.iter().any(|(_, s)| s.is_nan()) {
            return Err(Unrepresentable::NanScore);
        }
        let th = self.opts.thresholds;
        // Skiplist order: score, then member bytes (NaN excluded above, so the comparison is total).
        let mut sorted: Vec<&(Vec<u8>, f64)> = entries.iter().collect();
        sorted.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
        let small = entries.len() <= th.zset_max_listpack_entries
            && entries.iter().all(|(m, _)| m.len() <= th.zset_max_listpack_value)
            && blob_fits(entries.iter().map(|(m, _)| m.len() + 24));
        if small && t.level >= 10 {
            // Score texts first (the listpack borrows them).
            let mut texts = std::mem::take(&mut self.text);
            texts.clear();
            let mut spans = Vec::with_capacity(sorted.len());
            for (_, score) in &sorted {
                let s = *score;
                if t.level >= 11 && s != 0.0 && double2ll(s).is_some() {
                    spans.push(None);
                } else {
                    let from = texts.len();
                    if t.level >= 11 {
                        format_human_double(s, &mut texts);
                    } else {
                        format_g17(s, &mut texts);
                    }
                    spans.push(Some((from, texts.len())));
                }
            }
            self.blob.clear();
            // Text that is canonical integer text ends up in integer form, as `lpAppend` stores it.
            let elems = sorted.iter().zip(&spans).flat_map(|((m, s), span)| {
                let score = match span {
                    Some((a, b)) => Elem::Bytes(&texts[*a..*b]),
                    None => Elem::Int(double2ll(*s).unwrap_or(0)),
                };
                [Elem::Bytes(m), score]
            });
            Listpack::encode_elems(elems, &mut self.blob);
            self.text = texts;
            self.blob_str(out);
            return Ok(Encoding::ZsetListpack);
        }
        if small && t.level >= 2 {
            let mut texts = std::mem::take(&mut self.text);
            texts.clear();
            let mut ends = Vec::with_capacity(sorted.len());
            for (_, score) in &sorted {
                format_g17(*score, &mut texts);
                ends.push(texts.len());
            }
            let mut from = 0;
            let mut items: Vec<&[u8]> = Vec::with_capacity(sorted.len() * 2);
            for ((m, _), end) in sorted.iter().zip(&ends) {
                items.push(m);
                items.push(&texts[from..*end]);
                from = *end;
            }
            self.blob.clear();
            Ziplist::encode(items, &mut self.blob);
            self.text = texts;
            self.blob_str(out);
            return Ok(Encoding::ZsetZiplist);
        }
        encode_length(sorted.len() as u64, out);
        for (m, score) in sorted.iter().rev() {
            self.str(m, out);
            if t.level >= 8 {
                out.extend_from_slice(&score.to_le_bytes());
            } else {
                format_old_double(*score, out);
            }
        }
        Ok(if t.level >= 8 { Encoding::Zset2 } else { Encoding::ZsetText })
    }

    // ---------------------------------------------------------------------------------------------------------
    // Hashes

    fn hash(
        &mut self,
        fields: &[Field],
        t: Target,
        out: &mut Vec<u8>,
        dropped: &mut Vec<Unrepresentable>,
    ) -> Result<Encoding, Unrepresentable> {
        let lossy = self.opts.lossy;
        let ttl_target = t.header.supports(Feature::FieldTtls).then_some(t.header.flavor);
        let has_ttl = fields.iter().any(|f| f.2.is_some());
        if !has_ttl {
            return Ok(self.plain_hash(fields, t, out));
        }
        let Some(flavor) = ttl_target else {
            if !lossy {
                return Err(Unrepresentable::FieldTtls);
            }
            dropped.push(Unrepresentable::FieldTtls);
            return Ok(self.plain_hash(fields, t, out));
        };
        // Which expiries the target layout can hold.
        let storable = |e: i64| match flavor {
            // 0 is "no TTL" to Redis (rdb.c: an expireAt of 0 is none in both layouts).
            Flavor::Redis => (1..=FIELD_EXPIRE_MAX).contains(&e),
            Flavor::Valkey => e >= 0,
        };
        let mut cleaned: Option<Vec<Field>> = None;
        if let Some(bad) = fields.iter().filter_map(|f| f.2).find(|&e| !storable(e)) {
            if !lossy {
                return Err(Unrepresentable::FieldTtlOutOfRange { expire_ms: bad });
            }
            dropped.push(Unrepresentable::FieldTtlOutOfRange { expire_ms: bad });
            cleaned = Some(fields.iter().map(|(f, v, e)| (f.clone(), v.clone(), e.filter(|&e| storable(e)))).collect());
        }
        let fields = cleaned.as_deref().unwrap_or(fields);
        if !fields.iter().any(|f| f.2.is_some()) {
            return Ok(self.plain_hash(fields, t, out));
        }
        match flavor {
            Flavor::Valkey => {
                // HASH_2: field, value, expiry (−1 = none).
                encode_length(fields.len() as u64, out);
                for (f, v, e) in fields {
                    self.str(f, out);
                    self.str(v, out);
                    out.extend_from_slice(&e.unwrap_or(-1).to_le_bytes());
                }
                Ok(Encoding::ValkeyHash2)
            }
            Flavor::Redis => {
                let min = fields.iter().filter_map(|f| f.2).min().unwrap_or(0);
                out.extend_from_slice(&min.to_le_bytes());
                // Expiries are 1 ..= 2^48 - 1 here (0, "no TTL" in both layouts, was refused above).
                if self.hash_is_small(fields) {
                    // Fields with a TTL first, by ascending TTL (stable), then the others in order.
                    let mut order: Vec<&Field> = fields.iter().collect();
                    order.sort_by_key(|f| match f.2 {
                        Some(e) => (0, e),
                        None => (1, 0),
                    });
                    self.blob.clear();
                    let elems =
                        order.iter().flat_map(|(f, v, e)| [Elem::Bytes(f), Elem::Bytes(v), Elem::Int(e.unwrap_or(0))]);
                    Listpack::encode_elems(elems, &mut self.blob);
                    self.blob_str(out);
                    Ok(Encoding::HashListpackEx)
                } else {
                    encode_length(fields.len() as u64, out);
                    for (f, v, e) in fields {
                        // Relative TTL: expiry − minExpire + 1; 0 = none (both ends within 0..=2^48−1).
                        let rel = e.map_or(0, |e| (e - min) as u64 + 1);
                        encode_length(rel, out);
                        self.str(f, out);
                        self.str(v, out);
                    }
                    Ok(Encoding::HashMetadata)
                }
            }
        }
    }

    fn hash_is_small(&self, fields: &[Field]) -> bool {
        let th = self.opts.thresholds;
        fields.len() <= th.hash_max_listpack_entries
            && fields
                .iter()
                .all(|(f, v, _)| f.len() <= th.hash_max_listpack_value && v.len() <= th.hash_max_listpack_value)
            && blob_fits(fields.iter().map(|(f, v, _)| f.len() + v.len() + 20))
    }

    /// A hash without field TTLs (any TTLs in `fields` are ignored).
    fn plain_hash(&mut self, fields: &[Field], t: Target, out: &mut Vec<u8>) -> Encoding {
        let small = self.hash_is_small(fields);
        let pairs = || fields.iter().flat_map(|(f, v, _)| [f.as_slice(), v.as_slice()]);
        if small && t.level >= 10 {
            self.blob.clear();
            Listpack::encode(pairs(), &mut self.blob);
            self.blob_str(out);
            Encoding::HashListpack
        } else if small && t.level >= 4 {
            self.blob.clear();
            Ziplist::encode(pairs(), &mut self.blob);
            self.blob_str(out);
            Encoding::HashZiplist
        } else if small && t.level >= 2 && !fields.is_empty() {
            self.blob.clear();
            Zipmap::encode(fields.iter().map(|(f, v, _)| (f.as_slice(), v.as_slice())), &mut self.blob);
            self.blob_str(out);
            Encoding::HashZipmap
        } else {
            encode_length(fields.len() as u64, out);
            for (f, v, _) in fields {
                self.str(f, out);
                self.str(v, out);
            }
            Encoding::Hash
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Streams

    fn stream(
        &mut self,
        s: &OwnedStream,
        t: Target,
        out: &mut Vec<u8>,
        dropped: &mut Vec<Unrepresentable>,
    ) -> Result<Encoding, Unrepresentable> {
        if !t.header.supports(Feature::Streams) {
            return Err(Unrepresentable::Stream);
        }
        // The stream layout version: listpack node metadata grew in RDB 10 and 11.
        let (version, encoding) = match t.level {
            11.. => (3, Encoding::StreamV3),
            10 => (2, Encoding::StreamV2),
            _ => (1, Encoding::StreamV1),
        };
        // What an older layout does not store, where it differs from what a server loading it derives: refused,
        // or with `lossy` dropped and reported.
        let lost = stream_losses(s, version);
        if let Some(first) = lost.first() {
            if !self.opts.lossy {
                return Err(first.clone());
            }
            dropped.extend(lost);
        }
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let res = self.stream_nodes(&s.entries, &mut body);
        let nodes = match res {
            Ok(n) => n,
            Err(e) => {
                self.body = body;
                return Err(e);
            }
        };
        encode_length(nodes, out);
        out.extend_from_slice(&body);
        self.body = body;

        let id = |out: &mut Vec<u8>, id: StreamId| {
            encode_length(id.ms, out);
            encode_length(id.seq, out);
        };
        encode_length(s.entries.len() as u64, out);
        id(out, s.last_id);
        if version >= 2 {
            // From a v1 source, derive what Redis's loader derives.
            let first = s.first_id.unwrap_or_else(|| s.entries.first().map(|e| e.id).unwrap_or_default());
            id(out, first);
            id(out, s.max_deleted_id.unwrap_or_default());
            encode_length(s.entries_added.unwrap_or(s.entries.len() as u64), out);
        }
        let mut groups: Vec<&OwnedGroup> = s.groups.iter().collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        encode_length(groups.len() as u64, out);
        for g in groups {
            self.str(&g.name, out);
            id(out, g.last_id);
            if version >= 2 {
                // Absent (v1 source): Redis's −1, "unknown", which makes the server recompute it.
                encode_length(g.entries_read.unwrap_or(u64::MAX), out);
            }
            let mut pel: Vec<_> = g.pel.iter().collect();
            pel.sort_by_key(|p| p.id);
            encode_length(pel.len() as u64, out);
            for p in pel {
                out.extend_from_slice(&p.id.to_be_bytes());
                out.extend_from_slice(&p.delivery_time.to_le_bytes());
                encode_length(p.delivery_count, out);
            }
            let mut consumers: Vec<&OwnedConsumer> = g.consumers.iter().collect();
            consumers.sort_by(|a, b| a.name.cmp(&b.name));
            encode_length(consumers.len() as u64, out);
            for c in consumers {
                self.str(&c.name, out);
                out.extend_from_slice(&c.seen_time.to_le_bytes());
                if version >= 3 {
                    out.extend_from_slice(&c.active_time.unwrap_or(c.seen_time).to_le_bytes());
                }
                let mut ids = c.pel.clone();
                ids.sort_unstable();
                encode_length(ids.len() as u64, out);
                for i in ids {
                    out.extend_from_slice(&i.to_be_bytes());
                }
            }
        }
        Ok(encoding)
    }

    /// Writes the stream's nodes (node key, listpack) to `body` as `streamAppendItem` builds them; returns the
    /// number of nodes.
    fn stream_nodes(&mut self, entries: &[StreamEntry], body: &mut Vec<u8>) -> Result<u64, Unrepresentable> {
        let th = self.opts.thresholds;
        let max_bytes = match th.stream_node_max_bytes {
            0 => STREAM_LISTPACK_MAX_SIZE,
            n => n.min(STREAM_LISTPACK_MAX_SIZE),
        };
        let mut nodes = 0u64;
        // The open node: index of its first entry, entry count, listpack bytes without the count element.
        let mut node: Option<(usize, usize, usize)> = None;
        for (i, e) in entries.iter().enumerate() {
            // `totelelen`: the field and value bytes, which Redis adds to the node size when deciding.
            let total: usize =
                e.fields.iter().map(|(f, v)| f.len().saturating_add(v.len())).fold(0, usize::saturating_add);
            // With the per-element overhead, one entry must leave room in a listpack for a full node.
            if total.saturating_add(e.fields.len().saturating_mul(20)) > MAX_BLOB_ELEMENT / 2 {
                return Err(Unrepresentable::TooLarge { what: "stream entry", len: total as u64 });
            }
            if let Some((first, count, bytes)) = node {
                let lp_bytes = bytes + self.lp_elem_size(Elem::Int(count as i64));
                let full = lp_bytes + total >= max_bytes
                    || (th.stream_node_max_entries != 0 && count >= th.stream_node_max_entries);
                if full {
                    self.stream_node(&entries[first..first + count], body);
                    nodes += 1;
                    node = None;
                }
            }
            let (first, count, mut bytes) = match node {
                Some(n) => n,
                None => {
                    // Master entry: count (added at the end), deleted 0, field count, field names, 0.
                    let mut b = 7 + self.lp_elem_size(Elem::Int(0)) * 2;
                    b += self.lp_elem_size(Elem::Int(e.fields.len() as i64));
                    for (f, _) in &e.fields {
                        b += self.lp_elem_size(Elem::Bytes(f));
                    }
                    (i, 0, b)
                }
            };
            bytes += self.entry_size(&entries[first], e);
            node = Some((first, count + 1, bytes));
        }
        if let Some((first, count, _)) = node {
            self.stream_node(&entries[first..first + count], body);
            nodes += 1;
        }
        Ok(nodes)
    }

    /// Listpack bytes of entry `e` in a node whose master entry is `master`.
    fn entry_size(&mut self, master: &StreamEntry, e: &StreamEntry) -> usize {
        let mut size = 0;
        for el in entry_elems(master, e) {
            size += self.lp_elem_size(el);
        }
        size
    }

    fn stream_node(&mut self, entries: &[StreamEntry], body: &mut Vec<u8>) {
        let Some(master) = entries.first() else {
            return;
        };
        let head = [Elem::Int(entries.len() as i64), Elem::Int(0), Elem::Int(master.fields.len() as i64)];
        let elems = head
            .into_iter()
            .chain(master.fields.iter().map(|(f, _)| Elem::Bytes(f)))
            .chain(std::iter::once(Elem::Int(0)))
            .chain(entries.iter().flat_map(|e| entry_elems(master, e)));
        self.blob.clear();
        Listpack::encode_elems(elems, &mut self.blob);
        encode_raw_str(&master.id.to_be_bytes(), body);
        self.blob_str(body);
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(EncodeOptions::default())
    }
}

const STREAM_SAMEFIELDS: i64 = 2;

/// The listpack elements of stream entry `e` in a node whose first entry is `master`.
fn entry_elems<'a>(master: &'a StreamEntry, e: &'a StreamEntry) -> impl Iterator<Item = Elem<'a>> + 'a {
    let same = e.fields.len() == master.fields.len() && e.fields.iter().zip(&master.fields).all(|(a, b)| a.0 == b.0);
    let n = e.fields.len() as i64;
    let ms_delta = e.id.ms.wrapping_sub(master.id.ms) as i64;
    let seq_delta = e.id.seq.wrapping_sub(master.id.seq) as i64;
    let flags = if same { STREAM_SAMEFIELDS } else { 0 };
    let lp_count = if same { n + 3 } else { 2 * n + 4 };
    [Elem::Int(flags), Elem::Int(ms_delta), Elem::Int(seq_delta)]
        .into_iter()
        .chain((!same).then_some(Elem::Int(n)))
        .chain(e.fields.iter().flat_map(move |(f, v)| {
            let field = (!same).then_some(Elem::Bytes(f));
            field.into_iter().chain(std::iter::once(Elem::Bytes(v)))
        }))
        .chain(std::iter::once(Elem::Int(lp_count)))
}

/// Redis 7.2+ `double2ll`: an integral value within ±2^62 as an integer.
fn double2ll(d: f64) -> Option<i64> {
    const LIM: f64 = 4611686018427387904.0; // (double)(LLONG_MAX / 2)
    if !(-LIM..=LIM).contains(&d) {
        return None;
    }
    let i = d as i64;
    (i as f64 == d).then_some(i)
}

/// (size limit, count limit) of a quicklist node for `list-max-listpack-size` = `fill`.
fn node_limits(fill: i64) -> (Option<usize>, usize) {
    if fill >= 0 {
        (None, usize::try_from(fill).unwrap_or(usize::MAX).max(1))
    } else {
        let offset = usize::try_from(fill.unsigned_abs() - 1).unwrap_or(usize::MAX).min(QUICKLIST_LEVELS.len() - 1);
        (Some(QUICKLIST_LEVELS[offset]), usize::MAX)
    }
}

/// Bytes a ziplist prevlen takes for a previous entry of `prev` bytes.
fn prevlen_size(prev: usize) -> usize {
    if prev < 254 { 1 } else { 5 }
}

/// Whether elements of these lengths fit comfortably in one compact blob.
fn blob_fits(lens: impl Iterator<Item = usize>) -> bool {
    let mut total = 0usize;
    for l in lens {
        total = total.saturating_add(l).saturating_add(11);
        if total >= BLOB_SAFETY_LIMIT {
            return false;
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::approx_constant)] // 3.14159 is a fixture score, not π
mod tests {
    use super::*;
    use crate::format::length::length;
    use crate::format::string::rdb_str;
    use crate::read::module::module_name;
    use crate::read::stream_value::PendingEntry;
    use crate::read::{LogicalType, RecordKind, SliceReader, Value};
    use proptest::collection::{btree_map, btree_set, vec};
    use proptest::prelude::*;

    fn targets() -> Vec<Header> {
        let mut v: Vec<Header> = (1..=12).map(|n| Header::new(Flavor::Redis, n)).collect();
        v.push(Header::new(Flavor::Valkey, 80));
        v
    }

    fn redis(v: u32) -> Header {
        Header::new(Flavor::Redis, v)
    }

    fn valkey() -> Header {
        Header::new(Flavor::Valkey, 80)
    }

    /// Wraps a value body in a one-key file for `target` and reads it back with deep validation on.
    fn read_back(target: Header, enc: Encoding, body: &[u8]) -> OwnedValue {
        let mut file = target.magic_bytes().to_vec();
        file.push(enc.type_byte());
        encode_raw_str(b"k", &mut file);
        file.extend_from_slice(body);
        file.push(0xFF);
        if target.has_checksum() {
            file.extend_from_slice(&[0; 8]);
        }
        let mut r = SliceReader::new(&file).unwrap();
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    if let RecordKind::Entry(e) = rec.kind {
                        assert_eq!(e.value.encoding, enc);
                        return e.value.to_owned_value().unwrap();
                    }
                }
                Ok(None) => panic!("no key record"),
                Err(e) => panic!("{} {enc:?}: {e}", target.magic()),
            }
        }
    }

    fn encode(v: &OwnedValue, target: Header) -> (Encoding, Vec<u8>) {
        let mut out = Vec::new();
        let got = Encoder::default().encode(v, target, &mut out).unwrap();
        (got.encoding, out)
    }

    /// A comparable form: collections whose order the format does not keep are sorted, and sorted-set scores are
    /// compared bit for bit.
    fn canon(v: &OwnedValue) -> (OwnedValue, Vec<(Vec<u8>, u64)>) {
        let mut v = v.clone();
        let mut bits = Vec::new();
        match &mut v {
            OwnedValue::Set(m) => m.sort(),
            OwnedValue::Hash(f) => f.sort(),
            OwnedValue::ZSet(z) => {
                z.sort_by(|a, b| a.0.cmp(&b.0));
                bits = z.iter().map(|(m, s)| (m.clone(), s.to_bits())).collect();
            }
            _ => {}
        }
        (v, bits)
    }

    /// What reading back `v`, encoded as `enc`, must give (before [`canon`]).
    fn expected(v: &OwnedValue, enc: Encoding) -> OwnedValue {
        match v {
            OwnedValue::Hash(f)
                if !matches!(enc, Encoding::HashListpackEx | Encoding::HashMetadata | Encoding::ValkeyHash2) =>
            {
                OwnedValue::Hash(f.iter().map(|(k, v, _)| (k.clone(), v.clone(), None)).collect())
            }
            OwnedValue::Stream(s) => {
                let version = match enc {
                    Encoding::StreamV1 => 1,
                    Encoding::StreamV2 => 2,
                    _ => 3,
                };
                let mut groups = s.groups.clone();
                groups.sort_by(|a, b| a.name.cmp(&b.name));
                for g in &mut groups {
                    g.entries_read = (version >= 2).then_some(g.entries_read.unwrap_or(u64::MAX));
                    g.pel.sort_by_key(|p| p.id);
                    g.consumers.sort_by(|a, b| a.name.cmp(&b.name));
                    for c in &mut g.consumers {
                        c.active_time = (version >= 3).then_some(c.active_time.unwrap_or(c.seen_time));
                        c.pel.sort();
                    }
                }
                let v2 = version >= 2;
                OwnedValue::Stream(OwnedStream {
                    entries: s.entries.clone(),
                    length: s.entries.len() as u64,
                    last_id: s.last_id,
                    first_id: v2.then(|| s.first_id.unwrap_or(s.entries.first().map(|e| e.id).unwrap_or_default())),
                    max_deleted_id: v2.then(|| s.max_deleted_id.unwrap_or_default()),
                    entries_added: v2.then(|| s.entries_added.unwrap_or(s.entries.len() as u64)),
                    groups,
                })
            }
            other => other.clone(),
        }
    }

    /// The error `v` must give for `target`, if any.
    fn expected_error(v: &OwnedValue, target: Header) -> Option<Unrepresentable> {
        let level = target.redis_level();
        let layout = match level {
            11.. => 3,
            10 => 2,
            _ => 1,
        };
        match v {
            OwnedValue::Stream(_) if level < 9 => Some(Unrepresentable::Stream),
            OwnedValue::Stream(s) => stream_losses(s, layout).into_iter().next(),
            OwnedValue::Module { .. } if level < 8 => Some(Unrepresentable::Module),
            OwnedValue::Hash(f)
                if f.iter().any(|x| x.2.is_some()) && target.flavor == Flavor::Redis && target.version < 12 =>
            {
                Some(Unrepresentable::FieldTtls)
            }
            _ => None,
        }
    }

    // ---- strategies ---------------------------------------------------------------------------------------

    fn int_text() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::sample::select(crate::format::testing::INT_TEXTS).prop_map(|s| s.as_bytes().to_vec()),
            any::<i64>().prop_map(|i| i.to_string().into_bytes()),
            (-200i64..200).prop_map(|i| i.to_string().into_bytes()),
        ]
    }

    fn elem() -> BoxedStrategy<Vec<u8>> {
        prop_oneof![
            6 => vec(any::<u8>(), 0..12),
            3 => int_text(),
            1 => Just(Vec::new()),
            1 => vec(any::<u8>(), 60..70),
            1 => vec(b'a'..=b'c', 20..300),
        ]
        .boxed()
    }

    /// `len` pseudo-random bytes from `seed` (cheaper to generate than a proptest vector of that size); with
    /// `alphabet` 3 they compress well, with 256 they do not.
    fn seeded(seed: u64, len: usize, alphabet: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if alphabet >= 256 { x as u8 } else { b'a' + (x % alphabet) as u8 }
            })
            .collect()
    }

    /// Elements around the 8 KiB quicklist limit (8192 bytes exactly included), compressible or not.
    fn big_elem() -> BoxedStrategy<Vec<u8>> {
        (8170usize..8210, any::<u64>(), prop::sample::select(&[3u64, 256][..]), any::<bool>())
            .prop_map(|(len, seed, alphabet, huge)| seeded(seed, if huge { len + 12000 } else { len }, alphabet))
            .boxed()
    }

    /// `n` distinct members from `salt`.
    fn distinct(n: usize, salt: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| seeded(salt.wrapping_add(i as u64), 1 + i % 7, 256).into_iter().chain(i.to_le_bytes()).collect())
            .collect()
    }

    fn list() -> impl Strategy<Value = OwnedValue> {
        prop_oneof![
            8 => vec(elem(), 0..30),
            1 => (500usize..700, any::<u64>()).prop_map(|(n, salt)| (0..n).map(|i| seeded(salt ^ i as u64, i % 20, 256)).collect()),
            2 => vec(prop_oneof![3 => elem(), 1 => big_elem()], 0..8),
        ]
        .prop_map(OwnedValue::List)
    }

    fn ints(n: usize, base: i64, step: i64) -> Vec<Vec<u8>> {
        (0..n as i64).map(|i| base.wrapping_add(i.wrapping_mul(step)).to_string().into_bytes()).collect()
    }

    fn set() -> impl Strategy<Value = OwnedValue> {
        let small = prop_oneof![
            6 => btree_set(elem(), 0..20),
            2 => btree_set(int_text(), 0..20),
        ]
        .prop_map(|s| OwnedValue::Set(s.into_iter().collect()));
        // Sizes around the intset (512) and listpack (128) limits.
        let big = prop_oneof![
            (120usize..140, any::<i64>(), 1i64..1000).prop_map(|(n, base, step)| ints(n, base, step)),
            (505usize..520, any::<i64>(), 1i64..1_000_000).prop_map(|(n, base, step)| ints(n, base, step)),
            (120usize..135, any::<u64>()).prop_map(|(n, salt)| distinct(n, salt)),
        ]
        .prop_map(OwnedValue::Set);
        prop_oneof![8 => small, 3 => big]
    }

    fn score() -> impl Strategy<Value = f64> {
        const SPECIAL: &[f64] = &[
            0.0,
            -0.0,
            1.0,
            -2.0,
            2.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
            1e20,
            -1e20,
            3.14159,
            0.1,
            4611686018427387904.0,
            -4611686018427387904.0,
            6917529027641081856.0,
            9007199254740993.0,
            4503599627370496.0,
            -4503599627370495.0,
            9223372036854775807.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
        ];
        prop_oneof![
            prop::sample::select(SPECIAL),
            any::<f64>().prop_filter("not NaN", |f| !f.is_nan()),
            (-1000i64..1000).prop_map(|i| i as f64),
            (-1000i64..1000).prop_map(|i| i as f64 / 8.0),
        ]
    }

    fn zset() -> impl Strategy<Value = OwnedValue> {
        let small = prop_oneof![
            6 => btree_map(elem(), score(), 0..20),
        ]
        .prop_map(|m| OwnedValue::ZSet(m.into_iter().collect()));
        let big = (120usize..140, any::<u64>(), vec(score(), 16)).prop_map(|(n, salt, scores)| {
            OwnedValue::ZSet(distinct(n, salt).into_iter().zip(scores.into_iter().cycle()).collect())
        });
        prop_oneof![6 => small, 1 => big]
    }

    fn hash() -> impl Strategy<Value = OwnedValue> {
        let ttl = prop_oneof![2 => Just(None), 1 => (1i64..=FIELD_EXPIRE_MAX).prop_map(Some), 1 => Just(Some(4_102_444_800_000i64))];
        let fields = prop_oneof![
            6 => btree_map(elem(), (elem(), ttl.clone()), 0..20).prop_map(|m| m.into_iter().collect::<Vec<_>>()),
            1 => (505usize..530, any::<u64>(), vec((elem(), ttl), 16)).prop_map(|(n, salt, vals)| {
                distinct(n, salt).into_iter().zip(vals.into_iter().cycle()).collect()
            }),
        ];
        (fields, any::<bool>()).prop_map(|(m, ttls)| {
            OwnedValue::Hash(m.into_iter().map(|(f, (v, t))| (f, v, t.filter(|_| ttls))).collect())
        })
    }

    fn stream() -> impl Strategy<Value = OwnedValue> {
        let entry = (0u64..3, 0u64..3, 0usize..4, vec(elem(), 3));
        let group = (
            vec(any::<u8>(), 0..6),
            prop::option::of(any::<u64>()),
            vec(any::<prop::sample::Index>(), 0..8),
            0usize..3,
            any::<i64>(),
            1u64..4,
        );
        (vec(entry, 0..250), vec(group, 0..3), 1u8..=3, any::<u64>(), 0u64..5).prop_map(
            |(specs, gspecs, version, last_extra, added_extra)| {
                let mut entries: Vec<StreamEntry> = Vec::new();
                let mut id = StreamId { ms: 1_700_000_000_000, seq: 0 };
                for (ms_inc, seq, shape, values) in specs {
                    if ms_inc == 0 && !entries.is_empty() {
                        id.seq += 1 + seq;
                    } else {
                        id.ms += ms_inc.max(1);
                        id.seq = seq;
                    }
                    let names: &[&[u8]] = match shape {
                        0 | 1 => &[b"a", b"b"],
                        2 => &[b"x"],
                        _ => &[b"a", b"b", b"123"],
                    };
                    let fields =
                        names.iter().zip(values.iter().cycle()).map(|(n, v)| (n.to_vec(), v.clone())).collect();
                    entries.push(StreamEntry { id, fields });
                }
                let last_id = match entries.last() {
                    Some(e) if last_extra % 2 == 0 => e.id,
                    Some(e) => StreamId { ms: e.id.ms + 1, seq: 0 },
                    None => StreamId { ms: last_extra >> 20, seq: last_extra & 0xF },
                };
                let mut groups: Vec<OwnedGroup> = Vec::new();
                for (name, entries_read, picks, nconsumers, time, count) in gspecs {
                    if groups.iter().any(|g| g.name == name) {
                        continue;
                    }
                    let mut ids: Vec<StreamId> = if entries.is_empty() || nconsumers == 0 {
                        Vec::new()
                    } else {
                        picks.iter().map(|i| entries[i.index(entries.len())].id).collect()
                    };
                    ids.sort();
                    ids.dedup();
                    let pel =
                        ids.iter().map(|&id| PendingEntry { id, delivery_time: time, delivery_count: count }).collect();
                    let consumers = (0..nconsumers)
                        .map(|c| OwnedConsumer {
                            name: format!("consumer-{c}").into_bytes(),
                            seen_time: time.wrapping_add(c as i64),
                            active_time: (version >= 3).then_some(time),
                            pel: ids.iter().copied().skip(c).step_by(nconsumers).collect(),
                        })
                        .collect();
                    groups.push(OwnedGroup {
                        name,
                        last_id,
                        entries_read: if version >= 2 { entries_read.or(Some(u64::MAX)) } else { None },
                        pel,
                        consumers,
                    });
                }
                // Groups appear in reverse order to exercise the rax sort.
                groups.reverse();
                let v2 = version >= 2;
                OwnedValue::Stream(OwnedStream {
                    length: entries.len() as u64,
                    first_id: v2.then(|| entries.first().map(|e| e.id).unwrap_or_default()),
                    max_deleted_id: v2.then_some(StreamId { ms: 5, seq: 1 }),
                    entries_added: v2.then_some(entries.len() as u64 + added_extra),
                    entries,
                    last_id,
                    groups,
                })
            },
        )
    }

    fn module() -> impl Strategy<Value = OwnedValue> {
        let op = prop_oneof![
            any::<u64>().prop_map(|v| {
                let mut b = Vec::new();
                encode_length(2, &mut b);
                encode_length(v, &mut b);
                b
            }),
            any::<f64>().prop_map(|d| {
                let mut b = vec![4];
                b.extend_from_slice(&d.to_le_bytes());
                b
            }),
            elem().prop_map(|s| {
                let mut b = vec![5];
                encode_raw_str(&s, &mut b);
                b
            }),
        ];
        (any::<u64>(), vec(op, 0..5)).prop_map(|(id, ops)| {
            let (name, encver) = module_name(id);
            let mut payload: Vec<u8> = ops.concat();
            payload.push(0);
            OwnedValue::Module { id, name, encver, payload }
        })
    }

    fn value() -> impl Strategy<Value = OwnedValue> {
        prop_oneof![
            2 => prop_oneof![elem(), big_elem()].prop_map(OwnedValue::String),
            3 => list(),
            3 => set(),
            3 => zset(),
            3 => hash(),
            2 => stream(),
            1 => module(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Every value, encoded for every target, reads back (with deep validation) as itself, up to what the
        /// target's format does not keep.
        #[test]
        fn round_trip_every_target(v in value()) {
            let mut strict = Encoder::default();
            let mut lossy = Encoder::new(EncodeOptions { lossy: true, ..EncodeOptions::default() });
            for target in targets() {
                let mut out = vec![0xAA];
                match strict.encode(&v, target, &mut out) {
                    Ok(got) => {
                        prop_assert!(got.dropped.is_empty());
                        prop_assert!(got.encoding.allowed_in(target));
                        prop_assert_eq!(got.encoding.logical_type(), v_type(&v));
                        prop_assert_eq!(out[0], 0xAA);
                        let back = read_back(target, got.encoding, &out[1..]);
                        prop_assert_eq!(canon(&back), canon(&expected(&v, got.encoding)), "{}", target.magic());
                    }
                    Err(e) => {
                        prop_assert_eq!(out.len(), 1, "nothing appended on error");
                        prop_assert_eq!(Some(e.clone()), expected_error(&v, target), "{}", target.magic());
                        let mut out = Vec::new();
                        match lossy.encode(&v, target, &mut out) {
                            Ok(got) => {
                                match (&e, &v) {
                                    (Unrepresentable::StreamMetadata { .. }, OwnedValue::Stream(s)) => {
                                        let layout = match target.redis_level() {
                                            11.. => 3,
                                            10 => 2,
                                            _ => 1,
                                        };
                                        prop_assert_eq!(got.dropped, stream_losses(s, layout));
                                    }
                                    _ => {
                                        prop_assert_eq!(&e, &Unrepresentable::FieldTtls);
                                        prop_assert_eq!(got.dropped, vec![Unrepresentable::FieldTtls]);
                                    }
                                }
                                let back = read_back(target, got.encoding, &out);
                                prop_assert_eq!(canon(&back), canon(&expected(&v, got.encoding)));
                            }
                            Err(e2) => prop_assert_eq!(e2, e),
                        }
                    }
                }
            }
        }
    }

    fn v_type(v: &OwnedValue) -> LogicalType {
        match v {
            OwnedValue::String(_) => LogicalType::String,
            OwnedValue::List(_) => LogicalType::List,
            OwnedValue::Set(_) => LogicalType::Set,
            OwnedValue::ZSet(_) => LogicalType::ZSet,
            OwnedValue::Hash(_) => LogicalType::Hash,
            OwnedValue::Stream(_) => LogicalType::Stream,
            OwnedValue::Module { .. } => LogicalType::Module,
        }
    }

    // ---- exactness against what the servers wrote --------------------------------------------------------

    /// The value body with every STR that holds a blob or string rewritten uncompressed, for the encodings whose
    /// layout is fully determined (so two bodies that differ only in their LZF bytes compare equal); `None` for
    /// other encodings.
    fn without_lzf(enc: Encoding, raw: &[u8]) -> Option<Vec<u8>> {
        fn copy_str(s: &mut &[u8], out: &mut Vec<u8>) -> Option<()> {
            let (rest, v) = rdb_str(s).ok()?;
            encode_raw_str(&v.decode().ok()?, out);
            *s = rest;
            Some(())
        }
        fn copy_len(s: &mut &[u8], out: &mut Vec<u8>) -> Option<u64> {
            let (rest, n) = length(s).ok()?;
            encode_length(n, out);
            *s = rest;
            Some(n)
        }
        use Encoding::*;
        let mut out = Vec::new();
        let mut s = raw;
        match enc {
            Encoding::String
            | ListZiplist
            | SetIntset
            | SetListpack
            | ZsetZiplist
            | ZsetListpack
            | HashZipmap
            | HashZiplist
            | HashListpack => copy_str(&mut s, &mut out)?,
            HashListpackEx => {
                out.extend_from_slice(s.get(..8)?);
                s = &s[8..];
                copy_str(&mut s, &mut out)?;
            }
            ListQuicklist => {
                for _ in 0..copy_len(&mut s, &mut out)? {
                    copy_str(&mut s, &mut out)?;
                }
            }
            ListQuicklist2 => {
                for _ in 0..copy_len(&mut s, &mut out)? {
                    copy_len(&mut s, &mut out)?;
                    copy_str(&mut s, &mut out)?;
                }
            }
            _ => return None,
        }
        s.is_empty().then_some(out)
    }

    /// Re-encodes every key of the server-written fixtures for the fixture's own version with default thresholds:
    /// the encoding must be the one the server chose; compact encodings (listpack, ziplist, intset, quicklist) and
    /// strings must come out byte for byte (after LZF decompression, since LZF output is not reproducible in
    /// general); hashtables, skiplists, streams and modules must decode to the same value (their order is the
    /// server's, and stream tombstones are not reproduced). Prints the share of byte-identical keys.
    #[test]
    fn reencoding_fixtures_matches_the_servers() {
        for name in ["redis-6.2.rdb", "redis-7.0.rdb", "redis-8.2-nomodule.rdb", "valkey-9.1.rdb", "redis-8.2.rdb"] {
            let data = std::fs::read(format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            let mut r = SliceReader::new(&data).unwrap();
            let header = r.header();
            let mut enc = Encoder::default();
            let (mut total, mut identical, mut same_uncompressed, mut same_decoded) = (0usize, 0usize, 0usize, 0usize);
            let (mut orig_bytes, mut new_bytes) = (0usize, 0usize);
            while let Some(rec) = r.next_record().unwrap() {
                let RecordKind::Entry(e) = rec.kind else { continue };
                let key = crate::escape_bytes(&e.key.decode().unwrap());
                let v = e.value.to_owned_value().unwrap();
                let mut out = Vec::new();
                let got = enc.encode(&v, header, &mut out).unwrap();
                assert_eq!(got.encoding, e.value.encoding, "{name} {key}");
                assert!(got.dropped.is_empty());
                total += 1;
                orig_bytes += e.value.raw.len();
                new_bytes += out.len();
                if out == e.value.raw {
                    identical += 1;
                    continue;
                }
                if let Some(orig) = without_lzf(e.value.encoding, e.value.raw) {
                    assert_eq!(without_lzf(got.encoding, &out), Some(orig), "{name} {key}: compact encoding differs");
                    same_uncompressed += 1;
                    continue;
                }
                let back = Value { encoding: got.encoding, raw: &out }.to_owned_value().unwrap();
                assert_eq!(canon(&back), canon(&expected(&v, got.encoding)), "{name} {key}");
                same_decoded += 1;
            }
            let pct = |n: usize| 100.0 * n as f64 / total as f64;
            println!(
                "{name}: {total} keys, {identical} byte-identical ({:.1}%), {same_uncompressed} identical after LZF \
                 decompression, {same_decoded} equal when decoded; value bytes {orig_bytes} -> {new_bytes} ({:+.2}%)",
                pct(identical),
                100.0 * (new_bytes as f64 - orig_bytes as f64) / orig_bytes as f64
            );
            assert!(total > 40, "{name}");
            assert!(pct(identical) >= 90.0, "{name}: only {identical}/{total} byte-identical");
            assert!(new_bytes.abs_diff(orig_bytes) * 50 <= orig_bytes, "{name}: sizes differ by more than 2%");
        }
    }

    // ---- unit tests -----------------------------------------------------------------------------------------

    fn elems_of(blob_str: &[u8]) -> Vec<Elem<'static>> {
        let (_, s) = rdb_str(blob_str).unwrap();
        let blob = s.decode().unwrap().into_owned();
        Listpack::new(&blob)
            .unwrap()
            .iter()
            .map(|e| match e.unwrap() {
                Elem::Int(i) => Elem::Int(i),
                Elem::Bytes(b) => Elem::Bytes(Box::leak(b.to_vec().into_boxed_slice())),
            })
            .collect()
    }

    fn hash_of(fields: &[(&str, &str, Option<i64>)]) -> OwnedValue {
        OwnedValue::Hash(fields.iter().map(|(f, v, e)| (f.as_bytes().to_vec(), v.as_bytes().to_vec(), *e)).collect())
    }

    #[test]
    fn what_targets_cannot_hold() {
        let mut enc = Encoder::default();
        let mut out = vec![1, 2, 3];
        let stream = OwnedValue::Stream(OwnedStream {
            entries: Vec::new(),
            length: 0,
            last_id: StreamId::default(),
            first_id: None,
            max_deleted_id: None,
            entries_added: None,
            groups: Vec::new(),
        });
        assert_eq!(enc.encode(&stream, redis(8), &mut out), Err(Unrepresentable::Stream));
        let (name, encver) = module_name(12345 << 10);
        let module = OwnedValue::Module { id: 12345 << 10, name, encver, payload: vec![0] };
        assert_eq!(enc.encode(&module, redis(7), &mut out), Err(Unrepresentable::Module));
        let nan = OwnedValue::ZSet(vec![(b"m".to_vec(), f64::NAN)]);
        assert_eq!(enc.encode(&nan, redis(12), &mut out), Err(Unrepresentable::NanScore));
        let s = OwnedValue::String(b"x".to_vec());
        for bad in [redis(0), redis(13), Header::new(Flavor::Valkey, 81), Header::new(Flavor::Valkey, 11)] {
            assert_eq!(enc.encode(&s, bad, &mut out), Err(Unrepresentable::UnsupportedTarget(bad)));
        }
        let ttl = hash_of(&[("f", "v", Some(1_000)), ("g", "w", None)]);
        for t in [redis(11), redis(9), redis(1)] {
            assert_eq!(enc.encode(&ttl, t, &mut out), Err(Unrepresentable::FieldTtls));
        }
        let too_big = hash_of(&[("f", "v", Some(1 << 48))]);
        assert_eq!(
            enc.encode(&too_big, redis(12), &mut out),
            Err(Unrepresentable::FieldTtlOutOfRange { expire_ms: 1 << 48 })
        );
        // Valkey keeps large expiries but not negative ones (−1 means "none" there).
        assert!(enc.encode(&too_big, valkey(), &mut Vec::new()).is_ok());
        let negative = hash_of(&[("f", "v", Some(-1))]);
        assert_eq!(
            enc.encode(&negative, valkey(), &mut out),
            Err(Unrepresentable::FieldTtlOutOfRange { expire_ms: -1 })
        );
        assert_eq!(out, [1, 2, 3], "nothing appended on error");
        for (e, text) in [
            (Unrepresentable::FieldTtls, "REDIS0012"),
            (Unrepresentable::Stream, "streams (needs RDB 9+, Redis 5.0)"),
            (Unrepresentable::Module, "module values (needs RDB 8+, Redis 4.0)"),
            (Unrepresentable::NanScore, "NaN"),
            (Unrepresentable::UnsupportedTarget(redis(13)), "REDIS0013"),
            (Unrepresentable::FieldTtlOutOfRange { expire_ms: -5 }, "-5"),
            (Unrepresentable::TooLarge { what: "stream entry", len: 5 }, "stream entry of 5 bytes"),
        ] {
            assert!(e.to_string().contains(text), "{e}");
        }
    }

    #[test]
    fn lossy_drops_field_ttls() {
        let mut enc = Encoder::new(EncodeOptions { lossy: true, ..EncodeOptions::default() });
        let v = hash_of(&[("f", "v", Some(1_000)), ("g", "w", None)]);
        let mut out = Vec::new();
        let got = enc.encode(&v, redis(11), &mut out).unwrap();
        assert_eq!(got, Encoded { encoding: Encoding::HashListpack, dropped: vec![Unrepresentable::FieldTtls] });
        assert_eq!(read_back(redis(11), got.encoding, &out), hash_of(&[("f", "v", None), ("g", "w", None)]));
        // Only the expiry that does not fit is dropped.
        let v = hash_of(&[("f", "v", Some(1 << 50)), ("g", "w", Some(7))]);
        let mut out = Vec::new();
        let got = enc.encode(&v, redis(12), &mut out).unwrap();
        assert_eq!(got.dropped, [Unrepresentable::FieldTtlOutOfRange { expire_ms: 1 << 50 }]);
        assert_eq!(
            canon(&read_back(redis(12), got.encoding, &out)).0,
            hash_of(&[("f", "v", None), ("g", "w", Some(7))])
        );
    }

    #[test]
    fn hash_ttl_layouts() {
        // Small, Redis: listpack with TTL fields first in ascending order, minExpire in front.
        let v = hash_of(&[("a", "1", None), ("b", "2", Some(500)), ("c", "3", Some(200)), ("d", "4", None)]);
        let (enc, out) = encode(&v, redis(12));
        assert_eq!(enc, Encoding::HashListpackEx);
        assert_eq!(out[..8], 200i64.to_le_bytes());
        let e = elems_of(&out[8..]);
        let want: Vec<Elem<'_>> = vec![
            Elem::Bytes(b"c"),
            Elem::Int(3),
            Elem::Int(200),
            Elem::Bytes(b"b"),
            Elem::Int(2),
            Elem::Int(500),
            Elem::Bytes(b"a"),
            Elem::Int(1),
            Elem::Int(0),
            Elem::Bytes(b"d"),
            Elem::Int(4),
            Elem::Int(0),
        ];
        assert_eq!(e, want);
        // An expiry of 0 means "no TTL" in every Redis layout: refused (a Valkey field expired at 0 has no Redis
        // form), or dropped with `lossy`.
        let zero = hash_of(&[("a", "1", Some(0)), ("b", "2", Some(9))]);
        assert_eq!(
            Encoder::default().encode(&zero, redis(12), &mut Vec::new()),
            Err(Unrepresentable::FieldTtlOutOfRange { expire_ms: 0 })
        );
        let (enc, _) = encode(&hash_of(&[("a", "1", Some(1)), ("b", "2", Some(9))]), redis(12));
        assert_eq!(enc, Encoding::HashListpackEx);
        // Large, Redis: minExpire, then relative TTLs (exp − min + 1, 0 = none) before each field.
        let long = "x".repeat(65);
        let v = hash_of(&[("a", &long, Some(1000)), ("b", "2", None), ("c", "3", Some(1003))]);
        let (enc, out) = encode(&v, redis(12));
        assert_eq!(enc, Encoding::HashMetadata);
        let mut want = 1000i64.to_le_bytes().to_vec();
        want.push(3);
        want.extend_from_slice(&[1, 1, b'a']);
        encode_raw_str(long.as_bytes(), &mut want); // 65 x's do compress, so compare decoded below
        let back = read_back(redis(12), enc, &out);
        assert_eq!(back, v);
        assert_eq!(out[..12], want[..12]);
        // Valkey: field, value, expiry or −1.
        let v = hash_of(&[("a", "1", None), ("b", "2", Some(77))]);
        let (enc, out) = encode(&v, valkey());
        assert_eq!(enc, Encoding::ValkeyHash2);
        let mut want = vec![2, 1, b'a', 0xC0, 1];
        want.extend_from_slice(&(-1i64).to_le_bytes());
        want.extend_from_slice(&[1, b'b', 0xC0, 2]);
        want.extend_from_slice(&77i64.to_le_bytes());
        assert_eq!(out, want);
        // Without TTLs, Valkey uses the ordinary encodings.
        assert_eq!(encode(&hash_of(&[("a", "1", None)]), valkey()).0, Encoding::HashListpack);
    }

    #[test]
    fn zset_score_forms() {
        let v = OwnedValue::ZSet(vec![
            (b"pi".to_vec(), 3.14159),
            (b"big".to_vec(), 1e20),
            (b"three".to_vec(), 3.0),
            (b"negzero".to_vec(), -0.0),
            (b"zero".to_vec(), 0.0),
            (b"inf".to_vec(), f64::INFINITY),
            (b"two62".to_vec(), 4611686018427387904.0),
        ]);
        // Redis 7.2+: integers within ±2^62 as integers, others as shortest text; ordered by score, then member.
        let (enc, out) = encode(&v, redis(11));
        assert_eq!(enc, Encoding::ZsetListpack);
        let e = elems_of(&out);
        let want: Vec<Elem<'_>> = vec![
            Elem::Bytes(b"negzero"),
            Elem::Bytes(b"-0"),
            Elem::Bytes(b"zero"),
            Elem::Int(0),
            Elem::Bytes(b"three"),
            Elem::Int(3),
            Elem::Bytes(b"pi"),
            Elem::Bytes(b"3.14159"),
            Elem::Bytes(b"two62"),
            Elem::Int(4611686018427387904),
            Elem::Bytes(b"big"),
            Elem::Bytes(b"1e+20"),
            Elem::Bytes(b"inf"),
            Elem::Bytes(b"inf"),
        ];
        assert_eq!(e, want);
        // Redis 7.0: `%.17g` text.
        let e = elems_of(&encode(&v, redis(10)).1);
        assert_eq!(e[7], Elem::Bytes(b"3.1415899999999999"));
        assert_eq!(e[9], Elem::Bytes(b"4.6116860184273879e+18"));
        assert_eq!(e[11], Elem::Bytes(b"1e+20"));
        // Skiplists are written from the highest score down.
        let many = OwnedValue::ZSet((0..200).map(|i| (format!("m{i:03}").into_bytes(), f64::from(i))).collect());
        let (enc, out) = encode(&many, redis(9));
        assert_eq!(enc, Encoding::Zset2);
        let mut want = vec![0x40, 200, 4, b'm', b'1', b'9', b'9'];
        want.extend_from_slice(&199f64.to_le_bytes());
        assert_eq!(out[..want.len()], want[..]);
        assert_eq!(encode(&many, redis(7)).0, Encoding::ZsetText);
    }

    /// Node containers and element counts of a type-18 quicklist.
    fn quicklist2_nodes(raw: &[u8]) -> Vec<(u64, usize)> {
        let (mut r, n) = length(raw).unwrap();
        let mut nodes = Vec::new();
        for _ in 0..n {
            let (r2, container) = length(r).unwrap();
            let (r2, s) = rdb_str(r2).unwrap();
            let bytes = s.decode().unwrap();
            let count = if container == 2 { Listpack::new(&bytes).unwrap().iter().count() } else { 1 };
            nodes.push((container, count));
            r = r2;
        }
        assert!(r.is_empty());
        nodes
    }

    #[test]
    fn list_node_rules() {
        let list = |sizes: &[usize]| OwnedValue::List(sizes.iter().map(|&n| vec![b'e'; n]).collect());
        // Redis 7.2+: an element over 8 KiB gets a PLAIN node; exactly 8 KiB still goes into a listpack.
        let (enc, out) = encode(&list(&[1, 8193, 2, 8192]), redis(11));
        assert_eq!(enc, Encoding::ListQuicklist2);
        assert_eq!(quicklist2_nodes(&out), [(2, 1), (1, 1), (2, 1), (2, 1)]);
        // Redis 7.0 has no size-based PLAIN nodes.
        assert_eq!(quicklist2_nodes(&encode(&list(&[1, 8193, 2]), redis(10)).1), [(2, 1), (2, 1), (2, 1)]);
        // 8 KiB per node with Redis's estimate: 2000 × 10-byte elements.
        let many = OwnedValue::List((0..2000).map(|i| format!("element{i:03}").into_bytes()).collect());
        let nodes = quicklist2_nodes(&encode(&many, redis(12)).1);
        // Each element adds 12 listpack bytes but is estimated at 10 + 8: 681 fit under 8192.
        assert_eq!(nodes, [(2, 681), (2, 653), (2, 629), (2, 37)]);
        assert_eq!(nodes.iter().map(|n| n.1).sum::<usize>(), 2000);
        // A positive list-max-listpack-size counts elements.
        let opts = EncodeOptions {
            thresholds: Thresholds { list_max_listpack_size: 3, ..Thresholds::default() },
            ..EncodeOptions::default()
        };
        let mut out = Vec::new();
        Encoder::new(opts).encode(&list(&[1, 2, 3, 4, 5, 6, 7]), redis(11), &mut out).unwrap();
        assert_eq!(quicklist2_nodes(&out), [(2, 3), (2, 3), (2, 1)]);
        // Older targets.
        assert_eq!(encode(&many, redis(9)).0, Encoding::ListQuicklist);
        assert_eq!(encode(&list(&[64; 512]), redis(6)).0, Encoding::ListZiplist);
        assert_eq!(encode(&list(&[64; 513]), redis(6)).0, Encoding::ListLinked);
        assert_eq!(encode(&list(&[65]), redis(2)).0, Encoding::ListLinked);
        assert_eq!(encode(&list(&[1]), redis(1)).0, Encoding::ListLinked);
        assert_eq!(encode(&list(&[]), redis(12)), (Encoding::ListQuicklist2, vec![0]));
    }

    #[test]
    fn thresholds_are_inclusive() {
        let strs = |n: usize, len: usize| (0..n).map(|i| format!("{i:0len$}x").into_bytes()).collect::<Vec<_>>();
        let ints = |n: i64| (0..n).map(|i| (i * 1000).to_string().into_bytes()).collect::<Vec<_>>();
        let set = |m: Vec<Vec<u8>>| OwnedValue::Set(m);
        assert_eq!(encode(&set(ints(512)), redis(12)).0, Encoding::SetIntset);
        assert_eq!(encode(&set(ints(513)), redis(12)).0, Encoding::Set);
        assert_eq!(encode(&set(ints(5)), redis(2)).0, Encoding::SetIntset);
        assert_eq!(encode(&set(ints(5)), redis(1)).0, Encoding::Set);
        assert_eq!(encode(&set(strs(128, 63)), redis(11)).0, Encoding::SetListpack);
        assert_eq!(encode(&set(strs(129, 5)), redis(11)).0, Encoding::Set);
        assert_eq!(encode(&set(strs(3, 64)), redis(11)).0, Encoding::Set);
        assert_eq!(encode(&set(strs(3, 5)), redis(10)).0, Encoding::Set);
        assert_eq!(encode(&set(Vec::new()), redis(9)).0, Encoding::Set);
        let hash = |n: usize, len: usize| {
            OwnedValue::Hash(strs(n, len.saturating_sub(1)).into_iter().map(|f| (f.clone(), f, None)).collect())
        };
        assert_eq!(encode(&hash(512, 64), redis(10)).0, Encoding::HashListpack);
        assert_eq!(encode(&hash(513, 5), redis(10)).0, Encoding::Hash);
        assert_eq!(encode(&hash(3, 65), redis(10)).0, Encoding::Hash);
        assert_eq!(encode(&hash(3, 5), redis(9)).0, Encoding::HashZiplist);
        assert_eq!(encode(&hash(3, 5), redis(3)).0, Encoding::HashZipmap);
        assert_eq!(encode(&hash(0, 5), redis(3)).0, Encoding::Hash);
        assert_eq!(encode(&hash(3, 5), redis(1)).0, Encoding::Hash);
        let zset = |n: usize, len: usize| {
            OwnedValue::ZSet(
                strs(n, len.saturating_sub(1)).into_iter().zip(0..).map(|(m, i)| (m, f64::from(i))).collect(),
            )
        };
        assert_eq!(encode(&zset(128, 64), redis(10)).0, Encoding::ZsetListpack);
        assert_eq!(encode(&zset(129, 5), redis(10)).0, Encoding::Zset2);
        assert_eq!(encode(&zset(3, 65), redis(10)).0, Encoding::Zset2);
        assert_eq!(encode(&zset(3, 5), redis(2)).0, Encoding::ZsetZiplist);
        assert_eq!(encode(&zset(3, 5), redis(1)).0, Encoding::ZsetText);
    }

    fn stream_of(entries: Vec<StreamEntry>, groups: Vec<OwnedGroup>) -> OwnedValue {
        OwnedValue::Stream(OwnedStream {
            length: entries.len() as u64,
            last_id: entries.last().map(|e| e.id).unwrap_or_default(),
            first_id: None,
            max_deleted_id: None,
            entries_added: None,
            entries,
            groups,
        })
    }

    #[test]
    fn stream_nodes_and_metadata() {
        let entry = |ms: u64, value: &[u8]| StreamEntry {
            id: StreamId { ms, seq: 0 },
            fields: vec![(b"f".to_vec(), value.to_vec())],
        };
        // 100 entries per node.
        let v = stream_of((1..=250).map(|i| entry(i, b"v")).collect(), Vec::new());
        let (enc, out) = encode(&v, redis(9));
        assert_eq!(enc, Encoding::StreamV1);
        let s = crate::read::stream_value::StreamValue::parse(&out, 1).unwrap();
        let keys: Vec<u64> = s.nodes.iter().map(|n| n.0.ms).collect();
        assert_eq!(keys, [1, 101, 201]);
        assert_eq!(s.entries().unwrap().len(), 250);
        // 4 KiB per node: an entry with a 500-byte value takes 512 listpack bytes, the master entry and header 18;
        // a node takes another entry while its bytes plus the new entry's 501 field/value bytes stay under 4096.
        let big = vec![b'z'; 500];
        let v = stream_of((1..=20).map(|i| entry(i, &big)).collect(), Vec::new());
        let out = encode(&v, redis(9)).1;
        let s = crate::read::stream_value::StreamValue::parse(&out, 1).unwrap();
        let keys: Vec<u64> = s.nodes.iter().map(|n| n.0.ms).collect();
        assert_eq!(keys, [1, 8, 15]);
        // v2 from a v1 source: first_id from the data, entries_added = length, entries_read −1 (0x81 FF×8).
        let group = OwnedGroup {
            name: b"g".to_vec(),
            last_id: StreamId { ms: 2, seq: 0 },
            entries_read: None,
            pel: Vec::new(),
            consumers: vec![OwnedConsumer { name: b"c".to_vec(), seen_time: 42, active_time: None, pel: Vec::new() }],
        };
        let v = stream_of(vec![entry(5, b"a"), entry(6, b"b")], vec![group]);
        let (enc, out) = encode(&v, redis(10));
        assert_eq!(enc, Encoding::StreamV2);
        let s = crate::read::stream_value::StreamValue::parse(&out, 2).unwrap();
        assert_eq!(s.first_id, Some(StreamId { ms: 5, seq: 0 }));
        assert_eq!(s.entries_added, Some(2));
        assert_eq!(s.max_deleted_id, Some(StreamId::default()));
        assert_eq!(s.groups[0].entries_read, Some(u64::MAX));
        let mut tail = vec![0x81];
        tail.extend_from_slice(&[0xFF; 8]);
        tail.extend_from_slice(&[0, 1, 1, b'c']);
        tail.extend_from_slice(&42i64.to_le_bytes());
        tail.push(0);
        assert!(out.ends_with(&tail), "{out:02x?}");
        // v3: active time = seen time when the source has none.
        let out = encode(&v, redis(11)).1;
        let s = crate::read::stream_value::StreamValue::parse(&out, 3).unwrap();
        assert_eq!(s.groups[0].consumers[0].active_time, Some(42));
    }

    #[test]
    fn uncompressed_and_module_pass_through() {
        let v = OwnedValue::List(vec![b"abc".repeat(100); 3]);
        let mut lzf = Vec::new();
        let mut plain = Vec::new();
        Encoder::default().encode(&v, redis(12), &mut lzf).unwrap();
        let opts = EncodeOptions { compression: Compression::Off, ..EncodeOptions::default() };
        Encoder::new(opts).encode(&v, redis(12), &mut plain).unwrap();
        assert!(lzf.len() < plain.len());
        assert_eq!(without_lzf(Encoding::ListQuicklist2, &lzf), Some(plain.clone()));
        assert_eq!(without_lzf(Encoding::ListQuicklist2, &plain), Some(plain));
        let (name, encver) = module_name(0xABCDEF << 10 | 3);
        let payload = vec![2, 7, 0];
        let m = OwnedValue::Module { id: 0xABCDEF << 10 | 3, name, encver, payload: payload.clone() };
        let (enc, out) = encode(&m, redis(8));
        assert_eq!(enc, Encoding::Module2);
        let mut want = Vec::new();
        encode_length(0xABCDEF << 10 | 3, &mut want);
        want.extend_from_slice(&payload);
        assert_eq!(out, want);
    }
}
