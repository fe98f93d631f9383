//! Live Activity broadcast channels of a mock server (one mock = one APNs environment):
//! channels belong to a bundle id, at most `max_channels_per_app` each (Apple: 10,000), keep
//! their storage policy, and every valid broadcast is counted per channel (kept after the
//! channel is deleted) so tests can prove "one request per update".
//!
//! A leaf module: the shared server state holds a [`Channels`]; the handlers are in
//! [`super::broadcast`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;

use super::validate::Rejection;

/// Apple: at most 10,000 channels per app per environment.
pub const MAX_CHANNELS_PER_APP: usize = 10_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The registry stays usable even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Channel {
    storage_policy: u8,
    /// Policy 1 keeps the most recent message.
    last: Option<Bytes>,
}

#[derive(Default)]
struct ChannelState {
    apps: HashMap<String, BTreeMap<String, Channel>>,
    received: HashMap<String, u64>,
    disabled: HashSet<String>,
    next: u64,
}

/// The channels of every app on this server, and what each channel received.
pub(crate) struct Channels {
    state: Mutex<ChannelState>,
    limit: usize,
}

impl Channels {
    pub(crate) fn new(limit: usize, seed: u64) -> Self {
        Channels {
            state: Mutex::new(ChannelState {
                next: seed,
                ..ChannelState::default()
            }),
            limit,
        }
    }

    /// Valid broadcasts received for `channel_id`, whatever was answered (faults included).
    pub fn received(&self, channel_id: &str) -> u64 {
        lock(&self.state)
            .received
            .get(channel_id)
            .copied()
            .unwrap_or(0)
    }

    /// `(channel id, storage policy)` of `bundle`'s channels, sorted by id.
    pub fn list(&self, bundle: &str) -> Vec<(String, u8)> {
        lock(&self.state)
            .apps
            .get(bundle)
            .map_or_else(Vec::new, |c| {
                c.iter()
                    .map(|(id, ch)| (id.clone(), ch.storage_policy))
                    .collect()
            })
    }

    /// The stored message of a storage-policy-1 channel.
    pub fn stored_message(&self, channel_id: &str) -> Option<Bytes> {
        lock(&self.state)
            .apps
            .values()
            .find_map(|c| c.get(channel_id))
            .and_then(|ch| ch.last.clone())
    }

    /// Broadcasts for `bundle` are answered `FeatureNotEnabled` from now on.
    pub fn disable(&self, bundle: &str) {
        lock(&self.state).disabled.insert(bundle.to_owned());
    }

    pub(crate) fn is_disabled(&self, bundle: &str) -> bool {
        lock(&self.state).disabled.contains(bundle)
    }

    pub(crate) fn create(&self, bundle: &str, storage_policy: u8) -> Result<String, Rejection> {
        let mut state = lock(&self.state);
        if state.apps.get(bundle).map_or(0, BTreeMap::len) >= self.limit {
            return Err(Rejection {
                status: 400,
                reason: "CannotCreateChannelConfig",
            });
        }
        state.next = state.next.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let (a, b) = (splitmix(state.next), splitmix(state.next ^ 0x5555));
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&a.to_le_bytes());
        raw[8..].copy_from_slice(&b.to_le_bytes());
        let id = STANDARD.encode(raw);
        state.apps.entry(bundle.to_owned()).or_default().insert(
            id.clone(),
            Channel {
                storage_policy,
                last: None,
            },
        );
        Ok(id)
    }

    pub(crate) fn policy(&self, bundle: &str, id: &str) -> Option<u8> {
        lock(&self.state)
            .apps
            .get(bundle)
            .and_then(|c| c.get(id))
            .map(|ch| ch.storage_policy)
    }

    pub(crate) fn delete(&self, bundle: &str, id: &str) -> bool {
        lock(&self.state)
            .apps
            .get_mut(bundle)
            .is_some_and(|c| c.remove(id).is_some())
    }

    pub(crate) fn record(&self, bundle: &str, id: &str, body: &[u8]) {
        let mut state = lock(&self.state);
        *state.received.entry(id.to_owned()).or_insert(0) += 1;
        if let Some(ch) = state.apps.get_mut(bundle).and_then(|c| c.get_mut(id)) {
            if ch.storage_policy == 1 {
                ch.last = Some(Bytes::copy_from_slice(body));
            }
        }
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_per_app_and_limited() {
        let channels = Channels::new(2, 7);
        let a = channels.create("com.a", 0).unwrap();
        let b = channels.create("com.a", 1).unwrap();
        assert_ne!(a, b);
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 16);
        assert_eq!(
            channels.create("com.a", 0).unwrap_err().reason,
            "CannotCreateChannelConfig"
        );
        assert!(channels.create("com.b", 0).is_ok());
        assert_eq!(channels.policy("com.a", &b), Some(1));
        assert_eq!(channels.policy("com.b", &b), None);
        channels.record("com.a", &b, b"{\"x\":1}");
        channels.record("com.a", &a, b"{}");
        assert_eq!(
            channels.stored_message(&b).as_deref(),
            Some(&b"{\"x\":1}"[..])
        );
        assert_eq!(channels.stored_message(&a), None);
        assert!(channels.delete("com.a", &a));
        assert!(!channels.delete("com.a", &a));
        assert_eq!(channels.received(&a), 1);
        assert_eq!(channels.list("com.a").len(), 1);
    }
}
