//! Subscription keys of the mock push services, derived from the subscription id:
//! private key = SHA-256("pushwire-mock-webpush:" || id) as a P-256 scalar, auth secret =
//! the first 16 bytes of SHA-256("pushwire-mock-webpush-auth:" || id). `pushwire.testing`
//! derives the same keys to mint subscriptions, so nothing is registered with the server.

use ring::digest::{digest, SHA256};

pub struct SubscriptionSecret {
    pub(crate) private: p256::SecretKey,
    pub(crate) auth: [u8; 16],
}

impl SubscriptionSecret {
    pub fn for_id(id: &str) -> Result<SubscriptionSecret, &'static str> {
        let scalar = digest(&SHA256, format!("pushwire-mock-webpush:{id}").as_bytes());
        // A digest outside [1, n) has probability ~2^-32; such an id has no subscription.
        let private =
            p256::SecretKey::from_slice(scalar.as_ref()).map_err(|_| "NoSuchSubscription")?;
        let auth_digest = digest(
            &SHA256,
            format!("pushwire-mock-webpush-auth:{id}").as_bytes(),
        );
        let mut auth = [0u8; 16];
        auth.copy_from_slice(&auth_digest.as_ref()[..16]);
        Ok(SubscriptionSecret { private, auth })
    }

    /// The uncompressed public key, as a browser's `p256dh`.
    pub fn p256dh(&self) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        self.private
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    pub fn auth(&self) -> [u8; 16] {
        self.auth
    }
}
