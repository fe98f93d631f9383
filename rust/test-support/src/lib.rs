//! Helpers the Rust test suites share (rust/core/tests, rust/mock/tests): one outcome sink, one
//! way to make certificates, and an in-memory transport from the engine to the mock.

// Test helpers may panic: in a test, a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod certs;
pub mod pipe;
pub mod sink;

pub use certs::{ClientIdentity, TestCa};
pub use pipe::MockPipe;
pub use sink::Collect;
