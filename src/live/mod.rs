//! Live servers as sources: a running Redis or Valkey read as an RDB byte stream, fed to the same readers as a
//! file (feature `live`).
//!
//! - [`url`]: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` addresses; passwords never shown.
//! - [`resp`]: the small blocking, pipelining RESP2 client every live endpoint uses.
//! - [`replica`]: the snapshot through replication (`REPLCONF capa eof`, `rdb-only`, `PSYNC`/`SYNC`, both payload
//!   framings), streamed — no temporary file.
//! - `tls` (feature `tls`): `rediss://` with rustls.
//! - [`scan`]: the fallback where replication is refused: `SCAN` + `DUMP` + expiry per database, re-wrapped as an
//!   RDB stream (not point-in-time).
//!
//! - [`load`]: the other direction: inputs loaded into a running server with `RESTORE` (`rdbkit load`).
//!
//! [`cluster_masters`] lists the masters of a cluster (`CLUSTER SLOTS`), to read one snapshot from each.
//!
//! [`open_input`] makes an [`Input`] of a server: the bytes reach the streaming reader as they arrive, in the bounded
//! memory of a stream (a job that reads its input twice spools it, as it spools stdin).
//!
//! ```no_run
//! use rdbkit::live::{LiveOptions, RedisUrl, open_input};
//! use rdbkit::read::ReadOptions;
//! # fn main() -> rdbkit::Result<()> {
//! let url = RedisUrl::parse("redis://:secret@127.0.0.1:6379").map_err(|m| rdbkit::Error::without_offset(rdbkit::ErrorKind::Invalid(m)))?;
//! let (input, how) = open_input(&url, &LiveOptions::default())?;
//! println!("{} via {:?}", input.name(), how.kind);
//! # Ok(()) }
//! ```

pub mod load;
pub mod replica;
pub mod resp;
pub mod scan;
#[cfg(feature = "tls")]
pub mod tls;
pub mod url;

pub use url::{RedisUrl, Secret, is_live_url, redact};

use crate::error::{Error, ErrorKind, Result};
use crate::input::Input;
use resp::{Connection, Timeouts};
use std::io::{self, Read};

/// How a snapshot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceMode {
    /// Replication, and the key-by-key scan when the server refuses it.
    #[default]
    Auto,
    /// Replication only: a server that refuses it is an error.
    Sync,
    /// The key-by-key scan only.
    Scan,
}

/// Options for reading a live server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveOptions {
    /// Replication, scan, or replication with the scan as fallback.
    pub mode: SourceMode,
    /// Connect and read/write time-outs.
    pub timeouts: Timeouts,
    /// Certificates for `rediss://` (feature `tls`).
    #[cfg(feature = "tls")]
    pub tls: tls::TlsOptions,
}

/// Connects to the server of `url` (TLS for `rediss://`) and authenticates.
///
/// # Errors
/// The server cannot be reached, the TLS handshake fails, the credentials are refused, a user is given without a
/// password, or `rediss://` in a build without the `tls` feature. Messages name `host:port`, never the password.
pub fn connect(url: &RedisUrl, opts: &LiveOptions) -> Result<Connection> {
    let fail = |m: String| Error::without_offset(ErrorKind::Invalid(m));
    if let (Some(u), None) = (&url.user, &url.password) {
        return Err(fail(format!("user {u:?} given without a password (redis://USER:PASSWORD@HOST:PORT)")));
    }
    let mut conn = if url.tls {
        #[cfg(feature = "tls")]
        {
            let config = tls::client_config(&opts.tls)?;
            Connection::connect_tls(&url.host, url.port, opts.timeouts, config)?
        }
        #[cfg(not(feature = "tls"))]
        return Err(fail("rediss:// (TLS) needs rdbkit built with the `tls` feature".into()));
    } else {
        Connection::connect(&url.host, url.port, opts.timeouts)?
    };
    if let Some(pw) = &url.password {
        conn.auth(url.user.as_deref(), pw)?;
    }
    Ok(conn)
}

/// How the snapshot was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotKind {
    /// Through replication: a point-in-time snapshot.
    Replication {
        /// The master streamed it diskless (`$EOF:` framing) rather than from a file (`$<len>`).
        diskless: bool,
        /// The server accepted `REPLCONF rdb-only 1`.
        rdb_only: bool,
    },
    /// Key by key ([`scan`]): not a point-in-time snapshot.
    Scan {
        /// Why replication was not used (the server's refusal), or `None` when the scan was asked for.
        refused: Option<String>,
    },
}

/// What a caller should know about a snapshot: how it was taken and anything it lacks. The CLI prints the notes
/// on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// How it was taken.
    pub kind: SnapshotKind,
    /// Sentences for the user (e.g. "not a point-in-time snapshot", function libraries not copied).
    pub notes: Vec<String>,
    /// The server is a node of a cluster (`cluster_enabled:1`): the snapshot holds its own slots only (see
    /// [`cluster_masters`] for the others).
    pub cluster_node: bool,
}

/// Connects, authenticates and starts a snapshot of the server at `url`; returns its RDB bytes as a stream.
///
/// # Errors
/// A `/DB` in the URL (a snapshot holds every database), those of [`connect`], or (with [`SourceMode::Sync`]) a
/// server that refuses replication. Messages name the server's `host:port` and never the password.
pub fn open_snapshot(url: &RedisUrl, opts: &LiveOptions) -> Result<(Box<dyn Read + Send>, SnapshotInfo)> {
    let fail = |m: String| Error::without_offset(ErrorKind::Invalid(m));
    if let Some(db) = url.db {
        return Err(fail(format!(
            "a snapshot holds every database; to keep one, give --db {db} instead of /{db} in the address"
        )));
    }
    let mut conn = connect(url, opts)?;
    let cluster_node = match conn.call(&[b"INFO", b"cluster"])? {
        resp::Reply::Bulk(b) => scan::info_field(&String::from_utf8_lossy(&b), "cluster_enabled") == Some("1"),
        _ => false,
    };
    let refused = match opts.mode {
        SourceMode::Scan => None,
        SourceMode::Auto | SourceMode::Sync => match replica::handshake(conn)? {
            replica::Handshake::Streaming(s) => {
                let kind = SnapshotKind::Replication {
                    diskless: matches!(s.framing(), replica::Framing::Eof(_)),
                    rdb_only: s.info().rdb_only,
                };
                return Ok((Box::new(s), SnapshotInfo { kind, notes: Vec::new(), cluster_node }));
            }
            replica::Handshake::Refused(c, why) => {
                if opts.mode == SourceMode::Sync {
                    return Err(Error::from(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "{}: the server refuses replication ({why}); --source-mode scan reads it key by key",
                            c.addr()
                        ),
                    )));
                }
                conn = c;
                Some(why)
            }
        },
    };
    let s = scan::ScanSource::start(conn)?;
    let mut notes = Vec::new();
    match &refused {
        Some(why) => notes.push(format!(
            "{url}: replication refused ({why}); reading key by key with SCAN + DUMP: this is NOT a point-in-time snapshot"
        )),
        None => notes.push(format!("{url}: reading key by key with SCAN + DUMP: this is NOT a point-in-time snapshot")),
    }
    if let Some(why) = &s.info().functions_skipped {
        notes.push(format!("{url}: function libraries are not in the snapshot ({why})"));
    }
    Ok((Box::new(s), SnapshotInfo { kind: SnapshotKind::Scan { refused }, notes, cluster_node }))
}

/// The masters of the cluster `url` belongs to, from `CLUSTER SLOTS` (each with the URL's credentials and TLS, in
/// the order of their first slot), or `None` when the server is not in cluster mode (`INFO cluster`).
///
/// # Errors
/// Those of [`connect`]; a cluster node that refuses `CLUSTER SLOTS` or answers something else than a slot map.
pub fn cluster_masters(url: &RedisUrl, opts: &LiveOptions) -> Result<Option<Vec<RedisUrl>>> {
    let mut conn = connect(url, opts)?;
    let info = match conn.call(&[b"INFO", b"cluster"])? {
        resp::Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        // INFO refused: taken as a single server.
        _ => return Ok(None),
    };
    if scan::info_field(&info, "cluster_enabled") != Some("1") {
        return Ok(None);
    }
    let bad = |what: &str| Error::from(io::Error::other(format!("{}: CLUSTER SLOTS: {what}", url.addr())));
    let ranges = match conn.call(&[b"CLUSTER", b"SLOTS"])? {
        resp::Reply::Array(r) => r,
        resp::Reply::Error(e) => return Err(bad(&e)),
        _ => return Err(bad("not an array")),
    };
    let mut masters: Vec<(i64, RedisUrl)> = Vec::new();
    for r in ranges {
        let resp::Reply::Array(r) = r else { return Err(bad("a slot range that is not an array")) };
        let (Some(resp::Reply::Int(start)), Some(resp::Reply::Array(node))) = (r.first(), r.get(2)) else {
            return Err(bad("a slot range without its master"));
        };
        let (Some(ip), Some(resp::Reply::Int(port))) = (node.first().and_then(resp::Reply::as_bytes), node.get(1))
        else {
            return Err(bad("a master without an address"));
        };
        let ip = String::from_utf8_lossy(ip).into_owned();
        let port = u16::try_from(*port).map_err(|_| bad("a port out of range"))?;
        // An empty or unknown address: the node answering is that master.
        let host = if ip.is_empty() || ip == "?" { url.host.clone() } else { ip };
        let m = RedisUrl { host, port, ..url.clone() };
        match masters.iter_mut().find(|(_, u)| u.host == m.host && u.port == m.port) {
            Some((first, _)) => *first = (*first).min(*start),
            None => masters.push((*start, m)),
        }
    }
    masters.sort_by_key(|(s, _)| *s);
    Ok(Some(masters.into_iter().map(|(_, u)| u).collect()))
}

/// [`open_snapshot`] as an [`Input`] named by the redacted URL, read like stdin: streamed once, spooled by a job that
/// reads its input twice.
///
/// # Errors
/// Those of [`open_snapshot`], and a snapshot that does not start with an RDB header.
pub fn open_input(url: &RedisUrl, opts: &LiveOptions) -> Result<(Input, SnapshotInfo)> {
    let (r, info) = open_snapshot(url, opts)?;
    let input = Input::from_stream(&url.to_string(), r)?;
    Ok((input, info))
}
