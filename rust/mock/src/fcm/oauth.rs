//! The OAuth2 token endpoint (`POST /token`, JWT-bearer grant) FCM clients exchange a
//! service-account assertion at for an access token.

use http::header::CACHE_CONTROL;
use http::request::Parts;
use http::{HeaderValue, Method};
use serde_json::json;

use crate::fcm::service_account::{GrantError, GOOGLE_TOKEN_URI};
use crate::reply::Reply;
use crate::state::Shared;

pub(crate) const TOKEN_PATH: &str = "/token";
/// Form bodies are a grant type and one JWT; anything bigger is not a grant.
pub(crate) const BODY_LIMIT: usize = 16 * 1024;
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

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
}
