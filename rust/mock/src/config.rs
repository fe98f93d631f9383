//! Configuration types and the string forms of behaviours used by the CLI and bindings.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// APNs refuses provider tokens whose `iat` is older than an hour.
pub const DEFAULT_JWT_MAX_AGE: Duration = Duration::from_secs(3600);
/// APNs allows a new provider token on a connection at most every 20 minutes.
pub const DEFAULT_TOKEN_UPDATE_WINDOW: Duration = Duration::from_secs(20 * 60);

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
    /// Per connection: start a graceful shutdown after accepting this many streams.
    pub goaway_after_streams: Option<u64>,
    /// Added before every answer.
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

/// How a rule selects device tokens (compared with the lowercase token from `:path`).
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
    /// 200 with `apns-id`, empty body.
    Ok,
    /// An APNs error answer; `timestamp_ms` goes into the body when present.
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

/// Parses a behaviour name as used by `--rule PREFIX=BEHAVIOR`.
///
/// Accepted: `ok`, `unregistered`, `expired-token`, `bad-token`, `429`, `500`, `503`,
/// `delay:MS`, `hang`, `reset` (INTERNAL_ERROR), `reset:cancel|internal|refused|<code>`,
/// `refused`, `goaway`, `close`, `blackhole`, and `reject:STATUS:REASON`.
pub fn parse_behavior(text: &str) -> Result<Behavior, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let reject = |status: u16, reason: &str| Behavior::Reject {
        status,
        reason: reason.to_owned(),
        timestamp_ms: None,
    };
    let behavior = match lower.as_str() {
        "ok" | "200" => Behavior::Ok,
        "unregistered" | "410" => Behavior::Reject {
            status: 410,
            reason: "Unregistered".to_owned(),
            timestamp_ms: Some(now_millis()),
        },
        "expired-token" => Behavior::Reject {
            status: 410,
            reason: "ExpiredToken".to_owned(),
            timestamp_ms: Some(now_millis()),
        },
        "bad-token" | "400" => reject(400, "BadDeviceToken"),
        "429" => reject(429, "TooManyRequests"),
        "500" => reject(500, "InternalServerError"),
        "503" => reject(503, "ServiceUnavailable"),
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
        // Keep the reason's original case: APNs reasons are CamelCase.
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
        "unknown behavior {text:?} (expected ok|unregistered|bad-token|429|500|503|delay:MS|hang|reset|refused|goaway|close|blackhole)"
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
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_behavior() {
        assert_eq!(parse_behavior("ok").unwrap(), Behavior::Ok);
        assert!(matches!(
            parse_behavior("unregistered").unwrap(),
            Behavior::Reject { status: 410, ref reason, timestamp_ms: Some(_) } if reason == "Unregistered"
        ));
        assert!(matches!(
            parse_behavior("bad-token").unwrap(),
            Behavior::Reject { status: 400, ref reason, timestamp_ms: None } if reason == "BadDeviceToken"
        ));
        for (name, status) in [("429", 429), ("500", 500), ("503", 503)] {
            assert!(
                matches!(parse_behavior(name).unwrap(), Behavior::Reject { status: s, .. } if s == status)
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
            Behavior::Reject { status: 400, ref reason, .. } if reason == "BadTopic"
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
