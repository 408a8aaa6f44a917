//! `rdbkit`: inspect, verify and export Redis/Valkey RDB files from the command line.
//!
//! ```text
//! rdbkit info dump.rdb [--json]                          what the file holds
//! rdbkit verify dump.rdb                                 deep validation, full decode, checksum
//! rdbkit dump dump.rdb --format json|resp [--db N] [--restore]
//! rdbkit dump dump.rdb --format resp | redis-cli --pipe  load a file into a live server
//! ```
//!
//! Every command takes `-` for stdin and reads gzip-compressed input transparently.

mod cli_common;
mod cli_dump;
mod cli_info;

use clap::{Parser, Subcommand, ValueEnum};
use cli_common::{EXIT_IO, Failure, out_err};
use std::io::{self, BufWriter, Write};
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
    /// Check the whole file: deep validation of every structure, full decode of every value, and the checksum.
    /// Prints a one-line summary and exits 0 when the file is sound.
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// RDB file (`-` for stdin; `.gz` accepted).
        file: String,
    },
    /// Export every key: JSON lines, or RESP commands that `redis-cli --pipe` loads into a live server.
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
    },
}

/// Output format of `dump`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per key (and one `{"function": code}` per function library), one per line.
    Json,
    /// Redis protocol commands (`redis-cli --pipe` input).
    Resp,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (file, result) = match &cli.command {
        Command::Info { file, json } => (file, with_stdout(|out| cli_info::info(file, *json, out))),
        Command::Verify { file } => (file, with_stdout(|out| cli_info::verify(file, out))),
        Command::Dump { file, format, db, restore } => {
            if *restore && *format != Format::Resp {
                eprintln!("rdbkit: --restore needs --format resp");
                return ExitCode::from(EXIT_IO as u8);
            }
            let opts = cli_dump::DumpOptions { format: *format, db: *db, restore: *restore };
            (file, with_stdout(|out| cli_dump::dump(file, &opts, out)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match &f {
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
