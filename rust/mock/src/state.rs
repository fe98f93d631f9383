//! State shared by the server handle, the accept loop, every connection task and the protocol
//! handlers: the rules, counters, verifiers and each live connection's control surface.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use tokio::sync::Notify;

use crate::apns::auth::TokenVerifier;
use crate::apns::channels::Channels;
use crate::apns::connection_auth::ConnectionAuth;
use crate::config::{Behavior, MockConfig, Rule};
use crate::fcm::access_tokens::AccessTokens;
use crate::fcm::quota::ProjectQuota;
use crate::fcm::service_account::AssertionVerifier;
use crate::transport::shim::FrameControl;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters and registries stay consistent even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
pub(crate) struct Counters {
    received: Mutex<HashMap<String, u64>>,
    pub total_received: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub max_open_streams: AtomicU64,
    pub refused_streams: AtomicU64,
    pub cert_connections: AtomicU64,
    pub token_update_rejections: AtomicU64,
    pub fcm_dry_runs: AtomicU64,
    pub quota_rejections: AtomicU64,
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

    /// Requests fully received for this token (case-insensitive).
    pub fn received(&self, token: &str) -> u64 {
        let received = lock(&self.received);
        if token.bytes().any(|b| b.is_ascii_uppercase()) {
            received
                .get(&token.to_ascii_lowercase())
                .copied()
                .unwrap_or(0)
        } else {
            received.get(token).copied().unwrap_or(0)
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
    /// Serve HTTP/1.1 only (a Web Push push service without HTTP/2).
    pub http1_only: bool,
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
    /// Web Push: the decrypted plaintexts per subscription.
    pub webpush: crate::webpush::inbox::Inbox,
    /// Live Activity broadcast channels and what each received.
    pub channels: Channels,
    connections: Mutex<HashMap<u64, Arc<ConnectionHandle>>>,
    next_connection_id: AtomicU64,
    apns_id_state: AtomicU64,
    fcm_message_numbers: AtomicU64,
}

impl Shared {
    pub fn new(
        config: &MockConfig,
        verifier: TokenVerifier,
        assertions: AssertionVerifier,
        token_uri: String,
    ) -> Self {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            d.as_secs()
                .wrapping_mul(1_000_000_000)
                .wrapping_add(u64::from(d.subsec_nanos()))
        }) ^ (u64::from(std::process::id()) << 32);
        Shared {
            rules: RwLock::new(Arc::new(config.rules.clone())),
            max_concurrent_streams: AtomicU32::new(config.max_concurrent_streams),
            start_at_one: config.start_streams_at_one,
            http1_only: config.http1_only,
            goaway_after_streams: config.goaway_after_streams,
            response_delay: config.response_delay,
            verifier,
            token_update_window: config.token_update_window,
            assertions,
            access_tokens: AccessTokens::new(config.fcm_token_lifetime),
            quota: config
                .fcm_quota_per_window
                .map(|messages| ProjectQuota::new(messages, config.fcm_quota_window)),
            token_uri,
            counters: Counters::default(),
            webpush: crate::webpush::inbox::Inbox::default(),
            channels: Channels::new(config.max_channels_per_app, seed),
            connections: Mutex::new(HashMap::new()),
            next_connection_id: AtomicU64::new(0),
            apns_id_state: AtomicU64::new(seed),
            fcm_message_numbers: AtomicU64::new(0),
        }
    }

    pub fn max_concurrent_streams(&self) -> u32 {
        self.max_concurrent_streams.load(Ordering::Acquire)
    }

    pub fn behavior_for(&self, token: &str) -> Behavior {
        let rules = self
            .rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        rules
            .iter()
            .find(|rule| rule.matcher.matches(token))
            .map_or(Behavior::Ok, |rule| rule.behavior.clone())
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rules);
    }

    /// Changes the advertised limit on every open connection and for new ones.
    pub fn set_max_concurrent_streams(&self, n: u32) {
        self.max_concurrent_streams.store(n, Ordering::Release);
        let connections: Vec<_> = lock(&self.connections).values().cloned().collect();
        for connection in connections {
            connection.set_max_streams(n);
        }
    }

    /// Connections currently open (after the h2 handshake).
    pub fn open_connections(&self) -> usize {
        lock(&self.connections).len()
    }

    /// Drops the server's handles on every connection (their tasks have ended).
    pub fn forget_connections(&self) {
        lock(&self.connections).clear();
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

/// Control surface of a live connection, shared with the server and its stream tasks.
pub(crate) struct ConnectionHandle {
    pub frames: Arc<FrameControl>,
    /// Authenticated by a TLS client certificate: provider tokens are not checked.
    pub has_client_cert: bool,
    /// APNs provider-token state of this connection.
    pub auth: ConnectionAuth,
    pub wake: Notify,
    pub goaway_requested: AtomicBool,
    pub close_requested: AtomicBool,
    pub limit_raised: AtomicBool,
    pub open_streams: AtomicU64,
}

impl ConnectionHandle {
    pub fn new(frames: Arc<FrameControl>, limit_raised: bool, has_client_cert: bool) -> Self {
        ConnectionHandle {
            frames,
            has_client_cert,
            auth: ConnectionAuth::default(),
            wake: Notify::new(),
            goaway_requested: AtomicBool::new(false),
            close_requested: AtomicBool::new(false),
            limit_raised: AtomicBool::new(limit_raised),
            open_streams: AtomicU64::new(0),
        }
    }

    /// Advertises a new MAX_CONCURRENT_STREAMS on this connection.
    pub fn set_max_streams(&self, value: u32) {
        self.limit_raised.store(true, Ordering::Release);
        self.frames.request_max_streams(value);
        // Polling the h2 connection flushes the codec, which injects the frame.
        self.wake.notify_one();
    }

    pub fn request_goaway(&self) {
        self.goaway_requested.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn request_close(&self) {
        self.close_requested.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}
