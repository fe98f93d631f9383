//! Configuration types and the string forms of behaviours used by the CLI and bindings.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// APNs refuses provider tokens whose `iat` is older than an hour.
pub const DEFAULT_JWT_MAX_AGE: Duration = Duration::from_secs(3600);
/// APNs allows a new provider token on a connection at most every 20 minutes.
pub const DEFAULT_TOKEN_UPDATE_WINDOW: Duration = Duration::from_secs(20 * 60);
/// Google access tokens live about an hour (`expires_in: 3599`).
pub const DEFAULT_FCM_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// FCM's project quota is counted per minute.
pub const DEFAULT_FCM_QUOTA_WINDOW: Duration = Duration::from_secs(60);

/// Everything that shapes one mock server instance.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Address to listen on (default `127.0.0.1:0`, an ephemeral port).
    pub bind: SocketAddr,
    /// Advertised `SETTINGS_MAX_CONCURRENT_STREAMS` (default 1000).
    pub max_concurrent_streams: u32,
    /// APNs style: advertise 1 stream until the first 200 on a connection, then raise.
    pub start_streams_at_one: bool,
    /// Provider-token keys; empty disables the `authorization` check.
    pub jwt_keys: Vec<JwtKey>,
    /// Per-token behaviour; the first matching rule wins, otherwise `Behavior::Ok`.
    pub rules: Vec<Rule>,
    /// Per connection: start a graceful shutdown after accepting this many streams (HTTP/1.1:
    /// answer that request with `Connection: close`).
    pub goaway_after_streams: Option<u64>,
    /// Every answer leaves this long after its request arrived (counted from the request's
    /// HEADERS, not after the body and checks, so the round trip a client sees is this delay
    /// plus the network, not plus the mock's own work).
    pub response_delay: Duration,
    /// Where `ca.pem` is written; `None` uses a fresh temp dir removed on stop.
    pub cert_dir: Option<PathBuf>,
    /// PEM of a CA: when set, every connection must present a client certificate chaining
    /// to it (APNs certificate auth), and such connections need no provider token.
    pub client_ca_pem: Option<String>,
    /// A provider token whose `iat` is older than this gets `ExpiredProviderToken`.
    pub jwt_max_age: Duration,
    /// Minimum time between provider-token changes on one connection; a faster change gets
    /// 429 `TooManyProviderTokenUpdates` (APNs: 20 minutes; tests shrink it).
    pub token_update_window: Duration,
    /// Service accounts whose JWT-bearer assertions `POST /token` accepts. When empty, FCM
    /// sends need no bearer token (and no grant can succeed).
    pub fcm_service_accounts: Vec<ServiceAccountKey>,
    /// How long an issued access token is accepted; also its `expires_in`.
    pub fcm_token_lifetime: Duration,
    /// FCM messages accepted per project per window; `None` means no quota.
    pub fcm_quota_per_window: Option<u64>,
    /// Length of the fixed quota windows, counted from a project's first message.
    pub fcm_quota_window: Duration,
    /// Broadcast channels one app may have (Apple: 10,000 per environment); tests shrink it.
    pub max_channels_per_app: usize,
    /// A Web Push push service that speaks only HTTP/1.1 (ALPN `http/1.1`, no h2): every
    /// connection is served by hyper's HTTP/1.1 server, other protocols' paths get 404.
    pub http1_only: bool,
}

impl MockConfig {
    pub fn new() -> Self {
        MockConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_concurrent_streams: 1000,
            start_streams_at_one: false,
            jwt_keys: Vec::new(),
            rules: Vec::new(),
            goaway_after_streams: None,
            response_delay: Duration::ZERO,
            cert_dir: None,
            client_ca_pem: None,
            jwt_max_age: DEFAULT_JWT_MAX_AGE,
            token_update_window: DEFAULT_TOKEN_UPDATE_WINDOW,
            fcm_service_accounts: Vec::new(),
            fcm_token_lifetime: DEFAULT_FCM_TOKEN_LIFETIME,
            fcm_quota_per_window: None,
            fcm_quota_window: DEFAULT_FCM_QUOTA_WINDOW,
            max_channels_per_app: crate::apns::channels::MAX_CHANNELS_PER_APP,
            http1_only: false,
        }
    }

    pub fn bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    pub fn max_concurrent_streams(mut self, max: u32) -> Self {
        self.max_concurrent_streams = max;
        self
    }

    pub fn http1_only(mut self, enabled: bool) -> Self {
        self.http1_only = enabled;
        self
    }

    pub fn start_streams_at_one(mut self, enabled: bool) -> Self {
        self.start_streams_at_one = enabled;
        self
    }

    pub fn jwt_key(mut self, key: JwtKey) -> Self {
        self.jwt_keys.push(key);
        self
    }

    pub fn rule(mut self, matcher: Match, behavior: Behavior) -> Self {
        self.rules.push(Rule { matcher, behavior });
        self
    }

    pub fn goaway_after_streams(mut self, streams: u64) -> Self {
        self.goaway_after_streams = Some(streams);
        self
    }

    pub fn response_delay(mut self, delay: Duration) -> Self {
        self.response_delay = delay;
        self
    }

    pub fn cert_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cert_dir = Some(dir.into());
        self
    }

    pub fn client_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.client_ca_pem = Some(pem.into());
        self
    }

    pub fn jwt_max_age(mut self, age: Duration) -> Self {
        self.jwt_max_age = age;
        self
    }

    pub fn token_update_window(mut self, window: Duration) -> Self {
        self.token_update_window = window;
        self
    }

    pub fn fcm_service_account(mut self, account: ServiceAccountKey) -> Self {
        self.fcm_service_accounts.push(account);
        self
    }

    pub fn fcm_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.fcm_token_lifetime = lifetime;
        self
    }

    /// At most `messages` FCM messages per project in each `window`.
    pub fn fcm_quota(mut self, messages: u64, window: Duration) -> Self {
        self.fcm_quota_per_window = Some(messages);
        self.fcm_quota_window = window;
        self
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A provider-token signing key the mock accepts (public half only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtKey {
    pub key_id: String,
    pub team_id: String,
    /// SPKI PEM of a P-256 key (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
}

/// A Google service account the OAuth2 token endpoint trusts (public half only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountKey {
    /// The assertion's `iss`.
    pub client_email: String,
    /// SPKI PEM of its RSA key (`-----BEGIN PUBLIC KEY-----`), 2048 to 8192 bits.
    pub public_key_pem: String,
}

/// How a rule selects targets: the APNs device token from `:path`, or the FCM
/// `message.token` (else `topic`, else `condition`). Comparison ignores ASCII case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Exact(String),
    Prefix(String),
}

impl Match {
    pub fn matches(&self, token: &str) -> bool {
        match self {
            Match::Exact(expected) => expected.eq_ignore_ascii_case(token),
            Match::Prefix(prefix) => token
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: Match,
    pub behavior: Behavior,
}

/// What the mock does with a valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Success: APNs 200 with `apns-id`; FCM 200 with the message name.
    Ok,
    /// A failure by meaning, answered in the shape of the protocol that was asked.
    Fail(Failure),
    /// This exact status and reason: the APNs `reason` (with `timestamp_ms` in the body when
    /// present), or the FCM `errorCode`.
    Reject {
        status: u16,
        reason: String,
        timestamp_ms: Option<u64>,
    },
    /// 200 after this delay (other streams are not blocked).
    Delay(Duration),
    /// Never answer; the stream stays open until the connection ends.
    Hang,
    /// RST_STREAM with this reason instead of an answer.
    Reset(h2::Reason),
    /// Leave this stream unanswered and send GOAWAY(NO_ERROR) at once, then close.
    GoAway,
    /// Drop the TCP connection at once, without GOAWAY.
    CloseConnection,
    /// The connection goes silent: nothing is written any more, input is discarded.
    Blackhole,
}

/// A failure named by what it means to the sender, so one rule drives both protocols.
///
/// | Failure | APNs | FCM |
/// |---|---|---|
/// | `Unregistered` | 410 `Unregistered` + timestamp | 404 `UNREGISTERED` |
/// | `ExpiredToken` | 410 `ExpiredToken` + timestamp | 404 `UNREGISTERED` |
/// | `BadToken` | 400 `BadDeviceToken` | 400 `INVALID_ARGUMENT`, "not a valid FCM registration token" |
/// | `TooManyRequests` | 429 `TooManyRequests` | 429 `QUOTA_EXCEEDED`, `retry-after: 60` |
/// | `Internal` | 500 `InternalServerError` | 500 `INTERNAL` |
/// | `Unavailable` | 503 `ServiceUnavailable` | 503 `UNAVAILABLE`, `retry-after: 1` |
/// | `SenderMismatch` | 400 `DeviceTokenNotForTopic` | 403 `SENDER_ID_MISMATCH` |
/// | `ThirdPartyAuth` | 403 `InvalidProviderToken` | 401 `THIRD_PARTY_AUTH_ERROR` |
/// | `InvalidArgument` | 400 `BadRequestPayload` | 400 `INVALID_ARGUMENT` with a field violation |
/// | `Unspecified` | 500 `InternalServerError` | 500 `UNSPECIFIED_ERROR` (status `INTERNAL`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Unregistered,
    ExpiredToken,
    BadToken,
    TooManyRequests,
    Internal,
    Unavailable,
    SenderMismatch,
    ThirdPartyAuth,
    InvalidArgument,
    Unspecified,
}

/// Parses a behaviour name as used by `--rule PREFIX=BEHAVIOR`.
///
/// Accepted: `ok`, `unregistered`, `expired-token`, `bad-token`, `429`, `500`, `503`,
/// `sender-mismatch`, `third-party-auth`, `invalid-argument`, `unspecified` (see [`Failure`]),
/// `delay:MS`, `hang`, `reset` (INTERNAL_ERROR), `reset:cancel|internal|refused|<code>`,
/// `refused`, `goaway`, `close`, `blackhole`, and `reject:STATUS:REASON`.
pub fn parse_behavior(text: &str) -> Result<Behavior, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let fail = Behavior::Fail;
    let behavior = match lower.as_str() {
        "ok" | "200" => Behavior::Ok,
        "unregistered" | "410" => fail(Failure::Unregistered),
        "expired-token" => fail(Failure::ExpiredToken),
        "bad-token" | "400" => fail(Failure::BadToken),
        "429" => fail(Failure::TooManyRequests),
        "500" => fail(Failure::Internal),
        "503" => fail(Failure::Unavailable),
        "sender-mismatch" => fail(Failure::SenderMismatch),
        "third-party-auth" => fail(Failure::ThirdPartyAuth),
        "invalid-argument" => fail(Failure::InvalidArgument),
        "unspecified" => fail(Failure::Unspecified),
        "hang" => Behavior::Hang,
        "reset" => Behavior::Reset(h2::Reason::INTERNAL_ERROR),
        "refused" => Behavior::Reset(h2::Reason::REFUSED_STREAM),
        "goaway" => Behavior::GoAway,
        "close" => Behavior::CloseConnection,
        "blackhole" => Behavior::Blackhole,
        _ => return parse_parameterised(text, &lower),
    };
    Ok(behavior)
}

fn parse_parameterised(text: &str, lower: &str) -> Result<Behavior, String> {
    if let Some(ms) = lower.strip_prefix("delay:") {
        let ms: u64 = ms
            .parse()
            .map_err(|_| format!("bad delay milliseconds in {text:?}"))?;
        return Ok(Behavior::Delay(Duration::from_millis(ms)));
    }
    if let Some(reason) = lower.strip_prefix("reset:") {
        let reason = match reason {
            "cancel" => h2::Reason::CANCEL,
            "internal" | "internal_error" => h2::Reason::INTERNAL_ERROR,
            "refused" | "refused_stream" => h2::Reason::REFUSED_STREAM,
            "protocol" | "protocol_error" => h2::Reason::PROTOCOL_ERROR,
            "no_error" => h2::Reason::NO_ERROR,
            code => h2::Reason::from(
                code.parse::<u32>()
                    .map_err(|_| format!("unknown RST_STREAM reason in {text:?}"))?,
            ),
        };
        return Ok(Behavior::Reset(reason));
    }
    if lower.starts_with("reject:") {
        // Keep the reason's original case: APNs reasons are CamelCase, FCM codes upper case.
        let mut parts = text.splitn(3, ':').skip(1);
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| format!("bad status in {text:?}"))?;
        let reason = parts
            .next()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| format!("missing reason in {text:?}"))?;
        let timestamp_ms = (status == 410).then(now_millis);
        return Ok(Behavior::Reject {
            status,
            reason: reason.to_owned(),
            timestamp_ms,
        });
    }
    Err(format!(
        "unknown behavior {text:?} (expected ok|unregistered|expired-token|bad-token|429|500|503|\
         sender-mismatch|third-party-auth|invalid-argument|unspecified|delay:MS|hang|reset|\
         refused|goaway|close|blackhole|reject:STATUS:REASON)"
    ))
}

/// Parses `PREFIX=BEHAVIOR` (prefix match on the lowercase token; an empty prefix matches all).
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    let (prefix, behavior) = text
        .split_once('=')
        .ok_or_else(|| format!("rule {text:?} is not PREFIX=BEHAVIOR"))?;
    Ok(Rule {
        matcher: Match::Prefix(prefix.trim().to_ascii_lowercase()),
        behavior: parse_behavior(behavior)?,
    })
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_behavior() {
        assert_eq!(parse_behavior("ok").unwrap(), Behavior::Ok);
        for (name, failure) in [
            ("unregistered", Failure::Unregistered),
            ("410", Failure::Unregistered),
            ("expired-token", Failure::ExpiredToken),
            ("bad-token", Failure::BadToken),
            ("400", Failure::BadToken),
            ("429", Failure::TooManyRequests),
            ("500", Failure::Internal),
            ("503", Failure::Unavailable),
            ("sender-mismatch", Failure::SenderMismatch),
            ("Third-Party-Auth", Failure::ThirdPartyAuth),
            ("invalid-argument", Failure::InvalidArgument),
            ("unspecified", Failure::Unspecified),
        ] {
            assert_eq!(
                parse_behavior(name).unwrap(),
                Behavior::Fail(failure),
                "{name}"
            );
        }
        assert_eq!(
            parse_behavior("delay:250").unwrap(),
            Behavior::Delay(Duration::from_millis(250))
        );
        assert_eq!(parse_behavior("hang").unwrap(), Behavior::Hang);
        assert_eq!(
            parse_behavior("reset").unwrap(),
            Behavior::Reset(h2::Reason::INTERNAL_ERROR)
        );
        assert_eq!(
            parse_behavior("reset:cancel").unwrap(),
            Behavior::Reset(h2::Reason::CANCEL)
        );
        assert_eq!(
            parse_behavior("refused").unwrap(),
            Behavior::Reset(h2::Reason::REFUSED_STREAM)
        );
        assert_eq!(parse_behavior("goaway").unwrap(), Behavior::GoAway);
        assert_eq!(parse_behavior("close").unwrap(), Behavior::CloseConnection);
        assert_eq!(parse_behavior("blackhole").unwrap(), Behavior::Blackhole);
        assert!(matches!(
            parse_behavior("reject:400:BadTopic").unwrap(),
            Behavior::Reject { status: 400, ref reason, timestamp_ms: None } if reason == "BadTopic"
        ));
        assert!(matches!(
            parse_behavior("reject:410:Unregistered").unwrap(),
            Behavior::Reject {
                status: 410,
                timestamp_ms: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn rejects_unknown_behaviors() {
        assert!(parse_behavior("explode").is_err());
        assert!(parse_behavior("delay:soon").is_err());
        assert!(parse_behavior("reject:99:X").is_err());
        assert!(parse_rule("abc").is_err());
    }

    #[test]
    fn rule_is_a_case_insensitive_prefix() {
        let rule = parse_rule("DEAD=unregistered").unwrap();
        assert!(rule.matcher.matches("deadbeef"));
        assert!(rule.matcher.matches("DEADBEEF"));
        assert!(!rule.matcher.matches("beef"));
        let all = parse_rule("=hang").unwrap();
        assert!(all.matcher.matches("anything"));
        assert!(Match::Exact("ab".into()).matches("AB"));
        assert!(!Match::Exact("ab".into()).matches("abc"));
    }
}
