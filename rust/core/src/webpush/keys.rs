//! A subscription's keys (`PushSubscription.getKey("p256dh")` and `getKey("auth")`), checked
//! before anything is encrypted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::Error;

/// Length of an uncompressed P-256 point (0x04 || X || Y).
pub const P256_POINT_LEN: usize = 65;
/// Length of the authentication secret (RFC 8291 §3.2).
pub const AUTH_LEN: usize = 16;

/// The user agent's public key and authentication secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SubscriptionKeys {
    pub(crate) p256dh: [u8; P256_POINT_LEN],
    pub(crate) auth: [u8; AUTH_LEN],
}

impl std::fmt::Debug for SubscriptionKeys {
    // The auth secret is a secret: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionKeys").finish_non_exhaustive()
    }
}

impl SubscriptionKeys {
    /// Keys from raw bytes: a 65-byte uncompressed P-256 point and a 16-byte secret.
    pub fn new(p256dh: &[u8], auth: &[u8]) -> Result<Self, Error> {
        let p256dh: [u8; P256_POINT_LEN] =
            p256dh
                .try_into()
                .map_err(|_| Error::invalid(
                    "p256dh",
                    format!(
                        "is {} bytes; a subscription's p256dh key is an uncompressed P-256 point of 65 bytes (87 base64url characters)",
                        p256dh.len()
                    ),
                ))?;
        if p256dh[0] != 0x04 {
            return Err(Error::invalid(
                "p256dh",
                "is not an uncompressed P-256 point (it must start with 0x04)",
            ));
        }
        let auth: [u8; AUTH_LEN] = auth.try_into().map_err(|_| {
            Error::invalid(
                "auth",
                format!(
                    "is {} bytes; a subscription's auth secret is 16 bytes (22 base64url characters)",
                    auth.len()
                ),
            )
        })?;
        Ok(SubscriptionKeys { p256dh, auth })
    }

    /// Keys as `PushSubscription.toJSON()` gives them: base64url (padding tolerated).
    pub fn from_base64url(p256dh: &str, auth: &str) -> Result<Self, Error> {
        let p256dh = decode("p256dh", p256dh)?;
        let auth = decode("auth", auth)?;
        Self::new(&p256dh, &auth)
    }

    pub fn p256dh(&self) -> &[u8; P256_POINT_LEN] {
        &self.p256dh
    }
}

fn decode(field: &str, value: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| Error::invalid(field, "is not base64url (A-Z a-z 0-9 - _)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_point_form_are_checked() {
        let err = SubscriptionKeys::new(&[4; 64], &[0; 16]).unwrap_err();
        assert_eq!(err.field(), Some("p256dh"));
        assert!(err.message().contains("65 bytes"), "{err}");
        let err = SubscriptionKeys::new(&[2; 65], &[0; 16]).unwrap_err();
        assert!(err.message().contains("0x04"), "{err}");
        let err = SubscriptionKeys::new(&[4; 65], &[0; 15]).unwrap_err();
        assert_eq!(err.field(), Some("auth"));
        let err = SubscriptionKeys::from_base64url("a+b/", "x").unwrap_err();
        assert_eq!(err.field(), Some("p256dh"));
        assert!(SubscriptionKeys::new(&[4; 65], &[0; 16]).is_ok());
    }

    #[test]
    fn debug_hides_the_secret() {
        let keys = SubscriptionKeys::new(&[4; 65], &[7; 16]).unwrap();
        assert_eq!(format!("{keys:?}"), "SubscriptionKeys { .. }");
    }
}
