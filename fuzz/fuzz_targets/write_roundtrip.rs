//! Fuzz target: writer → reader round trip. The input is decoded (with `arbitrary`'s [`Unstructured`]) into a
//! target header (`REDIS0001`…`REDIS0012` or `VALKEY080`), writer options (LZF on/off, lossy or strict, default or
//! tiny encoding thresholds so small inputs cross every encoding boundary) and a few keys in a few databases, each
//! with an expiry, idle time, LFU counter and a value of any type: strings, lists, sets, sorted sets (scores
//! include NaN, ±inf, −0 and the integer/text boundaries), hashes with optional field TTLs, small valid streams
//! with consumer groups, and module values whose payload is a valid module opcode sequence.
//!
//! Every key goes through [`RdbWriter::entry`], which must either succeed or fail with
//! [`ErrorKind::Unrepresentable`] — and exactly when the target cannot hold the value (NaN score, stream before
//! RDB 9, module before RDB 8, field TTLs the target cannot store, a key expiry RDB 1–2 cannot store). The file is
//! then read back with [`SliceReader::new`] (deep validation + CRC-64): it must parse, and every key written must
//! come back in order, in its database, with its metadata, decoding to the value written up to what the format does
//! not keep (member order of sets, hashes and sorted sets; stream metadata derived for older stream versions;
//! TTLs a lossy write dropped; a Redis field TTL of 0, which means none). Scores, −0 included, come back bit for
//! bit in every encoding. Finally every record read is passed through
//! [`RdbWriter::raw_record`] at the same header, which must reproduce the file byte for byte.
//!
//! Duplicate set members, hash fields and sorted-set members are removed before writing (no server can hold
//! them), keeping the first occurrence.
#![no_main]

use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use rdbkit::ErrorKind;
use rdbkit::format::length::encode_length;
use rdbkit::format::string::{Compression, encode_raw_str};
use rdbkit::read::module::module_name;
use rdbkit::read::stream_value::{PendingEntry, StreamEntry, StreamId};
use rdbkit::read::value::{OwnedConsumer, OwnedGroup, OwnedStream};
use rdbkit::read::{Checksum, Encoding, Expiry, Flavor, Header, OwnedValue, RecordKind, SliceReader};
use rdbkit::write::encode::{Thresholds, Unrepresentable};
use rdbkit::write::{EntryMeta, RdbWriter, WriterOptions};
use std::collections::HashSet;

use rdbkit::read::EXPIRE_MAX as FIELD_EXPIRE_MAX;

/// Integer-like texts at the INT / listpack / ziplist / intset encoding boundaries, and near-integers: the same
/// table as the crate's property tests.
#[path = "../../src/format/testing/int_texts.rs"]
mod int_texts;
use int_texts::INT_TEXTS;

/// Sorted-set scores at the format boundaries.
const SCORES: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -2.0,
    2.5,
    0.1,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e20,
    -1e20,
    1e-300,
    5e-324,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    4611686018427387904.0,
    -4611686018427387904.0,
    6917529027641081856.0,
    9007199254740993.0,
    4503599627370496.0,
    9223372036854775807.0,
];

/// Key expiries around RDB 1–2's 32-bit seconds and sign boundaries.
const EXPIRIES: &[i64] = &[
    0,
    1,
    -1,
    999,
    1000,
    1001,
    -1000,
    -1001,
    1_700_000_000_123,
    2_147_483_647_000,
    2_147_483_647_001,
    2_147_483_648_000,
    -2_147_483_648_000,
    -2_147_483_648_001,
    i64::MAX,
    i64::MIN,
];

/// Field TTLs around what Redis (0..=2^48−1, 0 meaning "none" in listpacks) and Valkey (≥ 0) store.
const FIELD_TTLS: &[i64] = &[0, 1, 200, 500, FIELD_EXPIRE_MAX, FIELD_EXPIRE_MAX + 1, -1, -2, i64::MAX, i64::MIN];

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(case) = Case::generate(&mut u) {
        case.check();
    }
});

/// One key to write.
struct Key {
    db: u64,
    key: Vec<u8>,
    value: OwnedValue,
    meta: EntryMeta,
}

/// A whole generated file.
struct Case {
    header: Header,
    opts: WriterOptions,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    keys: Vec<Key>,
}

/// What a written key must read back as.
struct Expected {
    db: u64,
    key: Vec<u8>,
    value: OwnedValue,
    expiry: Option<Expiry>,
    idle: Option<u64>,
    freq: Option<u8>,
}

impl Case {
    fn generate(u: &mut Unstructured<'_>) -> AResult<Case> {
        let header = match u.int_in_range(0u8..=12)? {
            0 => Header::new(Flavor::Valkey, 80),
            v => Header::new(Flavor::Redis, u32::from(v)),
        };
        let mut opts = WriterOptions::default();
        opts.encode.lossy = u.arbitrary()?;
        if u.arbitrary()? {
            opts.encode.compression = Compression::Off;
        }
        if u.ratio(1, 2)? {
            opts.encode.thresholds = tiny_thresholds(u)?;
        }
        let mut aux = Vec::new();
        for _ in 0..u.int_in_range(0u8..=2)? {
            aux.push((small_bytes(u, 12)?, elem(u)?));
        }
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        let mut db = 0u64;
        for _ in 0..u.int_in_range(0u8..=6)? {
            if u.ratio(1, 5)? {
                db = u.choose(&[0u64, 1, 15, 16, 63, 64, 1 << 14, u64::from(u32::MAX)])?.to_owned();
            }
            let key = if u.ratio(1, 8)? { elem(u)? } else { small_bytes(u, 8)? };
            if !seen.insert((db, key.clone())) {
                continue;
            }
            let value = value(u)?;
            let meta = EntryMeta::expiring(if u.ratio(1, 3)? { Some(Expiry::Millis(expiry_ms(u)?)) } else { None })
                .with_idle(if u.ratio(1, 4)? { Some(u.arbitrary()?) } else { None })
                .with_freq(if u.ratio(1, 4)? { Some(u.arbitrary()?) } else { None });
            keys.push(Key { db, key, value, meta });
        }
        Ok(Case { header, opts, aux, keys })
    }

    fn check(&self) {
        let header = self.header;
        let lossy = self.opts.encode.lossy;
        let mut w = RdbWriter::with_options(Vec::new(), header, self.opts.clone()).expect("every target is writable");
        for (k, v) in &self.aux {
            w.aux(k, v).expect("aux");
        }
        let mut expected = Vec::new();
        let mut current_db = None;
        for k in &self.keys {
            if current_db != Some(k.db) {
                w.select_db(k.db).expect("select db");
                current_db = Some(k.db);
            }
            let must_fail = must_fail(&k.value, k.meta, header, lossy);
            match w.entry(&k.key, &k.value, k.meta) {
                Ok(dropped) => {
                    assert!(
                        must_fail.is_none(),
                        "{}: entry accepted but the target cannot hold it: {must_fail:?}",
                        header.magic()
                    );
                    if !lossy {
                        assert!(dropped.is_empty(), "strict write reported drops: {dropped:?}");
                    }
                    expected.push(expect(k, header, &dropped));
                }
                Err(e) => {
                    assert!(
                        matches!(e.kind(), ErrorKind::Unrepresentable { .. }),
                        "{}: entry failed with a non-Unrepresentable error: {e}",
                        header.magic()
                    );
                    assert!(must_fail.is_some(), "{}: entry refused although representable: {e}", header.magic());
                }
            }
        }
        let bytes = w.finish().expect("finish");

        // Read back with deep validation and the checksum on.
        let mut r = SliceReader::new(&bytes).unwrap_or_else(|e| panic!("{}: header: {e}", header.magic()));
        assert_eq!(r.header(), header);
        let mut pass = RdbWriter::new(Vec::new(), header).expect("pass-through writer");
        let mut want = expected.iter();
        loop {
            let rec = match r.next_record() {
                Ok(Some(rec)) => rec,
                Ok(None) => break,
                Err(e) => panic!("{}: written file does not read back: {e}", header.magic()),
            };
            pass.raw_record(&rec).unwrap_or_else(|e| panic!("{}: raw pass-through: {e}", header.magic()));
            let RecordKind::Entry(e) = rec.kind else { continue };
            let exp = want.next().expect("more keys read than written");
            let key = e.key.decode().expect("key decodes");
            assert_eq!(&*key, &exp.key[..], "key order");
            assert_eq!(e.db, exp.db, "database of {key:?}");
            assert_eq!(e.expiry, exp.expiry, "expiry of {key:?}");
            assert_eq!(e.idle, exp.idle, "idle of {key:?}");
            assert_eq!(e.freq, exp.freq, "freq of {key:?}");
            let got =
                e.value.to_owned_value().unwrap_or_else(|err| panic!("{}: value of {key:?}: {err}", header.magic()));
            let want_v = adjust_for_encoding(&exp.value, e.value.encoding);
            assert_eq!(
                canon(&got),
                canon(&want_v),
                "{}: value of {key:?} ({:?}) differs",
                header.magic(),
                e.value.encoding
            );
        }
        assert!(want.next().is_none(), "keys missing from the file");
        match r.checksum() {
            Some(Checksum::Ok(_)) => assert!(header.has_checksum()),
            Some(Checksum::Absent) => assert!(!header.has_checksum()),
            other => panic!("{}: checksum verdict {other:?}", header.magic()),
        }
        let again = pass.finish().expect("pass-through finish");
        assert!(again == bytes, "{}: raw pass-through does not reproduce the file", header.magic());
    }
}

/// Why the target cannot hold this key (so `entry` must fail), if it cannot.
fn must_fail(v: &OwnedValue, meta: EntryMeta, target: Header, lossy: bool) -> Option<Unrepresentable> {
    let level = target.redis_level();
    if level < 3
        && !lossy
        && let Some(exp) = meta.expiry
    {
        let ms = exp.as_millis();
        let s = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
        if i32::try_from(s).is_err() {
            return Some(Unrepresentable::KeyExpiryOutOfRange { expire_ms: ms });
        }
    }
    match v {
        OwnedValue::Stream(_) if level < 9 => Some(Unrepresentable::Stream),
        // Metadata an older stream layout does not store (refused unless lossy).
        OwnedValue::Stream(s) if !lossy => {
            let layout = match level {
                11.. => 3,
                10 => 2,
                _ => 1,
            };
            rdbkit::write::encode::stream_losses(s, layout).into_iter().next()
        }
        OwnedValue::Module { .. } if level < 8 => Some(Unrepresentable::Module),
        OwnedValue::ZSet(z) if z.iter().any(|(_, s)| s.is_nan()) => Some(Unrepresentable::NanScore),
        OwnedValue::Hash(f) if !lossy => {
            let ttls: Vec<i64> = f.iter().filter_map(|x| x.2).collect();
            if ttls.is_empty() {
                return None;
            }
            match (target.flavor, target.version) {
                (Flavor::Redis, ..12) => Some(Unrepresentable::FieldTtls),
                (Flavor::Redis, _) => ttls
                    .iter()
                    .find(|e| !(1..=FIELD_EXPIRE_MAX).contains(*e))
                    .map(|&e| Unrepresentable::FieldTtlOutOfRange { expire_ms: e }),
                (Flavor::Valkey, _) => {
                    ttls.iter().find(|e| **e < 0).map(|&e| Unrepresentable::FieldTtlOutOfRange { expire_ms: e })
                }
                _ => Some(Unrepresentable::UnsupportedTarget(target)),
            }
        }
        _ => None,
    }
}

/// What key `k`, accepted by the writer with `dropped` reported, must read back as (before [`canon`] and
/// [`adjust_for_encoding`]).
fn expect(k: &Key, target: Header, dropped: &[Unrepresentable]) -> Expected {
    let level = target.redis_level();
    let expiry = k.meta.expiry.map(|e| {
        let ms = e.as_millis();
        if level >= 3 {
            Expiry::Millis(ms)
        } else {
            let s = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
            Expiry::Seconds(i32::try_from(s).unwrap_or(if s < 0 { i32::MIN } else { i32::MAX }))
        }
    });
    let value = match &k.value {
        OwnedValue::Hash(f) => {
            let storable = |e: i64| match (target.flavor, target.version) {
                // A stored 0 means "no TTL" to Redis: the encoder refuses it as a TTL.
                (Flavor::Redis, 12..) => (1..=FIELD_EXPIRE_MAX).contains(&e),
                (Flavor::Valkey, _) => e >= 0,
                _ => false,
            };
            if f.iter().any(|x| x.2.is_some_and(|e| !storable(e))) {
                assert!(!dropped.is_empty(), "lossy hash write dropped TTLs without saying so");
            }
            OwnedValue::Hash(f.iter().map(|(a, b, e)| (a.clone(), b.clone(), e.filter(|&e| storable(e)))).collect())
        }
        OwnedValue::Stream(s) => OwnedValue::Stream(expected_stream(s, level)),
        other => other.clone(),
    };
    Expected {
        db: k.db,
        key: k.key.clone(),
        value,
        expiry,
        idle: k.meta.idle.filter(|_| level >= 9),
        freq: k.meta.freq.filter(|_| level >= 9),
    }
}

/// The stream as the encoder writes it for a target of feature level `level` (metadata version 1, 2 or 3).
fn expected_stream(s: &OwnedStream, level: u32) -> OwnedStream {
    let version = match level {
        11.. => 3,
        10 => 2,
        _ => 1,
    };
    let v2 = version >= 2;
    let mut groups = s.groups.clone();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    for g in &mut groups {
        g.entries_read = v2.then_some(g.entries_read.unwrap_or(u64::MAX));
        g.pel.sort_by_key(|p| p.id);
        g.consumers.sort_by(|a, b| a.name.cmp(&b.name));
        for c in &mut g.consumers {
            c.active_time = (version >= 3).then_some(c.active_time.unwrap_or(c.seen_time));
            c.pel.sort();
        }
    }
    OwnedStream {
        entries: s.entries.clone(),
        length: s.entries.len() as u64,
        last_id: s.last_id,
        first_id: v2.then(|| s.first_id.unwrap_or(s.entries.first().map(|e| e.id).unwrap_or_default())),
        max_deleted_id: v2.then(|| s.max_deleted_id.unwrap_or_default()),
        entries_added: v2.then(|| s.entries_added.unwrap_or(s.entries.len() as u64)),
        groups,
    }
}

/// What only the chosen encoding loses: hash encodings without TTLs keep none.
fn adjust_for_encoding(v: &OwnedValue, enc: Encoding) -> OwnedValue {
    match v {
        OwnedValue::Hash(f)
            if !matches!(enc, Encoding::HashListpackEx | Encoding::HashMetadata | Encoding::ValkeyHash2) =>
        {
            assert!(f.iter().all(|x| x.2.is_none()), "field TTLs written in a TTL-less encoding {enc:?}");
            v.clone()
        }
        other => other.clone(),
    }
}

/// A comparable form: sets, hashes and sorted sets sorted by member, scores compared bit for bit.
#[derive(Debug, PartialEq)]
enum Canon {
    Other(OwnedValue),
    Set(Vec<Vec<u8>>),
    ZSet(Vec<(Vec<u8>, u64)>),
    Hash(Vec<(Vec<u8>, Vec<u8>, Option<i64>)>),
}

fn canon(v: &OwnedValue) -> Canon {
    match v {
        OwnedValue::Set(m) => {
            let mut m = m.clone();
            m.sort();
            Canon::Set(m)
        }
        OwnedValue::ZSet(z) => {
            let mut z: Vec<_> = z.iter().map(|(m, s)| (m.clone(), s.to_bits())).collect();
            z.sort();
            Canon::ZSet(z)
        }
        OwnedValue::Hash(f) => {
            let mut f = f.clone();
            f.sort();
            Canon::Hash(f)
        }
        other => Canon::Other(other.clone()),
    }
}

// ---- generators ---------------------------------------------------------------------------------------------

/// Encoding thresholds small enough for tiny inputs to cross every boundary.
fn tiny_thresholds(u: &mut Unstructured<'_>) -> AResult<Thresholds> {
    let mut t = Thresholds::default();
    t.hash_max_listpack_entries = u.int_in_range(0..=6)?;
    t.hash_max_listpack_value = u.int_in_range(0..=16)?;
    t.zset_max_listpack_entries = u.int_in_range(0..=6)?;
    t.zset_max_listpack_value = u.int_in_range(0..=16)?;
    t.set_max_intset_entries = u.int_in_range(0..=6)?;
    t.set_max_listpack_entries = u.int_in_range(0..=6)?;
    t.set_max_listpack_value = u.int_in_range(0..=16)?;
    t.list_max_listpack_size = u.int_in_range(-6..=4)?;
    t.list_max_ziplist_entries = u.int_in_range(0..=6)?;
    t.list_max_ziplist_value = u.int_in_range(0..=16)?;
    t.stream_node_max_bytes = u.int_in_range(0..=200)?;
    t.stream_node_max_entries = u.int_in_range(0..=4)?;
    Ok(t)
}

fn small_bytes(u: &mut Unstructured<'_>, max: usize) -> AResult<Vec<u8>> {
    let n = u.int_in_range(0..=max)?;
    Ok(u.bytes(n)?.to_vec())
}

/// A string element: random bytes, integer text, compressible runs (LZF), or sizes around the 8 KiB quicklist
/// node limit.
fn elem(u: &mut Unstructured<'_>) -> AResult<Vec<u8>> {
    // Big elements are rare: they cost far more per run than everything else.
    Ok(match u.int_in_range(0u8..=39)? {
        0..=15 => small_bytes(u, 16)?,
        16..=19 => u.choose(INT_TEXTS)?.as_bytes().to_vec(),
        20..=23 => u.arbitrary::<i64>()?.to_string().into_bytes(),
        24..=27 => i64::from(u.arbitrary::<i16>()?).to_string().into_bytes(),
        28..=32 => {
            let unit = small_bytes(u, 4)?;
            let n = u.int_in_range(1..=80)?;
            unit.repeat(n)
        }
        33..=38 => small_bytes(u, 80)?,
        _ => {
            let len = u.int_in_range(8180..=8200)? + if u.arbitrary()? { 12000 } else { 0 };
            let b: u8 = u.arbitrary()?;
            let mut v = vec![b; len];
            // Some entropy so it does not all compress to nothing.
            let tail = small_bytes(u, 16)?;
            v.extend_from_slice(&tail);
            v
        }
    })
}

fn elems(u: &mut Unstructured<'_>, max: usize) -> AResult<Vec<Vec<u8>>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| elem(u)).collect()
}

/// Keeps the first occurrence of each key.
fn dedup_by<T, K: Eq + std::hash::Hash>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|x| seen.insert(key(x))).collect()
}

fn score(u: &mut Unstructured<'_>) -> AResult<f64> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => *u.choose(SCORES)?,
        1 => f64::from_bits(u.arbitrary()?),
        2 => f64::from(u.arbitrary::<i16>()?),
        _ => f64::from(u.arbitrary::<i16>()?) / 8.0,
    })
}

fn expiry_ms(u: &mut Unstructured<'_>) -> AResult<i64> {
    Ok(if u.arbitrary()? { *u.choose(EXPIRIES)? } else { u.arbitrary()? })
}

fn value(u: &mut Unstructured<'_>) -> AResult<OwnedValue> {
    Ok(match u.int_in_range(0u8..=6)? {
        0 => OwnedValue::String(elem(u)?),
        1 => OwnedValue::List(elems(u, 12)?),
        2 => {
            let mut m = elems(u, 12)?;
            if u.ratio(1, 4)? {
                // Integer members (intsets), with a few non-integers maybe mixed in below.
                let n = u.int_in_range(0..=12)?;
                for _ in 0..n {
                    m.push(i64::from(u.arbitrary::<i32>()?).to_string().into_bytes());
                }
            }
            OwnedValue::Set(dedup_by(m, |x| x.clone()))
        }
        3 => {
            let n = u.int_in_range(0..=10)?;
            let z = (0..n).map(|_| Ok((elem(u)?, score(u)?))).collect::<AResult<Vec<_>>>()?;
            OwnedValue::ZSet(dedup_by(z, |x| x.0.clone()))
        }
        4 => {
            let n = u.int_in_range(0..=10)?;
            let with_ttls = u.arbitrary::<bool>()?;
            let mut f = Vec::new();
            for _ in 0..n {
                let ttl = if with_ttls && u.arbitrary()? {
                    Some(match u.int_in_range(0u8..=2)? {
                        0 => *u.choose(FIELD_TTLS)?,
                        1 => u.arbitrary()?,
                        _ => u.int_in_range(1..=FIELD_EXPIRE_MAX)?,
                    })
                } else {
                    None
                };
                f.push((elem(u)?, elem(u)?, ttl));
            }
            OwnedValue::Hash(dedup_by(f, |x| x.0.clone()))
        }
        5 => OwnedValue::Stream(stream(u)?),
        _ => module(u)?,
    })
}

fn stream_id(u: &mut Unstructured<'_>) -> AResult<StreamId> {
    Ok(StreamId { ms: u.arbitrary()?, seq: u.arbitrary()? })
}

/// A stream Redis could hold: strictly increasing entry IDs with at least one field each, a last ID no smaller
/// than the last entry's, unique group and consumer names, and every pending entry owned by exactly one consumer.
fn stream(u: &mut Unstructured<'_>) -> AResult<OwnedStream> {
    const NAMES: &[&[u8]] = &[b"a", b"b", b"x", b"123", b"-1", b"field"];
    let mut entries: Vec<StreamEntry> = Vec::new();
    let mut id = if u.arbitrary()? {
        StreamId { ms: 1_700_000_000_000, seq: 0 }
    } else {
        StreamId { ms: u.arbitrary::<u64>()? >> 1, seq: u.arbitrary::<u64>()? >> 1 }
    };
    let n = u.int_in_range(0..=12)?;
    for i in 0..n {
        if i > 0 {
            match u.int_in_range(0u8..=3)? {
                0 => id.seq = id.seq.saturating_add(1),
                1 => id.seq = id.seq.saturating_add(u.int_in_range(1..=u64::MAX >> 2)?),
                2 => {
                    id.ms = id.ms.saturating_add(u.int_in_range(1..=1000)?);
                    id.seq = 0;
                }
                _ => {
                    id.ms = id.ms.saturating_add(u.int_in_range(1..=u64::MAX >> 2)?);
                    id.seq = u.arbitrary()?;
                }
            }
            if entries.last().is_some_and(|e| e.id >= id) {
                break;
            }
        }
        let nf = u.int_in_range(1..=4)?;
        let mut fields = Vec::new();
        let same = u.ratio(2, 3)? && !entries.is_empty();
        for j in 0..nf {
            let name = if same { entries[0].fields.get(j).map(|f| f.0.clone()) } else { None };
            let name = match name {
                Some(n) => n,
                None if u.arbitrary()? => u.choose(NAMES)?.to_vec(),
                None => elem(u)?,
            };
            fields.push((name, elem(u)?));
        }
        if same {
            fields.truncate(entries[0].fields.len());
        }
        entries.push(StreamEntry { id, fields });
    }
    let last_id = match entries.last() {
        Some(e) if u.arbitrary()? => e.id,
        Some(e) => {
            let later = stream_id(u)?;
            if later > e.id { later } else { e.id }
        }
        None => stream_id(u)?,
    };
    let mut groups: Vec<OwnedGroup> = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let name = small_bytes(u, 5)?;
        if groups.iter().any(|g| g.name == name) {
            continue;
        }
        let nconsumers = u.int_in_range(0..=3)?;
        let mut ids: Vec<StreamId> = Vec::new();
        if nconsumers > 0 {
            for _ in 0..u.int_in_range(0..=6)? {
                // Pending entries usually name live entries, but may name deleted ones.
                ids.push(match entries.len() {
                    0 => stream_id(u)?,
                    n if u.ratio(4, 5)? => entries[u.int_in_range(0..=n - 1)?].id,
                    _ => stream_id(u)?,
                });
            }
        }
        let ids = dedup_by(ids, |i| *i);
        let mut pel = Vec::new();
        for &id in &ids {
            pel.push(PendingEntry { id, delivery_time: u.arbitrary()?, delivery_count: u.arbitrary()? });
        }
        let mut consumers: Vec<OwnedConsumer> = Vec::new();
        for c in 0..nconsumers {
            let name = if u.arbitrary()? { format!("consumer-{c}").into_bytes() } else { small_bytes(u, 6)? };
            let seen_time = u.arbitrary()?;
            let active_time = if u.arbitrary()? { Some(u.arbitrary()?) } else { None };
            consumers.push(OwnedConsumer { name, seen_time, active_time, pel: Vec::new() });
        }
        let mut consumers = dedup_by(consumers, |c| c.name.clone());
        // Every pending entry goes to exactly one consumer.
        let nc = consumers.len();
        for id in &ids {
            let owner = u.int_in_range(0..=nc - 1)?;
            consumers[owner].pel.push(*id);
        }
        groups.push(OwnedGroup {
            name,
            last_id: if u.arbitrary()? { last_id } else { stream_id(u)? },
            entries_read: if u.arbitrary()? { Some(u.arbitrary()?) } else { None },
            pel,
            consumers,
        });
    }
    let v2 = u.arbitrary::<bool>()?;
    Ok(OwnedStream {
        length: entries.len() as u64,
        first_id: if v2 { Some(entries.first().map(|e| e.id).unwrap_or_default()) } else { None },
        max_deleted_id: if v2 { Some(stream_id(u)?) } else { None },
        entries_added: if v2 { Some((entries.len() as u64).saturating_add(u.int_in_range(0..=5)?)) } else { None },
        entries,
        last_id,
        groups,
    })
}

/// A module value whose payload is a valid opcode sequence ending in EOF.
fn module(u: &mut Unstructured<'_>) -> AResult<OwnedValue> {
    let id: u64 = u.arbitrary()?;
    let (name, encver) = module_name(id);
    let mut payload = Vec::new();
    for _ in 0..u.int_in_range(0..=5)? {
        match u.int_in_range(1u8..=5)? {
            op @ (1 | 2) => {
                encode_length(u64::from(op), &mut payload);
                encode_length(u.arbitrary()?, &mut payload);
            }
            3 => {
                payload.push(3);
                payload.extend_from_slice(&u.arbitrary::<[u8; 4]>()?);
            }
            4 => {
                payload.push(4);
                payload.extend_from_slice(&u.arbitrary::<[u8; 8]>()?);
            }
            _ => {
                payload.push(5);
                let s = elem(u)?;
                encode_raw_str(&s, &mut payload);
            }
        }
    }
    payload.push(0);
    Ok(OwnedValue::Module { id, name, encver, payload })
}
