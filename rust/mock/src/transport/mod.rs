//! TLS, the frame shim under h2 and each connection's serving loop (HTTP/2, or HTTP/1.1 for
//! a Web Push push service configured `http1_only`).

pub(crate) mod connection;
pub(crate) mod frames;
pub(crate) mod http1;
pub(crate) mod shim;
pub(crate) mod tls;
