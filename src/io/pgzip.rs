//! [`ParallelGzipWriter`]: gzip compression on several threads, producing one ordinary gzip member.
//!
//! The input is cut into chunks of 1 MiB, and each chunk is deflated on a worker thread with the last
//! 32 KiB of the chunk before it as its dictionary (so matches reach back across the cut, as in one stream) and
//! ends with a sync flush, which byte-aligns it; the last chunk ends the stream instead. Laid end to end, the
//! chunks are one valid deflate stream, wrapped in one gzip header and trailer (CRC-32 and length of the whole
//! input). This is how `pigz` works: any gzip reader, including single-member ones, reads the result, and
//! `gzip -d` restores the input exactly. The bytes differ from single-threaded gzip's, and the output is a few
//! bytes larger per chunk.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crc_fast::{CrcAlgorithm, Digest};
use flate2::{Compress, Compression, FlushCompress, Status};

use crate::{Error, ErrorKind, Result};

/// Bytes of input compressed as one unit by one worker.
pub(crate) const CHUNK: usize = 1 << 20;
/// Deflate's window: the dictionary each chunk gets from the one before it.
const WINDOW: usize = 32 * 1024;

/// One chunk to compress, and where its result goes.
struct Job {
    input: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Vec<u8>>>,
}

/// A writer that gzip-compresses everything written to it into `W`, on `threads` worker threads.
///
/// Like [`super::GzipWriter`], it must be finished ([`finish`](ParallelGzipWriter::finish) or
/// [`try_finish`](ParallelGzipWriter::try_finish)) to write the gzip trailer; dropping it unfinished stops the
/// workers and leaves an incomplete stream. Memory: a chunk in and out per thread, and one more, plus the compressors.
///
/// ```
/// use rdbkit::io::ParallelGzipWriter;
/// use std::io::{Read, Write};
///
/// let data = b"REDIS0011".repeat(300_000); // 2.7 MB: three chunks
/// let mut w = ParallelGzipWriter::new(Vec::new(), 6, 2)?;
/// w.write_all(&data)?;
/// let gz = w.finish()?;
/// let mut back = Vec::new();
/// flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back)?; // a single-member reader
/// assert_eq!(back, data);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ParallelGzipWriter<W: Write> {
    inner: Option<W>,
    level: u32,
    /// Input not yet handed to a worker.
    buf: Vec<u8>,
    /// The last `WINDOW` bytes of the input handed over so far.
    window: Vec<u8>,
    crc: Digest,
    total_in: u64,
    /// Results still to be written, in input order.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    header_written: bool,
    finished: bool,
}

impl<W: Write> std::fmt::Debug for ParallelGzipWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelGzipWriter")
            .field("level", &self.level)
            .field("threads", &self.workers.len())
            .field("total_in", &self.total_in)
            .finish_non_exhaustive()
    }
}

impl<W: Write> ParallelGzipWriter<W> {
    /// Wraps `inner`, compressing at `level` (0–9) on `threads` worker threads (at least 1).
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when `level` is above 9; an I/O error when a thread cannot be started.
    pub fn new(inner: W, level: u32, threads: usize) -> Result<Self> {
        if level > 9 {
            return Err(Error::without_offset(ErrorKind::Invalid(format!(
                "gzip compression level {level} is out of range 0-9"
            ))));
        }
        let threads = threads.max(1);
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(format!("rdbkit-gzip-{i}"))
                .spawn(move || worker(&rx, level))
                .map_err(Error::from)?;
            workers.push(handle);
        }
        Ok(ParallelGzipWriter {
            inner: Some(inner),
            level,
            buf: Vec::with_capacity(CHUNK),
            window: Vec::new(),
            crc: Digest::new(CrcAlgorithm::Crc32IsoHdlc),
            total_in: 0,
            pending: VecDeque::new(),
            max_pending: threads + 1,
            jobs: Some(tx),
            workers,
            header_written: false,
            finished: false,
        })
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        self.inner.as_ref().expect("inner writer present until finish")
    }

    /// The inner writer, mutably. Writing to it directly corrupts the gzip stream.
    pub fn get_mut(&mut self) -> &mut W {
        self.inner.as_mut().expect("inner writer present until finish")
    }

    /// Bytes of uncompressed input consumed so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    fn out(&mut self) -> io::Result<&mut W> {
        self.inner.as_mut().ok_or_else(|| io::Error::other("ParallelGzipWriter: already finished"))
    }

    /// Hands the buffered input to a worker (as the last chunk when `last`), writing finished chunks out in order
    /// while too many are in flight.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            // ID1 ID2 CM=deflate FLG=0 MTIME=0, XFL as gzip sets it for the level, OS=255 (unknown).
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.out()?.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
            self.header_written = true;
        }
        let input = std::mem::replace(&mut self.buf, Vec::with_capacity(if last { 0 } else { CHUNK }));
        // Every chunk but the last is full, so its tail is a whole window for the next one.
        let dictionary = std::mem::replace(&mut self.window, input[input.len().saturating_sub(WINDOW)..].to_vec());
        let (reply, result) = sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("ParallelGzipWriter: workers stopped"))?;
        jobs.send(Job { input, dictionary, last, reply })
            .map_err(|_| io::Error::other("ParallelGzipWriter: the compression threads stopped"))?;
        self.pending.push_back(result);
        while self.pending.len() > if last { 0 } else { self.max_pending } {
            self.write_next()?;
        }
        Ok(())
    }

    /// Waits for the oldest chunk in flight and writes it out.
    fn write_next(&mut self) -> io::Result<()> {
        if let Some(result) = self.pending.pop_front() {
            let bytes =
                result.recv().map_err(|_| io::Error::other("ParallelGzipWriter: a compression thread stopped"))??;
            self.out()?.write_all(&bytes)?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and flushes, without giving up the inner writer. Idempotent;
    /// no more data may be written afterwards.
    pub fn try_finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.submit(true)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&(self.crc.finalize() as u32).to_le_bytes());
        trailer[4..].copy_from_slice(&(self.total_in as u32).to_le_bytes());
        let out = self.out()?;
        out.write_all(&trailer)?;
        out.flush()?;
        self.finished = true;
        self.stop_workers();
        Ok(())
    }

    /// Writes the trailer and returns the inner writer (which may itself need finishing).
    pub fn finish(mut self) -> io::Result<W> {
        self.try_finish()?;
        self.inner.take().ok_or_else(|| io::Error::other("ParallelGzipWriter: already finished"))
    }

    fn stop_workers(&mut self) {
        self.jobs = None; // closes the queue: each worker ends after its current job
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<W: Write> Write for ParallelGzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.finished {
            return Err(io::Error::other("ParallelGzipWriter: write after finish"));
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.crc.update(&data[..n]);
        self.total_in += n as u64;
        if self.buf.len() == CHUNK {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Writes out the chunks already compressed; the buffered partial chunk stays until it fills or the writer
    /// finishes (flushing it early would cost compression).
    fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            self.write_next()?;
        }
        self.out()?.flush()
    }
}

impl<W: Write> Drop for ParallelGzipWriter<W> {
    fn drop(&mut self) {
        self.pending.clear();
        self.stop_workers();
    }
}

/// Takes jobs until the queue closes.
fn worker(jobs: &Mutex<Receiver<Job>>, level: u32) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = deflate_chunk(&job.input, &job.dictionary, job.last, level);
        let _ = job.reply.send(result);
    }
}

/// Raw deflate of one chunk: primed with `dictionary`, ending in a sync flush (or the end of the stream).
fn deflate_chunk(input: &[u8], dictionary: &[u8], last: bool, level: u32) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        c.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut out = Vec::with_capacity(input.len() + input.len() / 1000 + 256);
    loop {
        let consumed = c.total_in() as usize;
        let status = c.compress_vec(&input[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let done = c.total_in() as usize == input.len() && out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(out),
            _ if done && !last => return Ok(out),
            _ => out.reserve(out.capacity().max(4096)),
        }
    }
}

impl<W: super::FinishWrite> super::FinishWrite for ParallelGzipWriter<W> {
    fn finish_write(self: Box<Self>) -> io::Result<()> {
        Box::new((*self).finish()?).finish_write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        // Compressible text with incompressible stretches, so both kinds of block appear.
        let mut v = Vec::with_capacity(n);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut i = 0u64;
        while v.len() < n {
            if i.is_multiple_of(50) {
                for _ in 0..64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    v.push(x as u8);
                }
            }
            v.extend_from_slice(format!("key:{i} value-{}\n", i % 97).as_bytes());
            i += 1;
        }
        v.truncate(n);
        v
    }

    fn gunzip_single_member(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn round_trips_across_chunk_boundaries() {
        let data = sample(3 * CHUNK + 12_345);
        for (len, threads, level) in [
            (0, 2, 6),
            (1, 1, 6),
            (CHUNK - 1, 2, 1),
            (CHUNK, 2, 6),
            (CHUNK + 1, 3, 9),
            (data.len(), 2, 6),
            (data.len(), 1, 0),
        ] {
            let mut w = ParallelGzipWriter::new(Vec::new(), level, threads).unwrap();
            for piece in data[..len].chunks(100_003) {
                w.write_all(piece).unwrap();
            }
            assert_eq!(w.total_in(), len as u64);
            let gz = w.finish().unwrap();
            assert_eq!(gunzip_single_member(&gz), &data[..len], "{len} bytes, {threads} threads, level {level}");
        }
    }

    #[test]
    fn compresses_about_as_well_as_one_stream() {
        let data = sample(3 * CHUNK);
        let mut w = ParallelGzipWriter::new(Vec::new(), 6, 2).unwrap();
        w.write_all(&data).unwrap();
        let parallel = w.finish().unwrap().len();
        let mut single = super::super::GzipWriter::new(Vec::new(), 6).unwrap();
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap().len();
        assert!(parallel as f64 <= single as f64 * 1.01 + 64.0, "{parallel} vs {single} bytes");
    }

    #[test]
    fn finish_is_idempotent_and_level_checked() {
        let mut w = ParallelGzipWriter::new(Vec::new(), 6, 2).unwrap();
        w.write_all(b"abc").unwrap();
        w.try_finish().unwrap();
        let len = w.get_ref().len();
        w.try_finish().unwrap();
        assert_eq!(w.get_ref().len(), len);
        assert!(w.write(b"more").is_err());
        assert_eq!(gunzip_single_member(&w.finish().unwrap()), b"abc");
        assert!(matches!(ParallelGzipWriter::new(Vec::new(), 10, 2).unwrap_err().kind(), ErrorKind::Invalid(_)));
    }

    /// An inner writer that fails stops the writer with that error (and the workers with it).
    #[test]
    fn inner_errors_come_back() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = ParallelGzipWriter::new(Broken, 6, 2).unwrap();
        let err = w.write_all(&sample(3 * CHUNK)).and_then(|()| w.try_finish()).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }

    #[test]
    fn system_gzip_decompresses_identically() {
        let data = sample(2 * CHUNK + 777);
        let mut w = ParallelGzipWriter::new(Vec::new(), 6, 2).unwrap();
        w.write_all(&data).unwrap();
        let gz = w.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.rdb.gz");
        std::fs::write(&path, &gz).unwrap();
        let out = match std::process::Command::new("gzip").arg("-dc").arg(&path).output() {
            Ok(out) => out,
            Err(e) => {
                println!("notice: system `gzip` not available ({e}); skipping the external check");
                return;
            }
        };
        assert!(out.status.success(), "gzip -dc failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout == data, "gzip -dc output differs from the input");
    }
}
