//! The user agent's side of RFC 8291: open an `aes128gcm` body with the subscription's private
//! key. Written apart from the engine's encryption so the mock checks it independently.

use ring::{aead, hkdf};

use super::keys::SubscriptionSecret;

const HEADER_LEN: usize = 86;

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) -> Result<(), &'static str> {
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| "DecryptionFailed")
}

/// The plaintext, or the reason the body cannot be opened.
pub(crate) fn open(secret: &SubscriptionSecret, body: &[u8]) -> Result<Vec<u8>, &'static str> {
    if body.len() < HEADER_LEN + 16 + 1 {
        return Err("DecryptionFailed");
    }
    let salt = &body[..16];
    let record_size = u32::from_be_bytes([body[16], body[17], body[18], body[19]]);
    let id_len = usize::from(body[20]);
    if id_len != 65 || record_size < 18 {
        return Err("DecryptionFailed");
    }
    let as_public = &body[21..86];
    let record = &body[HEADER_LEN..];
    if record.len() > record_size as usize {
        return Err("DecryptionFailed"); // one record only: it must fit the record size
    }
    let sender = p256::PublicKey::from_sec1_bytes(as_public).map_err(|_| "DecryptionFailed")?;
    let shared = p256::ecdh::diffie_hellman(secret.private.to_nonzero_scalar(), sender.as_affine());
    let ua_public = secret.p256dh();

    let prk_key =
        hkdf::Salt::new(hkdf::HKDF_SHA256, &secret.auth).extract(&shared.raw_secret_bytes()[..]);
    let mut ikm = [0u8; 32];
    expand(
        &prk_key,
        &[b"WebPush: info\0", &ua_public, as_public],
        &mut ikm,
    )?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
    let mut cek = [0u8; 16];
    expand(&prk, &[b"Content-Encoding: aes128gcm\0"], &mut cek)?;
    let mut nonce = [0u8; 12];
    expand(&prk, &[b"Content-Encoding: nonce\0"], &mut nonce)?;

    let key = aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| "DecryptionFailed")?;
    let mut buffer = record.to_vec();
    let opened = aead::LessSafeKey::new(key)
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut buffer,
        )
        .map_err(|_| "DecryptionFailed")?;
    // Padding: zeros after the delimiter; the last record's delimiter is 0x02.
    let end = opened
        .iter()
        .rposition(|b| *b != 0)
        .ok_or("DecryptionFailed")?;
    if opened[end] != 0x02 {
        return Err("DecryptionFailed");
    }
    Ok(opened[..end].to_vec())
}
