//! A connection pool for one (host, port, credential identity): opens connections lazily up to
//! `max_connections` (resizable while running: extra connections drain, then close), replaces
//! retired ones, reconnects with capped exponential backoff and
//! jitter, and fails queued requests only when no connection can be made.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connect::{connect, Connected, Link};
use super::connection::Driver;
use super::shared::{ConnState, PoolShared};
use crate::backoff::Backoff;
use crate::request::Request;

/// Fails whatever is still queued when the manager ends: on shutdown, on a panic, or when the
/// runtime stops. Nothing submitted is ever left without an outcome.
struct FailQueuedOnDrop(Arc<PoolShared>);

impl Drop for FailQueuedOnDrop {
    fn drop(&mut self) {
        self.0.shutdown.cancel();
        let queued = self.0.queue.take_all();
        self.0
            .fail_unsent(queued, "not sent: the client was closed");
    }
}

/// The pool manager: one task per pool.
pub(crate) async fn manage(pool: Arc<PoolShared>) {
    let _guard = FailQueuedOnDrop(pool.clone());
    let mut backoff = Backoff::new(pool.cfg.backoff_base, pool.cfg.backoff_max);
    let mut next_attempt = Instant::now();
    let mut connecting = false;
    let mut last_full_scan = Instant::now();
    let (connected_tx, mut connected_rx) = mpsc::channel::<Result<Link, String>>(1);
    let tick = Duration::from_millis(50);
    loop {
        tokio::select! {
            () = pool.shutdown.cancelled() => break,
            () = pool.queue.work_arrived() => {}
            () = pool.conn_changed.notified() => {}
            Some(result) = connected_rx.recv() => {
                connecting = false;
                match result {
                    Ok(connected) => {
                        backoff.reset();
                        start_driver(&pool, connected);
                    }
                    Err(message) => {
                        pool.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                        next_attempt = Instant::now() + backoff.next_delay();
                        if backoff.failures() >= pool.cfg.max_connect_attempts && pool.live_connections() == 0 {
                            let why = format!(
                                "not sent: no connection after {} attempts ({message})",
                                backoff.failures()
                            );
                            pool.fail_unsent(pool.queue.take_all(), &why);
                            backoff.reset();
                        }
                        pool.note_error(message);
                    }
                }
            }
            () = tokio::time::sleep(tick) => {}
        }
        expire_queued(&pool, &mut last_full_scan);
        pool.conns().retain(|c| !c.closed.load(Ordering::Acquire));
        pool.retire_excess();
        pool.room_to_grow.store(
            pool.live_connections() < pool.max_connections(),
            Ordering::Relaxed,
        );
        if !connecting && Instant::now() >= next_attempt && needs_connection(&pool) {
            connecting = true;
            let attempt_pool = pool.clone();
            let tx = connected_tx.clone();
            let task = tokio::spawn(async move {
                let result = connect(&attempt_pool).await;
                let _ = tx.send(result).await;
            });
            pool.track(task.abort_handle());
        }
    }
}

/// Work waits and every live connection is full (or there is none), and we may open another.
fn needs_connection(pool: &PoolShared) -> bool {
    if pool.queue.is_empty() {
        return false;
    }
    let conns = pool.conns();
    let live: Vec<_> = conns
        .iter()
        .filter(|c| c.accepting.load(Ordering::Acquire))
        .collect();
    live.len() < pool.max_connections() && live.iter().all(|c| c.saturated())
}

/// How often the manager looks at every queued request for an expired one (between those looks,
/// only the front of the queue, which holds the oldest, is checked).
const FULL_EXPIRY_SCAN: Duration = Duration::from_secs(1);

/// Fails requests that waited `queue_timeout` for a connection. Called on every manager wake-up,
/// so it must not cost O(queue) each time: a 100k queue scanned on every submitted chunk was a
/// tenth of the engine thread's time.
fn expire_queued(pool: &PoolShared, last_full_scan: &mut Instant) {
    let limit = pool.cfg.queue_timeout;
    let now = Instant::now();
    let is_expired = |r: &Request| now.saturating_duration_since(r.submitted_at) >= limit;
    let mut expired = pool.queue.drain_front_while(is_expired);
    if now.saturating_duration_since(*last_full_scan) >= FULL_EXPIRY_SCAN {
        *last_full_scan = now;
        expired.extend(pool.queue.drain_where(is_expired));
    }
    if !expired.is_empty() {
        let detail = pool
            .last_error()
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        let why = format!("not sent: waited {limit:?} for a connection{detail}");
        pool.fail_unsent(expired, &why);
    }
}

fn start_driver(pool: &Arc<PoolShared>, link: Link) {
    let id = pool.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let state = Arc::new(ConnState {
        id,
        in_flight: AtomicUsize::new(0),
        limit: AtomicUsize::new(1),
        accepting: AtomicBool::new(true),
        closed: AtomicBool::new(false),
        peer_limit: AtomicUsize::new(0),
        retire: CancellationToken::new(),
    });
    pool.stats
        .connections_opened
        .fetch_add(1, Ordering::Relaxed);
    pool.conns().push(state.clone());
    let task = match link {
        Link::H2(Connected {
            send,
            io_task,
            ping,
        }) => {
            let driver = Driver::new(pool.clone(), state, send, io_task, pool.retire_signal());
            tokio::spawn(driver.run(ping))
        }
        Link::Http1(connected) => {
            let driver =
                super::http1::Driver::new(pool.clone(), state, connected, pool.retire_signal());
            tokio::spawn(driver.run())
        }
    };
    pool.track(task.abort_handle());
}
