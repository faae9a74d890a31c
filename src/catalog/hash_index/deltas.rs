//! Delta files: the per-commit part of the index, so a commit costs
//! O(its ids), not a rewrite of the whole main file.
//!
//! A delta is an index file (same format as the main one) holding the
//! sorted distinct hashes of the files one or more `append` snapshots
//! added, next to the main file under `<index stem>.deltas/<seq>.parquet`
//! (`seq`: 10 digits, increasing). Its footer records the snapshot it
//! reflects and, under [`super::file::DELTA_KEY`], the snapshot it extends.
//! The deltas *chained* to the main file — the first extends what the main
//! file reflects, each next one what the one before reflects, all of the
//! same table — form the index together with it; the last one's snapshot is
//! the snapshot the whole index reflects. A delta may repeat hashes of the
//! main file (checking that would read the main file); readers merge.
//!
//! Any other delta is *stale*: left by a crash between a merge installing
//! the new main file and removing the deltas it absorbed, or written for a
//! table since replaced. Readers ignore stale deltas, the next writer
//! removes them. The table is the truth, so no delta is ever needed for
//! correctness: a missing or unreadable one only shortens the chain, and
//! the next sync re-derives what it held from the snapshots after the tip.
//!
//! Writers fold the deltas into the main file (one streaming merge, main
//! file + deltas + new ids) at the end of each ingest run, backfill commit
//! and compaction, and whenever [`Deltas::merge_due`] says so; after that
//! the main file alone is exact and current (what the Python reference reads).

use futures::{StreamExt, TryStreamExt};

use super::HashIndexError;
use super::file::{Footer, Reflects};
use super::storage::IndexObject;
use crate::store::Store;

/// At most this many chained deltas: the next commit merges instead. Bounds
/// the files a reader opens and amortizes a merge (a full read and write of
/// the main file) over this many commits — at 10M ids and 20 000-id chunks
/// a merge every 64 chunks.
pub const MAX_DELTAS: usize = 64;
/// The deltas may hold up to 1/`DELTA_SHARE` of the main file's rows (or
/// [`DELTA_ROWS_FLOOR`], whichever is more) before the next commit merges:
/// the main file then grows geometrically, so merging costs O(1) amortized
/// per id, and readers merging main + deltas read at most 1/8 more.
pub const DELTA_SHARE: u64 = 8;
/// Delta rows always allowed (16 MiB of hashes), so a small or young index
/// is not rewritten on every commit.
pub const DELTA_ROWS_FLOOR: u64 = 1 << 20;

/// Reads delta footers at once.
const FOOTER_CONCURRENCY: usize = 8;

/// The folder of the deltas of the index at `index_uri`:
/// `<uri without .parquet>.deltas`.
pub fn dir_uri(index_uri: &str) -> String {
    let stem = index_uri.strip_suffix(".parquet").unwrap_or(index_uri);
    format!("{stem}.deltas")
}

/// The delta number `seq` in `dir`.
pub fn delta_uri(dir: &str, seq: u64) -> String {
    format!("{dir}/{seq:010}.parquet")
}

/// The number of a delta file name (`0000000042.parquet`); None for other names.
fn seq_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".parquet")?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// One chained delta.
#[derive(Debug, Clone)]
pub struct Delta {
    pub seq: u64,
    pub object: IndexObject,
    pub footer: Footer,
}

/// The deltas found beside an index.
#[derive(Debug, Clone, Default)]
pub struct Deltas {
    /// Deltas chained to the main file, oldest first.
    pub chained: Vec<Delta>,
    /// Deltas that are not (see the module doc).
    pub stale: Vec<IndexObject>,
    /// The number for the next delta (above every one found, stale too).
    pub next_seq: u64,
    /// The folder's URI.
    pub dir: String,
}

impl Deltas {
    /// What the index as a whole reflects: the last chained delta's
    /// snapshot, else the main file's.
    pub fn tip<'a>(&'a self, main: Option<&'a Reflects>) -> Option<&'a Reflects> {
        match self.chained.last() {
            Some(d) => d.footer.reflects.as_ref(),
            None => main,
        }
    }

    /// Rows of the chained deltas (repeats included).
    pub fn rows(&self) -> u64 {
        self.chained.iter().map(|d| d.footer.rows).sum()
    }

    /// True when adding a delta of `new_rows` would pass a threshold
    /// ([`MAX_DELTAS`] files, or rows above 1/[`DELTA_SHARE`] of the main
    /// file's and [`DELTA_ROWS_FLOOR`]): merge into the main file instead.
    pub fn merge_due(&self, main_rows: u64, new_rows: u64) -> bool {
        let allowed = (main_rows / DELTA_SHARE).max(DELTA_ROWS_FLOOR);
        self.chained.len() >= MAX_DELTAS || self.rows() + new_rows > allowed
    }

    /// Every delta file found, chained and stale.
    pub fn all_objects(&self) -> impl Iterator<Item = &IndexObject> {
        self.chained.iter().map(|d| &d.object).chain(&self.stale)
    }

    /// Removes the stale deltas (a writer, holding the lock).
    pub async fn remove_stale(&self) -> Result<(), HashIndexError> {
        for object in &self.stale {
            object.remove().await?;
        }
        Ok(())
    }

    /// Removes every delta (after a merge absorbed them, or a rebuild made
    /// them moot), and the folder when it is local and empty.
    pub async fn remove_all(&self) -> Result<(), HashIndexError> {
        for object in self.all_objects() {
            object.remove().await?;
        }
        if let Ok(crate::store::Location::Local(path)) = crate::store::Location::parse(&self.dir) {
            let _ = std::fs::remove_dir(path); // fails while not empty: fine
        }
        Ok(())
    }
}

/// Lists the deltas of the index at `index_uri` whose main file reflects
/// `main` (None: no usable main file, so every delta is stale).
pub async fn list(
    base: &Store,
    index_uri: &str,
    main: Option<&Reflects>,
) -> Result<Deltas, HashIndexError> {
    let dir = dir_uri(index_uri);
    let prefix = base.key_of(&dir).map_err(|_| HashIndexError::Outside {
        uri: crate::store::redact_url(&dir),
        base: base.location().to_uri(),
    })?;
    let listed: Vec<object_store::ObjectMeta> =
        match base.object_store().list(Some(&prefix)).try_collect().await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => vec![],
            Err(e) => {
                return Err(HashIndexError::Store {
                    uri: crate::store::redact_url(&dir),
                    reason: e.to_string(),
                });
            }
        };
    let mut seqs: Vec<u64> = listed
        .iter()
        .filter(|m| {
            m.location
                .prefix_match(&prefix)
                .is_some_and(|mut p| p.nth(1).is_none())
        })
        .filter_map(|m| m.location.filename().and_then(seq_of))
        .collect();
    seqs.sort_unstable();
    let found: Vec<(u64, IndexObject, Option<Footer>)> = futures::stream::iter(seqs)
        .map(|seq| {
            let uri = delta_uri(&dir, seq);
            async move {
                let object = IndexObject::locate(base, &uri)?;
                let footer = match object.footer().await {
                    Ok(f) => f,
                    // Unreadable: stale, the table still says what it held.
                    Err(HashIndexError::Existing(_)) => None,
                    Err(e) => return Err(e),
                };
                Ok::<_, HashIndexError>((seq, object, footer))
            }
        })
        .buffered(FOOTER_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(link(main, found, dir))
}

/// Splits the deltas found (ascending `seq`; None: vanished or unreadable)
/// into those chained to `main` and stale ones.
pub fn link(
    main: Option<&Reflects>,
    found: Vec<(u64, IndexObject, Option<Footer>)>,
    dir: String,
) -> Deltas {
    let mut deltas = Deltas {
        next_seq: found.last().map_or(1, |(seq, _, _)| seq + 1),
        dir,
        ..Default::default()
    };
    let mut tip = main.cloned();
    let mut broken = tip.is_none();
    for (seq, object, footer) in found {
        let extends = |f: &Footer, tip: &Reflects| {
            let (Some(reflects), Some(of)) = (&f.reflects, &f.delta_of) else {
                return false;
            };
            reflects.table_uuid == tip.table_uuid && of.base_snapshot_id == tip.snapshot_id
        };
        match (footer, &tip) {
            (Some(f), Some(t)) if !broken && extends(&f, t) => {
                tip = f.reflects.clone();
                deltas.chained.push(Delta {
                    seq,
                    object,
                    footer: f,
                });
            }
            _ => {
                // Before the chain starts: a leftover of an earlier merge.
                // After it: the chain ends here, later ones cannot extend it.
                broken |= !deltas.chained.is_empty();
                deltas.stale.push(object);
            }
        }
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::hash_index::file::DeltaOf;

    fn reflects(uuid: &str, snapshot: i64) -> Reflects {
        Reflects {
            table_uuid: uuid.into(),
            snapshot_id: Some(snapshot),
        }
    }

    fn delta(seq: u64, uuid: &str, base: i64, snapshot: i64) -> (u64, IndexObject, Option<Footer>) {
        let location = crate::store::Location::parse("/tmp").unwrap();
        let store = crate::store::open_location(&location, &Default::default()).unwrap();
        let object = IndexObject::locate(&store, &delta_uri("/tmp/x.deltas", seq)).unwrap();
        let footer = Footer {
            rows: 10,
            reflects: Some(reflects(uuid, snapshot)),
            delta_of: Some(DeltaOf {
                base_snapshot_id: Some(base),
            }),
        };
        (seq, object, Some(footer))
    }

    fn seqs(objects: impl Iterator<Item = u64>) -> Vec<u64> {
        objects.collect()
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            dir_uri("/c/warehouse_id_hashes.parquet"),
            "/c/warehouse_id_hashes.deltas"
        );
        assert_eq!(
            delta_uri("/c/x.deltas", 42),
            "/c/x.deltas/0000000042.parquet"
        );
        assert_eq!(seq_of("0000000042.parquet"), Some(42));
        assert_eq!(seq_of("42.parquet"), None);
        assert_eq!(seq_of(".0000000042.parquet.tmp-ab"), None);
    }

    #[test]
    fn deltas_chain_from_the_main_file_and_leftovers_are_stale() {
        let main = reflects("t", 5);
        let found = vec![
            delta(1, "t", 1, 3), // merged already: main reflects 5 now
            delta(2, "t", 3, 5), // idem
            delta(3, "t", 5, 6),
            delta(4, "other", 6, 7), // another table's
            delta(5, "t", 6, 8),     // extends 6, but the chain broke at 4
        ];
        let d = link(Some(&main), found, "/tmp/x.deltas".into());
        assert_eq!(seqs(d.chained.iter().map(|d| d.seq)), vec![3]);
        assert_eq!(d.stale.len(), 4);
        assert_eq!(d.tip(Some(&main)), Some(&reflects("t", 6)));
        assert_eq!(d.next_seq, 6);
        assert_eq!(d.rows(), 10);

        let found = vec![delta(7, "t", 5, 6), delta(8, "t", 6, 9)];
        let d = link(Some(&main), found, "/tmp/x.deltas".into());
        assert_eq!(seqs(d.chained.iter().map(|d| d.seq)), vec![7, 8]);
        assert_eq!(d.tip(Some(&main)), Some(&reflects("t", 9)));

        // No usable main file: nothing chains.
        let d = link(None, vec![delta(1, "t", 5, 6)], "/tmp/x.deltas".into());
        assert!(d.chained.is_empty() && d.stale.len() == 1);
        // None found: the main file is the tip.
        let d = link(Some(&main), vec![], "/tmp/x.deltas".into());
        assert_eq!((d.tip(Some(&main)), d.next_seq), (Some(&main), 1));
    }

    #[test]
    fn a_merge_is_due_past_either_threshold() {
        let one = |n: usize| Deltas {
            chained: (0..n)
                .map(|i| {
                    let (seq, object, footer) = delta(i as u64 + 1, "t", 0, 0);
                    Delta {
                        seq,
                        object,
                        footer: footer.unwrap(),
                    }
                })
                .collect(),
            ..Default::default()
        };
        assert!(!one(0).merge_due(0, DELTA_ROWS_FLOOR));
        assert!(one(0).merge_due(0, DELTA_ROWS_FLOOR + 1));
        assert!(!one(MAX_DELTAS - 1).merge_due(0, 1));
        assert!(one(MAX_DELTAS).merge_due(0, 1));
        let big = DELTA_ROWS_FLOOR * DELTA_SHARE * 2;
        assert!(!one(1).merge_due(big, big / DELTA_SHARE - 10));
        assert!(one(1).merge_due(big, big / DELTA_SHARE));
    }
}
