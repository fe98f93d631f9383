//! What a pool's manager and its connection drivers share: the configuration and TLS
//! connector, the work queue, the credential, the counters and the live connections' state.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use http::uri::Authority;
use http::HeaderValue;
use rustls::pki_types::ServerName;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::completion::Completions;
use crate::config::PoolConfig;
use crate::error::Error;
use crate::metrics::OutcomeMetrics;
use crate::outcome::{Outcome, OutcomeKind};
use crate::queue::WorkQueue;
use crate::request::Request;
use crate::tls;
use crate::transport::Transport;

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
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS as h2 last reported it to the driver
    /// (re-read on every turn of its loop), before our own cap; 0 until the driver starts.
    pub peer_limit: AtomicUsize,
    /// Cancelled when the pool shrinks past this connection: it drains and closes.
    pub retire: CancellationToken,
}

impl ConnState {
    pub(super) fn saturated(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= self.limit.load(Ordering::Relaxed)
    }
}

/// State shared by the pool manager and its connection drivers.
pub(crate) struct PoolShared {
    pub cfg: PoolConfig,
    pub authority: Authority,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) server_name: ServerName<'static>,
    pub(super) connector: TlsConnector,
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
    /// The live connection count the pool aims for: `cfg.max_connections` at first, then
    /// whatever [`PoolShared::set_max_connections`] says (a running pool can grow or shrink).
    max_connections: AtomicUsize,
    /// Fewer live connections than `max_connections`: a driver whose streams just filled up
    /// wakes the manager to open another (instead of leaving it to the manager's next tick).
    pub(super) room_to_grow: AtomicBool,
    /// Moving average of a stream's round trip (request written to answer read), in µs;
    /// 0 before the first answer.
    round_trip_us: AtomicU64,
    last_error: Mutex<Option<String>>,
    completions: Arc<Completions>,
    pub(super) next_conn_id: Arc<AtomicU64>,
    /// Opens connections instead of TCP + TLS to `base_url` when set.
    pub(super) transport: Option<Arc<dyn Transport>>,
    /// The manager, connect and driver tasks, aborted when the engine stops on a runtime it
    /// shares (an engine with its own runtime stops them by stopping the runtime).
    tasks: Mutex<Vec<AbortHandle>>,
}

impl PoolShared {
    pub(crate) fn new(
        cfg: PoolConfig,
        completions: Arc<Completions>,
        next_conn_id: Arc<AtomicU64>,
        transport: Option<Arc<dyn Transport>>,
    ) -> Result<Self, Error> {
        let (host, port, authority) = parse_base_url(&cfg.base_url)?;
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| Error::config("base_url", format!("{host:?} is not a valid host name")))?;
        let connector = TlsConnector::from(tls::client_config(&cfg)?);
        let max_connections = AtomicUsize::new(cfg.max_connections.max(1));
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
            max_connections,
            room_to_grow: AtomicBool::new(true),
            round_trip_us: AtomicU64::new(0),
            last_error: Mutex::new(None),
            completions,
            next_conn_id,
            transport,
            tasks: Mutex::new(Vec::new()),
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

    /// Remember a task of this pool so [`PoolShared::abort_tasks`] can stop it.
    pub(crate) fn track(&self, task: AbortHandle) {
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Stop every task of this pool: their drop guards give whatever they held an outcome.
    pub(crate) fn abort_tasks(&self) {
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            task.abort();
        }
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

    pub(super) fn conns(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConnState>>> {
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

    /// The live connection count the pool aims for now.
    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections.load(Ordering::Acquire)
    }

    /// Resize a running pool. Growing opens connections as work needs them; shrinking retires
    /// the connections past `n` (the ones with the fewest open streams): they take no new
    /// request, finish every stream they have open, then close. No stream is dropped.
    pub(crate) fn set_max_connections(&self, n: usize) {
        self.max_connections.store(n.max(1), Ordering::Release);
        self.room_to_grow
            .store(self.live_connections() < n.max(1), Ordering::Relaxed);
        self.retire_excess();
        self.conn_changed.notify_one();
    }

    /// Retire live connections beyond [`PoolShared::max_connections`], least busy first.
    pub(super) fn retire_excess(&self) {
        let mut live: Vec<Arc<ConnState>> = self
            .conns()
            .iter()
            .filter(|c| c.accepting.load(Ordering::Acquire) && !c.retire.is_cancelled())
            .cloned()
            .collect();
        let keep = self.max_connections();
        if live.len() <= keep {
            return;
        }
        live.sort_by_key(|c| std::cmp::Reverse(c.in_flight.load(Ordering::Relaxed)));
        for conn in &live[keep..] {
            conn.retire.cancel();
        }
    }

    /// The server's current SETTINGS_MAX_CONCURRENT_STREAMS on this pool's live connections
    /// (the lowest, should they differ); 0 while no connection has its SETTINGS.
    pub(crate) fn peer_max_streams(&self) -> usize {
        self.conns()
            .iter()
            .filter(|c| c.accepting.load(Ordering::Acquire))
            .map(|c| c.peer_limit.load(Ordering::Relaxed))
            .filter(|&limit| limit > 0)
            .min()
            .unwrap_or(0)
    }

    /// Fold one stream's round trip into the pool's moving average (weight 1/16).
    pub(super) fn observe_round_trip(&self, took: std::time::Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        // Lost updates between drivers only drop a sample; the average stays sound.
        let old = self.round_trip_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 16 + sample / 16
        };
        self.round_trip_us.store(new, Ordering::Relaxed);
    }

    /// The moving average of a stream's round trip in µs (0 before the first answer).
    pub(crate) fn round_trip_us(&self) -> u64 {
        self.round_trip_us.load(Ordering::Relaxed)
    }

    /// Fail requests that can no longer be sent (never written: not delivered).
    pub(super) fn fail_unsent(&self, requests: Vec<Request>, why: &str) {
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
        .map_err(|_| Error::config("base_url", format!("{url:?} is not a URL")))?;
    if uri.scheme_str() != Some("https") {
        return Err(Error::config(
            "base_url",
            format!("{url:?} must start with https://"),
        ));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| Error::config("base_url", format!("{url:?} has no host")))?;
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
        return Err(Error::config(
            "base_url",
            format!("{url:?} has an invalid port (1-65535)"),
        ));
    }
    let port = authority.port_u16().unwrap_or(443);
    Ok((host, port, authority))
}
