//! Record sinks: composable stages between a reader and a writer.
//!
//! A [`RecordSink`] receives parsed records one at a time. Filters ([`DbFilter`], [`KeyFilter`], [`Dedup`])
//! forward what they keep to the next sink and count what they drop; [`WriterSink`] writes records into an RDB
//! (passing raw bytes through when the target can hold them, re-encoding otherwise); [`ClusterSplit`] routes keys
//! to one sink per shard by hash slot. Sinks nest like `io::Write` adapters:
//!
//! ```
//! use rdbkit::read::{Flavor, Header, SliceReader};
//! use rdbkit::transform::{DbFilter, RecordSink, WriterSink, drive};
//! # fn main() -> rdbkit::Result<()> {
//! # let mut input = b"REDIS0011\xfe\x00\x00\x01a\x01x\xfe\x05\x00\x01b\x01y\xff".to_vec();
//! # input.extend_from_slice(&[0; 8]);
//! let writer = WriterSink::new(Vec::new(), Header::new(Flavor::Redis, 11), false)?;
//! let mut sink = DbFilter::limit(writer, 4); // keep databases 0..=3
//! drive(&mut SliceReader::new(&input)?, &mut sink)?;
//! sink.finish()?;
//! assert_eq!(sink.dropped_keys().get(&5), Some(&1));
//! let out = sink.into_inner().into_output().unwrap();
//! assert_eq!(SliceReader::new(&out)?.filter(|r| matches!(r.as_ref().unwrap().kind,
//!     rdbkit::read::RecordKind::Entry(_))).count(), 1);
//! # Ok(()) }
//! ```

pub mod glob;

use crate::cluster::ShardLayout;
use crate::error::{Error, ErrorKind, Result};
use crate::read::{Feature, LogicalType, Record, RecordKind, SliceReader, StreamReader};
use crate::write::encode::Unrepresentable;
use crate::write::{Deferred, EntryMeta, Patch, RdbWriter};
use glob::Glob;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};

/// A stage that receives records.
pub trait RecordSink {
    /// Receives one record (EOF included).
    fn record(&mut self, rec: &Record<'_>) -> Result<()>;
    /// Called once after the last input's EOF: completes outputs.
    fn finish(&mut self) -> Result<()>;
}

impl<S: RecordSink + ?Sized> RecordSink for &mut S {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        (**self).record(rec)
    }
    fn finish(&mut self) -> Result<()> {
        (**self).finish()
    }
}

impl<S: RecordSink + ?Sized> RecordSink for Box<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        (**self).record(rec)
    }
    fn finish(&mut self) -> Result<()> {
        (**self).finish()
    }
}

/// A source of records: the slice and streaming readers.
pub trait RecordSource {
    /// The next record, `None` after EOF.
    fn next_rec(&mut self) -> Result<Option<Record<'_>>>;
}

impl RecordSource for SliceReader<'_> {
    fn next_rec(&mut self) -> Result<Option<Record<'_>>> {
        self.next_record()
    }
}

impl<R: Read> RecordSource for StreamReader<R> {
    fn next_rec(&mut self) -> Result<Option<Record<'_>>> {
        self.next_record()
    }
}

/// Feeds every record of `source` to `sink` (without calling `finish`, so several inputs can be fed in turn).
pub fn drive(source: &mut dyn RecordSource, sink: &mut dyn RecordSink) -> Result<()> {
    while let Some(rec) = source.next_rec()? {
        sink.record(&rec)?;
    }
    Ok(())
}

/// Like [`drive`] over a [`SliceReader`], with the parsing on a second thread: the reader walks the input in
/// batches of records (which borrow from the input, so nothing is copied) while this thread feeds `sink`. With
/// deep validation on, the records are walked without it and validated record by record by whichever thread is
/// less busy — the calling thread just before handing a record to `sink`, or the reading thread when this one
/// falls behind. Records reach `sink` in file order, and a damaged file fails with the same error, after the same
/// records, as with [`drive`]; on a machine with a spare core, a pipeline then runs at about the speed of its
/// slower half instead of the sum of both.
pub fn drive_parallel(reader: &mut SliceReader<'_>, sink: &mut dyn RecordSink) -> Result<()> {
    drive_parallel_with(reader, sink, 2048, Balance::Adaptive)
}

/// [`drive_parallel`] over any walk of records that borrow from bytes outliving it (a buffer of
/// [`crate::read::ChunkedReader`]); the walk's `next_record` returning `None` ends the drive.
pub(crate) fn drive_parallel_walk<'a, W: Walk<'a>>(walk: &mut W, sink: &mut dyn RecordSink) -> Result<()> {
    drive_parallel_with(walk, sink, 2048, Balance::Adaptive)
}

/// What [`drive_parallel`] needs of a reader: records that borrow from bytes outliving the reader (`'a`).
pub(crate) trait Walk<'a>: Send {
    /// The reader's options.
    fn options(&self) -> crate::read::ReadOptions;
    /// The file header.
    fn header(&self) -> crate::read::Header;
    /// Turns deep validation on or off for the records still to come.
    fn set_deep(&mut self, deep: bool);
    /// The current database.
    fn current_db(&self) -> u64;
    /// Stream offset of the next record.
    fn position(&self) -> u64;
    /// The next record, `None` at the end of the walk.
    fn next_record(&mut self) -> Result<Option<Record<'a>>>;
    /// What a deep-validating reader at `pos` (a record start) would return.
    fn deep_next_at(&self, pos: u64) -> Result<Option<Record<'a>>>;
    /// Adds warnings found by deep validation on another thread.
    fn merge_warnings(&mut self, w: crate::read::Warnings);
}

impl<'a> Walk<'a> for SliceReader<'a> {
    fn options(&self) -> crate::read::ReadOptions {
        SliceReader::options(self)
    }
    fn header(&self) -> crate::read::Header {
        SliceReader::header(self)
    }
    fn set_deep(&mut self, deep: bool) {
        SliceReader::set_deep(self, deep)
    }
    fn current_db(&self) -> u64 {
        SliceReader::current_db(self)
    }
    fn position(&self) -> u64 {
        SliceReader::position(self)
    }
    fn next_record(&mut self) -> Result<Option<Record<'a>>> {
        SliceReader::next_record(self)
    }
    fn deep_next_at(&self, pos: u64) -> Result<Option<Record<'a>>> {
        SliceReader::deep_next_at(self, pos)
    }
    fn merge_warnings(&mut self, w: crate::read::Warnings) {
        SliceReader::merge_warnings(self, w)
    }
}

/// Who deep-validates in [`drive_parallel`] (fixed choices exist for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Balance {
    /// The reading thread validates a batch when at least two wait for the sink's thread.
    Adaptive,
    /// The reading thread validates every batch.
    #[cfg(test)]
    Reader,
    /// The sink's thread validates every batch.
    #[cfg(test)]
    Sink,
}

/// Records handed over at once, with the database current before each and whether they are validated.
struct Batch<'a> {
    records: Vec<(Record<'a>, u64)>,
    validated: bool,
}

pub(crate) fn drive_parallel_with<'a, W: Walk<'a>>(
    reader: &mut W,
    sink: &mut dyn RecordSink,
    batch_len: usize,
    balance: Balance,
) -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{channel, sync_channel};
    let opts = reader.options();
    let deep = opts.deep;
    let header = reader.header();
    reader.set_deep(false);
    let waiting = AtomicUsize::new(0);
    // Warnings only deep validation finds, from the records validated on either thread (the walk's own are in
    // the reader).
    let deep_warnings = std::sync::Mutex::new(crate::read::Warnings::default());
    /// Hands a [`crate::read::DeepCheck`]'s warnings over when its thread is done with it.
    struct Handover<'m>(Option<crate::read::DeepCheck>, &'m std::sync::Mutex<crate::read::Warnings>);
    impl Drop for Handover<'_> {
        fn drop(&mut self) {
            if let (Some(c), Ok(mut w)) = (self.0.as_mut(), self.1.lock()) {
                w.merge(c.take_warnings());
            }
        }
    }
    let deep_warnings = &deep_warnings;
    let result = std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<Result<Batch<'a>>>(4);
        let (empty_tx, empty_rx) = channel::<Batch<'a>>();
        let waiting = &waiting;
        let reader = &mut *reader;
        scope.spawn(move || {
            let mut handover = Handover(deep.then(|| crate::read::DeepCheck::new(header, opts)), deep_warnings);
            let check = &mut handover.0;
            let send = |b| {
                waiting.fetch_add(1, Ordering::Relaxed);
                full_tx.send(b).is_ok()
            };
            loop {
                let mut batch = empty_rx.try_recv().unwrap_or_else(|_| Batch { records: Vec::new(), validated: false });
                batch.records.reserve(batch_len);
                batch.validated = false;
                let mut outcome = Ok(false);
                while batch.records.len() < batch_len {
                    let (db, at) = (reader.current_db(), reader.position());
                    match reader.next_record() {
                        Ok(Some(rec)) => batch.records.push((rec, db)),
                        Ok(None) => {
                            outcome = Ok(true);
                            break;
                        }
                        // What a deep reader would have said at this record (it may find a problem before the
                        // one the walk stopped at).
                        Err(e) if deep => {
                            outcome = Err(reader.deep_next_at(at).err().unwrap_or(e));
                            break;
                        }
                        Err(e) => {
                            outcome = Err(e);
                            break;
                        }
                    }
                }
                let validate_here = match balance {
                    Balance::Adaptive => waiting.load(Ordering::Relaxed) >= 2,
                    #[cfg(test)]
                    Balance::Reader => true,
                    #[cfg(test)]
                    Balance::Sink => false,
                };
                if let Some(check) = check.as_mut()
                    && validate_here
                {
                    if let Some((i, e)) = batch
                        .records
                        .iter()
                        .enumerate()
                        .find_map(|(i, (r, db))| check.check(r, *db).err().map(|e| (i, e)))
                    {
                        batch.records.truncate(i);
                        batch.validated = true;
                        if !batch.records.is_empty() {
                            send(Ok(batch));
                        }
                        send(Err(e));
                        return;
                    }
                    batch.validated = true;
                }
                let at_end = match outcome {
                    Ok(at_end) => at_end,
                    Err(e) => {
                        if !batch.records.is_empty() {
                            send(Ok(batch));
                        }
                        send(Err(e));
                        return;
                    }
                };
                // A closed channel means the sink failed: stop reading.
                if (!batch.records.is_empty() && !send(Ok(batch))) || at_end {
                    return;
                }
            }
        });
        let mut handover = Handover(deep.then(|| crate::read::DeepCheck::new(header, opts)), deep_warnings);
        let check = &mut handover.0;
        for msg in full_rx.iter() {
            waiting.fetch_sub(1, Ordering::Relaxed);
            let mut batch = msg?;
            for (rec, db) in &batch.records {
                if !batch.validated
                    && let Some(check) = check.as_mut()
                {
                    check.check(rec, *db)?;
                }
                sink.record(rec)?;
            }
            batch.records.clear();
            let _ = empty_tx.send(batch);
        }
        Ok(())
    });
    reader.set_deep(deep);
    if let Ok(mut w) = deep_warnings.lock() {
        reader.merge_warnings(std::mem::take(&mut *w));
    }
    result
}

/// Something a conversion or filter left out, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dropped {
    /// Database, when the dropped thing belongs to one.
    pub db: Option<u64>,
    /// Key, when a key (or part of one) was dropped.
    pub key: Option<Vec<u8>>,
    /// What was dropped and why.
    pub what: String,
}

/// Writes records into an RDB for one target: raw pass-through when the record's encoding is valid there,
/// otherwise decoded and re-encoded. What the target cannot hold is an error, or with `lossy` dropped and listed.
pub struct WriterSink<W: Write> {
    writer: Option<RdbWriter<W>>,
    output: Option<W>,
    checksum: Option<u64>,
    lossy: bool,
    modules: Option<Vec<String>>,
    keys: BTreeMap<u64, u64>,
    re_encoded: u64,
    dropped: Vec<Dropped>,
    recount: Option<Box<Recount>>,
    /// How [`RecordSink::finish`] overwrites placeholders already written out (set with the recount, where `W`
    /// is known to patch): a sink never hands back an output whose checksum covers bytes it has not written.
    overwrite: Option<Overwrite<W>>,
}

/// Overwrites bytes already written to an output: [`crate::io::FinishWrite::patch`] of the sink's writer type.
type Overwrite<W> = fn(&mut W, &Patch) -> std::io::Result<()>;

/// One slot's deferred SLOT_INFO record, keys, and keys with an expiry.
type SlotTally = (Option<Deferred>, u64, u64);

/// Hints recounted from the keys a [`WriterSink`] writes: deferred records and their counts.
#[derive(Default)]
struct Recount {
    slot_info: bool,
    /// Per database: its deferred RESIZEDB records, keys, keys with an expiry.
    dbs: BTreeMap<u64, (Vec<Deferred>, u64, u64)>,
    /// Per database and slot (SLOT_INFO targets only).
    slots: BTreeMap<u64, Box<[SlotTally]>>,
}

impl Recount {
    /// Before a key is written: writes a placeholder SLOT_INFO if this is the first key of its slot in the
    /// database. Returns the slot when slots are counted.
    fn before_key<W: Write>(&mut self, writer: &mut RdbWriter<W>, key: &[u8]) -> Result<Option<u16>> {
        if !self.slot_info {
            return Ok(None);
        }
        let slot = crate::cluster::key_hash_slot(key);
        let db = writer.current_db().unwrap_or(0);
        let table = self
            .slots
            .entry(db)
            .or_insert_with(|| vec![(None, 0, 0); usize::from(crate::cluster::SLOTS)].into_boxed_slice());
        let entry = &mut table[usize::from(slot)];
        if entry.0.is_none() {
            entry.0 = writer.defer_slot_info(slot)?;
        }
        Ok(Some(slot))
    }

    /// After a key was written.
    fn count(&mut self, db: u64, slot: Option<u16>, has_expiry: bool) {
        let d = self.dbs.entry(db).or_default();
        d.1 += 1;
        d.2 += u64::from(has_expiry);
        if let Some(slot) = slot
            && let Some(table) = self.slots.get_mut(&db)
        {
            let e = &mut table[usize::from(slot)];
            e.1 += 1;
            e.2 += u64::from(has_expiry);
        }
    }

    /// Sets every deferred record's counts.
    fn fill<W: Write>(&self, writer: &mut RdbWriter<W>) {
        for (defers, keys, expires) in self.dbs.values() {
            for d in defers {
                writer.fill(*d, *keys, *expires);
            }
        }
        for table in self.slots.values() {
            for (d, keys, expires) in table.iter() {
                if let Some(d) = d {
                    writer.fill(*d, *keys, *expires);
                }
            }
        }
    }
}

impl<W: Write> WriterSink<W> {
    /// A sink writing `header`'s format to `out`.
    pub fn new(out: W, header: crate::read::Header, lossy: bool) -> Result<Self> {
        let mut opts = crate::write::WriterOptions::default();
        opts.encode.lossy = lossy;
        Ok(Self::from_writer(RdbWriter::with_options(out, header, opts)?, lossy))
    }

    /// A sink around a configured writer.
    pub fn from_writer(writer: RdbWriter<W>, lossy: bool) -> Self {
        WriterSink {
            writer: Some(writer),
            output: None,
            checksum: None,
            lossy,
            modules: None,
            keys: BTreeMap::new(),
            re_encoded: 0,
            dropped: Vec::new(),
            recount: None,
            overwrite: None,
        }
    }

    /// Declares which module types the target has: values and AUX data of other modules are refused (or,
    /// lossy, dropped). `None` (the default) checks nothing.
    pub fn with_modules(mut self, modules: Option<Vec<String>>) -> Self {
        self.modules = modules;
        self
    }

    fn module_missing(&self, id: u64) -> Option<String> {
        let name = crate::read::module::module_name(id).0;
        self.modules.as_ref().is_some_and(|m| !m.contains(&name)).then_some(name)
    }

    fn writer(&mut self) -> Result<&mut RdbWriter<W>> {
        self.writer.as_mut().ok_or_else(finished)
    }

    /// Keys written per database.
    pub fn keys_per_db(&self) -> &BTreeMap<u64, u64> {
        &self.keys
    }

    /// Number of keys that had to be re-encoded.
    pub fn re_encoded(&self) -> u64 {
        self.re_encoded
    }

    /// What a lossy conversion dropped.
    pub fn dropped(&self) -> &[Dropped] {
        &self.dropped
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.bytes_written())
    }

    /// The CRC-64 stored in the footer, after [`RecordSink::finish`] (`None` before RDB 5).
    pub fn checksum(&self) -> Option<u64> {
        self.checksum
    }

    /// The output, after [`RecordSink::finish`].
    pub fn into_output(self) -> Option<W> {
        self.output
    }

    /// The output, after [`RecordSink::finish`].
    pub fn output_mut(&mut self) -> Option<&mut W> {
        self.output.as_mut()
    }
}

impl<W: crate::io::FinishWrite> WriterSink<W> {
    /// Writes hints recounted from the keys actually written instead of passing the input's through: a RESIZEDB
    /// after each SELECTDB and, with `slot_info`, a SLOT_INFO before the first key of each hash slot (where the
    /// target has SLOT_INFO: Redis RDB ≥ 12). Useful whenever the input's hints do not describe the output: a
    /// split shard, a filtered or merged copy.
    ///
    /// The counts are only known at the end, so the records are written as fixed-width placeholders and
    /// [`RecordSink::finish`] fills them in: in the writer's buffer, or through
    /// [`FinishWrite::patch`](crate::io::FinishWrite::patch) once they have reached the output. The output
    /// [`into_output`](WriterSink::into_output) hands back is therefore complete, checksum included.
    ///
    /// Fails with [`ErrorKind::Invalid`] when the output [cannot patch](crate::io::FinishWrite::can_patch) (a
    /// pipe, a gzip stream): count the keys first and write exact hints instead (as [`ClusterSplit`] does
    /// with [`shard_hints`]).
    pub fn recounting_hints(mut self, slot_info: bool) -> Result<Self> {
        let writer = self.writer.as_ref().ok_or_else(finished)?;
        if !writer.get_ref().can_patch() {
            return Err(Error::without_offset(ErrorKind::Invalid(
                "recounted hints need an output that can overwrite what it wrote (a file or a buffer)".into(),
            )));
        }
        // Hash slots are only worth computing where SLOT_INFO will be written.
        let h = writer.header();
        let takes_slot_info = h.flavor == crate::read::Flavor::Redis && h.version >= 12;
        self.recount = Some(Box::new(Recount { slot_info: slot_info && takes_slot_info, ..Recount::default() }));
        self.overwrite = Some(|out, p| out.patch(p.offset, &p.old, &p.new));
        Ok(self)
    }
}

impl<W: Write> RecordSink for WriterSink<W> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        let lossy = self.lossy;
        let header = self.writer()?.header();
        match rec.kind {
            RecordKind::Entry(e) => {
                // Only module values need the check (and `module()` on anything else builds an error).
                if e.value.encoding == crate::read::Encoding::Module2
                    && self.modules.is_some()
                    && let Ok((id, _)) = e.value.module()
                    && let Some(name) = self.module_missing(id)
                {
                    let key = e.key.decode()?;
                    if !lossy {
                        return Err(Error::unrepresentable(Unrepresentable::MissingModule(name), header)
                            .at(rec.offset)
                            .in_db(e.db)
                            .for_key(&key));
                    }
                    self.dropped.push(Dropped {
                        db: Some(e.db),
                        key: Some(key.into_owned()),
                        what: format!("whole key: module value of {name} (the target lacks the module)"),
                    });
                    return Ok(());
                }
                let slot = match self.recount.as_mut() {
                    Some(r) if r.slot_info => {
                        let writer = self.writer.as_mut().ok_or_else(finished)?;
                        r.before_key(writer, &e.key.decode()?)?
                    }
                    _ => None,
                };
                if e.value.encoding.allowed_in(header) {
                    self.writer()?.raw_record(rec)?;
                } else {
                    let key = e.key.decode()?;
                    let value = e.value.to_owned_value().map_err(|err| err.in_db(e.db).for_key(&key))?;
                    let meta = EntryMeta { expiry: e.expiry, idle: e.idle, freq: e.freq };
                    match self.writer()?.entry(&key, &value, meta) {
                        Ok(dropped) => {
                            self.re_encoded += 1;
                            for d in dropped {
                                self.dropped.push(Dropped {
                                    db: Some(e.db),
                                    key: Some(key.to_vec()),
                                    what: format!("part of the value (the key is kept): {d}"),
                                });
                            }
                        }
                        Err(err) if lossy && matches!(err.kind(), ErrorKind::Unrepresentable { .. }) => {
                            self.dropped.push(Dropped {
                                db: Some(e.db),
                                key: Some(key.to_vec()),
                                what: format!("whole key: {}", err.kind()),
                            });
                            return Ok(());
                        }
                        Err(err) => return Err(err.in_db(e.db)),
                    }
                }
                *self.keys.entry(e.db).or_default() += 1;
                if let Some(r) = self.recount.as_mut() {
                    let db = self.writer.as_ref().and_then(|w| w.current_db()).unwrap_or(0);
                    r.count(db, slot, e.expiry.is_some());
                }
                Ok(())
            }
            RecordKind::ResizeDb { .. } | RecordKind::SlotInfo { .. } if self.recount.is_some() => Ok(()),
            RecordKind::SelectDb { db } if self.recount.is_some() => {
                let writer = self.writer.as_mut().ok_or_else(finished)?;
                writer.raw_record(rec)?;
                let deferred = writer.defer_resize_db()?;
                if let (Some(r), Some(d)) = (self.recount.as_mut(), deferred) {
                    r.dbs.entry(db).or_default().0.push(d);
                }
                Ok(())
            }
            RecordKind::Function { code } if !header.supports(Feature::Functions) => {
                if lossy {
                    let code = code.decode()?;
                    let name = crate::read::function_name(&code).unwrap_or_default();
                    self.dropped.push(Dropped { db: None, key: None, what: format!("function library {name:?}") });
                    Ok(())
                } else {
                    Err(Error::unrepresentable(Unrepresentable::Lacks(Feature::Functions), header))
                }
            }
            RecordKind::ModuleAux(aux)
                if !header.supports(Feature::ModuleAux) || self.module_missing(aux.module_id).is_some() =>
            {
                let name = aux.name().0;
                if lossy {
                    self.dropped.push(Dropped { db: None, key: None, what: format!("module aux of {name}") });
                    Ok(())
                } else if !header.supports(Feature::ModuleAux) {
                    Err(Error::unrepresentable(Unrepresentable::Lacks(Feature::ModuleAux), header))
                } else {
                    Err(Error::unrepresentable(Unrepresentable::MissingModule(name), header))
                }
            }
            _ => self.writer()?.raw_record(rec),
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(mut w) = self.writer.take() {
            if let Some(r) = self.recount.as_mut() {
                r.fill(&mut w);
            }
            let (mut out, checksum, patches) = w.finish_deferred()?;
            if !patches.is_empty() {
                // Placeholders only exist with a recount, and a recount comes with its way to overwrite them.
                let overwrite = self.overwrite.ok_or_else(|| {
                    Error::without_offset(ErrorKind::Invalid("deferred counts without a way to fill them".into()))
                })?;
                for p in &patches {
                    overwrite(&mut out, p)?;
                }
            }
            self.output = Some(out);
            self.checksum = checksum;
        }
        Ok(())
    }
}

fn finished() -> Error {
    Error::without_offset(ErrorKind::Invalid("sink already finished".into()))
}

/// Which databases to keep and where to put them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbRules {
    /// Keep only databases whose (remapped) index is below this (a server's `databases` setting).
    pub limit: Option<u64>,
    /// Keep only this source database.
    pub only: Option<u64>,
    /// Move source database → target database.
    pub moves: BTreeMap<u64, u64>,
}

impl DbRules {
    /// The target database for source `db`, or `None` if it is dropped.
    pub fn map(&self, db: u64) -> Option<u64> {
        if self.only.is_some_and(|o| o != db) {
            return None;
        }
        let target = self.moves.get(&db).copied().unwrap_or(db);
        if self.limit.is_some_and(|l| target >= l) {
            return None;
        }
        Some(target)
    }
}

/// Keeps, drops and renumbers databases; counts the keys it drops per source database.
pub struct DbFilter<S> {
    next: S,
    rules: DbRules,
    keeping: bool,
    buf: Vec<u8>,
    dropped: BTreeMap<u64, u64>,
}

impl<S: RecordSink> DbFilter<S> {
    /// A filter with the given rules.
    pub fn new(next: S, rules: DbRules) -> Self {
        DbFilter { next, keeping: rules.map(0).is_some(), rules, buf: Vec::new(), dropped: BTreeMap::new() }
    }

    /// Keeps databases `0..limit`.
    pub fn limit(next: S, limit: u64) -> Self {
        Self::new(next, DbRules { limit: Some(limit), ..DbRules::default() })
    }

    /// Keys dropped, per source database.
    pub fn dropped_keys(&self) -> &BTreeMap<u64, u64> {
        &self.dropped
    }

    /// The next sink.
    pub fn inner(&self) -> &S {
        &self.next
    }

    /// The next sink.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.next
    }

    /// Consumes the filter, returning the next sink.
    pub fn into_inner(self) -> S {
        self.next
    }
}

impl<S: RecordSink> RecordSink for DbFilter<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        match rec.kind {
            RecordKind::SelectDb { db } => match self.rules.map(db) {
                Some(target) => {
                    self.keeping = true;
                    if target == db {
                        self.next.record(rec)
                    } else {
                        crate::format::opcode::select_db_record(target, &mut self.buf);
                        let synth =
                            Record { offset: rec.offset, raw: &self.buf, kind: RecordKind::SelectDb { db: target } };
                        self.next.record(&synth)
                    }
                }
                None => {
                    self.keeping = false;
                    Ok(())
                }
            },
            RecordKind::Entry(e) => {
                if self.rules.map(e.db).is_some() {
                    self.next.record(rec)
                } else {
                    *self.dropped.entry(e.db).or_default() += 1;
                    Ok(())
                }
            }
            RecordKind::ResizeDb { .. } | RecordKind::SlotInfo { .. } if !self.keeping => Ok(()),
            _ => self.next.record(rec),
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
}

/// Why a key filter dropped a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyFilterCounts {
    /// Keys not matching the glob.
    pub pattern: u64,
    /// Keys of another type.
    pub r#type: u64,
    /// Keys already expired at the reference time.
    pub expired: u64,
}

/// Keeps keys matching a glob, of given types, and not expired at a reference time.
pub struct KeyFilter<S> {
    next: S,
    glob: Option<Glob>,
    types: Option<Vec<LogicalType>>,
    expired_before_ms: Option<i64>,
    counts: KeyFilterCounts,
}

impl<S: RecordSink> KeyFilter<S> {
    /// A filter that keeps everything until configured.
    pub fn new(next: S) -> Self {
        KeyFilter { next, glob: None, types: None, expired_before_ms: None, counts: KeyFilterCounts::default() }
    }

    /// Keeps only keys matching the Redis glob `pattern`.
    pub fn matching(mut self, pattern: &[u8]) -> Self {
        self.glob = Some(Glob::new(pattern));
        self
    }

    /// Keeps only keys of these types.
    pub fn of_types(mut self, types: Vec<LogicalType>) -> Self {
        self.types = Some(types);
        self
    }

    /// Drops keys whose expiry is at or before `now_ms` (as a loading master would).
    pub fn drop_expired_at(mut self, now_ms: i64) -> Self {
        self.expired_before_ms = Some(now_ms);
        self
    }

    /// What was dropped, by reason.
    pub fn counts(&self) -> KeyFilterCounts {
        self.counts
    }

    /// The next sink.
    pub fn inner(&self) -> &S {
        &self.next
    }

    /// Consumes the filter, returning the next sink.
    pub fn into_inner(self) -> S {
        self.next
    }
}

impl<S: RecordSink> RecordSink for KeyFilter<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        if let RecordKind::Entry(e) = rec.kind {
            if let Some(now) = self.expired_before_ms
                && e.expiry.is_some_and(|x| x.as_millis() <= now)
            {
                self.counts.expired += 1;
                return Ok(());
            }
            if let Some(types) = &self.types
                && !types.contains(&e.value.logical_type())
            {
                self.counts.r#type += 1;
                return Ok(());
            }
            if let Some(g) = &self.glob
                && !g.matches(&e.key.decode()?)
            {
                self.counts.pattern += 1;
                return Ok(());
            }
        }
        self.next.record(rec)
    }

    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
}

/// What to do when a key appears twice in the same database (several inputs merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnDuplicate {
    /// Fail, naming the key (Redis refuses such a file).
    #[default]
    Error,
    /// Keep the first occurrence.
    First,
}

/// Makes a merge of several inputs loadable: one copy of each key per database (policy for duplicates), each
/// AUX field once, each function library once (the same name with different code is an error), and no RESIZEDB
/// hints (they would be wrong for the merged data; they are optional).
pub struct Dedup<S> {
    next: S,
    active: bool,
    policy: OnDuplicate,
    keys: HashSet<(u64, Vec<u8>)>,
    aux: HashSet<Vec<u8>>,
    functions: HashMap<String, Vec<u8>>,
    duplicates: u64,
}

impl<S: RecordSink> Dedup<S> {
    /// A merge guard with the duplicate-key policy.
    pub fn new(next: S, policy: OnDuplicate) -> Self {
        Dedup {
            next,
            active: true,
            policy,
            keys: HashSet::new(),
            aux: HashSet::new(),
            functions: HashMap::new(),
            duplicates: 0,
        }
    }

    /// A guard that forwards everything unchanged (a single input needs no deduplication, and then no memory
    /// per key is spent).
    pub fn inactive(next: S) -> Self {
        let mut d = Self::new(next, OnDuplicate::Error);
        d.active = false;
        d
    }

    /// Number of duplicate keys skipped.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The next sink.
    pub fn inner(&self) -> &S {
        &self.next
    }

    /// Consumes the guard, returning the next sink.
    pub fn into_inner(self) -> S {
        self.next
    }
}

impl<S: RecordSink> RecordSink for Dedup<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        if !self.active {
            return self.next.record(rec);
        }
        match rec.kind {
            RecordKind::Entry(e) => {
                let key = e.key.decode()?.into_owned();
                if !self.keys.insert((e.db, key)) {
                    return match self.policy {
                        OnDuplicate::First => {
                            self.duplicates += 1;
                            Ok(())
                        }
                        OnDuplicate::Error => {
                            Err(Error::new(ErrorKind::Invalid("duplicate key in the merged inputs".into()), rec.offset)
                                .in_db(e.db)
                                .for_key(&e.key.decode()?))
                        }
                    };
                }
                self.next.record(rec)
            }
            RecordKind::Aux { key, .. } => {
                if self.aux.insert(key.decode()?.into_owned()) {
                    self.next.record(rec)
                } else {
                    Ok(())
                }
            }
            RecordKind::Function { code } => {
                let code = code.decode()?;
                let name = crate::read::function_name(&code).unwrap_or_default();
                match self.functions.get(&name) {
                    Some(prev) if prev.as_slice() == code.as_ref() => Ok(()),
                    Some(_) => Err(Error::new(
                        ErrorKind::Invalid(format!("function library {name:?} differs between inputs")),
                        rec.offset,
                    )),
                    None => {
                        self.functions.insert(name, code.into_owned());
                        self.next.record(rec)
                    }
                }
            }
            RecordKind::ResizeDb { .. } => Ok(()),
            _ => self.next.record(rec),
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
}

/// Per-shard key counts, gathered by a first pass so each shard's RESIZEDB and SLOT_INFO hints are exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardHints {
    /// Keys in database 0 of the shard.
    pub keys: u64,
    /// Of which with an expiry.
    pub expires: u64,
    /// Per slot: keys and keys with an expiry.
    pub slots: BTreeMap<u16, (u64, u64)>,
}

/// Keys (and keys with an expiry) per hash slot, counted in a flat table while a file is walked.
#[derive(Debug, Clone)]
pub struct SlotCounts(Box<[(u64, u64)]>);

impl Default for SlotCounts {
    fn default() -> Self {
        SlotCounts(vec![(0, 0); usize::from(crate::cluster::SLOTS)].into_boxed_slice())
    }
}

impl SlotCounts {
    /// Counts `key`.
    pub fn add(&mut self, key: &[u8], has_expiry: bool) {
        let c = &mut self.0[usize::from(crate::cluster::key_hash_slot(key))];
        c.0 += 1;
        c.1 += u64::from(has_expiry);
    }

    /// The per-shard hints for `layout`.
    pub fn hints(&self, layout: &ShardLayout) -> Vec<ShardHints> {
        let mut hints = vec![ShardHints::default(); layout.len()];
        for (slot, &(k, x)) in self.0.iter().enumerate() {
            if k == 0 {
                continue;
            }
            let slot = slot as u16;
            if let Some(i) = layout.shard_of_slot(slot) {
                let h = &mut hints[i];
                h.keys += k;
                h.expires += x;
                h.slots.insert(slot, (k, x));
            }
        }
        hints
    }
}

/// Counts keys per shard (database 0 only) for [`ClusterSplit`]'s hints.
pub fn shard_hints(source: &mut dyn RecordSource, layout: &ShardLayout) -> Result<Vec<ShardHints>> {
    let mut counts = SlotCounts::default();
    while let Some(rec) = source.next_rec()? {
        if let RecordKind::Entry(e) = rec.kind
            && e.db == 0
        {
            counts.add(&e.key.decode()?, e.expiry.is_some());
        }
    }
    Ok(counts.hints(layout))
}

/// Routes keys of database 0 to one sink per shard by hash slot; every shard gets the AUX fields, function
/// libraries and module AUX records, so each is a complete RDB. Keys in other databases are counted and dropped
/// (a cluster has database 0 only).
pub struct ClusterSplit<S> {
    layout: ShardLayout,
    shards: Vec<S>,
    hints: Option<Vec<ShardHints>>,
    db: u64,
    opened: Vec<bool>,
    keys: Vec<u64>,
    dropped: BTreeMap<u64, u64>,
    buf: Vec<u8>,
}

impl<S: RecordSink> ClusterSplit<S> {
    /// A splitter over `shards` (one sink per shard of `layout`, in order). With `hints` (from
    /// [`shard_hints`]), each shard gets exact RESIZEDB and, for Redis ≥ 7.4 targets, SLOT_INFO records. Without,
    /// it writes none: give the shards [`WriterSink::recounting_hints`] to have them counted while writing, in
    /// one pass.
    pub fn new(layout: ShardLayout, shards: Vec<S>, hints: Option<Vec<ShardHints>>) -> Result<Self> {
        if shards.len() != layout.len() || hints.as_ref().is_some_and(|h| h.len() != layout.len()) {
            return Err(Error::without_offset(ErrorKind::Invalid(format!(
                "{} shard outputs for a layout of {} shards",
                shards.len(),
                layout.len()
            ))));
        }
        let n = shards.len();
        Ok(ClusterSplit {
            layout,
            shards,
            hints,
            db: 0,
            opened: vec![false; n],
            keys: vec![0; n],
            dropped: BTreeMap::new(),
            buf: Vec::new(),
        })
    }

    /// Keys routed to each shard.
    pub fn keys_per_shard(&self) -> &[u64] {
        &self.keys
    }

    /// Keys dropped because they are not in database 0, per database.
    pub fn dropped_keys(&self) -> &BTreeMap<u64, u64> {
        &self.dropped
    }

    /// The shard sinks.
    pub fn shards(&self) -> &[S] {
        &self.shards
    }

    /// The layout.
    pub fn layout(&self) -> &ShardLayout {
        &self.layout
    }

    /// Consumes the splitter, returning the shard sinks.
    pub fn into_shards(self) -> Vec<S> {
        self.shards
    }

    /// Writes SELECTDB 0 (and hints) to shard `i` before its first key.
    fn open(&mut self, i: usize, offset: u64) -> Result<()> {
        crate::format::opcode::select_db_record(0, &mut self.buf);
        let rec = Record { offset, raw: &self.buf, kind: RecordKind::SelectDb { db: 0 } };
        self.shards[i].record(&rec)?;
        if let Some(h) = self.hints.as_ref().map(|h| h[i].clone()) {
            crate::format::opcode::resize_db_record(h.keys, h.expires, &mut self.buf);
            let rec = Record {
                offset,
                raw: &self.buf,
                kind: RecordKind::ResizeDb { db_size: h.keys, expires_size: h.expires },
            };
            self.shards[i].record(&rec)?;
            for (slot, (k, x)) in &h.slots {
                crate::format::opcode::slot_info_record(u64::from(*slot), *k, *x, &mut self.buf);
                let rec = Record {
                    offset,
                    raw: &self.buf,
                    kind: RecordKind::SlotInfo { slot: u64::from(*slot), size: *k, expires_size: *x },
                };
                self.shards[i].record(&rec)?;
            }
        }
        self.opened[i] = true;
        Ok(())
    }
}

impl<S: RecordSink> RecordSink for ClusterSplit<S> {
    fn record(&mut self, rec: &Record<'_>) -> Result<()> {
        match rec.kind {
            RecordKind::SelectDb { db } => {
                self.db = db;
                Ok(())
            }
            // Hints are per shard: recomputed in `open` from the first pass, or left out.
            RecordKind::ResizeDb { .. } | RecordKind::SlotInfo { .. } => Ok(()),
            RecordKind::Entry(e) => {
                if e.db != 0 {
                    *self.dropped.entry(e.db).or_default() += 1;
                    return Ok(());
                }
                let key = e.key.decode()?;
                let i = self.layout.shard_of(&key);
                if !self.opened[i] {
                    self.open(i, rec.offset)?;
                }
                self.keys[i] += 1;
                self.shards[i].record(rec)
            }
            _ => {
                for s in &mut self.shards {
                    s.record(rec)?;
                }
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        for s in &mut self.shards {
            s.finish()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::ReadOptions;

    /// What a sink was given, and how the drive ended.
    #[derive(Default)]
    struct Seen(Vec<(u64, usize)>);

    impl RecordSink for Seen {
        fn record(&mut self, rec: &Record<'_>) -> Result<()> {
            self.0.push((rec.offset, rec.raw.len()));
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// The records seen (offset, length) and the error message ("" when none).
    fn serial(data: &[u8], opts: ReadOptions) -> Option<(Vec<(u64, usize)>, String)> {
        let mut r = SliceReader::with_options(data, opts).ok()?;
        let mut seen = Seen::default();
        let res = drive(&mut r, &mut seen).map_err(|e| e.to_string());
        Some((seen.0, res.err().unwrap_or_default()))
    }

    fn parallel(data: &[u8], opts: ReadOptions, batch: usize, balance: Balance) -> (Vec<(u64, usize)>, String) {
        let mut r = SliceReader::with_options(data, opts).unwrap();
        let mut seen = Seen::default();
        let res = drive_parallel_with(&mut r, &mut seen, batch, balance).map_err(|e| e.to_string());
        assert_eq!(r.options(), opts, "the reader's options are restored");
        (seen.0, res.err().unwrap_or_default())
    }

    /// Deep validation shared between the threads, in every arrangement, reports exactly what one deep reader
    /// does: on every fixture, cut short, and with bytes flipped (which mostly breaks deep invariants only).
    #[test]
    fn parallel_deep_validation_matches_the_serial_reader() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
            .collect();
        files.sort();
        assert!(files.len() >= 4);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut cases = 0;
        for path in files {
            let data = std::fs::read(&path).unwrap();
            let mut variants = vec![data.clone(), data[..data.len() / 2].to_vec()];
            for _ in 0..24 {
                let mut v = data.clone();
                let at = 9 + (next() as usize) % (v.len() - 9);
                v[at] ^= 1 << (next() % 8);
                variants.push(v);
            }
            for v in &variants {
                for opts in
                    [ReadOptions::default(), ReadOptions { deep: true, verify_checksum: false, duplicate_keys: true }]
                {
                    let Some((want_seen, want)) = serial(v, opts) else { continue };
                    for balance in [Balance::Reader, Balance::Sink, Balance::Adaptive] {
                        for batch in [1, 64] {
                            let (seen, got) = parallel(v, opts, batch, balance);
                            assert_eq!(got, want, "{}: {balance:?}, batch {batch}", path.display());
                            assert_eq!(seen, want_seen, "{}: {balance:?}, batch {batch}", path.display());
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert!(cases > 500);
    }
}
