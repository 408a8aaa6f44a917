//! Reading RDB files: the record types, the record parser, and the readers built on it —
//! [`SliceReader`] over a byte slice (zero-copy), [`StreamReader`] over any `io::Read` (bounded memory, gzip
//! detected, page padding tolerated), and [`ChunkedReader`], which reads any `io::Read` into large buffers and
//! parses them on a second thread (the fast path for files, without mapping them).
//!
//! A file is a [`Header`] followed by [`Record`]s. Every record borrows from the input and keeps its raw bytes, so
//! it can be written out untouched; key records carry a [`Value`] that is decoded lazily (see [`value`]).
//!
//! With [`ReadOptions::default()`] (deep validation) a reader's verdict is the server's: it refuses what Redis 7.0
//! (RDB ≤ 10), Redis 8.2 (RDB 11–12) or Valkey 9.1 (`VALKEY080`) refuse with `sanitize-dump-payload yes` — the
//! same key twice in a database included ([`dupkeys`]) — and accepts what they load. What they load although no
//! server writes it is reported as a [`Warning`] ([`SliceReader::warnings`], [`StreamReader::warnings`]; see
//! [`warn`]).

mod chunked;
pub mod dupkeys;
mod encoding;
mod header;
#[cfg(feature = "lua")]
pub mod lua;
pub mod module;
mod parse;
mod slice;
mod stream;
pub mod stream_value;
mod validate;
pub mod value;
pub mod visit;
pub mod warn;

pub use chunked::ChunkedReader;
pub(crate) use chunked::{Gunzip, Reopen};
pub use encoding::{Encoding, LogicalType};
pub use header::{Feature, Flavor, Header};
pub use parse::{EXPIRE_MAX, ReadOptions};
pub(crate) use slice::DeepCheck;
pub use slice::{Entries, SliceReader};
pub use stream::StreamReader;
pub use value::{Item, OwnedValue, Value};
pub(crate) use warn::note as note_warning;
pub use warn::{Warning, WarningKind, Warnings};

use crate::format::string::RdbStr;

/// One record of an RDB file, with where it was found and its raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Byte offset of the record's first byte in the (decompressed) input.
    pub offset: u64,
    /// The record's bytes exactly as they are in the input (opcode included).
    pub raw: &'a [u8],
    /// What the record says.
    pub kind: RecordKind<'a>,
}

/// What a record says.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RecordKind<'a> {
    /// AUX field (opcode 250): metadata such as `redis-ver` or `ctime`.
    Aux {
        /// Field name.
        key: RdbStr<'a>,
        /// Field value.
        value: RdbStr<'a>,
    },
    /// SELECTDB (254): the following keys belong to database `db`.
    SelectDb {
        /// Database index.
        db: u64,
    },
    /// RESIZEDB (251): size hints for the current database.
    ResizeDb {
        /// Number of keys hinted.
        db_size: u64,
        /// Number of keys with an expiry hinted.
        expires_size: u64,
    },
    /// FUNCTION2 (245): one function library's source code.
    Function {
        /// The library code (starts with a `#!engine name=…` line).
        code: RdbStr<'a>,
    },
    /// MODULE_AUX (247): module-global data, opaque without the module.
    ModuleAux(module::ModuleAux<'a>),
    /// SLOT_INFO (244): key counts of one cluster slot.
    SlotInfo {
        /// Slot number.
        slot: u64,
        /// Keys in the slot.
        size: u64,
        /// Keys with an expiry in the slot.
        expires_size: u64,
    },
    /// A key and its value, with expiry and eviction metadata.
    Entry(Entry<'a>),
    /// EOF (255) and the stored checksum.
    Eof {
        /// The CRC-64 stored after EOF: `None` before RDB 5, `Some(0)` when the writer disabled checksums.
        checksum: Option<u64>,
    },
}

/// A key record.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Database the key belongs to.
    pub db: u64,
    /// The key.
    pub key: RdbStr<'a>,
    /// Absolute expiry, if any.
    pub expiry: Option<Expiry>,
    /// LRU idle time in seconds (IDLE opcode), if present.
    pub idle: Option<u64>,
    /// LFU counter (FREQ opcode), if present.
    pub freq: Option<u8>,
    /// The value.
    pub value: Value<'a>,
}

/// An absolute expiry time, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// EXPIRETIME (253): seconds since the epoch.
    Seconds(i32),
    /// EXPIRETIME_MS (252): milliseconds since the epoch.
    Millis(i64),
}

impl Expiry {
    /// The expiry in milliseconds since the Unix epoch.
    pub fn as_millis(&self) -> i64 {
        match *self {
            Expiry::Seconds(s) => i64::from(s) * 1000,
            Expiry::Millis(ms) => ms,
        }
    }
}

/// What the reader found after the EOF record: the checksum verdict and any trailing bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Checksum {
    /// RDB < 5: the format has no checksum.
    Absent,
    /// The writer stored 0 (`rdbchecksum no`): not checked.
    Disabled,
    /// The stored checksum matches.
    Ok(u64),
    /// The stored checksum does not match. The readers themselves fail with [`crate::ErrorKind::ChecksumMismatch`]
    /// instead; this verdict is for tools that compute the CRC on their own and report it (`rdbkit info` does).
    Mismatch {
        /// Stored value.
        stored: u64,
        /// Computed value.
        computed: u64,
    },
    /// Not verified (checksum verification turned off).
    NotChecked,
}

impl Checksum {
    /// The status word used by the CLI: `ok`, `absent`, `disabled`, `mismatch` or `unchecked`.
    pub fn status(&self) -> &'static str {
        match self {
            Checksum::Absent => "absent",
            Checksum::Disabled => "disabled",
            Checksum::Ok(_) => "ok",
            Checksum::Mismatch { .. } => "mismatch",
            Checksum::NotChecked => "unchecked",
        }
    }
}

/// How many bytes after the checksum the readers look at: at most this many are read (from a stream) or examined
/// (in a slice), so that endless padding (`cat x.rdb /dev/zero`) or a gzip bomb after a complete file costs
/// milliseconds, not gigabytes.
///
/// A page blob is padded with zeros to a multiple of 512 bytes, and one created larger than its data (as a writer of
/// unknown length does before shrinking it) reads as zeros to its end, since unwritten pages read as zeros: zero
/// padding longer than one page is legitimate, and a server ignores whatever follows the checksum anyway. 1 MiB covers the padding of any page-aligned export and of a blob allocated up to 1 MiB
/// beyond its data; anything longer is reported as more trailing data than was read ([`Trailing::beyond_limit`]).
pub const TRAILING_LIMIT: u64 = 1 << 20;

/// Bytes after the checksum, as far as the reader looked ([`TRAILING_LIMIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Trailing {
    /// Number of bytes after the checksum, at most [`TRAILING_LIMIT`]: when [`Trailing::beyond_limit`], the first
    /// `TRAILING_LIMIT` bytes (and more follow).
    pub len: u64,
    /// Whether those `len` bytes are all zero (page-blob padding).
    pub all_zero: bool,
    /// More than [`TRAILING_LIMIT`] bytes follow the checksum: the reader stopped after the first
    /// `TRAILING_LIMIT` (a stream is not read any further), so neither the length nor the contents of the rest
    /// are known.
    pub beyond_limit: bool,
}

impl Trailing {
    /// The report for the bytes `tail` after the checksum: only the first [`TRAILING_LIMIT`] of them are looked
    /// at (a longer `tail` may be the part of a stream read so far, one byte past the limit).
    pub(crate) fn of(tail: &[u8]) -> Trailing {
        let examined = &tail[..tail.len().min(TRAILING_LIMIT as usize)];
        Trailing {
            len: examined.len() as u64,
            all_zero: examined.iter().all(|&b| b == 0),
            beyond_limit: tail.len() as u64 > TRAILING_LIMIT,
        }
    }
}

/// The library name from a function library's code: the `name=` attribute of its `#!engine` first line.
pub fn function_name(code: &[u8]) -> Option<String> {
    let first = code.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?;
    if !first.starts_with("#!") {
        return None;
    }
    first.split_whitespace().find_map(|tok| tok.strip_prefix("name=")).map(str::to_string)
}

/// Compiles a function library's code with Lua 5.1, as the servers do when they load it (`luaL_loadbuffer` of
/// everything from the newline that ends the `#!` line, chunk name `@user_function`), without running it. `None`
/// when it compiles (or has no `#!` line, which [`library_metadata`] refuses); otherwise the compiler's message.
#[cfg(feature = "lua")]
pub fn lua_compile_error(code: &[u8]) -> Option<String> {
    let nl = code.iter().position(|&b| b == b'\n')?;
    let lua = match mlua::Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::default()) {
        Ok(lua) => lua,
        Err(e) => return Some(format!("cannot start Lua to compile the library: {e}")),
    };
    match lua.load(&code[nl..]).set_name("@user_function").set_mode(mlua::ChunkMode::Text).into_function() {
        Ok(_) => None,
        Err(e) => Some(format!("error compiling function: {e}")),
    }
}

/// Checks a function library's code the way Redis 7.0+/Valkey load it (`functionExtractLibMetaData`): a first
/// line `#!<engine> name=<lib>` (arguments split like `sdssplitargs`, `name=` case-insensitive and given once, no
/// other argument), engine `lua` (the only one these servers have, case-insensitive), and a library name of
/// letters, digits and `_`. Returns the library name, or why the servers refuse the library. Whether the Lua code
/// compiles is `lua_compile_error`'s question, and what it registers when run `lua::library_functions`'s
/// (feature `lua`); without that feature, code that never names `register_function` is refused here.
pub fn library_metadata(code: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if !code.starts_with(b"#!") {
        return Err("missing library metadata (the code does not start with #!)".into());
    }
    #[cfg(not(feature = "lua"))]
    let full = code;
    // The server finds the first line as in a C string: a NUL ends it.
    let code = code.split(|&b| b == 0).next().unwrap_or_default();
    let Some(nl) = code.iter().position(|&b| b == b'\n') else {
        return Err("invalid library metadata (no newline after the #! line)".into());
    };
    let parts = split_args(&code[..nl]).ok_or("invalid library metadata (unbalanced quotes)")?;
    let Some((first, rest)) = parts.split_first() else {
        return Err("invalid library metadata".into());
    };
    let mut name: Option<&[u8]> = None;
    for part in rest {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err("invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(&part[5..]);
            continue;
        }
        return Err(format!("invalid metadata value given: {}", crate::escape_bytes(part)));
    }
    let Some(name) = name else {
        return Err("library name was not given".into());
    };
    let engine = &first[2.min(first.len())..];
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!("engine {} not found", crate::escape_bytes(engine)));
    }
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
        return Err("library names can only contain letters, numbers, or underscores and must not be empty".into());
    }
    // Loading runs the code, and a library that registers no function is refused ("No functions registered").
    // Without the `lua` feature (which runs the code: [`lua::library_functions`]), a library whose code never
    // names `register_function` is taken for one that registers nothing.
    #[cfg(not(feature = "lua"))]
    if !full[nl..].windows(17).any(|w| w == b"register_function") {
        return Err("no functions registered (the code never calls register_function)".into());
    }
    Ok(name.to_vec())
}

/// Splits a line into arguments like Redis's `sdssplitargs`: blanks separate, `"…"` takes `\\` escapes (`\\xHH`,
/// `\\n`…), `'…'` takes only `\\'`; a closing quote must be followed by a blank or the end. `None` on unbalanced
/// quotes.
fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c');
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Some(out);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = line.get(i).copied();
            if inq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if line.get(i + 1) == Some(&b'x')
                            && line.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                            && line.get(i + 3).is_some_and(u8::is_ascii_hexdigit) =>
                    {
                        let h = std::str::from_utf8(&line[i + 2..i + 4]).ok()?;
                        cur.push(u8::from_str_radix(h, 16).ok()?);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if line.get(i + 1).is_some_and(|&b| !is_space(b)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else if insq {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|&b| !is_space(b)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else {
                match c {
                    None => break,
                    Some(b) if is_space(b) => break,
                    Some(b'"') => inq = true,
                    Some(b'\'') => insq = true,
                    Some(b) => cur.push(b),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

#[cfg(all(test, feature = "lua"))]
mod lua_tests {
    use super::lua_compile_error;

    #[test]
    fn libraries_compile_as_the_servers_compile_them() {
        let ok = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)\n";
        assert_eq!(lua_compile_error(ok), None);
        // What Redis 7.0 / 8.2 and Valkey 9.1 answered for this library: "Error compiling function:
        // user_function:2: <name> or '...' expected near 'return'" (the code from the `#!` line's newline on).
        let bad = b"#!lua name=lib\nredis.register_function('f', function(return 1 end)\n";
        let why = lua_compile_error(bad).expect("refused");
        assert!(why.contains("user_function:2: <name> or '...' expected near 'return'"), "{why}");
        // Compiled, never run: code that would loop or fail at run time compiles.
        assert_eq!(lua_compile_error(b"#!lua name=lib\nwhile true do end\nerror('x')\n"), None);
        // A precompiled chunk is not text: refused.
        assert!(lua_compile_error(b"#!lua name=lib\n\x1bLua\x51\x00").is_some());
    }
}
