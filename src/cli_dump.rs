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
//! Empty lists, sets, sorted sets and hashes are skipped (a server drops them on load too). MODULE_AUX records
//! cannot be recreated with commands and are not exported.

use crate::Format;
use crate::cli_common::{
    Failure, base64, for_each_record, json_bytes, json_f64, json_int, json_str, out_err, value_error,
};
use rdbkit::Error;
use rdbkit::dump::dump_payload;
use rdbkit::format::double::format_human_double;
use rdbkit::read::stream_value::StreamId;
use rdbkit::read::value::OwnedStream;
use rdbkit::read::{Entry, Item, OwnedValue, ReadOptions, RecordKind, Value};
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
}

/// `rdbkit dump FILE --format json|resp [--db N] [--restore]`.
pub fn dump(path: &str, opts: &DumpOptions, out: &mut dyn Write) -> Result<(), Failure> {
    let mut buf = Vec::with_capacity(1 << 16);
    let mut selected: Option<u64> = None;
    for_each_record(path, ReadOptions::default(), |header, rec| {
        buf.clear();
        match rec.kind {
            RecordKind::Function { code } => {
                let code = code.decode()?;
                match opts.format {
                    Format::Json => {
                        buf.extend_from_slice(b"{\"function\":");
                        json_bytes(&mut buf, &code);
                        buf.extend_from_slice(b"}\n");
                    }
                    Format::Resp => resp_cmd(&mut buf, &[b"FUNCTION", b"LOAD", b"REPLACE", &code]),
                }
            }
            RecordKind::Entry(e) if opts.db.is_none_or(|d| d == e.db) => {
                let key = e.key.decode().map_err(|err| value_error(err, rec, e.value.raw, e.db, b""))?;
                let failed = |err: Error| value_error(err, rec, e.value.raw, e.db, &key);
                match opts.format {
                    Format::Json => json_entry(&mut buf, &e, &key).map_err(failed)?,
                    Format::Resp => {
                        // RDB versions fit in u16 (REDIS is 4 digits, VALKEY 3).
                        let version = header.version as u16;
                        let mut cmds = Vec::new();
                        let wrote = resp_entry(&mut cmds, &e, &key, opts.restore, version).map_err(failed)?;
                        if wrote {
                            if selected != Some(e.db) {
                                resp_cmd(&mut buf, &[b"SELECT", e.db.to_string().as_bytes()]);
                                selected = Some(e.db);
                            }
                            buf.extend_from_slice(&cmds);
                        }
                    }
                }
            }
            _ => {}
        }
        out.write_all(&buf).map_err(out_err)
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// JSON

fn json_entry(o: &mut Vec<u8>, e: &Entry<'_>, key: &[u8]) -> rdbkit::Result<()> {
    let _ = write!(o, "{{\"db\":{},\"key\":", e.db);
    json_bytes(o, key);
    let _ = write!(
        o,
        ",\"type\":\"{}\",\"encoding\":\"{}\",\"expire_ms\":",
        e.value.logical_type().name(),
        e.value.encoding.name()
    );
    match e.expiry {
        Some(x) => json_int(o, x.as_millis()),
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(b",\"value\":");
    json_value(o, &e.value)?;
    o.extend_from_slice(b"}\n");
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

fn json_item(o: &mut Vec<u8>, it: &Item<'_>) {
    match it {
        Item::Int(i) => {
            o.push(b'"');
            json_int(o, i);
            o.push(b'"');
        }
        other => json_bytes(o, &other.as_bytes()),
    }
}

fn json_id(o: &mut Vec<u8>, id: StreamId) {
    let _ = write!(o, "\"{id}\"");
}

fn json_opt<T>(o: &mut Vec<u8>, v: Option<T>, f: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        Some(v) => f(o, v),
        None => o.extend_from_slice(b"null"),
    }
}

fn json_value(o: &mut Vec<u8>, v: &Value<'_>) -> rdbkit::Result<()> {
    match v.logical_type().name() {
        "string" => json_bytes(o, &v.as_string()?.decode()?),
        "list" | "set" => {
            o.push(b'[');
            for (i, it) in v.elements()?.enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                json_item(o, &it?);
            }
            o.push(b']');
        }
        "zset" => {
            o.push(b'[');
            for (i, r) in v.zset_entries()?.enumerate() {
                let (m, score) = r?;
                o.extend_from_slice(if i > 0 { b",[" } else { b"[" });
                json_item(o, &m);
                o.push(b',');
                json_f64(o, score);
                o.push(b']');
            }
            o.push(b']');
        }
        "hash" => {
            o.push(b'[');
            for (i, r) in v.hash_fields()?.enumerate() {
                let f = r?;
                o.extend_from_slice(if i > 0 { b",[" } else { b"[" });
                json_item(o, &f.field);
                o.push(b',');
                json_item(o, &f.value);
                if let Some(ms) = f.expire_ms {
                    o.push(b',');
                    json_int(o, ms);
                }
                o.push(b']');
            }
            o.push(b']');
        }
        _ => match v.to_owned_value()? {
            OwnedValue::Stream(s) => json_stream(o, &s),
            OwnedValue::Module { name, encver, payload, .. } => {
                o.extend_from_slice(b"{\"module\":");
                json_str(o, &name);
                let _ = write!(o, ",\"encver\":{encver},\"payload_b64\":\"{}\"}}", base64(&payload));
            }
            // The logical type names above cover every other kind.
            _ => o.extend_from_slice(b"null"),
        },
    }
    Ok(())
}

fn json_stream(o: &mut Vec<u8>, s: &OwnedStream) {
    o.extend_from_slice(b"{\"entries\":");
    json_array(o, &s.entries, |o, e| {
        o.push(b'[');
        json_id(o, e.id);
        o.push(b',');
        json_array(o, e.fields.iter().flat_map(|(f, v)| [f, v]), |o, b| json_bytes(o, b));
        o.push(b']');
    });
    let _ = write!(o, ",\"length\":{},\"last_id\":\"{}\",\"first_id\":", s.length, s.last_id);
    json_opt(o, s.first_id, json_id);
    o.extend_from_slice(b",\"max_deleted_id\":");
    json_opt(o, s.max_deleted_id, json_id);
    o.extend_from_slice(b",\"entries_added\":");
    json_opt(o, s.entries_added, json_int);
    o.extend_from_slice(b",\"groups\":");
    json_array(o, &s.groups, |o, g| {
        o.extend_from_slice(b"{\"name\":");
        json_bytes(o, &g.name);
        let _ = write!(o, ",\"last_id\":\"{}\",\"entries_read\":", g.last_id);
        // u64::MAX is Redis's -1: "not known, recompute".
        json_opt(o, g.entries_read, |o, n| if n == u64::MAX { json_int(o, -1) } else { json_int(o, n) });
        o.extend_from_slice(b",\"pel\":");
        json_array(o, &g.pel, |o, p| {
            let _ = write!(o, "[\"{}\",{},{}]", p.id, p.delivery_time, p.delivery_count);
        });
        o.extend_from_slice(b",\"consumers\":");
        json_array(o, &g.consumers, |o, c| {
            o.extend_from_slice(b"{\"name\":");
            json_bytes(o, &c.name);
            let _ = write!(o, ",\"seen_time\":{},\"active_time\":", c.seen_time);
            json_opt(o, c.active_time, json_int);
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
    let _ = write!(o, "*{}\r\n", args.len());
    for a in args {
        bulk(o, a);
    }
}

fn bulk(o: &mut Vec<u8>, a: &[u8]) {
    let _ = write!(o, "${}\r\n", a.len());
    o.extend_from_slice(a);
    o.extend_from_slice(b"\r\n");
}

/// A command whose arguments are added one by one (batches of elements).
struct Cmd {
    head: Vec<Vec<u8>>,
    args: usize,
    body: Vec<u8>,
}

impl Cmd {
    fn new(head: &[&[u8]]) -> Cmd {
        Cmd { head: head.iter().map(|h| h.to_vec()).collect(), args: 0, body: Vec::new() }
    }

    fn arg(&mut self, a: &[u8]) {
        bulk(&mut self.body, a);
        self.args += 1;
    }

    fn item(&mut self, it: &Item<'_>) {
        match it {
            Item::Borrowed(b) => self.arg(b),
            Item::Owned(v) => self.arg(v),
            Item::Int(_) => self.arg(&it.as_bytes()),
        }
    }

    /// Writes the command if it has any argument beyond its head, and starts over.
    fn flush(&mut self, o: &mut Vec<u8>) {
        if self.args == 0 {
            return;
        }
        let _ = write!(o, "*{}\r\n", self.head.len() + self.args);
        for h in &self.head {
            bulk(o, h);
        }
        o.extend_from_slice(&self.body);
        self.body.clear();
        self.args = 0;
    }
}

/// Appends the commands recreating one key; returns false (and appends nothing) for an empty collection.
fn resp_entry(o: &mut Vec<u8>, e: &Entry<'_>, key: &[u8], restore: bool, version: u16) -> rdbkit::Result<bool> {
    let v = &e.value;
    let ty = v.logical_type().name();
    if restore || ty == "module" {
        if is_empty_collection(v)? {
            return Ok(false);
        }
        let ttl = e.expiry.map_or(0, |x| x.as_millis()).to_string();
        let payload = dump_payload(v, version);
        let mut args: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), &payload, b"ABSTTL", b"REPLACE"];
        // A record holds IDLE under an LRU policy and FREQ under an LFU policy (RESTORE takes one of them).
        let idle = e.idle.map(|s| s.to_string());
        let freq = e.freq.map(|f| f.to_string());
        if let Some(s) = &idle {
            args.extend([&b"IDLETIME"[..], s.as_bytes()]);
        } else if let Some(f) = &freq {
            args.extend([&b"FREQ"[..], f.as_bytes()]);
        }
        resp_cmd(o, &args);
        return Ok(true);
    }
    let start = o.len();
    match ty {
        "string" => resp_cmd(o, &[b"SET", key, &v.as_string()?.decode()?]),
        "list" | "set" => {
            let mut cmd = Cmd::new(&[if ty == "list" { b"RPUSH" } else { b"SADD" }, key]);
            for it in v.elements()? {
                cmd.item(&it?);
                if cmd.args == BATCH {
                    cmd.flush(o);
                }
            }
            cmd.flush(o);
        }
        "zset" => {
            let mut cmd = Cmd::new(&[b"ZADD", key]);
            let mut score = Vec::new();
            for r in v.zset_entries()? {
                let (m, s) = r?;
                score.clear();
                format_human_double(s, &mut score);
                cmd.arg(&score);
                cmd.item(&m);
                if cmd.args == 2 * BATCH {
                    cmd.flush(o);
                }
            }
            cmd.flush(o);
        }
        "hash" => {
            let mut cmd = Cmd::new(&[b"HSET", key]);
            let mut ttls = Vec::new();
            for r in v.hash_fields()? {
                let f = r?;
                cmd.item(&f.field);
                cmd.item(&f.value);
                if let Some(ms) = f.expire_ms {
                    ttls.push((f.field.into_vec(), ms.to_string()));
                }
                if cmd.args == 2 * BATCH {
                    cmd.flush(o);
                }
            }
            cmd.flush(o);
            if o.len() > start {
                for (field, ms) in &ttls {
                    resp_cmd(o, &[b"HPEXPIREAT", key, ms.as_bytes(), b"FIELDS", b"1", field]);
                }
            }
        }
        _ => match v.to_owned_value()? {
            OwnedValue::Stream(s) => resp_stream(o, key, &s),
            _ => unreachable!("every other logical type is handled above"),
        },
    }
    if o.len() == start {
        return Ok(false);
    }
    if let Some(x) = e.expiry {
        resp_cmd(o, &[b"PEXPIREAT", key, x.as_millis().to_string().as_bytes()]);
    }
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

fn resp_stream(o: &mut Vec<u8>, key: &[u8], s: &OwnedStream) {
    // Pending entries whose stream entry was deleted: re-added as placeholders so XCLAIM can recreate them.
    let live: BTreeSet<StreamId> = s.entries.iter().map(|e| e.id).collect();
    let placeholders: BTreeSet<StreamId> = s
        .groups
        .iter()
        .flat_map(|g| g.pel.iter().map(|p| p.id))
        .filter(|id| !live.contains(id) && *id > StreamId::default())
        .collect();
    let mut ph = placeholders.iter().peekable();
    for e in &s.entries {
        while let Some(p) = ph.next_if(|p| **p < e.id) {
            resp_cmd(o, &[b"XADD", key, id_text(*p).as_bytes(), b"rdbkit-placeholder", b""]);
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
        resp_cmd(o, &[b"XADD", key, id_text(*p).as_bytes(), b"rdbkit-placeholder", b""]);
    }
    if s.entries.is_empty() && placeholders.is_empty() {
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
    }
}
