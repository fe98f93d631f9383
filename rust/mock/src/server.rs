//! Server lifecycle: certificates, the private runtime, the accept loop and counters.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::auth::TokenVerifier;
use crate::config::{Behavior, MockConfig, Rule};
use crate::connection::{serve_connection, ConnectionHandle};
use crate::oauth::{AccessTokens, TOKEN_PATH};
use crate::quota::ProjectQuota;
use crate::service_account::AssertionVerifier;
use crate::tls;

const WORKER_THREADS: usize = 2;
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed accept (e.g. out of file descriptors) instead of spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);

static TEMP_DIR_COUNTER: AtomicU64 = AtomicU64::new(0);
/// The CA's private key beside `ca.pem` in a caller's cert_dir (owner-only).
const CA_KEY_FILE: &str = "ca-key.pem";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters and registries stay consistent even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
pub(crate) struct Counters {
    received: Mutex<HashMap<String, u64>>,
    total_received: AtomicU64,
    connections_accepted: AtomicU64,
    max_open_streams: AtomicU64,
    refused_streams: AtomicU64,
    cert_connections: AtomicU64,
    token_update_rejections: AtomicU64,
    fcm_dry_runs: AtomicU64,
    quota_rejections: AtomicU64,
}

impl Counters {
    pub fn request_received(&self, token: Option<&str>) {
        self.total_received.fetch_add(1, Ordering::Relaxed);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return;
        };
        let mut received = lock(&self.received);
        if token.bytes().any(|b| b.is_ascii_uppercase()) {
            *received.entry(token.to_ascii_lowercase()).or_insert(0) += 1;
        } else if let Some(count) = received.get_mut(token) {
            *count += 1;
        } else {
            received.insert(token.to_owned(), 1);
        }
    }

    pub fn connection_accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_open_streams(&self, open: u64) {
        self.max_open_streams.fetch_max(open, Ordering::Relaxed);
    }

    pub fn stream_refused(&self) {
        self.refused_streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn cert_connection(&self) {
        self.cert_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_update_rejected(&self) {
        self.token_update_rejections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn fcm_dry_run(&self) {
        self.fcm_dry_runs.fetch_add(1, Ordering::Relaxed);
    }

    pub fn quota_rejected(&self) {
        self.quota_rejections.fetch_add(1, Ordering::Relaxed);
    }
}

/// State shared by the server handle, the accept loop and every connection task.
pub(crate) struct Shared {
    rules: RwLock<Arc<Vec<Rule>>>,
    max_concurrent_streams: AtomicU32,
    pub start_at_one: bool,
    pub goaway_after_streams: Option<u64>,
    pub response_delay: Duration,
    pub verifier: TokenVerifier,
    pub token_update_window: Duration,
    /// FCM: the service accounts the token endpoint trusts, and the tokens it issued.
    pub assertions: AssertionVerifier,
    pub access_tokens: AccessTokens,
    pub quota: Option<ProjectQuota>,
    /// `https://localhost:<port>/token`, an audience assertions may name.
    pub token_uri: String,
    pub counters: Counters,
    connections: Mutex<HashMap<u64, Arc<ConnectionHandle>>>,
    next_connection_id: AtomicU64,
    apns_id_state: AtomicU64,
    fcm_message_numbers: AtomicU64,
}

impl Shared {
    pub fn max_concurrent_streams(&self) -> u32 {
        self.max_concurrent_streams.load(Ordering::Acquire)
    }

    pub fn behavior_for(&self, token: &str) -> Behavior {
        let rules = self
            .rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        rules
            .iter()
            .find(|rule| rule.matcher.matches(token))
            .map_or(Behavior::Ok, |rule| rule.behavior.clone())
    }

    /// Keeps `handle` reachable for live changes until the returned guard drops.
    pub fn register_connection(self: &Arc<Self>, handle: Arc<ConnectionHandle>) -> Registration {
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.connections).insert(id, handle);
        Registration {
            shared: self.clone(),
            id,
        }
    }

    /// The number in the next FCM message name (`projects/p/messages/0:<n>`).
    pub fn next_fcm_message_number(&self) -> u64 {
        self.fcm_message_numbers.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A fresh UUID-v4-shaped lowercase id (unique per server, not cryptographic).
    pub fn next_apns_id(&self) -> HeaderValue {
        let high = splitmix64(
            self.apns_id_state
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed),
        );
        let low = splitmix64(
            self.apns_id_state
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed),
        );
        let text = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0x0fff,
            0x8000 | (low >> 48) & 0x3fff,
            low & 0xffff_ffff_ffff,
        );
        HeaderValue::from_str(&text)
            .unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.shared.connections).remove(&self.id);
    }
}

/// A running mock APNs + FCM server with its own tokio runtime.
pub struct MockServer {
    port: u16,
    ca_file: PathBuf,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The temp cert dir we created and must remove.
    owned_cert_dir: Option<PathBuf>,
}

impl MockServer {
    /// Binds, writes the CA, and serves in background threads. Safe to call from
    /// sync code and from inside another tokio runtime.
    pub fn start(config: MockConfig) -> io::Result<MockServer> {
        // A caller's cert_dir keeps the CA key: restarting there keeps the same trust anchor.
        let kept_key = config
            .cert_dir
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.join(CA_KEY_FILE)).ok());
        let certs = tls::generate_certificates(kept_key.as_deref())?;
        let tls_config = tls::server_config(&certs, config.client_ca_pem.as_deref())?;
        let verifier = TokenVerifier::new(&config.jwt_keys, config.jwt_max_age)?;
        let assertions = AssertionVerifier::new(&config.fcm_service_accounts)?;
        if config.fcm_quota_per_window.is_some() && config.fcm_quota_window.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fcm_quota_window must be longer than zero",
            ));
        }

        let (cert_dir, owned_cert_dir) = match &config.cert_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "pushwire-mock-{}-{}",
                    std::process::id(),
                    TEMP_DIR_COUNTER.fetch_add(1, Ordering::Relaxed)
                ));
                (dir.clone(), Some(dir))
            }
        };
        std::fs::create_dir_all(&cert_dir)?;
        let ca_file = cert_dir.join("ca.pem");
        let written = std::fs::write(&ca_file, &certs.ca_pem).and_then(|()| {
            if owned_cert_dir.is_some() || kept_key.is_some() {
                return Ok(());
            }
            write_private(&cert_dir.join(CA_KEY_FILE), &certs.ca_key_pem)
        });
        if let Err(e) = written {
            remove_dir(owned_cert_dir.as_deref());
            return Err(e);
        }

        let started = Self::spawn_runtime(&config, verifier, assertions, tls_config);
        let (port, shared, shutdown, thread) = match started {
            Ok(parts) => parts,
            Err(e) => {
                remove_dir(owned_cert_dir.as_deref());
                return Err(e);
            }
        };
        Ok(MockServer {
            port,
            ca_file,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
            owned_cert_dir,
        })
    }

    #[allow(clippy::type_complexity)]
    fn spawn_runtime(
        config: &MockConfig,
        verifier: TokenVerifier,
        assertions: AssertionVerifier,
        tls_config: Arc<rustls::ServerConfig>,
    ) -> io::Result<(u16, Arc<Shared>, oneshot::Sender<()>, JoinHandle<()>)> {
        let std_listener = std::net::TcpListener::bind(config.bind)?;
        std_listener.set_nonblocking(true)?;
        let port = std_listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("pushwire-mock")
            .enable_all()
            .build()?;
        // Registering the socket needs this runtime's context; entering it is allowed
        // even inside another runtime (only blocking on it is not).
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(std_listener)?
        };
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        let shared = Arc::new(Shared {
            rules: RwLock::new(Arc::new(config.rules.clone())),
            max_concurrent_streams: AtomicU32::new(config.max_concurrent_streams),
            start_at_one: config.start_streams_at_one,
            goaway_after_streams: config.goaway_after_streams,
            response_delay: config.response_delay,
            verifier,
            token_update_window: config.token_update_window,
            assertions,
            access_tokens: AccessTokens::new(config.fcm_token_lifetime),
            quota: config
                .fcm_quota_per_window
                .map(|messages| ProjectQuota::new(messages, config.fcm_quota_window)),
            token_uri: token_uri(port),
            counters: Counters::default(),
            connections: Mutex::new(HashMap::new()),
            next_connection_id: AtomicU64::new(0),
            apns_id_state: AtomicU64::new(seed),
            fcm_message_numbers: AtomicU64::new(0),
        });
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let acceptor = TlsAcceptor::from(tls_config);
        let loop_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pushwire-mock-main".to_owned())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, acceptor, loop_shared, shutdown_rx));
                // Drops every connection task, which closes their sockets.
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
            })?;
        Ok((port, shared, shutdown_tx, thread))
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The OAuth2 token endpoint, `<url>/token` (a service account's `token_uri`).
    pub fn token_uri(&self) -> String {
        token_uri(self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// Requests fully received for this token (case-insensitive), valid or not: APNs pushes
    /// to `/3/device/<token>` and FCM sends to `message.token` (dry runs excepted).
    pub fn received(&self, token: &str) -> u64 {
        let received = lock(&self.shared.counters.received);
        if token.bytes().any(|b| b.is_ascii_uppercase()) {
            received
                .get(&token.to_ascii_lowercase())
                .copied()
                .unwrap_or(0)
        } else {
            received.get(token).copied().unwrap_or(0)
        }
    }

    /// Every APNs and FCM request fully received (not token grants, not FCM dry runs).
    pub fn total_received(&self) -> u64 {
        self.shared.counters.total_received.load(Ordering::Relaxed)
    }

    pub fn connections_accepted(&self) -> u64 {
        self.shared
            .counters
            .connections_accepted
            .load(Ordering::Relaxed)
    }

    /// Highest number of concurrently open streams seen on one connection, including a
    /// stream that was refused for exceeding the advertised limit.
    pub fn max_active_streams_seen(&self) -> u64 {
        self.shared
            .counters
            .max_open_streams
            .load(Ordering::Relaxed)
    }

    /// Streams refused with REFUSED_STREAM for exceeding the advertised limit.
    pub fn refused_streams(&self) -> u64 {
        self.shared.counters.refused_streams.load(Ordering::Relaxed)
    }

    /// Connections whose TLS handshake presented a (verified) client certificate.
    pub fn cert_connections(&self) -> u64 {
        self.shared
            .counters
            .cert_connections
            .load(Ordering::Relaxed)
    }

    /// Requests answered 429 `TooManyProviderTokenUpdates`.
    pub fn token_update_rejections(&self) -> u64 {
        self.shared
            .counters
            .token_update_rejections
            .load(Ordering::Relaxed)
    }

    /// Distinct provider tokens (JWT strings) that passed every server-wide check.
    pub fn distinct_tokens(&self) -> u64 {
        self.shared.verifier.distinct_valid_tokens() as u64
    }

    /// Access tokens the OAuth2 endpoint issued.
    pub fn oauth_tokens_issued(&self) -> u64 {
        self.shared.access_tokens.issued()
    }

    /// Every access token issued so far expires now: FCM sends carrying one get 401
    /// `UNAUTHENTICATED` until the client fetches a new token.
    pub fn expire_oauth_tokens(&self) {
        self.shared.access_tokens.expire_all();
    }

    /// FCM sends answered 429 `QUOTA_EXCEEDED` by the project quota (not by rules).
    pub fn quota_rejections(&self) -> u64 {
        self.shared
            .counters
            .quota_rejections
            .load(Ordering::Relaxed)
    }

    /// FCM sends with `validate_only: true`, whatever their answer.
    pub fn fcm_dry_runs(&self) -> u64 {
        self.shared.counters.fcm_dry_runs.load(Ordering::Relaxed)
    }

    /// Connections currently open (after the h2 handshake).
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.connections).len()
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self
            .shared
            .rules
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(rules);
    }

    /// Changes the advertised limit on every open connection and for new ones.
    pub fn set_max_concurrent_streams(&self, n: u32) {
        self.shared
            .max_concurrent_streams
            .store(n, Ordering::Release);
        let connections: Vec<_> = lock(&self.shared.connections).values().cloned().collect();
        for connection in connections {
            connection.set_max_streams(n);
        }
    }

    /// Stops accepting, closes every connection and joins the server threads.
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The accept loop may already be gone; then there is nothing to signal.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread has already been reported on stderr.
            let _ = thread.join();
        }
        lock(&self.shared.connections).clear();
        remove_dir(self.owned_cert_dir.take().as_deref());
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("port", &self.port)
            .field("ca_file", &self.ca_file)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

fn token_uri(port: u16) -> String {
    format!("https://localhost:{port}{TOKEN_PATH}")
}

/// Writes a secret readable by its owner only.
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

fn remove_dir(dir: Option<&Path>) {
    if let Some(dir) = dir {
        // Best effort: a leftover temp dir is harmless.
        let _ = std::fs::remove_dir_all(dir);
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            // Fires on stop() and also if the MockServer vanished without sending.
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    tokio::spawn(serve_connection(tcp, acceptor.clone(), shared.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await,
            },
        }
    }
}
