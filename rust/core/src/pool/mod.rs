//! The connection pool of one (host, port, credential identity) and its connections' drivers.

pub(crate) mod connection;
mod manager;

pub(crate) use manager::*;
