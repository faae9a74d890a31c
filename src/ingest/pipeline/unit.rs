//! One *unit* of work: a few hundred inventory entries fetched (bounded by
//! the job's permits), parsed, validated and fanned out on the blocking
//! threads, ending as one outcome per entry and the unit's Arrow rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::super::dead_letter::{DeadLetter, Stage};
use super::super::fetch::{FetchError, Fetcher, Source};
use super::super::inventory::{Entry, InventoryRow};
use crate::catalog::hash_index::KnownIds;
use crate::catalog::schema::NO_CELL;
use crate::grid::{Grid, OUTSIDE};
use crate::stac::Item;
use crate::stac::item::parse_item;

/// Result of one inventory entry.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The item's rows are `start..start + len` of its unit's [`UnitRows`].
    Row {
        position: u64,
        start: u32,
        len: u32,
        bytes: u64,
        no_geometry: bool,
        /// It touches no region of a GeoJSON grid.
        outside: bool,
        /// When its body arrived (the source answered then).
        at: Option<Instant>,
    },
    Failed {
        letter: DeadLetter,
        /// The entry was an item (not an unreadable inventory row).
        listed: bool,
        /// Bytes fetched before it failed (0 if the fetch failed).
        bytes: u64,
        /// The fetch failed in a way that says the whole source is
        /// unreachable (a run of these is an outage, not bad items).
        outage: Option<&'static str>,
        /// When its fetch ended (None: no fetch was made).
        at: Option<Instant>,
    },
}

/// The rows a unit produced, one per (item, cell), in the table's Arrow
/// schema, with each row's partition year alongside (not a table column).
pub(super) struct UnitRows {
    pub batch: RecordBatch,
    pub years: Vec<Option<i32>>,
}

/// A finished unit: one outcome per entry, in order, and their rows.
pub(super) struct UnitOut {
    pub outcomes: Vec<Outcome>,
    pub rows: Option<Arc<UnitRows>>,
}

/// Shared by unit tasks.
pub(super) struct Ctx {
    pub fetcher: Fetcher,
    /// The table's grid (H3 cells or regions).
    pub grid: Grid,
    /// `--skip-known`: the ids the hash index holds.
    pub known: Option<Arc<KnownIds>>,
    /// Check that every item fetched has the id its file name says
    /// (`--skip-known` relies on it).
    pub check_ids: bool,
    /// Rows dropped because their id is known.
    pub skipped_known: AtomicU64,
    pub job_id: String,
    /// Caps fetches in flight (`--concurrency`).
    pub permits: Arc<Semaphore>,
    /// Retry runs fetch from the recorded URIs, by position.
    pub sources: Option<Vec<Option<Source>>>,
    /// The table's Arrow schema (rows are built in units).
    pub schema: SchemaRef,
}

impl Ctx {
    /// A dead letter of this job.
    fn letter(
        &self,
        position: u64,
        row: Option<&InventoryRow>,
        uri: Option<String>,
        stage: Stage,
        reason: String,
    ) -> DeadLetter {
        DeadLetter {
            job_id: self.job_id.clone(),
            position,
            bucket: row.map(|r| r.bucket.clone()),
            key: row.map(|r| r.key.clone()),
            uri,
            stage,
            reason,
            at: Utc::now(),
        }
    }

    /// True (and counted) when `--skip-known` drops this entry: an item row
    /// whose file name, as an id, is in the hash index.
    pub fn is_known(&self, entry: &Entry) -> bool {
        let (Some(known), Entry::Item(row)) = (&self.known, entry) else {
            return false;
        };
        let hit = known.contains_id(id_of_key(&row.key));
        if hit {
            self.skipped_known.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Where an entry's body is (or why it cannot be fetched).
    fn locate(&self, entry: &Entry) -> Result<Source, String> {
        match entry {
            Entry::Item(row) => match self.sources.as_ref() {
                Some(list) => list
                    .get(row.position as usize)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| "no recorded source".to_string()),
                None => self.fetcher.locate(row).map_err(|e| e.to_string()),
            },
            Entry::BadRow { reason, .. } => Err(reason.clone()),
        }
    }
}

/// An entry with where its body is.
type Located = (Entry, Result<Source, String>);
/// A body, fetched, and when the fetch ended (None: not attempted).
type Body = Option<(Result<Bytes, FetchError>, Instant)>;

/// Fetches, parses and fans out one unit of entries.
pub(super) fn spawn_unit(
    ctx: Arc<Ctx>,
    entries: Vec<Entry>,
) -> JoinHandle<Result<UnitOut, String>> {
    tokio::spawn(async move {
        let located: Vec<Located> = entries
            .into_iter()
            .map(|e| {
                let source = ctx.locate(&e);
                (e, source)
            })
            .collect();
        // Local files are read on the blocking thread with the parse.
        let all_local = located
            .iter()
            .all(|(_, s)| s.as_ref().is_ok_and(Source::is_local) || s.is_err());
        let bodies = if all_local {
            Vec::new()
        } else {
            fetch_bodies(&ctx, &located).await
        };
        let parse = {
            let ctx = ctx.clone();
            tokio::task::spawn_blocking(move || parse_unit(&ctx, located, bodies, all_local))
        };
        parse.await.map_err(|e| format!("parse task failed: {e}"))?
    })
}

/// Fetches every locatable entry's body, at most `permits` at a time.
async fn fetch_bodies(ctx: &Arc<Ctx>, located: &[Located]) -> Vec<Body> {
    let fetches = located.iter().map(|(_, source)| async move {
        let source = source.as_ref().ok()?;
        let _permit = ctx.permits.acquire().await.ok()?;
        Some((ctx.fetcher.fetch(source).await, Instant::now()))
    });
    futures::future::join_all(fetches).await
}

/// Turns fetched bodies into outcomes and Arrow rows (blocking thread).
fn parse_unit(
    ctx: &Ctx,
    located: Vec<Located>,
    bodies: Vec<Body>,
    all_local: bool,
) -> Result<UnitOut, String> {
    let mut outcomes = Vec::with_capacity(located.len());
    let mut parsed: Vec<(Item, Vec<String>)> = Vec::new();
    let mut n_rows: u32 = 0;
    let mut bodies = bodies.into_iter();
    for (entry, source) in located {
        let fetched = if all_local {
            match &source {
                Ok(Source::Local(p)) => Some((super::super::fetch::read_file(p), Instant::now())),
                _ => None,
            }
        } else {
            bodies.next().flatten()
        };
        let outcome = match outcome_of(ctx, entry, source, fetched) {
            Parsed::Item {
                position,
                item,
                cells,
                bytes,
                at,
            } => {
                let len = cells.len() as u32;
                let start = n_rows;
                n_rows += len;
                let no_geometry = item.geometry.is_none();
                let outside = cells.len() == 1 && cells[0] == OUTSIDE;
                parsed.push((*item, cells));
                Outcome::Row {
                    position,
                    start,
                    len,
                    bytes,
                    no_geometry,
                    outside,
                    at,
                }
            }
            Parsed::Failed(outcome) => outcome,
            Parsed::Fatal(reason) => return Err(reason),
        };
        outcomes.push(outcome);
    }
    let rows = unit_rows(&ctx.schema, &parsed)?;
    Ok(UnitOut { outcomes, rows })
}

/// One entry's fate before its rows are counted.
enum Parsed {
    Item {
        position: u64,
        item: Box<Item>,
        cells: Vec<String>,
        bytes: u64,
        at: Option<Instant>,
    },
    Failed(Outcome),
    /// The job cannot go on (an item whose id is not its file name under `--skip-known`).
    Fatal(String),
}

/// Judges one entry: an unreadable row, a fetch that failed, a body that
/// does not parse or tile — each a dead letter with its stage — or an item.
fn outcome_of(ctx: &Ctx, entry: Entry, source: Result<Source, String>, fetched: Body) -> Parsed {
    let uri = source.as_ref().ok().map(Source::uri);
    let at = fetched.as_ref().map(|(_, at)| *at);
    let failed = |letter, listed, bytes| {
        Parsed::Failed(Outcome::Failed {
            letter,
            listed,
            bytes,
            outage: None,
            at,
        })
    };
    let row = match entry {
        Entry::BadRow {
            position,
            source_name,
            at,
            reason,
        } => {
            let at = Some(format!("{source_name} line/row {at}"));
            return failed(
                ctx.letter(position, None, at, Stage::Inventory, reason),
                false,
                0,
            );
        }
        Entry::Item(row) => row,
    };
    let letter = |uri, stage, reason| ctx.letter(row.position, Some(&row), uri, stage, reason);
    let body = match (source, fetched) {
        (Err(reason), _) => return failed(letter(None, Stage::Fetch, reason), true, 0),
        (Ok(_), None) => {
            return failed(
                letter(uri, Stage::Fetch, "fetch was not attempted".into()),
                true,
                0,
            );
        }
        (Ok(_), Some((Err(error), _))) => {
            let outage = error.outage();
            return Parsed::Failed(Outcome::Failed {
                letter: letter(uri, Stage::Fetch, error.to_string()),
                listed: true,
                bytes: 0,
                outage,
                at,
            });
        }
        (Ok(_), Some((Ok(body), _))) => body,
    };
    match parse_and_tile(&body, &ctx.grid) {
        Ok((item, _)) if ctx.check_ids && item.id != id_of_key(&row.key) => Parsed::Fatal(format!(
            "--skip-known: item '{}' at {} is not named after its id (expected '{}.stac.json'); \
             skipping known items by file name would be wrong for this inventory",
            item.id,
            uri.as_deref().unwrap_or(&row.key),
            item.id
        )),
        Ok((item, cells)) => Parsed::Item {
            position: row.position,
            item: Box::new(item),
            cells,
            bytes: body.len() as u64,
            at,
        },
        Err((stage, reason)) => failed(letter(uri, stage, reason), true, body.len() as u64),
    }
}

/// The Arrow rows of a unit's parsed items (None when there are none).
fn unit_rows(
    schema: &SchemaRef,
    parsed: &[(Item, Vec<String>)],
) -> Result<Option<Arc<UnitRows>>, String> {
    if parsed.is_empty() {
        return Ok(None);
    }
    let pairs: Vec<(&Item, &str)> = parsed
        .iter()
        .flat_map(|(item, cells)| cells.iter().map(move |c| (item, c.as_str())))
        .collect();
    let years = parsed
        .iter()
        .flat_map(|(item, cells)| std::iter::repeat_n(item.partition_year(), cells.len()))
        .collect();
    let batch = crate::stac::batch::rows_to_batch(schema, &pairs)
        .map_err(|e| format!("building Arrow rows: {e}"))?;
    // Builders grow by doubling; a chunk holds these rows until its commit,
    // so give the slack back (about a quarter of the chunk's memory).
    let (schema, mut columns, _) = batch.into_parts();
    for column in &mut columns {
        if let Some(array) = Arc::get_mut(column) {
            array.shrink_to_fit();
        }
    }
    let batch =
        RecordBatch::try_new(schema, columns).map_err(|e| format!("building Arrow rows: {e}"))?;
    Ok(Some(Arc::new(UnitRows { batch, years })))
}

/// Parses an item body and computes its partitions (`__none__` without geometry).
fn parse_and_tile(body: &[u8], grid: &Grid) -> Result<(Item, Vec<String>), (Stage, String)> {
    let item = parse_item(body).map_err(|e| (Stage::Parse, e.to_string()))?;
    let cells = match &item.geometry {
        None => vec![NO_CELL.to_string()],
        Some(g) => {
            let cells = grid
                .partitions(g)
                .map_err(|e| (Stage::Grid, e.to_string()))?;
            if cells.is_empty() {
                return Err((Stage::Grid, "geometry covers no grid cell".into()));
            }
            cells
        }
    };
    Ok((item, cells))
}

/// The item id a key names (ITS_LIVE's layout): its file name without
/// `.stac.json` (or `.json`).
pub(super) fn id_of_key(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.strip_suffix(".stac.json")
        .or_else(|| name.strip_suffix(".json"))
        .unwrap_or(name)
}
