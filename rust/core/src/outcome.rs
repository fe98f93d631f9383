//! The one result every submitted request ends with, and how a response becomes one.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// The provider answered 2xx.
    Delivered,
    /// The provider answered with an error status (reason, timestamp...).
    Rejected,
    /// No answer before the stream's deadline; the stream was reset with CANCEL.
    Timeout,
    /// No answer for another reason (connection lost, connect failure, reset by the server).
    /// `maybe_delivered` says whether the request may have reached the provider.
    Failed,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Delivered => "delivered",
            OutcomeKind::Rejected => "rejected",
            OutcomeKind::Timeout => "timeout",
            OutcomeKind::Failed => "failed",
        }
    }
}

/// The APNs notification id header, as a name made once: a lookup by `&str` would parse and
/// validate the name again for every answer.
pub(crate) const APNS_ID: HeaderName = HeaderName::from_static("apns-id");

/// Error bodies larger than this are truncated: no provider sends more, a broken server might.
pub(crate) const MAX_ERROR_BODY: usize = 8 * 1024;
/// Limit of bodies a template keeps on success (OAuth tokens, an APNs list of 10,000
/// broadcast channel ids is about 270 KB).
pub(crate) const MAX_KEPT_BODY: usize = 1024 * 1024;

/// The final outcome of one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: u64,
    pub token: Box<str>,
    pub kind: OutcomeKind,
    /// HTTP status, 0 when there was no response.
    pub status: u16,
    /// APNs `reason` from the error body.
    pub reason: Option<String>,
    /// `apns-id` response header (APNs echoes ours or makes one).
    pub apns_id: Option<String>,
    /// APNs 410 `timestamp`: milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// `retry-after` response header in seconds, when present.
    pub retry_after: Option<u64>,
    /// Raw error body (non-2xx), for providers whose errors are richer than a reason (FCM).
    pub body: Option<Bytes>,
    /// Stream and connection that carried the last attempt (0 when none was opened).
    pub stream_id: u32,
    pub connection_id: u64,
    /// Time from submission to outcome.
    pub latency: Duration,
    /// Streams opened for this request (retries of never-processed attempts included).
    pub attempts: u32,
    /// Why the request failed or timed out, for humans.
    pub error: Option<String>,
    /// True when the request may have been processed although no answer came back.
    pub maybe_delivered: bool,
    /// Generation of the pool credential the request carried (see `Engine::set_authorization`):
    /// a 401 for an older credential than the current one needs no new one.
    pub auth_generation: u64,
    /// Response headers the template asked to keep (see `Template::keeping_headers`), in the
    /// template's order; absent ones are left out. `None` when none were asked for.
    pub headers: Option<Vec<(String, String)>>,
}

impl Outcome {
    pub(crate) fn empty(id: u64, token: Box<str>, kind: OutcomeKind) -> Outcome {
        Outcome {
            id,
            token,
            kind,
            status: 0,
            reason: None,
            apns_id: None,
            timestamp_ms: None,
            retry_after: None,
            body: None,
            stream_id: 0,
            connection_id: 0,
            latency: Duration::ZERO,
            attempts: 0,
            error: None,
            maybe_delivered: false,
            auth_generation: 0,
            headers: None,
        }
    }

    /// Copy the response headers named in `names` (non-ASCII values are skipped).
    pub(crate) fn keep_headers(&mut self, headers: &HeaderMap, names: &[http::HeaderName]) {
        if names.is_empty() {
            return;
        }
        self.headers = Some(
            names
                .iter()
                .filter_map(|name| {
                    let value = headers.get(name)?.to_str().ok()?;
                    Some((name.as_str().to_owned(), value.to_owned()))
                })
                .collect(),
        );
    }

    /// Fill status, apns-id, retry-after and (for errors) reason/timestamp from a response.
    pub(crate) fn apply_response(
        &mut self,
        status: u16,
        headers: &HeaderMap,
        body: Bytes,
        keep_body: bool,
    ) {
        self.status = status;
        // An answer settles it: "maybe delivered" only describes requests left unanswered.
        self.maybe_delivered = false;
        self.kind = if (200..300).contains(&status) {
            OutcomeKind::Delivered
        } else {
            OutcomeKind::Rejected
        };
        self.apns_id = headers
            .get(&APNS_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.retry_after = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        if self.kind == OutcomeKind::Rejected {
            let (reason, timestamp) = parse_apns_error(&body);
            self.reason = reason;
            self.timestamp_ms = timestamp;
        } else if self.apns_id.is_none() && body.first() == Some(&b'{') {
            // FCM answers 200 {"name": "projects/p/messages/<id>"}: the provider's message id.
            self.apns_id = parse_message_name(&body);
        }
        if !body.is_empty() && (keep_body || self.kind == OutcomeKind::Rejected) {
            self.body = Some(body);
        }
    }
}

/// The reason (and APNs 410 timestamp) of an error body; anything unexpected yields no reason,
/// never a panic. APNs: `{"reason": "...", "timestamp": 1234}`. FCM (Google style):
/// `{"error": {"status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}}`, where the
/// FCM `errorCode` is the reason, and the canonical `status` when there is none.
pub(crate) fn parse_apns_error(body: &[u8]) -> (Option<String>, Option<i64>) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return (None, None);
    };
    let reason = map
        .get("reason")
        .and_then(|r| r.as_str())
        .map(str::to_owned)
        .or_else(|| map.get("error").and_then(google_error_reason));
    // `as` saturates: an absurd float timestamp becomes i64::MIN/MAX, never a panic.
    #[allow(clippy::cast_possible_truncation)]
    let timestamp = map.get("timestamp").and_then(|t| {
        t.as_i64()
            .or_else(|| t.as_f64().map(|f| f as i64))
            .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
    });
    (reason, timestamp)
}

fn google_error_reason(error: &serde_json::Value) -> Option<String> {
    let error = error.as_object()?;
    let from_details = error
        .get("details")
        .and_then(|d| d.as_array())
        .and_then(|details| {
            details
                .iter()
                .find_map(|d| d.get("errorCode").and_then(|c| c.as_str()))
        });
    from_details
        .or_else(|| error.get("status").and_then(|s| s.as_str()))
        .map(str::to_owned)
}

/// The `name` of a successful FCM v1 answer.
fn parse_message_name(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Object(map) => map.get("name")?.as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reason_and_timestamp() {
        let (r, t) = parse_apns_error(br#"{"reason":"Unregistered","timestamp":1700000000123}"#);
        assert_eq!(r.as_deref(), Some("Unregistered"));
        assert_eq!(t, Some(1_700_000_000_123));
    }

    #[test]
    fn fcm_error_code_is_the_reason() {
        let body = br#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(
            parse_apns_error(body),
            (Some("UNREGISTERED".to_owned()), None)
        );
        let no_code = br#"{"error":{"code":401,"status":"UNAUTHENTICATED","details":[]}}"#;
        assert_eq!(
            parse_apns_error(no_code).0.as_deref(),
            Some("UNAUTHENTICATED")
        );
        for odd in [
            &br#"{"error":5}"#[..],
            br#"{"error":{"details":"x"}}"#,
            br#"{"error":{"details":[1]}}"#,
        ] {
            assert_eq!(parse_apns_error(odd), (None, None), "{odd:?}");
        }
    }

    #[test]
    fn garbage_bodies_never_panic() {
        for body in [
            &b""[..],
            b"null",
            b"[1,2]",
            b"{\"reason\":5}",
            b"\xff\xfe",
            b"{\"timestamp\":\"x\"}",
        ] {
            let (r, t) = parse_apns_error(body);
            assert!(r.is_none() && t.is_none(), "{body:?}");
        }
    }

    #[test]
    fn kept_headers_are_copied_in_the_asked_order() {
        let mut o = Outcome::empty(1, "ch".into(), OutcomeKind::Failed);
        let mut headers = HeaderMap::new();
        headers.insert("apns-unique-id", "u-1".parse().unwrap());
        headers.insert("apns-request-id", "r-1".parse().unwrap());
        let names = ["apns-request-id", "apns-channel-id", "apns-unique-id"]
            .map(http::HeaderName::from_static);
        o.keep_headers(&headers, &names);
        assert_eq!(
            o.headers,
            Some(vec![
                ("apns-request-id".to_owned(), "r-1".to_owned()),
                ("apns-unique-id".to_owned(), "u-1".to_owned()),
            ])
        );
        let mut none = Outcome::empty(2, "ch".into(), OutcomeKind::Failed);
        none.keep_headers(&headers, &[]);
        assert_eq!(none.headers, None);
    }

    #[test]
    fn status_decides_the_kind() {
        let mut o = Outcome::empty(1, "ab".into(), OutcomeKind::Failed);
        let mut headers = HeaderMap::new();
        headers.insert("apns-id", "x-1".parse().unwrap());
        headers.insert("retry-after", "30".parse().unwrap());
        o.apply_response(
            429,
            &headers,
            Bytes::from_static(br#"{"reason":"TooManyRequests"}"#),
            false,
        );
        assert_eq!(o.kind, OutcomeKind::Rejected);
        assert_eq!(o.reason.as_deref(), Some("TooManyRequests"));
        assert_eq!(o.retry_after, Some(30));
        assert_eq!(o.apns_id.as_deref(), Some("x-1"));
        let mut ok = Outcome::empty(2, "ab".into(), OutcomeKind::Failed);
        ok.apply_response(200, &HeaderMap::new(), Bytes::new(), false);
        assert_eq!(ok.kind, OutcomeKind::Delivered);
        assert!(ok.body.is_none());
        let mut fcm = Outcome::empty(3, "tok".into(), OutcomeKind::Failed);
        let name = Bytes::from_static(br#"{"name":"projects/p/messages/0:123"}"#);
        fcm.apply_response(200, &HeaderMap::new(), name.clone(), false);
        assert_eq!(fcm.apns_id.as_deref(), Some("projects/p/messages/0:123"));
        assert!(fcm.body.is_none());
        let mut kept = Outcome::empty(4, "tok".into(), OutcomeKind::Failed);
        kept.apply_response(200, &HeaderMap::new(), name, true);
        assert!(kept.body.is_some());
    }
}
