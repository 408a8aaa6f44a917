//! The writing subcommands — `convert`, `split`, `export`, `import` — as thin wrappers over
//! [`rdbkit::workflow`]: argument checks, output files (atomic, page-aligned or gzip), reports as text or JSON.

use crate::cli::common::Failure;
use rdbkit::cluster::ShardLayout;
use rdbkit::input::Input;
use rdbkit::io::publish;
use rdbkit::io::{
    AtomicFile, DestLock, DigestHandle, Digesting, FileSet, FinishWrite, GzipWriter, OutputTarget, PageAlign,
    ParallelGzipWriter, output_target,
};
use rdbkit::read::{Header, LogicalType};
use rdbkit::target::{Target, header_for_version};
use rdbkit::transform::{DbRules, OnDuplicate};
use rdbkit::workflow::{self, JobOptions, Report};
use serde_json::{Value as J, json};
use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How an output is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blob {
    /// A plain RDB.
    Plain,
    /// Zero-padded to a multiple of 512 bytes (page blob).
    Page,
    /// gzip-compressed (`.gz` block blob).
    Gzip,
}

/// Options every writing command shares.
#[derive(Debug, Clone, Default)]
pub struct Common {
    /// `--rdb-version`.
    pub rdb_version: Option<u32>,
    /// `--target`.
    pub target: Option<String>,
    /// `--lossy`.
    pub lossy: bool,
    /// `--on-duplicate`.
    pub on_duplicate: Option<String>,
    /// `--databases`.
    pub databases: Option<u64>,
    /// `--tier`.
    pub tier: Option<String>,
    /// `--db`.
    pub db: Option<u64>,
    /// `--move-db A:B`.
    pub move_db: Vec<String>,
    /// `--match`.
    pub pattern: Option<String>,
    /// `--type`.
    pub types: Vec<String>,
    /// `--drop-expired`.
    pub drop_expired: bool,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `--with-module`.
    pub with_modules: Vec<String>,
    /// `--force`: replace an existing destination that is not an RDB file (or not an rdbkit manifest).
    pub force: bool,
    /// `--no-validate`: read the inputs with the checksum check only (trusted inputs).
    pub no_validate: bool,
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Io(msg.into())
}

fn fail(e: rdbkit::Error) -> Failure {
    match e.kind() {
        rdbkit::ErrorKind::Invalid(_) | rdbkit::ErrorKind::Unrepresentable { .. } => Failure::Invalid(e.to_string()),
        _ => Failure::from(e),
    }
}

/// The header to write: `--rdb-version`, else `--target`, else the first input's.
fn target_header(c: &Common, inputs: &[Input]) -> Result<(Header, Option<Target>), Failure> {
    if !c.with_modules.is_empty() && c.target.is_none() {
        return Err(usage("--with-module only makes sense with --target"));
    }
    match (c.rdb_version, &c.target) {
        (Some(_), Some(_)) => Err(usage("give --rdb-version or --target, not both")),
        (Some(v), None) => Ok((header_for_version(v).map_err(fail)?, None)),
        (None, Some(t)) => {
            let t = Target::from_name(t).map_err(fail)?;
            Ok((t.header, Some(t)))
        }
        (None, None) => Ok((inputs.first().ok_or_else(|| usage("no input"))?.header().map_err(fail)?, None)),
    }
}

fn job_options(c: &Common, header: Header, db_limit: Option<u64>) -> Result<JobOptions, Failure> {
    let mut opts = JobOptions::new(header);
    if let Some(t) = &c.target {
        let t = Target::from_name(t).map_err(fail)?;
        let mut m: Vec<String> = t.builtin_modules.iter().map(|s| s.to_string()).collect();
        m.extend(c.with_modules.iter().cloned());
        opts.modules = Some(m);
    }
    opts.lossy = c.lossy;
    opts.validate = !c.no_validate;
    opts.on_duplicate = match c.on_duplicate.as_deref() {
        None | Some("error") => OnDuplicate::Error,
        Some("first") | Some("last") => OnDuplicate::First,
        Some(o) => return Err(usage(format!("--on-duplicate must be error, first or last, not {o:?}"))),
    };
    let mut dbs = DbRules::default();
    dbs.limit = db_limit;
    dbs.only = c.db;
    for m in &c.move_db {
        let (a, b) = m
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
            .ok_or_else(|| usage(format!("--move-db takes FROM:TO database numbers, not {m:?}")))?;
        dbs.moves.insert(a, b);
    }
    opts.selection.dbs = dbs;
    opts.selection.pattern = c.pattern.as_ref().map(|p| p.as_bytes().to_vec());
    if !c.types.is_empty() {
        let mut types = Vec::new();
        for t in &c.types {
            types.push(LogicalType::from_name(t).ok_or_else(|| {
                usage(format!("unknown --type {t:?} (string, list, set, zset, hash, stream, module)"))
            })?);
        }
        opts.selection.types = Some(types);
    }
    if c.drop_expired {
        opts.selection.drop_expired_at = Some(opts.now_ms);
    }
    if !c.quiet && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        opts.progress = Some(workflow::ProgressHook(std::sync::Arc::new(move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
            if done >= total {
                bar.finish_and_clear();
            }
        })));
    }
    Ok(opts)
}

/// The database limit from `--databases` / `--tier`.
fn db_limit(c: &Common) -> Result<Option<u64>, Failure> {
    match (c.databases, &c.tier) {
        (Some(_), Some(_)) => Err(usage("give --databases or --tier, not both")),
        (Some(0), None) => Err(usage("--databases must be at least 1")),
        (Some(n), None) => Ok(Some(n)),
        (None, Some(t)) => workflow::tier_databases(t)
            .map(Some)
            .ok_or_else(|| usage(format!("unknown tier {t:?} (c0-c6, p1-p5, enterprise)"))),
        (None, None) => Ok(None),
    }
}

fn open_inputs(paths: &[String], reverse: bool) -> Result<Vec<Input>, Failure> {
    if paths.iter().filter(|p| *p == "-").count() > 1 {
        return Err(usage("stdin (-) can be given once"));
    }
    let mut v = Vec::new();
    for p in paths {
        if rdbkit::live::is_live_url(p) {
            v.extend(crate::cli::common::open_live_all(p)?);
            continue;
        }
        let input = Input::open(p).map_err(|e| fail(e.in_file(p)))?;
        crate::cli::common::opened(&input);
        v.push(input);
    }
    if reverse {
        // `--on-duplicate last` = `first` over the inputs in reverse order.
        v.reverse();
    }
    Ok(v)
}

/// An output file and the size and checksum of what was stored in it.
#[derive(Debug, Clone)]
struct OutFile {
    path: PathBuf,
    stored: DigestHandle,
}

impl OutFile {
    fn json(&self) -> (String, u64, String) {
        (self.path.display().to_string(), self.stored.bytes(), format!("crc64-xz:{:016x}", self.stored.crc64_xz()))
    }
}

/// What the outputs of a run must not harm: the inputs (by device and inode), and existing files that are not
/// ours (unless `--force`). Also collects the first error writing an output, so a full disk is reported against
/// the output's path rather than the input being read when it happened.
#[derive(Debug, Default)]
struct Guard {
    inputs: Vec<(u64, u64, String)>,
    force: bool,
    write_error: Arc<Mutex<Option<String>>>,
}

impl Guard {
    fn new(paths: &[String], force: bool) -> Guard {
        let mut inputs = Vec::new();
        #[cfg(unix)]
        for p in paths {
            use std::os::unix::fs::MetadataExt;
            // stdin: whatever file descriptor 0 is (`< out.rdb` counts).
            let m = if p == "-" { std::fs::metadata("/dev/stdin") } else { std::fs::metadata(p) };
            if let Ok(m) = m {
                inputs.push((m.dev(), m.ino(), p.clone()));
            }
        }
        #[cfg(not(unix))]
        let _ = paths;
        Guard { inputs, force, write_error: Arc::default() }
    }

    /// Refuses (exit 2) when `path` exists and is one of the inputs.
    fn not_an_input(&self, path: &Path) -> Result<(), Failure> {
        #[cfg(unix)]
        if let Ok(m) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            if let Some((_, _, name)) = self.inputs.iter().find(|(d, i, _)| *d == m.dev() && *i == m.ino()) {
                return Err(usage(format!(
                    "{}: output is an input ({name}); refusing to write over it",
                    path.display()
                )));
            }
        }
        #[cfg(not(unix))]
        let _ = path;
        Ok(())
    }

    /// The job's failure, or the output error behind it.
    fn failure(&self, e: rdbkit::Error) -> Failure {
        match self.write_error.lock().ok().and_then(|mut g| g.take()) {
            Some(msg) => Failure::Io(msg),
            None => fail(e),
        }
    }

    fn watch(&self, inner: Box<dyn FinishWrite>, path: &Path) -> Box<dyn FinishWrite> {
        Box::new(Watch { inner, path: path.to_path_buf(), slot: self.write_error.clone() })
    }
}

/// Records the first write error of an output (with its path) in a slot the CLI reads when the job fails.
struct Watch {
    inner: Box<dyn FinishWrite>,
    path: PathBuf,
    slot: Arc<Mutex<Option<String>>>,
}

impl Watch {
    fn note<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r
            && e.kind() != std::io::ErrorKind::Interrupted
            && let Ok(mut g) = self.slot.lock()
            && g.is_none()
        {
            let msg = e.to_string();
            // AtomicFile errors name the file already.
            let p = self.path.display().to_string();
            *g = Some(if msg.starts_with(&p) { msg } else { format!("{p}: {msg}") });
        }
        r
    }
}

impl Write for Watch {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let r = self.inner.write_all(buf);
        self.note(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

impl FinishWrite for Watch {
    fn finish_write(self: Box<Self>) -> std::io::Result<()> {
        self.inner.finish_write()
    }
    fn can_patch(&self) -> bool {
        self.inner.can_patch()
    }
    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> std::io::Result<()> {
        let r = self.inner.patch(offset, old, new);
        self.note(r)
    }
}

fn io_fail(e: std::io::Error) -> Failure {
    Failure::Io(e.to_string())
}

/// Wraps a base writer: measured as stored, then padded or gzipped for the blob kind.
fn wrap_output(
    base: Box<dyn FinishWrite>,
    path: &Path,
    blob: Blob,
) -> Result<(Box<dyn FinishWrite>, OutFile), Failure> {
    let (measured, stored) = Digesting::new(base);
    let w: Box<dyn FinishWrite> = match blob {
        Blob::Plain => Box::new(measured),
        Blob::Page => Box::new(PageAlign::new(measured)),
        // One gzip member either way; several threads when the machine has the cores for it.
        Blob::Gzip => match std::thread::available_parallelism().map_or(1, |n| n.get()) {
            1 => Box::new(GzipWriter::new_default(measured)),
            threads => Box::new(
                ParallelGzipWriter::new(measured, rdbkit::io::DEFAULT_LEVEL, threads)
                    .map_err(|e| Failure::Io(format!("{}: {e}", path.display())))?,
            ),
        },
    };
    Ok((w, OutFile { path: path.to_path_buf(), stored }))
}

/// One output, opened: stdout for `-` (and `/dev/stdout`), written through for a device, FIFO or `/dev/fd/N`,
/// else an atomic file replacing `path` under the destination's lock (`lock_stem`, default the file name).
struct Single {
    w: Box<dyn FinishWrite>,
    file: OutFile,
    _lock: Option<DestLock>,
}

fn open_output(path: &Path, blob: Blob, guard: &Guard, lock_stem: Option<&str>) -> Result<Single, Failure> {
    let (base, lock, shown): (Box<dyn FinishWrite>, Option<DestLock>, PathBuf) =
        match output_target(path).map_err(io_fail)? {
            OutputTarget::Stdout => (Box::new(std::io::stdout()), None, path.to_path_buf()),
            OutputTarget::Through(p) => {
                guard.not_an_input(&p)?;
                let f = publish::open_through(&p).map_err(io_fail)?;
                (Box::new(BufWriter::with_capacity(1 << 18, f)), None, p)
            }
            OutputTarget::Replace(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| usage(format!("{}: not a file path", p.display())))?;
                let lock = DestLock::acquire(&dir, lock_stem.unwrap_or(&name)).map_err(io_fail)?;
                guard.not_an_input(&p)?;
                if std::fs::symlink_metadata(&p).is_ok()
                    && !guard.force
                    && !publish::looks_like_rdb(&p).map_err(|e| Failure::Io(format!("{}: {e}", p.display())))?
                {
                    return Err(usage(format!(
                        "{}: exists and is not an RDB file; refusing to replace it (use --force)",
                        p.display()
                    )));
                }
                publish::remove_stale_temps(&dir, |t| t == name).map_err(io_fail)?;
                let f = AtomicFile::create(&p).map_err(io_fail)?;
                (Box::new(f), Some(lock), p)
            }
        };
    let base = guard.watch(base, &shown);
    let (w, file) = wrap_output(base, path, blob)?;
    Ok(Single { w, file, _lock: lock })
}

fn finish_output(w: Box<dyn FinishWrite>, path: &Path) -> Result<(), Failure> {
    w.finish_write().map_err(|e| {
        let msg = e.to_string();
        let p = path.display().to_string();
        Failure::Io(if msg.starts_with(&p) { msg } else { format!("{p}: {msg}") })
    })
}

fn layout(shards: Option<usize>, nodes: Option<&Path>) -> Result<Option<ShardLayout>, Failure> {
    match (shards, nodes) {
        (Some(_), Some(_)) => Err(usage("give --shards or --nodes, not both")),
        (Some(n), None) => Ok(Some(ShardLayout::even(n).map_err(fail)?)),
        (None, Some(p)) => {
            // A nodes file that cannot be used is a usage error (exit 2), like any bad argument.
            let layout = ShardLayout::from_nodes_file(p).map_err(|e| usage(format!("--nodes {}: {e}", p.display())))?;
            Ok(Some(layout))
        }
        (None, None) => Ok(None),
    }
}

/// Runs a single-output job; returns the report, the output, and whether it went to stdout.
fn run_single(
    inputs: &[Input],
    opts: &JobOptions,
    path: &Path,
    blob: Blob,
    guard: &Guard,
    lock_stem: Option<&str>,
) -> Result<(Report, Vec<OutFile>), Failure> {
    let out = open_output(path, blob, guard, lock_stem)?;
    let (w, report) = workflow::convert(inputs, out.w, opts).map_err(|e| guard.failure(e))?;
    finish_output(w, &out.file.path)?;
    Ok((report, vec![out.file]))
}

/// The file names the manifest at `path` references, `None` when there is none (or `--force` replaces one that
/// is not ours). Refuses to replace anything else.
fn current_manifest(path: &Path, force: bool) -> Result<Option<Vec<String>>, Failure> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        r => r.map_err(|e| Failure::Io(format!("{}: {e}", path.display())))?,
    };
    let not_ours = |what: &str| {
        if force {
            Ok(None)
        } else {
            Err(usage(format!("{}: {what}; refusing to replace it (use --force)", path.display())))
        }
    };
    if meta.is_dir() {
        // With --force the publication fails at the rename and removes this run's files.
        return not_ours("is a directory");
    }
    if !meta.is_file() {
        return Err(usage(format!("{}: not a regular file; refusing to replace it", path.display())));
    }
    let text = std::fs::read(path).map_err(|e| Failure::Io(format!("{}: {e}", path.display())))?;
    match serde_json::from_slice::<J>(&text) {
        Ok(m) if m["format"] == "rdbkit-shards-1" => Ok(Some(
            m["shards"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s["file"].as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        )),
        _ => not_ours("exists and is not an rdbkit manifest"),
    }
}

/// Runs a split into `dir`: every shard and then the manifest, published all or nothing as a [`FileSet`].
#[allow(clippy::too_many_arguments)]
fn run_set(
    inputs: &[Input],
    opts: &JobOptions,
    layout: ShardLayout,
    dir: &Path,
    prefix: &str,
    blob: Blob,
    guard: &Guard,
) -> Result<(Report, Vec<OutFile>, ShardLayout), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::Io(format!("{}: {e}", dir.display())))?;
    let lock = DestLock::acquire(dir, prefix).map_err(io_fail)?;
    // What this run may replace or remove: the manifest, files of the set (any generation), their temporary
    // files — not `P.rdb`, which a split never touches (and is often its input: the default prefix is its stem).
    let single = [format!("{prefix}.rdb"), format!("{prefix}.rdb.gz")];
    for p in publish::prefix_files(dir, prefix).map_err(io_fail)? {
        if !p.file_name().is_some_and(|n| single.iter().any(|s| n == s.as_str())) {
            guard.not_an_input(&p)?;
        }
    }
    let manifest = dir.join(format!("{prefix}.manifest.json"));
    let current = current_manifest(&manifest, guard.force)?;
    let ext = if blob == Blob::Gzip { ".rdb.gz" } else { ".rdb" };
    let set = FileSet::begin(lock, prefix, ext, layout.len(), current.as_deref()).map_err(io_fail)?;
    let mut outs = Vec::new();
    let mut files = Vec::new();
    for i in 0..layout.len() {
        let path = set.member_path(i).to_path_buf();
        let base = guard.watch(Box::new(set.create(i).map_err(io_fail)?), &path);
        let (w, f) = wrap_output(base, &path, blob)?;
        outs.push(w);
        files.push(f);
    }
    let (outs, report) = workflow::split(inputs, layout.clone(), outs, opts).map_err(|e| guard.failure(e))?;
    for (w, f) in outs.into_iter().zip(&files) {
        finish_output(w, &f.path)?;
    }
    let text = manifest_text(&report, &files, &layout, set.generation());
    set.commit(text.as_bytes()).map_err(|e| {
        let msg = e.to_string();
        let p = manifest.display().to_string();
        Failure::Io(if msg.starts_with(&p) { msg } else { format!("{p}: {msg}") })
    })?;
    Ok((report, files, layout))
}

fn keys_json(m: &BTreeMap<u64, u64>) -> J {
    J::Object(m.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

fn total(m: &BTreeMap<u64, u64>) -> u64 {
    m.values().sum()
}

/// A byte string for JSON: a string when it is UTF-8, else `{"b64": …}` (as `dump --format json` does).
fn bytes_json(b: &[u8]) -> J {
    match std::str::from_utf8(b) {
        Ok(s) => J::String(s.to_string()),
        Err(_) => json!({ "b64": crate::cli::common::base64(b) }),
    }
}

/// Why keys of some databases were not kept.
fn db_reason(report: &Report, layout: Option<&ShardLayout>) -> Option<String> {
    if report.dropped_db.is_empty() {
        return None;
    }
    Some(match (layout, report.db_limit) {
        (Some(_), _) => "a cluster keeps database 0 only".to_string(),
        (None, Some(n)) => format!("database over the target's limit of {n}, or not selected"),
        (None, None) => "database not selected".to_string(),
    })
}

fn report_json(report: &Report, files: &[OutFile], layout: Option<&ShardLayout>, dry_run: bool) -> J {
    let inputs: Vec<J> = report
        .inputs
        .iter()
        .map(|i| {
            json!({
                "file": i.name, "magic": i.magic, "rdb_version": i.version, "bytes": i.file_len,
                "keys": keys_json(&i.keys), "expires": keys_json(&i.expires), "expired": keys_json(&i.expired),
                "functions": i.functions, "modules": i.modules,
                "problems": i.problems.iter().map(|p| json!({
                    "db": p.db, "key": p.key.as_deref().map(bytes_json),
                    "item": (!p.item.is_empty()).then_some(&p.item), "feature": p.what.to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let outputs: Vec<J> = report
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let (file, bytes, checksum) = files.get(i).map(OutFile::json).unwrap_or_default();
            let mut v = json!({
                "file": file, "keys": keys_json(&o.keys), "bytes": bytes, "checksum": checksum,
                "rdb_bytes": o.rdb_bytes, "rdb_checksum": o.rdb_checksum.map(|c| format!("{c:016x}")),
            });
            if let Some(l) = layout {
                v["slots"] = json!(l.shards()[i].ranges.iter().map(|r| r.to_string()).collect::<Vec<_>>());
            }
            v
        })
        .collect();
    json!({
        "target": report.target,
        "dry_run": dry_run,
        "inputs": inputs,
        "kept": keys_json(&report.outputs.iter().fold(BTreeMap::new(), |mut acc, o| {
            for (db, n) in &o.keys { *acc.entry(*db).or_insert(0) += n; }
            acc
        })),
        "dropped": {
            "db": keys_json(&report.dropped_db),
            "db_reason": db_reason(report, layout),
            "pattern": report.filtered.pattern, "type": report.filtered.r#type, "expired": report.filtered.expired,
            "duplicates": report.duplicates,
            "lossy": report.lossy.iter().map(|d| json!({
                "db": d.db, "key": d.key.as_deref().map(bytes_json), "what": d.what,
            })).collect::<Vec<_>>(),
        },
        "re_encoded": report.re_encoded,
        "outputs": outputs,
    })
}

fn print_report(
    out: &mut dyn Write,
    report: &Report,
    files: &[OutFile],
    layout: Option<&ShardLayout>,
    c: &Common,
    dry_run: bool,
    verb: &str,
) -> Result<(), Failure> {
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(crate::cli::common::out_err);
    if c.json {
        return w(out, report_json(report, files, layout, dry_run).to_string());
    }
    if !c.quiet {
        for i in &report.inputs {
            let dbs: Vec<String> = i.keys.iter().map(|(d, n)| format!("db{d}={n}")).collect();
            w(out, format!("input {}: {} ({} bytes), keys {}", i.name, i.magic, i.file_len, dbs.join(" ")))?;
            if !i.modules.is_empty() {
                let m: Vec<&str> = i.modules.keys().map(String::as_str).collect();
                w(out, format!("  needs modules on the target: {}", m.join(", ")))?;
            }
        }
        if !report.dropped_db.is_empty() {
            let d: Vec<String> = report.dropped_db.iter().map(|(d, n)| format!("db{d}={n}")).collect();
            let why = db_reason(report, layout).unwrap_or_default();
            w(out, format!("dropped ({why}): {} keys: {}", total(&report.dropped_db), d.join(" ")))?;
        }
        let f = report.filtered;
        if f.pattern + f.r#type + f.expired > 0 {
            w(
                out,
                format!(
                    "dropped by filters: {} not matching, {} of other types, {} expired",
                    f.pattern, f.r#type, f.expired
                ),
            )?;
        }
        if report.duplicates > 0 {
            w(out, format!("dropped duplicates: {}", report.duplicates))?;
        }
        for d in &report.lossy {
            let key = d.key.as_ref().map(|k| format!(" key {}", rdbkit::escape_bytes(k))).unwrap_or_default();
            let db = d.db.map(|d| format!(" db {d}")).unwrap_or_default();
            let at = if db.is_empty() && key.is_empty() { String::new() } else { format!("{db}{key}:") };
            w(out, format!("dropped (lossy):{at} {}", d.what))?;
        }
        for (i, o) in report.outputs.iter().enumerate() {
            if dry_run {
                let d: Vec<String> = o.keys.iter().map(|(d, n)| format!("db{d}={n}")).collect();
                w(out, format!("would keep {} keys: {}", total(&o.keys), d.join(" ")))?;
                continue;
            }
            let slots = layout
                .map(|l| {
                    let r: Vec<String> = l.shards()[i].ranges.iter().map(|r| r.to_string()).collect();
                    format!(" slots {}", r.join(","))
                })
                .unwrap_or_default();
            let (name, bytes, _) = files.get(i).map(OutFile::json).unwrap_or_default();
            w(out, format!("output {name}: {} keys, {bytes} bytes{slots}", total(&o.keys)))?;
        }
    }
    let kept: u64 = report.outputs.iter().map(|o| total(&o.keys)).sum();
    let dropped = total(&report.dropped_db)
        + report.filtered.pattern
        + report.filtered.r#type
        + report.filtered.expired
        + report.duplicates;
    let what = if dry_run { "would write" } else { verb };
    w(
        out,
        format!(
            "{what} {kept} keys to {} file(s) as {} ({} re-encoded, {dropped} dropped, {} lossy drops)",
            report.outputs.len().max(files.len()),
            report.target,
            report.re_encoded,
            report.lossy.len()
        ),
    )
}

/// Whether `path` writes to this process's standard output (`-`, `/dev/stdout`, or anything that resolves to
/// the same open file, like a symlink to `/proc/self/fd/1`).
fn is_stdout(path: &Path) -> bool {
    match output_target(path) {
        Ok(OutputTarget::Stdout) => true,
        #[cfg(unix)]
        Ok(OutputTarget::Through(p)) => {
            use std::os::unix::fs::MetadataExt;
            match (std::fs::metadata(&p), std::fs::metadata("/dev/stdout")) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// `rdbkit convert`.
pub fn convert(
    inputs: &[String],
    output: &Path,
    c: &Common,
    page_align: bool,
    gzip: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let blob = match (page_align, gzip) {
        (true, true) => return Err(usage("give --page-align or --gzip, not both")),
        (true, false) => Blob::Page,
        (false, true) => Blob::Gzip,
        (false, false) => Blob::Plain,
    };
    let ins = open_inputs(inputs, c.on_duplicate.as_deref() == Some("last"))?;
    let (header, _) = target_header(c, &ins)?;
    let opts = job_options(c, header, db_limit(c)?)?;
    let guard = Guard::new(inputs, c.force);
    let (report, files) = run_single(&ins, &opts, output, blob, &guard, None)?;
    // With output on stdout, the report goes to stderr so it does not mix with the RDB bytes.
    if is_stdout(output) {
        print_report(&mut std::io::stderr(), &report, &files, None, c, false, "wrote")
    } else {
        print_report(out, &report, &files, None, c, false, "wrote")
    }
}

fn default_prefix(inputs: &[String]) -> String {
    if let Some(u) = inputs.first().and_then(|p| rdbkit::live::RedisUrl::parse(p).ok()) {
        // A live server: named by its address (never by what precedes it, the credentials).
        let name = format!("{}-{}", u.host.replace([':', '.'], "_"), u.port);
        return if publish::valid_prefix(&name) { name } else { "dump".into() };
    }
    inputs
        .first()
        .and_then(|p| Path::new(p).file_name())
        .map(|n| {
            let n = n.to_string_lossy();
            let n = n.strip_suffix(".gz").unwrap_or(&n);
            n.strip_suffix(".rdb").unwrap_or(n).to_string()
        })
        .filter(|s| s != "-" && publish::valid_prefix(s))
        .unwrap_or_else(|| "dump".into())
}

/// The manifest describing the shards of one generation (`P.manifest.json`, committed last).
fn manifest_text(report: &Report, files: &[OutFile], layout: &ShardLayout, generation: &str) -> String {
    let shards: Vec<J> = report
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let f = &files[i];
            json!({
                "file": f.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                "slots": layout.shards()[i].ranges.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "keys": total(&o.keys), "bytes": f.stored.bytes(),
                "checksum": format!("crc64-xz:{:016x}", f.stored.crc64_xz()),
                "rdb_checksum": o.rdb_checksum.map(|c| format!("{c:016x}")),
            })
        })
        .collect();
    let manifest = json!({
        "format": "rdbkit-shards-1", "generation": generation, "target": report.target, "shards": shards,
    });
    serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n"
}

/// Refuses a `--prefix` that is not one normal file-name component.
fn check_prefix(prefix: &str) -> Result<(), Failure> {
    if publish::valid_prefix(prefix) {
        Ok(())
    } else {
        Err(usage(format!("--prefix {prefix:?} must be one plain file name: not empty, no '/', not starting with '.'")))
    }
}

/// `rdbkit split`.
pub fn split(
    inputs: &[String],
    out_dir: &Path,
    shards: Option<usize>,
    nodes: Option<&Path>,
    prefix: Option<&str>,
    c: &Common,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    if let Some(p) = prefix {
        check_prefix(p)?;
    }
    let layout = layout(shards, nodes)?.ok_or_else(|| usage("give --shards N or --nodes FILE"))?;
    let ins = open_inputs(inputs, c.on_duplicate.as_deref() == Some("last"))?;
    let (header, _) = target_header(c, &ins)?;
    let opts = job_options(c, header, db_limit(c)?)?;
    let prefix = prefix.map(str::to_string).unwrap_or_else(|| default_prefix(inputs));
    let guard = Guard::new(inputs, c.force);
    let (report, files, layout) = run_set(&ins, &opts, layout, out_dir, &prefix, Blob::Plain, &guard)?;
    print_report(out, &report, &files, Some(&layout), c, false, "split")
}

/// `rdbkit export`.
#[allow(clippy::too_many_arguments)]
pub fn export(
    inputs: &[String],
    prefix: &str,
    out_dir: &Path,
    blob: Blob,
    shards: Option<usize>,
    nodes: Option<&Path>,
    c: &Common,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    check_prefix(prefix)?;
    let ins = open_inputs(inputs, c.on_duplicate.as_deref() == Some("last"))?;
    let (header, _) = target_header(c, &ins)?;
    let layout = layout(shards, nodes)?;
    let opts = job_options(c, header, db_limit(c)?)?;
    let guard = Guard::new(inputs, c.force);
    std::fs::create_dir_all(out_dir).map_err(|e| Failure::Io(format!("{}: {e}", out_dir.display())))?;
    let (report, files, layout) = match layout {
        None => {
            let path = out_dir.join(format!("{prefix}.rdb{}", if blob == Blob::Gzip { ".gz" } else { "" }));
            let (r, f) = run_single(&ins, &opts, &path, blob, &guard, Some(prefix))?;
            (r, f, None)
        }
        Some(l) => {
            let (r, f, l) = run_set(&ins, &opts, l, out_dir, prefix, blob, &guard)?;
            (r, f, Some(l))
        }
    };
    print_report(out, &report, &files, layout.as_ref(), c, false, "exported")
}

/// `rdbkit import`.
#[allow(clippy::too_many_arguments)]
pub fn import(
    inputs: &[String],
    output: Option<&Path>,
    out_dir: Option<&Path>,
    shards: Option<usize>,
    nodes: Option<&Path>,
    dry_run: bool,
    c: &Common,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    if c.target.is_none() {
        return Err(usage("import needs --target SERVER"));
    }
    let ins = open_inputs(inputs, c.on_duplicate.as_deref() == Some("last"))?;
    let (header, target) = target_header(c, &ins)?;
    let layout = layout(shards, nodes)?;
    let mut limit = db_limit(c)?;
    if layout.is_some() {
        limit = Some(1);
    }
    let mut opts = job_options(c, header, limit)?;
    // A loading master drops keys that are already expired; say so and do it here, explicitly.
    opts.selection.drop_expired_at = Some(opts.now_ms);
    if let Some(t) = target {
        for i in &ins {
            let h = i.header().map_err(fail)?;
            if !t.loads(h) && !c.quiet && !c.json {
                let _ = writeln!(
                    out,
                    "note: {} is {}, newer than {} loads: rewriting as {}",
                    i.name(),
                    h.magic(),
                    t.name,
                    header.magic()
                );
            }
        }
    }
    if dry_run {
        let report = workflow::plan(&ins, &opts).map_err(fail)?;
        let problems: usize = report.inputs.iter().map(|i| i.problems.len()).sum();
        print_report(out, &report, &[], layout.as_ref(), c, true, "import")?;
        if problems > 0 && !c.lossy {
            return Err(Failure::Invalid(format!(
                "{problems} item(s) cannot be written to {} (use --lossy to drop them)",
                header.magic()
            )));
        }
        return Ok(());
    }
    let guard = Guard::new(inputs, c.force);
    let (report, files, layout) = match (layout, output, out_dir) {
        (None, Some(o), None) => {
            let (r, f) = run_single(&ins, &opts, o, Blob::Plain, &guard, None)?;
            (r, f, None)
        }
        (Some(l), None, Some(d)) => {
            let prefix = default_prefix(inputs);
            let (r, f, l) = run_set(&ins, &opts, l, d, &prefix, Blob::Plain, &guard)?;
            (r, f, Some(l))
        }
        (None, _, Some(_)) => {
            return Err(usage("--out-dir is for a cluster (with --shards/--nodes); import to one server takes -o OUT"));
        }
        (None, _, _) => return Err(usage("import to one server needs -o OUT")),
        (Some(_), _, _) => return Err(usage("import to a cluster (--shards/--nodes) needs --out-dir DIR")),
    };
    print_report(out, &report, &files, layout.as_ref(), c, false, "imported")
}

/// `rdbkit load IN... --to redis://HOST:PORT`: every key of the inputs into a running server with `RESTORE`.
pub fn load(
    inputs: &[String],
    to: &str,
    opts: &rdbkit::live::load::LoadOptions,
    c: &Common,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    use rdbkit::live::RedisUrl;
    if c.target.is_some() || c.rdb_version.is_some() {
        return Err(usage("load takes the target's version from the server itself: drop --target/--rdb-version"));
    }
    let url = RedisUrl::parse(to).map_err(|m| usage(format!("--to: {m}")))?;
    if url.db.is_some() {
        return Err(usage("--to takes no /DB: the inputs' databases are kept (use --move-db FROM:TO)"));
    }
    let ins = open_inputs(inputs, c.on_duplicate.as_deref() == Some("last"))?;
    // The header is replaced by the server's own; the filters are what count here.
    let job = job_options(c, Header::new(rdbkit::read::Flavor::Redis, 10), db_limit(c)?)?;
    let live = crate::cli::common::live_options();
    let report = rdbkit::live::load::load(&ins, &url, &live, &job, opts).map_err(|e| match e.kind() {
        rdbkit::ErrorKind::Io(_) => Failure::Io(format!("{url}: {e}")),
        _ => fail(e),
    })?;
    print_load_report(out, &report, c.json)?;
    if !report.complete() {
        return Err(Failure::Invalid(format!(
            "{} key(s) not loaded into {} ({} already there; --on-existing replace|skip to overwrite or keep them)",
            report.failed.len() + report.existing.len(),
            report.target,
            report.existing.len()
        )));
    }
    Ok(())
}

fn print_load_report(out: &mut dyn Write, r: &rdbkit::live::load::LoadReport, as_json: bool) -> Result<(), Failure> {
    use crate::cli::common::json_bytes;
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(crate::cli::common::out_err);
    let keys =
        |m: &BTreeMap<u64, u64>| m.iter().map(|(d, n)| (d.to_string(), J::from(*n))).collect::<serde_json::Map<_, _>>();
    let key_json = |k: &[u8]| {
        let mut b = Vec::new();
        json_bytes(&mut b, k);
        serde_json::from_slice::<J>(&b).unwrap_or(J::Null)
    };
    if as_json {
        let failed = |v: &[rdbkit::live::load::FailedKey]| {
            v.iter().map(|f| json!({"db": f.db, "key": key_json(&f.key), "error": f.error})).collect::<Vec<_>>()
        };
        let server = r.server.as_ref().map(|s| {
            json!({"family": s.family, "version": s.version, "loads": s.target.header.magic(),
                   "databases": s.databases, "modules": s.modules})
        });
        return w(
            out,
            json!({
                "target": r.target, "server": server, "dry_run": r.dry_run, "loaded": keys(&r.loaded),
                "skipped": keys(&r.skipped), "existing": failed(&r.existing), "failed": failed(&r.failed),
                "functions": r.functions, "as_commands": r.as_commands, "dropped_db": keys(&r.dropped_db),
                "expired": r.filtered.expired,
                "lossy": r.lossy.iter().map(|d| json!({"db": d.db, "key": d.key.as_deref().map(key_json), "what": d.what})).collect::<Vec<_>>(),
            })
            .to_string(),
        );
    }
    if crate::cli::common::quiet() {
        return Ok(());
    }
    let total = |m: &BTreeMap<u64, u64>| m.values().sum::<u64>();
    if let Some(s) = &r.server {
        w(out, format!("target: {} ({} {}, loads {})", r.target, s.family, s.version, s.target.header.magic()))?;
    }
    let verb = if r.dry_run { "would load" } else { "loaded" };
    w(
        out,
        format!(
            "{verb}: {} key(s) in {} database(s), {} function librar(ies)",
            total(&r.loaded),
            r.loaded.len(),
            r.functions
        ),
    )?;
    for (db, n) in &r.loaded {
        w(out, format!("  db {db}: {n}"))?;
    }
    if r.as_commands > 0 {
        w(out, format!("as ordinary commands (payload over proto-max-bulk-len): {}", r.as_commands))?;
    }
    if !r.skipped.is_empty() {
        w(out, format!("skipped (already on the target): {}", total(&r.skipped)))?;
    }
    if r.filtered.expired > 0 {
        w(out, format!("dropped (already expired): {}", r.filtered.expired))?;
    }
    for (db, n) in &r.dropped_db {
        w(out, format!("dropped: db {db}: {n} key(s) (beyond the target's databases, or not selected)"))?;
    }
    for d in &r.lossy {
        w(out, format!("lossy: {}", d.what))?;
    }
    for (what, list) in [("already on the target", &r.existing), ("refused", &r.failed)] {
        for f in list.iter().take(20) {
            w(out, format!("{what}: db {} key {}: {}", f.db, rdbkit::escape_bytes(&f.key), f.error))?;
        }
        if list.len() > 20 {
            w(out, format!("{what}: … and {} more", list.len() - 20))?;
        }
    }
    Ok(())
}
