//! What every subcommand shares: the output flags (`--json`, `-q`, `-v`), opening an input (file, `.gz`, `-` for
//! stdin, or a live server `redis://…`), the record loop over either reader, the error type with its exit code,
//! and small output helpers (JSON byte strings, base64).

use rdbkit::input::Input;
use rdbkit::live::{LiveOptions, RedisUrl, is_live_url, redact};
use rdbkit::read::{Checksum, Header, ReadOptions, Record, Trailing};
use rdbkit::{Error, ErrorKind};
use std::io;
use std::sync::atomic::{AtomicI8, Ordering};

/// The output flags every command takes (global: before or after the subcommand's name).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct OutputArgs {
    /// Print the result as JSON on stdout (one object; `dump`: one per line).
    ///
    /// `verify` prints its verdict as an object for an invalid file too (`"ok": false`). Errors are also
    /// printed on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print less: no progress bar, warnings or notes; `verify` nothing when the file is sound.
    ///
    /// The writing commands print only their one-line summary, `info` and `dump` their output, and no command
    /// prints warnings or notes on stderr. Errors are always printed.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more on stderr: each input as it is opened, and the time taken.
    ///
    /// Each input's kind (regular file or stream), size, compression and version.
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

/// -1 quiet, 0 normal, 1 verbose: set once by `main` from [`OutputArgs`], read where stderr is written.
static VERBOSITY: AtomicI8 = AtomicI8::new(0);

impl OutputArgs {
    /// Makes these flags the process's verbosity (for [`quiet`] and [`detail`]).
    pub fn install(&self) {
        let v = if self.quiet { -1 } else { i8::from(self.verbose) };
        VERBOSITY.store(v, Ordering::Relaxed);
    }
}

/// Whether `-q` was given: warnings and notes on stderr are left out.
pub fn quiet() -> bool {
    VERBOSITY.load(Ordering::Relaxed) < 0
}

/// With `-v`: prints `rdbkit: MSG` on stderr.
pub fn detail(msg: impl FnOnce() -> String) {
    if VERBOSITY.load(Ordering::Relaxed) > 0 {
        eprintln!("rdbkit: {}", msg());
    }
}

/// Unless `-q`: prints `rdbkit: note: MSG` on stderr.
pub fn note(msg: &str) {
    if !quiet() {
        eprintln!("rdbkit: note: {msg}");
    }
}

/// What the user must know about a live snapshot (a scan is not point-in-time, libraries were not copied):
/// printed even with `-q`.
fn must_know(msg: &str) {
    eprintln!("rdbkit: note: {msg}");
}

/// With `-v`: what `input` is (called as each input is opened).
pub fn opened(input: &Input) {
    detail(|| {
        let kind = if input.is_stream() {
            "a stream".to_string()
        } else {
            format!("a regular file of {} bytes", input.file_len())
        };
        let magic = input.header().map(|h| h.magic()).unwrap_or_default();
        let gz = if input.is_gzip() { ", gzip-compressed" } else { "" };
        format!("{}: {kind}{gz}, {magic}", input.name())
    });
}

/// Exit code: the input is not a sound RDB file.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: bad usage, or an I/O error (file not found, disk error).
pub const EXIT_IO: i32 = 2;

/// Why a command stopped.
#[derive(Debug)]
pub enum Failure {
    /// The input is invalid or corrupt (exit 1). The message starts with `error at byte N:` when the position is
    /// known.
    Invalid(String),
    /// An I/O or usage error (exit 2).
    Io(String),
    /// Writing to stdout failed because the reader went away: exit quietly.
    BrokenPipe,
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Invalid(_) => EXIT_INVALID,
            Failure::Io(_) => EXIT_IO,
            Failure::BrokenPipe => 0,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e.kind() {
            // Damaged gzip data surfaces as an I/O error of these kinds: that is bad input, not a failing disk.
            ErrorKind::Io(io)
                if !matches!(
                    io.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
                ) =>
            {
                Failure::Io(e.to_string())
            }
            _ => Failure::Invalid(e.to_string()),
        }
    }
}

/// An error writing the output.
pub fn out_err(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe { Failure::BrokenPipe } else { Failure::Io(format!("stdout: {e}")) }
}

/// Everything known about an input once its last record was read.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The file header.
    pub header: Header,
    /// The reader's checksum verdict.
    pub checksum: Checksum,
    /// Bytes after the checksum.
    pub trailing: Trailing,
    /// Size of the RDB stream (decompressed when the input is gzip), trailing bytes included.
    pub stream_bytes: u64,
    /// Size of the input as read (the compressed size for gzip input).
    pub input_bytes: u64,
    /// What deep validation found odd but the servers load.
    pub warnings: rdbkit::read::Warnings,
}

/// Feeds records to a closure; keeps the closure's own failure (the sink error only stops the reader).
struct CallSink<F> {
    on_record: F,
    failure: Option<Failure>,
}

impl<F: FnMut(&Record<'_>) -> Result<(), Failure>> rdbkit::transform::RecordSink for CallSink<F> {
    fn record(&mut self, rec: &Record<'_>) -> rdbkit::Result<()> {
        (self.on_record)(rec).map_err(|f| {
            self.failure = Some(f);
            Error::without_offset(ErrorKind::Invalid("stopped by the record handler".into()))
        })
    }

    fn finish(&mut self) -> rdbkit::Result<()> {
        Ok(())
    }
}

/// Opens `path` (`-` is stdin) and calls `on_record` with the header and each record in file order, up to and
/// including EOF. The input is read as [`Input`] reads it: a regular file with positioned reads into buffers (a
/// large one parsed on a second thread), anything else streamed once; gzip is detected. Nothing is mapped, so a
/// file truncated while it is read gives an error, not a crash.
///
/// Errors from the reader or from `on_record` stop the loop and are returned as they are.
pub fn for_each_record(
    path: &str,
    opts: ReadOptions,
    on_record: impl FnMut(Header, &Record<'_>) -> Result<(), Failure>,
) -> Result<Summary, Failure> {
    records_of(&open_input(path)?, opts, on_record)
}

/// [`for_each_record`] for a command whose output goes out as it is made (`dump`): the whole input is
/// deep-validated first, with the verdict of `verify`, so a damaged file produces no output at all; then the records
/// are walked again (a stream was spooled by the first pass). Without `validate`, records are only walked (the
/// checksum is still verified, at the end, after the output).
pub fn for_each_validated_record(
    path: &str,
    validate: bool,
    on_record: impl FnMut(Header, &Record<'_>) -> Result<(), Failure>,
) -> Result<Summary, Failure> {
    let input = open_input(path)?;
    if validate {
        if input.is_stream() {
            input
                .with_source(ReadOptions::default(), |src| {
                    while src.next_rec()?.is_some() {}
                    Ok(())
                })
                .map_err(untagged)?;
        } else {
            input.read_to_end(ReadOptions::default(), &mut NullSink, true)?;
        }
    }
    records_of(&input, ReadOptions::fast(), on_record)
}

/// The failure for `e` without the input's name that [`Input::with_source`] adds (the CLI names the input itself).
fn untagged(e: Error) -> Failure {
    let name = e.file().map(|f| format!("{f}: "));
    match (Failure::from(e), name) {
        (Failure::Invalid(m), Some(n)) => Failure::Invalid(m.strip_prefix(&n).map(str::to_string).unwrap_or(m)),
        (Failure::Io(m), Some(n)) => Failure::Io(m.strip_prefix(&n).map(str::to_string).unwrap_or(m)),
        (f, _) => f,
    }
}

/// A sink that takes every record and does nothing with it.
struct NullSink;

impl rdbkit::transform::RecordSink for NullSink {
    fn record(&mut self, _: &Record<'_>) -> rdbkit::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> rdbkit::Result<()> {
        Ok(())
    }
}

/// How live sources (`redis://…`) are read: set once by `main` from the global options.
static LIVE_OPTIONS: std::sync::OnceLock<LiveOptions> = std::sync::OnceLock::new();

/// Sets the options of live sources (`--source-mode`, time-outs); called once, before any input is opened.
pub fn set_live_options(opts: LiveOptions) {
    let _ = LIVE_OPTIONS.set(opts);
}

/// The options of live endpoints, as `main` set them.
pub fn live_options() -> LiveOptions {
    LIVE_OPTIONS.get().cloned().unwrap_or_default()
}

/// Opens a live server `redis://…` as a streamed input named by its redacted address, printing on stderr what the
/// user must know about the snapshot (a scan is not point-in-time). Every failure is exit 2, named by `host:port`
/// and never showing the password.
pub fn open_live(arg: &str) -> Result<Input, Failure> {
    let url = RedisUrl::parse(arg).map_err(Failure::Io)?;
    let opts = LIVE_OPTIONS.get().cloned().unwrap_or_default();
    let (input, info) =
        rdbkit::live::open_input(&url, &opts).map_err(|e| Failure::Io(format!("{}: {e}", redact(arg))))?;
    if info.cluster_node {
        note(&format!(
            "{url} is one node of a cluster: only its own slots are read here (convert, split, export and import \
             read every master)"
        ));
    }
    for n in &info.notes {
        must_know(n);
    }
    Ok(input)
}

/// The inputs of a live address for a command that reads several inputs: every master of a cluster (one snapshot
/// each, in slot order, said on stderr), or the one server.
pub fn open_live_all(arg: &str) -> Result<Vec<Input>, Failure> {
    let url = RedisUrl::parse(arg).map_err(Failure::Io)?;
    let opts = LIVE_OPTIONS.get().cloned().unwrap_or_default();
    let (first, info) = rdbkit::live::open_input(&url, &opts).map_err(named(&url))?;
    let masters =
        if info.cluster_node { rdbkit::live::cluster_masters(&url, &opts).map_err(named(&url))? } else { None };
    let Some(masters) = masters.filter(|m| !m.is_empty()) else {
        for n in &info.notes {
            must_know(n);
        }
        return Ok(vec![first]);
    };
    let names: Vec<String> = masters.iter().map(RedisUrl::addr).collect();
    must_know(&format!(
        "{url}: a cluster; reading its {} masters, one snapshot each: {}",
        masters.len(),
        names.join(", ")
    ));
    // The node given keeps its snapshot when it is a master (a replica's is its master's data: not used).
    let mut first = Some((first, info));
    let mut v = Vec::new();
    for m in &masters {
        let (input, info) = match first.take_if(|_| m.addr() == url.addr()) {
            Some(f) => f,
            None => rdbkit::live::open_input(m, &opts).map_err(named(m))?,
        };
        for n in &info.notes {
            must_know(n);
        }
        v.push(input);
    }
    Ok(v)
}

/// A failure of the live source `u`, named by its redacted address.
fn named(u: &RedisUrl) -> impl Fn(rdbkit::Error) -> Failure + '_ {
    move |e| Failure::Io(format!("{u}: {e}"))
}

fn open_input(path: &str) -> Result<Input, Failure> {
    if is_live_url(path) {
        // `main` names the input before the message; this one names it itself (redacted).
        let input = open_live(path).map_err(|f| match f {
            Failure::Io(m) => {
                Failure::Io(m.strip_prefix(&format!("{}: ", redact(path))).map(str::to_string).unwrap_or(m))
            }
            f => f,
        })?;
        opened(&input);
        return Ok(input);
    }
    let input = Input::open(path).map_err(|e| match e.kind() {
        ErrorKind::Io(_) if e.offset().is_none() => Failure::Io(format!("cannot open: {e}")),
        _ => Failure::from(e),
    })?;
    opened(&input);
    Ok(input)
}

fn records_of(
    input: &Input,
    opts: ReadOptions,
    mut on_record: impl FnMut(Header, &Record<'_>) -> Result<(), Failure>,
) -> Result<Summary, Failure> {
    let header = input.header()?;
    let mut sink = CallSink { on_record: |rec: &Record<'_>| on_record(header, rec), failure: None };
    let f = match input.read_to_end(opts, &mut sink, true) {
        Ok(f) => f,
        Err(e) => return Err(sink.failure.take().unwrap_or_else(|| e.into())),
    };
    if f.trailing.beyond_limit && !quiet() {
        // Endless padding, a gzip bomb or an appended file: the RDB is complete, the rest is not read.
        eprintln!(
            "rdbkit: warning: more than {} bytes follow the checksum; they are ignored and were not read to their end",
            rdbkit::read::TRAILING_LIMIT
        );
    }
    let stream_bytes = f.end + f.trailing.len;
    // Only a gzip input differs in size from its RDB stream; a plain one may be read ahead of its end when the
    // reader stops after TRAILING_LIMIT bytes, which must not look like compression.
    let input_bytes = if input.is_gzip() { f.input_bytes } else { stream_bytes };
    Ok(Summary {
        header: f.header,
        checksum: f.checksum,
        trailing: f.trailing,
        stream_bytes,
        input_bytes,
        warnings: f.warnings,
    })
}

/// The file offset of a key record's value (where its bytes start in the input).
pub fn value_offset(rec: &Record<'_>, value_raw: &[u8]) -> u64 {
    let delta = (value_raw.as_ptr() as usize).wrapping_sub(rec.raw.as_ptr() as usize);
    if delta <= rec.raw.len() { rec.offset + delta as u64 } else { rec.offset }
}

/// Gives a value-decoding error the position of the value in the file, and the key's database and name.
///
/// Errors from decoding a value carry offsets relative to some part of the value, so they are replaced by the
/// offset where the value starts.
pub fn value_error(e: Error, rec: &Record<'_>, value_raw: &[u8], db: u64, key: &[u8]) -> Failure {
    Failure::from(e.at(value_offset(rec, value_raw)).in_db(db).for_key(key))
}

// The byte-exact text forms live in the library (`rdbkit::render::text`), shared with `dump`'s renderers.
pub use rdbkit::render::text::{base64, json_bytes, json_int, json_str};
