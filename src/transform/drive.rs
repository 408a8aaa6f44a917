//! Driving a reader into a sink: on this thread ([`drive`]), or parsed on a second one with deep validation
//! shared between the two ([`drive_parallel`]).

use super::*;
use crate::error::Result;
use crate::read::{Record, SliceReader};

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
