//! The pool's queue of requests waiting for a stream. Connection drivers pull from it when they
//! have a free stream slot, so a slow connection never holds work a fast one could do.
//! Retries of never-processed requests go to the front: they have waited longest.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::request::Request;

#[derive(Default)]
pub struct WorkQueue {
    items: Mutex<VecDeque<Request>>,
    /// Wakes connection drivers waiting in [`WorkQueue::pop`].
    drivers: Notify,
    /// Wakes the pool manager, which opens connections when work waits.
    manager: Notify,
}

impl WorkQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push_back(&self, requests: impl IntoIterator<Item = Request>) {
        self.lock().extend(requests);
        self.wake();
    }

    pub fn push_front(&self, request: Request) {
        self.lock().push_front(request);
        self.wake();
    }

    fn wake(&self) {
        // Every waiting driver looks; the ones that find nothing go back to sleep. There are only
        // a handful of drivers per pool, and a lost wake-up would strand work.
        self.drivers.notify_waiters();
        self.manager.notify_one();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Wait for a request.
    pub async fn pop(&self) -> Request {
        loop {
            let notified = self.drivers.notified();
            tokio::pin!(notified);
            // Register before looking, so a push between the look and the wait is not missed.
            notified.as_mut().enable();
            if let Some(request) = self.lock().pop_front() {
                return request;
            }
            notified.await;
        }
    }

    /// A request if one is waiting, without waiting (a driver filling free slots in one turn).
    pub fn try_pop(&self) -> Option<Request> {
        self.lock().pop_front()
    }

    /// Wait until work has been pushed since the manager last looked.
    pub async fn work_arrived(&self) {
        self.manager.notified().await;
    }

    /// Remove and return every request for which `expired` is true.
    pub fn drain_where(&self, mut expired: impl FnMut(&Request) -> bool) -> Vec<Request> {
        let mut items = self.lock();
        let mut removed = Vec::new();
        items.retain(|r| {
            if expired(r) {
                removed.push(r.clone());
                false
            } else {
                true
            }
        });
        removed
    }

    /// Remove and return requests from the front for as long as `expired` is true for them. The
    /// queue is in submission order apart from retries and interleaved submitters, so this finds
    /// almost every expired request without looking at the rest; `drain_where` catches stragglers.
    pub fn drain_front_while(&self, mut expired: impl FnMut(&Request) -> bool) -> Vec<Request> {
        let mut items = self.lock();
        let mut removed = Vec::new();
        while items.front().is_some_and(&mut expired) {
            removed.extend(items.pop_front());
        }
        removed
    }

    /// Remove everything (shutdown, or no connection can be made).
    pub fn take_all(&self) -> Vec<Request> {
        self.lock().drain(..).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Request>> {
        // A panic while holding this lock cannot leave the deque inconsistent; keep going.
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn req(id: u64) -> Request {
        crate::request::test_request(id)
    }

    #[tokio::test]
    async fn retries_jump_the_queue() {
        let q = WorkQueue::new();
        q.push_back([req(1), req(2)]);
        q.push_front(req(0));
        assert_eq!(q.pop().await.id, 0);
        assert_eq!(q.pop().await.id, 1);
        assert_eq!(q.len(), 1);
        assert_eq!(q.try_pop().map(|r| r.id), Some(2));
        assert!(q.try_pop().is_none());
    }

    #[tokio::test]
    async fn waiting_drivers_are_woken() {
        let q = Arc::new(WorkQueue::new());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.pop().await.id })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.push_back([req(7), req(8), req(9)]);
        let mut got = Vec::new();
        for w in waiters {
            got.push(
                tokio::time::timeout(Duration::from_secs(2), w)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        got.sort_unstable();
        assert_eq!(got, vec![7, 8, 9]);
    }

    #[test]
    fn drain_where_removes_only_matches() {
        let q = WorkQueue::new();
        q.push_back((0..10).map(req));
        let gone = q.drain_where(|r| r.id % 2 == 0);
        assert_eq!(gone.len(), 5);
        assert_eq!(q.len(), 5);
    }

    #[test]
    fn drain_front_while_stops_at_the_first_survivor() {
        let q = WorkQueue::new();
        q.push_back([0, 1, 5, 2, 3].map(req));
        let gone = q.drain_front_while(|r| r.id < 4);
        assert_eq!(gone.iter().map(|r| r.id).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(q.len(), 3);
        assert!(q.drain_front_while(|r| r.id < 4).is_empty());
    }
}
