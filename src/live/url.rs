//! `redis://` and `rediss://` addresses: parsing, and a display form that never shows the password.
//!
//! ```text
//! redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]      plain TCP (port 6379 when omitted)
//! rediss://[[USER]:PASSWORD@]HOST[:PORT][/DB]     TLS
//! ```
//!
//! The user and password may be percent-encoded (`%40` for `@`, `%3A` for `:`); an IPv6 host is written in brackets
//! (`redis://[::1]:6379`). `redis://:secret@host:6379` is a password for the `default` user (`AUTH secret`),
//! `redis://app:secret@host:6379` an ACL user (`AUTH app secret`).
//!
//! ```
//! use rdbkit::live::RedisUrl;
//! let u = RedisUrl::parse("redis://app:s3cret@127.0.0.1:6380/2").unwrap();
//! assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6380, Some(2)));
//! assert_eq!(u.user.as_deref(), Some("app"));
//! assert_eq!(u.password.as_ref().unwrap().expose(), "s3cret");
//! // Messages and debug output never show the password.
//! assert_eq!(u.to_string(), "redis://app:***@127.0.0.1:6380/2");
//! assert!(!format!("{u:?}").contains("s3cret"));
//! ```

use std::fmt;

/// A password (or any secret): its `Debug` and `Display` forms are `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for sending it to the server (and nowhere else).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A parsed `redis://` / `rediss://` address.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// `rediss://`: the connection uses TLS.
    pub tls: bool,
    /// The ACL user, when one is given (`redis://user:password@…`).
    pub user: Option<String>,
    /// The password, when one is given.
    pub password: Option<Secret>,
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The database in the path (`/DB`), when one is given.
    pub db: Option<u64>,
}

/// The port of a URL that names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Whether `s` is written as a live-server address (`redis://…` or `rediss://…`) rather than a path.
pub fn is_live_url(s: &str) -> bool {
    strip_prefix_ci(s, "redis://").is_some() || strip_prefix_ci(s, "rediss://").is_some()
}

/// `s` with the password of a live-server address replaced by `***`; anything else unchanged. For naming a
/// command-line argument in a message before (or without) parsing it.
pub fn redact(s: &str) -> String {
    if !is_live_url(s) {
        return s.to_string();
    }
    let scheme_end = s.find("://").map_or(0, |i| i + 3);
    let rest = &s[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            let user = if userinfo.contains(':') { format!("{user}:***") } else { "***".to_string() };
            format!("{}{user}{}", &s[..scheme_end], &rest[at..])
        }
        None => s.to_string(),
    }
}

impl RedisUrl {
    /// Parses `redis://…` or `rediss://…` (see the module docs).
    ///
    /// # Errors
    /// A message naming what is wrong (never containing the password): another scheme, no host, a port that is
    /// not a number in 1-65535, a database that is not a number, a bad percent-escape.
    pub fn parse(s: &str) -> Result<RedisUrl, String> {
        let shown = redact(s);
        let bad = |what: &str| format!("{shown}: {what}");
        let (tls, rest) = if let Some(r) = strip_prefix_ci(s, "redis://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(s, "rediss://") {
            (true, r)
        } else {
            return Err(bad("not a redis:// or rediss:// address"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => {
                    let u = percent_decode(u).ok_or_else(|| bad("bad percent-escape in the user name"))?;
                    let p = percent_decode(p).ok_or_else(|| bad("bad percent-escape in the password"))?;
                    ((!u.is_empty()).then_some(u), Some(Secret(p)))
                }
                // `redis://secret@host`: what redis-cli -u and most clients take as a password.
                None => {
                    (None, Some(Secret(percent_decode(ui).ok_or_else(|| bad("bad percent-escape in the password"))?)))
                }
            },
        };
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unclosed [ in an IPv6 host"))?;
            let after = &r[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("unexpected text after the IPv6 host")),
            };
            (r[..end].to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad(&format!("port {p:?} is not a number in 1-65535"))),
            },
        };
        let db = match path.trim_end_matches('/') {
            "" => None,
            d => Some(d.parse::<u64>().map_err(|_| bad(&format!("database {d:?} is not a number")))?),
        };
        Ok(RedisUrl { tls, user, password, host, port, db })
    }

    /// `host:port` (`[addr]:port` for IPv6), for messages and for connecting.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "rediss://" } else { "redis://" })?;
        match (&self.user, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => f.write_str(":***@")?,
            (None, None) => {}
        }
        f.write_str(&self.addr())?;
        if let Some(db) = self.db {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let u = RedisUrl::parse("redis://127.0.0.1:8101").unwrap();
        assert_eq!(
            (u.tls, u.user, u.password, u.host.as_str(), u.port, u.db),
            (false, None, None, "127.0.0.1", 8101, None)
        );
        let u = RedisUrl::parse("rediss://localhost").unwrap();
        assert_eq!((u.tls, u.port), (true, DEFAULT_PORT));
        let u = RedisUrl::parse("redis://:pw@h:1/0").unwrap();
        assert_eq!((u.user, u.password.map(|p| p.0), u.db), (None, Some("pw".to_string()), Some(0)));
        let u = RedisUrl::parse("REDIS://us%40er:p%3Aw%40d@h:2/").unwrap();
        assert_eq!((u.user.as_deref(), u.password.as_ref().map(Secret::expose)), (Some("us@er"), Some("p:w@d")));
        let u = RedisUrl::parse("redis://a:b@c@h:3").unwrap();
        assert_eq!((u.password.as_ref().map(Secret::expose), u.host.as_str()), (Some("b@c"), "h"));
        let u = RedisUrl::parse("redis://[::1]:7000").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.addr()), ("::1", 7000, "[::1]:7000".to_string()));
        let u = RedisUrl::parse("redis://onlypw@h:4").unwrap();
        assert_eq!((u.user, u.password.map(|p| p.0)), (None, Some("onlypw".to_string())));
    }

    #[test]
    fn refuses_bad_forms_without_showing_the_password() {
        for bad in [
            "http://h:1",
            "redis://",
            "redis://:pw@:1",
            "redis://:pw@h:0",
            "redis://:pw@h:70000",
            "redis://:pw@h:x",
            "redis://:pw@h:1/db",
            "redis://:p%zzw@h:1",
            "redis://:pw@[::1",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(!e.contains("pw"), "{bad}: {e}");
        }
    }

    #[test]
    fn display_debug_and_redact_hide_the_password() {
        for (s, shown) in [
            ("redis://u:secret@h:1/3", "redis://u:***@h:1/3"),
            ("redis://:secret@h:1", "redis://:***@h:1"),
            ("rediss://h:1", "rediss://h:1"),
        ] {
            let u = RedisUrl::parse(s).unwrap();
            assert_eq!(u.to_string(), shown);
            assert_eq!(redact(s), shown);
            assert!(!format!("{u:?}").contains("secret"));
        }
        assert_eq!(redact("redis://secret@h:1"), "redis://***@h:1");
        assert_eq!(redact("dump.rdb"), "dump.rdb");
        assert!(is_live_url("redis://x") && is_live_url("REDISS://x") && !is_live_url("redis.rdb"));
    }
}
