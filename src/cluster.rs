//! Redis Cluster hash slots and shard layouts: which shard of a cluster a key belongs to.
//!
//! A key's slot is CRC16/XMODEM of the key (or of its `{hash tag}`) mod 16384 ([`key_hash_slot`], RDB-FORMAT.md
//! §7). A [`ShardLayout`] maps each of the 16384 slots to one shard, built either the way `redis-cli --cluster
//! create` splits slots evenly ([`ShardLayout::even`]) or from a live cluster's map ([`ShardLayout::from_nodes`],
//! the output of `CLUSTER NODES` or a `nodes.conf` file). Importing into a clustered target redistributes keys by
//! [`ShardLayout::shard_of`].
//!
//! ```
//! use rdbkit::cluster::ShardLayout;
//!
//! let layout = ShardLayout::even(3)?;
//! assert_eq!(layout.shards()[2].ranges[0].to_string(), "10923-16383");
//! assert_eq!(layout.shard_of(b"foo"), 2); // slot 12182
//! # Ok::<(), rdbkit::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

pub use crate::format::crc::key_hash_slot;
use crate::{Error, ErrorKind, Result};

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The largest `nodes.conf` [`ShardLayout::from_nodes_file`] reads: 32 MiB.
pub const MAX_NODES_FILE: u64 = 32 << 20;

fn invalid(msg: String) -> Error {
    Error::without_offset(ErrorKind::Invalid(msg))
}

/// An inclusive range of hash slots, `start..=end`. Displayed and parsed as `start-end` (a lone `N` also parses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotRange {
    /// The first slot of the range.
    pub start: u16,
    /// The last slot of the range (inclusive).
    pub end: u16,
}

impl SlotRange {
    /// The range `start..=end`.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when `start > end` or `end` is not below [`SLOTS`].
    pub fn new(start: u16, end: u16) -> Result<Self> {
        if start > end || end >= SLOTS {
            return Err(invalid(format!("invalid slot range {start}-{end} (slots are 0-{})", SLOTS - 1)));
        }
        Ok(SlotRange { start, end })
    }

    /// Whether `slot` lies in the range.
    pub fn contains(&self, slot: u16) -> bool {
        self.start <= slot && slot <= self.end
    }

    /// The number of slots in the range (0 if `start > end`).
    pub fn count(&self) -> u32 {
        if self.start > self.end { 0 } else { u32::from(self.end - self.start) + 1 }
    }
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for SlotRange {
    type Err = Error;

    /// Parses `N` or `A-B` (decimal, `A ≤ B < 16384`).
    fn from_str(s: &str) -> Result<Self> {
        let slot = |t: &str| -> Result<u16> {
            match t.parse::<u16>() {
                Ok(n) if n < SLOTS && t.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(invalid(format!("invalid slot {t:?} (slots are 0-{})", SLOTS - 1))),
            }
        };
        match s.split_once('-') {
            None => {
                let n = slot(s)?;
                Ok(SlotRange { start: n, end: n })
            }
            Some((a, b)) => SlotRange::new(slot(a)?, slot(b)?),
        }
    }
}

/// One shard of a cluster: a master and the slot ranges it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The master's node id, or `shard-000`, `shard-001`, … for a computed layout.
    pub name: String,
    /// The master's `ip:port`, when known.
    pub addr: Option<String>,
    /// The slot ranges the shard owns, sorted, adjacent ranges merged.
    pub ranges: Vec<SlotRange>,
}

impl Shard {
    /// The number of slots the shard owns.
    pub fn slot_count(&self) -> u32 {
        self.ranges.iter().map(SlotRange::count).sum()
    }

    /// The lowest slot the shard owns, if any.
    pub fn first_slot(&self) -> Option<u16> {
        self.ranges.iter().map(|r| r.start).min()
    }
}

/// A complete assignment of the 16384 slots to shards, with a slot → shard table for routing keys.
///
/// Shards are ordered by their lowest slot; every slot belongs to exactly one shard.
#[derive(Clone, PartialEq, Eq)]
pub struct ShardLayout {
    shards: Vec<Shard>,
    /// `SLOTS` entries: the index in `shards` of each slot's owner.
    slot_to_shard: Box<[u16]>,
}

impl fmt::Debug for ShardLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardLayout").field("shards", &self.shards).finish_non_exhaustive()
    }
}

impl ShardLayout {
    /// `n` shards owning contiguous, near-equal slot ranges in order, exactly as `redis-cli --cluster create`
    /// assigns them to `n` masters (`clusterManagerCommandCreate`, with its single-precision arithmetic): 3 shards
    /// get `0-5460`, `5461-10922`, `10923-16383`; 6 get `0-2730`, `2731-5460`, `5461-8191`, ….
    ///
    /// For 2989 counts from 7542 up, the single-precision cursor of redis-cli drifts so far that it runs out of
    /// slots before its last master (redis-cli then writes past its slot table). For those counts, and only those,
    /// the split uses exact arithmetic instead: shard `i` starts at slot `round(i · 16384 / n)`.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] unless `1 ≤ n ≤ 16384`.
    pub fn even(n: usize) -> Result<Self> {
        if n == 0 || n > usize::from(SLOTS) {
            return Err(invalid(format!("shard count {n} is out of range 1-{SLOTS}")));
        }
        let starts = redis_cli_split(n).unwrap_or_else(|| exact_split(n));
        let shards = starts
            .iter()
            .enumerate()
            .map(|(i, &start)| {
                let end = starts.get(i + 1).map_or(SLOTS - 1, |next| next - 1);
                Shard { name: format!("shard-{i:03}"), addr: None, ranges: vec![SlotRange { start, end }] }
            })
            .collect();
        ShardLayout::from_shards(shards)
    }

    /// A layout from shards whose ranges must together cover every slot exactly once. Shards without ranges are
    /// dropped; ranges are sorted and merged; shards are ordered by their lowest slot.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] naming the slots when a range is out of bounds, two ranges overlap, or some slots
    /// are owned by no shard.
    pub fn from_shards(shards: Vec<Shard>) -> Result<Self> {
        let mut shards: Vec<Shard> = shards.into_iter().filter(|s| !s.ranges.is_empty()).collect();
        for s in &mut shards {
            for r in &s.ranges {
                SlotRange::new(r.start, r.end).map_err(|e| invalid(format!("shard {}: {e}", s.name)))?;
            }
            s.ranges = merge(std::mem::take(&mut s.ranges));
        }
        shards.sort_by_key(|s| s.first_slot());
        if shards.len() > usize::from(SLOTS) {
            return Err(invalid(format!("{} shards own slots: more than {SLOTS} is impossible", shards.len())));
        }
        let mut owner: Vec<Option<u16>> = vec![None; usize::from(SLOTS)];
        for (i, s) in shards.iter().enumerate() {
            let idx = i as u16; // < SLOTS, checked above
            for r in &s.ranges {
                for slot in r.start..=r.end {
                    if let Some(prev) = owner[usize::from(slot)] {
                        let other = &shards[usize::from(prev)];
                        let clash = overlap_run(&owner, prev, *r, slot);
                        return Err(invalid(format!(
                            "slot{} {} owned by both {} and {}",
                            if clash.count() == 1 { "" } else { "s" },
                            show(clash),
                            other.name,
                            s.name
                        )));
                    }
                    owner[usize::from(slot)] = Some(idx);
                }
            }
        }
        let gaps = unowned(&owner);
        if !gaps.is_empty() {
            return Err(invalid(format!("{} owned by no shard", describe_slots(&gaps))));
        }
        let slot_to_shard = owner.into_iter().map(|o| o.unwrap_or(0)).collect();
        Ok(ShardLayout { shards, slot_to_shard })
    }

    /// A layout from a `nodes.conf` file (or saved `CLUSTER NODES` output) at `path`, read only up to
    /// [`MAX_NODES_FILE`] bytes: a larger file (or `/dev/zero`) is refused without reading it all.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the file cannot be read; [`ErrorKind::Invalid`] when it is too large, not UTF-8,
    /// or [`ShardLayout::from_nodes`] refuses it.
    pub fn from_nodes_file(path: &std::path::Path) -> Result<Self> {
        use std::io::Read;
        let file = std::fs::File::open(path)?;
        let mut bytes = Vec::new();
        file.take(MAX_NODES_FILE + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_NODES_FILE {
            return Err(invalid(format!(
                "nodes file larger than {} MiB: not a nodes.conf (16384 masters with replicas fit in a few MiB)",
                MAX_NODES_FILE >> 20
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|e| invalid(format!("nodes file is not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
        Self::from_nodes(&text)
    }

    /// A layout from the output of `CLUSTER NODES` or the contents of a `nodes.conf` file.
    ///
    /// Each line is `<id> <ip:port@cport[,hostname…]> <flags> <master-id|-> <ping> <pong> <epoch> <link-state>
    /// <slot>…`, a slot being `N` or `A-B`. Only masters (flags containing `master`) that own slots become shards
    /// — including masters flagged `fail` or `noaddr`, since their slots are still theirs until a failover;
    /// masters without slots are ignored. Importing/migrating markers (`[N->-id]`, `[N-<-id]`) are ignored, as
    /// are `vars …` lines of `nodes.conf` and blank lines.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] naming the line for a malformed line or slot, a slot claimed by two masters, or
    /// a master id listed twice; naming the slots when some slots are owned by no master.
    pub fn from_nodes(text: &str) -> Result<Self> {
        let mut shards: Vec<Shard> = Vec::new();
        let mut lines: Vec<usize> = Vec::new();
        // Line of each master id seen (with or without slots): two shards of one id would be one output file.
        let mut ids: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        // Per slot: (index in `shards`) of the master claiming it.
        let mut owner: Vec<Option<u16>> = vec![None; usize::from(SLOTS)];
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            if fields.is_empty() || fields[0] == "vars" {
                continue;
            }
            if fields.len() < 8 {
                return Err(invalid(format!(
                    "line {lineno}: expected at least 8 fields (id, address, flags, master, ping, pong, epoch, \
                     link state), found {}",
                    fields.len()
                )));
            }
            if !fields[2].split(',').any(|f| f == "master") {
                continue;
            }
            if let Some(first) = ids.insert(fields[0], lineno) {
                return Err(invalid(format!(
                    "line {lineno}: master {} listed twice (first on line {first})",
                    fields[0]
                )));
            }
            let mut ranges = Vec::new();
            for tok in &fields[8..] {
                if tok.starts_with('[') {
                    continue;
                }
                let r: SlotRange =
                    tok.parse().map_err(|e| invalid(format!("line {lineno}: bad slot token {tok:?}: {e}")))?;
                ranges.push(r);
            }
            if ranges.is_empty() {
                continue;
            }
            if shards.len() >= usize::from(SLOTS) {
                return Err(invalid(format!("line {lineno}: more than {SLOTS} masters own slots")));
            }
            let idx = shards.len() as u16;
            for r in &ranges {
                for slot in r.start..=r.end {
                    if let Some(prev) = owner[usize::from(slot)] {
                        let clash = overlap_run(&owner, prev, *r, slot);
                        let what = match (shards.get(usize::from(prev)), lines.get(usize::from(prev))) {
                            (Some(other), Some(line)) if prev != idx => {
                                format!("also owned by {} (line {line})", other.name)
                            }
                            _ => "listed twice by this master".to_string(),
                        };
                        return Err(invalid(format!(
                            "line {lineno}: slot{} {} of {} {what}",
                            if clash.count() == 1 { "" } else { "s" },
                            show(clash),
                            fields[0]
                        )));
                    }
                    owner[usize::from(slot)] = Some(idx);
                }
            }
            shards.push(Shard { name: fields[0].to_string(), addr: parse_addr(fields[1]), ranges });
            lines.push(lineno);
        }
        let gaps = unowned(&owner);
        if !gaps.is_empty() {
            return Err(invalid(format!("{} owned by no master", describe_slots(&gaps))));
        }
        ShardLayout::from_shards(shards)
    }

    /// The shards, ordered by their lowest slot.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The number of shards (at least 1).
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Always `false`: a layout owns all slots, so it has at least one shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The index in [`shards`](ShardLayout::shards) of the shard owning `key`'s hash slot.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        usize::from(self.slot_to_shard[usize::from(key_hash_slot(key) & (SLOTS - 1))])
    }

    /// The index of the shard owning `slot`, or `None` if `slot` is not below [`SLOTS`].
    pub fn shard_of_slot(&self, slot: u16) -> Option<usize> {
        self.slot_to_shard.get(usize::from(slot)).map(|&i| usize::from(i))
    }
}

/// The first slot of each of `n` masters (1 ≤ n ≤ 16384) as redis-cli's `clusterManagerCommandCreate` computes
/// them, or `None` when its float arithmetic runs out of slots before the last master.
fn redis_cli_split(n: usize) -> Option<Vec<u16>> {
    let slots = i64::from(SLOTS);
    // `float slots_per_node = CLUSTER_MANAGER_SLOTS / (float) masters_count;` and a float cursor: single
    // precision throughout; lround() rounds half away from zero, as f32::round does.
    let per_node = f32::from(SLOTS) / n as f32;
    let mut cursor = 0.0f32;
    let mut first: i64 = 0;
    let mut starts = Vec::with_capacity(n);
    for i in 0..n {
        let mut last = (cursor + per_node - 1.0).round() as i64;
        if last > slots || i == n - 1 {
            last = slots - 1;
        }
        if last < first {
            last = first;
        }
        if last >= slots {
            return None;
        }
        starts.push(u16::try_from(first).ok()?);
        first = last + 1;
        cursor += per_node;
    }
    Some(starts)
}

/// The first slot of each of `n` shards (1 ≤ n ≤ 16384) split exactly: `round(i · 16384 / n)`, halves up.
fn exact_split(n: usize) -> Vec<u16> {
    let (slots, n) = (u64::from(SLOTS), n as u64);
    (0..n).map(|i| ((2 * i * slots + n) / (2 * n)) as u16).collect()
}

/// Sorts ranges and merges overlapping or adjacent ones.
fn merge(mut ranges: Vec<SlotRange>) -> Vec<SlotRange> {
    ranges.sort();
    let mut out: Vec<SlotRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if u32::from(r.start) <= u32::from(last.end) + 1 => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// The run of slots from `slot` on, inside `r`, already owned by `prev`.
fn overlap_run(owner: &[Option<u16>], prev: u16, r: SlotRange, slot: u16) -> SlotRange {
    let mut end = slot;
    while end < r.end && owner[usize::from(end) + 1] == Some(prev) {
        end += 1;
    }
    SlotRange { start: slot, end }
}

/// The ranges of slots with no owner.
fn unowned(owner: &[Option<u16>]) -> Vec<SlotRange> {
    let mut out: Vec<SlotRange> = Vec::new();
    for (slot, o) in owner.iter().enumerate() {
        if o.is_none() {
            let slot = slot as u16;
            match out.last_mut() {
                Some(last) if last.end + 1 == slot => last.end = slot,
                _ => out.push(SlotRange { start: slot, end: slot }),
            }
        }
    }
    out
}

/// `5` for a single slot, `1-3` for more.
fn show(r: SlotRange) -> String {
    if r.start == r.end { r.start.to_string() } else { r.to_string() }
}

/// `slot 5` / `slots 1-3, 7, 9-12 and 4 more ranges (N slots)`.
fn describe_slots(ranges: &[SlotRange]) -> String {
    const SHOWN: usize = 8;
    let total: u32 = ranges.iter().map(SlotRange::count).sum();
    let list: Vec<String> = ranges.iter().take(SHOWN).map(|r| show(*r)).collect();
    let mut s = format!("slot{} {}", if total == 1 { "" } else { "s" }, list.join(", "));
    if ranges.len() > SHOWN {
        s.push_str(&format!(" and {} more range(s)", ranges.len() - SHOWN));
    }
    if total > 1 {
        s.push_str(&format!(" ({total} slots)"));
    }
    s
}

/// `ip:port` from `ip:port@cport[,hostname…]` (or the pre-4.0 `ip:port`); `None` for `:0` (no address).
fn parse_addr(field: &str) -> Option<String> {
    let addr = field.split(',').next().unwrap_or("");
    let addr = addr.split('@').next().unwrap_or("");
    match addr.rsplit_once(':') {
        Some((ip, port)) if !ip.is_empty() && !port.is_empty() && port != "0" => Some(addr.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(layout: &ShardLayout) -> Vec<Vec<String>> {
        layout.shards().iter().map(|s| s.ranges.iter().map(|r| r.to_string()).collect()).collect()
    }

    fn msg(e: Error) -> String {
        match e.kind() {
            ErrorKind::Invalid(m) => m.clone(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn even_layouts() {
        assert_eq!(ranges(&ShardLayout::even(1).unwrap()), [["0-16383"]]);
        let three = ShardLayout::even(3).unwrap();
        assert_eq!(ranges(&three), [["0-5460"], ["5461-10922"], ["10923-16383"]]);
        assert_eq!(three.shards()[1].name, "shard-001");
        assert_eq!(three.shards()[1].addr, None);
        assert_eq!(three.len(), 3);
        assert!(!three.is_empty());
        // redis-cli --cluster create with 6 masters.
        assert_eq!(
            ranges(&ShardLayout::even(6).unwrap()),
            [["0-2730"], ["2731-5460"], ["5461-8191"], ["8192-10922"], ["10923-13652"], ["13653-16383"]]
        );
        // Spot values printed by redis-cli's own loop (compiled from clusterManagerCommandCreate).
        let seven = ranges(&ShardLayout::even(7).unwrap());
        assert_eq!(seven[..3], [["0-2340"], ["2341-4680"], ["4681-7021"]]);
        assert_eq!(seven[5..], [["11703-14042"], ["14043-16383"]]);
        let thousand = ranges(&ShardLayout::even(1000).unwrap());
        assert_eq!(thousand[..3], [["0-15"], ["16-32"], ["33-48"]]);
        assert_eq!(thousand[998..], [["16351-16366"], ["16367-16383"]]);
        let many = ranges(&ShardLayout::even(7541).unwrap());
        assert_eq!(many[..3], [["0-1"], ["2-3"], ["4-6"]]);
        assert_eq!(many[7539..], [["16381-16382"], ["16383-16383"]]);
        // Beyond redis-cli's float precision: exact split.
        let l = ShardLayout::even(7542).unwrap();
        assert_eq!(l.shards()[7541].ranges, [SlotRange { start: 16382, end: 16383 }]);
        let all = ShardLayout::even(16384).unwrap();
        assert_eq!(all.len(), 16384);
        for (i, s) in all.shards().iter().enumerate() {
            assert_eq!(s.ranges, [SlotRange { start: i as u16, end: i as u16 }]);
            assert_eq!(all.shard_of_slot(i as u16), Some(i));
        }
        assert!(msg(ShardLayout::even(0).unwrap_err()).contains("out of range"));
        assert!(ShardLayout::even(16385).is_err());
        assert!(ShardLayout::even(usize::MAX).is_err());
    }

    #[test]
    fn even_is_a_partition_for_every_count() {
        // from_shards checks coverage and overlaps; also check contiguity and order here.
        // 7542 is the first count redis-cli's float loop cannot split (checked exhaustively against the C code).
        assert!((7400..7542).all(|n| redis_cli_split(n).is_some()));
        assert!(redis_cli_split(7542).is_none());
        for n in (1..=16384usize).filter(|n| *n <= 300 || n % 131 == 0 || (7530..7560).contains(n) || *n >= 16300) {
            let l = ShardLayout::even(n).unwrap();
            assert_eq!(l.len(), n);
            let mut next = 0u32;
            for s in l.shards() {
                assert_eq!(s.ranges.len(), 1);
                assert_eq!(u32::from(s.ranges[0].start), next, "n = {n}");
                next = u32::from(s.ranges[0].end) + 1;
            }
            assert_eq!(next, 16384);
        }
    }

    #[test]
    fn key_routing() {
        let three = ShardLayout::even(3).unwrap();
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(three.shard_of(b"foo"), 2);
        assert_eq!(key_hash_slot(b"{user1000}.following"), 3443);
        assert_eq!(three.shard_of(b"{user1000}.following"), 0);
        assert_eq!(three.shard_of(b"123456789"), 2); // 12739
        assert_eq!(three.shard_of(b""), 0);
        assert_eq!(three.shard_of_slot(5460), Some(0));
        assert_eq!(three.shard_of_slot(5461), Some(1));
        assert_eq!(three.shard_of_slot(16383), Some(2));
        assert_eq!(three.shard_of_slot(16384), None);
        assert_eq!(ShardLayout::even(1).unwrap().shard_of(b"anything"), 0);
    }

    /// CLUSTER NODES of a 3-master, 3-replica cluster after some resharding: the first master owns two ranges
    /// (one a single slot) and is importing a slot; a failed master that lost its slots and a node in handshake
    /// are present.
    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,hostname2 master - 0 1426238316232 2 connected 5460-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,hostname3 master - 0 1426238318243 3 connected 10924-16383 [10924->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005,hostname5 slave 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 connected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 127.0.0.1:30006@31006,hostname6 slave 292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 0 1426238317741 6 connected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,hostname1 myself,master - 0 0 1 connected 0-5459 10923 [10924-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
a0b1c2d3e4f5a0b1c2d3e4f5a0b1c2d3e4f5a0b1 :0@0 master,fail,noaddr - 1426238310000 1426238300000 0 disconnected
";

    #[test]
    fn from_cluster_nodes() {
        let l = ShardLayout::from_nodes(NODES).unwrap();
        assert_eq!(l.len(), 3);
        let names: Vec<&str> = l.shards().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca",
                "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1",
                "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"
            ]
        );
        assert_eq!(ranges(&l), [vec!["0-5459", "10923-10923"], vec!["5460-10922"], vec!["10924-16383"]]);
        assert_eq!(l.shards()[0].addr.as_deref(), Some("127.0.0.1:30001"));
        assert_eq!(l.shards()[0].slot_count(), 5461);
        assert_eq!(l.shards()[2].first_slot(), Some(10924));
        assert_eq!(l.shard_of_slot(10923), Some(0));
        assert_eq!(l.shard_of_slot(5460), Some(1));
        assert_eq!(l.shard_of(b"foo"), 2);
    }

    #[test]
    fn from_nodes_conf() {
        // nodes.conf: same lines plus the trailing vars line, old-style address without @cport, CRLF endings.
        let conf = "\
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 10.0.0.1:6379@16379,,shard-id=5a1b myself,master - 0 0 1 connected 0-8191\r
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 10.0.0.2:6379 master - 0 1426238316232 2 connected 8192-16383\r
\r
vars currentEpoch 6 lastVoteEpoch 0\r
";
        let l = ShardLayout::from_nodes(conf).unwrap();
        assert_eq!(ranges(&l), [["0-8191"], ["8192-16383"]]);
        assert_eq!(l.shards()[0].addr.as_deref(), Some("10.0.0.1:6379"));
        assert_eq!(l.shards()[1].addr.as_deref(), Some("10.0.0.2:6379"));
    }

    #[test]
    fn from_nodes_gap() {
        let text = NODES.replace(" 10923 [", " [");
        let m = msg(ShardLayout::from_nodes(&text).unwrap_err());
        assert_eq!(m, "slot 10923 owned by no master");
        let text = NODES.replace("connected 0-5459", "connected 10-5459").replace(" 10923 [", " [");
        let m = msg(ShardLayout::from_nodes(&text).unwrap_err());
        assert_eq!(m, "slots 0-9, 10923 (11 slots) owned by no master");
        let m = msg(ShardLayout::from_nodes("").unwrap_err());
        assert_eq!(m, "slots 0-16383 (16384 slots) owned by no master");
    }

    #[test]
    fn from_nodes_overlap() {
        let text = NODES.replace("connected 5460-10922", "connected 5460-10930");
        let m = msg(ShardLayout::from_nodes(&text).unwrap_err());
        assert!(m.starts_with("line 3: slots 10924-10930 of 292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"), "{m}");
        assert!(m.contains("also owned by 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 (line 2)"), "{m}");
        let text = NODES.replace("0-5459 10923", "0-5459 10923 7");
        let m = msg(ShardLayout::from_nodes(&text).unwrap_err());
        assert!(m.starts_with("line 6: slot 7 of e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca listed twice"), "{m}");
    }

    #[test]
    fn from_nodes_malformed() {
        for (text, want) in [
            ("abc 1.2.3.4:1@2 master - 0 0 1\n", "line 1: expected at least 8 fields"),
            ("\nabc 1.2.3.4:1@2 master - 0 0 1 connected 0-16384\n", "line 2: bad slot token \"0-16384\""),
            ("abc 1.2.3.4:1@2 master - 0 0 1 connected 5-3\n", "line 1: bad slot token \"5-3\""),
            ("abc 1.2.3.4:1@2 master - 0 0 1 connected x\n", "line 1: bad slot token \"x\""),
            ("abc 1.2.3.4:1@2 master - 0 0 1 connected +5\n", "line 1: bad slot token \"+5\""),
            ("abc 1.2.3.4:1@2 master - 0 0 1 connected 0--3\n", "line 1: bad slot token \"0--3\""),
        ] {
            let m = msg(ShardLayout::from_nodes(text).unwrap_err());
            assert!(m.starts_with(want), "{m}");
        }
    }

    #[test]
    fn from_nodes_never_panics() {
        use proptest::prelude::*;
        proptest!(|(lines in proptest::collection::vec("[a-z0-9:@,\\[\\]<>\\- ]{0,60}", 0..8))| {
            let _ = ShardLayout::from_nodes(&lines.join("\n"));
            let _ = ShardLayout::from_nodes(&lines.iter().map(|l| format!("id 1:1@2 master - 0 0 1 c {l}")).collect::<Vec<_>>().join("\n"));
        });
    }

    #[test]
    fn slot_range_parse_and_display() {
        assert_eq!("7".parse::<SlotRange>().unwrap(), SlotRange { start: 7, end: 7 });
        assert_eq!("0-16383".parse::<SlotRange>().unwrap().count(), 16384);
        assert_eq!(SlotRange { start: 3, end: 9 }.to_string(), "3-9");
        assert!(SlotRange { start: 3, end: 9 }.contains(9));
        assert_eq!(SlotRange { start: 9, end: 3 }.count(), 0);
        for bad in ["", "-", "16384", "1-", "-1", "3-2", "a", " 1", "1-2-3"] {
            assert!(bad.parse::<SlotRange>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn from_shards_validates() {
        let s = |name: &str, r: &[(u16, u16)]| Shard {
            name: name.into(),
            addr: None,
            ranges: r.iter().map(|&(start, end)| SlotRange { start, end }).collect(),
        };
        let l =
            ShardLayout::from_shards(vec![s("b", &[(100, 16383)]), s("a", &[(50, 99), (0, 49)]), s("c", &[])]).unwrap();
        assert_eq!(ranges(&l), [["0-99"], ["100-16383"]]);
        let m = msg(ShardLayout::from_shards(vec![s("a", &[(0, 100)]), s("b", &[(100, 16383)])]).unwrap_err());
        assert_eq!(m, "slot 100 owned by both a and b");
        let m = msg(ShardLayout::from_shards(vec![s("a", &[(0, 16384)])]).unwrap_err());
        assert!(m.starts_with("shard a: invalid slot range 0-16384"), "{m}");
    }
}
