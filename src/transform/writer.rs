//! [`WriterSink`]: records written into an RDB for one target, passed through or re-encoded, with hints
//! recounted when asked.

use super::*;
use crate::error::{Error, ErrorKind, Result};
use crate::read::{Feature, Record, RecordKind};
use crate::write::encode::Unrepresentable;
use crate::write::{Deferred, EntryMeta, Patch, RdbWriter};
use std::collections::BTreeMap;
use std::io::Write;

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
