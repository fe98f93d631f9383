//! Helpers the Rust test suites share (rust/core/tests, rust/mock/tests): one outcome sink, one
//! way to make certificates, ES256 provider tokens, an in-memory transport from the engine to
//! the mock, and one that also records what the client wrote.

// Test helpers may panic: in a test, a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod certs;
pub mod jwt;
pub mod pipe;
pub mod sink;

pub use certs::{ClientIdentity, TestCa};
pub use pipe::{MockPipe, RecordingPipe};
pub use sink::{by_id, Collect};
