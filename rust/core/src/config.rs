//! Every tunable of the engine in one place, with its reason.

use std::path::PathBuf;
use std::time::Duration;

/// Settings shared by every pool of an [`crate::Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Tokio worker threads. Two cores are common for push senders; one worker leaves the other
    /// core to Python, which encodes payloads and consumes results.
    pub worker_threads: usize,
    /// Requests submitted but not yet completed, across all pools. Producers see no capacity
    /// beyond this, so memory stays flat whatever the size of a bulk send.
    pub max_in_flight: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            worker_threads: 1,
            max_in_flight: 10_000,
        }
    }
}

/// Settings of one connection pool (one host, port and credential identity).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// `https://host[:port]` of the provider (or a mock).
    pub base_url: String,
    /// Prepended to every template path (FCM: `/v1/projects/<project id>`); empty for APNs.
    pub path_prefix: String,
    /// Extra PEM CA certificates trusted beside the webpki roots (the mock's CA, a proxy's CA).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and key for APNs certificate auth.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// Identity of the credential (e.g. team:key:env); part of the pool key so APNs never sees
    /// two keys on one connection.
    pub identity: String,
    /// Connections opened lazily, at most this many.
    pub max_connections: usize,
    /// Our own cap on streams per connection; the server's SETTINGS may lower it further.
    pub max_streams_per_connection: usize,
    /// Deadline of one request, from the moment its stream is opened.
    pub request_timeout: Duration,
    /// How long a request may wait for a connection before it fails (covers connect retries).
    pub queue_timeout: Duration,
    pub connect_timeout: Duration,
    /// Interval between liveness PINGs on a connection.
    pub ping_interval: Duration,
    /// A PING not acknowledged within this time marks the connection dead.
    pub ping_timeout: Duration,
    /// This many consecutive timeouts with no success for a whole `request_timeout` mark the
    /// connection dead.
    pub dead_after_timeouts: u32,
    /// Rotate a connection once its stream ids pass this value (HTTP/2 ids end at 2^31-1).
    pub stream_id_limit: u32,
    /// Reconnect backoff: first delay and cap; each delay gets full jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Connect attempts in a row that may fail before queued requests are failed.
    pub max_connect_attempts: u32,
    /// Transparent retries of a request that provably never reached the server.
    pub max_retries: u32,
    /// Resend requests whose fate is uncertain (may duplicate a notification). Off by default.
    pub retry_uncertain: bool,
    /// Record the latency histogram and outcome counters (a few atomic adds per outcome).
    pub metrics: bool,
    /// Offer ALPN `http/1.1` beside `h2` and speak HTTP/1.1 (one request per connection at a
    /// time) to a server that does not pick h2. Web Push pools only; APNs and FCM need h2.
    pub allow_http1: bool,
}

impl PoolConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        PoolConfig {
            base_url: base_url.into(),
            path_prefix: String::new(),
            ca_file: None,
            client_cert: None,
            identity: String::new(),
            max_connections: 4,
            max_streams_per_connection: 1000,
            request_timeout: Duration::from_secs(10),
            queue_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(5),
            dead_after_timeouts: 10,
            stream_id_limit: (1 << 31) - 1 - 2 * 10_000,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            max_connect_attempts: 5,
            max_retries: 5,
            retry_uncertain: false,
            metrics: true,
            allow_http1: false,
        }
    }
}
