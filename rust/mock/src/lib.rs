//! A real TLS + HTTP/2 mock of the APNs provider API and of FCM HTTP v1 (with its OAuth2
//! token endpoint), routed by path, with per-token fault injection.
//!
//! [`MockServer::start`] runs the server on its own tokio runtime, so it works from
//! plain sync code, from inside `#[tokio::test]`, and behind Python bindings.

mod apns;
mod auth;
mod config;
mod connection;
mod connection_auth;
mod fcm;
mod fcm_message;
mod frames;
mod google_error;
mod oauth;
mod quota;
mod reply;
mod route;
mod rsa_spki;
mod server;
mod service_account;
mod shim;
mod tls;
mod validate;

pub use config::{
    parse_behavior, parse_rule, Behavior, Failure, JwtKey, Match, MockConfig, Rule,
    ServiceAccountKey, DEFAULT_FCM_QUOTA_WINDOW, DEFAULT_FCM_TOKEN_LIFETIME, DEFAULT_JWT_MAX_AGE,
    DEFAULT_TOKEN_UPDATE_WINDOW,
};
pub use server::MockServer;
