//! Who else is here: each writer console keeps a presence record next to
//! the run ledger (`<base>/_ecops/consoles/<id>.json`: host, user, pid,
//! since, heartbeat), renewed every few seconds and removed when it quits;
//! a read-only console (or `--no-presence`) writes nothing. Every console
//! reads the others' records (a record whose heartbeat is older than three
//! periods is gone) and the running writers of the run ledger, and reports
//! them as [`Event::Presence`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::PutPayload;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::Event;
use crate::runs::record::{Actor, RunState};
use crate::store::Store;

/// Where presence records live, beside `_ecops/runs`.
pub const PRESENCE_DIR: &str = "_ecops/consoles";

/// One console's presence record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub id: String,
    pub by: Actor,
    pub since: DateTime<Utc>,
    pub heartbeat: DateTime<Utc>,
}

/// What the others are doing on the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Others {
    /// Other writer consoles, alive by their heartbeat.
    pub consoles: Vec<Presence>,
    /// Running writers from the run ledger ("ingest by alice@h (pid 9)").
    pub writers: Vec<String>,
}

/// How the presence task runs.
#[derive(Debug, Clone, Copy)]
pub struct PresenceOptions {
    /// Write our own record (a writer console with presence on).
    pub write: bool,
    pub every: Duration,
}

/// Starts the presence task; send on the returned channel to stop it (it
/// removes its record first and then answers).
pub(super) fn spawn(
    store: Store,
    events: mpsc::UnboundedSender<Event>,
    opts: PresenceOptions,
) -> mpsc::UnboundedSender<oneshot::Sender<()>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<()>>();
    let me = Presence {
        id: format!("{}", uuid::Uuid::now_v7().simple()),
        by: Actor::me(),
        since: Utc::now(),
        heartbeat: Utc::now(),
    };
    tokio::spawn(async move {
        let mut me = me;
        let mut tick = tokio::time::interval(opts.every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                reply = rx.recv() => {
                    if opts.write {
                        let _ = store.object_store().delete(&record_key(&store, &me.id)).await;
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(());
                    }
                    return;
                }
            }
            if opts.write {
                me.heartbeat = Utc::now();
                if let Err(e) = write(&store, &me).await {
                    tracing::warn!("presence record: {e}");
                }
            }
            let others = read_others(&store, &me.id, opts.every * 3).await;
            if events.send(Event::Presence(others)).is_err() {
                return;
            }
        }
    });
    tx
}

fn record_key(store: &Store, id: &str) -> object_store::path::Path {
    store.key(&format!("{PRESENCE_DIR}/{id}.json"))
}

async fn write(store: &Store, me: &Presence) -> Result<(), String> {
    let body = serde_json::to_vec(me).map_err(|e| e.to_string())?;
    store
        .object_store()
        .put(&record_key(store, &me.id), PutPayload::from(body))
        .await
        .map(|_| ())
        .map_err(|e| crate::store::redact_secrets(&e.to_string()))
}

/// Other live consoles and the ledger's running writers (read errors
/// leave a part empty: presence is advice, never a gate).
pub async fn read_others(store: &Store, my_id: &str, alive: Duration) -> Others {
    let mut others = Others::default();
    let prefix = store.key(PRESENCE_DIR);
    let listed: Vec<object_store::ObjectMeta> = store
        .object_store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .unwrap_or_default();
    let cutoff = Utc::now() - chrono::Duration::from_std(alive).unwrap_or_default();
    for meta in listed {
        let Ok(got) = store.object_store().get(&meta.location).await else {
            continue;
        };
        let Ok(bytes) = got.bytes().await else {
            continue;
        };
        if let Ok(p) = serde_json::from_slice::<Presence>(&bytes)
            && p.id != my_id
            && p.heartbeat >= cutoff
        {
            others.consoles.push(p);
        }
    }
    others.consoles.sort_by_key(|p| p.since);
    let ledger = crate::runs::Ledger::new(store);
    // The newest runs are the ones that can still be running.
    let ids = ledger.run_ids().await.unwrap_or_default();
    let me = Actor::me();
    for id in ids.iter().rev().take(10) {
        if let Ok(r) = ledger.read_run(id).await
            && r.state == RunState::Running
            && r.by != me
        {
            others
                .writers
                .push(format!("{} by {}", r.kind.label(), r.by.describe()));
        }
    }
    others
}
