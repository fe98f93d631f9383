//! APNs broadcast push for Live Activities (iOS 18): the channel-management API
//! (`/1/apps/<bundle>/channels`, `/1/apps/<bundle>/all-channels`, served on
//! api-manage-broadcast hosts) and broadcast sends (`POST /4/broadcasts/apps/<bundle>`).
//!
//! One mock instance is one APNs environment: channels belong to a bundle id, at most
//! `max_channels_per_app` each (Apple: 10,000). Every valid broadcast is counted per channel
//! (kept after the channel is deleted) so tests can prove "one request per update".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method};

use super::validate::{self, Rejection};
use crate::config::Behavior;
use crate::reply::{Action, Answers, Reply};
use crate::state::{lock, ConnectionHandle, Shared};

pub(crate) const MANAGE_PREFIX: &str = "/1/apps/";
pub(crate) const BROADCAST_PREFIX: &str = "/4/broadcasts/apps/";
/// Apple: at most 10,000 channels per app per environment.
pub const MAX_CHANNELS_PER_APP: usize = 10_000;
/// Broadcast payloads may be 5120 bytes (device pushes 4096).
pub(crate) const MAX_BROADCAST_PAYLOAD: usize = 5120;
pub(crate) const MAX_MANAGE_BODY: usize = 4096;
/// The mock's idea of "too long" for a channel id (Apple does not publish one).
const MAX_CHANNEL_ID_LEN: usize = 128;

const fn reject(status: u16, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

struct Channel {
    storage_policy: u8,
    /// Policy 1 keeps the most recent message.
    last: Option<Bytes>,
}

#[derive(Default)]
struct ChannelState {
    apps: HashMap<String, BTreeMap<String, Channel>>,
    received: HashMap<String, u64>,
    disabled: HashSet<String>,
    next: u64,
}

/// The channels of every app on this server, and what each channel received.
pub(crate) struct Channels {
    state: Mutex<ChannelState>,
    limit: usize,
}

impl Channels {
    pub fn new(limit: usize, seed: u64) -> Self {
        Channels {
            state: Mutex::new(ChannelState {
                next: seed,
                ..ChannelState::default()
            }),
            limit,
        }
    }

    /// Valid broadcasts received for `channel_id`, whatever was answered (faults included).
    pub fn received(&self, channel_id: &str) -> u64 {
        lock(&self.state)
            .received
            .get(channel_id)
            .copied()
            .unwrap_or(0)
    }

    /// `(channel id, storage policy)` of `bundle`'s channels, sorted by id.
    pub fn list(&self, bundle: &str) -> Vec<(String, u8)> {
        lock(&self.state)
            .apps
            .get(bundle)
            .map_or_else(Vec::new, |c| {
                c.iter()
                    .map(|(id, ch)| (id.clone(), ch.storage_policy))
                    .collect()
            })
    }

    /// The stored message of a storage-policy-1 channel.
    pub fn stored_message(&self, channel_id: &str) -> Option<Bytes> {
        lock(&self.state)
            .apps
            .values()
            .find_map(|c| c.get(channel_id))
            .and_then(|ch| ch.last.clone())
    }

    /// Broadcasts for `bundle` are answered `FeatureNotEnabled` from now on.
    pub fn disable(&self, bundle: &str) {
        lock(&self.state).disabled.insert(bundle.to_owned());
    }

    fn is_disabled(&self, bundle: &str) -> bool {
        lock(&self.state).disabled.contains(bundle)
    }

    fn create(&self, bundle: &str, storage_policy: u8) -> Result<String, Rejection> {
        let mut state = lock(&self.state);
        if state.apps.get(bundle).map_or(0, BTreeMap::len) >= self.limit {
            return Err(reject(400, "CannotCreateChannelConfig"));
        }
        state.next = state.next.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let (a, b) = (splitmix(state.next), splitmix(state.next ^ 0x5555));
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&a.to_le_bytes());
        raw[8..].copy_from_slice(&b.to_le_bytes());
        let id = STANDARD.encode(raw);
        state.apps.entry(bundle.to_owned()).or_default().insert(
            id.clone(),
            Channel {
                storage_policy,
                last: None,
            },
        );
        Ok(id)
    }

    fn policy(&self, bundle: &str, id: &str) -> Option<u8> {
        lock(&self.state)
            .apps
            .get(bundle)
            .and_then(|c| c.get(id))
            .map(|ch| ch.storage_policy)
    }

    fn delete(&self, bundle: &str, id: &str) -> bool {
        lock(&self.state)
            .apps
            .get_mut(bundle)
            .is_some_and(|c| c.remove(id).is_some())
    }

    fn record(&self, bundle: &str, id: &str, body: &[u8]) {
        let mut state = lock(&self.state);
        *state.received.entry(id.to_owned()).or_insert(0) += 1;
        if let Some(ch) = state.apps.get_mut(bundle).and_then(|c| c.get_mut(id)) {
            if ch.storage_policy == 1 {
                ch.last = Some(Bytes::copy_from_slice(body));
            }
        }
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
    fn channels_are_per_app_and_limited() {
        let channels = Channels::new(2, 7);
        let a = channels.create("com.a", 0).unwrap();
        let b = channels.create("com.a", 1).unwrap();
        assert_ne!(a, b);
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 16);
        assert_eq!(
            channels.create("com.a", 0).unwrap_err().reason,
            "CannotCreateChannelConfig"
        );
        assert!(channels.create("com.b", 0).is_ok());
        assert_eq!(channels.policy("com.a", &b), Some(1));
        assert_eq!(channels.policy("com.b", &b), None);
        channels.record("com.a", &b, b"{\"x\":1}");
        channels.record("com.a", &a, b"{}");
        assert_eq!(
            channels.stored_message(&b).as_deref(),
            Some(&b"{\"x\":1}"[..])
        );
        assert_eq!(channels.stored_message(&a), None);
        assert!(channels.delete("com.a", &a));
        assert!(!channels.delete("com.a", &a));
        assert_eq!(channels.received(&a), 1);
        assert_eq!(channels.list("com.a").len(), 1);
    }

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
