//! The type-byte table: which [`Encoding`] a key record's type byte means in a file of each flavor and version,
//! the [`LogicalType`] it stands for, and the version feature it needs. The parser dispatches on it; the writer
//! and the survey ask it what a target holds.

use super::Header;
use crate::read::header::Flavor;

/// The encoding of a value: the type byte of the key record, interpreted for the file's flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// 0: string.
    String,
    /// 1: linked list of strings.
    ListLinked,
    /// 2: hashtable set.
    Set,
    /// 3: skiplist zset with text scores (RDB < 8).
    ZsetText,
    /// 4: hashtable hash.
    Hash,
    /// 5: skiplist zset with binary scores.
    Zset2,
    /// 7: module value.
    Module2,
    /// 9: hash as zipmap.
    HashZipmap,
    /// 10: list as ziplist.
    ListZiplist,
    /// 11: set of integers as intset.
    SetIntset,
    /// 12: zset as ziplist.
    ZsetZiplist,
    /// 13: hash as ziplist.
    HashZiplist,
    /// 14: quicklist of ziplists.
    ListQuicklist,
    /// 15: stream, metadata v1.
    StreamV1,
    /// 16: hash as listpack.
    HashListpack,
    /// 17: zset as listpack.
    ZsetListpack,
    /// 18: quicklist of listpacks and plain nodes.
    ListQuicklist2,
    /// 19: stream, metadata v2.
    StreamV2,
    /// 20: set as listpack.
    SetListpack,
    /// 21: stream, metadata v3.
    StreamV3,
    /// 22 in REDIS files: Redis 7.4 pre-release hash with field TTLs (absolute).
    HashMetadataPreGa,
    /// 23 in REDIS files: Redis 7.4 pre-release listpack hash with field TTLs.
    HashListpackExPreGa,
    /// 24: hashtable hash with field TTLs (Redis 7.4+).
    HashMetadata,
    /// 25: listpack hash with field TTLs (Redis 7.4+).
    HashListpackEx,
    /// 22 in VALKEY files: Valkey hash with field expiries (HASH_2).
    ValkeyHash2,
}

/// The logical Redis type of a value, whatever its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LogicalType {
    /// String.
    String,
    /// List.
    List,
    /// Set.
    Set,
    /// Sorted set.
    ZSet,
    /// Hash.
    Hash,
    /// Stream.
    Stream,
    /// Module value.
    Module,
}

impl LogicalType {
    /// The name `TYPE` returns (`string`, `list`, `set`, `zset`, `hash`, `stream`, `module`).
    pub fn name(&self) -> &'static str {
        match self {
            LogicalType::String => "string",
            LogicalType::List => "list",
            LogicalType::Set => "set",
            LogicalType::ZSet => "zset",
            LogicalType::Hash => "hash",
            LogicalType::Stream => "stream",
            LogicalType::Module => "module",
        }
    }

    /// Parses a `TYPE`-style name.
    pub fn from_name(s: &str) -> Option<LogicalType> {
        Some(match s {
            "string" => LogicalType::String,
            "list" => LogicalType::List,
            "set" => LogicalType::Set,
            "zset" | "sortedset" => LogicalType::ZSet,
            "hash" => LogicalType::Hash,
            "stream" => LogicalType::Stream,
            "module" => LogicalType::Module,
            _ => return None,
        })
    }
}

/// The `TYPE` name.
impl std::fmt::Display for LogicalType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A `TYPE`-style name ([`LogicalType::from_name`]).
impl std::str::FromStr for LogicalType {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<LogicalType> {
        LogicalType::from_name(s).ok_or_else(|| {
            crate::Error::without_offset(crate::ErrorKind::Invalid(format!(
                "unknown type {s:?}: expected string, list, set, zset, hash, stream or module"
            )))
        })
    }
}

/// The encoding's short name ([`Encoding::name`]).
impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Encoding {
    /// Interprets a type byte for a file with `header`; `None` if it is not a value type there.
    pub fn from_type_byte(b: u8, header: Header) -> Option<Encoding> {
        use Encoding::*;
        let e = match (b, header.flavor) {
            (0, _) => String,
            (1, _) => ListLinked,
            (2, _) => Set,
            (3, _) => ZsetText,
            (4, _) => Hash,
            (5, _) => Zset2,
            (7, _) => Module2,
            (9, _) => HashZipmap,
            (10, _) => ListZiplist,
            (11, _) => SetIntset,
            (12, _) => ZsetZiplist,
            (13, _) => HashZiplist,
            (14, _) => ListQuicklist,
            (15, _) => StreamV1,
            (16, _) => HashListpack,
            (17, _) => ZsetListpack,
            (18, _) => ListQuicklist2,
            (19, _) => StreamV2,
            (20, _) => SetListpack,
            (21, _) => StreamV3,
            (22, Flavor::Redis) => HashMetadataPreGa,
            (23, Flavor::Redis) => HashListpackExPreGa,
            (24, Flavor::Redis) => HashMetadata,
            (25, Flavor::Redis) => HashListpackEx,
            (22, Flavor::Valkey) => ValkeyHash2,
            _ => return None,
        };
        (e.min_redis_level() <= header.redis_level()).then_some(e)
    }

    /// The type byte this encoding is written as.
    pub fn type_byte(&self) -> u8 {
        use Encoding::*;
        match self {
            String => 0,
            ListLinked => 1,
            Set => 2,
            ZsetText => 3,
            Hash => 4,
            Zset2 => 5,
            Module2 => 7,
            HashZipmap => 9,
            ListZiplist => 10,
            SetIntset => 11,
            ZsetZiplist => 12,
            HashZiplist => 13,
            ListQuicklist => 14,
            StreamV1 => 15,
            HashListpack => 16,
            ZsetListpack => 17,
            ListQuicklist2 => 18,
            StreamV2 => 19,
            SetListpack => 20,
            StreamV3 => 21,
            HashMetadataPreGa | ValkeyHash2 => 22,
            HashListpackExPreGa => 23,
            HashMetadata => 24,
            HashListpackEx => 25,
        }
    }

    /// The version feature this encoding stands for, when it is more than a layout: streams, module values,
    /// hash field TTLs. A target without it cannot hold the value in any encoding.
    pub fn feature(&self) -> Option<crate::read::Feature> {
        use crate::read::Feature;
        use Encoding::*;
        match self {
            StreamV1 | StreamV2 | StreamV3 => Some(Feature::Streams),
            Module2 => Some(Feature::ModuleValues),
            HashMetadataPreGa | HashListpackExPreGa | HashMetadata | HashListpackEx | ValkeyHash2 => {
                Some(Feature::FieldTtls)
            }
            _ => None,
        }
    }

    /// The first RDB version (Redis numbering; Valkey 80 counts as 11) whose files may hold this encoding.
    /// `ValkeyHash2` exists only in `VALKEY` files.
    pub fn min_redis_level(&self) -> u32 {
        use Encoding::*;
        match self {
            String | ListLinked | Set | ZsetText | Hash => 1,
            HashZipmap | ListZiplist | SetIntset | ZsetZiplist => 2,
            HashZiplist => 4,
            ListQuicklist => 7,
            Zset2 | Module2 => 8,
            StreamV1 => 9,
            HashListpack | ZsetListpack | ListQuicklist2 | StreamV2 => 10,
            SetListpack | StreamV3 | ValkeyHash2 => 11,
            HashMetadataPreGa | HashListpackExPreGa | HashMetadata | HashListpackEx => 12,
        }
    }

    /// Whether a file with `header` can hold this encoding.
    pub fn allowed_in(&self, header: Header) -> bool {
        Encoding::from_type_byte(self.type_byte(), header) == Some(*self)
    }

    /// The logical type.
    pub fn logical_type(&self) -> LogicalType {
        use Encoding::*;
        match self {
            String => LogicalType::String,
            ListLinked | ListZiplist | ListQuicklist | ListQuicklist2 => LogicalType::List,
            Set | SetIntset | SetListpack => LogicalType::Set,
            ZsetText | Zset2 | ZsetZiplist | ZsetListpack => LogicalType::ZSet,
            Hash | HashZipmap | HashZiplist | HashListpack | HashMetadataPreGa | HashListpackExPreGa | HashMetadata
            | HashListpackEx | ValkeyHash2 => LogicalType::Hash,
            StreamV1 | StreamV2 | StreamV3 => LogicalType::Stream,
            Module2 => LogicalType::Module,
        }
    }

    /// A short name for the encoding as stored in the file.
    pub fn name(&self) -> &'static str {
        use Encoding::*;
        match self {
            String => "string",
            ListLinked => "linkedlist",
            Set | Hash => "hashtable",
            ZsetText | Zset2 => "skiplist",
            Module2 => "module",
            HashZipmap => "zipmap",
            ListZiplist | ZsetZiplist | HashZiplist => "ziplist",
            SetIntset => "intset",
            ListQuicklist => "quicklist",
            ListQuicklist2 => "quicklist2",
            HashListpack | ZsetListpack | SetListpack => "listpack",
            StreamV1 => "stream-v1",
            StreamV2 => "stream-v2",
            StreamV3 => "stream-v3",
            HashMetadataPreGa | HashMetadata | ValkeyHash2 => "hashtable-ttl",
            HashListpackExPreGa | HashListpackEx => "listpack-ttl",
        }
    }
}
