//! Google service-account JWT-bearer assertions (RFC 7523, RS256), checked the way
//! `oauth2.googleapis.com/token` does before it issues an access token.

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde::Deserialize;
use serde_json::Value;

use crate::config::ServiceAccountKey;
use crate::fcm::rsa_spki::rsa_public_key_from_spki_pem;

/// The audience real clients put in assertions (the `token_uri` of a Google key file).
pub(crate) const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Either scope lets a token send FCM messages.
const ACCEPTED_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
];
const MAX_FUTURE_SKEW_SECS: f64 = 60.0;
const MAX_ASSERTION_LIFETIME_SECS: f64 = 3600.0;
/// Google's wording for every `iat`/`exp` problem.
const BAD_TIMEFRAME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in \
     a reasonable timeframe. Check your iat and exp values in the JWT claim.";

/// Why a grant was refused, as the OAuth2 error body names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantError {
    pub error: &'static str,
    pub description: String,
}

impl GrantError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        GrantError {
            error,
            description: description.into(),
        }
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        GrantError::new("invalid_grant", description)
    }
}

struct Account {
    client_email: String,
    public_key: UnparsedPublicKey<Vec<u8>>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    scope: Option<String>,
    aud: Option<Value>,
    iat: Option<f64>,
    exp: Option<f64>,
}

pub(crate) struct AssertionVerifier {
    accounts: Vec<Account>,
}

impl AssertionVerifier {
    pub fn new(accounts: &[ServiceAccountKey]) -> io::Result<Self> {
        let accounts = accounts
            .iter()
            .map(|account| {
                let key = rsa_public_key_from_spki_pem(&account.public_key_pem).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("service account {}: {e}", account.client_email),
                    )
                })?;
                Ok(Account {
                    client_email: account.client_email.clone(),
                    public_key: UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(AssertionVerifier { accounts })
    }

    /// Service accounts are configured, so FCM sends need a bearer token.
    pub fn is_enabled(&self) -> bool {
        !self.accounts.is_empty()
    }

    /// Checks an assertion whose `aud` must be one of `audiences`.
    pub fn verify(&self, assertion: &str, audiences: &[&str]) -> Result<(), GrantError> {
        self.verify_at(assertion, audiences, unix_now())
    }

    fn verify_at(&self, assertion: &str, audiences: &[&str], now: f64) -> Result<(), GrantError> {
        let mut parts = assertion.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(GrantError::invalid_grant("Invalid JWT: not three segments"));
        };
        let header: Header = decode_json(header_b64)?;
        let claims: Claims = decode_json(claims_b64)?;
        if header.alg != "RS256" {
            return Err(GrantError::invalid_grant(format!(
                "Invalid JWT: alg {:?} is not RS256",
                header.alg
            )));
        }
        let account = claims
            .iss
            .as_deref()
            .and_then(|iss| self.accounts.iter().find(|a| a.client_email == iss))
            .ok_or_else(|| GrantError::invalid_grant("Invalid grant: account not found"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| GrantError::invalid_grant("Invalid JWT Signature."))?;
        let signed = &assertion[..header_b64.len() + 1 + claims_b64.len()];
        account
            .public_key
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| GrantError::invalid_grant("Invalid JWT Signature."))?;
        check_audience(claims.aud.as_ref(), audiences)?;
        check_timeframe(claims.iat, claims.exp, now)?;
        check_scope(claims.scope.as_deref())
    }
}

fn check_audience(aud: Option<&Value>, audiences: &[&str]) -> Result<(), GrantError> {
    // A JWT `aud` may be one string or a list of them.
    let matches = |value: &Value| value.as_str().is_some_and(|aud| audiences.contains(&aud));
    let accepted = match aud {
        Some(Value::Array(values)) => values.iter().any(matches),
        Some(value) => matches(value),
        None => false,
    };
    if accepted {
        return Ok(());
    }
    Err(GrantError::invalid_grant(format!(
        "Invalid JWT: Failed audience check. The expected value was {}",
        audiences.first().copied().unwrap_or(GOOGLE_TOKEN_URI)
    )))
}

fn check_timeframe(iat: Option<f64>, exp: Option<f64>, now: f64) -> Result<(), GrantError> {
    let (Some(iat), Some(exp)) = (iat, exp) else {
        return Err(GrantError::invalid_grant(BAD_TIMEFRAME));
    };
    let sane = iat <= now + MAX_FUTURE_SKEW_SECS
        && exp > now
        && exp > iat
        && exp - iat <= MAX_ASSERTION_LIFETIME_SECS;
    if sane {
        Ok(())
    } else {
        Err(GrantError::invalid_grant(BAD_TIMEFRAME))
    }
}

fn check_scope(scope: Option<&str>) -> Result<(), GrantError> {
    match scope.map(str::trim).filter(|s| !s.is_empty()) {
        None => Err(GrantError::new(
            "invalid_scope",
            "Empty or missing scope not allowed.",
        )),
        Some(scope) if scope.split(' ').any(|s| ACCEPTED_SCOPES.contains(&s)) => Ok(()),
        Some(_) => Err(GrantError::new(
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        )),
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, GrantError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| GrantError::invalid_grant("Invalid JWT: malformed header or claims"))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use serde_json::json;

    const EMAIL: &str = "sender@demo-project.iam.gserviceaccount.com";
    const AUD: &str = "https://localhost:1234/token";
    const NOW: f64 = 1_700_000_000.0;
    const NOW_SECS: u64 = 1_700_000_000;
    const KEY_A: &str = include_str!("../../tests/data/test-only-rsa-2048-a.key.pem");
    const PUB_A: &str = include_str!("../../tests/data/test-only-rsa-2048-a.pub.pem");
    const KEY_B: &str = include_str!("../../tests/data/test-only-rsa-2048-b.key.pem");

    fn sign(private_pem: &str, header: &Value, claims: &Value) -> String {
        let der = PrivatePkcs8KeyDer::from_pem_slice(private_pem.as_bytes()).unwrap();
        let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signed.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn claims() -> Value {
        json!({
            "iss": EMAIL,
            "scope": "https://www.googleapis.com/auth/firebase.messaging",
            "aud": AUD,
            "iat": NOW_SECS,
            "exp": NOW_SECS + 3600,
        })
    }

    fn verifier() -> AssertionVerifier {
        AssertionVerifier::new(&[ServiceAccountKey {
            client_email: EMAIL.into(),
            public_key_pem: PUB_A.into(),
        }])
        .unwrap()
    }

    fn check(private_pem: &str, header: &Value, claims: &Value) -> Result<(), GrantError> {
        let assertion = sign(private_pem, header, claims);
        verifier().verify_at(&assertion, &[AUD, GOOGLE_TOKEN_URI], NOW)
    }

    fn with(changes: &Value) -> Value {
        let mut claims = claims();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        claims
    }

    fn error_of(result: Result<(), GrantError>) -> &'static str {
        result.unwrap_err().error
    }

    #[test]
    fn accepts_a_well_formed_assertion() {
        let rs256 = json!({"alg": "RS256", "typ": "JWT"});
        assert_eq!(check(KEY_A, &rs256, &claims()), Ok(()));
        let with_kid = json!({"alg": "RS256", "kid": "abc"});
        assert_eq!(check(KEY_A, &with_kid, &claims()), Ok(()));
        let google_aud = with(&json!({"aud": GOOGLE_TOKEN_URI}));
        assert_eq!(check(KEY_A, &rs256, &google_aud), Ok(()));
        let both_scopes = with(&json!({
            "scope": "https://www.googleapis.com/auth/cloud-platform openid"
        }));
        assert_eq!(check(KEY_A, &rs256, &both_scopes), Ok(()));
    }

    #[test]
    fn refuses_bad_signatures_and_unknown_accounts() {
        let rs256 = json!({"alg": "RS256"});
        let other_key = check(KEY_B, &rs256, &claims()).unwrap_err();
        assert_eq!(other_key.description, "Invalid JWT Signature.");
        let stranger = with(&json!({"iss": "someone@else.iam.gserviceaccount.com"}));
        assert_eq!(
            check(KEY_A, &rs256, &stranger).unwrap_err().description,
            "Invalid grant: account not found"
        );
        assert_eq!(
            error_of(check(KEY_A, &json!({"alg": "HS256"}), &claims())),
            "invalid_grant"
        );
        let tampered = sign(KEY_A, &rs256, &claims()).replace('.', ".x");
        assert!(verifier().verify_at(&tampered, &[AUD], NOW).is_err());
        assert!(verifier().verify_at("a.b", &[AUD], NOW).is_err());
    }

    #[test]
    fn checks_audience_time_and_scope() {
        let rs256 = json!({"alg": "RS256"});
        let cases = [
            (json!({"aud": "https://example.com/token"}), "invalid_grant"),
            (json!({"aud": null}), "invalid_grant"),
            (json!({"iat": NOW + 120.0}), "invalid_grant"),
            (
                json!({"exp": NOW - 1.0, "iat": NOW - 100.0}),
                "invalid_grant",
            ),
            (json!({"exp": NOW + 3601.0}), "invalid_grant"),
            (json!({"exp": null}), "invalid_grant"),
            (
                json!({"scope": "https://www.googleapis.com/auth/userinfo.email"}),
                "invalid_scope",
            ),
            (json!({"scope": null}), "invalid_scope"),
        ];
        for (changes, error) in cases {
            let result = check(KEY_A, &rs256, &with(&changes));
            assert_eq!(error_of(result), error, "{changes}");
        }
        // Small clock skew is fine; a list audience is fine.
        let skewed = with(&json!({"iat": NOW + 30.0, "exp": NOW + 3600.0}));
        assert_eq!(check(KEY_A, &rs256, &skewed), Ok(()));
        let listed = with(&json!({"aud": ["https://example.com", AUD]}));
        assert_eq!(check(KEY_A, &rs256, &listed), Ok(()));
    }

    #[test]
    fn refuses_keys_that_are_not_rsa() {
        let error = AssertionVerifier::new(&[ServiceAccountKey {
            client_email: EMAIL.into(),
            public_key_pem: "nope".into(),
        }]);
        assert_eq!(error.err().unwrap().kind(), io::ErrorKind::InvalidInput);
    }
}
