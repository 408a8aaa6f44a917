//! `rdbkit report`: what every key costs in memory, the totals per database, type and encoding, and the largest
//! keys. The model and the aggregation are the library's ([`rdbkit::report`]); this module reads the input
//! (validated first, so a damaged file writes nothing), feeds the keys through and prints.

use crate::cli::common::{Failure, for_each_validated_record, json_bytes, json_int, json_str, out_err, value_error};
use rdbkit::read::{Flavor, RecordKind};
use rdbkit::report::memory::{Server, estimate};
use rdbkit::report::{CSV_HEADER, Report, Row, Totals, write_csv_row};
use std::collections::BTreeMap;
use std::io::Write;

/// Output format of `report`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// Totals and the largest keys, for people.
    Text,
    /// One JSON object: totals and the largest keys.
    Json,
    /// One row per key in rdbtools' memory report columns.
    Csv,
}

/// Options of `rdbkit report`.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Output format.
    pub format: ReportFormat,
    /// How many of the largest keys to list.
    pub top: usize,
    /// Deep-validate the input before writing anything.
    pub validate: bool,
    /// The server to size for, instead of the one that wrote the file (`redis-ver`).
    pub target: Option<Server>,
    /// Key prefixes end at this separator.
    pub separator: Vec<u8>,
    /// Prefix levels counted (0: none).
    pub depth: usize,
}

/// `--target` of `report`: a modelled server.
pub fn model_name(s: &str) -> Result<Server, String> {
    Server::from_name(s).ok_or_else(|| format!("no memory model for '{s}' (modelled: redis-7.0, redis-8.2)"))
}

/// `rdbkit report FILE [--format text|json|csv] [--top N]`.
pub fn report(path: &str, opts: &ReportOptions, out: &mut dyn Write) -> Result<(), Failure> {
    let mut server = opts.target;
    let mut rep: Option<Report> = None;
    let mut family = None;
    let mut key_buf = Vec::new();
    let mut header_written = false;
    for_each_validated_record(path, opts.validate, |header, rec| {
        family.get_or_insert(header.flavor);
        // The header goes out with the first record, after the validation pass: a damaged file writes nothing.
        if opts.format == ReportFormat::Csv && !header_written {
            out.write_all(CSV_HEADER.as_bytes()).map_err(out_err)?;
            header_written = true;
        }
        match &rec.kind {
            RecordKind::Aux { key, value } if server.is_none() && key.decode()?.as_ref() == b"redis-ver" => {
                server = Some(Server::for_version(Some(&value.decode()?)));
            }
            RecordKind::Entry(e) => {
                let srv = *server.get_or_insert(Server::for_version(None));
                let rep =
                    rep.get_or_insert_with(|| Report::new(srv, opts.top).with_prefixes(&opts.separator, opts.depth));
                let key = e.key.decode_reusing(&mut key_buf)?;
                let est = estimate(srv, key.len() as u64, e.expiry.is_some(), &e.value)
                    .map_err(|err| value_error(err, rec, e.value.raw, e.db, key))?;
                let row = Row {
                    db: e.db,
                    logical_type: e.value.logical_type(),
                    key,
                    estimate: est,
                    expiry_ms: e.expiry.map(|x| x.as_millis()),
                };
                if opts.format == ReportFormat::Csv {
                    write_csv_row(out, &row).map_err(out_err)?;
                }
                rep.add(&row);
            }
            _ => {}
        }
        Ok(())
    })?;
    let rep = rep.unwrap_or_else(|| Report::new(server.unwrap_or(Server::Redis70), opts.top));
    let written_by = match family {
        Some(Flavor::Valkey) => "valkey; Valkey's own layout is not modelled",
        _ => "redis",
    };
    match opts.format {
        ReportFormat::Csv => Ok(()),
        ReportFormat::Json => out.write_all(&json(&rep)).map_err(out_err),
        ReportFormat::Text => out.write_all(text(&rep, written_by).as_bytes()).map_err(out_err),
    }
}

/// Bytes for people: `1.5 MiB`.
fn human(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{v:.1} {}", U[i]) }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

fn text(rep: &Report, written_by: &str) -> String {
    let mut s = String::new();
    let t = rep.total;
    s.push_str(&format!(
        "memory model: {} (file written by {written_by})\nkeys: {}  memory: {} ({} bytes)\n",
        rep.server,
        t.keys,
        human(t.bytes),
        t.bytes
    ));
    let section = |s: &mut String, title: &str, rows: Vec<(String, Totals)>| {
        s.push_str(&format!("\nby {title}:\n"));
        for (name, x) in rows {
            s.push_str(&format!(
                "  {name:<12} {:>10} keys  {:>12}  {:>5.1}%\n",
                x.keys,
                human(x.bytes),
                pct(x.bytes, t.bytes)
            ));
        }
    };
    section(&mut s, "database", rep.by_db.iter().map(|(d, x)| (format!("db{d}"), *x)).collect());
    section(&mut s, "type", rep.by_type.iter().map(|(n, x)| (n.to_string(), *x)).collect());
    section(&mut s, "encoding", rep.by_encoding.iter().map(|(n, x)| (n.to_string(), *x)).collect());
    let top = rep.top();
    if !top.is_empty() {
        s.push_str(&format!("\ntop {} keys by memory:\n", top.len()));
        for k in top {
            s.push_str(&format!(
                "  {:>12}  db{} {} {} ({} elements)  {}\n",
                human(k.bytes),
                k.db,
                k.type_name,
                k.encoding,
                k.num_elements,
                rdbkit::escape_bytes(&k.key)
            ));
        }
    }
    let by_elements = rep.top_by_elements();
    if !by_elements.is_empty() {
        s.push_str(&format!("\ntop {} keys by elements:\n", by_elements.len()));
        for k in by_elements {
            s.push_str(&format!(
                "  {:>12} elements  db{} {} {}  {}\n",
                k.num_elements,
                k.db,
                k.type_name,
                k.encoding,
                rdbkit::escape_bytes(&k.key)
            ));
        }
    }
    section(
        &mut s,
        "expiry",
        rdbkit::report::TTL_CLASSES
            .iter()
            .zip(rep.ttl)
            .filter(|(_, x)| x.keys > 0)
            .map(|(n, x)| (n.to_string(), x))
            .collect(),
    );
    let prefixes = rep.prefixes(10);
    if !prefixes.is_empty() {
        s.push_str("\nby prefix (largest 10 per level):\n");
        for p in prefixes {
            s.push_str(&format!(
                "  {}{:<24} {:>10} keys  {:>12}  {:>5.1}%\n",
                "  ".repeat(p.level - 1),
                rdbkit::escape_bytes(&p.prefix),
                p.totals.keys,
                human(p.totals.bytes),
                pct(p.totals.bytes, t.bytes)
            ));
        }
    }
    if !rep.approximate.is_empty() {
        s.push_str("\napproximate estimates:\n");
        for (why, n) in &rep.approximate {
            s.push_str(&format!("  {n} key(s): {why}\n"));
        }
    }
    s
}

fn json_totals(o: &mut Vec<u8>, x: &Totals) {
    o.extend_from_slice(b"{\"keys\":");
    json_int(o, x.keys);
    o.extend_from_slice(b",\"bytes\":");
    json_int(o, x.bytes);
    o.extend_from_slice(b",\"elements\":");
    json_int(o, x.elements);
    o.push(b'}');
}

fn json_map(o: &mut Vec<u8>, m: &BTreeMap<&'static str, Totals>) {
    o.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        json_str(o, k);
        o.push(b':');
        json_totals(o, v);
    }
    o.push(b'}');
}

/// A list of top keys; `sized`: with their encoding and bytes (the by-memory list).
fn json_top(o: &mut Vec<u8>, keys: &[rdbkit::report::TopKey], sized: bool) {
    o.push(b'[');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        o.extend_from_slice(b"{\"db\":");
        json_int(o, k.db);
        o.extend_from_slice(b",\"key\":");
        json_bytes(o, &k.key);
        o.extend_from_slice(b",\"type\":");
        json_str(o, k.type_name);
        if sized {
            o.extend_from_slice(b",\"encoding\":");
            json_str(o, k.encoding);
            o.extend_from_slice(b",\"bytes\":");
            json_int(o, k.bytes);
        }
        o.extend_from_slice(b",\"num_elements\":");
        json_int(o, k.num_elements);
        o.push(b'}');
    }
    o.push(b']');
}

fn json(rep: &Report) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(b"{\"server\":");
    json_str(&mut o, rep.server.name());
    o.extend_from_slice(b",\"total\":");
    json_totals(&mut o, &rep.total);
    o.extend_from_slice(b",\"by_db\":{");
    for (i, (d, v)) in rep.by_db.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        json_str(&mut o, &d.to_string());
        o.push(b':');
        json_totals(&mut o, v);
    }
    o.extend_from_slice(b"},\"by_type\":");
    json_map(&mut o, &rep.by_type);
    o.extend_from_slice(b",\"by_encoding\":");
    json_map(&mut o, &rep.by_encoding);
    o.extend_from_slice(b",\"top\":");
    json_top(&mut o, &rep.top(), true);
    o.extend_from_slice(b",\"top_by_elements\":");
    json_top(&mut o, &rep.top_by_elements(), false);
    o.extend_from_slice(b",\"ttl\":{");
    for (i, (name, x)) in rdbkit::report::TTL_CLASSES.iter().zip(rep.ttl).enumerate() {
        if i > 0 {
            o.push(b',');
        }
        json_str(&mut o, name);
        o.push(b':');
        json_totals(&mut o, &x);
    }
    o.extend_from_slice(b"},\"prefixes\":[");
    for (i, p) in rep.prefixes(100).iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        o.extend_from_slice(b"{\"prefix\":");
        json_bytes(&mut o, &p.prefix);
        o.extend_from_slice(b",\"level\":");
        json_int(&mut o, p.level as u64);
        o.extend_from_slice(b",\"totals\":");
        json_totals(&mut o, &p.totals);
        o.push(b'}');
    }
    o.extend_from_slice(b"],\"approximate\":{");
    for (i, (why, n)) in rep.approximate.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        json_str(&mut o, why);
        o.push(b':');
        json_int(&mut o, *n);
    }
    o.extend_from_slice(b"}}\n");
    o
}
