//! The error at the job boundary: what a job tells the front ends (the CLI's
//! last line, the console's jobs pane, the run ledger) when it could not
//! start or failed. Its text is redacted exactly once, when it is built —
//! credentials in URLs and secret values never reach a screen or a record —
//! because every constructor goes through [`Redacted::new`].

use std::fmt;

use serde::Serialize;

/// Text that has been through [`crate::store::redact_secrets`]. The field is
/// private: the only way to make one is [`Redacted::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    /// Redacts `text` (credentials in URLs, secret values).
    pub fn new(text: impl fmt::Display) -> Self {
        Self(crate::store::redact_secrets(&text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a job did not end well. A job that started and then failed part-way
/// reports through its summary (phase failed, what it committed stays);
/// these are the errors of the boundary itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The job could not start: bad options, a read-only catalog, the lock
    /// held by someone else, unreadable input found up front. Nothing changed.
    #[error("{0}")]
    Refused(Redacted),
    /// The job failed.
    #[error("{0}")]
    Failed(Redacted),
    /// The catalog lock was taken from the job (stolen or gone) while it ran;
    /// it stopped before its next commit.
    #[error("{error} — the catalog lock was lost: {reason}")]
    LockLost { error: Redacted, reason: Redacted },
    /// A task of the job panicked or was aborted.
    #[error("a task of the job failed: {0}")]
    TaskFailed(Redacted),
}

impl JobError {
    /// A refusal before anything changed.
    pub fn refused(error: impl fmt::Display) -> Self {
        JobError::Refused(Redacted::new(error))
    }

    /// A failure.
    pub fn failed(error: impl fmt::Display) -> Self {
        JobError::Failed(Redacted::new(error))
    }

    /// `error`, which happened after the lock was lost for `reason`.
    pub fn lock_lost(error: impl fmt::Display, reason: impl fmt::Display) -> Self {
        JobError::LockLost {
            error: Redacted::new(error),
            reason: Redacted::new(reason),
        }
    }

    /// A task that panicked or was cancelled.
    pub fn task(error: impl fmt::Display) -> Self {
        JobError::TaskFailed(Redacted::new(error))
    }

    /// The redacted message.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl Serialize for JobError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constructor_redacts() {
        let secret = "s3 https://AKIA:wJalrXUtnFEMI@host/bucket failed";
        for e in [
            JobError::refused(secret),
            JobError::failed(secret),
            JobError::lock_lost(secret, secret),
            JobError::task(secret),
        ] {
            let text = e.to_string();
            assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
            assert!(text.contains("host/bucket"), "{text}");
        }
    }
}
