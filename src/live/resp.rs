//! A small blocking RESP2 client: one TCP connection with connect, read and write time-outs, commands queued and
//! sent together (pipelining), replies read one at a time in order.
//!
//! It is the one client of the crate's live endpoints: the snapshot sources ([`super::replica`], [`super::scan`])
//! use it, and a loader can drive it the same way — queue a window of commands with [`Connection::queue`], send
//! them with [`Connection::flush`], then read exactly one [`Reply`] per command with [`Connection::read_reply`]. An
//! error *reply* (`-ERR …`) is a [`Reply::Error`] value, not an `Err`: the connection stays usable. `Err` is kept
//! for the link itself (closed, timed out, a protocol violation), and its message names the server's `host:port`.
//!
//! Bounded: a reply line longer than [`MAX_LINE`] is refused; a bulk string is read into memory as its bytes arrive
//! (a length claim alone allocates at most [`CLAIM_STEP`] bytes); arrays nest at most [`MAX_DEPTH`] deep.
//!
//! ```no_run
//! use rdbkit::live::resp::{Connection, Reply, Timeouts};
//! # fn main() -> std::io::Result<()> {
//! let mut c = Connection::connect("127.0.0.1", 6379, Timeouts::default())?;
//! for i in 0..3 {
//!     c.queue(&[b"SET", format!("k{i}").as_bytes(), b"v"]);
//! }
//! c.flush()?;
//! for _ in 0..3 {
//!     assert_eq!(c.read_reply()?, Reply::Status(b"OK".to_vec()));
//! }
//! # Ok(()) }
//! ```

use super::url::Secret;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest status, error or integer line accepted (bytes, CRLF included).
pub const MAX_LINE: usize = 64 * 1024;
/// Deepest nesting of arrays accepted.
pub const MAX_DEPTH: usize = 16;
/// Memory reserved ahead of a bulk string's bytes or an array's elements, at most, before they arrive.
pub const CLAIM_STEP: usize = 1 << 20;

/// Connect and I/O time-outs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP connection (per address the name resolves to).
    pub connect: Duration,
    /// Each read and each write: no byte for this long fails the connection.
    pub io: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect, 60 s per read or write.
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(10), io: Duration::from_secs(60) }
    }
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and other status lines (without the `+`).
    Status(Vec<u8>),
    /// `-ERR …`: the server's error line (without the `-`).
    Error(String),
    /// `:N`.
    Int(i64),
    /// `$N` followed by N bytes.
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`.
    Nil,
    /// `*N` followed by N replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// The error line, when this is an error reply.
    pub fn as_error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The bytes of a bulk or status reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) | Reply::Status(b) => Some(b),
            _ => None,
        }
    }
}

/// Whether an error reply means "this command is not available to you": unknown (or renamed) command, or an ACL
/// refusal.
pub fn is_refusal(err: &str) -> bool {
    let e = err.to_ascii_lowercase();
    e.starts_with("noperm")
        || e.contains("unknown command")
        || e.starts_with("err unknown")
        || e.contains("no permissions")
}

/// Opens a TCP connection to `host:port` with the time-outs set; returns it and `host:port` for messages.
fn connect_tcp(host: &str, port: u16, timeouts: Timeouts) -> io::Result<(TcpStream, String)> {
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("{addr}: cannot resolve the host: {e}")))?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeouts.connect) {
            Ok(s) => {
                s.set_read_timeout(Some(timeouts.io))?;
                s.set_write_timeout(Some(timeouts.io))?;
                s.set_nodelay(true)?;
                return Ok((s, addr));
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
    let timed_out = matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock);
    let what = if timed_out {
        format!("no answer within {} s (connect time-out)", timeouts.connect.as_secs_f64())
    } else {
        e.to_string()
    };
    let kind = if timed_out { io::ErrorKind::TimedOut } else { e.kind() };
    Err(io::Error::new(kind, format!("{addr}: cannot connect: {what}")))
}

/// The byte stream under a connection: TCP, or TLS over TCP.
enum Transport {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<super::tls::TlsStream>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => &s.sock,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// A connection to one server.
pub struct Connection {
    addr: String,
    reader: BufReader<Transport>,
    out: Vec<u8>,
    io_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.addr).field("queued", &self.out.len()).finish()
    }
}

impl Connection {
    /// Connects to `host:port` (every address the name resolves to is tried in turn, each for at most
    /// `timeouts.connect`).
    ///
    /// # Errors
    /// The name does not resolve, or no address accepts the connection in time; the message names `host:port`.
    pub fn connect(host: &str, port: u16, timeouts: Timeouts) -> io::Result<Connection> {
        let (tcp, addr) = connect_tcp(host, port, timeouts)?;
        Ok(Connection::over(Transport::Plain(tcp), addr, timeouts))
    }

    /// Connects with TLS (`rediss://`), completing the handshake (see [`super::tls`]).
    ///
    /// # Errors
    /// As [`Connection::connect`], and a failed handshake (kind `PermissionDenied`, the reason named).
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        host: &str,
        port: u16,
        timeouts: Timeouts,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> io::Result<Connection> {
        let (tcp, addr) = connect_tcp(host, port, timeouts)?;
        let tls = super::tls::connect(tcp, host, &addr, config)?;
        Ok(Connection::over(Transport::Tls(Box::new(tls)), addr, timeouts))
    }

    fn over(t: Transport, addr: String, timeouts: Timeouts) -> Connection {
        Connection { addr, reader: BufReader::with_capacity(64 * 1024, t), out: Vec::new(), io_timeout: timeouts.io }
    }

    /// `host:port` of the server, for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Appends one command to the send buffer (nothing is sent until [`Connection::flush`]).
    pub fn queue(&mut self, args: &[&[u8]]) {
        self.out.push(b'*');
        self.out.extend_from_slice(args.len().to_string().as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for a in args {
            self.out.push(b'$');
            self.out.extend_from_slice(a.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Bytes queued and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.out.len()
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        let out = std::mem::take(&mut self.out);
        let r = self.reader.get_mut().write_all(&out).and_then(|()| self.reader.get_mut().flush());
        self.out = out;
        self.out.clear();
        r.map_err(|e| self.link_error(e, "sending"))
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.queue(args);
        self.flush()?;
        self.read_reply()
    }

    /// `AUTH [user] password`.
    ///
    /// # Errors
    /// The server refuses (kind `PermissionDenied`, with the server's reason — which never repeats the password), or
    /// the link fails.
    pub fn auth(&mut self, user: Option<&str>, password: &Secret) -> io::Result<()> {
        let r = match user {
            Some(u) => self.call(&[b"AUTH", u.as_bytes(), password.expose().as_bytes()])?,
            None => self.call(&[b"AUTH", password.expose().as_bytes()])?,
        };
        match r {
            Reply::Error(e) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: authentication failed{}: {e}",
                    self.addr,
                    user.map(|u| format!(" for user {u:?}")).unwrap_or_default()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Reads the next reply.
    ///
    /// # Errors
    /// The connection closed or timed out, or the bytes are not RESP2 (kind `Other`; the message names the server).
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        self.reply_at(0)
    }

    fn reply_at(&mut self, depth: usize) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (t, rest) = line.split_first().ok_or_else(|| self.protocol("an empty reply line"))?;
        let text = || String::from_utf8_lossy(rest).into_owned();
        match t {
            b'+' => Ok(Reply::Status(rest.to_vec())),
            b'-' => Ok(Reply::Error(text())),
            b':' => self.number(rest).map(Reply::Int),
            b'$' => {
                let n = self.number(rest)?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                let mut v = Vec::new();
                self.read_exact_growing(n as u64, &mut v)?;
                let mut crlf = [0u8; 2];
                self.fill_exact(&mut crlf)?;
                if crlf != *b"\r\n" {
                    return Err(self.protocol("a bulk string not followed by CRLF"));
                }
                Ok(Reply::Bulk(v))
            }
            b'*' => {
                let n = self.number(rest)?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                if depth >= MAX_DEPTH {
                    return Err(self.protocol("arrays nested too deep"));
                }
                let mut v = Vec::with_capacity((n as usize).min(CLAIM_STEP / std::mem::size_of::<Reply>()));
                for _ in 0..n {
                    v.push(self.reply_at(depth + 1)?);
                }
                Ok(Reply::Array(v))
            }
            _ => Err(self.protocol(&format!("reply type byte {:?}", char::from(*t)))),
        }
    }

    fn number(&self, b: &[u8]) -> io::Result<i64> {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.protocol(&format!("{:?} where a number was expected", String::from_utf8_lossy(b))))
    }

    /// Reads one line (without its CRLF), at most [`MAX_LINE`] bytes.
    pub fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.link_error(e, "reading a reply")),
            };
            if buf.is_empty() {
                return Err(self.closed("reading a reply"));
            }
            let (take, done) = match buf.iter().position(|&c| c == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(&buf[..take]);
            self.reader.consume(take);
            if line.len() > MAX_LINE {
                return Err(self.protocol(&format!("a reply line longer than {MAX_LINE} bytes")));
            }
            if done {
                if line.len() < 2 || line[line.len() - 2] != b'\r' {
                    return Err(self.protocol("a reply line not ended by CRLF"));
                }
                line.truncate(line.len() - 2);
                return Ok(line);
            }
        }
    }

    /// Reads exactly `n` bytes, appending them to `v`, growing it only as they arrive.
    fn read_exact_growing(&mut self, n: u64, v: &mut Vec<u8>) -> io::Result<()> {
        let mut left = n;
        while left > 0 {
            let step = left.min(CLAIM_STEP as u64) as usize;
            let start = v.len();
            v.resize(start + step, 0);
            self.fill_exact(&mut v[start..])?;
            left -= step as u64;
        }
        Ok(())
    }

    fn fill_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => return Err(self.closed("reading a reply")),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.link_error(e, "reading a reply")),
            }
        }
        Ok(())
    }

    /// Reads raw bytes (what follows a reply, e.g. a replication payload): like `Read::read`, with errors named as
    /// the other reads name them and a closed connection returned as `Ok(0)`.
    pub fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.reader.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.link_error(e, "reading the snapshot")),
            }
        }
    }

    /// Skips bare `\n` bytes (the keep-alives a master sends while it prepares a snapshot); returns whether the
    /// next byte is something else (false: the connection closed).
    pub fn skip_newlines(&mut self) -> io::Result<bool> {
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.link_error(e, "waiting for the snapshot")),
            };
            if buf.is_empty() {
                return Ok(false);
            }
            let n = buf.iter().take_while(|&&c| c == b'\n').count();
            let all = n == buf.len();
            self.reader.consume(n);
            if !all {
                return Ok(true);
            }
        }
    }

    /// Closes the connection (both directions) now.
    pub fn close(&mut self) {
        let _ = self.reader.get_ref().tcp().shutdown(Shutdown::Both);
    }

    /// An error for the link: time-outs say how long, a reset says so; the message names the server.
    pub fn link_error(&self, e: io::Error, doing: &str) -> io::Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{}: no data for {} s while {doing} (read time-out)", self.addr, self.io_timeout.as_secs_f64()),
            ),
            // A link error must not look like bad file contents to the caller.
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
                io::Error::other(format!("{}: {doing}: {e}", self.addr))
            }
            k => io::Error::new(k, format!("{}: {doing}: {e}", self.addr)),
        }
    }

    /// The error for a connection the server closed.
    pub fn closed(&self, doing: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("{}: the server closed the connection while {doing}", self.addr),
        )
    }

    /// The error for bytes that break the protocol.
    pub fn protocol(&self, what: &str) -> io::Error {
        io::Error::other(format!("{}: protocol error: {what}", self.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server on loopback that reads one chunk and answers with `answer`, then closes.
    fn fake(answer: &'static [u8]) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b);
            let _ = s.write_all(answer);
        });
        port
    }

    fn quick() -> Timeouts {
        Timeouts { connect: Duration::from_secs(2), io: Duration::from_secs(2) }
    }

    #[test]
    fn reads_every_reply_type() {
        let port = fake(b"+OK\r\n-ERR bad\r\n:-42\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n$0\r\n\r\n*1\r\n:1\r\n*-1\r\n");
        let mut c = Connection::connect("127.0.0.1", port, quick()).unwrap();
        c.queue(&[b"PING"]);
        c.flush().unwrap();
        assert_eq!(c.read_reply().unwrap(), Reply::Status(b"OK".to_vec()));
        assert_eq!(c.read_reply().unwrap(), Reply::Error("ERR bad".into()));
        assert_eq!(c.read_reply().unwrap(), Reply::Int(-42));
        assert_eq!(c.read_reply().unwrap(), Reply::Bulk(b"a\r\n".to_vec()));
        assert_eq!(c.read_reply().unwrap(), Reply::Nil);
        assert_eq!(c.read_reply().unwrap(), Reply::Array(vec![Reply::Bulk(vec![]), Reply::Array(vec![Reply::Int(1)])]));
        assert_eq!(c.read_reply().unwrap(), Reply::Nil);
        let e = c.read_reply().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[test]
    fn a_huge_length_claim_allocates_nothing_up_front_and_fails_when_the_bytes_stop() {
        let port = fake(b"$9000000000000\r\nabc");
        let mut c = Connection::connect("127.0.0.1", port, quick()).unwrap();
        c.call(&[b"GET", b"x"]).unwrap_err();
        let port = fake(b"*9000000000000\r\n:1\r\n");
        let mut c = Connection::connect("127.0.0.1", port, quick()).unwrap();
        assert_eq!(c.call(&[b"GET", b"x"]).unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
    }

    #[test]
    fn protocol_violations_are_errors() {
        for bad in [&b"?what\r\n"[..], b"+no crlf\n", b":12x\r\n", b"$2\r\nabXY", b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"] {
            let port = fake(bad);
            let mut c = Connection::connect("127.0.0.1", port, quick()).unwrap();
            let e = c.call(&[b"PING"]).unwrap_err();
            assert!(e.to_string().contains("protocol error"), "{:?}: {e}", String::from_utf8_lossy(bad));
        }
        let port = fake(&[b'+'; MAX_LINE + 10]);
        let mut c = Connection::connect("127.0.0.1", port, quick()).unwrap();
        assert!(c.call(&[b"PING"]).unwrap_err().to_string().contains("longer than"));
    }

    #[test]
    fn a_silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t0 = std::time::Instant::now();
        let mut c = Connection::connect(
            "127.0.0.1",
            port,
            Timeouts { connect: Duration::from_secs(2), io: Duration::from_millis(300) },
        )
        .unwrap();
        let e = c.call(&[b"PING"]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("read time-out"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        drop(l);
    }

    #[test]
    fn refusals_are_recognised() {
        assert!(is_refusal("ERR unknown command 'SYNC', with args beginning with: "));
        assert!(is_refusal("NOPERM User snap has no permissions to run the 'psync' command"));
        assert!(!is_refusal("LOADING Redis is loading the dataset in memory"));
    }
}
