//! Loading RDB data into a running server: `rdbkit load INPUT... --to redis://HOST:PORT`.
//!
//! The target says what it is (`INFO server`: Redis or Valkey and its version, hence the RDB version it loads;
//! `CONFIG GET databases`, `proto-max-bulk-len`; `MODULE LIST`), the inputs are checked against it before anything
//! is sent (deep validation, and what the target cannot hold: refused, or with `lossy` dropped and reported), then
//! every key is written with `RESTORE key ttl payload ABSTTL [REPLACE] [IDLETIME s | FREQ n]`: the DUMP payload
//! is the value as stored when the target's version holds its encoding, else re-encoded for it. A value whose
//! payload exceeds the target's `proto-max-bulk-len` is sent as ordinary commands instead (the RESP rendering of
//! [`crate::render`], collections in batches). Function libraries go first, with `FUNCTION LOAD`.
//!
//! Commands are pipelined in a bounded window ([`LoadOptions::pipeline`]) and every reply is checked: a key the
//! target refuses is reported with the server's error, never lost silently. Keys that already exist follow
//! [`OnExisting`]: by default the load refuses them (the target keeps its value, the report names them);
//! `Replace` overwrites, `Skip` keeps the target's. [`LoadOptions::flush`] empties the target first, and only
//! then. Memory holds the window and the largest record, whatever the data set's size.
//!
//! A cluster target (`cluster_enabled:1`) takes database 0 only (other databases are reported as dropped): the
//! slot map comes from `CLUSTER SLOTS`, keys go to their slot's master, one pipelined connection per master;
//! `-MOVED` refreshes the map and resends, `-ASK` sends `ASKING` and the command to the importing node, and
//! `-TRYAGAIN`/`-CLUSTERDOWN`/`-LOADING` back off and retry, each at most 16 times. Function libraries go to
//! every master.

use super::resp::{Connection, Reply};
use super::{LiveOptions, RedisUrl};
use crate::error::{Error, ErrorKind, Result};
use crate::format::crc::crc64;
use crate::input::Input;
use crate::read::{Feature, Header, ReadOptions, Record, RecordKind};
use crate::target::Target;
use crate::transform::{Dropped, RecordSink};
use crate::workflow::{self, JobOptions};
use crate::write::encode::{EncodeOptions, Encoder};
use std::collections::{BTreeMap, VecDeque};

/// What to do with a key the target already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnExisting {
    /// Leave the target's key alone and fail the load, naming it (`RESTORE` without `REPLACE`: `BUSYKEY`).
    #[default]
    Error,
    /// Overwrite it (`RESTORE … REPLACE`; `FUNCTION LOAD REPLACE`).
    Replace,
    /// Keep the target's key and count it as skipped.
    Skip,
}

/// How a load runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Keys that already exist on the target.
    pub on_existing: OnExisting,
    /// `FLUSHALL` the target before loading (as the managed services' import does). Off unless asked for.
    pub flush: bool,
    /// Most commands in flight before their replies are read.
    pub pipeline: usize,
    /// Check everything and report what would be loaded, sending nothing that changes the target.
    pub dry_run: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { on_existing: OnExisting::Error, flush: false, pipeline: 1024, dry_run: false }
    }
}

/// What a running server is, as far as loading goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerInfo {
    /// `redis` or `valkey`.
    pub family: String,
    /// Its version, e.g. `7.0.15`.
    pub version: String,
    /// The newest known server at or below that version, whose RDB version the payloads are written for.
    pub target: Target,
    /// `CONFIG GET databases` (16 when the server does not say).
    pub databases: u64,
    /// `cluster_enabled:1`.
    pub cluster: bool,
    /// `CONFIG GET proto-max-bulk-len` (512 MiB when the server does not say).
    pub proto_max_bulk_len: u64,
    /// Module names from `MODULE LIST`.
    pub modules: Vec<String>,
}

/// One key the target refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedKey {
    /// Its database.
    pub db: u64,
    /// The key (for a function library: its name).
    pub key: Vec<u8>,
    /// The server's error reply.
    pub error: String,
}

/// What a load did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoadReport {
    /// The target, as `host:port`.
    pub target: String,
    /// What the target is (`None` for a report made before connecting).
    pub server: Option<ServerInfo>,
    /// Keys written, per target database.
    pub loaded: BTreeMap<u64, u64>,
    /// Keys that existed and were kept ([`OnExisting::Skip`]), per database.
    pub skipped: BTreeMap<u64, u64>,
    /// Keys that existed and were refused ([`OnExisting::Error`]).
    pub existing: Vec<FailedKey>,
    /// Keys the target refused for another reason.
    pub failed: Vec<FailedKey>,
    /// Function libraries loaded.
    pub functions: u64,
    /// Keys sent as ordinary commands (payload over `proto-max-bulk-len`).
    pub as_commands: u64,
    /// What a lossy load dropped.
    pub lossy: Vec<Dropped>,
    /// Keys dropped per source database (beyond the target's databases, or not selected).
    pub dropped_db: BTreeMap<u64, u64>,
    /// Keys left out by the filters (expired ones included).
    pub filtered: crate::transform::KeyFilterCounts,
    /// The load checked everything and sent nothing.
    pub dry_run: bool,
}

impl LoadReport {
    /// Whether every key that was meant to reach the target did (nothing refused, nothing existing refused).
    pub fn complete(&self) -> bool {
        self.failed.is_empty() && self.existing.is_empty()
    }
}

/// Asks a connected server what it is.
///
/// # Errors
/// The link fails, or `INFO server` does not name a known Redis or Valkey version.
pub fn probe(conn: &mut Connection) -> Result<ServerInfo> {
    let info = match conn.call(&[b"INFO", b"server"])? {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(invalid(format!("{}: INFO server replied {other:?}", conn.addr()))),
    };
    let field = |name: &str| {
        info.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':'))).map(|v| v.trim().to_string())
    };
    let (family, version) = match (field("valkey_version"), field("redis_version")) {
        (Some(v), _) => ("valkey", v),
        (None, Some(v)) => ("redis", v),
        _ => return Err(invalid(format!("{}: INFO server names no redis_version", conn.addr()))),
    };
    let target = Target::for_server(family, &version)
        .ok_or_else(|| invalid(format!("{}: {family} {version} is older than any server rdbkit knows", conn.addr())))?;
    let cluster = match conn.call(&[b"INFO", b"cluster"])? {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).lines().any(|l| l.trim() == "cluster_enabled:1"),
        _ => false,
    };
    let config = |conn: &mut Connection, name: &str| -> Result<Option<u64>> {
        Ok(match conn.call(&[b"CONFIG", b"GET", name.as_bytes()])? {
            Reply::Array(a) if a.len() == 2 => {
                a[1].as_bytes().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok())
            }
            _ => None,
        })
    };
    let databases = config(conn, "databases")?.unwrap_or(16);
    let proto_max_bulk_len = config(conn, "proto-max-bulk-len")?.unwrap_or(512 << 20);
    let modules = match conn.call(&[b"MODULE", b"LIST"])? {
        Reply::Array(mods) => mods
            .iter()
            .filter_map(|m| match m {
                Reply::Array(kv) => kv
                    .chunks(2)
                    .find(|p| p[0].as_bytes() == Some(b"name"))
                    .and_then(|p| p.get(1)?.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(ServerInfo { family: family.into(), version, target, databases, cluster, proto_max_bulk_len, modules })
}

/// Loads `inputs` into the server at `url` (see the module docs). `job` gives the filters (its target and
/// module list are replaced by what the server says; its database limit is lowered to the server's, to database
/// 0 for a cluster).
///
/// # Errors
/// The target cannot be reached or refuses the credentials, or cannot hold something the inputs have (without
/// `job.lossy`); an input fails validation; the link fails mid-load (what was sent before stays on the target,
/// and the error says how far the load got); a cluster keeps redirecting a slot past the retry bound. Keys the
/// target refuses are not errors: they are in the report ([`LoadReport::complete`]).
pub fn load(
    inputs: &[Input],
    url: &RedisUrl,
    live: &LiveOptions,
    job: &JobOptions,
    opts: &LoadOptions,
) -> Result<LoadReport> {
    let mut conn = super::connect(url, live)?;
    let server = probe(&mut conn)?;
    let mut job = job.clone();
    job.target = server.target.header;
    // A cluster has database 0 only.
    let databases = if server.cluster { 1 } else { server.databases };
    job.selection.dbs.limit = Some(job.selection.dbs.limit.map_or(databases, |l| l.min(databases)));
    // MODULE LIST names modules, not the data types their values carry (FalkorDB's `graph` stores `graphdata`):
    // a server with modules loaded decides itself (a value it cannot take is a refused key in the report); one
    // without any holds only its built-in types.
    job.modules =
        server.modules.is_empty().then(|| server.target.builtin_modules.iter().map(|m| m.to_string()).collect());
    // A loading master drops keys that have already expired: so does the load, explicitly.
    job.selection.drop_expired_at.get_or_insert(job.now_ms);
    // Everything is checked before the target sees a command: validation, and what it cannot hold.
    let plan = workflow::plan(inputs, &job)?;
    let problems: usize = plan.inputs.iter().map(|i| i.problems.len()).sum();
    if problems > 0 && !job.lossy {
        let first = plan.inputs.iter().flat_map(|i| i.problems.iter().map(move |p| (i, p)));
        let items: Vec<String> = first.clone().take(50).map(|(i, p)| format!("{}: {p}", i.name)).collect();
        let what = first.clone().next().map(|(_, p)| p.what.clone()).expect("problems > 0");
        return Err(Error::without_offset(ErrorKind::Unrepresentable {
            what,
            target: job.target,
            items,
            count: problems as u64,
        }));
    }
    let mut report = LoadReport { target: conn.addr().to_string(), server: Some(server.clone()), ..Default::default() };
    if opts.dry_run {
        report.dry_run = true;
        report.dropped_db = plan.dropped_db.clone();
        report.filtered = plan.filtered;
        if let Some(out) = plan.outputs.first() {
            report.loaded = out.keys.clone();
        }
        return Ok(report);
    }
    let targets = if server.cluster { Targets::cluster(url, live, conn)? } else { Targets::single(conn) };
    let mut loader = Loader {
        targets,
        target: job.target,
        lossy: job.lossy,
        on_existing: opts.on_existing,
        window: opts.pipeline.max(1),
        proto_max: server.proto_max_bulk_len,
        encoder: Encoder::new({
            let mut e: EncodeOptions = job.encode;
            e.lossy = job.lossy;
            e
        }),
        modules: job.modules.clone(),
        db: None,
        current: 0,
        body: Vec::new(),
        report,
    };
    if opts.flush {
        loader.on_every_master(&[b"FLUSHALL"], false)?;
        loader.on_every_master(&[b"FUNCTION", b"FLUSH"], true)?;
    }
    // The inputs were validated by the plan: this pass only walks them.
    let (mut loader, fed) = workflow::feed(inputs, &job, loader, ReadOptions::fast())?;
    loader.drain()?;
    let mut report = loader.report;
    report.dropped_db = fed.dropped_db;
    report.filtered = fed.filtered;
    Ok(report)
}

/// A command in flight, and what its reply means.
enum Pending {
    Select(u64),
    Key {
        db: u64,
        key: Vec<u8>,
    },
    /// One of the ordinary commands recreating a key (`last`: the key is done when its reply comes).
    Part {
        db: u64,
        key: Vec<u8>,
        last: bool,
    },
    Function(String),
}

/// A command in flight: its meaning, its arguments (kept to resend it where a cluster redirects it) and its slot.
struct InFlight {
    what: Pending,
    args: Vec<Vec<u8>>,
    slot: Option<u16>,
}

/// One server commands go to.
struct Node {
    host: String,
    port: u16,
    conn: Connection,
    /// Commands queued or sent whose replies are not read yet, oldest first.
    pending: VecDeque<InFlight>,
    /// How many of `pending` (from the front) have been sent.
    flushed: usize,
}

/// Where commands go: one server, or a cluster's masters with the slot map.
struct Targets {
    nodes: Vec<Node>,
    /// Slot → node (a cluster), refreshed by `-MOVED`.
    slots: Option<Box<[usize]>>,
    /// How to reach a node the cluster names (credentials of the URL given).
    url: Option<(RedisUrl, LiveOptions)>,
}

/// Attempts per command when a cluster redirects it or asks to wait (`-MOVED`, `-ASK`, `-TRYAGAIN`, …).
const MAX_ATTEMPTS: u32 = 16;

impl Targets {
    fn single(conn: Connection) -> Targets {
        let (host, port) = split_addr(conn.addr());
        Targets { nodes: vec![Node { host, port, conn, pending: VecDeque::new(), flushed: 0 }], slots: None, url: None }
    }

    fn cluster(url: &RedisUrl, live: &LiveOptions, first: Connection) -> Result<Targets> {
        let mut t = Targets { url: Some((url.clone(), live.clone())), ..Targets::single(first) };
        t.refresh_slots()?;
        Ok(t)
    }

    /// Reads `CLUSTER SLOTS` from the first node and maps every slot to its master (connecting to new ones).
    fn refresh_slots(&mut self) -> Result<()> {
        let reply = self.nodes[0].conn.call(&[b"CLUSTER", b"SLOTS"])?;
        let Reply::Array(ranges) = reply else {
            return Err(invalid(format!("{}: CLUSTER SLOTS replied {reply:?}", self.nodes[0].conn.addr())));
        };
        let mut slots = vec![usize::MAX; usize::from(crate::cluster::SLOTS)].into_boxed_slice();
        for r in ranges {
            let Reply::Array(r) = r else { continue };
            let (Some(Reply::Int(a)), Some(Reply::Int(b)), Some(Reply::Array(node))) = (r.first(), r.get(1), r.get(2))
            else {
                continue;
            };
            let (Some(ip), Some(Reply::Int(port))) = (node.first().and_then(Reply::as_bytes), node.get(1)) else {
                continue;
            };
            let ip = String::from_utf8_lossy(ip).into_owned();
            let host = if ip.is_empty() || ip == "?" { self.nodes[0].host.clone() } else { ip };
            let i = self.node(&host, u16::try_from(*port).unwrap_or(0))?;
            for s in (*a).max(0)..=(*b).min(i64::from(crate::cluster::SLOTS) - 1) {
                slots[s as usize] = i;
            }
        }
        if let Some(s) = slots.iter().position(|&n| n == usize::MAX) {
            return Err(invalid(format!("{}: slot {s} has no master (cluster not ok)", self.nodes[0].conn.addr())));
        }
        self.slots = Some(slots);
        Ok(())
    }

    /// The node at `host:port`, connected on first use.
    fn node(&mut self, host: &str, port: u16) -> Result<usize> {
        if let Some(i) = self.nodes.iter().position(|n| n.host == host && n.port == port) {
            return Ok(i);
        }
        let (url, live) = self.url.as_ref().ok_or_else(|| invalid(format!("redirected to {host}:{port}")))?;
        let u = RedisUrl { host: host.to_string(), port, ..url.clone() };
        let conn = super::connect(&u, live)?;
        self.nodes.push(Node { host: host.to_string(), port, conn, pending: VecDeque::new(), flushed: 0 });
        Ok(self.nodes.len() - 1)
    }

    /// The node a key of `slot` goes to.
    fn owner(&self, slot: Option<u16>) -> usize {
        match (&self.slots, slot) {
            (Some(map), Some(s)) => map[usize::from(s)],
            _ => 0,
        }
    }

    /// The masters (every node the slot map names; the one server otherwise).
    fn masters(&self) -> Vec<usize> {
        match &self.slots {
            Some(map) => {
                let mut v: Vec<usize> = map.to_vec();
                v.sort_unstable();
                v.dedup();
                v
            }
            None => vec![0],
        }
    }
}

fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']').to_string(), p.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

/// A cluster's redirection or wait reply: `MOVED`/`ASK` with the slot's node, or a condition to wait out.
enum Redirect {
    Moved(String, u16),
    Ask(String, u16),
    Wait,
}

fn redirect(err: &str) -> Option<Redirect> {
    let mut w = err.split_whitespace();
    match w.next()? {
        kind @ ("MOVED" | "ASK") => {
            let _slot = w.next()?;
            let (h, p) = split_addr(w.next()?);
            Some(if kind == "MOVED" { Redirect::Moved(h, p) } else { Redirect::Ask(h, p) })
        }
        "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" => Some(Redirect::Wait),
        _ => None,
    }
}

struct Loader {
    targets: Targets,
    target: Header,
    lossy: bool,
    on_existing: OnExisting,
    window: usize,
    proto_max: u64,
    encoder: Encoder,
    /// Module types the target has (`None`: not known, the server decides).
    modules: Option<Vec<String>>,
    /// The database selected on the connection (one server only: a cluster has database 0).
    db: Option<u64>,
    /// The target database of the records arriving (the last SELECTDB, after the database rules).
    current: u64,
    /// The value body for the target (re-encoded).
    body: Vec<u8>,
    report: LoadReport,
}

impl Loader {
    /// Sends `args` to every master and checks the replies (`tolerate_refusal`: an unknown or refused command is
    /// fine, e.g. FUNCTION FLUSH before Redis 7).
    fn on_every_master(&mut self, args: &[&[u8]], tolerate_refusal: bool) -> Result<()> {
        for i in self.targets.masters() {
            let n = &mut self.targets.nodes[i];
            if let Reply::Error(e) = n.conn.call(args)?
                && !(tolerate_refusal && super::resp::is_refusal(&e))
            {
                let cmd = String::from_utf8_lossy(args[0]);
                return Err(invalid(format!("{}: {cmd}: {e}", n.conn.addr())));
            }
        }
        Ok(())
    }

    /// Queues a command for the node that owns `slot` (or the one server).
    fn send(&mut self, what: Pending, args: Vec<Vec<u8>>, slot: Option<u16>) -> Result<()> {
        let i = self.targets.owner(slot);
        let n = &mut self.targets.nodes[i];
        n.conn.queue(&args.iter().map(Vec::as_slice).collect::<Vec<_>>());
        n.pending.push_back(InFlight { what, args, slot });
        if n.pending.len() - n.flushed >= self.window || n.conn.queued_bytes() >= 8 << 20 {
            self.advance(i)?;
        }
        Ok(())
    }

    /// Sends node `i`'s queued window, then reads the replies of the window sent before it, which the server
    /// answered while this one was being built: two windows in flight, so neither side waits for the other.
    fn advance(&mut self, i: usize) -> Result<()> {
        let earlier = self.targets.nodes[i].flushed;
        self.targets.nodes[i].conn.flush()?;
        self.targets.nodes[i].flushed = self.targets.nodes[i].pending.len();
        let mut retries = Vec::new();
        for _ in 0..earlier {
            self.read_one(i, &mut retries)?;
        }
        if !retries.is_empty() {
            // Redirects are resent synchronously: on idle connections only.
            self.drain()?;
            for (f, r) in retries {
                self.resend(f, r)?;
            }
        }
        Ok(())
    }

    /// Reads the reply of node `i`'s oldest command in flight and settles it (or keeps a redirect to resend).
    fn read_one(&mut self, i: usize, retries: &mut Vec<(InFlight, Redirect)>) -> Result<()> {
        let n = &mut self.targets.nodes[i];
        let Some(f) = n.pending.pop_front() else { return Ok(()) };
        n.flushed = n.flushed.saturating_sub(1);
        let reply = n.conn.read_reply()?;
        match reply.as_error().and_then(redirect) {
            Some(r) if self.targets.slots.is_some() => retries.push((f, r)),
            _ => self.settle(f.what, reply)?,
        }
        Ok(())
    }

    /// Sends what is queued on every node and checks every reply; redirected commands are resent. Afterwards
    /// every connection is idle.
    fn drain(&mut self) -> Result<()> {
        let mut retries = Vec::new();
        for i in 0..self.targets.nodes.len() {
            if self.targets.nodes[i].pending.is_empty() {
                continue;
            }
            self.targets.nodes[i].conn.flush()?;
            self.targets.nodes[i].flushed = self.targets.nodes[i].pending.len();
            while !self.targets.nodes[i].pending.is_empty() {
                self.read_one(i, &mut retries)?;
            }
        }
        for (f, r) in retries {
            self.resend(f, r)?;
        }
        Ok(())
    }

    /// Sends one redirected command where the cluster says, synchronously, until it settles (bounded).
    fn resend(&mut self, f: InFlight, mut r: Redirect) -> Result<()> {
        let args: Vec<&[u8]> = f.args.iter().map(Vec::as_slice).collect();
        for attempt in 1..=MAX_ATTEMPTS {
            let reply = match r {
                Redirect::Moved(ref h, p) => {
                    // The slot map changed (a resharding): learn the new one, then send to the owner.
                    self.targets.refresh_slots()?;
                    let i = match f.slot {
                        Some(_) => self.targets.owner(f.slot),
                        None => self.targets.node(h, p)?,
                    };
                    self.targets.nodes[i].conn.call(&args)?
                }
                Redirect::Ask(ref h, p) => {
                    // The slot is moving: this one command goes to the importing node, after ASKING.
                    let i = self.targets.node(h, p)?;
                    let c = &mut self.targets.nodes[i].conn;
                    c.queue(&[b"ASKING"]);
                    c.queue(&args);
                    c.flush()?;
                    let _ = c.read_reply()?;
                    c.read_reply()?
                }
                Redirect::Wait => {
                    std::thread::sleep(std::time::Duration::from_millis(50 * u64::from(attempt)));
                    let i = self.targets.owner(f.slot);
                    self.targets.nodes[i].conn.call(&args)?
                }
            };
            match reply.as_error().and_then(redirect) {
                Some(next) => r = next,
                None => return self.settle(f.what, reply),
            }
        }
        // The target's fault, not the input's: an I/O-class error (exit 2 in the CLI).
        Err(Error::from(std::io::Error::other(format!(
            "slot {:?}: still redirected after {MAX_ATTEMPTS} attempts",
            f.slot
        ))))
    }

    /// Records what a reply says about the command it answers.
    fn settle(&mut self, what: Pending, reply: Reply) -> Result<()> {
        let err = reply.as_error().map(str::to_string);
        match what {
            Pending::Select(db) => {
                if let Some(e) = err {
                    return Err(invalid(format!("{}: SELECT {db}: {e}", self.targets.nodes[0].conn.addr())));
                }
            }
            Pending::Key { db, key } => match err {
                None => *self.report.loaded.entry(db).or_default() += 1,
                Some(e) if e.starts_with("BUSYKEY") => match self.on_existing {
                    OnExisting::Skip => *self.report.skipped.entry(db).or_default() += 1,
                    _ => self.report.existing.push(FailedKey { db, key, error: e }),
                },
                Some(e) => self.report.failed.push(FailedKey { db, key, error: e }),
            },
            Pending::Part { db, key, last } => {
                // A key made of several commands fails as a whole: its first error is the one reported.
                if let Some(e) = err
                    && !self.report.failed.last().is_some_and(|f| f.db == db && f.key == key)
                {
                    self.report.failed.push(FailedKey { db, key: key.clone(), error: e });
                }
                if last && !self.report.failed.last().is_some_and(|f| f.db == db && f.key == key) {
                    *self.report.loaded.entry(db).or_default() += 1;
                    self.report.as_commands += 1;
                }
            }
            Pending::Function(name) => match err {
                None => self.report.functions += 1,
                Some(e) if e.contains("already exists") => match self.on_existing {
                    OnExisting::Skip => {}
                    _ => self.report.existing.push(FailedKey { db: 0, key: name.into_bytes(), error: e }),
                },
                Some(e) => self.report.failed.push(FailedKey { db: 0, key: name.into_bytes(), error: e }),
            },
        }
        Ok(())
    }

    fn select(&mut self, db: u64) -> Result<()> {
        if self.targets.slots.is_none() && self.db != Some(db) {
            self.db = Some(db);
            self.send(Pending::Select(db), vec![b"SELECT".to_vec(), db.to_string().into_bytes()], None)?;
        }
        Ok(())
    }

    /// Sends a key whose payload is too long for one bulk string as the ordinary commands that recreate it.
    fn as_commands(&mut self, rec: &Record<'_>, db: u64, key: &[u8], slot: Option<u16>) -> Result<()> {
        use crate::render::{Format, Output, Renderer};
        let mut text = Vec::new();
        {
            let mut out = Output::new(&mut text);
            let mut r = Renderer::new(Format::Resp, false);
            r.record(&mut out, self.target, rec).map_err(|e| invalid(format!("rendering commands: {e}")))?;
            out.flush()?;
        }
        let mut commands = split_commands(&text).ok_or_else(|| invalid("rendered commands do not parse".into()))?;
        // The rendering starts with its own SELECT: the loader has selected the database already.
        if commands.first().is_some_and(|c| c.first().is_some_and(|a| a == b"SELECT")) {
            commands.remove(0);
        }
        // An argument past proto-max-bulk-len makes the server drop the connection: such a key cannot be sent.
        if let Some(long) = commands.iter().flatten().map(Vec::len).filter(|&l| l as u64 > self.proto_max).max() {
            self.report.failed.push(FailedKey {
                db,
                key: key.to_vec(),
                error: format!(
                    "not sent: an element of {long} bytes is longer than the target's proto-max-bulk-len ({})",
                    self.proto_max
                ),
            });
            return Ok(());
        }
        let n = commands.len();
        for (i, c) in commands.into_iter().enumerate() {
            self.send(Pending::Part { db, key: key.to_vec(), last: i + 1 == n }, c, slot)?;
        }
        Ok(())
    }
}

impl RecordSink for Loader {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        match rec.kind {
            RecordKind::Function { code } => {
                let code = code.decode()?;
                let name = crate::read::function_name(&code).unwrap_or_default();
                if !self.target.supports(Feature::Functions) {
                    // The plan refused this unless lossy.
                    self.report.lossy.push(Dropped { db: None, key: None, what: format!("function library {name:?}") });
                    return Ok(());
                }
                let mut args: Vec<Vec<u8>> = vec![b"FUNCTION".to_vec(), b"LOAD".to_vec()];
                if self.on_existing == OnExisting::Replace {
                    args.push(b"REPLACE".to_vec());
                }
                args.push(code.into_owned());
                // Sent synchronously, on idle connections.
                self.drain()?;
                // Every master runs the functions: a cluster gets the library on each.
                let masters = self.targets.masters();
                for (k, i) in masters.iter().enumerate() {
                    let n = &mut self.targets.nodes[*i];
                    let reply = n.conn.call(&args.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
                    // Counted once, with the first master's verdict; a refusal elsewhere is reported too.
                    if k == 0 || reply.as_error().is_some() {
                        self.settle(Pending::Function(name.clone()), reply)?;
                    }
                }
                Ok(())
            }
            RecordKind::Entry(ref e) => {
                let key = e.key.decode()?.into_owned();
                let at = rec.offset;
                let db = self.current;
                if e.value.encoding == crate::read::Encoding::Module2
                    && let Ok((id, _)) = e.value.module()
                {
                    let name = crate::read::module::module_name(id).0;
                    if self.modules.as_ref().is_some_and(|m| !m.contains(&name)) {
                        // The plan refused this unless lossy.
                        self.report.lossy.push(Dropped {
                            db: Some(db),
                            key: Some(key),
                            what: format!("whole key: module value of {name} (the target lacks the module)"),
                        });
                        return Ok(());
                    }
                }
                // The value body in an encoding the target holds.
                self.body.clear();
                let ty = if e.value.encoding.allowed_in(self.target) {
                    self.body.extend_from_slice(e.value.raw);
                    e.value.encoding.type_byte()
                } else {
                    let owned = e.value.to_owned_value().map_err(|err| err.at(at).in_db(e.db).for_key(&key))?;
                    match self.encoder.encode(&owned, self.target, &mut self.body) {
                        Ok(enc) => {
                            for d in enc.dropped {
                                self.report.lossy.push(Dropped {
                                    db: Some(db),
                                    key: Some(key.clone()),
                                    what: format!("part of the value (the key is kept): {d}"),
                                });
                            }
                            enc.encoding.type_byte()
                        }
                        Err(u) if self.lossy => {
                            self.report.lossy.push(Dropped {
                                db: Some(db),
                                key: Some(key),
                                what: format!("whole key: {u}"),
                            });
                            return Ok(());
                        }
                        Err(u) => return Err(Error::unrepresentable(u, self.target).at(at).in_db(e.db).for_key(&key)),
                    }
                };
                self.select(db)?;
                let slot = self.targets.slots.is_some().then(|| crate::cluster::key_hash_slot(&key));
                let payload_len = 1 + self.body.len() as u64 + 10;
                if payload_len > self.proto_max {
                    return self.as_commands(rec, db, &key, slot);
                }
                // The DUMP payload: type byte, body, RDB version (LE u16), CRC-64 of all that.
                let version = (self.target.version as u16).to_le_bytes();
                let crc = crc64(crc64(crc64(0, &[ty]), &self.body), &version);
                let mut payload = Vec::with_capacity(payload_len as usize);
                payload.push(ty);
                payload.extend_from_slice(&self.body);
                payload.extend_from_slice(&version);
                payload.extend_from_slice(&crc.to_le_bytes());
                let ttl = e.expiry.map_or(0, |x| x.as_millis()).to_string().into_bytes();
                let mut args: Vec<Vec<u8>> = vec![b"RESTORE".to_vec(), key.clone(), ttl, payload, b"ABSTTL".to_vec()];
                if self.on_existing == OnExisting::Replace {
                    args.push(b"REPLACE".to_vec());
                }
                if self.target.supports(Feature::IdleAndFreq) {
                    if let Some(idle) = e.idle {
                        args.extend([b"IDLETIME".to_vec(), idle.to_string().into_bytes()]);
                    } else if let Some(freq) = e.freq {
                        args.extend([b"FREQ".to_vec(), freq.to_string().into_bytes()]);
                    }
                }
                self.send(Pending::Key { db, key }, args, slot)
            }
            // Database moves arrive as rewritten SELECTDB records; the entries keep their source database.
            RecordKind::SelectDb { db } => {
                self.current = db;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.drain()
    }
}

/// The commands of a RESP request stream, each as its arguments; `None` when it is not one.
fn split_commands(mut b: &[u8]) -> Option<Vec<Vec<Vec<u8>>>> {
    fn line(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let i = b.windows(2).position(|w| w == b"\r\n")?;
        Some((&b[..i], &b[i + 2..]))
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let (head, rest) = line(b.strip_prefix(b"*")?)?;
        let n: usize = std::str::from_utf8(head).ok()?.parse().ok()?;
        b = rest;
        let mut args = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let (len, rest) = line(b.strip_prefix(b"$")?)?;
            let len: usize = std::str::from_utf8(len).ok()?.parse().ok()?;
            let arg = rest.get(..len)?;
            b = rest.get(len..)?.strip_prefix(b"\r\n")?;
            args.push(arg.to_vec());
        }
        out.push(args);
    }
    Some(out)
}

fn invalid(m: String) -> Error {
    Error::without_offset(ErrorKind::Invalid(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_back() {
        let mut o = Vec::new();
        for c in [&[&b"SET"[..], b"k", b"v\r\n"][..], &[b"PING"]] {
            o.extend_from_slice(format!("*{}\r\n", c.len()).as_bytes());
            for a in c {
                o.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                o.extend_from_slice(a);
                o.extend_from_slice(b"\r\n");
            }
        }
        let got = split_commands(&o).unwrap();
        assert_eq!(got, vec![vec![b"SET".to_vec(), b"k".to_vec(), b"v\r\n".to_vec()], vec![b"PING".to_vec()]]);
        assert!(split_commands(&o[..o.len() - 1]).is_none());
        assert!(split_commands(b"+OK\r\n").is_none());
    }

    #[test]
    fn targets_from_server_versions() {
        let t = |f, v| Target::for_server(f, v).map(|t| t.name);
        assert_eq!(t("redis", "7.0.15"), Some("redis-7.0"));
        assert_eq!(t("redis", "7.2.4"), Some("redis-7.2"));
        assert_eq!(t("redis", "8.4.0"), Some("redis-8.2"));
        assert_eq!(t("valkey", "9.1.0"), Some("valkey-9.1"));
        assert_eq!(t("valkey", "8.1.3"), Some("valkey-8.1"));
        assert_eq!(t("redis", "1.0.0"), None);
    }
}
