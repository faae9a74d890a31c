//! Dead letters: items (and inventory rows) that failed, with the reason,
//! stored with the catalog at `<base>/dead_letters/<job>/<first>-<end>.jsonl`.
//!
//! Object stores cannot append, so each committed chunk writes one object
//! (JSON lines) named by the inventory positions it covers. It is written
//! before the chunk's commit: a crash in between leaves a record that the
//! resumed chunk overwrites under the same name, or — if chunk boundaries
//! moved — one that readers de-duplicate by (job, position).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload, path::Path as ObjectPath};
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// Folder below the catalog base.
pub const DEAD_LETTER_DIR: &str = "dead_letters";

/// The stage an item failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The inventory row itself was unreadable.
    Inventory,
    Fetch,
    /// Not JSON, not STAC, bad id, datetimes or geometry.
    Parse,
    /// The geometry could not be fanned out to cells.
    Grid,
}

/// One failed item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub job_id: String,
    pub position: u64,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    /// Where the body was fetched from (absent for inventory rows).
    #[serde(default)]
    pub uri: Option<String>,
    pub stage: Stage,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Errors reading or writing dead letters.
#[derive(Debug, thiserror::Error)]
#[error("dead letters at {uri}: {message}")]
pub struct DeadLetterError {
    pub uri: String,
    pub message: String,
}

fn object_name(job_id: &str, first: u64, end: u64) -> String {
    format!("{DEAD_LETTER_DIR}/{job_id}/{first:012}-{end:012}.jsonl")
}

/// Writes the dead letters of one chunk covering positions `first..end`.
pub async fn write(
    base: &Store,
    job_id: &str,
    first: u64,
    end: u64,
    letters: &[DeadLetter],
) -> Result<(), DeadLetterError> {
    if letters.is_empty() {
        return Ok(());
    }
    let rel = object_name(job_id, first, end);
    let mut body = Vec::with_capacity(letters.len() * 256);
    for letter in letters {
        serde_json::to_writer(&mut body, letter).map_err(|e| DeadLetterError {
            uri: base.uri(&rel),
            message: e.to_string(),
        })?;
        body.push(b'\n');
    }
    base.object_store()
        .put(&base.key(&rel), PutPayload::from(body))
        .await
        .map_err(|e| DeadLetterError {
            uri: base.uri(&rel),
            message: e.to_string(),
        })?;
    Ok(())
}

/// Every dead letter of the catalog (or of one job), de-duplicated by
/// (job, position), with the objects they came from.
pub async fn read_all(
    base: &Store,
    job_id: Option<&str>,
) -> Result<(Vec<DeadLetter>, Vec<ObjectPath>), DeadLetterError> {
    let rel = match job_id {
        Some(j) => format!("{DEAD_LETTER_DIR}/{j}"),
        None => DEAD_LETTER_DIR.to_string(),
    };
    let err = |message: String| DeadLetterError {
        uri: base.uri(&rel),
        message,
    };
    let store = base.object_store();
    let prefix = base.key(&rel);
    let mut objects: Vec<ObjectPath> = match store.list(Some(&prefix)).try_collect::<Vec<_>>().await
    {
        Ok(list) => list.into_iter().map(|m| m.location).collect(),
        Err(object_store::Error::NotFound { .. }) => vec![],
        Err(e) => return Err(err(e.to_string())),
    };
    objects.retain(|p| p.as_ref().ends_with(".jsonl"));
    objects.sort();
    let mut letters = BTreeMap::new();
    for object in &objects {
        let bytes = store
            .get(object)
            .await
            .map_err(|e| err(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| err(e.to_string()))?;
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let letter: DeadLetter = serde_json::from_slice(line)
                .map_err(|e| err(format!("{object} line {}: {e}", n + 1)))?;
            letters.insert((letter.job_id.clone(), letter.position), letter);
        }
    }
    Ok((letters.into_values().collect(), objects))
}

/// Removes dead-letter objects (after a retry run re-recorded what still fails).
pub async fn remove(base: &Store, objects: &[ObjectPath]) -> Result<(), DeadLetterError> {
    let store = base.object_store();
    for object in objects {
        match store.delete(object).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(DeadLetterError {
                    uri: object.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(())
}
