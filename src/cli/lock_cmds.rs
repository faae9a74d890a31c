//! `ecops lock …`.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::{Settings, print_json};
use crate::lock::{LockState, read_lock};
use crate::store::{Location, open_location};

pub async fn status(settings: &Settings) -> Result<ExitCode> {
    let location = Location::parse(settings.require_base()?)?;
    let store = open_location(&location, &settings.open.s3)?;
    let state = read_lock(&store).await?;
    let value = match &state {
        LockState::Free => json!({"held": false, "lock": store.uri(crate::catalog::LOCK_FILE)}),
        LockState::Held {
            record, assessment, ..
        } => json!({
            "held": true,
            "readable": true,
            "owner": record.owner,
            "hostname": record.hostname,
            "pid": record.pid,
            "acquired": record.acquired,
            "ttl_hours": record.ttl_hours,
            "heartbeat": record.heartbeat,
            "generation": record.generation,
            "nonce": record.nonce,
            "operation": record.operation,
            "job_id": record.job_id,
            "progress": record.progress,
            "age_seconds": assessment.age_seconds,
            "stale_at": assessment.stale_at,
            "stale": assessment.stale,
            "stale_reason": assessment.stale_reason,
        }),
        LockState::Unreadable { reason, preview } => json!({
            "held": true,
            "readable": false,
            "stale": false,
            "reason": reason,
            "preview": preview,
        }),
    };
    if settings.json {
        print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    match &state {
        LockState::Free => println!("lock {} is free", store.uri(crate::catalog::LOCK_FILE)),
        LockState::Held {
            record, assessment, ..
        } => {
            let age = assessment
                .age_seconds
                .map_or("unknown".to_string(), format_age);
            println!(
                "held by {} on {} (pid {}), operation {}, generation {}",
                record.owner,
                record.hostname,
                record.pid,
                record.operation.as_deref().unwrap_or("-"),
                record
                    .generation
                    .map_or("- (earthcatalog lock)".to_string(), |g| g.to_string())
            );
            println!(
                "acquired {}, last heartbeat {age} ago, TTL {} h",
                record.acquired, record.ttl_hours
            );
            match (&assessment.stale_reason, assessment.stale_at) {
                (Some(crate::lock::StaleReason::HolderGone), _) => {
                    println!(
                        "STALE: process {} no longer exists on this host",
                        record.pid
                    )
                }
                (Some(_), Some(at)) => println!("STALE since {}", at.to_rfc3339()),
                (_, Some(at)) => println!("becomes stale at {}", at.to_rfc3339()),
                _ => println!("acquired time unreadable"),
            }
        }
        LockState::Unreadable { reason, preview } => {
            println!(
                "the lock object is not a lock record ({reason}); content starts: {preview:?}"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn format_age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
