//! Where outcomes leave the engine: the caller's sink, behind a count of outstanding requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::outcome::Outcome;

/// Receives outcomes in batches, from engine threads. Must not block for long.
pub trait CompletionSink: Send + Sync + 'static {
    fn complete(&self, outcomes: Vec<Outcome>);
}

/// Counts outcomes out of the in-flight window before handing them to the caller's sink.
pub(crate) struct Completions {
    sink: Arc<dyn CompletionSink>,
    outstanding: AtomicUsize,
}

impl Completions {
    pub(crate) fn new(sink: Arc<dyn CompletionSink>) -> Self {
        Completions {
            sink,
            outstanding: AtomicUsize::new(0),
        }
    }

    /// `n` more requests are waiting for their outcome.
    pub(crate) fn add_outstanding(&self, n: usize) {
        self.outstanding.fetch_add(n, Ordering::AcqRel);
    }

    /// Requests submitted whose outcome has not been delivered yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    pub(crate) fn complete(&self, outcomes: Vec<Outcome>) {
        let n = outcomes.len();
        self.sink.complete(outcomes);
        self.outstanding.fetch_sub(n, Ordering::AcqRel);
    }
}
