//! `rdbkit info` and `rdbkit verify`.
//!
//! `info` walks the records without deep validation and reports what the file holds, in time linear in the file
//! and memory bounded by what it lists (at most [`AUX_FIELDS_SHOWN`] AUX fields, each value cut at
//! [`AUX_VALUE_SHOWN`] bytes with its length given; names escaped like values). It reads with checksum
//! verification off and computes the CRC-64 itself over the records' raw bytes, so a checksum mismatch is reported
//! as `mismatch` (with the trailing bytes still counted) instead of stopping the walk.
//!
//! `verify` reads with deep validation and checksum verification on, and also decodes every value completely.

use crate::cli::common::{Failure, Summary, for_each_record, json_bytes, json_int, json_str, out_err, value_error};
use rdbkit::format::crc::Crc64;
use rdbkit::format::string::RdbStr;
use rdbkit::read::{Checksum, ReadOptions, RecordKind, Trailing};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

/// At most this many AUX fields are listed by `info` (in file order, a repeated name's values together); the rest
/// are counted and reported as left out. A file may hold any number of AUX fields (each is a record), and neither
/// a terminal nor a JSON consumer is served by hundreds of thousands of them.
pub const AUX_FIELDS_SHOWN: usize = 1000;

/// At most this many bytes of an AUX value are kept and shown; the length of a longer one is given instead of the
/// rest. A value may be any length (an LZF one declares up to 89 times its stored bytes), and `info` only sums up.
pub const AUX_VALUE_SHOWN: usize = 64 * 1024;
/// At most this many bytes of an AUX name are kept (a longer name is shown cut, with its length).
pub const AUX_NAME_SHOWN: usize = 1024;

/// The first `cap` logical bytes of `s`, and its whole logical length, without holding more than `cap` bytes: an
/// LZF string is validated in full (as decoding it would) but only its head is decompressed.
fn str_head<'a>(s: &RdbStr<'a>, cap: usize) -> rdbkit::Result<(Cow<'a, [u8]>, u64)> {
    let total = s.logical_len();
    match *s {
        RdbStr::Raw(b) if b.len() > cap => Ok((Cow::Borrowed(&b[..cap]), total)),
        RdbStr::Lzf { compressed, len } if total > cap as u64 => {
            let n = rdbkit::format::string::checked_lzf_len(compressed.len(), len)?;
            let mut head = vec![0; cap];
            let k = rdbkit::format::lzf::peek(compressed, n, &mut head)?;
            head.truncate(k);
            Ok((Cow::Owned(head), total))
        }
        _ => Ok((s.decode()?, total)),
    }
}

/// An AUX value as kept: its first [`AUX_VALUE_SHOWN`] bytes and its whole length.
type AuxValue = (Vec<u8>, u64);

/// What `info` collects.
#[derive(Default)]
struct Info {
    /// AUX fields in file order; a repeated name (e.g. one `lua` field per script) collects several values. At most
    /// [`AUX_FIELDS_SHOWN`] values in all.
    /// Each value is kept as its first [`AUX_VALUE_SHOWN`] bytes and its whole length.
    aux: Vec<(Vec<u8>, Vec<AuxValue>)>,
    /// Name → index in `aux`: finding a name is one lookup, however many names there are.
    aux_index: HashMap<Vec<u8>, usize>,
    /// Values held in `aux`.
    aux_shown: usize,
    /// AUX fields not listed (beyond [`AUX_FIELDS_SHOWN`]).
    aux_left_out: u64,
    /// Per database: keys, keys with an expiry.
    dbs: BTreeMap<u64, (u64, u64)>,
    types: BTreeMap<&'static str, u64>,
    encodings: BTreeMap<&'static str, u64>,
    functions: u64,
    module_aux: u64,
    /// Stored checksum after EOF (`None` before RDB 5).
    stored_crc: Option<u64>,
}

impl Info {
    /// Records one AUX field, or counts it as left out once [`AUX_FIELDS_SHOWN`] are held.
    fn add_aux(&mut self, name: &RdbStr<'_>, value: &RdbStr<'_>) -> rdbkit::Result<()> {
        if self.aux_shown >= AUX_FIELDS_SHOWN {
            self.aux_left_out += 1;
            return Ok(());
        }
        let (head, len) = str_head(name, AUX_NAME_SHOWN)?;
        let mut name = head.into_owned();
        if len > name.len() as u64 {
            // A cut name is told apart from an uncut one by its length.
            name.extend_from_slice(format!("... ({len} bytes)").as_bytes());
        }
        let (head, len) = str_head(value, AUX_VALUE_SHOWN)?;
        let value = (head.into_owned(), len);
        self.aux_shown += 1;
        match self.aux_index.get(&name) {
            Some(&i) => self.aux[i].1.push(value),
            None => {
                self.aux_index.insert(name.clone(), self.aux.len());
                self.aux.push((name, vec![value]));
            }
        }
        Ok(())
    }
}

/// Writes an AUX value as JSON: as [`json_bytes`] does, or, for a value longer than [`AUX_VALUE_SHOWN`], an object
/// `{"bytes": length, "head": first bytes}`.
fn aux_value_json(o: &mut Vec<u8>, (head, len): &AuxValue) {
    if *len > head.len() as u64 {
        let _ = write!(o, "{{\"bytes\":{len},\"head\":");
        json_bytes(o, head);
        o.push(b'}');
    } else {
        json_bytes(o, head);
    }
}

/// An AUX name for the text listing: as it is when it is plain printable ASCII (no space, quote, backslash or
/// `=`), else quoted and escaped as values are ([`rdbkit::escape_bytes`]), so that a name can neither move the
/// cursor, recolour the terminal nor start a line of its own.
fn aux_name_text(name: &[u8]) -> String {
    let plain = !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'='));
    if plain { String::from_utf8_lossy(name).into_owned() } else { rdbkit::escape_bytes(name) }
}

/// An AUX name as a JSON object key: the name itself when it is UTF-8 (JSON-escaped like every string, control
/// characters included), else its escaped text without the quotes (a key must be a string; values that are not
/// UTF-8 are `{"b64": …}` objects instead).
fn aux_name_json(o: &mut Vec<u8>, name: &[u8]) {
    match std::str::from_utf8(name) {
        Ok(s) => json_str(o, s),
        Err(_) => {
            let esc = rdbkit::escape_bytes(name);
            json_str(o, &esc[1..esc.len() - 1]);
        }
    }
}

/// What the report says about the bytes after the checksum (`""` when there are none), after a comma in
/// `verify`'s line.
pub fn trailing_note(t: &Trailing) -> String {
    let what = if t.all_zero { "zero padding" } else { "not zero padding, ignored" };
    if t.beyond_limit {
        let first = if t.all_zero { "zero" } else { "not zero padding" };
        format!(
            "more than {} trailing bytes after the checksum (the first {} {first}; not read further, ignored)",
            t.len, t.len
        )
    } else if t.len > 0 {
        format!("{} trailing bytes after the checksum ({what})", t.len)
    } else {
        String::new()
    }
}

/// `rdbkit info FILE [--json]`.
pub fn info(path: &str, json: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let mut info = Info::default();
    let mut crc = Crc64::new();
    let mut started = false;
    // Checksum verification off: the CRC is computed here so that a mismatch is a verdict, not an error.
    let opts = ReadOptions::fast().with_checksum(false);
    let summary = for_each_record(path, opts, |header, rec| {
        if !started {
            crc.update(&header.magic_bytes());
            started = true;
        }
        match rec.kind {
            RecordKind::Eof { checksum } => {
                // Everything but the stored checksum (an expiry the servers ignore may come before EOF).
                crc.update(&rec.raw[..rec.raw.len() - if checksum.is_some() { 8 } else { 0 }]);
                info.stored_crc = checksum;
            }
            _ => crc.update(rec.raw),
        }
        match rec.kind {
            RecordKind::Aux { key, value } => {
                info.add_aux(&key, &value)?;
            }
            RecordKind::Function { .. } => info.functions += 1,
            RecordKind::ModuleAux(_) => info.module_aux += 1,
            RecordKind::Entry(e) => {
                let d = info.dbs.entry(e.db).or_default();
                d.0 += 1;
                d.1 += u64::from(e.expiry.is_some());
                *info.types.entry(e.value.logical_type().name()).or_default() += 1;
                *info.encodings.entry(e.value.encoding.name()).or_default() += 1;
            }
            _ => {}
        }
        Ok(())
    })?;
    let checksum = match (summary.checksum, info.stored_crc) {
        (Checksum::Absent, _) | (_, None) => "absent",
        (_, Some(0)) => "disabled",
        (_, Some(stored)) if stored == crc.value() => "ok",
        _ => "mismatch",
    };
    let text = if json { info_json(&info, &summary, checksum) } else { info_text(path, &info, &summary, checksum) };
    out.write_all(&text).map_err(out_err)
}

fn info_json(info: &Info, s: &Summary, checksum: &str) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(b"{\"magic\":");
    json_str(&mut o, &s.header.magic());
    o.extend_from_slice(b",\"rdb_version\":");
    json_int(&mut o, s.header.version);
    o.extend_from_slice(b",\"aux\":{");
    for (i, (name, vals)) in info.aux.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        aux_name_json(&mut o, name);
        o.push(b':');
        if let [one] = &vals[..] {
            aux_value_json(&mut o, one);
        } else {
            o.push(b'[');
            for (j, v) in vals.iter().enumerate() {
                if j > 0 {
                    o.push(b',');
                }
                aux_value_json(&mut o, v);
            }
            o.push(b']');
        }
    }
    let _ = write!(o, "}},\"aux_left_out\":{},\"databases\":{{", info.aux_left_out);
    for (i, (db, (keys, expires))) in info.dbs.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        let _ = write!(o, "\"{db}\":{{\"keys\":{keys},\"expires\":{expires}}}");
    }
    for (name, map) in [("types", &info.types), ("encodings", &info.encodings)] {
        let _ = write!(o, "}},\"{name}\":{{");
        for (i, (k, n)) in map.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            let _ = write!(o, "\"{k}\":{n}");
        }
    }
    let _ = write!(
        o,
        "}},\"functions\":{},\"module_aux\":{},\"checksum\":\"{checksum}\",\"bytes\":{}",
        info.functions, info.module_aux, s.stream_bytes
    );
    if s.input_bytes != s.stream_bytes {
        let _ = write!(o, ",\"file_bytes\":{}", s.input_bytes);
    }
    let _ = writeln!(
        o,
        ",\"trailing_bytes\":{},\"trailing_zero\":{},\"trailing_beyond_limit\":{}}}",
        s.trailing.len, s.trailing.all_zero, s.trailing.beyond_limit
    );
    o
}

fn info_text(path: &str, info: &Info, s: &Summary, checksum: &str) -> Vec<u8> {
    let mut o = Vec::new();
    let _ = writeln!(o, "file:       {path}");
    let _ = writeln!(o, "magic:      {} (RDB version {})", s.header.magic(), s.header.version);
    // Past the trailing-byte limit the reader stopped: the size is a lower bound.
    let more = if s.trailing.beyond_limit { "more than " } else { "" };
    if s.input_bytes != s.stream_bytes {
        let _ = writeln!(o, "bytes:      {more}{} (file: {} bytes)", s.stream_bytes, s.input_bytes);
    } else {
        let _ = writeln!(o, "bytes:      {more}{}", s.stream_bytes);
    }
    let _ = writeln!(o, "checksum:   {checksum}");
    let zero = if s.trailing.len == 0 {
        ""
    } else if s.trailing.all_zero {
        " (zero padding)"
    } else {
        " (not zero padding)"
    };
    let zero = match (s.trailing.beyond_limit, s.trailing.all_zero) {
        (true, true) => " (zero as far as read; not read further)",
        (true, false) => " (not zero padding; not read further)",
        _ => zero,
    };
    let _ = writeln!(o, "trailing:   {more}{} bytes{zero}", s.trailing.len);
    let _ = writeln!(o, "functions:  {}", info.functions);
    let _ = writeln!(o, "module aux: {}", info.module_aux);
    let _ = writeln!(o, "aux:");
    for (name, vals) in &info.aux {
        let name = aux_name_text(name);
        for (head, len) in vals {
            let more = if *len > head.len() as u64 { format!("... ({len} bytes)") } else { String::new() };
            let _ = writeln!(o, "  {name} = {}{more}", rdbkit::escape_bytes(head));
        }
    }
    if info.aux_left_out > 0 {
        let _ =
            writeln!(o, "  ({} more AUX fields not shown: only the first {AUX_FIELDS_SHOWN} are)", info.aux_left_out);
    }
    let _ = writeln!(o, "databases:");
    for (db, (keys, expires)) in &info.dbs {
        let _ = writeln!(o, "  db {db}: {keys} keys, {expires} with expiry");
    }
    for (name, map) in [("types", &info.types), ("encodings", &info.encodings)] {
        let _ = writeln!(o, "{name}:");
        for (k, n) in map {
            let _ = writeln!(o, "  {k}: {n}");
        }
    }
    o
}

/// How `verify` reads and reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Any warning makes the file invalid (exit 1).
    pub strict: bool,
    /// Skip the duplicate-key check (it takes memory per key).
    pub no_duplicate_check: bool,
    /// `--json`: the verdict as one JSON object on `out`, for a sound file and for an invalid one.
    pub json: bool,
    /// `-q`: nothing on `out` for a sound file, no warnings on `err`.
    pub quiet: bool,
}

/// `rdbkit verify FILE`: the one-line summary on success; each warning (what the servers load although no server
/// writes it, see `rdbkit::read::Warning`) on `err`, which with `--strict` fails the file. With `--json`, one
/// object: `{"file", "ok": true, "magic", "keys", …, "warnings": […]}`, or `{"file", "ok": false, "error"}` for
/// an invalid file (the error is on stderr too, and the exit code 1).
pub fn verify(path: &str, vopts: VerifyOptions, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let r = verify_inner(path, vopts, out, err);
    if let (true, Err(Failure::Invalid(m))) = (vopts.json, &r) {
        let v = serde_json::json!({ "file": path, "ok": false, "error": m });
        writeln!(out, "{v}").map_err(out_err)?;
    }
    r
}

fn verify_inner(path: &str, vopts: VerifyOptions, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let mut keys = 0u64;
    let mut dbs = BTreeSet::new();
    let mut empty = 0u64;
    let opts = ReadOptions::default().with_duplicate_keys(!vopts.no_duplicate_check);
    let summary = for_each_record(path, opts, |_, rec| {
        match rec.kind {
            RecordKind::Aux { key, value } => {
                // Decodable, checked without holding an LZF one in full (it may declare a gigabyte).
                str_head(&key, 0)?;
                str_head(&value, 0)?;
            }
            RecordKind::Function { code } => {
                code.decode()?;
            }
            RecordKind::Entry(e) => {
                // Deep validation has already checked every byte a decoder would read (the fuzz targets assert
                // that a deep-validated value always decodes), so only emptiness is looked at here.
                let v = e.value;
                let is_empty = v.is_empty_collection().map_err(|err| {
                    let key = e.key.decode().map(|k| k.into_owned()).unwrap_or_default();
                    value_error(err, rec, v.raw, e.db, &key)
                })?;
                empty += u64::from(is_empty);
                keys += 1;
                dbs.insert(e.db);
            }
            _ => {}
        }
        Ok(())
    })?;
    let mut line = format!(
        "OK: {}, {keys} keys in {} database{}, checksum {}, {} bytes",
        summary.header.magic(),
        dbs.len(),
        if dbs.len() == 1 { "" } else { "s" },
        summary.checksum.status(),
        summary.stream_bytes
    );
    if summary.input_bytes != summary.stream_bytes {
        line += &format!(" ({} bytes compressed)", summary.input_bytes);
    }
    if summary.trailing.len > 0 {
        line += &format!(", {}", trailing_note(&summary.trailing));
    }
    if empty > 0 {
        line += &format!(
            ", {empty} empty collection key{} (a server skips them on load)",
            if empty == 1 { "" } else { "s" }
        );
    }
    let w = &summary.warnings;
    if !vopts.quiet && !vopts.json {
        for one in w.first() {
            let _ = writeln!(err, "rdbkit: {path}: {one}");
        }
        if w.count() > w.first().len() as u64 {
            let _ = writeln!(err, "rdbkit: {path}: … and {} more warning(s)", w.count() - w.first().len() as u64);
        }
    }
    if vopts.strict && !w.is_empty() {
        let first = &w.first()[0];
        return Err(Failure::Invalid(format!("{} warning(s), refused by --strict; the first: {first}", w.count())));
    }
    if vopts.json {
        let v = serde_json::json!({
            "file": path,
            "ok": true,
            "magic": summary.header.magic(),
            "version": summary.header.version,
            "keys": keys,
            "databases": dbs,
            "checksum": summary.checksum.status(),
            "bytes": summary.stream_bytes,
            "input_bytes": summary.input_bytes,
            "trailing_bytes": summary.trailing.len,
            "empty_collection_keys": empty,
            "warning_count": w.count(),
            "warnings": w.first().iter().map(|one| one.to_string()).collect::<Vec<_>>(),
        });
        return writeln!(out, "{v}").map_err(out_err);
    }
    if vopts.quiet {
        return Ok(());
    }
    if !w.is_empty() {
        line += &format!(", {} warning{} (on stderr)", w.count(), if w.count() == 1 { "" } else { "s" });
    }
    writeln!(out, "{line}").map_err(out_err)
}
