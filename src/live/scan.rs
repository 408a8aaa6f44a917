//! A snapshot rebuilt key by key, for servers that refuse replication: `SCAN` every database that `INFO keyspace`
//! lists, `DUMP` each key and ask its expiry (`PEXPIRETIME`, or `PTTL` on servers older than 7.0), and re-wrap each
//! payload as a key record of an RDB stream — header at the payload's RDB version, function libraries from
//! `FUNCTION DUMP` where the server has it, a SELECTDB per database, EOF and a correct CRC-64 — read as an
//! [`io::Read`].
//!
//! This is **not a point-in-time snapshot**: keys written while the scan runs may or may not be in it, each key is
//! as it was when it was dumped. `SCAN` may return a key twice; the second time is skipped (a 128-bit hash per key
//! of the database being scanned is kept, about 16-32 bytes per key). Memory otherwise holds one pipelined window
//! of payloads: 64 keys, or one key at a time after a window of more than 16 MiB, growing back when values are
//! small. A DUMP payload carries no LRU/LFU data, so none is written.

use super::resp::{Connection, Reply, is_refusal};
use crate::dump::parse_dump_payload;
use crate::read::{Encoding, Expiry, Header};
use crate::target::header_for_version;
use crate::write::{EntryMeta, RdbWriter};
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

/// Keys asked for per `SCAN` call.
const SCAN_COUNT: &[u8] = b"1000";
/// Keys dumped per pipelined window, at most.
const MAX_WINDOW: usize = 64;
/// A window whose payloads total more than this shrinks to one key.
const WINDOW_BYTES: usize = 16 << 20;

/// What the scan found before the first key (for the caller's notes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanInfo {
    /// Databases `INFO keyspace` listed.
    pub databases: Vec<u64>,
    /// Function libraries copied from `FUNCTION DUMP`.
    pub functions: usize,
    /// Why function libraries are not in the snapshot, when the server has them but refused to dump them.
    pub functions_skipped: Option<String>,
}

/// The RDB stream of a scan (see the module docs).
pub struct ScanSource {
    conn: Connection,
    info: ScanInfo,
    db_i: usize,
    /// The SCAN cursor of the current database (`None`: not selected yet).
    cursor: Option<Vec<u8>>,
    pending: VecDeque<Vec<u8>>,
    seen: HashSet<u128>,
    pexpiretime: bool,
    server_version: Option<u32>,
    functions: Vec<Vec<u8>>,
    functions_version: Option<u16>,
    writer: Option<RdbWriter<Shared>>,
    out: Shared,
    out_at: usize,
    window: usize,
    done: bool,
}

impl std::fmt::Debug for ScanSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanSource").field("conn", &self.conn).field("info", &self.info).finish_non_exhaustive()
    }
}

/// The writer's output, shared with the reader that hands it out.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ScanSource {
    /// Starts a scan on `conn` (authenticated): reads `INFO server`, `INFO keyspace` and `FUNCTION DUMP`.
    ///
    /// # Errors
    /// The link fails, or the server refuses `INFO`.
    pub fn start(mut conn: Connection) -> io::Result<ScanSource> {
        let server = text_reply(&mut conn, &[b"INFO", b"server"])?;
        let keyspace = text_reply(&mut conn, &[b"INFO", b"keyspace"])?;
        let databases = keyspace_databases(&keyspace);
        let server_version = server_rdb_version(&server);
        let mut info = ScanInfo { databases, ..ScanInfo::default() };
        let mut functions = Vec::new();
        let mut functions_version = None;
        match conn.call(&[b"FUNCTION", b"DUMP"])? {
            Reply::Bulk(p) => match function_codes(&p) {
                Ok((codes, v)) => {
                    info.functions = codes.len();
                    functions = codes;
                    functions_version = v;
                }
                Err(why) => info.functions_skipped = Some(why),
            },
            // No FUNCTION command (before 7.0): there are no libraries to copy.
            Reply::Error(e)
                if e.to_ascii_lowercase().contains("unknown command") && server_version.is_some_and(|v| v < 10) => {}
            Reply::Error(e) => info.functions_skipped = Some(format!("FUNCTION DUMP: {e}")),
            other => info.functions_skipped = Some(format!("FUNCTION DUMP answered {other:?}")),
        }
        Ok(ScanSource {
            conn,
            info,
            db_i: 0,
            cursor: None,
            pending: VecDeque::new(),
            seen: HashSet::new(),
            pexpiretime: server_version.is_none_or(|v| v >= 10),
            server_version,
            functions,
            functions_version,
            writer: None,
            out: Shared::default(),
            out_at: 0,
            window: MAX_WINDOW,
            done: false,
        })
    }

    /// What the scan found before the first key.
    pub fn info(&self) -> &ScanInfo {
        &self.info
    }

    fn err(&self, what: impl std::fmt::Display) -> io::Error {
        io::Error::other(format!("{}: {what}", self.conn.addr()))
    }

    /// The writer, created at the first need with the header for `payload_version` (or the server's version when
    /// it is newer); a later payload newer than the header is refused.
    fn writer(&mut self, payload_version: Option<u16>) -> io::Result<&mut RdbWriter<Shared>> {
        if self.writer.is_none() {
            let v = [payload_version.map(u32::from), self.functions_version.map(u32::from), self.server_version]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(9);
            let header = header_for_version(v).map_err(|e| self.err(format!("RDB version {v}: {e}")))?;
            let mut w = RdbWriter::new(self.out.clone(), header).map_err(|e| self.err(e))?;
            for code in std::mem::take(&mut self.functions) {
                w.function(&code).map_err(|e| self.err(e))?;
            }
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("created above");
        if let Some(v) = payload_version
            && u32::from(v) > w.header().version
        {
            let h = w.header().magic();
            return Err(io::Error::other(format!("a DUMP payload of RDB version {v} does not fit the stream's {h}")));
        }
        Ok(w)
    }

    /// One step: a SCAN call, a window of keys, or the end of the stream.
    fn step(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            return self.dump_window();
        }
        let Some(&db) = self.info.databases.get(self.db_i) else {
            self.writer(None)?;
            let w = self.writer.take().expect("created");
            w.finish().map_err(|e| self.err(e))?;
            self.done = true;
            return Ok(());
        };
        match &self.cursor {
            None => {
                let db_text = db.to_string();
                if let Reply::Error(e) = self.conn.call(&[b"SELECT", db_text.as_bytes()])? {
                    return Err(self.err(format!("SELECT {db}: {e}")));
                }
                self.seen.clear();
                self.cursor = Some(b"0".to_vec());
            }
            Some(c) if c == b"done" => {
                self.db_i += 1;
                self.cursor = None;
                return Ok(());
            }
            Some(_) => {}
        }
        let cursor = self.cursor.clone().expect("set above");
        let r = self.conn.call(&[b"SCAN", &cursor, b"COUNT", SCAN_COUNT])?;
        let (next, keys) = match r {
            Reply::Array(mut v) if v.len() == 2 => {
                let keys = v.pop().expect("two items");
                let next = v.pop().expect("two items");
                match (next, keys) {
                    (Reply::Bulk(n), Reply::Array(k)) => (n, k),
                    _ => return Err(self.err("SCAN answered something that is not [cursor, keys]")),
                }
            }
            Reply::Error(e) => return Err(self.err(format!("SCAN: {e}"))),
            _ => return Err(self.err("SCAN answered something that is not [cursor, keys]")),
        };
        for k in keys {
            let Reply::Bulk(k) = k else { return Err(self.err("SCAN returned a key that is not a bulk string")) };
            if self.seen.insert(key_hash(&k)) {
                self.pending.push_back(k);
            }
        }
        self.cursor = Some(if next == b"0" { b"done".to_vec() } else { next });
        Ok(())
    }

    /// DUMPs a window of pending keys and writes their records.
    fn dump_window(&mut self) -> io::Result<()> {
        let db = self.info.databases[self.db_i];
        let n = self.window.min(self.pending.len());
        let keys: Vec<Vec<u8>> = self.pending.drain(..n).collect();
        let expiry_cmd: &[u8] = if self.pexpiretime { b"PEXPIRETIME" } else { b"PTTL" };
        for k in &keys {
            self.conn.queue(&[b"DUMP", k]);
            self.conn.queue(&[expiry_cmd, k]);
        }
        self.conn.flush()?;
        let mut replies = Vec::with_capacity(2 * n);
        for _ in 0..2 * n {
            replies.push(self.conn.read_reply()?);
        }
        let now_ms = now_ms();
        if self.pexpiretime && replies.get(1).and_then(Reply::as_error).is_some_and(is_refusal) {
            // PEXPIRETIME is 7.0+: ask PTTL instead, for this window again and the rest.
            self.pexpiretime = false;
            for k in keys.into_iter().rev() {
                self.pending.push_front(k);
            }
            return Ok(());
        }
        let mut bytes = 0;
        let mut replies = replies.into_iter();
        for key in keys {
            let (dump, ttl) = (replies.next().expect("2n replies"), replies.next().expect("2n replies"));
            let payload = match dump {
                Reply::Bulk(p) => p,
                // Deleted (or expired) since SCAN saw it.
                Reply::Nil => continue,
                Reply::Error(e) => return Err(self.err(format!("DUMP {}: {e}", crate::escape_bytes(&key)))),
                _ => return Err(self.err("DUMP answered something that is not a bulk string")),
            };
            let expiry = match ttl {
                Reply::Int(-2) => continue,
                Reply::Int(-1) => None,
                Reply::Int(v) if self.pexpiretime => Some(Expiry::Millis(v)),
                Reply::Int(v) => Some(Expiry::Millis(now_ms.saturating_add(v))),
                Reply::Error(e) => {
                    let c = String::from_utf8_lossy(expiry_cmd).into_owned();
                    return Err(self.err(format!("{c} {}: {e}", crate::escape_bytes(&key))));
                }
                _ => return Err(self.err("an expiry reply that is not an integer")),
            };
            bytes += payload.len();
            let (type_byte, raw, version) = parse_dump_payload(&payload)
                .map_err(|e| self.err(format!("DUMP payload of {}: {e}", crate::escape_bytes(&key))))?;
            let addr = self.conn.addr().to_string();
            let w = self.writer(Some(version))?;
            let header: Header = w.header();
            let encoding = Encoding::from_type_byte(type_byte, header).ok_or_else(|| {
                io::Error::other(format!(
                    "{addr}: DUMP payload of {}: value type {type_byte} is unknown to {}",
                    crate::escape_bytes(&key),
                    header.magic()
                ))
            })?;
            if w.current_db() != Some(db) {
                w.select_db(db).map_err(|e| io::Error::other(format!("{addr}: {e}")))?;
            }
            w.entry_encoded(&key, encoding, raw, EntryMeta { expiry, idle: None, freq: None })
                .map_err(|e| io::Error::other(format!("{addr}: {e}")))?;
        }
        self.window = if bytes > WINDOW_BYTES { 1 } else { (self.window * 2).min(MAX_WINDOW) };
        Ok(())
    }
}

impl Read for ScanSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut out = self.out.0.lock().map_err(|_| io::Error::other("poisoned"))?;
                if self.out_at < out.len() {
                    let n = buf.len().min(out.len() - self.out_at);
                    buf[..n].copy_from_slice(&out[self.out_at..self.out_at + n]);
                    self.out_at += n;
                    return Ok(n);
                }
                out.clear();
                self.out_at = 0;
            }
            if self.done {
                return Ok(0);
            }
            self.step()?;
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Two 64-bit SipHashes of the key: a 128-bit fingerprint for the duplicate check.
fn key_hash(k: &[u8]) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    (0u8, k).hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (1u8, k).hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

fn text_reply(conn: &mut Connection, args: &[&[u8]]) -> io::Result<String> {
    match conn.call(args)? {
        Reply::Bulk(b) | Reply::Status(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Reply::Error(e) => Err(io::Error::other(format!(
            "{}: {}: {e}",
            conn.addr(),
            args.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" ")
        ))),
        _ => Err(conn.protocol("INFO answered something that is not text")),
    }
}

/// A field of an `INFO` reply.
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// The databases `INFO keyspace` lists (`db3:keys=…`), in order.
pub fn keyspace_databases(info: &str) -> Vec<u64> {
    let mut v: Vec<u64> = info.lines().filter_map(|l| l.strip_prefix("db")?.split_once(':')?.0.parse().ok()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The RDB version a server writes, from its `INFO server` (`valkey_version` or `redis_version`); `None` for a
/// release this crate does not know.
pub fn server_rdb_version(info: &str) -> Option<u32> {
    let parse = |v: &str| {
        let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
        Some((it.next()??, it.next().flatten().unwrap_or(0)))
    };
    if let Some(v) = info_field(info, "valkey_version").and_then(parse) {
        return Some(if v >= (9, 0) { 80 } else { 11 });
    }
    let (major, minor) = info_field(info, "redis_version").and_then(parse)?;
    Some(match (major, minor) {
        (0..=2, _) => return None,
        (3, 0..=1) => 6,
        (3, _) => 7,
        (4, _) => 8,
        (5..=6, _) => 9,
        (7, 0..=1) => 10,
        (7, 2..=3) => 11,
        _ => 12,
    })
}

/// The libraries of a `FUNCTION DUMP` payload (a series of function records, then the payload footer), with the
/// payload's RDB version (`None` when there are no libraries).
fn function_codes(payload: &[u8]) -> Result<(Vec<Vec<u8>>, Option<u16>), String> {
    // An empty library set: the footer alone (version + CRC).
    if payload.len() == 10 {
        return Ok((Vec::new(), None));
    }
    let (_, _, version) = parse_dump_payload(payload).map_err(|e| format!("FUNCTION DUMP payload: {e}"))?;
    let mut body = &payload[..payload.len() - 10];
    let mut codes = Vec::new();
    while let Some((&op, rest)) = body.split_first() {
        if op != 0xF5 {
            return Err(format!("FUNCTION DUMP payload holds a record of type {op}, not a library"));
        }
        let (rest, s) =
            crate::format::string::rdb_str(rest).map_err(|_| "FUNCTION DUMP payload: a broken library".to_string())?;
        codes.push(s.decode().map_err(|e| format!("FUNCTION DUMP payload: {e}"))?.into_owned());
        body = rest;
    }
    Ok((codes, Some(version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_parsing() {
        let ks = "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb12:keys=1,expires=1,avg_ttl=5\r\n";
        assert_eq!(keyspace_databases(ks), vec![0, 12]);
        assert_eq!(keyspace_databases("# Keyspace\r\n"), Vec::<u64>::new());
        let v = |s: &str| server_rdb_version(s);
        assert_eq!(v("redis_version:6.2.14\r\n"), Some(9));
        assert_eq!(v("redis_version:7.0.15\r\n"), Some(10));
        assert_eq!(v("redis_version:7.2.4\r\n"), Some(11));
        assert_eq!(v("redis_version:8.2.1\r\n"), Some(12));
        assert_eq!(v("redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.0\r\n"), Some(80));
        assert_eq!(v("redis_version:7.2.4\r\nvalkey_version:8.1.0\r\n"), Some(11));
        assert_eq!(v("nothing"), None);
    }

    #[test]
    fn function_payloads() {
        use crate::format::crc::crc64;
        let mut p = vec![0xF5, 5];
        p.extend_from_slice(b"#!lua");
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(function_codes(&p).unwrap(), (vec![b"#!lua".to_vec()], Some(10)));
        assert_eq!(function_codes(&[0; 10]).unwrap(), (vec![], None));
        let last = p.len() - 1;
        p[last] ^= 1;
        assert!(function_codes(&p).is_err());
    }

    /// A fake server for the scan: db 0 and db 2, a key returned twice by SCAN (on two pages), a key deleted
    /// between SCAN and DUMP, one with an expiry, no function libraries, and PEXPIRETIME refused (the PTTL path).
    fn fake_server() -> u16 {
        use std::io::{BufRead, BufReader};
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let bulk = |b: &[u8]| [format!("${}\r\n", b.len()).into_bytes(), b.to_vec(), b"\r\n".to_vec()].concat();
            let mut db = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let n: usize = line[1..].trim().parse().unwrap();
                let mut args: Vec<Vec<u8>> = Vec::new();
                for _ in 0..n {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    let len: usize = line[1..].trim().parse().unwrap();
                    let mut a = vec![0u8; len + 2];
                    std::io::Read::read_exact(&mut r, &mut a).unwrap();
                    a.truncate(len);
                    args.push(a);
                }
                let cmd = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
                let reply: Vec<u8> = match (cmd.as_str(), args.get(1).map(Vec::as_slice)) {
                    ("INFO", Some(b"server")) => bulk(b"# Server\r\nredis_version:7.0.0\r\n"),
                    ("INFO", _) => bulk(b"# Keyspace\r\ndb0:keys=3,expires=1\r\ndb2:keys=1,expires=0\r\n"),
                    // No libraries: the payload footer alone.
                    ("FUNCTION", _) => bulk(&[0; 10]),
                    ("SELECT", Some(d)) => {
                        db = String::from_utf8_lossy(d).parse().unwrap();
                        b"+OK\r\n".to_vec()
                    }
                    ("SCAN", Some(c)) => {
                        let (next, keys): (&[u8], &[&[u8]]) = match (db, c) {
                            (0, b"0") => (b"7", &[b"a", b"b"]),
                            (0, _) => (b"0", &[b"b", b"gone", b"c"]),
                            _ => (b"0", &[b"z"]),
                        };
                        let mut v = b"*2\r\n".to_vec();
                        v.extend(bulk(next));
                        v.extend(format!("*{}\r\n", keys.len()).into_bytes());
                        for k in keys {
                            v.extend(bulk(k));
                        }
                        v
                    }
                    ("DUMP", Some(b"gone")) => b"$-1\r\n".to_vec(),
                    ("DUMP", Some(k)) => {
                        let value = [&[k.len() as u8][..], k].concat();
                        bulk(&crate::dump::dump_payload_raw(0, &value, 9))
                    }
                    ("PEXPIRETIME", _) => b"-ERR unknown command 'PEXPIRETIME'\r\n".to_vec(),
                    ("PTTL", Some(b"c")) => b":60000\r\n".to_vec(),
                    ("PTTL", Some(b"gone")) => b":-2\r\n".to_vec(),
                    ("PTTL", _) => b":-1\r\n".to_vec(),
                    _ => b"-ERR unexpected\r\n".to_vec(),
                };
                w.write_all(&reply).unwrap();
            }
        });
        port
    }

    #[test]
    fn a_scan_becomes_an_rdb_stream_without_duplicates() {
        use crate::read::{RecordKind, SliceReader};
        let port = fake_server();
        let t = super::super::resp::Timeouts {
            connect: std::time::Duration::from_secs(5),
            io: std::time::Duration::from_secs(5),
        };
        let conn = Connection::connect("127.0.0.1", port, t).unwrap();
        let mut src = ScanSource::start(conn).unwrap();
        assert_eq!(src.info().databases, vec![0, 2]);
        assert_eq!((src.info().functions, src.info().functions_skipped.as_deref()), (0, None));
        let before = now_ms();
        let mut bytes = Vec::new();
        src.read_to_end(&mut bytes).unwrap();
        // The server's version (7.0: RDB 10) is newer than the payloads' (9): the header has the newer.
        assert_eq!(&bytes[..9], b"REDIS0010");
        let mut r = SliceReader::new(&bytes).unwrap();
        let mut keys = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            if let RecordKind::Entry(e) = rec.kind {
                let k = e.key.decode().unwrap().into_owned();
                let v = e.value.as_string().unwrap().decode().unwrap().into_owned();
                assert_eq!(k, v);
                keys.push((e.db, String::from_utf8(k).unwrap(), e.expiry));
            }
        }
        assert!(matches!(r.checksum(), Some(crate::read::Checksum::Ok(_))));
        let names: Vec<(u64, &str)> = keys.iter().map(|(d, k, _)| (*d, k.as_str())).collect();
        assert_eq!(names, vec![(0, "a"), (0, "b"), (0, "c"), (2, "z")]);
        let Some(Expiry::Millis(at)) = keys[2].2 else { panic!("c has an expiry: {:?}", keys[2]) };
        assert!(at >= before + 60_000 && at <= now_ms() + 60_000);
        assert!(keys.iter().filter(|k| k.1 != "c").all(|k| k.2.is_none()));
    }

    #[test]
    fn key_hashes_differ() {
        assert_ne!(key_hash(b"a"), key_hash(b"b"));
        assert_eq!(key_hash(b"a"), key_hash(b"a"));
    }
}
