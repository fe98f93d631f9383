//! A real TLS + HTTP/2 mock of the APNs provider API and of FCM HTTP v1 (with its OAuth2
//! token endpoint), routed by path, with per-token fault injection.
//!
//! [`MockServer::start`] runs the server on its own tokio runtime, so it works from
//! plain sync code, from inside `#[tokio::test]`, and behind Python bindings.

mod apns;
mod config;
mod fcm;
mod reply;
mod route;
mod server;
mod state;
mod transport;
pub mod webpush;

pub use config::{
    parse_behavior, parse_rule, Behavior, Failure, JwtKey, Match, MockConfig, Rule,
    ServiceAccountKey, DEFAULT_FCM_QUOTA_WINDOW, DEFAULT_FCM_TOKEN_LIFETIME, DEFAULT_JWT_MAX_AGE,
    DEFAULT_TOKEN_UPDATE_WINDOW,
};
pub use server::MockServer;
