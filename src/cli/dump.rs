//! `rdbkit dump`: every key as a JSON line, or as RESP commands that `redis-cli --pipe` loads into a live server.
//! The text itself comes from the library ([`rdbkit::render`], whose docs list the commands and fallbacks); this
//! module reads the input (validated first), filters by database and reports the `RESTORE` fallbacks on stderr.

use crate::Format;
use crate::cli::common::{Failure, for_each_validated_record, out_err};
use rdbkit::read::RecordKind;
use rdbkit::render::{Output, RenderError, Renderer};
use std::io::Write;

/// Options of `rdbkit dump`.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// Output format.
    pub format: Format,
    /// Only this database.
    pub db: Option<u64>,
    /// RESP: RESTORE every value.
    pub restore: bool,
    /// Deep-validate the whole input before writing anything (the verdict of `verify`).
    pub validate: bool,
}

/// `rdbkit dump FILE --format json|resp [--db N] [--restore]`.
pub fn dump(path: &str, opts: &DumpOptions, out: &mut dyn Write) -> Result<(), Failure> {
    let format = match opts.format {
        Format::Json => rdbkit::render::Format::Json,
        Format::Resp => rdbkit::render::Format::Resp,
    };
    let mut renderer = Renderer::new(format, opts.restore);
    let mut output = Output::new(out);
    let res = for_each_validated_record(path, opts.validate, |header, rec| {
        if let RecordKind::Entry(e) = &rec.kind
            && opts.db.is_some_and(|d| d != e.db)
        {
            return Ok(());
        }
        renderer.record(&mut output, header, rec).map_err(|e| match e {
            RenderError::Write(e) => out_err(e),
            RenderError::Record(e) => Failure::from(e),
            other => Failure::from(rdbkit::Error::from(std::io::Error::other(other.to_string()))),
        })
    });
    let w = output.flush().map_err(out_err);
    report_fallbacks(&renderer);
    res?;
    w
}

/// Tells on stderr how many keys were written as RESTORE because ordinary commands cannot recreate them exactly.
fn report_fallbacks(renderer: &Renderer) {
    let counts = renderer.fallbacks();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    if total == 0 || crate::cli::common::quiet() {
        return;
    }
    let why: Vec<String> = counts.iter().map(|(f, n)| format!("{n} {}", f.why())).collect();
    eprintln!(
        "rdbkit dump: {total} key(s) written as RESTORE (the server must load RDB payloads of this file's version): {}",
        why.join("; ")
    );
}
