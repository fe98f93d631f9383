//! Unwraps an RSA `PUBLIC KEY` PEM (SubjectPublicKeyInfo) into the PKCS#1 `RSAPublicKey`
//! DER that ring's RSA verification wants.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::SubjectPublicKeyInfoDer;

const TAG_SEQUENCE: u8 = 0x30;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;
const TAG_NULL: u8 = 0x05;
/// DER contents of the OID 1.2.840.113549.1.1.1 (rsaEncryption).
const RSA_ENCRYPTION_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The PKCS#1 `RSAPublicKey` inside an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
pub(crate) fn rsa_public_key_from_spki_pem(pem: &str) -> Result<Vec<u8>, String> {
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PUBLIC KEY PEM: {e}"))?;
    rsa_public_key_from_spki(spki.as_ref()).map(<[u8]>::to_vec)
}

fn rsa_public_key_from_spki(der: &[u8]) -> Result<&[u8], String> {
    let malformed = || "malformed SubjectPublicKeyInfo".to_owned();
    let (spki, rest) = element(der, TAG_SEQUENCE).ok_or_else(malformed)?;
    if !rest.is_empty() {
        return Err(malformed());
    }
    let (algorithm, key_bits) = element(spki, TAG_SEQUENCE).ok_or_else(malformed)?;
    let (oid, parameters) = element(algorithm, TAG_OID).ok_or_else(malformed)?;
    // RFC 3279 wants NULL parameters; tolerate their absence.
    let parameters_ok = parameters.is_empty() || parameters == [TAG_NULL, 0];
    if oid != RSA_ENCRYPTION_OID || !parameters_ok {
        return Err("not an RSA public key".to_owned());
    }
    let (bits, rest) = element(key_bits, TAG_BIT_STRING).ok_or_else(malformed)?;
    match bits.split_first() {
        // The first byte counts unused bits, which a DER key never has.
        Some((0, key)) if rest.is_empty() && element(key, TAG_SEQUENCE).is_some() => Ok(key),
        _ => Err(malformed()),
    }
}

/// Splits one DER element with this tag off `input`: (contents, what follows).
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, input) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, input) = input.split_first()?;
    let (len, input) = if first < 0x80 {
        (usize::from(first), input)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return None;
        }
        let (len_bytes, input) = input.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, input)
    };
    (input.len() >= len).then(|| input.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str = include_str!("../../tests/data/test-only-rsa-2048-a.pub.pem");

    #[test]
    fn unwraps_a_2048_bit_key() {
        let key = rsa_public_key_from_spki_pem(TEST_KEY).unwrap();
        // SEQUENCE (long form, 2 length bytes) { INTEGER n (257 bytes), INTEGER e }.
        assert_eq!(&key[..2], &[0x30, 0x82]);
        assert_eq!(key.len(), 270);
    }

    #[test]
    fn refuses_other_keys_and_garbage() {
        let p256 = "-----BEGIN PUBLIC KEY-----\n\
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEr3Kbh/7fq3u3cD2kX1q6Rr3J8aQZ\n\
            5Yt0b6G9pJd9p8Wq3S3j6m0u1Z8tX8q0Fv9kq5m9nK6gq2oJcR8z7pWlbQ==\n\
            -----END PUBLIC KEY-----\n";
        assert_eq!(
            rsa_public_key_from_spki_pem(p256).unwrap_err(),
            "not an RSA public key"
        );
        assert!(rsa_public_key_from_spki_pem("garbage").is_err());
        assert!(rsa_public_key_from_spki(&[0x30, 0x05, 0x30]).is_err());
    }
}
