//! The connection pool of one (host, port, credential identity): its shared state, how a
//! connection is opened, the manager task that opens and replaces connections, and each
//! connection's driver. Imports run one way: `manager` → `connect`/`connection`/`http1` → `shared`.

mod connect;
mod connection;
mod http1;
mod manager;
mod shared;

pub(crate) use manager::manage;
pub(crate) use shared::PoolShared;
