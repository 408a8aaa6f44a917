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
//! rdbkit diff a.rdb b.rdb.gz [--json] [--ttl-tolerance MS]  same logical data? (exit 0 equal, 1 differ)
//! ```
//!
//! Every command takes `-` for stdin and reads gzip-compressed input transparently, `redis://[[USER]:PASSWORD@]HOST:PORT`
//! for a running server (its snapshot streamed through replication, or read key by key where that is refused),
//! and the global flags `--json`, `-q/--quiet` and `-v/--verbose`. `rdbkit completions SHELL` and `rdbkit man`
//! print shell completions and a man page generated from the same definition.

mod cli;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use cli::common::{EXIT_IO, Failure, OutputArgs, out_err};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (info, verify, dump: also when the output pipe is closed early; a convert to
     stdout whose reader goes away fails with 2, as its output is incomplete)
  1  the input is not a valid RDB file: corrupt, truncated, or a checksum mismatch
  2  usage error, or an I/O error (file not found, unreadable, output failure)

FILE may be `-` for stdin; gzip-compressed input is detected and decompressed. FILE may also be a running
server, redis://[[USER]:PASSWORD@]HOST:PORT (rediss:// for TLS): its snapshot is streamed through replication (REPLCONF, PSYNC),
or read key by key (SCAN + DUMP, not point-in-time, said on stderr) where the server refuses replication; an
unreachable server, refused credentials, a time-out or a link dropped mid-snapshot exit 2.
Errors are reported on stderr as `rdbkit: FILE: error at byte N: ...`.";

/// Inspect, verify and export Redis/Valkey RDB snapshot files.
#[derive(Parser, Debug)]
#[command(name = "rdbkit", version, after_help = EXIT_CODES, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    out: OutputArgs,
    #[command(flatten)]
    live: LiveArgs,
}

/// How `redis://` inputs are read (global: accepted by every command).
#[derive(clap::Args, Debug, Clone)]
struct LiveArgs {
    /// redis:// inputs: `sync` takes the snapshot through replication only, `scan` key by key only (SCAN + DUMP,
    /// not point-in-time), `auto` replication with the scan as fallback where the server refuses it.
    #[arg(long, global = true, value_enum, default_value_t = SourceModeArg::Auto)]
    source_mode: SourceModeArg,
    /// redis:// inputs: seconds to wait for the TCP connection.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 10.0, value_parser = seconds)]
    connect_timeout: f64,
    /// redis:// inputs: seconds without a byte from the server (or a write accepted) before giving up. The master
    /// sends keep-alives while it prepares a snapshot, so this bounds a silent server, not a large snapshot.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 60.0, value_parser = seconds)]
    read_timeout: f64,
    /// rediss:// inputs: trust the CA certificate(s) of this PEM file instead of the public roots.
    #[arg(long, global = true, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// rediss:// inputs: accept any server certificate (self-signed test servers; not for production).
    #[arg(long, global = true)]
    tls_insecure: bool,
    /// rediss:// inputs: present this PEM certificate chain (servers with `tls-auth-clients yes`), with --tls-key.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// rediss:// inputs: the PEM private key of --tls-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// `--source-mode`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SourceModeArg {
    /// Replication, else the key-by-key scan.
    Auto,
    /// Replication only.
    Sync,
    /// Key by key only.
    Scan,
}

impl LiveArgs {
    fn options(&self) -> rdbkit::live::LiveOptions {
        use rdbkit::live::SourceMode;
        let secs = std::time::Duration::from_secs_f64;
        rdbkit::live::LiveOptions {
            mode: match self.source_mode {
                SourceModeArg::Auto => SourceMode::Auto,
                SourceModeArg::Sync => SourceMode::Sync,
                SourceModeArg::Scan => SourceMode::Scan,
            },
            timeouts: rdbkit::live::resp::Timeouts { connect: secs(self.connect_timeout), io: secs(self.read_timeout) },
            tls: rdbkit::live::tls::TlsOptions {
                ca_file: self.tls_ca.clone(),
                insecure: self.tls_insecure,
                client_cert: self.tls_cert.clone(),
                client_key: self.tls_key.clone(),
            },
        }
    }
}

/// A time-out in seconds: more than 0, at most a day.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what the file holds: header, AUX fields, keys, types, checksum, sizes.
    ///
    /// With --json, one JSON object instead of text.
    #[command(after_help = EXIT_CODES)]
    Info {
        /// RDB file (`-` for stdin; `.gz` accepted; `redis://…` for a running server).
        file: String,
    },
    /// Check the whole file as the servers do: deep validation and the checksum.
    ///
    /// Deep validation checks every structure (every value's bytes, as Redis's `sanitize-dump-payload yes`
    /// checks them, duplicate keys, function libraries). Prints a one-line summary (with --json, one object;
    /// with -q, nothing) and exits 0 when the file is sound.
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// RDB file (`-` for stdin; `.gz` accepted; `redis://…` for a running server).
        file: String,
        /// Fail (exit 1) on any warning.
        ///
        /// Warnings are bytes the servers load although no server writes them (a length in the string-encoding
        /// form, an empty LZF string, a text score with extra bytes…). Without --strict they go to stderr and the
        /// exit code is 0.
        #[arg(long)]
        strict: bool,
        /// Do not check that no database holds the same key twice.
        ///
        /// The check keeps a 64-bit hash per key in a table at most 3/4 full: 11-21 bytes per key for a file,
        /// twice that for stdin and other streams.
        #[arg(long)]
        no_duplicate_check: bool,
    },
    /// Export every key as JSON lines, or as RESP commands for `redis-cli --pipe`.
    ///
    /// The whole input is deep-validated first (as `verify` does), so a damaged file writes nothing, unless
    /// --no-validate. --json is --format json.
    #[command(after_help = EXIT_CODES)]
    Dump {
        /// RDB file (`-` for stdin; `.gz` accepted; `redis://…` for a running server).
        file: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Only keys of this database (function libraries are exported whatever the database).
        #[arg(long)]
        db: Option<u64>,
        /// RESP only: recreate every value with RESTORE instead of ordinary commands.
        ///
        /// `RESTORE key ttl payload ABSTTL REPLACE`, with DUMP payloads built from the file's bytes. Module values
        /// always use RESTORE.
        #[arg(long)]
        restore: bool,
        /// Skip the deep validation that comes before any output (trusted inputs only).
        ///
        /// A damaged input may then fail after part of the output was written.
        #[arg(long)]
        no_validate: bool,
    },
    /// Memory report: what each key costs in the server, totals, and the largest keys.
    ///
    /// Sizes as `MEMORY USAGE key SAMPLES 0` counts them (models: Redis 7.0 and 8.2), totals per database, type
    /// and encoding, and the largest keys. `--format csv` writes one row per key in rdbtools' memory report
    /// columns; it deep-validates the input first (as `dump` does) unless --no-validate, so a damaged file writes
    /// no rows. Text and JSON are printed at the end of one pass, in memory bounded by --top whatever the file's
    /// size.
    #[command(after_help = EXIT_CODES)]
    Report {
        /// RDB file (`-` for stdin; `.gz` accepted).
        file: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = cli::report::ReportFormat::Text)]
        format: cli::report::ReportFormat,
        /// List this many of the largest keys (text and json).
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// CSV: skip the validation pass before the first row (it keeps 11-21 bytes per key to find duplicates).
        #[arg(long)]
        no_validate: bool,
        /// Size for this server instead of the one that wrote the file (`redis-ver`): redis-7.0 or redis-8.2.
        #[arg(long, value_parser = cli::report::model_name)]
        target: Option<rdbkit::report::memory::Server>,
        /// Key prefixes end at this separator (text and json: memory per prefix).
        #[arg(long, default_value = ":")]
        separator: String,
        /// Prefix levels to count (0: none).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=16))]
        depth: u32,
    },
    /// Rewrite (and merge) RDB files for a target version, with optional filters.
    ///
    /// The output is written to a temporary file and renamed at the end (`-` writes to stdout; a device, FIFO or
    /// `/dev/fd/N` is written through, never replaced). Inputs are deep-validated first (as `verify` does)
    /// unless --no-validate.
    #[command(after_help = EXIT_CODES)]
    Convert {
        /// Input RDB files (`-` for stdin; `.gz` accepted; `redis://…` for a running server). Several inputs are merged.
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
    /// Split RDB files into one file per cluster shard, by hash slot, with a manifest.
    ///
    /// Database 0 only.     /// The set is published all or nothing: the shards get names of this run's generation
    /// (`P-gGEN-shard-NNN.rdb`), the manifest naming them is renamed into place last, then the previous set
    /// is removed. One run at a time per directory and prefix (a lock file `.P.rdbkit-lock`).
    #[command(after_help = EXIT_CODES)]
    Split {
        /// Input RDB files (`redis://…` for a running server).
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
    /// Export for blob storage: a page blob (`P.rdb`) or a block blob (`P.rdb.gz`).
    ///
    /// `P.rdb` is padded with zeros to a multiple of 512 bytes; one file per shard with --shards/--nodes.
    #[command(after_help = EXIT_CODES)]
    Export {
        /// Input RDB files (`redis://…` for a running server).
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
    /// Prepare RDB files for a target server or cluster; report what is kept and dropped.
    ///
    /// Version check and conversion, the tier's database limit, merge, cluster split, expired keys dropped.
    #[command(after_help = EXIT_CODES)]
    Import {
        /// Input RDB files (`.gz` and page-padded files accepted; `redis://…` for a running server).
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
    /// Load RDB files (or another server) into a running Redis/Valkey server with RESTORE.
    ///
    /// The target's version, databases and modules come from the server itself; the inputs are validated and
    /// checked against it before anything is sent (--lossy drops what it cannot hold). Keys that already exist
    /// fail the load by default (the target keeps them); --on-existing replace|skip. --flush empties the target
    /// first, and only then. A cluster target gets database 0, each key on its slot's master.
    #[command(after_help = EXIT_CODES)]
    Load {
        /// Inputs: RDB files (`-`, `.gz`, padded) or `redis://…` servers. Several inputs are merged.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// The target server: `redis://[[USER]:PASSWORD@]HOST:PORT` or `rediss://…`.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Keys the target already has: fail and keep the target's (error), overwrite (replace), keep (skip).
        #[arg(long, value_parser = ["error", "replace", "skip"], default_value = "error")]
        on_existing: String,
        /// FLUSHALL (and FUNCTION FLUSH) the target before loading.
        #[arg(long)]
        flush: bool,
        /// Most commands in flight before their replies are read.
        #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        pipeline: u32,
        /// Check everything and report what would be loaded; send nothing that changes the target.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Compare the logical data of two inputs: keys only in A, only in B, and differing.
    ///
    /// A and B are any inputs (any RDB version or family, `.gz`, padded, one may be `-`). Per database: keys
    /// only in one input, and keys whose type, value or expiry differ; function libraries and module values
    /// too. Encodings, the order of set/hash/zset members and AUX fields are ignored. Both inputs are
    /// deep-validated as `verify` does. Memory stays within --max-memory plus about 50 MiB of read buffers,
    /// whatever the input sizes: per-key digests go to temporary files in $TMPDIR when they do not fit. With
    /// --json, one object {"equal", "only_in_a", "only_in_b", "different"}, keys as `dump` writes them; with -q,
    /// only the summary line.
    #[command(after_help = DIFF_EXIT_CODES)]
    Diff {
        /// First input (`-` for stdin; `.gz` accepted).
        a: String,
        /// Second input (`-` for stdin; `.gz` accepted).
        b: String,
        /// Expiries equal within this many milliseconds count as equal.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        ttl_tolerance: u64,
        /// Memory for per-key records (e.g. 64M, 2G); beyond it they go to temporary files.
        #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = byte_size)]
        max_memory: usize,
    },
    /// Print a shell completion script for rdbkit.
    ///
    /// For example `rdbkit completions bash > ~/.local/share/bash-completion/completions/rdbkit`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print rdbkit's man page (roff), e.g. `rdbkit man > rdbkit.1`.
    #[command(hide = true)]
    Man,
}

const DIFF_EXIT_CODES: &str = "\
Exit codes:
  0  the inputs hold the same data
  1  they differ
  2  error: an input is not a valid RDB file (the message names it and the byte), usage or
     I/O error

Either input may be `-` for stdin; gzip-compressed input is detected and decompressed.";

/// `--max-memory SIZE`: bytes, with an optional K, M or G suffix (powers of 1024).
fn byte_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 1usize << 10),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 1 << 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a size (bytes, or a number with K, M or G)"))
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
    /// With --target: the target server also has this module loaded (repeatable), e.g. graphdata.
    #[arg(long = "with-module", value_name = "NAME")]
    with_modules: Vec<String>,
    /// Replace an existing output that is not an RDB file (or a manifest that is not rdbkit's).
    #[arg(long)]
    force: bool,
    /// Skip the deep validation of the inputs (trusted inputs only; the checksum is still checked).
    ///
    /// By default every input gets `verify`'s checks before any output is published.
    #[arg(long)]
    no_validate: bool,
}

impl CommonArgs {
    fn into_common(self, out: OutputArgs) -> cli::jobs::Common {
        cli::jobs::Common {
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
            json: out.json,
            quiet: out.quiet,
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
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    let out = cli.out;
    out.install();
    // Generated from the definition above; nothing else to set up.
    match &cli.command {
        Command::Completions { shell } => return print_generated(|w| generate_completions(*shell, w)),
        Command::Man => return print_generated(|w| clap_mangen::Man::new(Cli::command()).render(w)),
        _ => {}
    }
    cli::common::set_live_options(cli.live.options());
    // SIGINT/SIGTERM/SIGHUP remove this run's temporary files before ending the process.
    rdbkit::io::remove_on_signal();
    raise_open_file_limit();
    if let Command::Diff { a, b, ttl_tolerance, max_memory } = &cli.command {
        let args = cli::diff::DiffArgs {
            a: a.clone(),
            b: b.clone(),
            json: out.json,
            quiet: out.quiet,
            ttl_tolerance_ms: *ttl_tolerance,
            max_memory: *max_memory,
        };
        return diff_command(&args);
    }
    // Writing commands name the file in each message themselves (they have several inputs and outputs).
    let no_file = String::new();
    let (file, result) = match &cli.command {
        Command::Info { file } => (file, with_stdout(|w| cli::info::info(file, out.json, w))),
        Command::Verify { file, strict, no_duplicate_check } => {
            let v = cli::info::VerifyOptions {
                strict: *strict,
                no_duplicate_check: *no_duplicate_check,
                json: out.json,
                quiet: out.quiet,
            };
            (file, with_stdout(|w| cli::info::verify(file, v, w, &mut io::stderr().lock())))
        }
        Command::Dump { file, format, db, restore, no_validate } => {
            if *restore && *format != Format::Resp {
                eprintln!("rdbkit: --restore needs --format resp");
                return ExitCode::from(EXIT_IO as u8);
            }
            if out.json && *format != Format::Json {
                eprintln!("rdbkit: --json writes JSON lines (--format json), not --format resp");
                return ExitCode::from(EXIT_IO as u8);
            }
            let opts = cli::dump::DumpOptions { format: *format, db: *db, restore: *restore, validate: !*no_validate };
            (file, with_stdout(|w| cli::dump::dump(file, &opts, w)))
        }
        Command::Report { file, format, top, no_validate, target, separator, depth } => {
            // Text and JSON are printed once the walk is done, so an invalid input prints nothing anyway: only the
            // CSV, written row by row, is validated in a pass of its own first.
            let validate = !*no_validate && *format == cli::report::ReportFormat::Csv;
            let opts = cli::report::ReportOptions {
                format: *format,
                top: *top,
                validate,
                target: *target,
                separator: separator.clone().into_bytes(),
                depth: *depth as usize,
            };
            (file, with_stdout(|out| cli::report::report(file, &opts, out)))
        }
        Command::Convert { inputs, output, common, page_align, gzip } => {
            let c = common.clone().into_common(out);
            (&no_file, with_stdout(|out| cli::jobs::convert(inputs, output, &c, *page_align, *gzip, out)))
        }
        Command::Split { inputs, out_dir, shards, nodes, prefix, common } => {
            let c = common.clone().into_common(out);
            let r = with_stdout(|out| {
                cli::jobs::split(inputs, out_dir, *shards, nodes.as_deref(), prefix.as_deref(), &c, out)
            });
            (&no_file, r)
        }
        Command::Export { inputs, prefix, out_dir, blob, shards, nodes, common } => {
            let c = common.clone().into_common(out);
            let blob = match blob {
                BlobArg::Page => cli::jobs::Blob::Page,
                BlobArg::Gzip => cli::jobs::Blob::Gzip,
            };
            let r =
                with_stdout(|out| cli::jobs::export(inputs, prefix, out_dir, blob, *shards, nodes.as_deref(), &c, out));
            (&no_file, r)
        }
        Command::Import { inputs, output, out_dir, shards, nodes, dry_run, common } => {
            let c = common.clone().into_common(out);
            let r = with_stdout(|out| {
                cli::jobs::import(
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
        Command::Load { inputs, to, on_existing, flush, pipeline, dry_run, common } => {
            use rdbkit::live::load::{LoadOptions, OnExisting};
            let c = common.clone().into_common(out);
            let mut opts = LoadOptions::default();
            opts.on_existing = match on_existing.as_str() {
                "replace" => OnExisting::Replace,
                "skip" => OnExisting::Skip,
                _ => OnExisting::Error,
            };
            opts.flush = *flush;
            opts.pipeline = *pipeline as usize;
            opts.dry_run = *dry_run;
            (&no_file, with_stdout(|out| cli::jobs::load(inputs, to, &opts, &c, out)))
        }
        Command::Completions { .. } | Command::Man | Command::Diff { .. } => unreachable!("handled above"),
    };
    cli::common::detail(|| format!("finished in {:.2} s", started.elapsed().as_secs_f64()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match &f {
                Failure::Invalid(m) | Failure::Io(m) if file.is_empty() => eprintln!("rdbkit: {m}"),
                Failure::Invalid(m) | Failure::Io(m) => eprintln!("rdbkit: {}: {m}", rdbkit::live::redact(file)),
                Failure::BrokenPipe => {}
            }
            ExitCode::from(f.exit_code() as u8)
        }
    }
}

/// Writes the completion script for `shell`.
fn generate_completions(shell: clap_complete::Shell, w: &mut dyn Write) -> io::Result<()> {
    clap_complete::generate(shell, &mut Cli::command(), "rdbkit", w);
    Ok(())
}

/// Prints what `f` generates (completions, the man page) on stdout: exit 0, or 2 when stdout fails.
fn print_generated(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> ExitCode {
    match with_stdout(|w| f(w).map_err(out_err)) {
        Ok(()) | Err(Failure::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            if let Failure::Io(m) | Failure::Invalid(m) = &e {
                eprintln!("rdbkit: {m}");
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// `rdbkit diff`: exit 0 when equal, 1 when different, 2 on any error (a corrupt input included).
fn diff_command(args: &cli::diff::DiffArgs) -> ExitCode {
    let mut equal = false;
    match with_stdout(|out| cli::diff::run(args, out).map(|e| equal = e)) {
        Ok(()) => ExitCode::from(u8::from(!equal)),
        Err(Failure::BrokenPipe) => ExitCode::from(EXIT_IO as u8),
        Err(Failure::Invalid(m) | Failure::Io(m)) => {
            eprintln!("rdbkit: {m}");
            ExitCode::from(EXIT_IO as u8)
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
