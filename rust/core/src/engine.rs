//! The engine: its runtime (its own or the process's shared one), the pools, the in-flight
//! window and the completion sink.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::completion::{CompletionSink, Completions};
use crate::config::{EngineConfig, PoolConfig};
use crate::error::{Error, ErrorKind};
use crate::metrics::MetricsSnapshot;
use crate::pool::{self, PoolShared};
use crate::request::{validate_header_value, Request};
use crate::runtime;
use crate::transport::Transport;

/// How long stopping waits for tasks to end (and hand out their outcomes) after the grace.
const STOP_TIMEOUT: Duration = Duration::from_millis(200);

/// Index of a pool in its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolId(pub usize);

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub connections_opened: u64,
    pub connections_live: u64,
    pub connect_failures: u64,
    pub timeouts: u64,
    pub retries: u64,
    pub goaways: u64,
    pub resets: u64,
    pub ping_failures: u64,
    pub dead_by_timeouts: u64,
    pub rotations: u64,
    pub late_answers: u64,
    pub queued: u64,
    /// Streams open right now (sent, not yet answered or timed out).
    pub in_flight: u64,
    /// The live connection count the pool aims for (see [`Engine::set_max_connections`]).
    pub max_connections: u64,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS on the live connections (the lowest if
    /// they differ); 0 while none is open.
    pub peer_max_streams: u64,
    /// Moving average of a stream's round trip (request written to answer read), in µs; 0
    /// before the first answer.
    pub round_trip_us: u64,
}

pub struct Engine {
    /// This engine's own runtime, taken out on shutdown; `None` on the shared runtime.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    closed: std::sync::atomic::AtomicBool,
    config: EngineConfig,
    completions: Arc<Completions>,
    pools: Mutex<Vec<Arc<PoolShared>>>,
    next_conn_id: Arc<AtomicU64>,
    /// The process whose threads run the runtime; a forked child has none of them.
    owner_pid: u32,
}

impl Engine {
    /// An engine with its own runtime (`config.worker_threads` threads), stopped with it.
    pub fn new(config: EngineConfig, sink: Arc<dyn CompletionSink>) -> Result<Engine, Error> {
        let runtime = runtime::build(config.worker_threads)?;
        let handle = runtime.handle().clone();
        Ok(Self::assemble(config, sink, handle, Some(runtime)))
    }

    /// An engine on the process's shared runtime: every engine made this way with the same
    /// `worker_threads` runs on the same threads, so many clients cost no more threads than
    /// one. [`Engine::shutdown`] stops this engine's tasks, not the runtime. A
    /// forked child gets its own shared runtime on first use.
    pub fn on_shared_runtime(
        config: EngineConfig,
        sink: Arc<dyn CompletionSink>,
    ) -> Result<Engine, Error> {
        let handle = runtime::shared(config.worker_threads)?;
        Ok(Self::assemble(config, sink, handle, None))
    }

    fn assemble(
        config: EngineConfig,
        sink: Arc<dyn CompletionSink>,
        handle: tokio::runtime::Handle,
        runtime: Option<tokio::runtime::Runtime>,
    ) -> Engine {
        Engine {
            handle,
            runtime: Mutex::new(runtime),
            closed: std::sync::atomic::AtomicBool::new(false),
            config,
            completions: Arc::new(Completions::new(sink)),
            pools: Mutex::new(Vec::new()),
            next_conn_id: Arc::new(AtomicU64::new(1)),
            owner_pid: std::process::id(),
        }
    }

    fn forked(&self) -> bool {
        std::process::id() != self.owner_pid
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.forked() {
            // Work queued here would wait forever: nothing in this process runs the runtime.
            return Err(Error::new(
                ErrorKind::Forked,
                format!(
                    "this client was created in process {} and this is a forked child ({}): \
                     its engine threads do not exist here. Create clients after forking \
                     (e.g. in a worker's startup or gunicorn's post_fork)",
                    self.owner_pid,
                    std::process::id()
                ),
            ));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed, "the client is closed"));
        }
        Ok(())
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, Vec<Arc<PoolShared>>> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pool(&self, id: PoolId) -> Result<Arc<PoolShared>, Error> {
        self.pools()
            .get(id.0)
            .cloned()
            .ok_or_else(|| Error::config("pool", format!("no pool {}", id.0)))
    }

    /// Create a pool. Connections open lazily when the first request arrives.
    pub fn add_pool(&self, config: PoolConfig) -> Result<PoolId, Error> {
        self.add_pool_over(config, None)
    }

    /// Create a pool whose connections come from `transport` (HTTP/2 without TLS over each
    /// stream it returns) instead of TCP + TLS to `base_url`, which still names the
    /// `:authority`. For tests that drive the engine against a server without sockets.
    pub fn add_pool_with_transport(
        &self,
        config: PoolConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<PoolId, Error> {
        self.add_pool_over(config, Some(transport))
    }

    fn add_pool_over(
        &self,
        config: PoolConfig,
        transport: Option<Arc<dyn Transport>>,
    ) -> Result<PoolId, Error> {
        self.check_open()?;
        let shared = Arc::new(PoolShared::new(
            config,
            self.completions.clone(),
            self.next_conn_id.clone(),
            transport,
        )?);
        let manager = self.handle.spawn(pool::manage(shared.clone()));
        shared.track(manager.abort_handle());
        let mut pools = self.pools();
        pools.push(shared);
        Ok(PoolId(pools.len() - 1))
    }

    /// Set the `authorization` header sent on this pool's requests (APNs JWT, OAuth token).
    /// Returns the credential's generation, which outcomes report.
    pub fn set_authorization(&self, pool: PoolId, value: Option<&str>) -> Result<u64, Error> {
        let header = match value {
            None => None,
            Some(v) => {
                let mut h = validate_header_value("authorization", v).map_err(|_| {
                    Error::invalid("authorization", "credential is not a valid header value")
                })?;
                // Stored sensitive (its Debug form is hidden); each request sends it
                // HPACK-indexed (pool::connection::indexable_credential, docs/hpack.md).
                h.set_sensitive(true);
                Some(h)
            }
        };
        Ok(self.pool(pool)?.set_authorization(header))
    }

    /// Retire every connection of a pool: open streams finish, new connections take new work.
    /// For `UnrelatedKeyIdInToken` (APNs binds a connection to the first key used on it).
    pub fn retire_connections(&self, pool: PoolId) -> Result<(), Error> {
        self.pool(pool)?.retire_connections();
        Ok(())
    }

    /// Resize a running pool to `n` connections (at least 1). Growing opens connections as
    /// queued work needs them; shrinking retires the extra connections, which take no new
    /// request and close once every stream they have open has its outcome.
    pub fn set_max_connections(&self, pool: PoolId, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::config("max_connections", "must be at least 1"));
        }
        self.check_open()?;
        self.pool(pool)?.set_max_connections(n);
        Ok(())
    }

    /// Free room in the in-flight window. Submitting more than this is allowed but defeats
    /// backpressure; callers wait for outcomes instead.
    pub fn capacity(&self) -> usize {
        self.config.max_in_flight.saturating_sub(self.outstanding())
    }

    /// Requests submitted whose outcome has not been delivered yet.
    pub fn outstanding(&self) -> usize {
        self.completions.outstanding()
    }

    /// Queue requests on a pool. Every one of them gets exactly one outcome through the sink.
    pub fn submit(&self, pool: PoolId, requests: Vec<Request>) -> Result<(), Error> {
        self.check_open()?;
        let pool = self.pool(pool)?;
        if pool.shutdown.is_cancelled() {
            return Err(Error::new(ErrorKind::Closed, "the client is closed"));
        }
        self.completions.add_outstanding(requests.len());
        pool.queue.push_back(requests);
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn stats(&self, pool: PoolId) -> Result<PoolStats, Error> {
        let p = self.pool(pool)?;
        let s = &p.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Ok(PoolStats {
            connections_opened: get(&s.connections_opened),
            connections_live: p.live_connections() as u64,
            connect_failures: get(&s.connect_failures),
            timeouts: get(&s.timeouts),
            retries: get(&s.retries),
            goaways: get(&s.goaways),
            resets: get(&s.resets),
            ping_failures: get(&s.ping_failures),
            dead_by_timeouts: get(&s.dead_by_timeouts),
            rotations: get(&s.rotations),
            late_answers: get(&s.late_answers),
            queued: p.queue.len() as u64,
            in_flight: p.streams_in_flight() as u64,
            max_connections: p.max_connections() as u64,
            peer_max_streams: p.peer_max_streams() as u64,
            round_trip_us: p.round_trip_us(),
        })
    }

    /// The pool's latency histogram and outcome counts (zeros when its `metrics` is off).
    pub fn metrics(&self, pool: PoolId) -> Result<MetricsSnapshot, Error> {
        Ok(self.pool(pool)?.metrics.snapshot())
    }

    /// Stop: queued requests fail as "not sent", open streams finish or reach their deadlines,
    /// then the runtime stops. Waits at most `grace` for open streams.
    pub fn shutdown(&self, grace: Duration) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for pool in self.pools().iter() {
            pool.shutdown.cancel();
        }
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if self.forked() {
            // Its threads live in the parent: joining them here would wait for nothing, and
            // nothing submitted here could be outstanding (submit refuses in a child).
            std::mem::forget(runtime);
            return;
        }
        self.wait_outstanding(grace);
        if let Some(runtime) = runtime {
            runtime.shutdown_timeout(STOP_TIMEOUT);
        } else {
            // The shared runtime keeps running: stop only this engine's tasks, whose drop
            // guards hand out the outcomes they still held.
            for pool in self.pools().iter() {
                pool.abort_tasks();
            }
            self.wait_outstanding(STOP_TIMEOUT);
        }
    }

    fn wait_outstanding(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.outstanding() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}
