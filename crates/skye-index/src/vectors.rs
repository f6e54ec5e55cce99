//! Dense vector storage. Rows `[0, mapped)` may live in a read-only memory map of a file of the
//! collection's directory (written by [`Vectors::spill`]); rows after them are on the heap. Row
//! `i` is at `[i·dim, (i+1)·dim)` of its part.
//!
//! A vectors file is the raw little-endian `f32` rows, nothing else: the snapshot that names it
//! records its generation and how many of its rows are valid (a file may be longer than that
//! after a crash between appending rows and renaming the snapshot; the excess is cut off when
//! the file is next appended to). Files are append-only within a generation; compaction
//! renumbers the rows and so starts the next generation.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Rows of `dim` floats.
#[derive(Debug)]
pub struct Vectors {
    dim: usize,
    mapped: Option<Mapped>,
    /// Rows after the mapped ones (all rows when nothing is mapped).
    tail: Vec<f32>,
    /// The rows a snapshot names in a vectors file: the mapped ones, and any written since but
    /// still served from the heap (see [`Vectors::install`]).
    on_disk: Option<VectorsFile>,
}

/// The mapped rows of one vectors file.
#[derive(Debug)]
struct Mapped {
    map: memmap2::Mmap,
    rows: usize,
    /// Set once the file has been read through into the page cache (at once when it is not
    /// read through; see [`Warmth`]).
    warm: Warmth,
}

/// Whether a mapped vectors file is in the page cache yet.
///
/// A map is advised `MADV_RANDOM`: searches touch scattered rows, and read-ahead around each
/// would fill memory with rows nobody asked for. Cold (after a reboot, or once other files
/// pushed it out), that makes every touched row one 4 KiB read, and a graph link touching
/// hundreds of rows per insert keeps the disk queue full. So a file opened at a restart that fits
/// comfortably in memory is read through once, sequentially, by a background thread, and
/// background linking waits for it ([`Warmth::wait`]); searches serve meanwhile, faulting what
/// the reader has not reached. How: `SKYE_VECTORS_WARM` = `auto` (read through files of at most
/// half the available memory, the default), `always` or `never`.
#[derive(Debug, Clone)]
pub struct Warmth(Arc<AtomicBool>);

impl Warmth {
    fn done() -> Warmth {
        Warmth(Arc::new(AtomicBool::new(true)))
    }

    pub fn is_warm(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Waits until the file is warm, at most `max`. Returns whether it is.
    pub fn wait(&self, max: Duration) -> bool {
        let started = Instant::now();
        while !self.is_warm() {
            if started.elapsed() >= max {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Reads `path`'s first `bytes` bytes through, on a thread of its own, and is warm once that
    /// is done (or failed: the map still serves, faulting rows in).
    fn read_through(path: &Path, bytes: usize) -> Warmth {
        let warm = Warmth(Arc::new(AtomicBool::new(false)));
        let flag = warm.clone();
        let path = path.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("skye-vectors-warm".into())
            .spawn(move || {
                let _ = read_prefix(&path, bytes);
                flag.0.store(true, Ordering::Release);
            });
        if spawned.is_err() {
            warm.0.store(true, Ordering::Release);
        }
        warm
    }
}

/// Reads the first `bytes` bytes of `path` and drops them: they stay in the page cache.
fn read_prefix(path: &Path, bytes: usize) -> std::io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 4 << 20];
    let mut left = bytes;
    while left > 0 {
        let want = left.min(buf.len());
        let got = f.read(&mut buf[..want])?;
        if got == 0 {
            break;
        }
        left -= got;
    }
    Ok(())
}

/// Whether a map of `bytes` bytes opened at a restart is read through (see [`Warmth`]).
fn should_read_through(bytes: usize) -> bool {
    match std::env::var("SKYE_VECTORS_WARM").as_deref() {
        Ok("always") => true,
        Ok("never") => false,
        _ => available_memory().is_some_and(|avail| bytes as u64 <= avail / 2),
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (`None` where there is none).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl Mapped {
    /// The valid rows as floats.
    #[inline]
    fn floats(&self) -> &[f32] {
        let bytes = &self.map[..];
        // SAFETY: a map starts on a page boundary (aligned for f32), `open_mapped` checked that
        // the file holds at least `rows` rows, and every bit pattern is a valid f32.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
    }
}

/// Where a collection's vectors are on disk, as its snapshot records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorsFile {
    pub generation: u64,
    pub rows: usize,
}

/// The file of vectors generation `generation` in `dir`.
pub fn vectors_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("vectors.{generation}.f32"))
}

impl Vectors {
    pub fn new(dim: usize) -> Self {
        Vectors {
            dim,
            mapped: None,
            tail: Vec::new(),
            on_disk: None,
        }
    }

    /// Rows already laid out contiguously (`data.len()` a multiple of `dim`).
    pub fn from_vec(dim: usize, data: Vec<f32>) -> Self {
        debug_assert!(dim > 0 && data.len().is_multiple_of(dim));
        Vectors {
            dim,
            mapped: None,
            tail: data,
            on_disk: None,
        }
    }

    /// The rows `picks` names, in that order (distinct row numbers). Rows all on the heap are
    /// moved in place, with no second copy; mapped ones are copied to the heap.
    pub(crate) fn gathered(self, picks: &[u32]) -> Vectors {
        if self.mapped.is_some() {
            let mut out = Vectors::with_capacity(self.dim, picks.len());
            for &i in picks {
                out.push(self.get(i as usize));
            }
            return out;
        }
        let mut tail = self.tail;
        gather_rows(&mut tail, self.dim, picks);
        Vectors::from_vec(self.dim, tail)
    }

    pub fn with_capacity(dim: usize, rows: usize) -> Self {
        Vectors {
            dim,
            mapped: None,
            tail: Vec::with_capacity(dim * rows),
            on_disk: None,
        }
    }

    /// The first `file.rows` rows mapped from `dir`'s vectors file of `file.generation`.
    /// A file that fits in memory is read through in the background (see [`Warmth`]).
    pub fn open_mapped(dir: &Path, dim: usize, file: VectorsFile) -> std::io::Result<Self> {
        let mapped = map_rows(&vectors_path(dir, file.generation), dim, file, true)?;
        Ok(Vectors {
            dim,
            mapped,
            tail: Vec::new(),
            on_disk: Some(file),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the mapped rows are in the page cache yet (see [`Warmth`]).
    pub fn warmth(&self) -> Warmth {
        self.mapped
            .as_ref()
            .map_or_else(Warmth::done, |m| m.warm.clone())
    }

    pub(crate) fn mapped_rows(&self) -> usize {
        self.mapped.as_ref().map_or(0, |m| m.rows)
    }

    pub fn len(&self) -> usize {
        self.mapped_rows() + self.tail.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`. Panics when out of range (callers hold valid internal ids).
    #[inline]
    pub fn get(&self, i: usize) -> &[f32] {
        let start = i * self.dim;
        match &self.mapped {
            Some(m) if i < m.rows => &m.floats()[start..start + self.dim],
            m => {
                let start = start - m.as_ref().map_or(0, |m| m.rows * self.dim);
                &self.tail[start..start + self.dim]
            }
        }
    }

    /// Pointer to row `i`, for prefetching (any address is harmless there).
    #[inline]
    pub(crate) fn row_ptr(&self, i: usize) -> *const f32 {
        match &self.mapped {
            Some(m) if i < m.rows => m.floats().as_ptr().wrapping_add(i * self.dim),
            m => self
                .tail
                .as_ptr()
                .wrapping_add((i - m.as_ref().map_or(0, |m| m.rows)) * self.dim),
        }
    }

    /// Appends a row of exactly `dim` floats.
    pub fn push(&mut self, row: &[f32]) {
        debug_assert_eq!(row.len(), self.dim);
        self.tail.extend_from_slice(row);
    }

    /// Rows `[from, to)` in order.
    pub fn rows(&self, from: usize, to: usize) -> impl Iterator<Item = &[f32]> + '_ {
        (from..to).map(|i| self.get(i))
    }

    pub fn reserve(&mut self, rows: usize) {
        self.tail.reserve(rows * self.dim);
    }

    /// Heap bytes (the rows not mapped).
    pub fn heap_bytes(&self) -> usize {
        self.tail.capacity() * std::mem::size_of::<f32>()
    }

    /// Bytes of rows served from the map (resident only while the OS keeps their pages).
    pub fn mapped_bytes(&self) -> usize {
        self.mapped_rows() * self.dim * std::mem::size_of::<f32>()
    }

    /// The vectors file a snapshot names for these rows, if any.
    pub fn file(&self) -> Option<VectorsFile> {
        self.on_disk
    }

    /// Writes the rows not in the vectors file yet to it, fsync'd: appended to the recorded
    /// file's generation, or all rows to a new generation after `last_generation` when there is
    /// none (a new or compacted collection). Returns what the snapshot must name; once it
    /// landed, [`Vectors::record`] it.
    pub fn spill(&self, dir: &Path, last_generation: u64) -> std::io::Result<VectorsFile> {
        let rows = self.len();
        let (generation, from) = match self.on_disk {
            Some(f) => (f.generation, f.rows),
            None => (last_generation + 1, 0),
        };
        let path = vectors_path(dir, generation);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(from == 0)
            .open(&path)?;
        let row_bytes = (self.dim * 4) as u64;
        // Never pad with zeros: the snapshot names rows this file no longer holds.
        check_holds(&path, &file, from, self.dim)?;
        // Rows past the recorded ones are from an append whose snapshot never landed.
        file.set_len(from as u64 * row_bytes)?;
        file.seek(SeekFrom::End(0))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut file);
        for row in self.rows(from, rows) {
            for x in row {
                out.write_all(&x.to_le_bytes())?;
            }
        }
        out.flush()?;
        drop(out);
        file.sync_all()?;
        if from == 0
            && let Some(parent) = path.parent()
        {
            File::open(parent)?.sync_all()?;
        }
        Ok(VectorsFile { generation, rows })
    }

    /// Records the file a landed snapshot names (written by [`Vectors::spill`]).
    pub fn record(&mut self, file: VectorsFile) {
        self.on_disk = Some(file);
    }

    /// Whether recorded rows are still served from the heap.
    pub fn installable(&self) -> bool {
        self.on_disk.is_some_and(|f| f.rows > self.mapped_rows())
    }

    /// Serves the recorded rows from `dir`'s file and frees their heap copies.
    pub fn install(&mut self, dir: &Path) -> std::io::Result<()> {
        let Some(file) = self.on_disk else {
            return Ok(());
        };
        // Just written by `spill`: in the page cache already.
        let mapped = map_rows(&vectors_path(dir, file.generation), self.dim, file, false)?;
        let moved = file.rows.saturating_sub(self.mapped_rows()) * self.dim;
        self.tail.drain(..moved.min(self.tail.len()));
        self.tail.shrink_to_fit();
        self.mapped = mapped;
        Ok(())
    }
}

/// Fails with `UnexpectedEof` when `file` (at `path`) is shorter than `rows` rows of `dim`
/// floats: the snapshot names rows the file does not hold.
fn check_holds(path: &Path, file: &File, rows: usize, dim: usize) -> std::io::Result<()> {
    let want = (rows * dim * 4) as u64;
    let have = file.metadata()?.len();
    if have < want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "{} holds {have} bytes, the snapshot names {rows} rows of {dim} floats ({want} bytes)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Maps the first `file.rows` rows of `path` (`None` for zero rows: nothing to map), reading
/// them through in the background when `warm_up` and they fit in memory.
fn map_rows(
    path: &Path,
    dim: usize,
    file: VectorsFile,
    warm_up: bool,
) -> std::io::Result<Option<Mapped>> {
    if file.rows == 0 {
        return Ok(None);
    }
    let f = File::open(path)?;
    check_holds(path, &f, file.rows, dim)?;
    // SAFETY: the file is ours and append-only while mapped: `spill` only writes past the
    // mapped rows (and truncates past them), and a file is removed only after its map is
    // dropped or the collection retired.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .len(file.rows * dim * 4)
            .map(&f)?
    };
    // Searches read scattered rows (rescoring): read-ahead would only fill memory.
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Random);
    let bytes = file.rows * dim * 4;
    let warm = if warm_up && should_read_through(bytes) {
        Warmth::read_through(path, bytes)
    } else {
        Warmth::done()
    };
    Ok(Some(Mapped {
        map,
        rows: file.rows,
        warm,
    }))
}

/// Issues a prefetch of the cache line at `p` (a no-op off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Rearranges the rows (`width` elements each) of `data` in place so that row `k` holds what row
/// `picks[k]` held, and drops the rows not picked. `picks` must be distinct row numbers.
pub(crate) fn gather_rows<T: Copy>(data: &mut Vec<T>, width: usize, picks: &[u32]) {
    let rows = data.len() / width.max(1);
    // The full permutation: the picks, then the other rows (moved to the end, then cut).
    let mut from: Vec<u32> = Vec::with_capacity(rows);
    let mut picked = vec![false; rows];
    for &p in picks {
        picked[p as usize] = true;
        from.push(p);
    }
    from.extend((0..rows as u32).filter(|&r| !picked[r as usize]));
    drop(picked);
    let mut done = vec![false; rows];
    let mut held: Vec<T> = Vec::with_capacity(width);
    for start in 0..rows {
        if done[start] || from[start] as usize == start {
            continue;
        }
        // Follow the cycle through `start`: each row takes its source's contents.
        held.clear();
        held.extend_from_slice(&data[start * width..(start + 1) * width]);
        let mut at = start;
        loop {
            done[at] = true;
            let src = from[at] as usize;
            if src == start {
                data[at * width..(at + 1) * width].copy_from_slice(&held);
                break;
            }
            data.copy_within(src * width..(src + 1) * width, at * width);
            at = src;
        }
    }
    data.truncate(picks.len() * width);
    data.shrink_to_fit();
}

/// Prefetches every cache line of the `bytes` bytes at `p`.
#[inline(always)]
pub(crate) fn prefetch_lines(p: *const u8, bytes: usize) {
    let mut off = 0;
    while off < bytes {
        prefetch(p.wrapping_add(off));
        off += 64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_gathered_in_place_in_the_order_picked() {
        let mut data: Vec<u32> = (0..30).collect(); // 10 rows of 3
        gather_rows(&mut data, 3, &[4, 0, 9, 2, 5]);
        let rows: Vec<u32> = data.chunks(3).map(|r| r[0] / 3).collect();
        assert_eq!(rows, vec![4, 0, 9, 2, 5]);
        assert!(data.chunks(3).all(|r| r[1] == r[0] + 1 && r[2] == r[0] + 2));
        let mut all: Vec<u8> = (0..8).collect();
        gather_rows(&mut all, 1, &[7, 6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(all, vec![7, 6, 5, 4, 3, 2, 1, 0]);
        let mut v = Vectors::new(2);
        (0..5).for_each(|i| v.push(&[i as f32, -(i as f32)]));
        let g = v.gathered(&[3, 1]);
        assert_eq!(
            (g.len(), g.get(0), g.get(1)),
            (2, &[3.0, -3.0][..], &[1.0, -1.0][..])
        );
    }

    fn rows(n: usize, dim: usize, base: f32) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| (0..dim).map(|j| base + (i * dim + j) as f32).collect())
            .collect()
    }

    #[test]
    fn spilled_rows_read_back_from_the_map_and_appends_extend_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vectors::new(3);
        let first = rows(5, 3, 0.0);
        first.iter().for_each(|r| v.push(r));
        let file = v.spill(dir.path(), 0).unwrap();
        assert_eq!(
            file,
            VectorsFile {
                generation: 1,
                rows: 5
            }
        );
        v.record(file);
        assert!(v.installable());
        v.install(dir.path()).unwrap();
        assert!(!v.installable());
        assert_eq!(v.heap_bytes(), 0);
        assert_eq!(v.mapped_bytes(), 5 * 3 * 4);
        let second = rows(4, 3, 1000.0);
        second.iter().for_each(|r| v.push(r));
        assert_eq!(v.len(), 9);
        for (i, r) in first.iter().chain(&second).enumerate() {
            assert_eq!(v.get(i), r.as_slice(), "row {i} before the second spill");
        }
        let file = v.spill(dir.path(), 1).unwrap();
        assert_eq!(
            file,
            VectorsFile {
                generation: 1,
                rows: 9
            }
        );
        v.record(file);
        v.install(dir.path()).unwrap();
        let reopened = Vectors::open_mapped(dir.path(), 3, file).unwrap();
        for (i, r) in first.iter().chain(&second).enumerate() {
            assert_eq!(v.get(i), r.as_slice());
            assert_eq!(reopened.get(i), r.as_slice(), "row {i} after reopening");
        }
    }

    #[test]
    fn an_append_whose_snapshot_never_landed_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vectors::new(2);
        rows(3, 2, 0.0).iter().for_each(|r| v.push(r));
        let file = v.spill(dir.path(), 0).unwrap();
        v.record(file);
        v.install(dir.path()).unwrap();
        // A later spill wrote rows that no snapshot names, then the process died.
        let mut lost = Vectors::open_mapped(dir.path(), 2, file).unwrap();
        lost.push(&[77.0, 77.0]);
        lost.spill(dir.path(), 1).unwrap();
        // Reopened at the named rows, a new append replaces the orphan.
        let mut v = Vectors::open_mapped(dir.path(), 2, file).unwrap();
        v.push(&[5.0, 6.0]);
        let file = v.spill(dir.path(), 1).unwrap();
        assert_eq!(file.rows, 4);
        assert_eq!(
            std::fs::metadata(vectors_path(dir.path(), 1))
                .unwrap()
                .len(),
            4 * 2 * 4
        );
        let back = Vectors::open_mapped(dir.path(), 2, file).unwrap();
        assert_eq!(back.get(3), &[5.0, 6.0]);
    }

    #[test]
    fn a_file_shorter_than_its_snapshot_says_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(vectors_path(dir.path(), 1), [0u8; 8]).unwrap();
        let err = Vectors::open_mapped(
            dir.path(),
            2,
            VectorsFile {
                generation: 1,
                rows: 2,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("names 2 rows"), "{err}");
    }

    #[test]
    fn a_reopened_file_is_read_through_and_a_written_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Vectors::new(4);
        rows(1000, 4, 0.0).iter().for_each(|r| v.push(r));
        let file = v.spill(dir.path(), 0).unwrap();
        v.record(file);
        v.install(dir.path()).unwrap();
        // `install` maps the file `spill` just wrote: nothing to read.
        assert!(v.warmth().is_warm());
        // 16 kB fits in any machine's memory: the reopened map is read through.
        let reopened = Vectors::open_mapped(dir.path(), 4, file).unwrap();
        assert!(reopened.warmth().wait(Duration::from_secs(30)));
        assert_eq!(reopened.get(999), v.get(999));
        // Nothing mapped: warm from the start.
        assert!(Vectors::new(4).warmth().is_warm());
    }

    #[test]
    fn a_read_through_that_fails_still_ends_warm() {
        let dir = tempfile::tempdir().unwrap();
        let warm = Warmth::read_through(&dir.path().join("missing"), 1 << 20);
        assert!(warm.wait(Duration::from_secs(30)));
        let path = dir.path().join("short");
        std::fs::write(&path, [1u8; 100]).unwrap();
        assert!(Warmth::read_through(&path, 1 << 20).wait(Duration::from_secs(30)));
        assert!(available_memory().is_some_and(|m| m > 0));
    }
}
