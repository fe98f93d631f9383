//! A connection pool for one (host, port, credential identity): opens connections lazily up to
//! `max_connections`, replaces retired ones, reconnects with capped exponential backoff and
//! jitter, and fails queued requests only when no connection can be made.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::HeaderValue;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::PoolConfig;
use crate::connection::Driver;
use crate::engine::Completions;
use crate::error::Error;
use crate::metrics::OutcomeMetrics;
use crate::outcome::{Outcome, OutcomeKind};
use crate::queue::WorkQueue;
use crate::request::Request;
use crate::tls;

/// Counters of one pool, read by tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct PoolCounters {
    pub connections_opened: AtomicU64,
    pub connect_failures: AtomicU64,
    pub timeouts: AtomicU64,
    pub retries: AtomicU64,
    pub goaways: AtomicU64,
    pub resets: AtomicU64,
    pub ping_failures: AtomicU64,
    pub dead_by_timeouts: AtomicU64,
    pub rotations: AtomicU64,
    pub late_answers: AtomicU64,
}

/// What the pool knows of one connection, published by its driver.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub id: u64,
    pub in_flight: AtomicUsize,
    pub limit: AtomicUsize,
    pub accepting: AtomicBool,
    pub closed: AtomicBool,
}

impl ConnState {
    fn saturated(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= self.limit.load(Ordering::Relaxed)
    }
}

/// State shared by the pool manager and its connection drivers.
pub(crate) struct PoolShared {
    pub cfg: PoolConfig,
    pub authority: Authority,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    pub queue: WorkQueue,
    /// The `authorization` value and its generation (bumped on every change, so an outcome
    /// tells which credential its request carried).
    authorization: RwLock<(Option<HeaderValue>, u64)>,
    pub stats: PoolCounters,
    pub metrics: OutcomeMetrics,
    pub shutdown: CancellationToken,
    /// Cancelled to retire every current connection (e.g. after `UnrelatedKeyIdInToken`);
    /// replaced by a fresh token for the connections opened afterwards.
    retire_all: Mutex<CancellationToken>,
    /// A driver retired or closed: the manager may need to open a replacement.
    pub conn_changed: Notify,
    conns: Mutex<Vec<Arc<ConnState>>>,
    last_error: Mutex<Option<String>>,
    completions: Arc<Completions>,
    next_conn_id: Arc<AtomicU64>,
}

impl PoolShared {
    pub(crate) fn new(
        cfg: PoolConfig,
        completions: Arc<Completions>,
        next_conn_id: Arc<AtomicU64>,
    ) -> Result<Self, Error> {
        let (host, port, authority) = parse_base_url(&cfg.base_url)?;
        let server_name = ServerName::try_from(host.clone()).map_err(|_| {
            Error::invalid("base_url", format!("{host:?} is not a valid host name"))
        })?;
        let connector = TlsConnector::from(tls::client_config(&cfg)?);
        Ok(PoolShared {
            cfg,
            authority,
            host,
            port,
            server_name,
            connector,
            queue: WorkQueue::new(),
            authorization: RwLock::new((None, 0)),
            stats: PoolCounters::default(),
            metrics: OutcomeMetrics::default(),
            shutdown: CancellationToken::new(),
            retire_all: Mutex::new(CancellationToken::new()),
            conn_changed: Notify::new(),
            conns: Mutex::new(Vec::new()),
            last_error: Mutex::new(None),
            completions,
            next_conn_id,
        })
    }

    pub(crate) fn authorization(&self) -> (Option<HeaderValue>, u64) {
        self.authorization
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replace the credential; returns its generation.
    pub(crate) fn set_authorization(&self, value: Option<HeaderValue>) -> u64 {
        let mut current = self
            .authorization
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current.0 = value;
        current.1 += 1;
        current.1
    }

    /// The pool's path prefix (FCM: `/v1/projects/<id>`) before a template's path.
    pub(crate) fn full_path(&self, path: String) -> String {
        if self.cfg.path_prefix.is_empty() {
            path
        } else {
            format!("{}{path}", self.cfg.path_prefix)
        }
    }

    /// The signal a new connection's driver watches to be retired with all the others.
    pub(crate) fn retire_signal(&self) -> CancellationToken {
        self.retire_all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Retire every open connection: they finish their streams, new ones take the work.
    pub(crate) fn retire_connections(&self) {
        let old = std::mem::replace(
            &mut *self
                .retire_all
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            CancellationToken::new(),
        );
        old.cancel();
        self.conn_changed.notify_one();
    }

    /// Every outcome of this pool leaves through here.
    pub(crate) fn complete(&self, outcomes: Vec<Outcome>) {
        if self.cfg.metrics {
            self.metrics.record(&outcomes);
        }
        self.completions.complete(outcomes);
    }

    pub(crate) fn note_error(&self, message: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message);
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConnState>>> {
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Streams open on this pool's connections now.
    pub(crate) fn streams_in_flight(&self) -> usize {
        self.conns()
            .iter()
            .map(|c| c.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    /// Connections still taking requests.
    pub(crate) fn live_connections(&self) -> usize {
        self.conns()
            .iter()
            .filter(|c| c.accepting.load(Ordering::Acquire))
            .count()
    }

    /// Fail requests that can no longer be sent (never written: not delivered).
    fn fail_unsent(&self, requests: Vec<crate::request::Request>, why: &str) {
        if requests.is_empty() {
            return;
        }
        let outcomes = requests
            .into_iter()
            .map(|r| {
                let mut o = Outcome::empty(r.id, r.token, OutcomeKind::Failed);
                o.attempts = r.attempts;
                o.maybe_delivered = r.maybe_processed;
                o.latency = r.submitted_at.elapsed();
                o.error = Some(why.to_owned());
                o
            })
            .collect();
        self.complete(outcomes);
    }
}

fn parse_base_url(url: &str) -> Result<(String, u16, Authority), Error> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| Error::invalid("base_url", format!("{url:?} is not a URL")))?;
    if uri.scheme_str() != Some("https") {
        return Err(Error::invalid(
            "base_url",
            format!("{url:?} must start with https://"),
        ));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| Error::invalid("base_url", format!("{url:?} has no host")))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    // http reports no port when the text after the host is not a u16: refuse it rather than
    // fall back to 443.
    let after_host = authority
        .as_str()
        .rsplit_once(']')
        .map_or(authority.as_str(), |(_, rest)| rest);
    if after_host.contains(':') && authority.port_u16().is_none() {
        return Err(Error::invalid(
            "base_url",
            format!("{url:?} has an invalid port (1-65535)"),
        ));
    }
    let port = authority.port_u16().unwrap_or(443);
    Ok((host, port, authority))
}

/// A connection the server has answered on: its request handle, I/O task and PING handle.
pub(crate) struct Connected {
    send: h2::client::SendRequest<Bytes>,
    io_task: JoinHandle<Result<(), h2::Error>>,
    ping: Option<h2::PingPong>,
}

/// TCP connect (fresh DNS lookup each time, as Apple asks), TLS with ALPN h2, HTTP/2 handshake.
async fn connect(pool: &PoolShared) -> Result<Connected, String> {
    let cfg = &pool.cfg;
    let target = format!("{}:{}", pool.host, pool.port);
    let attempt = async {
        let tcp = TcpStream::connect((pool.host.as_str(), pool.port))
            .await
            .map_err(|e| format!("cannot connect to {target}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let tls = pool
            .connector
            .connect(pool.server_name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake with {target} failed: {e}"))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(format!(
                "{target} does not speak HTTP/2 (ALPN h2 not negotiated)"
            ));
        }
        let streams = cfg.max_streams_per_connection;
        let (send, mut connection) = h2::client::Builder::new()
            .enable_push(false)
            // Until the server's SETTINGS arrive, assume APNs' token-auth start of 1 stream.
            .initial_max_send_streams(1)
            .initial_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            // Deadline resets and late answers must never trip h2's reset limits (engine notes).
            .max_concurrent_reset_streams(streams.max(1024))
            .reset_stream_duration(cfg.request_timeout.max(Duration::from_secs(5)))
            .max_local_error_reset_streams(None)
            .handshake::<_, Bytes>(tls)
            .await
            .map_err(|e| format!("HTTP/2 handshake with {target} failed: {e}"))?;
        let mut ping = connection.ping_pong();
        // Aborted if this attempt fails or times out: no orphaned connection task.
        let mut io_task = AbortOnDrop(Some(tokio::spawn(connection)));
        // One PING round trip before any request: the server's SETTINGS (its stream limit)
        // arrive first, and a server that refuses us after the handshake (TLS 1.3 checks the
        // client certificate only then) fails the connect, so no request is written into it.
        if let Some(ping) = ping.as_mut() {
            if let Err(e) = ping.ping(h2::Ping::opaque()).await {
                let detail = io_task.error_within(Duration::from_millis(100)).await;
                let detail = detail.unwrap_or_else(|| e.to_string());
                return Err(format!(
                    "{target} closed the connection before serving it: {detail}"
                ));
            }
        }
        let io_task = io_task.disarm();
        Ok(Connected {
            send,
            io_task,
            ping,
        })
    };
    match tokio::time::timeout(cfg.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "connecting to {target} took longer than {:?}",
            cfg.connect_timeout
        )),
    }
}

struct AbortOnDrop(Option<JoinHandle<Result<(), h2::Error>>>);

impl AbortOnDrop {
    /// The connection task's error, if it ends within `wait`.
    async fn error_within(&mut self, wait: Duration) -> Option<String> {
        let task = self.0.as_mut()?;
        match tokio::time::timeout(wait, task).await {
            Ok(Ok(Err(e))) => Some(e.to_string()),
            _ => None,
        }
    }

    fn disarm(mut self) -> JoinHandle<Result<(), h2::Error>> {
        self.0.take().expect("disarmed once")
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

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
    let (connected_tx, mut connected_rx) = mpsc::channel::<Result<Connected, String>>(1);
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
        if !connecting && Instant::now() >= next_attempt && needs_connection(&pool) {
            connecting = true;
            let pool = pool.clone();
            let tx = connected_tx.clone();
            tokio::spawn(async move {
                let result = connect(&pool).await;
                let _ = tx.send(result).await;
            });
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
    live.len() < pool.cfg.max_connections && live.iter().all(|c| c.saturated())
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

fn start_driver(pool: &Arc<PoolShared>, connected: Connected) {
    let id = pool.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let state = Arc::new(ConnState {
        id,
        in_flight: AtomicUsize::new(0),
        limit: AtomicUsize::new(1),
        accepting: AtomicBool::new(true),
        closed: AtomicBool::new(false),
    });
    pool.stats
        .connections_opened
        .fetch_add(1, Ordering::Relaxed);
    pool.conns().push(state.clone());
    let Connected {
        send,
        io_task,
        ping,
    } = connected;
    let driver = Driver::new(pool.clone(), state, send, io_task, pool.retire_signal());
    tokio::spawn(driver.run(ping));
}
