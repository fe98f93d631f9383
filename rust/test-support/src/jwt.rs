//! ES256 provider tokens signed like APNs clients do (raw R‖S signature).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use pushwire_mock::JwtKey;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

/// DER prefix of a P-256 SubjectPublicKeyInfo; the uncompressed point follows.
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

pub struct SigningKey {
    pub pair: EcdsaKeyPair,
    pub public_pem: String,
}

impl SigningKey {
    /// The mock's view of this key.
    pub fn jwt_key(&self, key_id: &str, team_id: &str) -> JwtKey {
        JwtKey {
            key_id: key_id.into(),
            team_id: team_id.into(),
            public_key_pem: self.public_pem.clone(),
        }
    }
}

pub fn signing_key() -> SigningKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let prefix = hex_bytes(P256_SPKI_PREFIX);
    let spki = [prefix.as_slice(), pair.public_key().as_ref()].concat();
    let public_pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(spki)
    );
    SigningKey { pair, public_pem }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A JWT issued now.
pub fn jwt(key: &SigningKey, kid: &str, team: &str) -> String {
    jwt_at(key, kid, team, unix_now())
}

/// A JWT with this `iat` (epoch seconds).
pub fn jwt_at(key: &SigningKey, kid: &str, team: &str, iat: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#));
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{team}","iat":{iat}}}"#));
    let signed = format!("{header}.{claims}");
    let signature = key
        .pair
        .sign(&SystemRandom::new(), signed.as_bytes())
        .unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}
