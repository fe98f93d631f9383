//! The engine's connections to the mock over in-memory pipes (`tokio::io::duplex`): HTTP/2
//! end to end, the mock's faults and counters, no socket and no TLS.

use std::sync::Arc;

use pushwire_core::{Connecting, IoStream, Transport};
use pushwire_mock::MockServer;

/// Bytes each direction of a pipe buffers before the writer waits.
const PIPE_BUFFER: usize = 64 * 1024;

/// A [`Transport`] whose every connection is a new pipe served by `server`.
pub struct MockPipe {
    pub server: Arc<MockServer>,
}

impl Transport for MockPipe {
    fn connect(&self) -> Connecting<'_> {
        let (client, server_side) = tokio::io::duplex(PIPE_BUFFER);
        self.server.serve_stream(server_side);
        Box::pin(async move { Ok(Box::new(client) as Box<dyn IoStream>) })
    }
}
