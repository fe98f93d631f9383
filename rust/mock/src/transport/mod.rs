//! TLS, the frame shim under h2 and each connection's serving loop.

pub(crate) mod connection;
pub(crate) mod frames;
pub(crate) mod shim;
pub(crate) mod tls;
