//! The steal audit log: object stores cannot append, so every steal is one
//! small JSON object, `<base>/.lock-audit/<UTC time>-<new nonce>.json`, written
//! create-only. Names sort by time.

use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::record::{LockRecord, iso_utc};
use super::{LockError, LockState};
use crate::store::Store;

/// Folder of the audit log, below the catalog base.
pub const AUDIT_DIR: &str = ".lock-audit";

/// Who did something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub owner: String,
    pub hostname: String,
    pub pid: i64,
    pub operation: Option<String>,
}

/// One steal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// "steal".
    pub event: String,
    /// When (ISO-8601 UTC, our clock).
    pub at: String,
    pub by: Party,
    /// The record taken over, or `{"unreadable": …, "fingerprint": …}`.
    pub from: Value,
    pub generation_before: Option<u64>,
    pub generation_after: Option<u64>,
    /// The new holder's nonce.
    pub nonce: Option<String>,
    /// What entitled the steal (stale, forced with which token).
    pub why: String,
}

/// Records a steal of `previous` by `new`; returns the audit object's location.
pub async fn record_steal(
    store: &Store,
    previous: &LockState,
    new: &LockRecord,
    why: &str,
) -> Result<String, LockError> {
    let now = chrono::Utc::now();
    let from = match previous {
        LockState::Held { record, .. } => serde_json::to_value(record).unwrap_or(Value::Null),
        LockState::Unreadable {
            preview,
            fingerprint,
            reason,
            ..
        } => json!({"unreadable": preview, "reason": reason, "fingerprint": fingerprint}),
        LockState::Free { .. } => Value::Null,
    };
    let entry = AuditEntry {
        event: "steal".into(),
        at: iso_utc(now),
        by: Party {
            owner: new.owner.clone(),
            hostname: new.hostname.clone(),
            pid: new.pid,
            operation: new.operation.clone(),
        },
        from,
        generation_before: previous.any_record().and_then(|r| r.generation),
        generation_after: new.generation,
        nonce: new.nonce.clone(),
        why: why.to_string(),
    };
    let name = format!(
        "{AUDIT_DIR}/{}-{}.json",
        now.format("%Y%m%dT%H%M%S%.6fZ"),
        new.nonce.as_deref().unwrap_or("none")
    );
    let uri = store.uri(&name);
    let body = serde_json::to_vec(&entry).unwrap_or_default();
    store
        .object_store()
        .put_opts(
            &store.key(&name),
            body.into(),
            PutOptions::from(PutMode::Create),
        )
        .await
        .map_err(|source| LockError::Audit {
            uri: uri.clone(),
            source,
        })?;
    Ok(uri)
}

/// Every audit record, oldest first. Unparsable objects are skipped with a warning.
pub async fn read_audit(store: &Store) -> Result<Vec<AuditEntry>, LockError> {
    let os = store.object_store();
    let prefix = store.key(AUDIT_DIR);
    let err = |source| LockError::Audit {
        uri: store.uri(AUDIT_DIR),
        source,
    };
    let mut metas = match os.list(Some(&prefix)).try_collect::<Vec<_>>().await {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut entries = Vec::with_capacity(metas.len());
    for meta in metas {
        let bytes = os
            .get(&meta.location)
            .await
            .map_err(err)?
            .bytes()
            .await
            .map_err(err)?;
        match serde_json::from_slice(&bytes) {
            Ok(entry) => entries.push(entry),
            Err(e) => tracing::warn!("skipping audit record {}: {e}", meta.location),
        }
    }
    Ok(entries)
}
