//! APNs device pushes (`POST /3/device/<token>`): validation, provider tokens, rules and
//! APNs-shaped answers.

pub(crate) mod auth;
pub(crate) mod broadcast;
pub(crate) mod channels;
pub(crate) mod connection_auth;
pub(crate) mod validate;

use http::request::Parts;
use http::HeaderValue;

use self::validate::Rejection;
use crate::apns::auth::AuthFailure;
use crate::config::{now_millis, Behavior, Failure};
use crate::reply::{Action, Answers, Reply};
use crate::state::ConnectionHandle;
use crate::state::Shared;

/// How many body bytes to keep: enough to judge the size limit of this push type.
pub(crate) fn body_limit(parts: &Parts) -> usize {
    validate::payload_limit(&parts.headers)
}

/// Counts the request, then judges it like APNs.
pub(crate) fn handle(
    parts: &Parts,
    body: &[u8],
    body_len: usize,
    shared: &Shared,
    conn: &ConnectionHandle,
) -> Action {
    shared
        .counters
        .request_received(validate::device_token(parts.uri.path()));
    let answers = ApnsAnswers {
        apns_id: parts
            .headers
            .get("apns-id")
            .filter(|id| validate::is_canonical_uuid(id.as_bytes()))
            .cloned()
            .unwrap_or_else(|| shared.next_apns_id()),
    };
    match decide(parts, body, body_len, shared, conn) {
        Ok(behavior) => Action::for_behavior(behavior, &answers),
        Err(rejection) => Action::Reply(answers.reject(rejection.status, rejection.reason, None)),
    }
}

/// Validation (in APNs order), then auth, then the first matching rule.
fn decide(
    parts: &Parts,
    body: &[u8],
    body_len: usize,
    shared: &Shared,
    conn: &ConnectionHandle,
) -> Result<Behavior, Rejection> {
    let token = validate::check_target(&parts.method, parts.uri.path())?;
    // Like APNs, a certificate connection ignores any `authorization` header.
    if shared.verifier.is_enabled() && !conn.has_client_cert {
        check_provider_token(&parts.headers, shared, conn)?;
    }
    validate::check_headers(&parts.headers)?;
    validate::check_body(body, body_len, body_limit(parts))?;
    Ok(shared.behavior_for(token))
}

/// The server-wide JWT checks, then this connection's key binding and update window.
pub(crate) fn check_provider_token(
    headers: &http::HeaderMap,
    shared: &Shared,
    conn: &ConnectionHandle,
) -> Result<(), Rejection> {
    let authorization = headers
        .get("authorization")
        .map(http::HeaderValue::as_bytes);
    shared
        .verifier
        .check(authorization)
        .and_then(|token| conn.auth.admit(token, shared.token_update_window))
        .map_err(|failure| {
            if failure == AuthFailure::TooManyUpdates {
                shared.counters.token_update_rejected();
            }
            Rejection {
                status: failure.status(),
                reason: failure.reason(),
            }
        })
}

/// Every APNs answer carries the request's `apns-id` (or a generated one).
struct ApnsAnswers {
    apns_id: HeaderValue,
}

impl Answers for ApnsAnswers {
    fn ok(&self) -> Reply {
        Reply::empty(200).header("apns-id", self.apns_id.clone())
    }

    fn failure(&self, failure: Failure) -> Reply {
        let (status, reason) = match failure {
            Failure::Unregistered => return self.reject(410, "Unregistered", Some(now_millis())),
            Failure::ExpiredToken => return self.reject(410, "ExpiredToken", Some(now_millis())),
            Failure::BadToken => (400, "BadDeviceToken"),
            Failure::TooManyRequests => (429, "TooManyRequests"),
            Failure::Internal | Failure::Unspecified => (500, "InternalServerError"),
            Failure::Unavailable => (503, "ServiceUnavailable"),
            // The closest APNs meanings: the token belongs to another app; the sender's
            // credentials are bad; the payload is bad.
            Failure::SenderMismatch => (400, "DeviceTokenNotForTopic"),
            Failure::ThirdPartyAuth => (403, "InvalidProviderToken"),
            Failure::InvalidArgument => (400, "BadRequestPayload"),
        };
        self.reject(status, reason, None)
    }

    fn reject(&self, status: u16, reason: &str, timestamp_ms: Option<u64>) -> Reply {
        let reason_json = serde_json::Value::from(reason).to_string();
        let body = match timestamp_ms {
            Some(ts) => format!(r#"{{"reason":{reason_json},"timestamp":{ts}}}"#),
            None => format!(r#"{{"reason":{reason_json}}}"#),
        };
        Reply::json(status, body).header("apns-id", self.apns_id.clone())
    }
}
