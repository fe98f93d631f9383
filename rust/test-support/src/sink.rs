//! A `CompletionSink` that collects outcomes for a test to wait on.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use pushwire_core::{CompletionSink, Outcome};

#[derive(Default)]
pub struct Collect {
    outcomes: Mutex<Vec<Outcome>>,
    arrived: Condvar,
}

impl CompletionSink for Collect {
    fn complete(&self, outcomes: Vec<Outcome>) {
        self.outcomes.lock().unwrap().extend(outcomes);
        self.arrived.notify_all();
    }
}

impl Collect {
    /// Everything collected once `n` outcomes arrived, or `None` after `limit`.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Option<Vec<Outcome>> {
        let deadline = Instant::now() + limit;
        let mut got = self.outcomes.lock().unwrap();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            got = self.arrived.wait_timeout(got, left).unwrap().0;
        }
        Some(std::mem::take(&mut *got))
    }

    /// Like [`Collect::wait_for`], failing the test if `n` outcomes do not arrive in time.
    pub fn wait_all(&self, n: usize, limit: Duration) -> Vec<Outcome> {
        self.wait_for(n, limit)
            .unwrap_or_else(|| panic!("only {} of {n} outcomes after {limit:?}", self.take().len()))
    }

    /// Whatever has arrived so far.
    pub fn take(&self) -> Vec<Outcome> {
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

/// Outcomes ordered by request id `0..n`, failing the test if any request has none or two.
pub fn by_id(outcomes: Vec<Outcome>, n: usize) -> Vec<Outcome> {
    let mut map: HashMap<u64, Outcome> = HashMap::new();
    for o in outcomes {
        assert!(
            map.insert(o.id, o).is_none(),
            "two outcomes for one request"
        );
    }
    assert_eq!(map.len(), n);
    (0..n as u64).map(|i| map.remove(&i).unwrap()).collect()
}
