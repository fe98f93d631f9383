//! The plaintexts each mock push service decrypted, per subscription id (what tests read).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

#[derive(Default)]
pub(crate) struct Inbox {
    messages: Mutex<HashMap<String, Vec<Bytes>>>,
}

impl Inbox {
    pub fn record(&self, id: &str, plaintext: Bytes) {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .push(plaintext);
    }

    /// In arrival order; empty for an id never seen.
    pub fn messages(&self, id: &str) -> Vec<Bytes> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
            .unwrap_or_default()
    }
}
