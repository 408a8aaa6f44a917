//! Writing RDB files: [`RdbWriter`] turns records into bytes for one target (magic + version), streaming, and
//! appends EOF and the CRC-64 in [`RdbWriter::finish`].
//!
//! Records read by this crate can be passed through untouched ([`RdbWriter::raw_record`]) when their encoding is
//! valid for the target — reading a file and writing every record through at the same version reproduces it
//! byte for byte — or re-encoded from their decoded form ([`RdbWriter::entry`]) with the encodings Redis would
//! choose for the target version (see [`encode`]).

pub mod encode;

use crate::error::{Error, ErrorKind, Result};
use crate::format::crc::{Crc64, Crc64Kind};
use crate::format::length::encode_length;
use crate::format::lzf::Compressor;
use crate::format::opcode;
use crate::format::string::{Compression, encode_str};
use crate::read::module::ModuleAux;
use crate::read::{Encoding, Expiry, Feature, Flavor, Header, OwnedValue, Record, RecordKind};
use encode::{EncodeOptions, Encoder, Unrepresentable};
use std::io::Write;

/// Whether the footer carries a real checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChecksumMode {
    /// Compute and store the CRC-64 (RDB ≥ 5).
    Compute,
    /// Store 0, "checksum disabled", as Redis does with `rdbchecksum no`.
    Disabled,
}

/// Options of an [`RdbWriter`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WriterOptions {
    /// Value encoding options (thresholds, compression, lossy conversion).
    pub encode: EncodeOptions,
    /// Store 0 instead of the CRC-64 (only for reproducing files written with `rdbchecksum no`).
    pub checksum_disabled: bool,
}

/// A RESIZEDB or SLOT_INFO record written with placeholder counts by [`RdbWriter::defer_resize_db`] or
/// [`RdbWriter::defer_slot_info`]; [`RdbWriter::fill`] sets its counts before the writer finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferred(usize);

/// Bytes of a finished output to overwrite: counts filled in after their placeholder had already been written
/// out. [`RdbWriter::finish_deferred`] returns them; apply each with [`crate::io::FinishWrite::patch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Offset in the output (from its first byte, the magic).
    pub offset: u64,
    /// The placeholder bytes written there.
    pub old: Vec<u8>,
    /// The bytes to write instead (same length).
    pub new: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Placeholder {
    /// Offset of the first count.
    at: u64,
    /// Bytes of each count (5: `0x80` + u32, or 9: `0x81` + u64).
    width: usize,
    counts: [u64; 2],
}

impl Placeholder {
    fn encode(&self, counts: [u64; 2], out: &mut Vec<u8>) {
        for c in counts {
            if self.width == 9 {
                out.push(0x81);
                out.extend_from_slice(&c.to_be_bytes());
            } else {
                // A hint: a count past 32 bits (never seen in one slot or an RDB < 8 database) is clamped.
                out.push(0x80);
                out.extend_from_slice(&u32::try_from(c).unwrap_or(u32::MAX).to_be_bytes());
            }
        }
    }
}

/// Expiry and eviction metadata of a key record: [`EntryMeta::default`] (none), [`EntryMeta::expiring`], or
/// [`EntryMeta::of`] a record read; new fields may be added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryMeta {
    /// Absolute expiry.
    pub expiry: Option<Expiry>,
    /// LRU idle seconds (written for RDB ≥ 9 only).
    pub idle: Option<u64>,
    /// LFU counter (written for RDB ≥ 9 only).
    pub freq: Option<u8>,
}

impl EntryMeta {
    /// Only an expiry (or none).
    pub fn expiring(expiry: Option<Expiry>) -> Self {
        EntryMeta { expiry, ..EntryMeta::default() }
    }

    /// The metadata of a key record as read: expiry, idle time and frequency.
    pub fn of(entry: &crate::read::Entry<'_>) -> Self {
        EntryMeta { expiry: entry.expiry, idle: entry.idle, freq: entry.freq }
    }

    /// With an LRU idle time.
    #[must_use]
    pub fn with_idle(mut self, idle: Option<u64>) -> Self {
        self.idle = idle;
        self
    }

    /// With an LFU counter.
    #[must_use]
    pub fn with_freq(mut self, freq: Option<u8>) -> Self {
        self.freq = freq;
        self
    }
}

/// Writes an RDB file to `W`, one record at a time. Memory holds one record, never the file.
///
/// ```
/// use rdbkit::read::{Flavor, Header, OwnedValue, SliceReader};
/// use rdbkit::write::{EntryMeta, RdbWriter};
/// # fn main() -> rdbkit::Result<()> {
/// let mut w = RdbWriter::new(Vec::new(), Header::new(Flavor::Redis, 11))?;
/// w.aux(b"redis-ver", b"7.2.0")?;
/// w.select_db(0)?;
/// w.entry(b"greeting", &OwnedValue::String(b"hello".to_vec()), EntryMeta::default())?;
/// let bytes = w.finish()?;
/// let keys: Vec<_> = SliceReader::new(&bytes)?.filter_map(|r| match r.ok()?.kind {
///     rdbkit::read::RecordKind::Entry(e) => Some(e.key.decode().ok()?.into_owned()),
///     _ => None,
/// }).collect();
/// assert_eq!(keys, [b"greeting".to_vec()]);
/// # Ok(()) }
/// ```
pub struct RdbWriter<W: Write> {
    inner: Option<W>,
    header: Header,
    crc: Crc64,
    buf: Vec<u8>,
    written: u64,
    checksum: ChecksumMode,
    db: Option<u64>,
    encoder: Encoder,
    lzf: Compressor,
    compression: Compression,
    lossy: bool,
    deferred: Vec<Placeholder>,
}

impl<W: Write> std::fmt::Debug for RdbWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbWriter")
            .field("header", &self.header)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// Flushes the staging buffer once it holds this much, so writes to the inner writer are large.
const FLUSH_AT: usize = 256 * 1024;

impl<W: Write> RdbWriter<W> {
    /// A writer for `header` with default options; writes the magic.
    pub fn new(inner: W, header: Header) -> Result<Self> {
        Self::with_options(inner, header, WriterOptions::default())
    }

    /// A writer with options; writes the magic.
    pub fn with_options(inner: W, header: Header, opts: WriterOptions) -> Result<Self> {
        if Header::parse(&header.magic_bytes()).is_err() {
            return Err(Error::without_offset(ErrorKind::Invalid(format!(
                "cannot write RDB version {} ({})",
                header.version,
                header.magic()
            ))));
        }
        let compression = opts.encode.compression;
        let lossy = opts.encode.lossy;
        let mut w = RdbWriter {
            inner: Some(inner),
            header,
            crc: Crc64::new(),
            buf: Vec::with_capacity(FLUSH_AT * 2),
            written: 0,
            checksum: if opts.checksum_disabled { ChecksumMode::Disabled } else { ChecksumMode::Compute },
            db: None,
            encoder: Encoder::new(opts.encode),
            lzf: Compressor::new(),
            compression,
            lossy,
            deferred: Vec::new(),
        };
        w.buf.extend_from_slice(&header.magic_bytes());
        Ok(w)
    }

    /// The target header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Bytes written so far (including what is still staged).
    pub fn bytes_written(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        self.inner.as_ref().expect("inner writer present until finish")
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.crc.update(&self.buf);
        let inner = self.inner.as_mut().ok_or_else(finished_error)?;
        inner.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Appends `bytes` as they are: a run of [`FLUSH_AT`] or more goes straight to the output after what is
    /// buffered, so a large value passed through is never copied (nor its memory asked for).
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() < FLUSH_AT {
            self.buf.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush_buf()?;
        self.crc.update(bytes);
        let inner = self.inner.as_mut().ok_or_else(finished_error)?;
        inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn str(&mut self, s: &[u8]) {
        encode_str(s, self.compression, &mut self.lzf, &mut self.buf);
    }

    /// Writes an AUX field (RDB ≥ 7; silently skipped for older targets, which have no AUX records).
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if !self.header.supports(Feature::AuxAndResizeDb) {
            return Ok(());
        }
        self.buf.push(opcode::AUX);
        self.str(key);
        self.str(value);
        self.maybe_flush()
    }

    /// Writes SELECTDB.
    pub fn select_db(&mut self, db: u64) -> Result<()> {
        self.buf.push(opcode::SELECT_DB);
        encode_length(db, &mut self.buf);
        self.db = Some(db);
        self.maybe_flush()
    }

    /// The database of the last SELECTDB written.
    pub fn current_db(&self) -> Option<u64> {
        self.db
    }

    /// Writes RESIZEDB hints (RDB ≥ 7; skipped for older targets).
    pub fn resize_db(&mut self, db_size: u64, expires_size: u64) -> Result<()> {
        if !self.header.supports(Feature::AuxAndResizeDb) {
            return Ok(());
        }
        self.buf.push(opcode::RESIZE_DB);
        encode_length(db_size, &mut self.buf);
        encode_length(expires_size, &mut self.buf);
        self.maybe_flush()
    }

    /// Writes RESIZEDB with placeholder counts in a fixed-width form, for counts known only once the database has
    /// been written (a split shard, a filtered copy); set them with [`RdbWriter::fill`], then finish with
    /// [`RdbWriter::finish_deferred`] and apply its patches. `None` for targets without RESIZEDB (RDB < 7).
    pub fn defer_resize_db(&mut self) -> Result<Option<Deferred>> {
        if !self.header.supports(Feature::AuxAndResizeDb) {
            return Ok(None);
        }
        self.buf.push(opcode::RESIZE_DB);
        // The 64-bit form only exists from RDB 8.
        let width = if self.header.redis_level() >= 8 { 9 } else { 5 };
        Ok(Some(self.placeholder(width)?))
    }

    /// Writes SLOT_INFO for `slot` with placeholder counts (see [`RdbWriter::defer_resize_db`]). `None` for
    /// targets without SLOT_INFO (anything but Redis RDB ≥ 12).
    pub fn defer_slot_info(&mut self, slot: u16) -> Result<Option<Deferred>> {
        if !self.header.supports(Feature::SlotInfo) {
            return Ok(None);
        }
        self.buf.push(opcode::SLOT_INFO);
        encode_length(u64::from(slot), &mut self.buf);
        Ok(Some(self.placeholder(5)?))
    }

    fn placeholder(&mut self, width: usize) -> Result<Deferred> {
        let p = Placeholder { at: self.bytes_written(), width, counts: [0, 0] };
        p.encode([0, 0], &mut self.buf);
        self.deferred.push(p);
        self.maybe_flush()?;
        Ok(Deferred(self.deferred.len() - 1))
    }

    /// Sets the counts of a deferred record: keys and keys with an expiry.
    pub fn fill(&mut self, d: Deferred, keys: u64, expires: u64) {
        if let Some(p) = self.deferred.get_mut(d.0) {
            p.counts = [keys, expires];
        }
    }

    /// Writes a function library (RDB ≥ 10).
    pub fn function(&mut self, code: &[u8]) -> Result<()> {
        if !self.header.supports(Feature::Functions) {
            return Err(unrepresentable(self.header, Feature::Functions));
        }
        self.buf.push(opcode::FUNCTION2);
        self.str(code);
        self.maybe_flush()
    }

    /// Writes a module AUX record (RDB ≥ 9), payload passed through.
    pub fn module_aux(&mut self, aux: &ModuleAux<'_>) -> Result<()> {
        if !self.header.supports(Feature::ModuleAux) {
            return Err(unrepresentable(self.header, Feature::ModuleAux));
        }
        self.buf.push(opcode::MODULE_AUX);
        encode_length(aux.module_id, &mut self.buf);
        encode_length(2, &mut self.buf);
        encode_length(aux.when, &mut self.buf);
        self.buf.extend_from_slice(aux.payload);
        self.maybe_flush()
    }

    /// Writes SLOT_INFO (Redis RDB ≥ 12 only; skipped for other targets, which rebuild it on load).
    pub fn slot_info(&mut self, slot: u64, size: u64, expires_size: u64) -> Result<()> {
        if self.header.flavor != Flavor::Redis || self.header.version < 12 {
            return Ok(());
        }
        self.buf.push(opcode::SLOT_INFO);
        encode_length(slot, &mut self.buf);
        encode_length(size, &mut self.buf);
        encode_length(expires_size, &mut self.buf);
        self.maybe_flush()
    }

    /// Writes the expiry/idle/freq prefix. An expiry RDB 1-2 cannot hold (32-bit seconds) is an error, or with
    /// `lossy` clamped to the largest one they can (and reported).
    fn meta(&mut self, meta: EntryMeta) -> std::result::Result<Option<Unrepresentable>, Unrepresentable> {
        let mut dropped = None;
        if let Some(exp) = meta.expiry {
            if self.header.supports(Feature::MillisecondExpiry) {
                self.buf.push(opcode::EXPIRETIME_MS);
                self.buf.extend_from_slice(&exp.as_millis().to_le_bytes());
            } else {
                // RDB < 3 only has second precision: round up so the key never expires early.
                let ms = exp.as_millis();
                let s = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0);
                let secs = match i32::try_from(s) {
                    Ok(v) => v,
                    Err(_) if self.lossy => {
                        dropped = Some(Unrepresentable::KeyExpiryOutOfRange { expire_ms: ms });
                        if s < 0 { i32::MIN } else { i32::MAX }
                    }
                    Err(_) => return Err(Unrepresentable::KeyExpiryOutOfRange { expire_ms: ms }),
                };
                self.buf.push(opcode::EXPIRETIME);
                self.buf.extend_from_slice(&secs.to_le_bytes());
            }
        }
        if self.header.supports(Feature::IdleAndFreq) {
            if let Some(idle) = meta.idle {
                self.buf.push(opcode::IDLE);
                encode_length(idle, &mut self.buf);
            }
            if let Some(freq) = meta.freq {
                self.buf.extend_from_slice(&[opcode::FREQ, freq]);
            }
        }
        Ok(dropped)
    }

    fn unrepresentable_key(&self, key: &[u8], u: Unrepresentable) -> Error {
        Error::unrepresentable(u, self.header).for_key(key)
    }

    /// Writes a key with an already-encoded value body (`raw`, as in [`crate::read::Value::raw`]).
    pub fn entry_encoded(&mut self, key: &[u8], encoding: Encoding, raw: &[u8], meta: EntryMeta) -> Result<()> {
        if !encoding.allowed_in(self.header) {
            return Err(Error::without_offset(ErrorKind::Invalid(format!(
                "encoding {} (type {}) cannot be written to {}",
                encoding.name(),
                encoding.type_byte(),
                self.header.magic()
            ))));
        }
        let start = self.buf.len();
        if let Err(u) = self.meta(meta) {
            self.buf.truncate(start);
            return Err(self.unrepresentable_key(key, u));
        }
        self.buf.push(encoding.type_byte());
        self.str(key);
        self.put(raw)?;
        self.maybe_flush()
    }

    /// Writes a key, encoding its value the way Redis would for the target version. Returns what a lossy
    /// conversion dropped (empty unless the encode options say `lossy`); without `lossy`, a value the target
    /// cannot hold is an error naming the feature.
    pub fn entry(&mut self, key: &[u8], value: &OwnedValue, meta: EntryMeta) -> Result<Vec<Unrepresentable>> {
        let start = self.buf.len();
        let meta_dropped = match self.meta(meta) {
            Ok(d) => d,
            Err(u) => {
                self.buf.truncate(start);
                return Err(self.unrepresentable_key(key, u));
            }
        };
        // Room for the whole record first: a value larger than memory allows is an error, not an abort.
        if let Err(e) = crate::error::try_reserve(&mut self.buf, key.len() + encoded_bound(value), "a record", 0) {
            self.buf.truncate(start);
            return Err(e);
        }
        let type_pos = self.buf.len();
        self.buf.push(0);
        encode_str(key, self.compression, &mut self.lzf, &mut self.buf);
        match self.encoder.encode(value, self.header, &mut self.buf) {
            Ok(enc) => {
                self.buf[type_pos] = enc.encoding.type_byte();
                self.maybe_flush()?;
                let mut dropped = enc.dropped;
                dropped.extend(meta_dropped);
                Ok(dropped)
            }
            Err(u) => {
                self.buf.truncate(start);
                Err(self.unrepresentable_key(key, u))
            }
        }
    }

    /// Writes a record read by this crate unchanged. Its encoding must be valid for the target (use
    /// [`RdbWriter::entry`] to re-encode otherwise); EOF records are ignored (write [`RdbWriter::finish`]).
    /// SELECTDB records update the writer's current database.
    pub fn raw_record(&mut self, rec: &Record<'_>) -> Result<()> {
        match rec.kind {
            RecordKind::Eof { .. } => return Ok(()),
            RecordKind::Entry(e) => {
                if !e.value.encoding.allowed_in(self.header) {
                    return Err(Error::new(
                        ErrorKind::Invalid(format!(
                            "encoding {} cannot be passed through to {}",
                            e.value.encoding.name(),
                            self.header.magic()
                        )),
                        rec.offset,
                    ));
                }
                let h = self.header;
                if (!h.supports(Feature::IdleAndFreq) && (e.idle.is_some() || e.freq.is_some()))
                    || (!h.supports(Feature::MillisecondExpiry) && matches!(e.expiry, Some(Expiry::Millis(_))))
                {
                    // IDLE/FREQ opcodes do not exist before RDB 9, ms expiries before RDB 3: rewrite the prefix.
                    let key = e.key.decode()?;
                    return self.entry_encoded(
                        &key,
                        e.value.encoding,
                        e.value.raw,
                        EntryMeta { expiry: e.expiry, idle: None, freq: None },
                    );
                }
            }
            RecordKind::SelectDb { db } => self.db = Some(db),
            RecordKind::Function { .. } if !self.header.supports(Feature::Functions) => {
                return Err(unrepresentable(self.header, Feature::Functions));
            }
            RecordKind::ModuleAux(_) if !self.header.supports(Feature::ModuleAux) => {
                return Err(unrepresentable(self.header, Feature::ModuleAux));
            }
            RecordKind::Aux { .. } | RecordKind::ResizeDb { .. } if !self.header.supports(Feature::AuxAndResizeDb) => {
                return Ok(());
            }
            RecordKind::SlotInfo { .. } if !self.header.supports(Feature::SlotInfo) => return Ok(()),
            _ => {}
        }
        self.put(rec.raw)?;
        self.maybe_flush()
    }

    /// Writes EOF and the checksum (none before RDB 5), flushes, and returns the inner writer.
    pub fn finish(self) -> Result<W> {
        self.finish_with_checksum().map(|(w, _)| w)
    }

    /// Like [`RdbWriter::finish`], also returning the checksum stored in the footer (`None` before RDB 5; `Some(0)`
    /// when checksums are disabled).
    pub fn finish_with_checksum(self) -> Result<(W, Option<u64>)> {
        let (w, crc, patches) = self.finish_deferred()?;
        if !patches.is_empty() {
            return Err(Error::without_offset(ErrorKind::Invalid(
                "deferred counts were flushed before they were filled: finish with finish_deferred".into(),
            )));
        }
        Ok((w, crc))
    }

    /// Finishes like [`RdbWriter::finish_with_checksum`], filling in the deferred counts: those still in the
    /// writer's buffer are written directly, the others are returned as patches to apply to the output. The
    /// stored checksum is already that of the patched file.
    pub fn finish_deferred(mut self) -> Result<(W, Option<u64>, Vec<Patch>)> {
        self.buf.push(opcode::EOF);
        let mut patches = Vec::new();
        let mut fixed = Vec::with_capacity(18);
        for p in std::mem::take(&mut self.deferred) {
            if p.counts == [0, 0] {
                continue;
            }
            fixed.clear();
            p.encode(p.counts, &mut fixed);
            if p.at >= self.written {
                let at = (p.at - self.written) as usize;
                self.buf[at..at + fixed.len()].copy_from_slice(&fixed);
            } else {
                let mut old = Vec::with_capacity(fixed.len());
                p.encode([0, 0], &mut old);
                patches.push(Patch { offset: p.at, old, new: fixed.clone() });
            }
        }
        self.flush_buf()?;
        let mut stored = None;
        if self.header.has_checksum() {
            let crc = match self.checksum {
                ChecksumMode::Compute => {
                    let mut diffs: Vec<(u64, Vec<u8>)> = patches
                        .iter()
                        .map(|p| (p.offset, p.old.iter().zip(&p.new).map(|(a, b)| a ^ b).collect()))
                        .collect();
                    crate::format::crc::patched_checksum(Crc64Kind::Redis, self.crc.value(), self.written, &mut diffs)
                }
                ChecksumMode::Disabled => 0,
            };
            stored = Some(crc);
            self.buf.extend_from_slice(&crc.to_le_bytes());
            let inner = self.inner.as_mut().ok_or_else(finished_error)?;
            inner.write_all(&self.buf)?;
            self.written += 8;
            self.buf.clear();
        }
        let mut inner = self.inner.take().ok_or_else(finished_error)?;
        inner.flush()?;
        Ok((inner, stored, patches))
    }
}

fn finished_error() -> Error {
    Error::without_offset(ErrorKind::Invalid("writer already finished".into()))
}

fn unrepresentable(header: Header, feature: Feature) -> Error {
    Error::unrepresentable(Unrepresentable::Lacks(feature), header)
}

/// An upper bound of the bytes `value` takes encoded (its bytes, plus a length and framing per element); streams
/// and module values count their payload only, as their framing is small beside it.
fn encoded_bound(value: &OwnedValue) -> usize {
    const PER: usize = 24;
    let sum = |n: usize, bytes: usize| bytes.saturating_add(n.saturating_mul(PER));
    64 + match value {
        OwnedValue::String(s) => s.len() + PER,
        OwnedValue::List(v) | OwnedValue::Set(v) => sum(v.len(), v.iter().map(Vec::len).sum()),
        OwnedValue::ZSet(v) => sum(v.len(), v.iter().map(|(m, _)| m.len()).sum()),
        OwnedValue::Hash(v) => sum(v.len() * 2, v.iter().map(|(f, x, _)| f.len() + x.len()).sum()),
        OwnedValue::Module { payload, .. } => payload.len(),
        OwnedValue::Stream(_) => 0,
    }
}
