//! A real TLS + HTTP/2 mock of the APNs provider API with per-token fault injection.
//!
//! [`MockServer::start`] runs the server on its own tokio runtime, so it works from
//! plain sync code, from inside `#[tokio::test]`, and behind Python bindings.

mod auth;
mod config;
mod connection;
mod connection_auth;
mod frames;
mod server;
mod shim;
mod tls;
mod validate;

pub use config::{
    parse_behavior, parse_rule, Behavior, JwtKey, Match, MockConfig, Rule, DEFAULT_JWT_MAX_AGE,
    DEFAULT_TOKEN_UPDATE_WINDOW,
};
pub use server::MockServer;
