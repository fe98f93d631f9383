//! What a caller submits: a shared [`Template`] (headers + payload, built once) and a light
//! [`Request`] per device token. One payload sent to a million tokens is stored once.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::Method;

use crate::error::Error;
use crate::outcome::{Outcome, OutcomeKind};

/// Longest token accepted. APNs tokens are 64 hex chars today, Live Activity tokens longer and
/// FCM tokens ~160 chars; anything near this is not a token.
const MAX_TOKEN_LEN: usize = 1024;

/// How the device token is checked before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// APNs: hexadecimal digits.
    Hex,
    /// FCM / others: printable ASCII without spaces, quotes or backslashes.
    Opaque,
    /// Not sent at all: a label for the outcome (FCM topic or condition messages, OAuth calls).
    /// Printable ASCII and spaces.
    Label,
}

/// Where the token goes in the HTTP request.
#[derive(Debug, Clone)]
pub enum Target {
    /// `:path` = prefix + token (APNs `/3/device/<token>`).
    PathSuffix(String),
    /// A fixed `:path`; the token is spliced into the body between `before` and `after`
    /// (FCM v1: `{"message":{"token":"` + token + `",...}}`).
    BodySplice {
        path: String,
        before: Bytes,
        after: Bytes,
    },
    /// A fixed `:path` and body; the token is only a label.
    Fixed(String),
}

/// Headers and payload shared by every request that uses it.
#[derive(Debug)]
pub struct Template {
    pub(crate) target: Target,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Body for [`Target::PathSuffix`] and [`Target::Fixed`]; unused for body splicing.
    pub(crate) payload: Bytes,
    pub(crate) token_format: TokenFormat,
    /// Return 2xx bodies in the outcome too (OAuth token responses); error bodies always are.
    pub(crate) keep_body: bool,
    /// HTTP method: POST for every push; GET/DELETE for APNs channel management.
    pub(crate) method: Method,
    /// Response headers copied into the outcome (APNs broadcast ids: `apns-request-id`,
    /// `apns-unique-id`, `apns-channel-id`); empty for pushes, which need only `apns-id`.
    pub(crate) keep_headers: Vec<HeaderName>,
}

impl Template {
    /// A template whose token goes at the end of `path_prefix`, with a shared body.
    pub fn with_path_token(
        path_prefix: &str,
        headers: &[(String, String)],
        payload: Bytes,
        token_format: TokenFormat,
    ) -> Result<Template, Error> {
        check_path(path_prefix)?;
        Ok(Template {
            target: Target::PathSuffix(path_prefix.to_owned()),
            headers: build_headers(headers)?,
            payload,
            token_format,
            keep_body: false,
            method: Method::POST,
            keep_headers: Vec::new(),
        })
    }

    /// A template with a fixed path whose body embeds the token between `before` and `after`.
    pub fn with_body_token(
        path: &str,
        headers: &[(String, String)],
        before: Bytes,
        after: Bytes,
        token_format: TokenFormat,
    ) -> Result<Template, Error> {
        check_path(path)?;
        Ok(Template {
            target: Target::BodySplice {
                path: path.to_owned(),
                before,
                after,
            },
            headers: build_headers(headers)?,
            payload: Bytes::new(),
            token_format,
            keep_body: false,
            method: Method::POST,
            keep_headers: Vec::new(),
        })
    }

    /// A template with a fixed path and body; the request's token is only a label.
    pub fn fixed(
        path: &str,
        headers: &[(String, String)],
        payload: Bytes,
    ) -> Result<Template, Error> {
        check_path(path)?;
        Ok(Template {
            target: Target::Fixed(path.to_owned()),
            headers: build_headers(headers)?,
            payload,
            token_format: TokenFormat::Label,
            keep_body: false,
            method: Method::POST,
            keep_headers: Vec::new(),
        })
    }

    /// Keep successful response bodies in outcomes (they are dropped by default).
    #[must_use]
    pub fn keeping_body(mut self, keep: bool) -> Self {
        self.keep_body = keep;
        self
    }

    /// Send with `method` instead of POST (only GET and DELETE are allowed besides it; the
    /// body of a GET or DELETE template should be empty).
    pub fn with_method(mut self, method: &str) -> Result<Self, Error> {
        self.method = match method {
            "POST" => Method::POST,
            "GET" => Method::GET,
            "DELETE" => Method::DELETE,
            other => {
                return Err(Error::invalid(
                    "method",
                    format!("{other:?} is not POST, GET or DELETE"),
                ))
            }
        };
        Ok(self)
    }

    /// Copy these response headers (lowercase names) into each outcome's `headers`.
    pub fn keeping_headers(mut self, names: &[String]) -> Result<Self, Error> {
        self.keep_headers = names
            .iter()
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes())
                    .ok()
                    .filter(|h| h.as_str() == name)
                    .ok_or_else(|| {
                        Error::invalid(
                            "keep_headers",
                            format!("{name:?} is not a lowercase HTTP header name"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn token_format(&self) -> TokenFormat {
        self.token_format
    }

    /// Size of the body sent with `token` (what the provider's size limit applies to).
    pub fn body_len(&self, token_len: usize) -> usize {
        match &self.target {
            Target::PathSuffix(_) | Target::Fixed(_) => self.payload.len(),
            Target::BodySplice { before, after, .. } => before.len() + token_len + after.len(),
        }
    }

    /// The `:path` of `token`'s request (before the pool's path prefix).
    pub fn path_for(&self, token: &str) -> String {
        match &self.target {
            Target::PathSuffix(prefix) => {
                let mut path = String::with_capacity(prefix.len() + token.len());
                path.push_str(prefix);
                path.push_str(token);
                path
            }
            Target::BodySplice { path, .. } | Target::Fixed(path) => path.clone(),
        }
    }

    /// The body sent for `token`: the shared payload, or the token spliced into the body.
    pub fn body_for(&self, token: &str) -> Bytes {
        match &self.target {
            // Shared: a refcount bump, no copy.
            Target::PathSuffix(_) | Target::Fixed(_) => self.payload.clone(),
            Target::BodySplice { before, after, .. } => {
                let mut body = BytesMut::with_capacity(before.len() + token.len() + after.len());
                body.extend_from_slice(before);
                body.extend_from_slice(token.as_bytes());
                body.extend_from_slice(after);
                body.freeze()
            }
        }
    }
}

fn check_path(path: &str) -> Result<(), Error> {
    if !path.starts_with('/') || path.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(Error::config(
            "path",
            format!("{path:?} must start with '/' and contain only visible ASCII"),
        ));
    }
    Ok(())
}

fn build_headers(headers: &[(String, String)]) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    headers
        .iter()
        .map(|(name, value)| {
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::invalid(
                    "header",
                    format!("{name:?} is not a valid HTTP header name"),
                )
            })?;
            if header_name.as_str() != name {
                return Err(Error::invalid(
                    name.clone(),
                    "header names must be lowercase for HTTP/2",
                ));
            }
            let header_value = validate_header_value(name, value)?;
            Ok((header_name, header_value))
        })
        .collect()
}

/// Check a header value: visible ASCII and spaces only, so CR/LF/NUL injection is impossible.
pub fn validate_header_value(field: &str, value: &str) -> Result<HeaderValue, Error> {
    if let Some(bad) = value
        .bytes()
        .find(|b| !(b == &b' ' || (0x21..0x7f).contains(b)))
    {
        let what = match bad {
            b'\r' | b'\n' => "a CR/LF line break".to_owned(),
            0 => "a NUL byte".to_owned(),
            b if b >= 0x80 => "non-ASCII characters".to_owned(),
            b => format!("the control character 0x{b:02x}"),
        };
        return Err(Error::invalid(
            field,
            format!("header value contains {what}; only visible ASCII and spaces are allowed"),
        ));
    }
    HeaderValue::from_str(value)
        .map_err(|_| Error::invalid(field, "header value is not valid for HTTP"))
}

/// Check a device token in the template's format. The error names the token (truncated).
pub fn validate_token(token: &str, format: TokenFormat) -> Result<(), Error> {
    // Only an error needs the token quoted for display: building it eagerly was a visible part
    // of every send's cost.
    let shown = || shown_token(token);
    if token.is_empty() {
        return Err(Error::invalid("token", "device token is empty"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::invalid(
            "token",
            format!(
                "device token {} is {} characters long (limit {MAX_TOKEN_LEN})",
                shown(),
                token.len()
            ),
        ));
    }
    let ok = match format {
        TokenFormat::Hex => token.bytes().all(|b| b.is_ascii_hexdigit()),
        TokenFormat::Opaque => token
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !matches!(b, b'"' | b'\\' | b'/')),
        TokenFormat::Label => token.bytes().all(|b| (0x20..0x7f).contains(&b)),
    };
    if !ok {
        let rule = match format {
            TokenFormat::Hex => "APNs device tokens are hexadecimal (0-9, a-f)",
            TokenFormat::Opaque => "tokens are printable ASCII without spaces, quotes, '/' or '\\'",
            TokenFormat::Label => "labels are printable ASCII",
        };
        return Err(Error::invalid(
            "token",
            format!("device token {} is malformed: {rule}", shown()),
        ));
    }
    Ok(())
}

fn shown_token(token: &str) -> String {
    let mut shown: String = token.chars().take(80).collect();
    if shown.len() < token.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// One notification to one device: the shared template plus what differs per device.
#[derive(Debug, Clone)]
pub struct Request {
    /// Caller's id, echoed in the outcome.
    pub id: u64,
    pub token: Box<str>,
    /// `apns-id` for this notification, sent never-indexed (unique per request).
    pub apns_id: Option<HeaderValue>,
    pub template: Arc<Template>,
    pub(crate) attempts: u32,
    /// Generation of the pool credential the last attempt carried.
    pub(crate) auth_generation: u64,
    /// An earlier attempt may have reached the server (only with `retry_uncertain`).
    pub(crate) maybe_processed: bool,
    pub(crate) submitted_at: Instant,
}

impl Request {
    /// The outcome of this attempt as sent on `connection_id` (`stream_id` 0 for HTTP/1.1,
    /// which has no streams, or for a request no stream was opened for).
    pub(crate) fn outcome(&self, kind: OutcomeKind, connection_id: u64, stream_id: u32) -> Outcome {
        let mut outcome = Outcome::empty(self.id, self.token.clone(), kind);
        outcome.stream_id = stream_id;
        outcome.connection_id = connection_id;
        outcome.attempts = self.attempts;
        outcome.auth_generation = self.auth_generation;
        // An earlier attempt may have been processed (retry_uncertain): never "safe to resend".
        outcome.maybe_delivered = self.maybe_processed;
        outcome.latency = self.submitted_at.elapsed();
        outcome
    }

    /// Build a request after validating the token and the optional apns-id.
    pub fn new(
        id: u64,
        token: &str,
        apns_id: Option<&str>,
        template: Arc<Template>,
    ) -> Result<Request, Error> {
        validate_token(token, template.token_format)?;
        let apns_id = match apns_id {
            None => None,
            Some(value) => {
                if !is_uuid(value) {
                    return Err(Error::invalid(
                        "apns-id",
                        format!("{value:?} is not a canonical UUID (8-4-4-4-12 hex digits)"),
                    ));
                }
                let mut header = validate_header_value("apns-id", value)?;
                header.set_sensitive(true);
                Some(header)
            }
        };
        Ok(Request {
            id,
            token: token.into(),
            apns_id,
            template,
            attempts: 0,
            auth_generation: 0,
            maybe_processed: false,
            submitted_at: Instant::now(),
        })
    }
}

fn is_uuid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A minimal APNs request for unit tests of the queue, the tracker and requests.
#[cfg(test)]
pub(crate) fn test_request(id: u64) -> Request {
    Request::new(id, "ab", None, test_template()).expect("valid test request")
}

#[cfg(test)]
pub(crate) fn test_template() -> Arc<Template> {
    let body = Bytes::from_static(b"{}");
    Arc::new(Template::with_path_token("/3/device/", &[], body, TokenFormat::Hex).expect("valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_rules() {
        assert!(validate_token("abcdef0123", TokenFormat::Hex).is_ok());
        let err = validate_token("xyz", TokenFormat::Hex).unwrap_err();
        assert_eq!(err.field(), Some("token"));
        assert!(err.message().contains("\"xyz\""), "{err}");
        assert!(validate_token("", TokenFormat::Hex).is_err());
        assert!(validate_token(&"a".repeat(2000), TokenFormat::Hex).is_err());
        assert!(validate_token("bk3RNwTe3H0:CI2k_HH-w", TokenFormat::Opaque).is_ok());
        assert!(validate_token("has space", TokenFormat::Opaque).is_err());
    }

    #[test]
    fn header_values_refuse_line_breaks_and_nul() {
        let err = validate_header_value("apns-topic", "com.example\r\nx: y").unwrap_err();
        assert_eq!(err.field(), Some("apns-topic"));
        assert!(err.message().contains("CR/LF"));
        assert!(validate_header_value("apns-topic", "a\0b")
            .unwrap_err()
            .message()
            .contains("NUL"));
        assert!(validate_header_value("apns-topic", "é")
            .unwrap_err()
            .message()
            .contains("non-ASCII"));
        assert!(validate_header_value("apns-topic", "com.example.app").is_ok());
    }

    #[test]
    fn header_names_must_be_lowercase() {
        let headers = vec![("Apns-Topic".to_owned(), "x".to_owned())];
        let err = Template::with_path_token("/3/device/", &headers, Bytes::new(), TokenFormat::Hex)
            .unwrap_err();
        assert_eq!(err.field(), Some("Apns-Topic"));
    }

    #[test]
    fn apns_id_must_be_uuid() {
        let t = test_template();
        assert!(Request::new(
            1,
            "ab",
            Some("123e4567-e89b-12d3-a456-426614174000"),
            t.clone()
        )
        .is_ok());
        let err = Request::new(1, "ab", Some("nope"), t).unwrap_err();
        assert_eq!(err.field(), Some("apns-id"));
    }

    #[test]
    fn body_splice_embeds_token() {
        let t = Template::with_body_token(
            "/v1/projects/p/messages:send",
            &[],
            Bytes::from_static(b"{\"token\":\""),
            Bytes::from_static(b"\"}"),
            TokenFormat::Opaque,
        )
        .unwrap();
        assert_eq!(&t.body_for("abc")[..], b"{\"token\":\"abc\"}");
        assert_eq!(t.body_len(3), 15);
        assert_eq!(t.path_for("abc"), "/v1/projects/p/messages:send");
    }
}
