//! The OAuth2 token endpoint (`POST /token`, JWT-bearer grant) and the access tokens it
//! issues, which FCM sends must carry as `authorization: Bearer <token>`.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::header::CACHE_CONTROL;
use http::request::Parts;
use http::{HeaderValue, Method};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;

use crate::reply::Reply;
use crate::server::Shared;
use crate::service_account::{GrantError, GOOGLE_TOKEN_URI};

pub(crate) const TOKEN_PATH: &str = "/token";
/// Form bodies are a grant type and one JWT; anything bigger is not a grant.
pub(crate) const BODY_LIMIT: usize = 16 * 1024;
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Expired tokens are forgotten once this many are stored (they would get 401 anyway).
const PRUNE_AT: usize = 4096;

/// Why a send's bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerProblem {
    Missing,
    /// Unknown to this server, or expired.
    Invalid,
}

/// Access tokens this server issued, with their expiry.
pub(crate) struct AccessTokens {
    lifetime: Duration,
    expiries: Mutex<HashMap<String, Instant>>,
    issued: AtomicU64,
    random: SystemRandom,
}

impl AccessTokens {
    pub fn new(lifetime: Duration) -> Self {
        AccessTokens {
            lifetime,
            expiries: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            random: SystemRandom::new(),
        }
    }

    /// A fresh opaque token, Google-looking (`ya29.` prefix); `None` if randomness failed.
    fn issue(&self) -> Option<String> {
        let mut bytes = [0u8; 24];
        self.random.fill(&mut bytes).ok()?;
        let mut token = String::from("ya29.mock-");
        for byte in bytes {
            // Writing to a String cannot fail.
            let _ = write!(token, "{byte:02x}");
        }
        let now = Instant::now();
        let mut expiries = self.lock();
        if expiries.len() >= PRUNE_AT {
            expiries.retain(|_, expiry| *expiry > now);
        }
        expiries.insert(token.clone(), now + self.lifetime);
        self.issued.fetch_add(1, Ordering::Relaxed);
        Some(token)
    }

    /// Checks an `authorization` header value (`Bearer <token>`).
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), BearerProblem> {
        let header = authorization.ok_or(BearerProblem::Missing)?;
        let header = header.to_str().map_err(|_| BearerProblem::Invalid)?;
        let token = header
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
            .map(|_| header[7..].trim())
            .filter(|token| !token.is_empty())
            .ok_or(BearerProblem::Missing)?;
        match self.lock().get(token) {
            Some(expiry) if *expiry > Instant::now() => Ok(()),
            _ => Err(BearerProblem::Invalid),
        }
    }

    /// Every token issued so far stops working now; later grants are unaffected.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for expiry in self.lock().values_mut() {
            *expiry = (*expiry).min(now);
        }
    }

    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// The lifetime in whole seconds, rounded up: clients read 0 as "no expiry given".
    fn expires_in(&self) -> u64 {
        self.lifetime.as_secs() + u64::from(self.lifetime.subsec_nanos() > 0)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.expiries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Answers one token request.
pub(crate) fn handle(parts: &Parts, body: &[u8], body_len: usize, shared: &Shared) -> Reply {
    match grant(parts, body, body_len, shared) {
        Ok(reply) => reply,
        Err(error) => {
            let status = if parts.method == Method::POST {
                400
            } else {
                405
            };
            let body = json!({"error": error.error, "error_description": error.description});
            Reply::json(status, body.to_string())
        }
    }
}

fn grant(
    parts: &Parts,
    body: &[u8],
    body_len: usize,
    shared: &Shared,
) -> Result<Reply, GrantError> {
    if parts.method != Method::POST {
        return Err(GrantError::new(
            "invalid_request",
            "The token endpoint takes POST",
        ));
    }
    if body_len > BODY_LIMIT {
        return Err(GrantError::new("invalid_request", "Request body too large"));
    }
    let form = parse_form(body);
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    match field("grant_type") {
        None => {
            return Err(GrantError::new(
                "invalid_request",
                "Missing required parameter: grant_type",
            ))
        }
        Some(JWT_BEARER_GRANT) => {}
        Some(other) => {
            return Err(GrantError::new(
                "unsupported_grant_type",
                format!("Invalid grant_type: {other}"),
            ))
        }
    }
    let assertion = field("assertion")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            GrantError::new("invalid_request", "Missing required parameter: assertion")
        })?;
    // The configured token URI, the one this request actually used, or Google's own.
    let requested = parts
        .uri
        .authority()
        .map(|authority| format!("https://{authority}{TOKEN_PATH}"));
    let mut audiences = vec![shared.token_uri.as_str(), GOOGLE_TOKEN_URI];
    audiences.extend(requested.as_deref());
    shared.assertions.verify(assertion, &audiences)?;

    let token = shared
        .access_tokens
        .issue()
        .ok_or_else(|| GrantError::new("internal_failure", "no randomness for a token"))?;
    let body = json!({
        "access_token": token,
        "expires_in": shared.access_tokens.expires_in(),
        "token_type": "Bearer",
    });
    Ok(Reply::json(200, body.to_string())
        .header(CACHE_CONTROL, HeaderValue::from_static("no-store")))
}

/// `application/x-www-form-urlencoded` pairs, decoded; malformed escapes stay literal.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut halves = pair.splitn(2, |&b| b == b'=');
            let key = halves.next().unwrap_or_default();
            let value = halves.next().unwrap_or_default();
            (form_decode(key), form_decode(value))
        })
        .collect()
}

fn form_decode(text: &[u8]) -> String {
    let mut decoded = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        decoded.push(byte);
                        i += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            other => decoded.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_decoded() {
        let form = parse_form(b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c&x=1+2%zz");
        assert_eq!(
            form,
            vec![
                ("grant_type".to_owned(), JWT_BEARER_GRANT.to_owned()),
                ("assertion".to_owned(), "a.b.c".to_owned()),
                ("x".to_owned(), "1 2%zz".to_owned()),
            ]
        );
        assert!(parse_form(b"").is_empty());
    }

    #[test]
    fn issued_tokens_expire_and_can_be_expired_early() {
        let tokens = AccessTokens::new(Duration::from_secs(3600));
        let token = tokens.issue().unwrap();
        assert!(token.starts_with("ya29.mock-"));
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        assert_eq!(tokens.check(Some(&header)), Ok(()));
        let lower = HeaderValue::from_str(&format!("bearer {token}")).unwrap();
        assert_eq!(tokens.check(Some(&lower)), Ok(()));
        assert_eq!(tokens.check(None), Err(BearerProblem::Missing));
        let unknown = HeaderValue::from_static("Bearer ya29.someone-else");
        assert_eq!(tokens.check(Some(&unknown)), Err(BearerProblem::Invalid));

        tokens.expire_all();
        assert_eq!(tokens.check(Some(&header)), Err(BearerProblem::Invalid));
        let fresh = tokens.issue().unwrap();
        let fresh = HeaderValue::from_str(&format!("Bearer {fresh}")).unwrap();
        assert_eq!(tokens.check(Some(&fresh)), Ok(()));
        assert_eq!(tokens.issued(), 2);

        let short = AccessTokens::new(Duration::ZERO);
        let token = short.issue().unwrap();
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        assert_eq!(short.check(Some(&header)), Err(BearerProblem::Invalid));
    }
}
