//! Memory reports: what every key of a file costs in a server, and where the memory goes.
//!
//! [`memory`] holds the per-key model (which server, which allocations). This module turns a stream of keys into a
//! report in bounded memory: [`Report::add`] takes one [`Row`] at a time and keeps only totals per database, type
//! and encoding and the `N` largest keys (a min-heap of `N` entries), so a file of any number of keys is reported
//! with memory proportional to `N` plus the largest key name among them. Per-key rows are written as they come
//! with [`write_csv_row`], in the columns of rdbtools' memory report ([`CSV_HEADER`]).

pub mod memory;

use crate::read::LogicalType;
use memory::{Estimate, Server};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{self, Write};

/// The header line of rdbtools' `rdb -c memory` CSV (`PrintAllKeys`), byte for byte, newline included.
pub const CSV_HEADER: &str = "database,type,key,size_in_bytes,encoding,num_elements,len_largest_element,expiry\n";

/// One key of the report.
#[derive(Debug, Clone)]
pub struct Row<'k> {
    /// Database number.
    pub db: u64,
    /// The value's type.
    pub logical_type: LogicalType,
    /// The key's bytes.
    pub key: &'k [u8],
    /// The memory estimate.
    pub estimate: Estimate,
    /// Absolute expiry in milliseconds since the epoch, if any.
    pub expiry_ms: Option<i64>,
}

/// A count of keys and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Keys.
    pub keys: u64,
    /// Estimated bytes.
    pub bytes: u64,
    /// Elements.
    pub elements: u64,
}

impl Totals {
    fn add(&mut self, e: &Estimate) {
        self.keys += 1;
        self.bytes = self.bytes.saturating_add(e.bytes);
        self.elements = self.elements.saturating_add(e.num_elements);
    }
}

/// One of the largest keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopKey {
    /// Estimated bytes.
    pub bytes: u64,
    /// Database.
    pub db: u64,
    /// The key.
    pub key: Vec<u8>,
    /// Type name.
    pub type_name: &'static str,
    /// Server encoding.
    pub encoding: &'static str,
    /// Elements.
    pub num_elements: u64,
}

/// The expiry classes of [`Report::ttl`], in order: no expiry, already expired (at the report's `now`), and
/// expiring within an hour, a day, a week, 30 days, or later.
pub const TTL_CLASSES: [&str; 7] = ["none", "expired", "<1h", "<1d", "<7d", "<30d", ">=30d"];

/// Most distinct prefixes a report keeps per level ([`Report::prefixes`]); keys under prefixes beyond that are
/// counted as `(other)`, so memory stays bounded whatever the number of keys.
pub const PREFIX_CAP: usize = 50_000;

/// A key prefix and what is under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    /// The prefix, separators included (`user:`, `user:42:`); `(other)` for what the cap left out.
    pub prefix: Vec<u8>,
    /// Its level (1 = up to the first separator).
    pub level: usize,
    /// Keys and bytes under it.
    pub totals: Totals,
}

/// Aggregates of a memory report, built one key at a time.
#[derive(Debug, Clone)]
pub struct Report {
    /// The server model used.
    pub server: Server,
    /// All keys.
    pub total: Totals,
    /// Per database.
    pub by_db: BTreeMap<u64, Totals>,
    /// Per type (`TYPE` names).
    pub by_type: BTreeMap<&'static str, Totals>,
    /// Per server encoding (`OBJECT ENCODING` names).
    pub by_encoding: BTreeMap<&'static str, Totals>,
    /// Keys whose estimate is approximate, per reason.
    pub approximate: BTreeMap<&'static str, u64>,
    /// Keys and bytes per expiry class ([`TTL_CLASSES`], same order).
    pub ttl: [Totals; 7],
    /// The time expiries are measured from (ms since the epoch).
    pub now_ms: i64,
    top_n: usize,
    /// The `top_n` largest so far, smallest on top.
    top: BinaryHeap<Reverse<(u64, Reverse<u64>, TopKeyBody)>>,
    /// The `top_n` with the most elements so far.
    top_elements: BinaryHeap<Reverse<(u64, Reverse<u64>, TopKeyBody)>>,
    seq: u64,
    /// Prefix separator and depth, when prefixes are counted.
    prefix_by: Option<(Vec<u8>, usize)>,
    /// Per level: prefix → totals (at most [`PREFIX_CAP`] each), and what the cap left out.
    prefix_levels: Vec<(std::collections::HashMap<Vec<u8>, Totals>, Totals)>,
}

/// A top key without its size (the heap orders by size, then by arrival).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TopKeyBody {
    db: u64,
    key: Vec<u8>,
    type_name: &'static str,
    encoding: &'static str,
    num_elements: u64,
}

impl Report {
    /// An empty report for `server`, keeping the `top_n` largest keys.
    pub fn new(server: Server, top_n: usize) -> Report {
        Report {
            server,
            total: Totals::default(),
            by_db: BTreeMap::new(),
            by_type: BTreeMap::new(),
            by_encoding: BTreeMap::new(),
            approximate: BTreeMap::new(),
            ttl: [Totals::default(); 7],
            now_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            top_n,
            top: BinaryHeap::new(),
            top_elements: BinaryHeap::new(),
            seq: 0,
            prefix_by: None,
            prefix_levels: Vec::new(),
        }
    }

    /// Also counts keys per prefix: the parts of each key up to its first `depth` occurrences of `separator`
    /// (`user:42:name` with `:` and depth 2: `user:` and `user:42:`), in bounded memory ([`PREFIX_CAP`]).
    #[must_use]
    pub fn with_prefixes(mut self, separator: &[u8], depth: usize) -> Report {
        if !separator.is_empty() && depth > 0 {
            self.prefix_by = Some((separator.to_vec(), depth));
            self.prefix_levels = vec![(std::collections::HashMap::new(), Totals::default()); depth];
        }
        self
    }

    /// Measures expiries from `now_ms` instead of the clock.
    #[must_use]
    pub fn at(mut self, now_ms: i64) -> Report {
        self.now_ms = now_ms;
        self
    }

    /// The expiry class of an expiry ([`TTL_CLASSES`] index).
    fn ttl_class(&self, expiry_ms: Option<i64>) -> usize {
        const H: i64 = 3_600_000;
        match expiry_ms.map(|e| e.saturating_sub(self.now_ms)) {
            None => 0,
            Some(left) if left <= 0 => 1,
            Some(left) if left < H => 2,
            Some(left) if left < 24 * H => 3,
            Some(left) if left < 7 * 24 * H => 4,
            Some(left) if left < 30 * 24 * H => 5,
            Some(_) => 6,
        }
    }

    /// The prefixes with the most bytes, largest first, per level (at most `n` per level), `(other)` included
    /// where the cap was reached.
    pub fn prefixes(&self, n: usize) -> Vec<Prefix> {
        let mut out = Vec::new();
        for (i, (map, other)) in self.prefix_levels.iter().enumerate() {
            let mut v: Vec<(&Vec<u8>, &Totals)> = map.iter().collect();
            v.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(b.0)));
            for (p, t) in v.into_iter().take(n) {
                out.push(Prefix { prefix: p.clone(), level: i + 1, totals: *t });
            }
            if other.keys > 0 {
                out.push(Prefix { prefix: b"(other)".to_vec(), level: i + 1, totals: *other });
            }
        }
        out
    }

    /// Counts one key.
    pub fn add(&mut self, row: &Row<'_>) {
        let e = &row.estimate;
        self.total.add(e);
        self.by_db.entry(row.db).or_default().add(e);
        self.by_type.entry(row.logical_type.name()).or_default().add(e);
        self.by_encoding.entry(e.encoding).or_default().add(e);
        if let Some(why) = e.approximate {
            *self.approximate.entry(why).or_default() += 1;
        }
        let class = self.ttl_class(row.expiry_ms);
        self.ttl[class].add(e);
        if let Some((sep, depth)) = &self.prefix_by {
            let mut end = 0;
            for level in 0..*depth {
                let Some(at) = find(&row.key[end..], sep) else { break };
                end += at + sep.len();
                let (map, other) = &mut self.prefix_levels[level];
                let full = map.len() >= PREFIX_CAP;
                match map.get_mut(&row.key[..end]) {
                    Some(t) => t.add(e),
                    None if !full => {
                        let mut t = Totals::default();
                        t.add(e);
                        map.insert(row.key[..end].to_vec(), t);
                    }
                    None => other.add(e),
                }
            }
        }
        self.seq += 1;
        if self.top_n == 0 {
            return;
        }
        let body = || TopKeyBody {
            db: row.db,
            key: row.key.to_vec(),
            type_name: row.logical_type.name(),
            encoding: e.encoding,
            num_elements: e.num_elements,
        };
        keep_top(&mut self.top, self.top_n, (e.bytes, Reverse(self.seq)), body);
        keep_top(&mut self.top_elements, self.top_n, (e.num_elements, Reverse(self.seq)), body);
    }

    /// The largest keys, largest first (ties in file order).
    pub fn top(&self) -> Vec<TopKey> {
        sorted_top(&self.top, |bytes, b| TopKey {
            bytes,
            db: b.db,
            key: b.key,
            type_name: b.type_name,
            encoding: b.encoding,
            num_elements: b.num_elements,
        })
    }

    /// The keys with the most elements, most first (ties in file order); `bytes` is their estimate.
    pub fn top_by_elements(&self) -> Vec<TopKey> {
        sorted_top(&self.top_elements, |_, b| TopKey {
            bytes: 0,
            db: b.db,
            key: b.key,
            type_name: b.type_name,
            encoding: b.encoding,
            num_elements: b.num_elements,
        })
    }
}

type TopHeap = BinaryHeap<Reverse<(u64, Reverse<u64>, TopKeyBody)>>;

/// Keeps the `n` highest ranks in a min-heap; earlier keys win ties (a later arrival has a smaller Reverse(seq)).
fn keep_top(heap: &mut TopHeap, n: usize, rank: (u64, Reverse<u64>), body: impl FnOnce() -> TopKeyBody) {
    if heap.len() >= n {
        match heap.peek() {
            Some(Reverse((b, s, _))) if (*b, *s) >= rank => return,
            _ => {}
        }
        heap.pop();
    }
    heap.push(Reverse((rank.0, rank.1, body())));
}

fn sorted_top(heap: &TopHeap, f: impl Fn(u64, TopKeyBody) -> TopKey) -> Vec<TopKey> {
    let mut v: Vec<_> = heap.iter().map(|Reverse(t)| t.clone()).collect();
    v.sort_by_key(|t| Reverse((t.0, t.1)));
    v.into_iter().map(|(rank, _, b)| f(rank, b)).collect()
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes `b` as one CSV field: as is (raw bytes, as rdbtools writes keys), or in double quotes with `"` doubled
/// when it holds a comma, a quote or a line break (so the row stays one row for any CSV reader).
fn csv_field(out: &mut dyn Write, b: &[u8]) -> io::Result<()> {
    if b.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r')) {
        out.write_all(b"\"")?;
        for part in b.split(|&c| c == b'"').enumerate() {
            if part.0 > 0 {
                out.write_all(b"\"\"")?;
            }
            out.write_all(part.1)?;
        }
        out.write_all(b"\"")
    } else {
        out.write_all(b)
    }
}

/// Writes one row in [`CSV_HEADER`]'s columns, with rdbtools' type names ([`rdbtools_type`]) and the server's
/// encoding names ([`Estimate::encoding`]). The expiry is written as rdbtools writes it: Python's
/// `datetime.isoformat()` of the UTC time ([`iso_expiry`]), or nothing.
pub fn write_csv_row(out: &mut dyn Write, row: &Row<'_>) -> io::Result<()> {
    write!(out, "{},{},", row.db, rdbtools_type(row.logical_type))?;
    csv_field(out, row.key)?;
    let e = &row.estimate;
    write!(out, ",{},{},{},{},", e.bytes, e.encoding, e.num_elements, e.len_largest_element)?;
    if let Some(ms) = row.expiry_ms {
        out.write_all(iso_expiry(ms).as_bytes())?;
    }
    out.write_all(b"\n")
}

/// The type column as rdbtools writes it: the `TYPE` name, except `sortedset` for sorted sets.
pub fn rdbtools_type(t: LogicalType) -> &'static str {
    match t {
        LogicalType::ZSet => "sortedset",
        other => other.name(),
    }
}

/// An expiry as rdbtools prints it: `YYYY-MM-DDTHH:MM:SS` in UTC, with `.ffffff` microseconds when they are not
/// zero (Python's `isoformat`); seconds beyond 221925052800 are clamped to it as rdbtools clamps them.
pub fn iso_expiry(ms: i64) -> String {
    let secs = ms.div_euclid(1000).min(221_925_052_800);
    let micros = ms.rem_euclid(1000) * 1000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60);
    if micros != 0 {
        s.push_str(&format!(".{micros:06}"));
    }
    s
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_like_python_isoformat() {
        assert_eq!(iso_expiry(0), "1970-01-01T00:00:00");
        assert_eq!(iso_expiry(1_700_000_000_123), "2023-11-14T22:13:20.123000");
        assert_eq!(iso_expiry(951_782_400_000), "2000-02-29T00:00:00");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut o = Vec::new();
        csv_field(&mut o, b"a:b").unwrap();
        csv_field(&mut o, b"x,\"y\"").unwrap();
        assert_eq!(o, b"a:b\"x,\"\"y\"\"\"");
    }

    #[test]
    fn top_keeps_the_largest_in_order() {
        let mut r = Report::new(Server::Redis70, 2);
        for (k, b) in [(&b"a"[..], 10u64), (b"b", 30), (b"c", 20), (b"d", 30)] {
            let estimate =
                Estimate { bytes: b, encoding: "raw", num_elements: 1, len_largest_element: 1, approximate: None };
            r.add(&Row { db: 0, logical_type: LogicalType::String, key: k, estimate, expiry_ms: None });
        }
        let top: Vec<_> = r.top().into_iter().map(|t| (t.key, t.bytes)).collect();
        assert_eq!(top, [(b"b".to_vec(), 30), (b"d".to_vec(), 30)]);
        assert_eq!(r.total.bytes, 90);
    }

    fn row<'k>(key: &'k [u8], bytes: u64, elements: u64, expiry_ms: Option<i64>) -> Row<'k> {
        let estimate =
            Estimate { bytes, encoding: "raw", num_elements: elements, len_largest_element: 1, approximate: None };
        Row { db: 0, logical_type: LogicalType::String, key, estimate, expiry_ms }
    }

    #[test]
    fn expiry_classes_from_now() {
        let now = 1_000_000_000_000;
        let mut r = Report::new(Server::Redis70, 0).at(now);
        let h = 3_600_000;
        for (i, e) in [None, Some(now - 1), Some(now), Some(now + h - 1), Some(now + 23 * h), Some(now + 6 * 24 * h)]
            .into_iter()
            .chain([Some(now + 29 * 24 * h), Some(now + 31 * 24 * h), Some(i64::MAX)])
            .enumerate()
        {
            r.add(&row(format!("k{i}").as_bytes(), 10, 1, e));
        }
        let keys: Vec<u64> = r.ttl.iter().map(|t| t.keys).collect();
        assert_eq!(keys, [1, 2, 1, 1, 1, 1, 2]);
        assert_eq!(r.ttl.iter().map(|t| t.bytes).sum::<u64>(), r.total.bytes);
    }

    #[test]
    fn prefixes_per_level_and_bounded() {
        let mut r = Report::new(Server::Redis70, 1).with_prefixes(b":", 2);
        for (k, b) in
            [(&b"user:1:name"[..], 10), (b"user:1:mail", 20), (b"user:2:name", 5), (b"session:x", 7), (b"plain", 1)]
        {
            r.add(&row(k, b, 1, None));
        }
        let got: Vec<(Vec<u8>, usize, u64, u64)> =
            r.prefixes(10).into_iter().map(|p| (p.prefix, p.level, p.totals.keys, p.totals.bytes)).collect();
        assert_eq!(
            got,
            [
                (b"user:".to_vec(), 1, 3, 35),
                (b"session:".to_vec(), 1, 1, 7),
                (b"user:1:".to_vec(), 2, 2, 30),
                (b"user:2:".to_vec(), 2, 1, 5),
            ]
        );
        // Past the cap, new prefixes are counted as (other): memory stays bounded whatever the key count.
        let mut r = Report::new(Server::Redis70, 0).with_prefixes(b":", 1);
        for i in 0..PREFIX_CAP + 10 {
            r.add(&row(format!("p{i}:k").as_bytes(), 1, 1, None));
        }
        assert_eq!(r.prefix_levels[0].0.len(), PREFIX_CAP);
        let other = r.prefixes(0).pop().unwrap();
        assert_eq!((other.prefix, other.totals.keys), (b"(other)".to_vec(), 10));
    }

    #[test]
    fn top_by_elements() {
        let mut r = Report::new(Server::Redis70, 2);
        for (k, n) in [(&b"a"[..], 5u64), (b"b", 50), (b"c", 7)] {
            r.add(&row(k, 100 - n, n, None));
        }
        let top: Vec<_> = r.top_by_elements().into_iter().map(|t| (t.key, t.num_elements)).collect();
        assert_eq!(top, [(b"b".to_vec(), 50), (b"c".to_vec(), 7)]);
    }
}
