//! Web Push message encryption: RFC 8291 (the `aes128gcm` content coding of RFC 8188 with keys
//! from an ECDH exchange with the subscription's `p256dh` key and its `auth` secret).
//!
//! This is the per-(subscription, message) hot path of Web Push, so it runs here, on the
//! engine side, never per notification in Python. `ring` does the ECDH (a fresh ephemeral key
//! per message), HKDF-SHA-256 and AES-128-GCM.

mod ece;
mod keys;

pub use ece::{encrypt, HEADER_LEN, MAX_BODY_LEN, MAX_PLAINTEXT_LEN, RECORD_SIZE};
pub use keys::SubscriptionKeys;
