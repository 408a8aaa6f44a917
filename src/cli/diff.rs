//! `rdbkit diff A B`: prints what `rdbkit::diff` found — the first differences of each class and the counts, or
//! the whole comparison as one JSON object. Exit 0 when the inputs hold the same data, 1 when they differ, 2 on any
//! error (a corrupt input included).

use crate::cli::common::{Failure, out_err};
use rdbkit::diff::{Class, DiffOptions, DiffReport, Difference, Scope, diff};
use rdbkit::input::Input;
use rdbkit::render::text::{json_bytes, push_u64};
use rdbkit::{Error, ErrorKind};
use std::io::Write;

/// Differences of each class the text output lists.
pub const TEXT_SHOWN: usize = 20;

/// What `rdbkit diff` was asked.
#[derive(Debug, Clone)]
pub struct DiffArgs {
    /// First input.
    pub a: String,
    /// Second input.
    pub b: String,
    /// One JSON object instead of text.
    pub json: bool,
    /// Text: only the summary line.
    pub quiet: bool,
    /// Expiry tolerance, ms.
    pub ttl_tolerance_ms: u64,
    /// Memory budget for per-key records, bytes.
    pub max_memory: usize,
}

/// Runs the comparison; `Ok(true)` when the inputs are equal.
pub fn run(args: &DiffArgs, out: &mut dyn Write) -> Result<bool, Failure> {
    if args.a == "-" && args.b == "-" {
        return Err(Failure::Io("only one of the two inputs can be `-` (stdin)".into()));
    }
    let a = open(&args.a)?;
    let b = open(&args.b)?;
    let opts = DiffOptions {
        ttl_tolerance_ms: args.ttl_tolerance_ms,
        memory_budget: args.max_memory,
        samples: TEXT_SHOWN,
        keep_all: args.json,
    };
    let mut report = diff(&a, &b, &opts)?;
    if args.json {
        json(&mut report, out)?;
    } else {
        text(a.name(), b.name(), &report, args.quiet, out).map_err(out_err)?;
    }
    Ok(report.is_equal())
}

fn open(path: &str) -> Result<Input, Failure> {
    Input::open(path).map_err(|e| match e.kind() {
        ErrorKind::Io(_) if e.offset().is_none() => Failure::Io(format!("{path}: cannot open: {e}")),
        _ => Failure::from(e.in_file(path)),
    })
}

fn where_text(d: &Difference) -> String {
    match d.scope {
        Scope::Db(db) => format!("db {db} {}", rdbkit::escape_bytes(&d.key)),
        Scope::Function => format!("function library {}", rdbkit::escape_bytes(&d.key)),
    }
}

fn text(a: &str, b: &str, r: &DiffReport, quiet: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let titles = [format!("only in {a}"), format!("only in {b}"), "different".to_string()];
    for (class, title) in Class::ALL.into_iter().zip(titles) {
        let n = r.count(class);
        if n == 0 || quiet {
            continue;
        }
        writeln!(out, "{title}: {n}")?;
        for d in r.samples(class) {
            match d.what {
                Some(w) => writeln!(out, "  {} ({})", where_text(d), w.name())?,
                None => writeln!(out, "  {}", where_text(d))?,
            }
        }
        if n > r.samples(class).len() as u64 {
            writeln!(out, "  … and {} more", n - r.samples(class).len() as u64)?;
        }
    }
    let summary = format!(
        "{} keys in {a}, {} in {b}: {} only in {a}, {} only in {b}, {} different",
        r.records_a,
        r.records_b,
        r.count(Class::OnlyInA),
        r.count(Class::OnlyInB),
        r.count(Class::Different)
    );
    if r.is_equal() { writeln!(out, "equal: {summary}") } else { writeln!(out, "differ: {summary}") }
}

fn json(r: &mut DiffReport, out: &mut dyn Write) -> Result<(), Failure> {
    let mut o = Vec::with_capacity(1 << 16);
    o.extend_from_slice(if r.is_equal() { b"{\"equal\":true" } else { b"{\"equal\":false" });
    let mut write_err = None;
    for (class, name) in Class::ALL.into_iter().zip(["only_in_a", "only_in_b", "different"]) {
        o.extend_from_slice(b",\"");
        o.extend_from_slice(name.as_bytes());
        o.extend_from_slice(b"\":[");
        let mut first = true;
        r.for_each(class, |d| {
            if !first {
                o.push(b',');
            }
            first = false;
            match d.scope {
                Scope::Db(db) => {
                    o.extend_from_slice(b"{\"db\":");
                    push_u64(&mut o, db);
                    o.extend_from_slice(b",\"key\":");
                }
                Scope::Function => o.extend_from_slice(b"{\"function\":"),
            }
            json_bytes(&mut o, &d.key);
            if let Some(w) = d.what {
                o.extend_from_slice(b",\"what\":\"");
                o.extend_from_slice(w.name().as_bytes());
                o.push(b'"');
            }
            o.push(b'}');
            if o.len() >= 1 << 16 {
                let w = out.write_all(&o);
                o.clear();
                if let Err(e) = w {
                    write_err = Some(e);
                    return Err(Error::without_offset(ErrorKind::Invalid("stdout".into())));
                }
            }
            Ok(())
        })
        .map_err(|e| write_err.take().map_or_else(|| Failure::from(e), out_err))?;
        o.push(b']');
    }
    o.extend_from_slice(b"}\n");
    out.write_all(&o).map_err(out_err)
}
