//! Web Push push services (`POST /wp/<subscription id>`): VAPID (RFC 8292) checks, decryption
//! of every message (RFC 8291) with the subscription's private key, rules, and answers.
//!
//! Each mock server is one push service, its origin `https://localhost:<port>`; start several
//! servers for several push services. A subscription's keys derive from its id
//! (see [`keys`]), so tests mint subscriptions without registering them here.

pub(crate) mod decrypt;
pub(crate) mod inbox;
pub mod keys;
pub(crate) mod vapid;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method};

use crate::config::{now_millis, Failure};
use crate::reply::{Action, Answers, Reply};
use crate::state::Shared;

/// Every Web Push path starts here.
pub(crate) const PATH_PREFIX: &str = "/wp/";
/// Push services accept 4,096 bytes of body; one more byte is kept to judge the size.
pub(crate) const BODY_LIMIT: usize = 4096;

/// Counts the request, then judges it like a push service.
pub(crate) fn handle(parts: &Parts, body: &[u8], body_len: usize, shared: &Shared) -> Action {
    let id = parts
        .uri
        .path()
        .strip_prefix(PATH_PREFIX)
        .unwrap_or_default();
    shared.counters.request_received(Some(id));
    match decide(parts, id, body, body_len, shared) {
        Ok(()) => Action::for_behavior(shared.behavior_for(id), &WebPushAnswers),
        Err(reply) => Action::Reply(*reply),
    }
}

fn reason(status: u16, reason: &str) -> Box<Reply> {
    Box::new(WebPushAnswers.reject(status, reason, None))
}

/// Request checks, VAPID, size, then decryption; the plaintext is recorded when all pass.
fn decide(
    parts: &Parts,
    id: &str,
    body: &[u8],
    body_len: usize,
    shared: &Shared,
) -> Result<(), Box<Reply>> {
    if parts.method != Method::POST {
        return Err(reason(405, "MethodNotAllowed"));
    }
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(reason(404, "BadPath"));
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if header("ttl")
        .and_then(|ttl| ttl.parse::<u64>().ok())
        .is_none()
    {
        return Err(reason(400, "MissingTTL"));
    }
    if let Some(urgency) = header("urgency") {
        if !matches!(urgency, "very-low" | "low" | "normal" | "high") {
            return Err(reason(400, "BadUrgency"));
        }
    }
    if let Some(topic) = header("topic") {
        if topic.is_empty()
            || topic.len() > 32
            || !topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(reason(400, "BadTopic"));
        }
    }
    let origin = shared
        .token_uri
        .trim_end_matches(crate::fcm::oauth::TOKEN_PATH);
    vapid::check(header("authorization"), origin, now_millis() / 1000)
        .map_err(|why| reason(403, why))?;
    if body_len > BODY_LIMIT {
        return Err(reason(413, "PayloadTooLarge"));
    }
    if header("content-encoding") != Some("aes128gcm") {
        return Err(reason(415, "UnsupportedContentEncoding"));
    }
    let plaintext = keys::SubscriptionSecret::for_id(id)
        .and_then(|secret| decrypt::open(&secret, body))
        .map_err(|why| reason(400, why))?;
    shared.webpush.record(id, Bytes::from(plaintext));
    Ok(())
}

/// Answers shaped like Apple's push service: JSON `{"reason": ...}` on errors.
struct WebPushAnswers;

impl Answers for WebPushAnswers {
    fn ok(&self) -> Reply {
        Reply::empty(201).header("location", HeaderValue::from_static("/wp-message"))
    }

    fn failure(&self, failure: Failure) -> Reply {
        let (status, reason) = match failure {
            Failure::Unregistered | Failure::ExpiredToken => (410, "Unregistered"),
            Failure::BadToken => (404, "BadDeviceToken"),
            Failure::TooManyRequests => return self.reject(429, "TooManyRequests", None),
            Failure::Internal | Failure::Unspecified => (500, "InternalServerError"),
            Failure::Unavailable => (503, "ServiceUnavailable"),
            Failure::SenderMismatch | Failure::ThirdPartyAuth => (403, "BadJwtToken"),
            Failure::InvalidArgument => (400, "BadRequest"),
        };
        self.reject(status, reason, None)
    }

    fn reject(&self, status: u16, reason: &str, _timestamp_ms: Option<u64>) -> Reply {
        let body = serde_json::json!({ "reason": reason }).to_string();
        let reply = Reply::json(status, body);
        if status == 429 {
            reply.retry_after(1)
        } else {
            reply
        }
    }
}
