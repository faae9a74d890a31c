//! One *unit* of work: a few hundred inventory entries fetched (bounded by
//! the job's permits), parsed, validated and fanned out on the blocking
//! threads, ending as one outcome per entry and the unit's Arrow rows.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::super::dead_letter::{DeadLetter, Stage};
use super::super::fetch::{Fetcher, Source};
use super::super::inventory::{Entry, InventoryRow};
use crate::catalog::schema::NO_CELL;
use crate::stac::Item;
use crate::stac::item::parse_item;

/// Result of one inventory entry.
pub(super) enum Outcome {
    /// The item's rows are `start..start + len` of its unit's [`UnitRows`].
    Row {
        position: u64,
        start: u32,
        len: u32,
        bytes: u64,
        no_geometry: bool,
    },
    Failed {
        letter: DeadLetter,
        /// The entry was an item (not an unreadable inventory row).
        listed: bool,
        /// Bytes fetched before it failed (0 if the fetch failed).
        bytes: u64,
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
    pub resolution: h3o::Resolution,
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
/// A body, fetched (None: not attempted).
type Body = Option<Result<Bytes, String>>;

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
        Some(ctx.fetcher.fetch(source).await.map_err(|e| e.to_string()))
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
                Ok(Source::Local(p)) => {
                    Some(super::super::fetch::read_file(p).map_err(|e| e.to_string()))
                }
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
            } => {
                let len = cells.len() as u32;
                let start = n_rows;
                n_rows += len;
                let no_geometry = item.geometry.is_none();
                parsed.push((*item, cells));
                Outcome::Row {
                    position,
                    start,
                    len,
                    bytes,
                    no_geometry,
                }
            }
            Parsed::Failed(outcome) => outcome,
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
    },
    Failed(Outcome),
}

/// Judges one entry: an unreadable row, a fetch that failed, a body that
/// does not parse or tile — each a dead letter with its stage — or an item.
fn outcome_of(ctx: &Ctx, entry: Entry, source: Result<Source, String>, fetched: Body) -> Parsed {
    let uri = source.as_ref().ok().map(Source::uri);
    let failed = |letter, listed, bytes| {
        Parsed::Failed(Outcome::Failed {
            letter,
            listed,
            bytes,
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
        (Ok(_), Some(Err(reason))) => return failed(letter(uri, Stage::Fetch, reason), true, 0),
        (Ok(_), Some(Ok(body))) => body,
    };
    match parse_and_tile(&body, ctx.resolution) {
        Ok((item, cells)) => Parsed::Item {
            position: row.position,
            item: Box::new(item),
            cells,
            bytes: body.len() as u64,
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

/// Parses an item body and computes its cells (`__none__` without geometry).
fn parse_and_tile(
    body: &[u8],
    res: h3o::Resolution,
) -> Result<(Item, Vec<String>), (Stage, String)> {
    let item = parse_item(body).map_err(|e| (Stage::Parse, e.to_string()))?;
    let cells = match &item.geometry {
        None => vec![NO_CELL.to_string()],
        Some(g) => {
            let cells = crate::grid::cells_for(g, res).map_err(|e| (Stage::Grid, e.to_string()))?;
            if cells.is_empty() {
                return Err((Stage::Grid, "geometry covers no H3 cell".into()));
            }
            cells.iter().map(ToString::to_string).collect()
        }
    };
    Ok((item, cells))
}
