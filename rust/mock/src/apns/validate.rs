//! APNs request validation, in the order the checks are applied.

use http::{HeaderMap, Method};

/// The largest accepted body for most push types, and for VoIP.
pub(crate) const MAX_PAYLOAD: usize = 4096;
pub(crate) const MAX_VOIP_PAYLOAD: usize = 5120;
const MAX_COLLAPSE_ID: usize = 64;
const DEVICE_PATH_PREFIX: &str = "/3/device/";

/// An APNs error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub status: u16,
    pub reason: &'static str,
}

const fn reject(status: u16, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

/// The device token part of `:path`, when the path has the device-push shape.
pub(crate) fn device_token(path: &str) -> Option<&str> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    path.strip_prefix(DEVICE_PATH_PREFIX)
}

/// Checks method and path; returns the token (still in its original case).
pub(crate) fn check_target<'a>(method: &Method, path: &'a str) -> Result<&'a str, Rejection> {
    if method != Method::POST {
        return Err(reject(405, "MethodNotAllowed"));
    }
    let token = device_token(path).ok_or(reject(404, "BadPath"))?;
    if token.is_empty() {
        return Err(reject(400, "MissingDeviceToken"));
    }
    if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(reject(400, "BadDeviceToken"));
    }
    Ok(token)
}

/// Body size limit for this request's push type.
pub(crate) fn payload_limit(headers: &HeaderMap) -> usize {
    match headers.get("apns-push-type") {
        Some(kind) if kind.as_bytes().eq_ignore_ascii_case(b"voip") => MAX_VOIP_PAYLOAD,
        _ => MAX_PAYLOAD,
    }
}

pub(crate) fn check_headers(headers: &HeaderMap) -> Result<(), Rejection> {
    if headers
        .get("apns-topic")
        .is_none_or(http::HeaderValue::is_empty)
    {
        return Err(reject(400, "MissingTopic"));
    }
    let priority = match headers.get("apns-priority") {
        None => None,
        Some(value) => match value.as_bytes() {
            b"1" | b"5" | b"10" => Some(value.as_bytes()),
            _ => return Err(reject(400, "BadPriority")),
        },
    };
    let is_background = headers
        .get("apns-push-type")
        .is_some_and(|kind| kind.as_bytes().eq_ignore_ascii_case(b"background"));
    // An absent priority means 10, which background pushes may not use either.
    if is_background && priority.is_none_or(|p| p == b"10") {
        return Err(reject(400, "BadPriority"));
    }
    if headers
        .get("apns-collapse-id")
        .is_some_and(|id| id.len() > MAX_COLLAPSE_ID)
    {
        return Err(reject(400, "BadCollapseId"));
    }
    if headers
        .get("apns-id")
        .is_some_and(|id| !is_canonical_uuid(id.as_bytes()))
    {
        return Err(reject(400, "BadMessageId"));
    }
    if let Some(expiration) = headers.get("apns-expiration") {
        let text = expiration.to_str().unwrap_or("");
        if text.parse::<i64>().is_err() {
            return Err(reject(400, "BadExpirationDate"));
        }
    }
    Ok(())
}

/// `body` holds at most `limit + 1` bytes; `total_len` is the full received length.
pub(crate) fn check_body(body: &[u8], total_len: usize, limit: usize) -> Result<(), Rejection> {
    if total_len == 0 {
        return Err(reject(400, "PayloadEmpty"));
    }
    if total_len > limit {
        return Err(reject(413, "PayloadTooLarge"));
    }
    let starts_as_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if !starts_as_object || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return Err(reject(400, "BadRequestPayload"));
    }
    Ok(())
}

/// 8-4-4-4-12 hex digits, either case.
pub(crate) fn is_canonical_uuid(id: &[u8]) -> bool {
    id.len() == 36
        && id.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("apns-topic", HeaderValue::from_static("com.example.app"));
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn target_checks() {
        assert_eq!(
            check_target(&Method::POST, "/3/device/abcDEF01"),
            Ok("abcDEF01")
        );
        assert_eq!(
            check_target(&Method::GET, "/3/device/ab")
                .unwrap_err()
                .status,
            405
        );
        assert_eq!(
            check_target(&Method::POST, "/2/device/ab")
                .unwrap_err()
                .reason,
            "BadPath"
        );
        assert_eq!(
            check_target(&Method::POST, "/3/device/")
                .unwrap_err()
                .reason,
            "MissingDeviceToken"
        );
        assert_eq!(
            check_target(&Method::POST, "/3/device/xyz")
                .unwrap_err()
                .reason,
            "BadDeviceToken"
        );
    }

    #[test]
    fn header_checks() {
        assert_eq!(check_headers(&headers(&[])), Ok(()));
        let mut no_topic = headers(&[]);
        no_topic.remove("apns-topic");
        assert_eq!(check_headers(&no_topic).unwrap_err().reason, "MissingTopic");
        for bad in [("apns-priority", "7"), ("apns-push-type", "background")] {
            assert_eq!(
                check_headers(&headers(&[bad])).unwrap_err().reason,
                "BadPriority"
            );
        }
        let background_10 = headers(&[("apns-push-type", "background"), ("apns-priority", "10")]);
        assert_eq!(
            check_headers(&background_10).unwrap_err().reason,
            "BadPriority"
        );
        let background_5 = headers(&[("apns-push-type", "background"), ("apns-priority", "5")]);
        assert_eq!(check_headers(&background_5), Ok(()));
        let long = "x".repeat(65);
        assert_eq!(
            check_headers(&headers(&[("apns-collapse-id", &long)]))
                .unwrap_err()
                .reason,
            "BadCollapseId"
        );
        assert_eq!(
            check_headers(&headers(&[("apns-collapse-id", &long[..64])])),
            Ok(())
        );
        assert_eq!(
            check_headers(&headers(&[("apns-id", "not-a-uuid")]))
                .unwrap_err()
                .reason,
            "BadMessageId"
        );
        assert_eq!(
            check_headers(&headers(&[(
                "apns-id",
                "123E4567-E89B-12D3-A456-426614174000"
            )])),
            Ok(())
        );
        assert_eq!(
            check_headers(&headers(&[("apns-expiration", "soon")]))
                .unwrap_err()
                .reason,
            "BadExpirationDate"
        );
    }

    #[test]
    fn body_checks() {
        assert_eq!(
            check_body(b"", 0, MAX_PAYLOAD).unwrap_err().reason,
            "PayloadEmpty"
        );
        assert_eq!(
            check_body(b"{}", 5000, MAX_PAYLOAD).unwrap_err().status,
            413
        );
        assert_eq!(
            check_body(b"[1]", 3, MAX_PAYLOAD).unwrap_err().reason,
            "BadRequestPayload"
        );
        assert_eq!(
            check_body(b"{\"aps\":", 7, MAX_PAYLOAD).unwrap_err().status,
            400
        );
        assert_eq!(check_body(b" {\"aps\":{}}", 11, MAX_PAYLOAD), Ok(()));
        let mut voip = headers(&[("apns-push-type", "voip")]);
        assert_eq!(payload_limit(&voip), MAX_VOIP_PAYLOAD);
        voip.remove("apns-push-type");
        assert_eq!(payload_limit(&voip), MAX_PAYLOAD);
    }
}
