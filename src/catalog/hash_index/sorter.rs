//! External sort of 128-bit hashes with bounded memory: hashes are
//! buffered, and each full buffer is sorted, de-duplicated and spilled to a
//! temporary file (a *run*); [`Merge`] then streams the distinct hashes of
//! all runs (and of an existing index) in ascending order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::HashIndexError;
use super::file::{Block, FormatError, HashReader, HashWriter};

/// Hashes held in memory before a run is spilled (64 MiB).
pub const DEFAULT_RUN_HASHES: usize = 4 << 20;
/// Read buffer per spilled run while merging.
const RUN_READ_BUFFER: usize = 1 << 20;

/// A sorted stream of distinct hashes.
pub trait HashStream: Send {
    fn next_hash(&mut self) -> Result<Option<u128>, HashIndexError>;
}

impl HashStream for HashReader {
    fn next_hash(&mut self) -> Result<Option<u128>, HashIndexError> {
        HashReader::next_hash(self).map_err(HashIndexError::existing)
    }
}

/// A private folder for spilled runs, removed (with its files) on drop.
#[derive(Debug)]
pub struct SpillDir {
    path: PathBuf,
}

impl SpillDir {
    /// Creates `<parent>/ecops-hashes-<pid>-<uuid>/`.
    pub fn new(parent: &Path) -> Result<Self, HashIndexError> {
        let path = parent.join(format!(
            "ecops-hashes-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).map_err(|e| HashIndexError::local(&path, e))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Collects hashes in any order; spills sorted runs past `limit` hashes.
#[derive(Debug)]
pub struct RunBuilder {
    buffer: Vec<u128>,
    limit: usize,
    runs: Vec<PathBuf>,
    dir: PathBuf,
    pushed: u64,
}

impl RunBuilder {
    /// Spilled runs go to `dir` (which must outlive the builder and its merge).
    pub fn new(dir: &SpillDir, limit: usize) -> Self {
        Self {
            buffer: Vec::new(),
            limit: limit.max(1),
            runs: Vec::new(),
            dir: dir.path().to_path_buf(),
            pushed: 0,
        }
    }

    /// Hashes pushed so far (duplicates included).
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Runs spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds hashes; spills a run when the buffer is full (blocking file I/O:
    /// call from a blocking thread when it may spill).
    pub fn extend(&mut self, hashes: &[u128]) -> Result<(), HashIndexError> {
        self.pushed += hashes.len() as u64;
        let mut rest = hashes;
        while !rest.is_empty() {
            let room = self.limit - self.buffer.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buffer.extend_from_slice(now);
            rest = later;
            if self.buffer.len() >= self.limit {
                self.spill()?;
            }
        }
        Ok(())
    }

    /// True when the next [`Self::extend`] of `n` hashes would spill.
    pub fn would_spill(&self, n: usize) -> bool {
        self.buffer.len() + n >= self.limit
    }

    fn spill(&mut self) -> Result<(), HashIndexError> {
        sort_distinct(&mut self.buffer);
        let path = self.dir.join(format!("run-{:05}", self.runs.len()));
        let file = File::create(&path).map_err(|e| HashIndexError::local(&path, e))?;
        let mut out = BufWriter::with_capacity(RUN_READ_BUFFER, file);
        for h in &self.buffer {
            out.write_all(&h.to_be_bytes())
                .map_err(|e| HashIndexError::local(&path, e))?;
        }
        out.flush().map_err(|e| HashIndexError::local(&path, e))?;
        self.buffer.clear();
        self.runs.push(path);
        Ok(())
    }

    /// The runs as sorted streams: the spilled ones and what is still in memory.
    pub fn into_streams(mut self) -> Result<Vec<Box<dyn HashStream>>, HashIndexError> {
        sort_distinct(&mut self.buffer);
        let mut streams: Vec<Box<dyn HashStream>> = Vec::with_capacity(self.runs.len() + 1);
        for path in &self.runs {
            let file = File::open(path).map_err(|e| HashIndexError::local(path, e))?;
            streams.push(Box::new(RunReader {
                input: BufReader::with_capacity(RUN_READ_BUFFER, file),
                path: path.clone(),
            }));
        }
        if !self.buffer.is_empty() {
            streams.push(Box::new(MemoryRun {
                hashes: self.buffer.into_iter(),
            }));
        }
        Ok(streams)
    }
}

/// Sorts and removes duplicates in place.
pub fn sort_distinct(hashes: &mut Vec<u128>) {
    hashes.sort_unstable();
    hashes.dedup();
}

struct MemoryRun {
    hashes: std::vec::IntoIter<u128>,
}

impl HashStream for MemoryRun {
    fn next_hash(&mut self) -> Result<Option<u128>, HashIndexError> {
        Ok(self.hashes.next())
    }
}

struct RunReader {
    input: BufReader<File>,
    path: PathBuf,
}

impl HashStream for RunReader {
    fn next_hash(&mut self) -> Result<Option<u128>, HashIndexError> {
        let mut bytes = [0u8; 16];
        match self.input.read_exact(&mut bytes) {
            Ok(()) => Ok(Some(u128::from_be_bytes(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(HashIndexError::local(&self.path, e)),
        }
    }
}

/// The distinct hashes of several sorted streams, ascending. Remembers for
/// each hash whether stream 0 (by convention an existing index) held it.
pub struct Merge {
    streams: Vec<Box<dyn HashStream>>,
    heads: BinaryHeap<Reverse<(u128, usize)>>,
    last: Option<u128>,
}

impl Merge {
    pub fn new(mut streams: Vec<Box<dyn HashStream>>) -> Result<Self, HashIndexError> {
        let mut heads = BinaryHeap::with_capacity(streams.len());
        for (i, s) in streams.iter_mut().enumerate() {
            if let Some(h) = s.next_hash()? {
                heads.push(Reverse((h, i)));
            }
        }
        Ok(Self {
            streams,
            heads,
            last: None,
        })
    }

    /// The next distinct hash and whether stream 0 held it.
    pub fn next_hash(&mut self) -> Result<Option<(u128, bool)>, HashIndexError> {
        loop {
            let Some(Reverse((hash, i))) = self.heads.pop() else {
                return Ok(None);
            };
            if let Some(next) = self.streams[i].next_hash()? {
                self.heads.push(Reverse((next, i)));
            }
            if self.last == Some(hash) {
                continue;
            }
            // Streams are ascending, so equal hashes pop together: check the
            // rest for stream 0 before moving on.
            let mut in_first = i == 0;
            while let Some(Reverse((h, j))) = self.heads.peek().copied()
                && h == hash
            {
                self.heads.pop();
                in_first |= j == 0;
                if let Some(next) = self.streams[j].next_hash()? {
                    self.heads.push(Reverse((next, j)));
                }
            }
            self.last = Some(hash);
            return Ok(Some((hash, in_first)));
        }
    }
}

/// What [`merge_into`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    /// Hashes written (the new index's rows).
    pub rows: u64,
    /// Of those, hashes the existing index did not hold.
    pub added: u64,
}

/// Where [`merge_into`] puts the union: an index file ([`HashWriter`]),
/// memory ([`Collect`]) or nowhere ([`Count`]).
pub trait HashOut {
    /// Appends a hash greater than every one before.
    fn push(&mut self, hash: u128) -> Result<(), FormatError>;
    /// Appends hashes `from..to` of a checked block (greater than every one before).
    fn push_block(&mut self, block: &Block, from: usize, to: usize) -> Result<(), FormatError>;
    /// Hashes appended so far.
    fn rows(&self) -> u64;
}

impl<W: Write + Send> HashOut for HashWriter<W> {
    fn push(&mut self, hash: u128) -> Result<(), FormatError> {
        HashWriter::push(self, hash)
    }

    fn push_block(&mut self, block: &Block, from: usize, to: usize) -> Result<(), FormatError> {
        HashWriter::push_block(self, block, from, to)
    }

    fn rows(&self) -> u64 {
        HashWriter::rows(self)
    }
}

/// Collects the union in memory (its caller bounds the size).
#[derive(Debug, Default)]
pub struct Collect(pub Vec<u128>);

impl HashOut for Collect {
    fn push(&mut self, hash: u128) -> Result<(), FormatError> {
        self.0.push(hash);
        Ok(())
    }

    fn push_block(&mut self, block: &Block, from: usize, to: usize) -> Result<(), FormatError> {
        self.0.extend((from..to).map(|i| block.hash(i)));
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.0.len() as u64
    }
}

/// Only counts the union.
#[derive(Debug, Default)]
pub struct Count(pub u64);

impl HashOut for Count {
    fn push(&mut self, _: u128) -> Result<(), FormatError> {
        self.0 += 1;
        Ok(())
    }

    fn push_block(&mut self, _: &Block, from: usize, to: usize) -> Result<(), FormatError> {
        self.0 += to.saturating_sub(from) as u64;
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.0
    }
}

/// Writes the union of an existing index (streamed block by block: long
/// stretches between two new hashes are copied as bytes) and the new
/// hashes, ascending and distinct, to `out`.
pub fn merge_into<O: HashOut>(
    existing: Option<&mut HashReader>,
    new: &mut Merge,
    out: &mut O,
) -> Result<MergeCounts, HashIndexError> {
    let written = |e| HashIndexError::Write(format!("{e}"));
    let mut pending = new.next_hash()?.map(|(h, _)| h);
    let mut added = 0u64;
    if let Some(reader) = existing {
        while let Some(block) = reader.next_block().map_err(HashIndexError::existing)? {
            let mut at = 0;
            while at < block.len() {
                let Some(b) = pending else {
                    out.push_block(&block, at, block.len()).map_err(written)?;
                    break;
                };
                let pos = lower_bound(&block, at, b);
                out.push_block(&block, at, pos).map_err(written)?;
                at = pos;
                if pos == block.len() {
                    break; // `b` may be in a later block
                }
                if block.hash(pos) != b {
                    out.push(b).map_err(written)?;
                    added += 1;
                }
                pending = new.next_hash()?.map(|(h, _)| h);
            }
        }
    }
    while let Some(b) = pending {
        out.push(b).map_err(written)?;
        added += 1;
        pending = new.next_hash()?.map(|(h, _)| h);
    }
    Ok(MergeCounts {
        rows: out.rows(),
        added,
    })
}

/// The first position in `block[from..]` whose hash is not below `target`.
fn lower_bound(block: &Block, from: usize, target: u128) -> usize {
    let (mut lo, mut hi) = (from, block.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if block.hash(mid) < target {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut m: Merge) -> Vec<(u128, bool)> {
        let mut out = vec![];
        while let Some(x) = m.next_hash().unwrap() {
            out.push(x);
        }
        out
    }

    #[test]
    fn spilled_runs_merge_into_the_sorted_distinct_set() {
        let dir = SpillDir::new(&std::env::temp_dir()).unwrap();
        let mut runs = RunBuilder::new(&dir, 7);
        // A deterministic shuffle with duplicates, across several spills.
        let input: Vec<u128> = (0..100u128).map(|i| (i * 37) % 61).collect();
        for part in input.chunks(9) {
            runs.extend(part).unwrap();
        }
        assert!(runs.spilled_runs() >= 10, "{} runs", runs.spilled_runs());
        let merged = drain(Merge::new(runs.into_streams().unwrap()).unwrap());
        let mut expect: Vec<u128> = input.clone();
        sort_distinct(&mut expect);
        assert_eq!(merged.iter().map(|x| x.0).collect::<Vec<_>>(), expect);
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "spill folder removed");
    }

    #[test]
    fn merge_says_which_hashes_the_first_stream_held() {
        let dir = SpillDir::new(&std::env::temp_dir()).unwrap();
        let first: Box<dyn HashStream> = Box::new(MemoryRun {
            hashes: vec![2, 4, 6].into_iter(),
        });
        let mut runs = RunBuilder::new(&dir, 100);
        runs.extend(&[6, 1, 4, 9, 1]).unwrap();
        let mut streams = vec![first];
        streams.extend(runs.into_streams().unwrap());
        assert_eq!(
            drain(Merge::new(streams).unwrap()),
            vec![(1, false), (2, true), (4, true), (6, true), (9, false)]
        );
    }
}
