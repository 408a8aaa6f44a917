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
    top_n: usize,
    /// The `top_n` largest so far, smallest on top.
    top: BinaryHeap<Reverse<(u64, Reverse<u64>, TopKeyBody)>>,
    seq: u64,
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
            top_n,
            top: BinaryHeap::new(),
            seq: 0,
        }
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
        self.seq += 1;
        if self.top_n == 0 {
            return;
        }
        // Earlier keys win ties: a later arrival has a smaller Reverse(seq).
        let rank = (e.bytes, Reverse(self.seq));
        if self.top.len() >= self.top_n {
            match self.top.peek() {
                Some(Reverse((b, s, _))) if (*b, *s) >= rank => return,
                _ => {}
            }
            self.top.pop();
        }
        let body = TopKeyBody {
            db: row.db,
            key: row.key.to_vec(),
            type_name: row.logical_type.name(),
            encoding: e.encoding,
            num_elements: e.num_elements,
        };
        self.top.push(Reverse((rank.0, rank.1, body)));
    }

    /// The largest keys, largest first (ties in file order).
    pub fn top(&self) -> Vec<TopKey> {
        let mut v: Vec<_> = self.top.iter().map(|Reverse(t)| t.clone()).collect();
        v.sort_by_key(|t| Reverse((t.0, t.1)));
        v.into_iter()
            .map(|(bytes, _, b)| TopKey {
                bytes,
                db: b.db,
                key: b.key,
                type_name: b.type_name,
                encoding: b.encoding,
                num_elements: b.num_elements,
            })
            .collect()
    }
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
}
