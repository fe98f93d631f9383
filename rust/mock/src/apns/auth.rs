//! APNs provider-token (ES256 JWT) checks: signature, key, issuer and `iat` age.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::SubjectPublicKeyInfoDer;
use serde::Deserialize;

use crate::config::JwtKey;

/// DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte uncompressed point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Clock skew tolerated before an `iat` in the future makes a token invalid.
const MAX_FUTURE_SKEW: Duration = Duration::from_secs(60);
/// Clients reuse one token for many requests; remember a few verdicts to skip ECDSA.
const VERDICT_CACHE_LIMIT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    Invalid,
    Expired,
    /// The connection is bound to another key id.
    UnrelatedKeyId,
    /// A new token on the connection sooner than the update window allows.
    TooManyUpdates,
}

impl AuthFailure {
    pub fn status(self) -> u16 {
        match self {
            AuthFailure::TooManyUpdates => 429,
            _ => 403,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "MissingProviderToken",
            AuthFailure::Invalid => "InvalidProviderToken",
            AuthFailure::Expired => "ExpiredProviderToken",
            AuthFailure::UnrelatedKeyId => "UnrelatedKeyIdInToken",
            AuthFailure::TooManyUpdates => "TooManyProviderTokenUpdates",
        }
    }
}

/// A token that passed every server-wide check; connection rules come next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VerifiedToken<'a> {
    /// The JWT text without the `bearer ` scheme.
    pub jwt: &'a str,
    pub key_id: &'a str,
}

struct VerifyingKey {
    key_id: String,
    team_id: String,
    public_key: UnparsedPublicKey<Vec<u8>>,
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    kid: String,
}

#[derive(Deserialize)]
struct JwtClaims {
    iss: String,
    #[serde(default)]
    iat: Option<u64>,
}

/// What verifying the signature found; the age is judged on every use.
#[derive(Debug, Clone, Copy)]
struct SignedClaims {
    key_index: usize,
    iat: Option<u64>,
}

type Verdict = Result<SignedClaims, AuthFailure>;

pub(crate) struct TokenVerifier {
    keys: Vec<VerifyingKey>,
    max_age: Duration,
    verdicts: Mutex<HashMap<String, Verdict>>,
    /// Every distinct token that passed all checks (tests count JWT rotations).
    valid_tokens: Mutex<HashSet<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TokenVerifier {
    pub fn new(keys: &[JwtKey], max_age: Duration) -> io::Result<Self> {
        let keys = keys
            .iter()
            .map(|key| {
                Ok(VerifyingKey {
                    key_id: key.key_id.clone(),
                    team_id: key.team_id.clone(),
                    public_key: UnparsedPublicKey::new(
                        &ECDSA_P256_SHA256_FIXED,
                        p256_point_from_spki_pem(&key.public_key_pem).map_err(|e| {
                            io::Error::new(
                                io::ErrorKind::InvalidInput,
                                format!("JWT key {}: {e}", key.key_id),
                            )
                        })?,
                    ),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(TokenVerifier {
            keys,
            max_age,
            verdicts: Mutex::new(HashMap::new()),
            valid_tokens: Mutex::new(HashSet::new()),
        })
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Distinct tokens that passed every check so far.
    pub fn distinct_valid_tokens(&self) -> usize {
        lock(&self.valid_tokens).len()
    }

    /// Checks an `authorization` header value (`bearer <jwt>`).
    pub fn check<'a>(
        &'a self,
        authorization: Option<&'a [u8]>,
    ) -> Result<VerifiedToken<'a>, AuthFailure> {
        let header = authorization.ok_or(AuthFailure::Missing)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthFailure::Invalid)?;
        let jwt = header
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
            .map(|_| header[7..].trim())
            .ok_or(AuthFailure::Missing)?;
        if jwt.is_empty() {
            return Err(AuthFailure::Missing);
        }
        let claims = self.cached_verdict(jwt)?;
        if let Some(iat) = claims.iat {
            self.check_age(iat)?;
        }
        let mut valid = lock(&self.valid_tokens);
        if !valid.contains(jwt) {
            valid.insert(jwt.to_owned());
        }
        Ok(VerifiedToken {
            jwt,
            key_id: &self.keys[claims.key_index].key_id,
        })
    }

    fn cached_verdict(&self, jwt: &str) -> Verdict {
        if let Some(verdict) = lock(&self.verdicts).get(jwt) {
            return *verdict;
        }
        let verdict = self.verify(jwt);
        let mut verdicts = lock(&self.verdicts);
        if verdicts.len() >= VERDICT_CACHE_LIMIT {
            verdicts.clear();
        }
        verdicts.insert(jwt.to_owned(), verdict);
        verdict
    }

    fn check_age(&self, iat: u64) -> Result<(), AuthFailure> {
        let issued = Duration::from_secs(iat);
        let now = unix_time();
        if now.saturating_sub(issued) > self.max_age {
            return Err(AuthFailure::Expired);
        }
        if issued.saturating_sub(now) > MAX_FUTURE_SKEW {
            return Err(AuthFailure::Invalid);
        }
        Ok(())
    }

    fn verify(&self, jwt: &str) -> Verdict {
        let mut parts = jwt.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthFailure::Invalid);
        };
        let header: JwtHeader = decode_json(header_b64)?;
        let claims: JwtClaims = decode_json(claims_b64)?;
        if header.alg != "ES256" {
            return Err(AuthFailure::Invalid);
        }
        let key_index = self
            .keys
            .iter()
            .position(|key| key.key_id == header.kid && key.team_id == claims.iss)
            .ok_or(AuthFailure::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| AuthFailure::Invalid)?;
        let signed = &jwt[..header_b64.len() + 1 + claims_b64.len()];
        self.keys[key_index]
            .public_key
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| AuthFailure::Invalid)?;
        Ok(SignedClaims {
            key_index,
            iat: claims.iat,
        })
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, AuthFailure> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthFailure::Invalid)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthFailure::Invalid)
}

fn unix_time() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Extracts the uncompressed EC point from a P-256 `PUBLIC KEY` PEM.
pub(crate) fn p256_point_from_spki_pem(pem: &str) -> Result<Vec<u8>, String> {
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PUBLIC KEY PEM: {e}"))?;
    let der: &[u8] = spki.as_ref();
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 0x04 => Ok(point.to_vec()),
        _ => Err("not an uncompressed P-256 public key".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn key_and_pem() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let der = [&P256_SPKI_PREFIX[..], pair.public_key().as_ref()].concat();
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n");
        (pair, pem)
    }

    fn sign(pair: &EcdsaKeyPair, kid: &str, iss: &str, iat: u64) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#));
        let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{iss}","iat":{iat}}}"#));
        let signed = format!("{header}.{claims}");
        let signature = pair.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!(
            "bearer {signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    fn verifier(pem: String, max_age: Duration) -> TokenVerifier {
        TokenVerifier::new(
            &[JwtKey {
                key_id: "KEY1234567".into(),
                team_id: "TEAM123456".into(),
                public_key_pem: pem,
            }],
            max_age,
        )
        .unwrap()
    }

    fn now() -> u64 {
        unix_time().as_secs()
    }

    #[test]
    fn verifies_kid_iss_and_signature() {
        let (pair, pem) = key_and_pem();
        let (other, _) = key_and_pem();
        let verifier = verifier(pem, Duration::from_secs(3600));
        let now = now();
        let good = sign(&pair, "KEY1234567", "TEAM123456", now);
        let accepted = verifier.check(Some(good.as_bytes())).unwrap();
        assert_eq!(accepted.key_id, "KEY1234567");
        assert_eq!(format!("bearer {}", accepted.jwt), good);
        assert!(verifier.check(Some(good.as_bytes())).is_ok(), "cached");
        let cases = [
            sign(&other, "KEY1234567", "TEAM123456", now),
            sign(&pair, "OTHERKEY00", "TEAM123456", now),
            sign(&pair, "KEY1234567", "OTHERTEAM0", now),
            "bearer not.a.jwt".to_owned(),
        ];
        for bad in cases {
            assert_eq!(
                verifier.check(Some(bad.as_bytes())),
                Err(AuthFailure::Invalid)
            );
        }
        assert_eq!(verifier.check(None), Err(AuthFailure::Missing));
        assert_eq!(verifier.check(Some(b"bearer ")), Err(AuthFailure::Missing));
        assert_eq!(verifier.distinct_valid_tokens(), 1, "only the good one");
    }

    #[test]
    fn judges_iat_age_against_the_configured_maximum() {
        let (pair, pem) = key_and_pem();
        let verifier = verifier(pem, Duration::from_secs(600));
        let now = now();
        let check = |iat: u64| {
            let jwt = sign(&pair, "KEY1234567", "TEAM123456", iat);
            verifier.check(Some(jwt.as_bytes())).map(|_| ())
        };
        assert_eq!(check(now - 500), Ok(()));
        assert_eq!(check(now - 700), Err(AuthFailure::Expired));
        assert_eq!(check(now - 7200), Err(AuthFailure::Expired));
        assert_eq!(check(now + 30), Ok(()), "small clock skew is tolerated");
        assert_eq!(check(now + 120), Err(AuthFailure::Invalid));
        assert_eq!(verifier.distinct_valid_tokens(), 2);
    }

    #[test]
    fn rejects_non_p256_pem() {
        assert!(p256_point_from_spki_pem("garbage").is_err());
    }
}
