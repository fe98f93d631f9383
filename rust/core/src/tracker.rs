//! Per-connection in-flight table: every open stream keyed by its stream id, each with its own
//! deadline on one timer wheel (`DelayQueue`), so a thousand open streams cost one timer.

use std::collections::HashMap;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_util::time::{delay_queue, DelayQueue};

use crate::request::Request;

/// One open stream. `S` is the handle used to reset it (h2's `SendStream` in the engine).
#[derive(Debug)]
pub struct InFlight<S> {
    pub request: Request,
    pub stream: S,
    pub opened_at: Instant,
    timer: delay_queue::Key,
}

pub struct Tracker<S> {
    open: HashMap<u32, InFlight<S>>,
    deadlines: DelayQueue<u32>,
}

impl<S> Default for Tracker<S> {
    fn default() -> Self {
        Tracker {
            open: HashMap::new(),
            deadlines: DelayQueue::new(),
        }
    }
}

impl<S> Tracker<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Track a stream that was just opened; it expires `timeout` from now.
    pub fn insert(&mut self, stream_id: u32, request: Request, stream: S, timeout: Duration) {
        let timer = self.deadlines.insert(stream_id, timeout);
        let previous = self.open.insert(
            stream_id,
            InFlight {
                request,
                stream,
                opened_at: Instant::now(),
                timer,
            },
        );
        debug_assert!(
            previous.is_none(),
            "stream id {stream_id} reused on one connection"
        );
    }

    /// The stream finished (answer or error): stop its timer and hand back its entry.
    /// `None` means it already expired, so a late answer is ignored: exactly one outcome.
    pub fn complete(&mut self, stream_id: u32) -> Option<InFlight<S>> {
        let entry = self.open.remove(&stream_id)?;
        // try_remove: the key is valid while the entry exists, but never risk a panic.
        self.deadlines.try_remove(&entry.timer);
        Some(entry)
    }

    /// The next stream whose deadline passed, in deadline order; `Ready(None)` when nothing is open.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Option<(u32, InFlight<S>)>> {
        loop {
            match self.deadlines.poll_expired(cx) {
                Poll::Ready(Some(expired)) => {
                    let stream_id = expired.into_inner();
                    // Remove the entry now: DelayQueue reuses keys, a stale one must never
                    // cancel a newer timer.
                    if let Some(entry) = self.open.remove(&stream_id) {
                        return Poll::Ready(Some((stream_id, entry)));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Wait for the next expiry. Pending forever while nothing is open (safe inside `select!`).
    pub async fn next_expired(&mut self) -> (u32, InFlight<S>) {
        std::future::poll_fn(|cx| match self.poll_expired(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(item),
            _ => Poll::Pending,
        })
        .await
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Remove every open stream (the connection is gone).
    pub fn drain(&mut self) -> Vec<(u32, InFlight<S>)> {
        self.deadlines.clear();
        self.open.drain().collect()
    }
}

/// Whether a connection whose last stream got `stream_id` must be rotated: HTTP/2 stream ids
/// are odd, client-chosen and end at 2^31-1, so a long-lived connection runs out of them.
pub fn must_rotate(stream_id: u32, limit: u32) -> bool {
    stream_id >= limit
}

#[cfg(test)]
mod tests {

    use super::*;

    fn req(id: u64) -> Request {
        crate::request::test_request(id)
    }

    #[tokio::test(start_paused = true)]
    async fn streams_expire_in_deadline_order_not_insertion_order() {
        let mut t: Tracker<()> = Tracker::new();
        t.insert(1, req(10), (), Duration::from_millis(300));
        t.insert(3, req(11), (), Duration::from_millis(100));
        t.insert(5, req(12), (), Duration::from_millis(200));
        let start = tokio::time::Instant::now();
        let order: Vec<u32> = [
            t.next_expired().await.0,
            t.next_expired().await.0,
            t.next_expired().await.0,
        ]
        .into();
        assert_eq!(order, vec![3, 5, 1]);
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(t.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn completed_streams_never_expire_and_late_answers_are_ignored() {
        let mut t: Tracker<()> = Tracker::new();
        t.insert(1, req(1), (), Duration::from_millis(100));
        t.insert(3, req(2), (), Duration::from_millis(200));
        assert_eq!(t.complete(1).map(|e| e.request.id), Some(1));
        let (sid, entry) = t.next_expired().await;
        assert_eq!((sid, entry.request.id), (3, 2));
        // The answer for stream 3 arrives after its deadline: no second outcome.
        assert!(t.complete(3).is_none());
        assert!(t.complete(1).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn timer_keys_are_not_confused_after_reuse() {
        let mut t: Tracker<()> = Tracker::new();
        for round in 0..50u32 {
            let a = round * 4 + 1;
            let b = round * 4 + 3;
            t.insert(a, req(u64::from(a)), (), Duration::from_millis(50));
            t.insert(b, req(u64::from(b)), (), Duration::from_millis(10));
            let (sid, _) = t.next_expired().await;
            assert_eq!(sid, b);
            assert!(t.complete(a).is_some());
        }
        assert!(t.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn empty_tracker_stays_pending() {
        let mut t: Tracker<()> = Tracker::new();
        let r = tokio::time::timeout(Duration::from_secs(5), t.next_expired()).await;
        assert!(r.is_err());
    }

    #[test]
    fn rotation_before_stream_id_exhaustion() {
        let limit = (1u32 << 31) - 1 - 2 * 10_000;
        assert!(!must_rotate(1, limit));
        assert!(!must_rotate(limit - 2, limit));
        assert!(must_rotate(limit, limit));
        assert!(must_rotate((1 << 31) - 1, limit));
    }

    #[test]
    fn drain_returns_everything() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut t: Tracker<()> = Tracker::new();
            for i in 0..10u32 {
                t.insert(i * 2 + 1, req(u64::from(i)), (), Duration::from_secs(1));
            }
            assert_eq!(t.drain().len(), 10);
            assert!(t.is_empty());
        });
    }
}
