//! pushwire's HTTP/2 push engine.
//!
//! Pure Rust, no Python: a pool of TLS HTTP/2 connections per (host, port, credential identity),
//! every in-flight request tracked by (connection id, stream id) with its own deadline, and
//! exactly one [`Outcome`] per submitted [`Request`], whatever the server does.
//!
//! Data flow: [`Engine::submit`] → the pool's [`queue::WorkQueue`] → a connection driver
//! (`pool/connection.rs`) that opens a stream, tracks it in a [`tracker::Tracker`] and turns the
//! answer, the error or the deadline into an [`Outcome`] → the caller's [`CompletionSink`].

mod backoff;
mod completion;
mod config;
mod engine;
mod error;
mod metrics;
mod outcome;
mod pool;
pub mod queue;
pub mod request;
mod runtime;
mod tls;
pub mod tracker;
mod transport;
pub mod webpush;

pub use completion::CompletionSink;
pub use config::{EngineConfig, PoolConfig};
pub use engine::{Engine, PoolId, PoolStats};
pub use error::{Error, ErrorKind};
pub use metrics::{MetricsSnapshot, LATENCY_BUCKETS_SECS};
pub use outcome::{Outcome, OutcomeKind};
pub use request::{validate_header_value, validate_token, Request, Template, TokenFormat};
pub use transport::{Connecting, IoStream, Transport};
