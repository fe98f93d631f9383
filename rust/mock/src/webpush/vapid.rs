//! VAPID (RFC 8292): `Authorization: vapid t=<ES256 JWT>, k=<public key>`; the JWT's `aud` is
//! the push service's origin, `exp` at most 24 h ahead, `sub` a `mailto:` or `https:` URI.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

const MAX_LIFETIME_SECS: u64 = 24 * 3600;

/// `Ok` when the header carries a valid VAPID token for `origin`; otherwise the reason.
pub(crate) fn check(
    authorization: Option<&str>,
    origin: &str,
    now: u64,
) -> Result<(), &'static str> {
    let value = authorization.ok_or("MissingAuthorization")?;
    let params = value
        .strip_prefix("vapid ")
        .ok_or("BadAuthorizationScheme")?;
    let (mut token, mut key) = (None, None);
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", v)) => token = Some(v),
            Some(("k", v)) => key = Some(v),
            _ => return Err("BadAuthorizationHeader"),
        }
    }
    let token = token.ok_or("BadJwtToken")?;
    let key = URL_SAFE_NO_PAD
        .decode(key.ok_or("BadPublicKey")?)
        .map_err(|_| "BadPublicKey")?;
    if key.len() != 65 || key[0] != 4 {
        return Err("BadPublicKey");
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("BadJwtToken");
    };
    let header: serde_json::Value = decode_json(header)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("ES256") {
        return Err("BadJwtToken");
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "BadJwtToken")?;
    let signed = &token[..header_len(token)];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "BadSignature")?;
    let claims: serde_json::Value = decode_json(claims)?;
    if claims.get("aud").and_then(|a| a.as_str()) != Some(origin) {
        return Err("BadAudience");
    }
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .ok_or("BadExpirationDate")?;
    if exp <= now {
        return Err("ExpiredJwtToken");
    }
    if exp > now + MAX_LIFETIME_SECS {
        return Err("BadExpirationDate");
    }
    let sub = claims.get("sub").and_then(|s| s.as_str()).unwrap_or("");
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err("BadSubject");
    }
    Ok(())
}

/// Length of `header.claims`, the signed part.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json(part: &str) -> Result<serde_json::Value, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "BadJwtToken")?;
    serde_json::from_slice(&bytes).map_err(|_| "BadJwtToken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_shape_is_checked_before_any_signature() {
        assert_eq!(check(None, "o", 0), Err("MissingAuthorization"));
        assert_eq!(
            check(Some("Bearer x"), "o", 0),
            Err("BadAuthorizationScheme")
        );
        assert_eq!(check(Some("vapid t=a.b.c"), "o", 0), Err("BadPublicKey"));
        let k = URL_SAFE_NO_PAD.encode([4u8; 65]);
        assert_eq!(
            check(Some(&format!("vapid t=a.b, k={k}")), "o", 0),
            Err("BadJwtToken")
        );
    }
}
