//! Where a pool's connections come from when they are not TCP + TLS to its `base_url`: an
//! in-memory pipe in tests (GOAWAY, REFUSED_STREAM and SETTINGS cases without sockets), or a
//! caller's own tunnel. The engine runs HTTP/2 over whatever stream this returns.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream HTTP/2 can run over.
pub trait IoStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> IoStream for T {}

/// The future a [`Transport`] returns: one new connection's stream.
pub type Connecting<'a> = Pin<Box<dyn Future<Output = io::Result<Box<dyn IoStream>>> + Send + 'a>>;

/// Opens connections for a pool (see [`Engine::add_pool_with_transport`](crate::Engine)).
/// Each call is one new connection; the pool calls it again to replace one that closed.
pub trait Transport: Send + Sync + 'static {
    fn connect(&self) -> Connecting<'_>;
}
