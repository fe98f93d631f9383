//! APNs broadcast push for Live Activities (iOS 18): the channel-management API
//! (`/1/apps/<bundle>/channels`, `/1/apps/<bundle>/all-channels`, served on
//! api-manage-broadcast hosts) and broadcast sends (`POST /4/broadcasts/apps/<bundle>`).
//!
//! The channels themselves live in [`super::channels`] (a leaf the shared state holds).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method};

use super::validate::{self, Rejection};
use crate::config::Behavior;
use crate::reply::{Action, Answers, Reply};
use crate::state::{ConnectionHandle, Shared};

pub(crate) const MANAGE_PREFIX: &str = "/1/apps/";
pub(crate) const BROADCAST_PREFIX: &str = "/4/broadcasts/apps/";
/// Broadcast payloads may be 5120 bytes (device pushes 4096).
pub(crate) const MAX_BROADCAST_PAYLOAD: usize = 5120;
pub(crate) const MAX_MANAGE_BODY: usize = 4096;
/// The mock's idea of "too long" for a channel id (Apple does not publish one).
const MAX_CHANNEL_ID_LEN: usize = 128;

const fn reject(status: u16, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

/// `apns-request-id` echoed (or generated) on every answer.
struct BroadcastAnswers {
    request_id: HeaderValue,
    unique_id: HeaderValue,
}

impl Answers for BroadcastAnswers {
    fn ok(&self) -> Reply {
        Reply::empty(200)
            .header("apns-request-id", self.request_id.clone())
            .header("apns-unique-id", self.unique_id.clone())
    }

    fn failure(&self, failure: crate::config::Failure) -> Reply {
        use crate::config::Failure;
        let (status, reason) = match failure {
            Failure::TooManyRequests => (429, "TooManyRequests"),
            // Apple's broadcast page writes the 503 reason with a space.
            Failure::Unavailable => (503, "Service Unavailable"),
            Failure::ThirdPartyAuth => (403, "InvalidProviderToken"),
            Failure::InvalidArgument => (400, "BadRequestPayload"),
            Failure::BadToken => (400, "BadChannelId"),
            Failure::Unregistered | Failure::ExpiredToken => (400, "ChannelNotRegistered"),
            Failure::SenderMismatch => (403, "TopicMismatch"),
            Failure::Internal | Failure::Unspecified => (500, "InternalServerError"),
        };
        self.reject(status, reason, None)
    }

    fn reject(&self, status: u16, reason: &str, _timestamp_ms: Option<u64>) -> Reply {
        let reason_json = serde_json::Value::from(reason).to_string();
        Reply::json(status, format!(r#"{{"reason":{reason_json}}}"#))
            .header("apns-request-id", self.request_id.clone())
    }
}

fn answers(parts: &Parts, shared: &Shared) -> BroadcastAnswers {
    BroadcastAnswers {
        request_id: parts
            .headers
            .get("apns-request-id")
            .filter(|id| validate::is_canonical_uuid(id.as_bytes()))
            .cloned()
            .unwrap_or_else(|| shared.next_apns_id()),
        unique_id: shared.next_apns_id(),
    }
}

/// `<bundle>` and what follows it in a path under `prefix`.
fn split_path<'a>(path: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = path
        .split_once('?')
        .map_or(path, |(p, _)| p)
        .strip_prefix(prefix)?;
    let (bundle, tail) = rest.split_once('/').unwrap_or((rest, ""));
    (!bundle.is_empty()).then_some((bundle, tail))
}

fn channel_id(headers: &HeaderMap) -> Result<&str, Rejection> {
    let value = headers
        .get("apns-channel-id")
        .filter(|v| !v.is_empty())
        .ok_or(reject(400, "MissingChannelId"))?;
    let text = value.to_str().map_err(|_| reject(400, "BadChannelId"))?;
    if text.len() > MAX_CHANNEL_ID_LEN || STANDARD.decode(text).is_err() {
        return Err(reject(400, "BadChannelId"));
    }
    Ok(text)
}

fn check_auth(parts: &Parts, shared: &Shared, conn: &ConnectionHandle) -> Result<(), Rejection> {
    if shared.verifier.is_enabled() && !conn.has_client_cert {
        super::check_provider_token(&parts.headers, shared, conn)?;
    }
    Ok(())
}

/// The topic, when sent, must be the path's bundle id without a push-type suffix.
fn check_topic(headers: &HeaderMap, bundle: &str) -> Result<(), Rejection> {
    let Some(topic) = headers.get("apns-topic") else {
        return Ok(());
    };
    let topic = topic.to_str().unwrap_or("");
    if topic == bundle {
        Ok(())
    } else if topic.starts_with(bundle) && topic[bundle.len()..].starts_with('.') {
        Err(reject(400, "TopicDisallowed"))
    } else {
        Err(reject(403, "TopicMismatch"))
    }
}

/// A valid request's rule: `Ok`/`Delay` run `op`, anything else is the fault it names.
fn act(behavior: Behavior, answers: &BroadcastAnswers, op: impl FnOnce() -> Reply) -> Action {
    match behavior {
        Behavior::Ok => Action::Reply(op()),
        Behavior::Delay(delay) => Action::Delayed(delay, op()),
        other => Action::for_behavior(other, answers),
    }
}

// -- broadcast sends ------------------------------------------------------------------------

/// `POST /4/broadcasts/apps/<bundle>`. Rules match the channel id.
pub(crate) fn handle_broadcast(
    parts: &Parts,
    body: &[u8],
    body_len: usize,
    shared: &Shared,
    conn: &ConnectionHandle,
) -> Action {
    shared.counters.request_received(None);
    let answers = answers(parts, shared);
    match judge_broadcast(parts, body, body_len, shared, conn) {
        Ok((bundle, id)) => {
            // Counted before any fault: the server has it, whatever it answers.
            shared.channels.record(bundle, id, body);
            act(shared.behavior_for(id), &answers, || answers.ok())
        }
        Err(r) => Action::Reply(answers.reject(r.status, r.reason, None)),
    }
}

fn judge_broadcast<'a>(
    parts: &'a Parts,
    body: &[u8],
    body_len: usize,
    shared: &Shared,
    conn: &ConnectionHandle,
) -> Result<(&'a str, &'a str), Rejection> {
    if parts.method != Method::POST {
        return Err(reject(405, "MethodNotAllowed"));
    }
    let (bundle, tail) =
        split_path(parts.uri.path(), BROADCAST_PREFIX).ok_or(reject(404, "BadPath"))?;
    if !tail.is_empty() {
        return Err(reject(404, "BadPath"));
    }
    check_auth(parts, shared, conn)?;
    if shared.channels.is_disabled(bundle) {
        return Err(reject(400, "FeatureNotEnabled"));
    }
    let headers = &parts.headers;
    match headers.get("apns-push-type") {
        None => return Err(reject(400, "MissingPushType")),
        Some(kind) if !kind.as_bytes().eq_ignore_ascii_case(b"liveactivity") => {
            return Err(reject(400, "InvalidPushType"))
        }
        Some(_) => {}
    }
    check_topic(headers, bundle)?;
    let id = channel_id(headers)?;
    let policy = shared
        .channels
        .policy(bundle, id)
        .ok_or(reject(400, "ChannelNotRegistered"))?;
    match headers.get("apns-priority").map(HeaderValue::as_bytes) {
        Some(b"1" | b"5" | b"10") => {}
        _ => return Err(reject(400, "BadPriority")),
    }
    let expiration = headers
        .get("apns-expiration")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or(reject(400, "BadExpirationDate"))?;
    if policy == 0 && expiration != 0 {
        return Err(reject(400, "BadExpirationDate"));
    }
    validate::check_body(body, body_len, MAX_BROADCAST_PAYLOAD)?;
    // Not documented by Apple: the mock refuses a broadcast that tries to start an activity.
    let event = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/aps/event")?.as_str().map(str::to_owned));
    if !matches!(event.as_deref(), Some("update" | "end")) {
        return Err(reject(400, "BadRequestParams"));
    }
    Ok((bundle, id))
}

// -- channel management ---------------------------------------------------------------------

/// `/1/apps/<bundle>/channels` (POST create, GET read, DELETE) and `/all-channels` (GET).
/// Rules match the bundle id.
pub(crate) fn handle_manage(
    parts: &Parts,
    body: &[u8],
    body_len: usize,
    shared: &Shared,
    conn: &ConnectionHandle,
) -> Action {
    shared.counters.request_received(None);
    let answers = answers(parts, shared);
    let rejected = |r: Rejection| Action::Reply(answers.reject(r.status, r.reason, None));
    let Some((bundle, tail)) = split_path(parts.uri.path(), MANAGE_PREFIX) else {
        return rejected(reject(404, "BadPath"));
    };
    if let Err(r) = check_auth(parts, shared, conn) {
        return rejected(r);
    }
    let op = match (tail, &parts.method) {
        ("channels", &Method::POST) => create_request(body, body_len).map(Op::Create),
        ("channels", &Method::GET) => channel_id(&parts.headers).map(Op::Read),
        ("channels", &Method::DELETE) => channel_id(&parts.headers).map(Op::Delete),
        ("all-channels", &Method::GET) => Ok(Op::List),
        ("channels" | "all-channels", _) => Err(reject(405, "MethodNotAllowed")),
        _ => Err(reject(404, "BadPath")),
    };
    let op = match op {
        Ok(op) => op,
        Err(r) => return rejected(r),
    };
    let request_id = answers.request_id.clone();
    let channels = &shared.channels;
    act(shared.behavior_for(bundle), &answers, || {
        let reply = match op {
            Op::Create(policy) => channels.create(bundle, policy).and_then(|id| {
                // Base64 is always a valid header value; a failure would be a mock bug (500).
                let value =
                    HeaderValue::from_str(&id).map_err(|_| reject(500, "InternalServerError"))?;
                Ok(Reply::empty(201).header("apns-channel-id", value))
            }),
            Op::Read(id) => channels
                .policy(bundle, id)
                .map(|p| {
                    let json = serde_json::json!({
                        "message-storage-policy": p,
                        "push-type": "LiveActivity",
                    });
                    Reply::json(200, json.to_string())
                })
                .ok_or(reject(400, "ChannelNotRegistered")),
            Op::Delete(id) => {
                if channels.delete(bundle, id) {
                    Ok(Reply::empty(204))
                } else {
                    Err(reject(400, "ChannelNotRegistered"))
                }
            }
            Op::List => {
                let ids: Vec<String> = channels.list(bundle).into_iter().map(|c| c.0).collect();
                Ok(Reply::json(
                    200,
                    serde_json::json!({ "channels": ids }).to_string(),
                ))
            }
        };
        match reply {
            Ok(reply) => reply.header("apns-request-id", request_id),
            Err(r) => answers.reject(r.status, r.reason, None),
        }
    })
}

enum Op<'a> {
    Create(u8),
    Read(&'a str),
    Delete(&'a str),
    List,
}

/// `{"message-storage-policy": 0|1, "push-type": "LiveActivity"}` and nothing else.
fn create_request(body: &[u8], body_len: usize) -> Result<u8, Rejection> {
    if body_len > MAX_MANAGE_BODY {
        return Err(reject(413, "PayloadTooLarge"));
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return Err(reject(400, "BadRequestPayload"));
    };
    if map
        .keys()
        .any(|k| k != "message-storage-policy" && k != "push-type")
    {
        return Err(reject(400, "BadRequestParams"));
    }
    match map.get("push-type").and_then(serde_json::Value::as_str) {
        None => return Err(reject(400, "MissingPushType")),
        Some(kind) if !kind.eq_ignore_ascii_case("liveactivity") => {
            return Err(reject(400, "InvalidPushType"))
        }
        Some(_) => {}
    }
    // MissingChannelQueueSize is undocumented; one client reports it for a missing policy.
    let policy = map
        .get("message-storage-policy")
        .ok_or(reject(400, "MissingChannelQueueSize"))?;
    match policy.as_u64() {
        Some(p @ (0 | 1)) => Ok(u8::try_from(p).unwrap_or(0)),
        _ => Err(reject(400, "BadRequestParams")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies() {
        let ok = br#"{"message-storage-policy": 1, "push-type": "LiveActivity"}"#;
        assert_eq!(create_request(ok, ok.len()), Ok(1));
        for (body, reason) in [
            (&br#"{"message-storage-policy": 0}"#[..], "MissingPushType"),
            (
                br#"{"push-type": "LiveActivity"}"#,
                "MissingChannelQueueSize",
            ),
            (
                br#"{"message-storage-policy": 2, "push-type": "LiveActivity"}"#,
                "BadRequestParams",
            ),
            (
                br#"{"message-storage-policy": 0, "push-type": "LiveActivity", "x": 1}"#,
                "BadRequestParams",
            ),
            (b"{not json", "BadRequestPayload"),
        ] {
            assert_eq!(create_request(body, body.len()).unwrap_err().reason, reason);
        }
    }

    #[test]
    fn channel_ids_and_topics() {
        let mut headers = HeaderMap::new();
        assert_eq!(channel_id(&headers).unwrap_err().reason, "MissingChannelId");
        headers.insert("apns-channel-id", HeaderValue::from_static("not base64!"));
        assert_eq!(channel_id(&headers).unwrap_err().reason, "BadChannelId");
        headers.insert("apns-channel-id", HeaderValue::from_static("dGVzdA=="));
        assert_eq!(channel_id(&headers), Ok("dGVzdA=="));
        headers.insert("apns-topic", HeaderValue::from_static("com.a"));
        assert_eq!(check_topic(&headers, "com.a"), Ok(()));
        headers.insert(
            "apns-topic",
            HeaderValue::from_static("com.a.push-type.liveactivity"),
        );
        assert_eq!(
            check_topic(&headers, "com.a").unwrap_err().reason,
            "TopicDisallowed"
        );
        headers.insert("apns-topic", HeaderValue::from_static("com.other"));
        assert_eq!(
            check_topic(&headers, "com.a").unwrap_err().reason,
            "TopicMismatch"
        );
        assert_eq!(
            split_path("/4/broadcasts/apps/com.a", BROADCAST_PREFIX),
            Some(("com.a", ""))
        );
        assert_eq!(
            split_path("/1/apps/com.a/all-channels", MANAGE_PREFIX),
            Some(("com.a", "all-channels"))
        );
    }
}
