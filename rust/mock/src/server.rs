//! Server lifecycle: certificates, the private runtime, the accept loop and the public handle.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::apns::auth::TokenVerifier;
use crate::config::{MockConfig, Rule};
use crate::fcm::oauth::TOKEN_PATH;
use crate::fcm::service_account::AssertionVerifier;
use crate::state::Shared;
use crate::transport::connection::{serve_connection, serve_h2};
use crate::transport::tls;

const WORKER_THREADS: usize = 2;
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed accept (e.g. out of file descriptors) instead of spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);

static TEMP_DIR_COUNTER: AtomicU64 = AtomicU64::new(0);
/// The CA's private key beside `ca.pem` in a caller's cert_dir (owner-only).
const CA_KEY_FILE: &str = "ca-key.pem";

/// What `spawn_runtime` started.
struct Running {
    port: u16,
    shared: Arc<Shared>,
    shutdown: oneshot::Sender<()>,
    thread: JoinHandle<()>,
    runtime: tokio::runtime::Handle,
}

/// A running mock APNs + FCM server with its own tokio runtime.
pub struct MockServer {
    port: u16,
    ca_file: PathBuf,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Spawns on the server's runtime (connections handed over by `serve_stream`).
    runtime: tokio::runtime::Handle,
    /// The temp cert dir we created and must remove.
    owned_cert_dir: Option<PathBuf>,
}

impl MockServer {
    /// Binds, writes the CA, and serves in background threads. Safe to call from
    /// sync code and from inside another tokio runtime.
    #[allow(clippy::needless_pass_by_value)] // public API: callers hand their config over
    pub fn start(config: MockConfig) -> io::Result<MockServer> {
        // A caller's cert_dir keeps the CA key: restarting there keeps the same trust anchor.
        let kept_key = config
            .cert_dir
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.join(CA_KEY_FILE)).ok());
        let certs = tls::generate_certificates(kept_key.as_deref())?;
        let tls_config =
            tls::server_config(&certs, config.client_ca_pem.as_deref(), config.http1_only)?;
        let verifier = TokenVerifier::new(&config.jwt_keys, config.jwt_max_age)?;
        let assertions = AssertionVerifier::new(&config.fcm_service_accounts)?;
        if config.fcm_quota_per_window.is_some() && config.fcm_quota_window.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fcm_quota_window must be longer than zero",
            ));
        }

        let (cert_dir, owned_cert_dir) = if let Some(dir) = &config.cert_dir {
            (dir.clone(), None)
        } else {
            let dir = std::env::temp_dir().join(format!(
                "pushwire-mock-{}-{}",
                std::process::id(),
                TEMP_DIR_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            (dir.clone(), Some(dir))
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
        let Running {
            port,
            shared,
            shutdown,
            thread,
            runtime,
        } = match started {
            Ok(running) => running,
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
            runtime,
            owned_cert_dir,
        })
    }

    fn spawn_runtime(
        config: &MockConfig,
        verifier: TokenVerifier,
        assertions: AssertionVerifier,
        tls_config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Running> {
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
        let shared = Arc::new(Shared::new(config, verifier, assertions, token_uri(port)));
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let acceptor = TlsAcceptor::from(tls_config);
        let loop_shared = shared.clone();
        let handle = runtime.handle().clone();
        let thread = std::thread::Builder::new()
            .name("pushwire-mock-main".to_owned())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, acceptor, loop_shared, shutdown_rx));
                // Drops every connection task, which closes their sockets.
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
            })?;
        Ok(Running {
            port,
            shared,
            shutdown: shutdown_tx,
            thread,
            runtime: handle,
        })
    }

    /// Serves one HTTP/2 connection over `io`, an already established stream (no TLS): an
    /// in-memory pipe lets a test drive a client against the mock's connection handling, its
    /// faults and counters without a socket. Returns at once; the connection runs on the
    /// server's runtime until either side closes it or the server stops.
    pub fn serve_stream<T>(&self, io: T)
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        self.runtime.spawn(serve_h2(io, self.shared.clone(), false));
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
        self.shared.counters.received(token)
    }

    /// Web Push: the plaintexts the push service decrypted for subscription `id`, in order.
    pub fn webpush_messages(&self, id: &str) -> Vec<bytes::Bytes> {
        self.shared.webpush.messages(id)
    }

    /// Valid broadcasts received for `channel_id` (exact, case-sensitive base64), whatever
    /// the mock answered (faults included); kept after the channel is deleted.
    pub fn received_broadcasts(&self, channel_id: &str) -> u64 {
        self.shared.channels.received(channel_id)
    }

    /// `(channel id, message-storage-policy)` of `bundle`'s broadcast channels.
    pub fn channels(&self, bundle: &str) -> Vec<(String, u8)> {
        self.shared.channels.list(bundle)
    }

    /// The message a storage-policy-1 channel keeps (the most recent broadcast).
    pub fn stored_broadcast(&self, channel_id: &str) -> Option<bytes::Bytes> {
        self.shared.channels.stored_message(channel_id)
    }

    /// Broadcasts for `bundle` get `FeatureNotEnabled` from now on.
    pub fn disable_broadcast(&self, bundle: &str) {
        self.shared.channels.disable(bundle);
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
        self.shared.open_connections()
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.shared.set_rules(rules);
    }

    /// Changes the advertised limit on every open connection and for new ones.
    pub fn set_max_concurrent_streams(&self, n: u32) {
        self.shared.set_max_concurrent_streams(n);
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
        self.shared.forget_connections();
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
            .finish_non_exhaustive()
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
