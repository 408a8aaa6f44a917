//! `rdbkit`: inspect, verify and export Redis/Valkey RDB files from the command line.
//!
//! ```text
//! rdbkit info dump.rdb [--json]                          what the file holds
//! rdbkit verify dump.rdb                                 deep validation, full decode, checksum
//! rdbkit dump dump.rdb --format json|resp [--db N] [--restore]
//! rdbkit dump dump.rdb --format resp | redis-cli --pipe  load a file into a live server
//! rdbkit report dump.rdb [--format text|json|csv] [--top N]  memory per key, totals, largest keys
//!
//! rdbkit convert a.rdb b.rdb -o out.rdb --target redis-6.2  merge and rewrite for an older server
//! rdbkit split dump.rdb --out-dir shards --shards 3        one RDB per cluster shard, by hash slot
//! rdbkit export dump.rdb --prefix backup --out-dir out --blob page|gzip
//! rdbkit import a.rdb.gz -o ready.rdb --target redis-7.0 --tier p2 [--dry-run] [--json]
//! ```
//!
//! Every command takes `-` for stdin and reads gzip-compressed input transparently.

mod cli_common;
mod cli_dump;
mod cli_info;
mod cli_jobs;
mod cli_report;

use clap::{Parser, Subcommand, ValueEnum};
use cli_common::{EXIT_IO, Failure, out_err};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (also when the output pipe is closed early)
  1  the input is not a valid RDB file: corrupt, truncated, or a checksum mismatch
  2  usage error, or an I/O error (file not found, unreadable, output failure)

FILE may be `-` for stdin; gzip-compressed input is detected and decompressed.
Errors are reported on stderr as `rdbkit: FILE: error at byte N: ...`.";

/// Inspect, verify and export Redis/Valkey RDB snapshot files.
#[derive(Parser, Debug)]
#[command(name = "rdbkit", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the header, AUX fields, key counts per database, type and encoding, checksum status and sizes.
    #[command(after_help = EXIT_CODES)]
    Info {
        /// RDB file (`-` for stdin; `.gz` accepted).
        file: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check the whole file: deep validation of every structure (every value's bytes, as Redis's
    /// `sanitize-dump-payload yes` checks them) and the checksum.
    /// Prints a one-line summary and exits 0 when the file is sound.
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// RDB file (`-` for stdin; `.gz` accepted).
        file: String,
        /// Fail (exit 1) on any warning: bytes the servers load although no server writes them (a length in the
        /// string-encoding form, an empty LZF string, a text score with extra bytes…). Without it, warnings go to
        /// stderr and the exit code is 0.
        #[arg(long)]
        strict: bool,
        /// Do not check that no database holds the same key twice (the check keeps a 64-bit hash per key in a table
        /// at most 3/4 full: 11-21 bytes per key for a file, twice that for stdin and other streams).
        #[arg(long)]
        no_duplicate_check: bool,
    },
    /// Export every key: JSON lines, or RESP commands that `redis-cli --pipe` loads into a live server. The whole
    /// input is deep-validated first (as `verify` does), so a damaged file writes nothing, unless --no-validate.
    #[command(after_help = EXIT_CODES)]
    Dump {
        /// RDB file (`-` for stdin; `.gz` accepted).
        file: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Only keys of this database (function libraries are exported whatever the database).
        #[arg(long)]
        db: Option<u64>,
        /// RESP only: recreate every value with `RESTORE key ttl payload ABSTTL REPLACE` (DUMP payloads built from
        /// the file's bytes) instead of ordinary commands. Module values always use RESTORE.
        #[arg(long)]
        restore: bool,
        /// Skip the deep validation of the whole input that comes before any output (for trusted inputs: a
        /// damaged one may then fail after part of the output was written).
        #[arg(long)]
        no_validate: bool,
    },
    /// Memory report: what each key costs in the server (as `MEMORY USAGE key SAMPLES 0` counts it; models: Redis
    /// 7.0 and 8.2), totals per database, type and encoding, and the largest keys. `--format csv` writes one row per
    /// key in rdbtools' memory report columns; it deep-validates the input first (as `dump` does) unless
    /// --no-validate, so a damaged file writes no rows. Text and JSON are printed at the end of one pass, in memory
    /// bounded by --top whatever the file's size.
    #[command(after_help = EXIT_CODES)]
    Report {
        /// RDB file (`-` for stdin; `.gz` accepted).
        file: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = cli_report::ReportFormat::Text)]
        format: cli_report::ReportFormat,
        /// List this many of the largest keys (text and json).
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// CSV: skip the validation pass before the first row (it keeps 11-21 bytes per key to find duplicates).
        #[arg(long)]
        no_validate: bool,
        /// Size for this server instead of the one that wrote the file (`redis-ver`): redis-7.0 or redis-8.2.
        #[arg(long, value_parser = cli_report::model_name)]
        target: Option<rdbkit::report::memory::Server>,
    },
    /// Rewrite (and merge) RDB files for a target version, with optional filters; output is written to a
    /// temporary file and renamed at the end (`-` writes to stdout; a device, FIFO or `/dev/fd/N` is written
    /// through, never replaced). Inputs are deep-validated first (as `verify` does) unless --no-validate.
    #[command(after_help = EXIT_CODES)]
    Convert {
        /// Input RDB files (`-` for stdin; `.gz` accepted). Several inputs are merged.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// Output file (`-` for stdout).
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
        /// Pad the output with zeros to a multiple of 512 bytes (page blob).
        #[arg(long)]
        page_align: bool,
        /// gzip the output.
        #[arg(long)]
        gzip: bool,
    },
    /// Split RDB files into one file per cluster shard, by hash slot (database 0 only), with a manifest.
    /// The set is published all or nothing: the shards get names of this run's generation
    /// (`P-gGEN-shard-NNN.rdb`), the manifest naming them is renamed into place last, then the previous set
    /// is removed. One run at a time per directory and prefix (a lock file `.P.rdbkit-lock`).
    #[command(after_help = EXIT_CODES)]
    Split {
        /// Input RDB files.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// Directory for `P-gGEN-shard-NNN.rdb` and `P.manifest.json` (other files in it are left alone).
        #[arg(long)]
        out_dir: PathBuf,
        /// Number of shards (contiguous, near-even slot ranges as `redis-cli --cluster create` assigns them).
        #[arg(long, value_parser = shard_count)]
        shards: Option<usize>,
        /// Shard layout from a cluster's `nodes.conf` or `CLUSTER NODES` output.
        #[arg(long)]
        nodes: Option<PathBuf>,
        /// File name prefix: one plain file name, not starting with `.` (default: the first input's stem).
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Export for blob storage: `P.rdb` zero-padded to 512 bytes (page blob) or `P.rdb.gz` (block blob), one file
    /// per shard with --shards/--nodes.
    #[command(after_help = EXIT_CODES)]
    Export {
        /// Input RDB files.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// Blob name prefix: one plain file name, not starting with `.`.
        #[arg(long)]
        prefix: String,
        /// Output directory.
        #[arg(long)]
        out_dir: PathBuf,
        /// Blob kind.
        #[arg(long, value_enum, default_value_t = BlobArg::Page)]
        blob: BlobArg,
        /// Split into this many shards.
        #[arg(long, value_parser = shard_count)]
        shards: Option<usize>,
        /// Split by a cluster's node/slot map.
        #[arg(long)]
        nodes: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Prepare RDB files for import into a target server or cluster: version check and conversion, database
    /// limit of the tier, merge, cluster split, expired keys dropped; prints what is kept and what is dropped.
    #[command(after_help = EXIT_CODES)]
    Import {
        /// Input RDB files (`.gz` and page-padded files accepted).
        #[arg(required = true)]
        inputs: Vec<String>,
        /// Output file (non-clustered target).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Output directory (clustered target).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Clustered target with this many shards (database 0 only).
        #[arg(long, value_parser = shard_count)]
        shards: Option<usize>,
        /// Clustered target with this node/slot map.
        #[arg(long)]
        nodes: Option<PathBuf>,
        /// Print the report and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Options of the writing commands.
#[derive(clap::Args, Debug, Clone)]
struct CommonArgs {
    /// Write this RDB version (1-12, or 80 for VALKEY080).
    #[arg(long, value_parser = rdb_version)]
    rdb_version: Option<u32>,
    /// Write what this server loads: redis-2.6 … redis-8.2, valkey-7.2 … valkey-9.1.
    #[arg(long, value_parser = target_name)]
    target: Option<String>,
    /// Drop what the target cannot hold (field TTLs, functions, streams, module values) instead of refusing.
    #[arg(long)]
    lossy: bool,
    /// A key in the same database of several inputs: error (default), keep the first, or keep the last.
    #[arg(long, value_parser = ["error", "first", "last"])]
    on_duplicate: Option<String>,
    /// Keep databases 0..N only (the target's `databases` setting).
    #[arg(long)]
    databases: Option<u64>,
    /// Database limit of a managed cache tier: c0-c6, p1-p5, enterprise.
    #[arg(long)]
    tier: Option<String>,
    /// Keep only this database.
    #[arg(long)]
    db: Option<u64>,
    /// Move database FROM to TO (repeatable), e.g. 3:0.
    #[arg(long = "move-db", value_name = "FROM:TO")]
    move_db: Vec<String>,
    /// Keep keys matching this glob (Redis KEYS syntax).
    #[arg(long = "match", value_name = "GLOB")]
    pattern: Option<String>,
    /// Keep keys of this type (repeatable): string, list, set, zset, hash, stream, module.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Drop keys that have already expired.
    #[arg(long)]
    drop_expired: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Print only the one-line summary (and no progress bar).
    #[arg(long, short)]
    quiet: bool,
    /// With --target: the target server also has this module loaded (repeatable), e.g. graphdata.
    #[arg(long = "with-module", value_name = "NAME")]
    with_modules: Vec<String>,
    /// Replace an existing output that is not an RDB file (or a manifest that is not rdbkit's).
    #[arg(long)]
    force: bool,
    /// Skip the deep validation of the inputs (trusted inputs only; the checksum is still checked). By default
    /// every input gets `verify`'s checks before any output is published.
    #[arg(long)]
    no_validate: bool,
}

impl CommonArgs {
    fn into_common(self) -> cli_jobs::Common {
        cli_jobs::Common {
            rdb_version: self.rdb_version,
            target: self.target,
            lossy: self.lossy,
            on_duplicate: self.on_duplicate,
            databases: self.databases,
            tier: self.tier,
            db: self.db,
            move_db: self.move_db,
            pattern: self.pattern,
            types: self.types,
            drop_expired: self.drop_expired,
            json: self.json,
            quiet: self.quiet,
            with_modules: self.with_modules,
            force: self.force,
            no_validate: self.no_validate,
        }
    }
}

/// `--shards N`: 1 to 16384 (a usage error otherwise, exit 2 like every argument error).
fn shard_count(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("{s:?} is not a shard count (1-16384)"))?;
    if (1..=16384).contains(&n) { Ok(n) } else { Err(format!("{n} shards: a cluster has 1 to 16384")) }
}

/// `--rdb-version N`: a version rdbkit writes (1-12, or 80 for VALKEY080).
fn rdb_version(s: &str) -> Result<u32, String> {
    let v: u32 = s.parse().map_err(|_| format!("{s:?} is not an RDB version (1-12, or 80 for VALKEY080)"))?;
    match rdbkit::target::header_for_version(v) {
        Ok(_) if (1..=12).contains(&v) || v == 80 => Ok(v),
        _ => Err(format!("RDB version {v} is not one rdbkit writes: 1-12 (REDIS0001-REDIS0012) or 80 (VALKEY080)")),
    }
}

/// `--target SERVER`: a server of the table in `src/target.rs`.
fn target_name(s: &str) -> Result<String, String> {
    rdbkit::target::Target::from_name(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// Blob kind of `export`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum BlobArg {
    /// Zero-padded to a multiple of 512 bytes.
    Page,
    /// gzip-compressed.
    Gzip,
}

/// Output format of `dump`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per key (and one `{"function": code}` per function library), one per line.
    Json,
    /// Redis protocol commands (`redis-cli --pipe` input).
    Resp,
}

/// A split writes one file per shard at once (up to 16384 with `--nodes`): the soft limit on open files (often
/// 1024) is raised to the hard limit, as the process may do without privileges. Beyond the hard limit the run
/// fails cleanly ("Too many open files", exit 2, no temporary files left).
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // SIGINT/SIGTERM/SIGHUP remove this run's temporary files before ending the process.
    rdbkit::io::remove_on_signal();
    raise_open_file_limit();
    // Writing commands name the file in each message themselves (they have several inputs and outputs).
    let no_file = String::new();
    let (file, result) = match &cli.command {
        Command::Info { file, json } => (file, with_stdout(|out| cli_info::info(file, *json, out))),
        Command::Verify { file, strict, no_duplicate_check } => {
            let v = cli_info::VerifyOptions { strict: *strict, no_duplicate_check: *no_duplicate_check };
            (file, with_stdout(|out| cli_info::verify(file, v, out, &mut io::stderr().lock())))
        }
        Command::Dump { file, format, db, restore, no_validate } => {
            if *restore && *format != Format::Resp {
                eprintln!("rdbkit: --restore needs --format resp");
                return ExitCode::from(EXIT_IO as u8);
            }
            let opts = cli_dump::DumpOptions { format: *format, db: *db, restore: *restore, validate: !*no_validate };
            (file, with_stdout(|out| cli_dump::dump(file, &opts, out)))
        }
        Command::Report { file, format, top, no_validate, target } => {
            // Text and JSON are printed once the walk is done, so an invalid input prints nothing anyway: only the
            // CSV, written row by row, is validated in a pass of its own first.
            let validate = !*no_validate && *format == cli_report::ReportFormat::Csv;
            let opts = cli_report::ReportOptions { format: *format, top: *top, validate, target: *target };
            (file, with_stdout(|out| cli_report::report(file, &opts, out)))
        }
        Command::Convert { inputs, output, common, page_align, gzip } => {
            let c = common.clone().into_common();
            (&no_file, with_stdout(|out| cli_jobs::convert(inputs, output, &c, *page_align, *gzip, out)))
        }
        Command::Split { inputs, out_dir, shards, nodes, prefix, common } => {
            let c = common.clone().into_common();
            let r = with_stdout(|out| {
                cli_jobs::split(inputs, out_dir, *shards, nodes.as_deref(), prefix.as_deref(), &c, out)
            });
            (&no_file, r)
        }
        Command::Export { inputs, prefix, out_dir, blob, shards, nodes, common } => {
            let c = common.clone().into_common();
            let blob = match blob {
                BlobArg::Page => cli_jobs::Blob::Page,
                BlobArg::Gzip => cli_jobs::Blob::Gzip,
            };
            let r =
                with_stdout(|out| cli_jobs::export(inputs, prefix, out_dir, blob, *shards, nodes.as_deref(), &c, out));
            (&no_file, r)
        }
        Command::Import { inputs, output, out_dir, shards, nodes, dry_run, common } => {
            let c = common.clone().into_common();
            let r = with_stdout(|out| {
                cli_jobs::import(
                    inputs,
                    output.as_deref(),
                    out_dir.as_deref(),
                    *shards,
                    nodes.as_deref(),
                    *dry_run,
                    &c,
                    out,
                )
            });
            (&no_file, r)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match &f {
                Failure::Invalid(m) | Failure::Io(m) if file.is_empty() => eprintln!("rdbkit: {m}"),
                Failure::Invalid(m) | Failure::Io(m) => eprintln!("rdbkit: {file}: {m}"),
                Failure::BrokenPipe => {}
            }
            ExitCode::from(f.exit_code() as u8)
        }
    }
}

/// Runs `f` with a buffered stdout and flushes it; a closed pipe is not an error.
fn with_stdout(f: impl FnOnce(&mut dyn Write) -> Result<(), Failure>) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let r = f(&mut out);
    let flushed = out.flush().map_err(out_err);
    match (r, flushed) {
        (Err(Failure::BrokenPipe), _) | (Ok(()), Err(Failure::BrokenPipe)) => Err(Failure::BrokenPipe),
        (Err(e), _) => Err(e),
        (Ok(()), r) => r,
    }
}
