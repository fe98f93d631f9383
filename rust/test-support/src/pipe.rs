//! The engine's connections to the mock over in-memory pipes (`tokio::io::duplex`): HTTP/2
//! end to end, the mock's faults and counters, no socket and no TLS.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

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

/// Every byte the client wrote on one connection.
type WireLog = Arc<Mutex<Vec<u8>>>;

/// A [`MockPipe`] that also keeps every byte the client wrote, per connection, so a test can
/// read the HTTP/2 frames the engine put on the wire (see [`header_blocks`]).
pub struct RecordingPipe {
    pub server: Arc<MockServer>,
    /// One buffer per connection, in the order they were opened.
    pub written: Arc<Mutex<Vec<WireLog>>>,
}

impl RecordingPipe {
    pub fn new(server: Arc<MockServer>) -> Self {
        RecordingPipe {
            server,
            written: Arc::default(),
        }
    }

    /// What the client wrote on connection `index` so far.
    pub fn client_bytes(&self, index: usize) -> Vec<u8> {
        let connections = self.written.lock().unwrap();
        let bytes = connections[index].lock().unwrap().clone();
        bytes
    }
}

impl Transport for RecordingPipe {
    fn connect(&self) -> Connecting<'_> {
        let (client, server_side) = tokio::io::duplex(PIPE_BUFFER);
        self.server.serve_stream(server_side);
        let log = Arc::new(Mutex::new(Vec::new()));
        self.written.lock().unwrap().push(log.clone());
        Box::pin(async move { Ok(Box::new(Recorder { inner: client, log }) as Box<dyn IoStream>) })
    }
}

/// Passes reads through and copies every written byte into `log`.
struct Recorder {
    inner: DuplexStream,
    log: WireLog,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.log.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The HTTP/2 client connection preface (RFC 9113 3.4), before the first frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;

/// The header block of every request in `client_bytes` (a client's side of one connection,
/// preface first): `(stream id, bytes of HEADERS + CONTINUATION payload)`, in wire order.
pub fn header_blocks(client_bytes: &[u8]) -> Vec<(u32, usize)> {
    assert!(
        client_bytes.starts_with(PREFACE),
        "not an HTTP/2 client stream"
    );
    let mut rest = &client_bytes[PREFACE.len()..];
    let mut blocks: Vec<(u32, usize)> = Vec::new();
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let kind = rest[3];
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        if rest.len() < 9 + length {
            break;
        }
        match kind {
            HEADERS => blocks.push((stream, length)),
            CONTINUATION => blocks.last_mut().unwrap().1 += length,
            _ => {}
        }
        rest = &rest[9 + length..];
    }
    blocks
}
