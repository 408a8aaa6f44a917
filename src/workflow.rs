//! The jobs rdbkit exists for — convert, split, export, import — composed from readers, sinks and writers, each
//! returning a report of what was kept and what was dropped and why.
//!
//! Every job surveys its inputs (versions, keys per database, what the target cannot hold) and refuses, naming
//! every offending item, when a conversion would lose data without `lossy`. Into outputs that can
//! [patch](crate::io::FinishWrite::can_patch) (files, buffers) a job reads its inputs once, surveying while it
//! writes, and drops the outputs on a refusal; into others (stdout, gzip) it surveys in a first pass, before
//! writing anything. Either way the inputs are deep-validated ([`JobOptions::validate`]) before an output is
//! published: a file `rdbkit verify` refuses is never copied. Outputs are written through
//! caller-provided writers; the CLI gives them [`crate::io::AtomicFile`]s so a failure leaves no file behind.
//!
//! A convert of database 5 alone, for Redis 6.2, into memory (`lossy`: the input's function library, which
//! RDB 9 cannot hold, is dropped and reported instead of refused):
//!
//! ```
//! use rdbkit::input::Input;
//! use rdbkit::read::SliceReader;
//! use rdbkit::target::header_for_version;
//! use rdbkit::workflow::{JobOptions, convert};
//!
//! # fn main() -> rdbkit::Result<()> {
//! let inputs = [Input::open("testdata/redis-7.0.rdb")?];
//! let mut opts = JobOptions::new(header_for_version(9)?); // REDIS0009, what Redis 6.2 writes
//! opts.selection.dbs.only = Some(5);
//! opts.lossy = true;
//! let (out, report) = convert(&inputs, Vec::new(), &opts)?;
//! assert_eq!(report.outputs[0].keys[&5], 3);
//! assert!(report.lossy[0].what.contains("function library"), "{:?}", report.lossy);
//! assert_eq!(report.dropped_db.values().sum::<u64>(), 51);
//!
//! // The output is an RDB file like any other.
//! let mut reader = SliceReader::new(&out)?;
//! assert_eq!(reader.header().magic(), "REDIS0009");
//! let mut records = 0;
//! while reader.next_record()?.is_some() {
//!     records += 1;
//! }
//! assert!(records > 3);
//! # Ok(()) }
//! ```

use crate::cluster::ShardLayout;
use crate::error::{Error, ErrorKind, Result};
use crate::input::Input;
use crate::io::FinishWrite;
use crate::read::{Encoding, Feature, Header, LogicalType, ReadOptions, RecordKind};
use crate::transform::{
    ClusterSplit, DbFilter, DbRules, Dedup, Dropped, KeyFilter, KeyFilterCounts, OnDuplicate, RecordSink, SlotCounts,
    WriterSink, glob::Glob,
};
use crate::write::encode::{EncodeOptions, Unrepresentable};
use crate::write::{RdbWriter, WriterOptions};
use std::collections::BTreeMap;
use std::io::Write;

/// What the target version cannot hold of one key or record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// Database of the key, if it is a key.
    pub db: Option<u64>,
    /// The key, or `None` for a function library / module AUX record.
    pub key: Option<Vec<u8>>,
    /// What the target cannot hold.
    pub what: Unrepresentable,
    /// The item, for messages: `function library "mylib"`, `module aux data of graphdata`; empty for a key.
    pub item: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(k) => write!(f, "db {} key {}: {}", self.db.unwrap_or(0), crate::escape_bytes(k), self.what),
            None => write!(f, "{}: {}", self.item, self.what),
        }
    }
}

/// The version feature a value's encoding needs that `target` lacks (so no re-encoding can hold it), if any.
pub fn feature_gap(enc: Encoding, target: Header) -> Option<Feature> {
    if enc.allowed_in(target) {
        return None;
    }
    enc.feature().filter(|f| !target.supports(*f))
}

/// Which keys a job keeps: database rules, a glob, types, expiry.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Selection {
    /// Database limit, selection and moves.
    pub dbs: DbRules,
    /// Keep keys matching this Redis glob.
    pub pattern: Option<Vec<u8>>,
    /// Keep keys of these types.
    pub types: Option<Vec<LogicalType>>,
    /// Drop keys whose expiry is at or before this time (ms since the epoch).
    pub drop_expired_at: Option<i64>,
}

impl Selection {
    /// Whether nothing is filtered out, renumbered or moved.
    pub fn keeps_everything(&self) -> bool {
        self.dbs == DbRules::default()
            && self.pattern.is_none()
            && self.types.is_none()
            && self.drop_expired_at.is_none()
    }

    fn keeps(&self, e: &crate::read::Entry<'_>, glob: Option<&Glob>) -> Result<bool> {
        if self.dbs.map(e.db).is_none() {
            return Ok(false);
        }
        if let Some(now) = self.drop_expired_at
            && e.expiry.is_some_and(|x| x.as_millis() <= now)
        {
            return Ok(false);
        }
        if let Some(t) = &self.types
            && !t.contains(&e.value.logical_type())
        {
            return Ok(false);
        }
        if let Some(g) = glob
            && !g.matches(&e.key.decode()?)
        {
            return Ok(false);
        }
        Ok(true)
    }
}

/// What a survey found in one input.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InputSummary {
    /// Input name.
    pub name: String,
    /// Magic text, e.g. `REDIS0011`.
    pub magic: String,
    /// RDB version.
    pub version: u32,
    /// Size of the file as stored.
    pub file_len: u64,
    /// Keys per database.
    pub keys: BTreeMap<u64, u64>,
    /// Keys with an expiry per database.
    pub expires: BTreeMap<u64, u64>,
    /// Keys already expired at the survey's reference time, per database.
    pub expired: BTreeMap<u64, u64>,
    /// Function library names.
    pub functions: Vec<String>,
    /// Modules whose values or AUX data the input holds (the target must have them loaded).
    pub modules: BTreeMap<String, u64>,
    /// What the target cannot hold (only kept keys are checked).
    pub problems: Vec<Problem>,
}

/// Reads `input` once, counting keys and finding what `target` cannot hold among the keys `sel` keeps.
pub fn survey(
    input: &Input,
    target: Header,
    sel: &Selection,
    now_ms: i64,
    modules: Option<&[String]>,
) -> Result<InputSummary> {
    survey_counting(input, target, sel, now_ms, modules, None, ReadOptions::fast(), false)
}

/// [`survey`] with a job's options: its target, selection, time and modules, and its validation (deep unless
/// [`JobOptions::validate`] is off), on a second thread when that pays — what a dry run reports.
pub fn survey_for_job(input: &Input, opts: &JobOptions) -> Result<InputSummary> {
    let m = opts.modules.as_deref();
    survey_counting(input, opts.target, &opts.selection, opts.now_ms, m, None, opts.read_options(), opts.parallel)
}

/// [`survey`], also counting the kept database-0 keys per hash slot (for a split's hints) in the same pass, read
/// with `read` (deep validation or not), on a second thread when `parallel` pays.
#[allow(clippy::too_many_arguments)]
fn survey_counting(
    input: &Input,
    target: Header,
    sel: &Selection,
    now_ms: i64,
    modules: Option<&[String]>,
    slots: Option<&mut SlotCounts>,
    read: ReadOptions,
    parallel: bool,
) -> Result<InputSummary> {
    let header = input.header()?;
    let mut sink = SurveySink { s: Surveyor::new(input, header, target, sel, now_ms, modules), sel, slots };
    if input.is_stream() {
        // A stream is read again by the job's second pass: this first one goes through the spool.
        input.with_source(read, |src| {
            while let Some(rec) = src.next_rec()? {
                sink.record(&rec)?;
            }
            Ok(())
        })?;
    } else {
        input.drive(read, &mut sink, parallel)?;
    }
    Ok(sink.s.finish())
}

/// A survey as a record sink (so it can be driven on two threads).
struct SurveySink<'o, 'c> {
    s: Surveyor<'o>,
    sel: &'o Selection,
    slots: Option<&'c mut SlotCounts>,
}

impl RecordSink for SurveySink<'_, '_> {
    fn record(&mut self, rec: &crate::read::Record<'_>) -> Result<()> {
        self.s.observe(rec)?;
        if let (Some(counts), RecordKind::Entry(e)) = (self.slots.as_deref_mut(), rec.kind)
            && e.db == 0
            && self.sel.keeps(&e, self.s.glob.as_ref())?
        {
            counts.add(&e.key.decode()?, e.expiry.is_some());
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Builds one input's [`InputSummary`] from its records, as they pass.
struct Surveyor<'o> {
    summary: InputSummary,
    target: Header,
    sel: &'o Selection,
    glob: Option<Glob>,
    now_ms: i64,
    modules: Option<&'o [String]>,
    /// Keys and expiries of the database being read (added to the summary when it changes).
    db: u64,
    keys: u64,
    expires: u64,
    expired: u64,
}

impl<'o> Surveyor<'o> {
    fn new(
        input: &Input,
        header: Header,
        target: Header,
        sel: &'o Selection,
        now_ms: i64,
        modules: Option<&'o [String]>,
    ) -> Self {
        Surveyor {
            summary: InputSummary {
                name: input.name().to_string(),
                magic: header.magic(),
                version: header.version,
                file_len: input.file_len(),
                ..InputSummary::default()
            },
            target,
            sel,
            glob: sel.pattern.as_deref().map(Glob::new),
            now_ms,
            modules,
            db: 0,
            keys: 0,
            expires: 0,
            expired: 0,
        }
    }

    fn missing(&self, name: &str) -> bool {
        self.modules.is_some_and(|m| !m.iter().any(|x| x == name))
    }

    /// Moves the running counts of the current database into the summary.
    fn settle(&mut self) {
        let s = &mut self.summary;
        for (map, n) in [(&mut s.keys, self.keys), (&mut s.expires, self.expires), (&mut s.expired, self.expired)] {
            if n > 0 {
                *map.entry(self.db).or_default() += n;
            }
        }
        (self.keys, self.expires, self.expired) = (0, 0, 0);
    }

    /// The summary, once every record has been observed.
    fn finish(mut self) -> InputSummary {
        self.settle();
        self.summary
    }

    fn observe(&mut self, rec: &crate::read::Record<'_>) -> Result<()> {
        match rec.kind {
            RecordKind::Entry(e) => {
                if e.db != self.db {
                    self.settle();
                    self.db = e.db;
                }
                self.keys += 1;
                if let Some(x) = e.expiry {
                    self.expires += 1;
                    self.expired += u64::from(x.as_millis() <= self.now_ms);
                }
                if e.value.encoding == Encoding::Module2
                    && let Ok((id, _)) = e.value.module()
                {
                    let name = crate::read::module::module_name(id).0;
                    if self.missing(&name) && self.sel.keeps(&e, self.glob.as_ref())? {
                        self.summary.problems.push(Problem {
                            db: Some(e.db),
                            key: Some(e.key.decode()?.into_owned()),
                            what: Unrepresentable::MissingModule(name.clone()),
                            item: String::new(),
                        });
                    }
                    *self.summary.modules.entry(name).or_default() += 1;
                }
                if let Some(f) = feature_gap(e.value.encoding, self.target)
                    && self.sel.keeps(&e, self.glob.as_ref())?
                {
                    self.summary.problems.push(Problem {
                        db: Some(e.db),
                        key: Some(e.key.decode()?.into_owned()),
                        what: Unrepresentable::Lacks(f),
                        item: String::new(),
                    });
                } else if e.value.logical_type() == LogicalType::Stream
                    && !e.value.encoding.allowed_in(self.target)
                    && self.target.supports(Feature::Streams)
                    && self.sel.keeps(&e, self.glob.as_ref())?
                    && let Ok(crate::read::OwnedValue::Stream(s)) = e.value.to_owned_value()
                {
                    // A stream re-encoded for an older layout: what that layout cannot store.
                    let version = match self.target.redis_level() {
                        11.. => 3,
                        10 => 2,
                        _ => 1,
                    };
                    for what in crate::write::encode::stream_losses(&s, version) {
                        self.summary.problems.push(Problem {
                            db: Some(e.db),
                            key: Some(e.key.decode()?.into_owned()),
                            what,
                            item: String::new(),
                        });
                    }
                }
            }
            RecordKind::Function { code } => {
                let code = code.decode()?;
                let name = crate::read::function_name(&code).unwrap_or_else(|| "?".into());
                if !self.target.supports(Feature::Functions) {
                    self.summary.problems.push(Problem {
                        db: None,
                        key: None,
                        what: Unrepresentable::Lacks(Feature::Functions),
                        item: format!("function library {name:?}"),
                    });
                }
                self.summary.functions.push(name);
            }
            RecordKind::ModuleAux(aux) => {
                let name = aux.name().0;
                if !self.target.supports(Feature::ModuleAux) || self.missing(&name) {
                    let what = if self.target.supports(Feature::ModuleAux) {
                        Unrepresentable::MissingModule(name.clone())
                    } else {
                        Unrepresentable::Lacks(Feature::ModuleAux)
                    };
                    self.summary.problems.push(Problem {
                        db: None,
                        key: None,
                        what,
                        item: format!("module aux data of {name}"),
                    });
                }
                self.summary.modules.entry(name).or_default();
            }
            _ => {}
        }
        Ok(())
    }
}

/// Surveys the records on their way to the next sink (the single-pass jobs).
struct Surveying<'o, S> {
    next: S,
    current: Option<Surveyor<'o>>,
    done: Vec<InputSummary>,
}

impl<S: RecordSink> RecordSink for Surveying<'_, S> {
    fn record(&mut self, rec: &crate::read::Record<'_>) -> Result<()> {
        if let Some(s) = self.current.as_mut() {
            s.observe(rec)?;
        }
        self.next.record(rec)
    }

    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
}

/// A progress callback: called with (bytes of input done, total bytes of input) as records pass.
#[derive(Clone)]
pub struct ProgressHook(pub std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// Calls the progress hook about every MiB of input.
struct Progress<S> {
    next: S,
    hook: Option<ProgressHook>,
    base: u64,
    total: u64,
    last: u64,
}

impl<S: RecordSink> RecordSink for Progress<S> {
    fn record(&mut self, rec: &crate::read::Record<'_>) -> Result<()> {
        if let Some(h) = &self.hook {
            let done = self.base + rec.offset + rec.raw.len() as u64;
            if done >= self.last + (1 << 20) || matches!(rec.kind, RecordKind::Eof { .. }) {
                self.last = done;
                (h.0)(done.min(self.total), self.total);
            }
        }
        self.next.record(rec)
    }

    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
}

/// Options shared by every writing job.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobOptions {
    /// The header to write.
    pub target: Header,
    /// Drop what the target cannot hold (and report it) instead of refusing.
    pub lossy: bool,
    /// Which keys to keep.
    pub selection: Selection,
    /// Duplicate keys across inputs.
    pub on_duplicate: OnDuplicate,
    /// Value encoding options.
    pub encode: EncodeOptions,
    /// Reference time for expiry checks (ms since the epoch).
    pub now_ms: i64,
    /// Called as the writing pass advances.
    pub progress: Option<ProgressHook>,
    /// Module types the target server has (`None`: not checked, e.g. for a bare `--rdb-version`). Values and
    /// AUX data of other modules cannot load there.
    pub modules: Option<Vec<String>>,
    /// Parse large inputs on a second thread while this one filters and writes (see
    /// [`Input::drive`]). On by default; it changes nothing in the output.
    pub parallel: bool,
    /// Deep-validate every input ([`ReadOptions::default`], the verdict of `rdbkit verify`) before anything is
    /// published: in the one writing pass when the outputs can be dropped on a refusal, else in the checking pass.
    /// On by default; turn it off only for trusted inputs (the checksum is still verified).
    pub validate: bool,
}

impl JobOptions {
    /// Defaults for `target`: refuse lossy conversions, keep everything, fail on duplicate keys.
    pub fn new(target: Header) -> Self {
        JobOptions {
            target,
            lossy: false,
            selection: Selection::default(),
            on_duplicate: OnDuplicate::Error,
            encode: EncodeOptions::default(),
            now_ms: now_ms(),
            progress: None,
            modules: None,
            parallel: true,
            validate: true,
        }
    }

    /// How the inputs are read when they must be validated: deep, or checksum only without `validate`.
    pub fn read_options(&self) -> ReadOptions {
        if self.validate { ReadOptions::default() } else { ReadOptions::fast() }
    }
}

/// The current time in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// One output written.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OutputSummary {
    /// Keys written per database.
    pub keys: BTreeMap<u64, u64>,
    /// Bytes of RDB written to the output writer (before any padding or compression the writer itself adds: wrap
    /// the file in [`crate::io::Digesting`] under those layers to measure the file as stored).
    pub rdb_bytes: u64,
    /// The CRC-64 stored in the RDB footer (`None` before RDB 5).
    pub rdb_checksum: Option<u64>,
}

/// What a job did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// The target magic.
    pub target: String,
    /// What each input holds.
    pub inputs: Vec<InputSummary>,
    /// Keys dropped because their database is not kept (over the limit, not selected, or not 0 for a
    /// cluster), per source database.
    pub dropped_db: BTreeMap<u64, u64>,
    /// The database limit applied (1 for a cluster), if any.
    pub db_limit: Option<u64>,
    /// Keys dropped by the key filters.
    pub filtered: KeyFilterCounts,
    /// Duplicate keys skipped (policy `first`).
    pub duplicates: u64,
    /// Parts a lossy conversion dropped.
    pub lossy: Vec<Dropped>,
    /// Keys re-encoded for the target (the rest were copied byte for byte).
    pub re_encoded: u64,
    /// The outputs, in order (one, or one per shard).
    pub outputs: Vec<OutputSummary>,
}

/// Checks every input against the target; an error lists what cannot be represented (unless `lossy`).
fn survey_all(inputs: &[Input], opts: &JobOptions, mut slots: Option<&mut SlotCounts>) -> Result<Vec<InputSummary>> {
    let mut out = Vec::new();
    for input in inputs {
        let m = opts.modules.as_deref();
        out.push(survey_counting(
            input,
            opts.target,
            &opts.selection,
            opts.now_ms,
            m,
            slots.as_deref_mut(),
            opts.read_options(),
            opts.parallel,
        )?);
    }
    refuse_problems(&out, opts)?;
    Ok(out)
}

/// Without `lossy`, an error listing everything the surveys found that the target cannot hold.
fn refuse_problems(summaries: &[InputSummary], opts: &JobOptions) -> Result<()> {
    if opts.lossy {
        return Ok(());
    }
    let mut all = summaries.iter().flat_map(|s| s.problems.iter().map(move |p| (s, p)));
    let Some((_, first)) = all.clone().next() else {
        return Ok(());
    };
    let count = all.clone().count() as u64;
    let items =
        all.by_ref().take(crate::error::UNREPRESENTABLE_SHOWN).map(|(s, p)| format!("{}: {p}", s.name)).collect();
    Err(Error::without_offset(ErrorKind::Unrepresentable {
        what: first.what.clone(),
        target: opts.target,
        items,
        count,
    }))
}

/// Counts the RDB bytes on the way to the output.
struct Tally<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Offsets pass through: the tally counts, it does not move bytes.
impl<W: FinishWrite> FinishWrite for Tally<W> {
    fn finish_write(self: Box<Self>) -> std::io::Result<()> {
        Box::new(self.inner).finish_write()
    }

    fn can_patch(&self) -> bool {
        self.inner.can_patch()
    }

    fn patch(&mut self, offset: u64, old: &[u8], new: &[u8]) -> std::io::Result<()> {
        self.inner.patch(offset, old, new)
    }
}

fn writer_sink<W: Write>(out: W, opts: &JobOptions) -> Result<WriterSink<Tally<W>>> {
    let w = RdbWriter::with_options(
        Tally { inner: out, bytes: 0 },
        opts.target,
        WriterOptions { encode: EncodeOptions { lossy: opts.lossy, ..opts.encode }, checksum_disabled: false },
    )?;
    Ok(WriterSink::from_writer(w, opts.lossy).with_modules(opts.modules.clone()))
}

/// Reads every input (with `read`) through the selection filters into `sink`; with `survey`, also summarizes
/// each input in the same pass.
fn run_filters<S: RecordSink>(
    inputs: &[Input],
    opts: &JobOptions,
    merge: bool,
    sink: S,
    survey: bool,
    read: ReadOptions,
) -> Result<Filtered<S>> {
    let sel = &opts.selection;
    // Only a merge (or a database move) can produce duplicate keys; a single input keeps no per-key state.
    let dedup =
        if merge || !sel.dbs.moves.is_empty() { Dedup::new(sink, opts.on_duplicate) } else { Dedup::inactive(sink) };
    let dbs = DbFilter::new(dedup, sel.dbs.clone());
    let mut keys = KeyFilter::new(dbs);
    if let Some(p) = &sel.pattern {
        keys = keys.matching(p);
    }
    if let Some(t) = &sel.types {
        keys = keys.of_types(t.clone());
    }
    if let Some(now) = sel.drop_expired_at {
        keys = keys.drop_expired_at(now);
    }
    // Progress counts (decompressed) record offsets against the inputs' sizes; for gzip inputs the total is an
    // estimate.
    let total = inputs.iter().map(|i| i.bytes().map_or(i.file_len(), |b| b.len() as u64)).sum();
    let surveying = Surveying { next: keys, current: None, done: Vec::new() };
    let mut progress = Progress { next: surveying, hook: opts.progress.clone(), base: 0, total, last: 0 };
    for input in inputs {
        if survey {
            let m = opts.modules.as_deref();
            let header = input.header()?;
            progress.next.current = Some(Surveyor::new(input, header, opts.target, sel, opts.now_ms, m));
        }
        input.drive(read, &mut progress, opts.parallel)?;
        if let Some(s) = progress.next.current.take() {
            progress.next.done.push(s.finish());
        }
        progress.base += input.bytes().map_or(input.file_len(), |b| b.len() as u64);
    }
    progress.finish()?;
    let Surveying { next: keys, done: summaries, .. } = progress.next;
    let filtered = keys.counts();
    let dbs = keys.into_inner();
    let dropped_db = dbs.dropped_keys().clone();
    let dedup = dbs.into_inner();
    let duplicates = dedup.duplicates();
    Ok(Filtered { sink: dedup.into_inner(), filtered, dropped_db, duplicates, summaries })
}

struct Filtered<S> {
    sink: S,
    filtered: KeyFilterCounts,
    dropped_db: BTreeMap<u64, u64>,
    duplicates: u64,
    /// The inputs' summaries, when surveyed in the same pass.
    summaries: Vec<InputSummary>,
}

/// Converts (and merges) `inputs` into one RDB for `opts.target`, written to `out`. Returns the output writer
/// (finish it: e.g. [`crate::io::AtomicFile::finish`]) and the report.
///
/// When `out` [can patch](FinishWrite::can_patch) (a file, a buffer: something a refusal can throw away), the
/// inputs are read once, checked as they pass, and — when keys are filtered out or several inputs merged, so the
/// inputs' RESIZEDB hints no longer describe the output — written with hints recounted from the keys kept.
/// Otherwise (stdout, gzip) a first pass checks everything before a byte is written, and hints pass through.
pub fn convert<W: FinishWrite>(inputs: &[Input], out: W, opts: &JobOptions) -> Result<(W, Report)> {
    let one_pass = out.can_patch();
    let summaries = if one_pass { Vec::new() } else { survey_all(inputs, opts, None)? };
    let mut sink = writer_sink(out, opts)?;
    if one_pass && (inputs.len() > 1 || !opts.selection.keeps_everything()) {
        sink = sink.recounting_hints(false)?;
    }
    // The checking pass validated already (when there is one).
    let read = if one_pass { opts.read_options() } else { ReadOptions::fast() };
    let mut f = match run_filters(inputs, opts, inputs.len() > 1, sink, one_pass, read) {
        Err(e) if one_pass && !opts.lossy && matches!(e.kind(), ErrorKind::Unrepresentable { .. }) => {
            // Name everything the target cannot hold (the output is already dropped); a stream read once cannot
            // be read again, so its first refusal stands.
            if !inputs.iter().any(Input::is_stream) {
                survey_all(inputs, opts, None)?;
            }
            return Err(e);
        }
        r => r?,
    };
    if one_pass {
        refuse_problems(&f.summaries, opts)?;
    }
    let mut report = Report {
        target: opts.target.magic(),
        inputs: if one_pass { std::mem::take(&mut f.summaries) } else { summaries },
        db_limit: opts.selection.dbs.limit,
        dropped_db: f.dropped_db,
        filtered: f.filtered,
        duplicates: f.duplicates,
        lossy: f.sink.dropped().to_vec(),
        re_encoded: f.sink.re_encoded(),
        outputs: Vec::new(),
    };
    let keys = f.sink.keys_per_db().clone();
    let rdb_checksum = f.sink.checksum();
    let tally = f.sink.into_output().ok_or_else(|| Error::without_offset(ErrorKind::Invalid("no output".into())))?;
    report.outputs.push(OutputSummary { keys, rdb_bytes: tally.bytes, rdb_checksum });
    Ok((tally.inner, report))
}

/// What [`feed`] did besides handing records on.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Fed {
    /// Keys the key filters dropped, by reason.
    pub filtered: KeyFilterCounts,
    /// Keys dropped per source database (beyond the database limit, or not selected).
    pub dropped_db: BTreeMap<u64, u64>,
    /// Duplicate keys across merged inputs that were dropped.
    pub duplicates: u64,
}

/// Reads `inputs` (with `read`) through the selection filters of `opts` (databases, glob, types, expiry, duplicates
/// across inputs) into `sink`, without finishing it: the driver for a sink of one's own, such as a live loader.
/// Check the inputs first ([`plan`]) when a refusal must come before the sink sees anything.
pub fn feed<S: RecordSink>(inputs: &[Input], opts: &JobOptions, sink: S, read: ReadOptions) -> Result<(S, Fed)> {
    let f = run_filters(inputs, opts, inputs.len() > 1, sink, false, read)?;
    Ok((f.sink, Fed { filtered: f.filtered, dropped_db: f.dropped_db, duplicates: f.duplicates }))
}

/// What a job with `opts` would write from `inputs`, without writing: each input surveyed (and validated) as the
/// real run would, the databases dropped and the keys kept per database, from the survey alone. Nothing the target
/// cannot hold is refused here: the report lists it under each input's `problems`.
pub fn plan(inputs: &[Input], opts: &JobOptions) -> Result<Report> {
    let mut report = Report { target: opts.target.magic(), db_limit: opts.selection.dbs.limit, ..Report::default() };
    for i in inputs {
        report.inputs.push(survey_for_job(i, opts)?);
    }
    let mut kept = BTreeMap::new();
    for s in &report.inputs {
        for (db, n) in &s.keys {
            let expired = s.expired.get(db).copied().unwrap_or(0);
            match opts.selection.dbs.map(*db) {
                Some(t) => *kept.entry(t).or_insert(0) += n - expired,
                None => *report.dropped_db.entry(*db).or_insert(0) += n,
            }
            if opts.selection.dbs.map(*db).is_some() {
                report.filtered.expired += expired;
            }
        }
    }
    report.outputs.push(OutputSummary { keys: kept, ..Default::default() });
    Ok(report)
}

/// Splits (and merges) `inputs` into one RDB per shard of `layout`: database 0 only, keys routed by hash slot,
/// AUX fields and functions in every shard, exact RESIZEDB (and SLOT_INFO for Redis ≥ 7.4) hints. `outputs`
/// must hold one writer per shard, in layout order.
///
/// When every output [can patch](FinishWrite::can_patch) (files, buffers), this reads the inputs once: each shard
/// gets placeholder hints that are filled in at the end, and the checks of what the target cannot hold run as the
/// records pass (a refusal then drops the outputs and names every offending item, as before). Otherwise (gzip,
/// pipes) a first pass checks the inputs and counts the keys per slot, and a second one writes.
pub fn split<W: FinishWrite>(
    inputs: &[Input],
    layout: ShardLayout,
    outputs: Vec<W>,
    opts: &JobOptions,
) -> Result<(Vec<W>, Report)> {
    let mut opts = opts.clone();
    // A cluster has database 0 only.
    opts.selection.dbs.limit = Some(opts.selection.dbs.limit.map_or(1, |l| l.min(1)));
    if !outputs.iter().all(|o| o.can_patch()) {
        return split_two_passes(inputs, layout, outputs, &opts);
    }
    let sinks = outputs
        .into_iter()
        .map(|o| writer_sink(o, &opts).and_then(|s| s.recounting_hints(true)))
        .collect::<Result<Vec<_>>>()?;
    let splitter = ClusterSplit::new(layout, sinks, None)?;
    let f = match run_filters(inputs, &opts, inputs.len() > 1, splitter, true, opts.read_options()) {
        Ok(f) => f,
        Err(e) if !opts.lossy && matches!(e.kind(), ErrorKind::Unrepresentable { .. }) => {
            // The outputs are gone (dropped with the sinks); name everything the target cannot hold, as the
            // checking pass of the two-pass mode would have before writing (not for a stream, read only once).
            if !inputs.iter().any(Input::is_stream) {
                survey_all(inputs, &opts, None)?;
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    refuse_problems(&f.summaries, &opts)?;
    let mut report = Report {
        target: opts.target.magic(),
        inputs: f.summaries,
        db_limit: opts.selection.dbs.limit,
        dropped_db: f.dropped_db,
        filtered: f.filtered,
        duplicates: f.duplicates,
        ..Report::default()
    };
    let outs = shard_outputs(f.sink, &mut report)?;
    Ok((outs, report))
}

/// [`split`] for outputs that cannot patch: survey first (checks and per-slot counts), then write.
fn split_two_passes<W: Write>(
    inputs: &[Input],
    layout: ShardLayout,
    outputs: Vec<W>,
    opts: &JobOptions,
) -> Result<(Vec<W>, Report)> {
    let mut counts = SlotCounts::default();
    let summaries = survey_all(inputs, opts, Some(&mut counts))?;
    let hints = counts.hints(&layout);
    // Hints count the kept db-0 keys; duplicates across merged inputs make them upper bounds, which Redis accepts.
    let sinks = outputs.into_iter().map(|o| writer_sink(o, opts)).collect::<Result<Vec<_>>>()?;
    let splitter = ClusterSplit::new(layout, sinks, Some(hints))?;
    let f = run_filters(inputs, opts, inputs.len() > 1, splitter, false, ReadOptions::fast())?;
    let mut report = Report {
        target: opts.target.magic(),
        inputs: summaries,
        db_limit: opts.selection.dbs.limit,
        dropped_db: f.dropped_db,
        filtered: f.filtered,
        duplicates: f.duplicates,
        ..Report::default()
    };
    let outs = shard_outputs(f.sink, &mut report)?;
    Ok((outs, report))
}

/// Takes the finished (complete) shard writers out of a splitter and adds their summaries to `report`.
fn shard_outputs<W: Write>(split: ClusterSplit<WriterSink<Tally<W>>>, report: &mut Report) -> Result<Vec<W>> {
    let mut outs = Vec::new();
    for s in split.into_shards() {
        report.lossy.extend_from_slice(s.dropped());
        report.re_encoded += s.re_encoded();
        let keys = s.keys_per_db().clone();
        let rdb_checksum = s.checksum();
        let tally = s.into_output().ok_or_else(|| Error::without_offset(ErrorKind::Invalid("no output".into())))?;
        report.outputs.push(OutputSummary { keys, rdb_bytes: tally.bytes, rdb_checksum });
        outs.push(tally.inner);
    }
    Ok(outs)
}

/// Database limits of managed cache tiers (Azure Cache for Redis): Basic/Standard `c0`–`c6`, Premium `p1`–`p5`,
/// `enterprise` (database 0 only).
pub fn tier_databases(tier: &str) -> Option<u64> {
    Some(match tier.to_ascii_lowercase().as_str() {
        "c0" | "c1" | "c2" | "c3" => 16,
        "c4" => 32,
        "c5" => 48,
        "c6" => 64,
        "p1" => 16,
        "p2" => 32,
        "p3" => 48,
        "p4" | "p5" => 64,
        "enterprise" | "e" => 1,
        _ => return None,
    })
}
