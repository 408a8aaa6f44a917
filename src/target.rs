//! Target servers: which RDB files each Redis or Valkey release writes and loads.
//!
//! A server refuses an RDB newer than its own; rdbkit uses this table to pick the version to write for a target
//! and to tell, before an import, whether a file will load.

use crate::error::{Error, ErrorKind, Result};
use crate::read::{Flavor, Header};

/// A server release that rdbkit can write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Name as accepted on the command line, e.g. `redis-7.0`.
    pub name: &'static str,
    /// The header of the files this server writes (and the newest it loads).
    pub header: Header,
    /// Module types built into the server (values of other modules need the module loaded).
    pub builtin_modules: &'static [&'static str],
}

const fn redis(name: &'static str, version: u32) -> Target {
    Target { name, header: Header { flavor: Flavor::Redis, version }, builtin_modules: &[] }
}

/// Redis 8 ships vector sets as a built-in module type (`vectorset`).
const fn redis8(name: &'static str) -> Target {
    Target { name, header: Header { flavor: Flavor::Redis, version: 12 }, builtin_modules: &["vectorset"] }
}

/// Every known target, oldest first.
pub const TARGETS: &[Target] = &[
    redis("redis-2.4", 2),
    redis("redis-2.6", 6),
    redis("redis-2.8", 6),
    redis("redis-3.0", 6),
    redis("redis-3.2", 7),
    redis("redis-4.0", 8),
    redis("redis-5.0", 9),
    redis("redis-6.0", 9),
    redis("redis-6.2", 9),
    redis("redis-7.0", 10),
    redis("redis-7.2", 11),
    redis("redis-7.4", 12),
    redis8("redis-8.0"),
    redis8("redis-8.2"),
    redis("valkey-7.2", 11),
    redis("valkey-8.0", 11),
    redis("valkey-8.1", 11),
    Target { name: "valkey-9.0", header: Header { flavor: Flavor::Valkey, version: 80 }, builtin_modules: &[] },
    Target { name: "valkey-9.1", header: Header { flavor: Flavor::Valkey, version: 80 }, builtin_modules: &[] },
];

/// A server name ([`Target::from_name`]).
impl std::str::FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Target> {
        Target::from_name(s)
    }
}

/// The server name, e.g. `redis-7.0`.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Target {
    /// The newest known target of `family` (`redis` or `valkey`) at or below the server version `version`
    /// (`7.0.15`, `9.1.0`, as `INFO server` reports it): what a running server of that version loads.
    pub fn for_server(family: &str, version: &str) -> Option<Target> {
        let num = |s: &str| -> Option<(u32, u32)> {
            let mut it = s.split('.').map(|p| p.parse::<u32>().ok());
            Some((it.next()??, it.next().flatten().unwrap_or(0)))
        };
        let want = num(version)?;
        let prefix = format!("{}-", family.to_ascii_lowercase());
        TARGETS
            .iter()
            .filter_map(|t| Some((num(t.name.strip_prefix(&prefix)?)?, *t)))
            .filter(|(v, _)| *v <= want)
            .max_by_key(|(v, _)| *v)
            .map(|(_, t)| t)
    }

    /// Looks a target up by name (`redis-7.0`, `valkey-9.0`, …; `redis-7` and `valkey-9` name the first of
    /// their series).
    pub fn from_name(name: &str) -> Result<Target> {
        let lower = name.to_ascii_lowercase();
        TARGETS
            .iter()
            .find(|t| t.name == lower)
            .or_else(|| TARGETS.iter().find(|t| t.name.starts_with(&format!("{lower}."))))
            .copied()
            .ok_or_else(|| {
                let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                Error::without_offset(ErrorKind::Invalid(format!(
                    "unknown target server {name:?}; known: {}",
                    names.join(", ")
                )))
            })
    }

    /// Whether this server loads a file with `header` (by version; the file's contents may still hold
    /// something the server lacks, such as a module).
    pub fn loads(&self, header: Header) -> bool {
        match (self.header.flavor, header.flavor) {
            (Flavor::Redis, Flavor::Redis) => header.version <= self.header.version,
            (Flavor::Redis, Flavor::Valkey) => false,
            // Valkey 9 loads REDIS0001–REDIS0011 and its own VALKEY versions up to its own.
            (Flavor::Valkey, Flavor::Redis) => header.version <= 11,
            (Flavor::Valkey, Flavor::Valkey) => header.version <= self.header.version,
        }
    }
}

/// The header to write for an explicit `--rdb-version N`: `REDIS` magic for 1–12, `VALKEY` for 80.
pub fn header_for_version(version: u32) -> Result<Header> {
    let h = if version >= 80 { Header::new(Flavor::Valkey, version) } else { Header::new(Flavor::Redis, version) };
    Header::parse(&h.magic_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_loading_rules() {
        let r70 = Target::from_name("redis-7.0").unwrap();
        assert_eq!(r70.header, Header::new(Flavor::Redis, 10));
        assert!(r70.loads(Header::new(Flavor::Redis, 9)));
        assert!(!r70.loads(Header::new(Flavor::Redis, 11)));
        assert!(!r70.loads(Header::new(Flavor::Valkey, 80)));
        let v9 = Target::from_name("VALKEY-9.0").unwrap();
        assert!(v9.loads(Header::new(Flavor::Redis, 11)));
        assert!(!v9.loads(Header::new(Flavor::Redis, 12)));
        assert!(v9.loads(Header::new(Flavor::Valkey, 80)));
        assert_eq!(Target::from_name("redis-8").unwrap().name, "redis-8.0");
        assert!(Target::from_name("redis-99").is_err());
        assert_eq!(header_for_version(80).unwrap(), Header::new(Flavor::Valkey, 80));
        assert!(header_for_version(13).is_err());
    }
}
