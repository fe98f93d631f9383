//! `aes128gcm` (RFC 8188) as RFC 8291 uses it: one record, keys from ECDH + HKDF.
//!
//! Body = salt (16) || record size (4, big-endian) || key id length (1) = 65 ||
//! the sender's ephemeral public key (65) — the 86-byte header — then the one record:
//! AES-128-GCM(plaintext || 0x02 || zero padding) with its 16-byte tag.

use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, agreement, hkdf};

use super::keys::{SubscriptionKeys, P256_POINT_LEN};
use crate::error::Error;

/// Salt, record size, key id length and the 65-byte ephemeral public key.
pub const HEADER_LEN: usize = 16 + 4 + 1 + P256_POINT_LEN;
/// Push services accept at most 4,096 bytes of body (RFC 8030 §7.2 requires at least that).
pub const MAX_BODY_LEN: usize = 4096;
/// What fits in one body: the header, the padding delimiter and the tag are paid first (3,993).
pub const MAX_PLAINTEXT_LEN: usize = MAX_BODY_LEN - HEADER_LEN - 1 - TAG_LEN;
/// The record size announced in the header; the single record always fits in it.
pub const RECORD_SIZE: u32 = 4096;
const TAG_LEN: usize = 16;
const SALT_LEN: usize = 16;
/// Delimiter of the last (here: only) record.
const LAST_RECORD: u8 = 0x02;

/// Encrypt `plaintext` for a subscription with a fresh ephemeral key and a random salt,
/// padded with `padding` zero bytes (hides the length; 0 for none).
pub fn encrypt(keys: &SubscriptionKeys, plaintext: &[u8], padding: usize) -> Result<Bytes, Error> {
    check_size(plaintext.len(), padding)?;
    let rng = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt)
        .map_err(|_| Error::invalid("payload", "the system random generator failed"))?;
    let private = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| Error::invalid("payload", "the system random generator failed"))?;
    let public = private
        .compute_public_key()
        .map_err(|_| Error::invalid("payload", "could not derive the ephemeral public key"))?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &keys.p256dh[..]);
    agreement::agree_ephemeral(private, &peer, |ecdh_secret| {
        seal(
            ecdh_secret,
            public.as_ref(),
            keys,
            &salt,
            plaintext,
            padding,
        )
    })
    .map_err(|_| {
        Error::invalid(
            "p256dh",
            "is not a point on the P-256 curve: the subscription's keys are corrupt",
        )
    })
}

fn check_size(plaintext_len: usize, padding: usize) -> Result<(), Error> {
    if plaintext_len.saturating_add(padding) > MAX_PLAINTEXT_LEN {
        return Err(Error::invalid(
            "payload",
            format!(
                "is {plaintext_len} bytes{}; encrypted Web Push messages carry at most \
                 {MAX_PLAINTEXT_LEN} bytes ({MAX_BODY_LEN} on the wire): shorten it",
                if padding > 0 {
                    format!(" plus {padding} of padding")
                } else {
                    String::new()
                }
            ),
        ));
    }
    Ok(())
}

/// HKDF output of a given length (ring wants the length as a type).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// Everything after the ECDH: key derivation (RFC 8291 §3.3-3.4) and the record.
pub(crate) fn seal(
    ecdh_secret: &[u8],
    as_public: &[u8],
    keys: &SubscriptionKeys,
    salt: &[u8; SALT_LEN],
    plaintext: &[u8],
    padding: usize,
) -> Bytes {
    // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32)
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, &keys.auth).extract(ecdh_secret);
    let mut ikm = [0u8; 32];
    let key_info: [&[u8]; 3] = [b"WebPush: info\0", &keys.p256dh, as_public];
    expand(&prk_key, &key_info, &mut ikm);
    // CEK and NONCE = HKDF(salt, IKM, "Content-Encoding: aes128gcm|nonce" || 0x00, 16|12)
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
    let mut cek = [0u8; 16];
    expand(&prk, &[b"Content-Encoding: aes128gcm\0"], &mut cek);
    let mut nonce = [0u8; aead::NONCE_LEN];
    expand(&prk, &[b"Content-Encoding: nonce\0"], &mut nonce);

    let record_len = plaintext.len() + 1 + padding;
    let mut body = Vec::with_capacity(HEADER_LEN + record_len + TAG_LEN);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    #[allow(clippy::cast_possible_truncation)] // 65
    body.push(as_public.len() as u8);
    body.extend_from_slice(as_public);
    body.extend_from_slice(plaintext);
    body.push(LAST_RECORD);
    body.resize(HEADER_LEN + record_len, 0);

    // One record, sequence number 0: the nonce is used as derived.
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &cek).unwrap_or_else(|_| unreachable!()),
    );
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut body[HEADER_LEN..],
        )
        .unwrap_or_else(|_| unreachable!("a record under 4 KiB is within AES-GCM's limits"));
    body.extend_from_slice(tag.as_ref());
    Bytes::from(body)
}

fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) {
    // Lengths of 12, 16 and 32 are far below HKDF-SHA-256's 255 * 32 limit.
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .unwrap_or_else(|_| unreachable!("HKDF output length is within limits"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    // RFC 8291 Appendix A.
    const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    fn ecdh(private: &str, public: &str) -> Vec<u8> {
        // ring cannot load a fixed private key (its ECDH keys are ephemeral only), so the
        // known-answer test does the exchange with RustCrypto's p256 and checks the rest.
        let secret = p256::SecretKey::from_slice(&b64(private)).unwrap();
        let public = p256::PublicKey::from_sec1_bytes(&b64(public)).unwrap();
        p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine())
            .raw_secret_bytes()
            .to_vec()
    }

    #[test]
    fn rfc8291_appendix_a_known_answer() {
        let keys = SubscriptionKeys::from_base64url(UA_PUBLIC, AUTH).unwrap();
        let salt: [u8; 16] = b64(SALT).try_into().unwrap();
        let body = seal(
            &ecdh(AS_PRIVATE, UA_PUBLIC),
            &b64(AS_PUBLIC),
            &keys,
            &salt,
            PLAINTEXT,
            0,
        );
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), BODY);
        assert_eq!(&body[..HEADER_LEN], &b64(BODY)[..HEADER_LEN]);
        assert_eq!(body.len(), HEADER_LEN + PLAINTEXT.len() + 1 + TAG_LEN);
        // The exchange is symmetric: the user agent's side finds the same secret.
        assert_eq!(ecdh(UA_PRIVATE, AS_PUBLIC), ecdh(AS_PRIVATE, UA_PUBLIC));
    }

    #[test]
    fn header_layout_and_fresh_keys_per_message() {
        let keys = SubscriptionKeys::from_base64url(UA_PUBLIC, AUTH).unwrap();
        let a = encrypt(&keys, b"hi", 0).unwrap();
        let b = encrypt(&keys, b"hi", 0).unwrap();
        assert_eq!(HEADER_LEN, 86);
        assert_eq!(a.len(), 86 + 2 + 1 + 16);
        assert_eq!(&a[16..20], &4096u32.to_be_bytes());
        assert_eq!(a[20], 65);
        assert_eq!(a[21], 0x04);
        assert_ne!(a[..16], b[..16], "a new salt per message");
        assert_ne!(a[21..86], b[21..86], "a new ephemeral key per message");
        let padded = encrypt(&keys, b"hi", 100).unwrap();
        assert_eq!(padded.len(), 86 + 2 + 1 + 100 + 16);
    }

    #[test]
    fn size_limit_is_checked_before_encrypting() {
        let keys = SubscriptionKeys::from_base64url(UA_PUBLIC, AUTH).unwrap();
        assert_eq!(MAX_PLAINTEXT_LEN, 3993);
        let full = encrypt(&keys, &[b'x'; MAX_PLAINTEXT_LEN], 0).unwrap();
        assert_eq!(full.len(), MAX_BODY_LEN);
        let err = encrypt(&keys, &[b'x'; MAX_PLAINTEXT_LEN + 1], 0).unwrap_err();
        assert_eq!(err.field(), Some("payload"));
        assert!(err.message().contains("3993"), "{err}");
        assert!(encrypt(&keys, b"x", MAX_PLAINTEXT_LEN).is_err());
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let mut bad = b64(UA_PUBLIC);
        bad[64] ^= 1;
        let keys = SubscriptionKeys::new(&bad, &b64(AUTH)).unwrap();
        let err = encrypt(&keys, b"x", 0).unwrap_err();
        assert_eq!(err.field(), Some("p256dh"));
    }
}
