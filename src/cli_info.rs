//! `rdbkit info` and `rdbkit verify`.
//!
//! `info` walks the records without deep validation and reports what the file holds. It reads with checksum
//! verification off and computes the CRC-64 itself over the records' raw bytes, so a checksum mismatch is reported
//! as `mismatch` (with the trailing bytes still counted) instead of stopping the walk.
//!
//! `verify` reads with deep validation and checksum verification on, and also decodes every value completely.

use crate::cli_common::{Failure, Summary, for_each_record, json_bytes, json_int, json_str, out_err, value_error};
use rdbkit::format::crc::Crc64;
use rdbkit::read::{Checksum, ReadOptions, RecordKind};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

/// What `info` collects.
#[derive(Default)]
struct Info {
    /// AUX fields in file order; a repeated name (e.g. one `lua` field per script) collects several values.
    aux: Vec<(String, Vec<Vec<u8>>)>,
    /// Per database: keys, keys with an expiry.
    dbs: BTreeMap<u64, (u64, u64)>,
    types: BTreeMap<&'static str, u64>,
    encodings: BTreeMap<&'static str, u64>,
    functions: u64,
    module_aux: u64,
    /// Stored checksum after EOF (`None` before RDB 5).
    stored_crc: Option<u64>,
}

/// `rdbkit info FILE [--json]`.
pub fn info(path: &str, json: bool, out: &mut dyn Write) -> Result<(), Failure> {
    let mut info = Info::default();
    let mut crc = Crc64::new();
    let mut started = false;
    // Checksum verification off: the CRC is computed here so that a mismatch is a verdict, not an error.
    let opts = ReadOptions { deep: false, verify_checksum: false, duplicate_keys: false };
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
                let name = String::from_utf8_lossy(&key.decode()?).into_owned();
                let value = value.decode()?.into_owned();
                match info.aux.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, vals)) => vals.push(value),
                    None => info.aux.push((name, vec![value])),
                }
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
        json_str(&mut o, name);
        o.push(b':');
        if let [one] = &vals[..] {
            json_bytes(&mut o, one);
        } else {
            o.push(b'[');
            for (j, v) in vals.iter().enumerate() {
                if j > 0 {
                    o.push(b',');
                }
                json_bytes(&mut o, v);
            }
            o.push(b']');
        }
    }
    o.extend_from_slice(b"},\"databases\":{");
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
    let _ = writeln!(o, ",\"trailing_bytes\":{},\"trailing_zero\":{}}}", s.trailing.len, s.trailing.all_zero);
    o
}

fn info_text(path: &str, info: &Info, s: &Summary, checksum: &str) -> Vec<u8> {
    let mut o = Vec::new();
    let _ = writeln!(o, "file:       {path}");
    let _ = writeln!(o, "magic:      {} (RDB version {})", s.header.magic(), s.header.version);
    if s.input_bytes != s.stream_bytes {
        let _ = writeln!(o, "bytes:      {} (file: {} bytes)", s.stream_bytes, s.input_bytes);
    } else {
        let _ = writeln!(o, "bytes:      {}", s.stream_bytes);
    }
    let _ = writeln!(o, "checksum:   {checksum}");
    let zero = if s.trailing.len == 0 {
        ""
    } else if s.trailing.all_zero {
        " (zero padding)"
    } else {
        " (not zero padding)"
    };
    let _ = writeln!(o, "trailing:   {} bytes{zero}", s.trailing.len);
    let _ = writeln!(o, "functions:  {}", info.functions);
    let _ = writeln!(o, "module aux: {}", info.module_aux);
    let _ = writeln!(o, "aux:");
    for (name, vals) in &info.aux {
        for v in vals {
            let _ = writeln!(o, "  {name} = {}", rdbkit::escape_bytes(v));
        }
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

/// How `verify` reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Any warning makes the file invalid (exit 1).
    pub strict: bool,
    /// Skip the duplicate-key check (it takes memory per key).
    pub no_duplicate_check: bool,
}

/// `rdbkit verify FILE`: the one-line summary on success; each warning (what the servers load although no server
/// writes it, see `rdbkit::read::Warning`) on `err`, which with `--strict` fails the file.
pub fn verify(path: &str, vopts: VerifyOptions, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let mut keys = 0u64;
    let mut dbs = BTreeSet::new();
    let mut empty = 0u64;
    let opts = ReadOptions { duplicate_keys: !vopts.no_duplicate_check, ..ReadOptions::default() };
    let summary = for_each_record(path, opts, |_, rec| {
        match rec.kind {
            RecordKind::Aux { key, value } => {
                key.decode()?;
                value.decode()?;
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
        let what = if summary.trailing.all_zero { "zero padding" } else { "not zero padding, ignored" };
        line += &format!(", {} trailing bytes after the checksum ({what})", summary.trailing.len);
    }
    if empty > 0 {
        line += &format!(
            ", {empty} empty collection key{} (a server skips them on load)",
            if empty == 1 { "" } else { "s" }
        );
    }
    let w = &summary.warnings;
    for one in w.first() {
        let _ = writeln!(err, "rdbkit: {path}: {one}");
    }
    if w.count() > w.first().len() as u64 {
        let _ = writeln!(err, "rdbkit: {path}: … and {} more warning(s)", w.count() - w.first().len() as u64);
    }
    if vopts.strict && !w.is_empty() {
        let first = &w.first()[0];
        return Err(Failure::Invalid(format!("{} warning(s), refused by --strict; the first: {first}", w.count())));
    }
    if !w.is_empty() {
        line += &format!(", {} warning{} (on stderr)", w.count(), if w.count() == 1 { "" } else { "s" });
    }
    writeln!(out, "{line}").map_err(out_err)
}
