//! The FCM v1 send body (`{"validate_only": bool, "message": {...}}`) and the checks FCM
//! applies to it: one target, string-only data without reserved keys, TTL format, size.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::fcm::google_error::GoogleError;

/// FCM's payload limit: the bytes of the data keys and values (FCM's error reference,
/// "Message is too big"), 4096 for most messages and 2048 for messages to topics.
pub(crate) const MAX_DATA_BYTES: usize = 4096;
pub(crate) const MAX_TOPIC_DATA_BYTES: usize = 2048;
/// A sanity cap on the whole serialized `message` (notification, configs, payloads).
pub(crate) const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// FCM's TTL ceiling: 4 weeks.
const MAX_TTL_SECS: u64 = 2_419_200;
const TARGET_FIELDS: [&str; 4] = ["token", "topic", "condition", "fid"];
const RESERVED_DATA_KEYS: [&str; 2] = ["from", "message_type"];
const RESERVED_DATA_PREFIXES: [&str; 2] = ["google.", "gcm.notification."];

/// Where a message goes; rules match on the token, topic or condition string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Token(String),
    Topic(String),
    Condition(String),
    /// A Firebase installation id.
    Fid(String),
}

impl Target {
    pub fn rule_key(&self) -> &str {
        match self {
            Target::Token(s) | Target::Topic(s) | Target::Condition(s) | Target::Fid(s) => s,
        }
    }
}

/// A send body that is a JSON object; not yet validated.
#[derive(Debug)]
pub(crate) struct SendBody {
    body: Map<String, Value>,
}

impl SendBody {
    /// `body` holds the whole request body (the caller kept at most its size limit).
    pub fn parse(body: &[u8], kept_all: bool) -> Result<SendBody, GoogleError> {
        if !kept_all {
            return Err(too_big());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(body)) => Ok(SendBody { body }),
            Ok(_) => Err(invalid_json("the body is not a JSON object")),
            Err(e) => Err(invalid_json(&e.to_string())),
        }
    }

    /// `validate_only: true`, FCM's dry run.
    pub fn is_dry_run(&self) -> bool {
        self.body.get("validate_only") == Some(&Value::Bool(true))
    }

    /// `message.token` when it is a string, for the per-token counters.
    pub fn token(&self) -> Option<&str> {
        self.message()?.get("token")?.as_str()
    }

    fn message(&self) -> Option<&Map<String, Value>> {
        self.body.get("message")?.as_object()
    }

    /// Every FCM check; `raw` is the body again, for data keys in their sent order.
    pub fn validate(&self, raw: &[u8]) -> Result<Target, GoogleError> {
        if !matches!(
            self.body.get("validate_only"),
            None | Some(Value::Null | Value::Bool(_))
        ) {
            return Err(type_mismatch(
                "validate_only",
                "TYPE_BOOL",
                &self.body["validate_only"],
            ));
        }
        let message = match self.body.get("message") {
            Some(Value::Object(message)) => message,
            None | Some(Value::Null) => {
                return Err(GoogleError::invalid_field(
                    "message",
                    "The message is not set.",
                ))
            }
            Some(other) => return Err(type_mismatch("message", "TYPE_MESSAGE", other)),
        };
        let target = target(message)?;
        let ordered = OrderedBody::parse(raw);
        check_data(
            message.get("data"),
            ordered.as_ref().map(|o| &o.message.data),
            "message.data",
        )?;
        match message.get("android") {
            None | Some(Value::Null) => {}
            Some(Value::Object(android)) => {
                let ordered = ordered
                    .as_ref()
                    .and_then(|o| o.message.android.as_ref())
                    .map(|a| &a.data);
                check_data(android.get("data"), ordered, "message.android.data")?;
                check_ttl(android.get("ttl"))?;
            }
            Some(other) => return Err(type_mismatch("message.android", "TYPE_MESSAGE", other)),
        }
        let size = serde_json::to_vec(message).map_or(usize::MAX, |bytes| bytes.len());
        let data_limit = match target {
            Target::Topic(_) => MAX_TOPIC_DATA_BYTES,
            _ => MAX_DATA_BYTES,
        };
        let android_data = message
            .get("android")
            .and_then(|android| android.get("data"));
        if size > MAX_MESSAGE_BYTES
            || data_bytes(message.get("data")) > data_limit
            || data_bytes(android_data) > data_limit
        {
            return Err(too_big());
        }
        Ok(target)
    }
}

/// UTF-8 bytes of a data map's keys and values (checked to be strings before).
fn data_bytes(data: Option<&Value>) -> usize {
    let Some(Value::Object(map)) = data else {
        return 0;
    };
    map.iter()
        .map(|(key, value)| key.len() + value.as_str().map_or(0, str::len))
        .sum()
}

fn too_big() -> GoogleError {
    GoogleError::fcm(400, "INVALID_ARGUMENT", "Message is too big")
}

fn invalid_json(detail: &str) -> GoogleError {
    GoogleError::fcm(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        .field_violation(None, format!("Invalid JSON payload received. {detail}"))
}

/// Google's wording when a JSON value has the wrong type for its field.
fn type_mismatch(field: &str, expected: &str, value: &Value) -> GoogleError {
    GoogleError::invalid_field(
        field,
        format!("Invalid value at '{field}' ({expected}), {value}"),
    )
}

/// Exactly one of `token`, `topic`, `condition` (an empty string counts as unset).
fn target(message: &Map<String, Value>) -> Result<Target, GoogleError> {
    let mut found = None;
    for name in TARGET_FIELDS {
        let text = match message.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) if text.is_empty() => continue,
            Some(Value::String(text)) => text,
            Some(other) => {
                return Err(type_mismatch(
                    &format!("message.{name}"),
                    "TYPE_STRING",
                    other,
                ))
            }
        };
        if found.is_some() {
            return Err(GoogleError::invalid_field(
                "message",
                format!(
                    "Invalid JSON payload received. Oneof field 'target' is already set. \
                     Cannot set '{name}'"
                ),
            ));
        }
        found = Some(match name {
            "token" => Target::Token(text.clone()),
            "topic" => Target::Topic(text.clone()),
            "fid" => Target::Fid(text.clone()),
            _ => Target::Condition(text.clone()),
        });
    }
    found.ok_or_else(|| {
        GoogleError::invalid_field("message", "Recipient of the message is not set.")
    })
}

/// `data` is a `map<string, string>` without FCM's reserved keys. `ordered` has the entries
/// in the order they were sent, so violations name the index the sender sees.
fn check_data(
    data: Option<&Value>,
    ordered: Option<&Option<Entries>>,
    field: &str,
) -> Result<(), GoogleError> {
    let entries: Vec<(&str, &Value)> = match (data, ordered) {
        (None | Some(Value::Null), _) => return Ok(()),
        (Some(Value::Object(_)), Some(Some(ordered))) => {
            ordered.0.iter().map(|(k, v)| (k.as_str(), v)).collect()
        }
        (Some(Value::Object(map)), _) => map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        (Some(other), _) => return Err(type_mismatch(field, "TYPE_MESSAGE", other)),
    };
    for (index, (key, value)) in entries.into_iter().enumerate() {
        if !value.is_string() {
            let field = format!("{field}[{index}].value");
            return Err(type_mismatch(&field, "TYPE_STRING", value));
        }
        let reserved = RESERVED_DATA_KEYS.contains(&key)
            || RESERVED_DATA_PREFIXES.iter().any(|p| key.starts_with(p));
        if reserved {
            return Err(GoogleError::invalid_field(
                &format!("{field}[{index}].key"),
                format!(
                    "Invalid data key {key:?}: 'from', 'message_type' and keys starting with \
                     'google.' or 'gcm.notification.' are reserved"
                ),
            ));
        }
    }
    Ok(())
}

/// `android.ttl` is a JSON Duration (`"3.5s"`) of at most 4 weeks.
fn check_ttl(ttl: Option<&Value>) -> Result<(), GoogleError> {
    const FIELD: &str = "message.android.ttl";
    let text = match ttl {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(text)) => text,
        Some(other) => return Err(type_mismatch(FIELD, "google.protobuf.Duration", other)),
    };
    let seconds = duration_seconds(text).ok_or_else(|| {
        GoogleError::invalid_field(
            FIELD,
            format!("Invalid value at '{FIELD}' (google.protobuf.Duration), {text:?}"),
        )
    })?;
    if seconds > MAX_TTL_SECS {
        return Err(GoogleError::invalid_field(
            FIELD,
            format!("TTL {text} is longer than 4 weeks ({MAX_TTL_SECS}s)"),
        ));
    }
    Ok(())
}

/// Whole seconds (rounded up) of `^\d+(\.\d{1,9})?s$`, or `None` if it does not match.
fn duration_seconds(text: &str) -> Option<u64> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f) || f.len() > 9) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let has_fraction = fraction.is_some_and(|f| f.bytes().any(|b| b != b'0'));
    Some(whole.saturating_add(u64::from(has_fraction)))
}

/// Object entries in the order they were sent (serde_json's map sorts its keys).
#[derive(Debug, Default)]
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Just the data maps of a send body, in sent order.
#[derive(Deserialize)]
struct OrderedBody {
    message: OrderedMessage,
}

#[derive(Deserialize)]
struct OrderedMessage {
    #[serde(default)]
    data: Option<Entries>,
    #[serde(default)]
    android: Option<OrderedAndroid>,
}

#[derive(Deserialize)]
struct OrderedAndroid {
    #[serde(default)]
    data: Option<Entries>,
}

impl OrderedBody {
    /// `None` when the body has a shape the plain checks will report anyway.
    fn parse(raw: &[u8]) -> Option<OrderedBody> {
        serde_json::from_slice(raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validate(body: &Value) -> Result<Target, Value> {
        let raw = body.to_string();
        validate_raw(raw.as_bytes())
    }

    fn validate_raw(raw: &[u8]) -> Result<Target, Value> {
        SendBody::parse(raw, true)
            .and_then(|body| body.validate(raw))
            .map_err(|error| serde_json::from_slice(&error.into_reply().body).unwrap())
    }

    fn violation(error: &Value) -> &Value {
        &error["error"]["details"][1]["fieldViolations"][0]["field"]
    }

    #[test]
    fn accepts_each_single_target() {
        let token = validate(&json!({"message": {"token": "abc", "data": {"k": "v"}}}));
        assert_eq!(token, Ok(Target::Token("abc".into())));
        let topic = validate(&json!({"message": {"topic": "news", "token": ""}}));
        assert_eq!(topic, Ok(Target::Topic("news".into())));
        let fid = validate(&json!({"message": {"fid": "f1"}}));
        assert_eq!(fid, Ok(Target::Fid("f1".into())));
        let condition = validate(&json!({"message": {"condition": "'a' in topics"}}));
        assert_eq!(condition.unwrap().rule_key(), "'a' in topics");
    }

    #[test]
    fn target_must_be_exactly_one_string() {
        for body in [
            json!({"message": {}}),
            json!({"message": {"token": "a", "topic": "b"}}),
            json!({"message": {"token": 5}}),
            json!({"message": null}),
            json!({"validate_only": "yes", "message": {"token": "a"}}),
        ] {
            let error = validate(&body).unwrap_err();
            assert_eq!(error["error"]["code"], 400, "{body}");
            assert_eq!(
                error["error"]["details"][0]["errorCode"],
                "INVALID_ARGUMENT"
            );
        }
        let error = validate(&json!({"message": {"token": "a", "topic": "b"}})).unwrap_err();
        assert_eq!(*violation(&error), "message");
    }

    #[test]
    fn data_violations_name_the_sent_index() {
        let raw = br#"{"message":{"token":"t","data":{"z":"ok","a":1}}}"#;
        let error = validate_raw(raw).unwrap_err();
        assert_eq!(*violation(&error), "message.data[1].value");
        for key in ["from", "message_type", "google.x", "gcm.notification.title"] {
            let error = validate(&json!({"message": {"token": "t", "data": {key: "v"}}}));
            assert_eq!(
                *violation(&error.unwrap_err()),
                "message.data[0].key",
                "{key}"
            );
        }
        let android = json!({"message": {"token": "t", "android": {"data": {"k": true}}}});
        let error = validate(&android).unwrap_err();
        assert_eq!(*violation(&error), "message.android.data[0].value");
        let not_a_map = validate(&json!({"message": {"token": "t", "data": ["x"]}}));
        assert_eq!(*violation(&not_a_map.unwrap_err()), "message.data");
        assert!(validate(&json!({"message": {"token": "t", "data": {"gcm": "ok"}}})).is_ok());
    }

    #[test]
    fn ttl_must_be_a_duration_of_at_most_four_weeks() {
        let with_ttl =
            |ttl: Value| validate(&json!({"message": {"token": "t", "android": {"ttl": ttl}}}));
        for good in ["0s", "3.5s", "86400s", "1.000000001s", "2419200s"] {
            assert!(with_ttl(json!(good)).is_ok(), "{good}");
        }
        for bad in [
            json!("3.5"),
            json!("s"),
            json!("1.s"),
            json!("1.0000000001s"),
            json!("-1s"),
            json!("2419200.5s"),
            json!(60),
        ] {
            let error = with_ttl(bad.clone()).unwrap_err();
            assert_eq!(*violation(&error), "message.android.ttl", "{bad}");
        }
    }

    #[test]
    fn size_counts_data_keys_and_values_and_topics_get_half() {
        let fits = "x".repeat(MAX_DATA_BYTES - 1);
        assert!(validate(&json!({"message": {"token": "t", "data": {"k": fits}}})).is_ok());
        let big = "x".repeat(MAX_DATA_BYTES);
        let error = validate(&json!({"message": {"token": "t", "data": {"k": big}}}));
        assert_eq!(error.unwrap_err()["error"]["message"], "Message is too big");
        let android = json!({"message": {"fid": "f", "android": {"data": {"k": big}}}});
        assert!(validate(&android).is_err());
        let topic_fits = "x".repeat(MAX_TOPIC_DATA_BYTES - 1);
        assert!(validate(&json!({"message": {"topic": "t", "data": {"k": topic_fits}}})).is_ok());
        let topic_big = "x".repeat(MAX_TOPIC_DATA_BYTES);
        assert!(validate(&json!({"message": {"topic": "t", "data": {"k": topic_big}}})).is_err());
        let notification = "x".repeat(MAX_MESSAGE_BYTES);
        let huge = json!({"message": {"token": "t", "notification": {"body": notification}}});
        assert!(validate(&huge).is_err());
        let truncated = SendBody::parse(b"{", false).unwrap_err().into_reply();
        assert_eq!(truncated.status, 400);
    }

    #[test]
    fn non_json_and_counters_view() {
        let error = validate_raw(b"not json").unwrap_err();
        assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
        let body =
            SendBody::parse(br#"{"validate_only":true,"message":{"token":"abc"}}"#, true).unwrap();
        assert!(body.is_dry_run());
        assert_eq!(body.token(), Some("abc"));
    }
}
