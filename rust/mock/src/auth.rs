//! APNs provider-token (ES256 JWT) checks.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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
/// APNs refuses tokens whose `iat` is older than an hour.
const TOKEN_LIFETIME_SECS: u64 = 3600;
/// Clients reuse one token for many requests; remember a few verdicts to skip ECDSA.
const VERDICT_CACHE_LIMIT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    Invalid,
    Expired,
}

impl AuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "MissingProviderToken",
            AuthFailure::Invalid => "InvalidProviderToken",
            AuthFailure::Expired => "ExpiredProviderToken",
        }
    }
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

pub(crate) struct TokenVerifier {
    keys: Vec<VerifyingKey>,
    /// Verified token text -> its `iat` (None = no iat) or the failure.
    verdicts: Mutex<HashMap<String, Result<Option<u64>, AuthFailure>>>,
}

impl TokenVerifier {
    pub fn new(keys: &[JwtKey]) -> io::Result<Self> {
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
            verdicts: Mutex::new(HashMap::new()),
        })
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks an `authorization` header value (`bearer <jwt>`).
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), AuthFailure> {
        let header = authorization.ok_or(AuthFailure::Missing)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthFailure::Invalid)?;
        let token = header
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
            .map(|_| header[7..].trim())
            .ok_or(AuthFailure::Missing)?;
        if token.is_empty() {
            return Err(AuthFailure::Missing);
        }
        let cached = self.lock_verdicts().get(token).copied();
        let verdict = match cached {
            Some(verdict) => verdict,
            None => {
                let verdict = self.verify(token);
                let mut verdicts = self.lock_verdicts();
                if verdicts.len() >= VERDICT_CACHE_LIMIT {
                    verdicts.clear();
                }
                verdicts.insert(token.to_owned(), verdict);
                verdict
            }
        };
        match verdict? {
            Some(iat) if unix_seconds().saturating_sub(iat) > TOKEN_LIFETIME_SECS => {
                Err(AuthFailure::Expired)
            }
            _ => Ok(()),
        }
    }

    fn lock_verdicts(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Result<Option<u64>, AuthFailure>>> {
        self.verdicts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn verify(&self, token: &str) -> Result<Option<u64>, AuthFailure> {
        let mut parts = token.split('.');
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
        let key = self
            .keys
            .iter()
            .find(|key| key.key_id == header.kid && key.team_id == claims.iss)
            .ok_or(AuthFailure::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| AuthFailure::Invalid)?;
        let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
        key.public_key
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| AuthFailure::Invalid)?;
        Ok(claims.iat)
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, AuthFailure> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthFailure::Invalid)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthFailure::Invalid)
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

    #[test]
    fn verifies_kid_iss_signature_and_age() {
        let (pair, pem) = key_and_pem();
        let (other, _) = key_and_pem();
        let verifier = TokenVerifier::new(&[JwtKey {
            key_id: "KEY1234567".into(),
            team_id: "TEAM123456".into(),
            public_key_pem: pem,
        }])
        .unwrap();
        let now = unix_seconds();
        let good = sign(&pair, "KEY1234567", "TEAM123456", now);
        assert_eq!(verifier.check(Some(good.as_bytes())), Ok(()));
        assert_eq!(verifier.check(Some(good.as_bytes())), Ok(()), "cached");
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
        let old = sign(&pair, "KEY1234567", "TEAM123456", now - 7200);
        assert_eq!(
            verifier.check(Some(old.as_bytes())),
            Err(AuthFailure::Expired)
        );
        assert_eq!(verifier.check(None), Err(AuthFailure::Missing));
        assert_eq!(verifier.check(Some(b"bearer ")), Err(AuthFailure::Missing));
    }

    #[test]
    fn rejects_non_p256_pem() {
        assert!(p256_point_from_spki_pem("garbage").is_err());
    }
}
