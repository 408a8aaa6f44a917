//! A snapshot through replication: the handshake a replica makes (`REPLCONF capa eof`, `REPLCONF rdb-only 1`,
//! `PSYNC ? -1` or `SYNC`), then the payload as an [`io::Read`] that yields exactly the RDB bytes.
//!
//! The master answers with one of two framings, after any number of bare `\n` keep-alives (sent while it forks):
//! - `$<len>\r\n` then exactly `len` bytes (a snapshot written to disk first);
//! - `$EOF:<40-byte mark>\r\n` then the RDB, then the same 40 bytes (diskless replication, the default since
//!   Redis 7.0). The mark is not data: [`EofScanner`] holds back the last 40 bytes seen, so the mark is found
//!   wherever the reads split it.
//!
//! `rdb-only` (Redis ≥ 7.0, Valkey) tells the master to send nothing after the snapshot and to keep no backlog for
//! this link; an older server refuses the option, which is harmless: the stream stops being read at the end of the
//! payload and the connection is closed there, so this client never lingers as a replica.

use super::resp::{Connection, Reply, is_refusal};
use std::io::{self, Read};

/// Length of the diskless end-of-snapshot mark.
pub const MARK_LEN: usize = 40;

/// How the master frames the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `$<len>`: this many bytes.
    Length(u64),
    /// `$EOF:<mark>`: until the mark.
    Eof([u8; MARK_LEN]),
}

/// What the handshake gave.
#[derive(Debug)]
pub enum Handshake {
    /// The master is sending the snapshot.
    Streaming(Box<ReplicaStream>),
    /// The server refused replication (the connection stays usable for other commands); the server's reason.
    Refused(Connection, String),
}

/// Notes on how the snapshot was obtained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// The server accepted `REPLCONF rdb-only 1`.
    pub rdb_only: bool,
    /// The command that started it (`PSYNC` or `SYNC`).
    pub command: &'static str,
}

/// Makes the replica handshake on `conn` (already authenticated).
///
/// # Errors
/// The link fails, or the server answers something that is not a snapshot header.
pub fn handshake(mut conn: Connection) -> io::Result<Handshake> {
    if let Reply::Error(e) = conn.call(&[b"REPLCONF", b"capa", b"eof"])? {
        return Ok(Handshake::Refused(conn, format!("REPLCONF capa eof: {e}")));
    }
    let rdb_only = !matches!(conn.call(&[b"REPLCONF", b"rdb-only", b"1"])?, Reply::Error(_));
    // Valkey writes, for a replica that does not say its version, the RDB an old replica loads (REDIS0011), and
    // fails on keys that need a newer one: tell it ours is the server's own version, so it sends its native file.
    if let Reply::Bulk(info) = conn.call(&[b"INFO", b"server"])?
        && let Some(v) = super::scan::info_field(&String::from_utf8_lossy(&info), "valkey_version")
    {
        let v = v.to_string();
        conn.call(&[b"REPLCONF", b"version", v.as_bytes()])?;
    }
    let mut info = ReplicaInfo { rdb_only, command: "PSYNC" };
    conn.queue(&[b"PSYNC", b"?", b"-1"]);
    conn.flush()?;
    let mut line = first_line(&mut conn)?;
    if let Some(e) = line.strip_prefix(b"-") {
        let e = String::from_utf8_lossy(e).into_owned();
        if !is_refusal(&e) {
            return Ok(Handshake::Refused(conn, format!("PSYNC: {e}")));
        }
        // PSYNC renamed or forbidden: the old SYNC may still be there.
        info.command = "SYNC";
        conn.queue(&[b"SYNC"]);
        conn.flush()?;
        line = first_line(&mut conn)?;
        if let Some(e2) = line.strip_prefix(b"-") {
            let e2 = String::from_utf8_lossy(e2).into_owned();
            return Ok(Handshake::Refused(conn, format!("PSYNC: {e}; SYNC: {e2}")));
        }
    }
    if line.starts_with(b"+FULLRESYNC") {
        line = first_line(&mut conn)?;
    } else if line.starts_with(b"+") {
        return Err(conn.protocol(&format!("PSYNC answered {:?}, not +FULLRESYNC", String::from_utf8_lossy(&line))));
    }
    let framing = parse_framing(&line).ok_or_else(|| {
        conn.protocol(&format!(
            "{:?} where a snapshot header ($<len> or $EOF:<mark>) was expected",
            String::from_utf8_lossy(&line)
        ))
    })?;
    Ok(Handshake::Streaming(Box::new(ReplicaStream::new(conn, framing, info))))
}

/// The next line after any `\n` keep-alives.
fn first_line(conn: &mut Connection) -> io::Result<Vec<u8>> {
    if !conn.skip_newlines()? {
        return Err(conn.closed("waiting for the snapshot"));
    }
    conn.read_line()
}

/// Parses `$<len>` or `$EOF:<40 bytes>` (the line without its CRLF).
pub fn parse_framing(line: &[u8]) -> Option<Framing> {
    let rest = line.strip_prefix(b"$")?;
    if let Some(mark) = rest.strip_prefix(b"EOF:") {
        return Some(Framing::Eof(mark.try_into().ok()?));
    }
    let n: u64 = std::str::from_utf8(rest).ok()?.parse().ok()?;
    Some(Framing::Length(n))
}

/// Finds the diskless end mark in a stream read in pieces: what is fed comes out again, except the last
/// [`MARK_LEN`] bytes, which are held back until more bytes show they were data — or until they are the mark.
///
/// As the servers' own replicas do, the mark is looked for at the end of what has been fed so far (the master
/// sends nothing after it until the replica acknowledges), so only the last 40 bytes ever matter.
#[derive(Debug, Clone)]
pub struct EofScanner {
    mark: [u8; MARK_LEN],
    held: [u8; MARK_LEN],
    held_len: usize,
    found: bool,
}

impl EofScanner {
    /// A scanner for `mark`.
    pub fn new(mark: [u8; MARK_LEN]) -> EofScanner {
        EofScanner { mark, held: [0; MARK_LEN], held_len: 0, found: false }
    }

    /// Whether the mark has been seen (the stream is complete).
    pub fn found(&self) -> bool {
        self.found
    }

    /// Bytes held back (at most [`MARK_LEN`]).
    pub fn held(&self) -> usize {
        self.held_len
    }

    /// Feeds the next bytes read; appends to `out` those now known to be data. Returns true when what has been fed
    /// ends with the mark (the payload is complete; the mark is not in `out`). Nothing may be fed after that.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        debug_assert!(!self.found, "fed after the mark");
        let total = self.held_len + chunk.len();
        let keep = total.min(MARK_LEN);
        // The last `keep` bytes of held ++ chunk become the new held bytes; the others go out.
        let mut window = [0u8; MARK_LEN];
        if chunk.len() >= keep {
            window[..keep].copy_from_slice(&chunk[chunk.len() - keep..]);
            out.extend_from_slice(&self.held[..self.held_len]);
            out.extend_from_slice(&chunk[..chunk.len() - keep]);
        } else {
            let from_held = keep - chunk.len();
            out.extend_from_slice(&self.held[..self.held_len - from_held]);
            window[..from_held].copy_from_slice(&self.held[self.held_len - from_held..self.held_len]);
            window[from_held..keep].copy_from_slice(chunk);
        }
        self.held = window;
        self.held_len = keep;
        self.found = keep == MARK_LEN && self.held == self.mark;
        self.found
    }
}

/// The snapshot bytes of a replication link, as an [`io::Read`]: exactly the RDB, then end of stream (the
/// connection is closed as soon as the payload is complete). A link that closes or times out before that is an
/// error (kinds `ConnectionAborted` / `TimedOut`, the message naming the server and how many bytes came), never an
/// early end of stream.
#[derive(Debug)]
pub struct ReplicaStream {
    conn: Connection,
    framing: Framing,
    info: ReplicaInfo,
    /// `Length`: bytes still to come.
    left: u64,
    scanner: Option<EofScanner>,
    /// Raw bytes read from the socket (EOF framing).
    raw: Vec<u8>,
    /// Data ready for the caller (EOF framing), from `ready_at`.
    ready: Vec<u8>,
    ready_at: usize,
    received: u64,
    done: bool,
}

impl ReplicaStream {
    fn new(conn: Connection, framing: Framing, info: ReplicaInfo) -> ReplicaStream {
        let (left, scanner) = match framing {
            Framing::Length(n) => (n, None),
            Framing::Eof(m) => (0, Some(EofScanner::new(m))),
        };
        let done = matches!(framing, Framing::Length(0));
        ReplicaStream {
            conn,
            framing,
            info,
            left,
            scanner,
            raw: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            received: 0,
            done,
        }
    }

    /// The framing the master chose.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// How the replication was started.
    pub fn info(&self) -> &ReplicaInfo {
        &self.info
    }

    fn finish(&mut self) {
        self.done = true;
        self.conn.close();
    }

    fn dropped(&self) -> io::Error {
        let of = match self.framing {
            Framing::Length(n) => format!(" of {n}"),
            Framing::Eof(_) => " (no end-of-snapshot mark yet)".to_string(),
        };
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!(
                "{}: the server closed the connection mid-snapshot, after {}{of} bytes",
                self.conn.addr(),
                self.received
            ),
        )
    }
}

impl Read for ReplicaStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.ready_at < self.ready.len() {
                let n = buf.len().min(self.ready.len() - self.ready_at);
                buf[..n].copy_from_slice(&self.ready[self.ready_at..self.ready_at + n]);
                self.ready_at += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.scanner.as_mut() {
                None => {
                    let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    let n = self.conn.read_raw(&mut buf[..want])?;
                    if n == 0 {
                        return Err(self.dropped());
                    }
                    self.left -= n as u64;
                    self.received += n as u64;
                    if self.left == 0 {
                        self.finish();
                    }
                    return Ok(n);
                }
                Some(_) => {
                    self.raw.resize(64 * 1024, 0);
                    let n = self.conn.read_raw(&mut self.raw)?;
                    if n == 0 {
                        return Err(self.dropped());
                    }
                    self.received += n as u64;
                    self.ready.clear();
                    self.ready_at = 0;
                    let scanner = self.scanner.as_mut().expect("EOF framing has a scanner");
                    if scanner.feed(&self.raw[..n], &mut self.ready) {
                        self.finish();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> [u8; MARK_LEN] {
        let mut m = [0u8; MARK_LEN];
        for (i, b) in m.iter_mut().enumerate() {
            *b = b'a' + (i as u8 % 26);
        }
        m
    }

    /// Feeds `data ++ mark` in pieces cut at `cuts`; returns what came out and whether the mark was found (at the
    /// last piece and not before).
    fn run(data: &[u8], cuts: &[usize]) -> (Vec<u8>, bool) {
        let mut all = data.to_vec();
        all.extend_from_slice(&mark());
        let mut s = EofScanner::new(mark());
        let mut out = Vec::new();
        let mut at = 0;
        let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c > 0 && c < all.len()).collect();
        bounds.push(all.len());
        for &end in &bounds {
            assert!(!s.found(), "mark found before the end (cut {cuts:?})");
            s.feed(&all[at..end], &mut out);
            at = end;
        }
        (out, s.found())
    }

    #[test]
    fn the_mark_is_found_at_every_split_position() {
        for data_len in [0usize, 1, 39, 40, 41, 100] {
            let data: Vec<u8> = (0..data_len).map(|i| (i * 7 + 3) as u8).collect();
            let total = data_len + MARK_LEN;
            // One cut anywhere.
            for c in 0..=total {
                let (out, found) = run(&data, &[c]);
                assert!(found, "len {data_len}, cut {c}");
                assert_eq!(out, data, "len {data_len}, cut {c}");
            }
            // Two cuts anywhere around the mark.
            for a in data_len.saturating_sub(3)..=total {
                for b in a..=total {
                    let (out, found) = run(&data, &[a, b]);
                    assert!(found && out == data, "len {data_len}, cuts {a} {b}");
                }
            }
            // One byte at a time.
            let cuts: Vec<usize> = (1..total).collect();
            let (out, found) = run(&data, &cuts);
            assert!(found && out == data, "len {data_len}, byte by byte");
        }
    }

    #[test]
    fn a_near_miss_is_data() {
        let mut almost = mark();
        almost[0] ^= 1;
        let mut s = EofScanner::new(mark());
        let mut out = Vec::new();
        assert!(!s.feed(&almost, &mut out));
        assert!(out.is_empty() && s.held() == MARK_LEN);
        assert!(!s.feed(b"x", &mut out));
        assert_eq!(out, &almost[..1]);
        // The mark's own bytes, split by a byte, are not the mark.
        let mut s = EofScanner::new(mark());
        let mut out = Vec::new();
        let m = mark();
        assert!(!s.feed(&m[..20], &mut out));
        assert!(!s.feed(b"!", &mut out));
        assert!(!s.feed(&m[20..], &mut out));
        assert!(s.feed(&m, &mut out));
        let mut want = m[..20].to_vec();
        want.push(b'!');
        want.extend_from_slice(&m[20..]);
        assert_eq!(out, want);
    }

    #[test]
    fn framings() {
        assert_eq!(parse_framing(b"$123"), Some(Framing::Length(123)));
        assert_eq!(parse_framing(&[b"$EOF:".as_slice(), &mark()].concat()), Some(Framing::Eof(mark())));
        for bad in [&b"$"[..], b"$-1", b"$12a", b"$EOF:short", b"+OK", b""] {
            assert_eq!(parse_framing(bad), None, "{bad:?}");
        }
    }
}
