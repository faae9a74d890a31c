//! One stop switch per job, shared by everyone who may ask it to stop: the
//! CLI's Ctrl-C, the console's cancel and pause keys, and an operator's
//! request in the run ledger (`ecops runs cancel`). Engines only see the
//! `watch::Receiver<bool>` they already take, and stop at their next commit.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::record::{ControlRecord, Request};

/// Who asked a job to stop, and whether to stop as paused.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRequest {
    pub request: Request,
    /// "Ctrl-C", "console", or the operator's description.
    pub by: String,
    /// The ledger record, when the request came through it.
    pub control: Option<ControlRecord>,
}

/// A job's stop switch. Cheap to clone; all clones are the same switch.
#[derive(Debug, Clone)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: watch::Sender<bool>,
    request: Mutex<Option<StopRequest>>,
}

impl Default for Stop {
    fn default() -> Self {
        Self::new()
    }
}

impl Stop {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                tx: watch::channel(false).0,
                request: Mutex::new(None),
            }),
        }
    }

    /// Asks the job to stop at its next commit. A cancel overrides an
    /// earlier pause; otherwise the first request is the one recorded.
    pub fn request(&self, request: Request, by: impl Into<String>, control: Option<ControlRecord>) {
        let mut current = self.inner.request.lock().unwrap_or_else(|p| p.into_inner());
        let replace = match current.as_ref() {
            None => true,
            Some(old) => old.request == Request::Pause && request == Request::Cancel,
        };
        if replace {
            *current = Some(StopRequest {
                request,
                by: by.into(),
                control,
            });
        }
        drop(current);
        self.inner.tx.send_replace(true);
    }

    /// The switch as the engines read it (true: stop at the next commit).
    /// A switch already tripped reads as a change, so a job started after
    /// the request still sees it.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        let mut rx = self.inner.tx.subscribe();
        if *rx.borrow() {
            rx.mark_changed();
        }
        rx
    }

    /// The request that stopped the job, if any.
    pub fn requested(&self) -> Option<StopRequest> {
        self.inner
            .request
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True when the job was asked to stop as paused.
    pub fn is_pause(&self) -> bool {
        self.requested()
            .is_some_and(|r| r.request == Request::Pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_overrides_a_pause_and_every_receiver_sees_it() {
        let stop = Stop::new();
        let rx = stop.receiver();
        assert!(!*rx.borrow());
        stop.request(Request::Pause, "console", None);
        assert!(*rx.borrow() && stop.is_pause());
        stop.request(Request::Pause, "someone else", None);
        assert_eq!(stop.requested().unwrap().by, "console");
        stop.clone().request(Request::Cancel, "Ctrl-C", None);
        assert_eq!(stop.requested().unwrap().request, Request::Cancel);
        assert!(!stop.is_pause());
    }
}
