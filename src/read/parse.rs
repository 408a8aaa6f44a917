//! The record parser: one `match` on the opcode/type byte, `nom` primitives below it; the type-byte table is in
//! [`super::encoding`], the deep checks of embedded blobs in `validate`.
//!
//! Parsing a record walks it to its end (that is how its raw span is known) and, with deep validation on, checks
//! every embedded blob the way Redis's `sanitize-dump-payload yes` does — where Redis and Valkey differ (a NaN
//! listpack score, stream node counts), by the file's flavor. Oddities the servers load are noted as warnings
//! (see [`super::warn`]) and collected per record. A parse is all-or-nothing: on
//! `Incomplete` nothing in the parser changes, so a streaming reader can refill its buffer and try again.

use super::encoding::Encoding;
use super::validate::*;
use super::warn::{self, Warning, WarningKind, Warnings};
use super::{Entry, Expiry, Header, RecordKind, Value, module, stream_value};
use crate::error::{Error, ErrorKind, Result};
use crate::format::length::{PError, PResult, array, le_i32, le_i64, length, take, u8 as byte};
use crate::format::string::{RdbStr, rdb_str};
use crate::read::header::Flavor;
use nom::Err as NomErr;

/// How much checking the reader does. Start from [`ReadOptions::default`] (everything on) or
/// [`ReadOptions::fast`] and change fields or use the `with_` setters; new options may be added.
///
/// ```
/// let opts = rdbkit::read::ReadOptions::default().with_checksum(false);
/// assert!(opts.deep && !opts.verify_checksum);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Validate every embedded blob (ziplist, listpack, intset, zipmap, stream) and LZF string the way Redis's
    /// `sanitize-dump-payload yes` does: structure, counts, ordering, duplicates. On by default; turn it off to
    /// only walk records (a key scan is then several times faster).
    pub deep: bool,
    /// Compare the stored CRC-64 with the bytes read, and fail on a mismatch. On by default.
    pub verify_checksum: bool,
    /// With `deep`: refuse a database that holds the same key twice, as the servers do (see [`super::dupkeys`]
    /// for how, and the memory it takes: about 11–21 bytes per key on a slice, twice that on a stream, and at most
    /// 16 MiB when a [`super::ChunkedReader`] reads a file, beyond which 8 bytes per key go to a temporary file).
    /// On by default; it has no effect without `deep`.
    pub duplicate_keys: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { deep: true, verify_checksum: true, duplicate_keys: true }
    }
}

impl ReadOptions {
    /// Walk records only: no deep validation (the checksum is still verified).
    pub fn fast() -> Self {
        ReadOptions { deep: false, verify_checksum: true, duplicate_keys: false }
    }

    /// With or without deep validation ([`ReadOptions::deep`]).
    #[must_use]
    pub fn with_deep(mut self, deep: bool) -> Self {
        self.deep = deep;
        self
    }

    /// With or without the checksum comparison ([`ReadOptions::verify_checksum`]).
    #[must_use]
    pub fn with_checksum(mut self, verify: bool) -> Self {
        self.verify_checksum = verify;
        self
    }

    /// With or without the duplicate-key check ([`ReadOptions::duplicate_keys`]).
    #[must_use]
    pub fn with_duplicate_keys(mut self, check: bool) -> Self {
        self.duplicate_keys = check;
        self
    }

    /// Whether the file-level checks of deep validation run: duplicate keys (with `duplicate_keys`) and function
    /// library names. They need the records in file order, so the readers run them, never a [`super::DeepCheck`].
    pub(crate) fn file_checks(&self) -> bool {
        self.deep
    }
}

/// Where the EOF opcode is in a complete EOF record `raw`: after any metadata opcodes the server ignores before
/// it (an expiry directly before EOF).
pub(crate) fn eof_opcode_at(raw: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&op) = raw.get(at) {
        at += match op {
            0xFC => 9,
            0xFD => 5,
            0xF9 => 2,
            0xF8 => match length(&raw[at + 1..]) {
                Ok((r, _)) => raw.len() - at - r.len(),
                Err(_) => return at,
            },
            _ => return at,
        };
    }
    at.min(raw.len().saturating_sub(1))
}

/// The outcome of one parse attempt.
pub(crate) enum Step<'a> {
    /// A complete record of `usize` bytes.
    Done(usize, RecordKind<'a>),
    /// At least this many more bytes are needed (0 when unknown).
    Need(usize),
}

/// Parser state that spans records: the file header and the current database.
#[derive(Debug)]
pub(crate) struct Parser {
    pub header: Header,
    pub db: u64,
    pub opts: ReadOptions,
    scratch: Vec<u8>,
    dups: Dups,
    /// Oddities of the records parsed so far.
    pub warnings: Warnings,
    /// Keep only the warnings that deep validation alone finds (a [`super::DeepCheck`] beside a walk that
    /// reports the others).
    pub deep_warnings_only: bool,
    /// The reader's duplicate-key table, to prefetch the next key's slot (see [`Parser::prefetch_next_key`]).
    pub key_hint: Option<super::dupkeys::PrefetchHint>,
    /// The record offsets and duplicate-key hashes of the last two keys [`Parser::prefetch_next_key`] prefetched,
    /// so that the checks of those records do not hash their keys again (see [`Parser::key_memo_for`]).
    pub key_memo: [Option<(u64, u64)>; 2],
}

impl Parser {
    pub fn new(header: Header, opts: ReadOptions) -> Self {
        Parser {
            header,
            db: 0,
            opts,
            scratch: Vec::new(),
            dups: Dups::default(),
            warnings: Warnings::default(),
            deep_warnings_only: false,
            key_hint: None,
            key_memo: [None; 2],
        }
    }

    /// Parses one record from the start of `input` (which is at file offset `offset`).
    pub fn parse<'a>(&mut self, input: &'a [u8], offset: u64) -> Result<Step<'a>> {
        let mut key_ctx: Option<RdbStr<'a>> = None;
        warn::clear_notes();
        let mut ctx =
            Ctx { header: self.header, deep: self.opts.deep, scratch: &mut self.scratch, dups: &mut self.dups };
        let res = record(&mut ctx, input, self.db, &mut key_ctx);
        match res {
            Ok((rest, kind)) => {
                let db = self.db;
                if let RecordKind::SelectDb { db } = kind {
                    self.db = db;
                }
                let (warnings, deep_only) = (&mut self.warnings, self.deep_warnings_only);
                warn::take_notes(input, offset, |at, kind| {
                    if deep_only && !kind.is_deep() {
                        return;
                    }
                    let key = key_ctx.and_then(|k| k.decode().ok()).map(|k| k.into_owned());
                    warnings.push(Warning { offset: at, db: Some(db), key, kind });
                });
                Ok(Step::Done(input.len() - rest.len(), kind))
            }
            Err(NomErr::Incomplete(n)) => Ok(Step::Need(match n {
                nom::Needed::Size(s) => s.get(),
                nom::Needed::Unknown => 0,
            })),
            Err(NomErr::Error(e)) | Err(NomErr::Failure(e)) => {
                let off = e.offset_in(input, offset);
                let mut err = e.error.at(off).in_db(self.db);
                // The record's bytes were all there (running out of input comes back as `Incomplete`), so a
                // "truncated" report from inside a nested structure means the structure itself is malformed.
                if let ErrorKind::Truncated { what, needed } = *err.kind() {
                    err =
                        Error::corrupt("blob", format!("ends inside its {what} ({needed} more byte(s) expected)"), off)
                            .in_db(self.db);
                }
                if let Some(k) = key_ctx
                    && let Ok(k) = k.decode()
                {
                    err = err.for_key(&k);
                }
                Err(err)
            }
        }
    }
}

impl Parser {
    /// Prefetches the duplicate-key slot of the key record at the start of `next` (at file offset `offset`; if it
    /// is a key record with a raw key), so that the memory access overlaps the work on the current record instead
    /// of stalling the next check; the key's hash is kept in [`Parser::key_memo`] for that check. A reader may prefetch the next key before
    /// checking the current one, so that the two memory accesses overlap.
    #[inline]
    pub fn prefetch_next_key(&mut self, next: &[u8], offset: u64) {
        self.key_memo = [self.key_memo[1], None];
        let Some(hint) = self.key_hint else { return };
        let mut at = 0usize;
        loop {
            match next.get(at) {
                Some(0xFC) => at += 9,
                Some(0xFD) => at += 5,
                Some(0xF9) => at += 2,
                Some(0xF8) => match next.get(at + 1..).map(length) {
                    Some(Ok((r, _))) => at = next.len() - r.len(),
                    _ => return,
                },
                Some(&t) if t < 0xF0 => break,
                _ => return,
            }
        }
        if let Some(rest) = next.get(at + 1..)
            && let Ok((_, RdbStr::Raw(k))) = rdb_str(rest)
        {
            self.key_memo[1] = Some((offset, hint.prefetch(self.db, k)));
        }
    }

    /// The memo of [`Parser::key_memo`] for the record at `offset`, if its key was prefetched.
    #[inline]
    pub fn key_memo_for(&self, offset: u64) -> Option<(u64, u64)> {
        self.key_memo.iter().flatten().find(|m| m.0 == offset).copied()
    }
}

pub(super) struct Ctx<'s> {
    pub(super) header: Header,
    pub(super) deep: bool,
    pub(super) scratch: &'s mut Vec<u8>,
    pub(super) dups: &'s mut Dups,
}

pub(super) fn corrupt<'a, T>(at: &'a [u8], structure: &'static str, detail: impl Into<String>) -> PResult<'a, T> {
    PError::nested(at, Error::corrupt(structure, detail, 0))
}

fn record<'a>(
    ctx: &mut Ctx<'_>,
    input: &'a [u8],
    db: u64,
    key_ctx: &mut Option<RdbStr<'a>>,
) -> PResult<'a, RecordKind<'a>> {
    let (i, op) = byte(input)?;
    match op {
        0xFF => {
            if ctx.header.has_checksum() {
                let (i, c) = array::<8>(i)?;
                Ok((i, RecordKind::Eof { checksum: Some(u64::from_le_bytes(c)) }))
            } else {
                Ok((i, RecordKind::Eof { checksum: None }))
            }
        }
        0xFE => {
            let (i, db) = length(i)?;
            Ok((i, RecordKind::SelectDb { db }))
        }
        0xFB => {
            let (i, db_size) = length(i)?;
            let (i, expires_size) = length(i)?;
            Ok((i, RecordKind::ResizeDb { db_size, expires_size }))
        }
        0xFA => {
            let (i, key) = rdb_str(i)?;
            let (i, value) = rdb_str(i)?;
            if ctx.deep {
                check_str(ctx, input, &key)?;
                check_str(ctx, input, &value)?;
            }
            Ok((i, RecordKind::Aux { key, value }))
        }
        0xF7 => {
            let (i, aux) = module::module_aux(i)?;
            Ok((i, RecordKind::ModuleAux(aux)))
        }
        0xF6 => PError::fail(
            input,
            ErrorKind::Unsupported(
                "pre-release function record (opcode 246, Redis 7.0-rc1/rc2); Redis 7.2+ refuses it too".into(),
            ),
        ),
        0xF5 => {
            let (i, code) = rdb_str(i)?;
            if ctx.deep {
                check_str(ctx, input, &code)?;
                let text = code.decode().map_err(|e| NomErr::Failure(PError { at: input, error: e.at(0) }))?;
                if let Err(why) = super::library_metadata(&text) {
                    return corrupt(input, "function library", why);
                }
                // Valkey compiles the code as a C string: what follows a NUL is not code.
                #[cfg(feature = "lua")]
                let code = match ctx.header.flavor {
                    Flavor::Valkey => text.split(|&b| b == 0).next().unwrap_or_default(),
                    Flavor::Redis => &text[..],
                };
                #[cfg(feature = "lua")]
                if let Some(why) = super::lua_compile_error(code) {
                    return corrupt(input, "function library", why);
                }
            }
            Ok((i, RecordKind::Function { code }))
        }
        0xF4 => {
            let (i, slot) = length(i)?;
            let (i, size) = length(i)?;
            let (i, expires_size) = length(i)?;
            if slot >= 16384 {
                return PError::fail(input, ErrorKind::OutOfRange { what: "slot number", value: slot });
            }
            Ok((i, RecordKind::SlotInfo { slot, size, expires_size }))
        }
        0xF3 | 0xF2 if ctx.header.flavor == Flavor::Valkey => PError::fail(
            input,
            ErrorKind::Unsupported(format!(
                "Valkey opcode {op} ({}) is not decoded by this version of rdbkit",
                if op == 0xF3 { "SLOT_IMPORT" } else { "UPDATE" }
            )),
        ),
        _ => entry(ctx, input, db, key_ctx),
    }
}

fn entry<'a>(
    ctx: &mut Ctx<'_>,
    input: &'a [u8],
    db: u64,
    key_ctx: &mut Option<RdbStr<'a>>,
) -> PResult<'a, RecordKind<'a>> {
    let mut i = input;
    let mut expiry = None;
    let mut idle = None;
    let mut freq = None;
    let (type_byte, at_type) = loop {
        let (r, op) = byte(i)?;
        match op {
            0xFD => {
                let (r, s) = le_i32(r)?;
                expiry = Some(Expiry::Seconds(s));
                i = r;
            }
            0xFC => {
                let (r, ms) = le_i64(r)?;
                expiry = Some(Expiry::Millis(ms));
                i = r;
            }
            0xF8 => {
                let (r, v) = length(r)?;
                idle = Some(v);
                i = r;
            }
            0xF9 => {
                let (r, v) = byte(r)?;
                freq = Some(v);
                i = r;
            }
            _ => break (op, i),
        }
    };
    if type_byte == 0xFF && at_type.len() != input.len() {
        // Metadata opcodes, then EOF: the server reads them and stops at EOF, ignoring them.
        warn::note(input, WarningKind::MetadataBeforeEof);
        let (i, kind) = record(ctx, at_type, db, key_ctx)?;
        return Ok((i, kind));
    }
    let i = &at_type[1..];
    let Some(encoding) = Encoding::from_type_byte(type_byte, ctx.header) else {
        if type_byte == 6 {
            let (_, id) = length(i).unwrap_or((i, 0));
            let name = if id == 0 { "unknown".to_string() } else { module::module_name(id).0 };
            return PError::fail(
                at_type,
                ErrorKind::Unsupported(format!(
                    "pre-release module value (type 6, Redis 4.0-rc) of module {name}: it cannot be skipped without the module"
                )),
            );
        }
        return PError::fail(
            at_type,
            ErrorKind::UnknownType { byte: type_byte, magic: ctx.header.flavor.name(), version: ctx.header.version },
        );
    };
    let (i, key) = rdb_str(i)?;
    *key_ctx = Some(key);
    if ctx.deep {
        check_str(ctx, at_type, &key)?;
    }
    let value_start = i;
    let (rest, ()) = value(ctx, encoding, i)?;
    let raw = &value_start[..value_start.len() - rest.len()];
    Ok((rest, RecordKind::Entry(Entry { db, key, expiry, idle, freq, value: Value { encoding, raw } })))
}

/// Walks one value of `encoding` (validating it when `ctx.deep`).
fn value<'a>(ctx: &mut Ctx<'_>, encoding: Encoding, i: &'a [u8]) -> PResult<'a, ()> {
    use Encoding::*;
    let deep = ctx.deep;
    match encoding {
        String => {
            let (r, s) = rdb_str(i)?;
            if deep {
                check_str(ctx, i, &s)?;
            }
            Ok((r, ()))
        }
        ListLinked => {
            let (mut r, n) = length(i)?;
            if !deep && let Some(r) = skip_strs(r, n, 1, 0) {
                return Ok((r, ()));
            }
            for _ in 0..n {
                let at = r;
                let (r2, s) = rdb_str(r)?;
                if deep {
                    check_str(ctx, at, &s)?;
                }
                r = r2;
            }
            Ok((r, ()))
        }
        Set => {
            let (r, n) = length(i)?;
            if !deep && let Some(r) = skip_strs(r, n, 1, 0) {
                return Ok((r, ()));
            }
            let walk = |r| rdb_str(r).map(|(r, m)| (r, (m, ())));
            keyed_items(ctx, i, r, n, ("set", "duplicate member"), walk, |_, at, ()| Ok((at, ())))
        }
        Hash => {
            let (r, n) = length(i)?;
            if !deep && let Some(r) = skip_strs(r, n, 2, 0) {
                return Ok((r, ()));
            }
            let walk = |r| {
                let (r, f) = rdb_str(r)?;
                let (r, v) = rdb_str(r)?;
                Ok((r, (f, v)))
            };
            keyed_items(ctx, i, r, n, ("hash", "duplicate field"), walk, |ctx, at, v| check_str(ctx, at, &v))
        }
        ZsetText | Zset2 => {
            let (r, n) = length(i)?;
            if !deep
                && encoding == Zset2
                && let Some(r) = skip_strs(r, n, 1, 8)
            {
                return Ok((r, ()));
            }
            let walk = |r| {
                let (r, m) = rdb_str(r)?;
                let (r, score) = if encoding == Zset2 {
                    let (r, b) = array::<8>(r)?;
                    (r, f64::from_le_bytes(b))
                } else {
                    old_double(r)?
                };
                Ok((r, (m, score)))
            };
            let check = |_: &mut Ctx<'_>, at, score: f64| {
                if score.is_nan() { corrupt(at, "zset", "NaN score") } else { Ok((at, ())) }
            };
            keyed_items(ctx, i, r, n, ("zset", "duplicate member"), walk, check)
        }
        Module2 => {
            let (r, _id) = module::module_value(i)?;
            Ok((r, ()))
        }
        HashZipmap => blob(ctx, i, Blob::Zipmap),
        ListZiplist => blob(ctx, i, Blob::Ziplist(Pairs::No)),
        ZsetZiplist => blob(ctx, i, Blob::Ziplist(Pairs::Zset)),
        HashZiplist => blob(ctx, i, Blob::Ziplist(Pairs::Hash)),
        SetIntset => blob(ctx, i, Blob::Intset),
        HashListpack => blob(ctx, i, Blob::Listpack(Pairs::Hash)),
        ZsetListpack => blob(ctx, i, Blob::Listpack(Pairs::Zset)),
        SetListpack => blob(ctx, i, Blob::Listpack(Pairs::Set)),
        ListQuicklist => {
            let (mut r, n) = length(i)?;
            for _ in 0..n {
                let (r2, ()) = blob(ctx, r, Blob::QuicklistZiplist)?;
                r = r2;
            }
            Ok((r, ()))
        }
        ListQuicklist2 => {
            let (mut r, n) = length(i)?;
            for _ in 0..n {
                let at = r;
                let (r2, container) = length(r)?;
                let kind = match container {
                    1 => Blob::Plain,
                    2 => Blob::Listpack(Pairs::No),
                    _ => return corrupt(at, "quicklist", format!("node container {container} is not 1 or 2")),
                };
                let (r2, ()) = blob(ctx, r2, kind)?;
                r = r2;
            }
            Ok((r, ()))
        }
        StreamV1 | StreamV2 | StreamV3 => {
            let version = match encoding {
                StreamV1 => 1,
                StreamV2 => 2,
                _ => 3,
            };
            stream_value::walk(i, version, deep, ctx.header.flavor == Flavor::Valkey, ctx.scratch)
        }
        HashMetadataPreGa | HashMetadata => {
            let (r, min_expire) = if encoding == HashMetadata {
                let (r, m) = le_i64(i)?;
                (r, Some(m))
            } else {
                (i, None)
            };
            let (r, n) = length(r)?;
            let walk = |r| {
                let (r, ttl) = length(r)?;
                let (r, f) = rdb_str(r)?;
                let (r, v) = rdb_str(r)?;
                Ok((r, (f, (ttl, v))))
            };
            let check = |ctx: &mut Ctx<'_>, at, (ttl, v): (u64, RdbStr<'_>)| {
                check_str(ctx, at, &v)?;
                let abs = match min_expire {
                    Some(_) if ttl == 0 => 0,
                    Some(m) => (ttl as i128) + (m as i128) - 1,
                    None => ttl as i128,
                };
                if !(0..=EXPIRE_MAX as i128).contains(&abs) {
                    return corrupt(at, "hash", format!("field expiry {abs} out of range"));
                }
                Ok((at, ()))
            };
            keyed_items(ctx, r, r, n, ("hash", "duplicate field"), walk, check)
        }
        HashListpackEx | HashListpackExPreGa => {
            let r = if encoding == HashListpackEx { le_i64(i)?.0 } else { i };
            blob(ctx, r, Blob::Listpack(Pairs::HashTtl))
        }
        ValkeyHash2 => {
            let (r, n) = length(i)?;
            let walk = |r| {
                let (r, f) = rdb_str(r)?;
                let (r, v) = rdb_str(r)?;
                let (r, exp) = le_i64(r)?;
                Ok((r, (f, (v, exp))))
            };
            let check = |ctx: &mut Ctx<'_>, at, (v, exp): (RdbStr<'_>, i64)| {
                check_str(ctx, at, &v)?;
                if exp < -1 {
                    return corrupt(at, "hash", format!("field expiry {exp} is below -1"));
                }
                Ok((at, ()))
            };
            keyed_items(ctx, i, r, n, ("hash", "duplicate field"), walk, check)
        }
    }
}

/// Walks `n` items of a hashtable-encoded collection from `r`, each holding one STR that must be distinct (a
/// member or a field) among other parts: `walk` parses an item into that key and the rest, and with deep
/// validation `check` checks the rest. The order of the checks is fixed: the whole item is parsed, then its key
/// decoded, then the rest checked, and only then does the key join the duplicate check (see [`dup_scope`]).
/// Duplicates are reported at their offset in `base`.
fn keyed_items<'a, T>(
    ctx: &mut Ctx<'_>,
    base: &'a [u8],
    r: &'a [u8],
    n: u64,
    (structure, detail): (&'static str, &'static str),
    walk: impl Fn(&'a [u8]) -> PResult<'a, (RdbStr<'a>, T)>,
    check: impl Fn(&mut Ctx<'_>, &'a [u8], T) -> PResult<'a, ()>,
) -> PResult<'a, ()> {
    let deep = ctx.deep;
    dup_scope(ctx, base, deep, structure, detail, |ctx| {
        let mut r = r;
        for _ in 0..n {
            let at = r;
            let (rest, (key, item)) = walk(r)?;
            if deep {
                let k = dup_key(ctx, base, at, &key)?;
                check(ctx, at, item)?;
                ctx.dups.push(k);
            }
            r = rest;
        }
        Ok((r, ()))
    })
}

/// Skips `n` items of `strs` STRs followed by `extra` fixed bytes each (a set: 1, 0; a hash: 2, 0; a binary-score
/// zset: 1, 8) without building any result: the walk of a key scan through big hashtable-encoded collections.
/// Returns `None` on anything but a well-formed, complete run, and the caller then walks the items the general
/// way, which reports the exact error or how many more bytes are needed.
#[inline]
fn skip_strs(i: &[u8], n: u64, strs: usize, extra: usize) -> Option<&[u8]> {
    let mut pos = 0usize;
    let be = |at: usize, k: usize| -> Option<u64> {
        let b = i.get(at..at + k)?;
        Some(b.iter().fold(0u64, |v, &x| v << 8 | u64::from(x)))
    };
    // A plain length (never a string special encoding) and the bytes it took.
    let len = |at: usize| -> Option<(u64, usize)> {
        let b = *i.get(at)?;
        match b >> 6 {
            0 => Some((u64::from(b & 0x3F), 1)),
            1 => Some((u64::from(b & 0x3F) << 8 | u64::from(*i.get(at + 1)?), 2)),
            2 if b == 0x80 => Some((be(at + 1, 4)?, 5)),
            2 if b == 0x81 => Some((be(at + 1, 8)?, 9)),
            _ => None,
        }
    };
    for _ in 0..n {
        for _ in 0..strs {
            let b = *i.get(pos)?;
            let skip = if b >> 6 == 3 {
                match b & 0x3F {
                    0 => 2,
                    1 => 3,
                    2 => 5,
                    3 => {
                        let (clen, a) = len(pos + 1)?;
                        let (ulen, c) = len(pos + 1 + a)?;
                        if ulen == 0 || ulen > clen.saturating_mul(crate::format::string::LZF_MAX_RATIO) {
                            return None;
                        }
                        usize::try_from(clen).ok()?.checked_add(1 + a + c)?
                    }
                    _ => return None,
                }
            } else {
                let (l, a) = len(pos)?;
                usize::try_from(l).ok()?.checked_add(a)?
            };
            pos = pos.checked_add(skip)?;
        }
        pos = pos.checked_add(extra)?;
        if pos > i.len() {
            return None;
        }
    }
    Some(&i[pos..])
}

/// Largest field expiry Redis accepts (48 bits, `EB_EXPIRE_TIME_MAX`).
pub const EXPIRE_MAX: i64 = (1 << 48) - 1;

/// Runs `walk`, which walks a collection (pushing the keys that must be distinct into `ctx.dups` when `enabled`),
/// then reports the first repeated key at its position in `base` (the start of the keys' positions).
///
/// Checking once at the end finds the same first duplicate as checking each key as it is read: keys are pushed
/// only once everything else about their item has been checked, so when `walk` stops early (an error, or more
/// input needed), a duplicate among the keys pushed so far came first and is reported instead.
fn dup_scope<'a>(
    ctx: &mut Ctx<'_>,
    base: &'a [u8],
    enabled: bool,
    structure: &'static str,
    detail: &'static str,
    mut walk: impl FnMut(&mut Ctx<'_>) -> PResult<'a, ()>,
) -> PResult<'a, ()> {
    if !enabled {
        return walk(ctx);
    }
    ctx.dups.clear();
    let res = walk(ctx);
    if ctx.dups.suspect() {
        // Two keys share a hash: walk again keeping the keys themselves, to find the first real repeat.
        ctx.dups.start_exact();
        let _ = walk(ctx);
        if let Some(pos) = ctx.dups.first_dup(base) {
            return corrupt(&base[pos..], structure, detail);
        }
    }
    res
}

/// The duplicate-detection key of string `s` of an item at `at` (a suffix of `base`), with the check `check_str`
/// does: an LZF string is decompressed (into the key arena) and must decode.
fn dup_key<'a>(
    ctx: &mut Ctx<'_>,
    base: &[u8],
    at: &'a [u8],
    s: &RdbStr<'_>,
) -> std::result::Result<DupKey, NomErr<PError<'a>>> {
    let pos = base.len() - at.len();
    ctx.dups.str_key(base, pos, s).map_err(|e| NomErr::Failure(PError { at, error: e.at(0) }))
}

/// Parses an old-form (text) double: a length byte, with 253/254/255 meaning NaN/+inf/−inf, else that many bytes
/// read as the servers' `sscanf("%lg")` reads them (extra bytes are a warning).
pub(crate) fn old_double(i: &[u8]) -> PResult<'_, f64> {
    let (r, len) = byte(i)?;
    match len {
        253 => Ok((r, f64::NAN)),
        254 => Ok((r, f64::INFINITY)),
        255 => Ok((r, f64::NEG_INFINITY)),
        n => {
            let (r, text) = take(r, usize::from(n))?;
            match crate::format::double::scan_text_double(text) {
                Some(s) => {
                    if !s.whole {
                        warn::note(i, WarningKind::TextDoubleTrailing);
                    }
                    Ok((r, s.value))
                }
                None => corrupt(i, "double", format!("{} is not a number", crate::escape_bytes(text))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Flavor;
    use proptest::prelude::*;

    /// The general walk of `n` items of `strs` STRs and `extra` bytes: the remaining input, or `None` on any
    /// error or shortage.
    fn walk_items(i: &[u8], n: u64, strs: usize, extra: usize) -> Option<&[u8]> {
        let mut r = i;
        for _ in 0..n {
            for _ in 0..strs {
                r = rdb_str(r).ok()?.0;
            }
            r = take(r, extra).ok()?.0;
        }
        Some(r)
    }

    /// Bytes that are mostly well-formed STRs (all encodings, LZF headers included), with some noise.
    fn items() -> impl Strategy<Value = Vec<u8>> {
        let one = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..70).prop_map(|b| {
                let mut v = Vec::new();
                crate::format::length::encode_length(b.len() as u64, &mut v);
                v.extend_from_slice(&b);
                v
            }),
            // Lengths near the top of the range must not overflow the skip arithmetic.
            Just(vec![0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0]),
            Just(vec![0xC3, 0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x81, 0, 0, 0, 0, 0, 0, 0, 9]),
            (0u8..4, proptest::collection::vec(any::<u8>(), 4)).prop_map(|(k, b)| {
                let n = [1, 2, 4, 0][usize::from(k)];
                let mut v = vec![0xC0 | k];
                if k == 3 {
                    v.extend_from_slice(&[3, 9, 1, 2, 3]); // clen 3, ulen 9, 3 bytes
                } else {
                    v.extend_from_slice(&b[..n]);
                }
                v
            }),
            proptest::collection::vec(any::<u8>(), 1..6),
        ];
        proptest::collection::vec(one, 0..12).prop_map(|v| v.concat())
    }

    /// Parses one record `type byte, key "k", body` with and without deep validation; returns the deep error.
    fn deep_error(header: Header, ty: u8, body: &[u8]) -> Option<crate::Error> {
        let rec = [&[ty, 0x01, b'k'][..], body].concat();
        let fast = Parser::new(header, ReadOptions::fast()).parse(&rec, 100);
        assert!(matches!(fast, Ok(Step::Done(n, _)) if n == rec.len()), "the walk accepts it");
        match Parser::new(header, ReadOptions::default()).parse(&rec, 100) {
            Ok(Step::Done(n, _)) => {
                assert_eq!(n, rec.len());
                None
            }
            Ok(Step::Need(n)) => panic!("needs {n} more bytes"),
            Err(e) => Some(e),
        }
    }

    fn expect_corrupt(e: Option<crate::Error>, what: &str, offset: u64) {
        let e = e.expect("deep validation refuses it");
        assert!(e.to_string().contains(what), "{e}");
        assert_eq!(e.offset(), Some(offset), "{e}");
        assert_eq!(e.key(), Some(&b"k"[..]), "{e}");
    }

    /// The deep checks of hashtable-encoded collections: distinct members and fields (an integer and its text are
    /// the same member), finite scores, field expiries in range; the file offset names the offending item.
    #[test]
    fn hashtable_collections_deep_checks() {
        let redis = Header::new(Flavor::Redis, 12);
        // Items start at offset 104 (record at 100: type, key "k", count).
        assert!(deep_error(redis, 2, &[3, 1, b'a', 1, b'b', 1, b'c']).is_none());
        expect_corrupt(deep_error(redis, 2, &[3, 1, b'a', 1, b'b', 1, b'a']), "duplicate member", 108);
        expect_corrupt(deep_error(redis, 2, &[2, 1, b'5', 0xC0, 5]), "duplicate member", 106);
        expect_corrupt(deep_error(redis, 4, &[2, 1, b'f', 1, b'x', 1, b'f', 1, b'y']), "duplicate field", 108);
        let nan = f64::NAN.to_le_bytes();
        let one = 1f64.to_le_bytes();
        assert!(deep_error(redis, 5, &[&[1, 1, b'm'][..], &one].concat()).is_none());
        expect_corrupt(deep_error(redis, 5, &[&[2, 1, b'm'][..], &one, &[1, b'n'], &nan].concat()), "NaN score", 114);
        // Redis 7.4 hash with field TTLs: min expire 1000, then (ttl + 1000 - 1) must be at most 2^48 - 1.
        let min = 1000i64.to_le_bytes();
        let ok = [&min[..], &[1, 0, 1, b'f', 1, b'v']].concat();
        assert!(deep_error(redis, 24, &ok).is_none());
        let big = [&min[..], &[1, 0x81], &(1u64 << 48).to_be_bytes(), &[1, b'f', 1, b'v']].concat();
        expect_corrupt(deep_error(redis, 24, &big), "out of range", 112);
        // Valkey HASH_2: a field expiry below -1.
        let valkey = Header::new(Flavor::Valkey, 80);
        let exp = |e: i64| [&[1, 1, b'f', 1, b'v'][..], &e.to_le_bytes()].concat();
        assert!(deep_error(valkey, 22, &exp(-1)).is_none());
        expect_corrupt(deep_error(valkey, 22, &exp(-2)), "below -1", 104);
    }

    /// After a large collection, a small one uses (and clears) only the start of the set: repeats are still
    /// found, and nothing of the large one is left to make a fresh member look repeated.
    #[test]
    fn dups_small_after_large() {
        let mut d = Dups::default();
        d.clear();
        for v in 0..3000 {
            d.push(Dups::int_key(v as usize, v));
        }
        assert!(!d.suspect());
        assert_eq!(d.set.len(), 4096);
        for round in 0..3 {
            d.clear();
            assert_eq!(d.cap, 64, "a fresh collection starts small");
            assert!(d.set.iter().all(|&h| h == 0), "round {round}: the set is clear");
            for v in 0..40 {
                d.push(Dups::int_key(v as usize, v));
            }
            assert!(!d.suspect(), "members of the large collection are gone");
            d.push(Dups::int_key(40, 7));
            assert!(d.suspect(), "a repeat in the small collection is found");
        }
        // A collection that grows past the start reuses the vector and still finds repeats.
        d.clear();
        for v in 0..1000 {
            d.push(Dups::int_key(v as usize, v + 10_000));
        }
        assert!(!d.suspect());
        assert_eq!((d.set.len(), d.cap), (4096, 2048));
        d.push(Dups::int_key(1000, 10_999));
        assert!(d.suspect());
    }

    /// The score shapes recognised without parsing are numbers to `parse_text_double`; others go to it.
    #[test]
    fn plain_decimal_scores() {
        for yes in [&b"0"[..], b"12", b"-3", b"3.25", b"-0.5", b"007.100"] {
            assert!(plain_decimal(yes), "{yes:?}");
            assert!(crate::format::double::parse_text_double(yes).is_some_and(|v| !v.is_nan()));
        }
        for no in [&b""[..], b"-", b".5", b"5.", b"1e5", b"nan", b"+1", b" 1", b"1.2.3", b"--1", b"1-"] {
            assert!(!plain_decimal(no), "{no:?}");
        }
    }

    /// The fast pass only suspects; the exact pass tells a shared hash from a repeated key.
    #[test]
    fn dups_fast_pass_then_exact() {
        let base = b"aaabbb";
        let mut d = Dups::default();
        d.clear();
        for v in 0..10_000 {
            d.push(Dups::int_key(v as usize, v));
        }
        assert!(!d.suspect());
        // 10 000 hashes in a set at most 7/8 full: 16 384 slots.
        assert_eq!(d.set.len(), 16_384);
        // Two different keys forced to one hash: suspected, then cleared by the exact pass.
        d.clear();
        d.push(DupKey { hash: 7, pos: 0, src: KeySrc::Base(0, 3) });
        d.push(DupKey { hash: 7, pos: 3, src: KeySrc::Base(3, 3) });
        assert!(d.suspect());
        d.start_exact();
        d.push(DupKey { hash: 7, pos: 0, src: KeySrc::Base(0, 3) });
        d.push(DupKey { hash: 7, pos: 3, src: KeySrc::Base(3, 3) });
        assert_eq!(d.first_dup(base), None);
        // A real repeat is found at its second copy.
        d.clear();
        for pos in [0, 3, 1] {
            d.push(Dups::bytes_key(base, pos, &base[pos..pos + 2]));
        }
        assert!(d.suspect());
        d.start_exact();
        for pos in [0, 3, 1] {
            d.push(Dups::bytes_key(base, pos, &base[pos..pos + 2]));
        }
        assert_eq!(d.first_dup(base), Some(1));
    }

    /// Duplicates in listpacks and hashtable sets are still found, at the same offsets.
    #[test]
    fn collection_duplicates_after_the_fast_pass() {
        let redis = Header::new(Flavor::Redis, 11);
        let mut lp = Vec::new();
        crate::format::listpack::Listpack::encode([&b"a"[..], b"b", b"c", b"b"], &mut lp);
        let mut body = Vec::new();
        crate::format::length::encode_length(lp.len() as u64, &mut body);
        body.extend_from_slice(&lp);
        let e = deep_error(redis, 20, &body).expect("a set listpack with b twice");
        assert!(e.to_string().contains("duplicate"), "{e}");
        let mut lp = Vec::new();
        crate::format::listpack::Listpack::encode([&b"a"[..], b"b", b"c", b"d"], &mut lp);
        let mut body = Vec::new();
        crate::format::length::encode_length(lp.len() as u64, &mut body);
        body.extend_from_slice(&lp);
        assert!(deep_error(redis, 20, &body).is_none());
    }

    proptest! {
        /// Whenever the fast skip accepts a run, the general walk ends at the same place.
        #[test]
        fn skip_strs_agrees_with_the_general_walk(
            data in items(), n in 0u64..8, shape in prop_oneof![Just((1usize, 0usize)), Just((2, 0)), Just((1, 8))],
        ) {
            let fast = skip_strs(&data, n, shape.0, shape.1);
            let slow = walk_items(&data, n, shape.0, shape.1);
            if let Some(rest) = fast {
                prop_assert_eq!(Some(rest.len()), slow.map(|r| r.len()));
            }
            // And it only declines what the general walk would fail on (or a shortage it reports precisely).
            if slow.is_some() {
                prop_assert!(fast.is_some());
            }
        }
    }
}
