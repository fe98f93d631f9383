//! An AsyncRead + AsyncWrite layer between the decrypted TLS stream and h2.
//!
//! h2 offers no way to silence a connection or to change MAX_CONCURRENT_STREAMS after
//! the handshake, so this layer does both on the raw frame stream (see `frames`).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::transport::frames::{ReadFramer, SettingsLedger, WriteFramer};

const READ_CHUNK: usize = 16 * 1024;
/// Buffered outgoing bytes above which writes wait for the socket (keeps memory bounded).
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Per-connection switches shared by the shim, the connection task and the server.
#[derive(Debug)]
pub(crate) struct FrameControl {
    blackholed: AtomicBool,
    ledger: Mutex<SettingsLedger>,
}

impl FrameControl {
    /// `initial_limit` is what the client is told in h2's first SETTINGS frame when
    /// `rewrite_initial` is set (otherwise h2's own value, which must equal it).
    pub fn new(initial_limit: u32, rewrite_initial: bool) -> Self {
        FrameControl {
            blackholed: AtomicBool::new(false),
            ledger: Mutex::new(SettingsLedger::new(initial_limit, rewrite_initial)),
        }
    }

    /// From now on nothing is written and all input is discarded.
    pub fn blackhole(&self) {
        self.blackholed.store(true, Ordering::Release);
    }

    pub fn is_blackholed(&self) -> bool {
        self.blackholed.load(Ordering::Acquire)
    }

    /// Queues a SETTINGS(MAX_CONCURRENT_STREAMS = value) for the next frame boundary.
    /// The caller must make sure the connection gets polled so the frame goes out.
    pub fn request_max_streams(&self, value: u32) {
        self.ledger().pending_injection = Some(value);
    }

    /// The stream limit the client may be honouring right now.
    #[cfg(test)]
    pub fn effective_limit(&self) -> u32 {
        self.ledger().effective_limit()
    }

    /// The limit `stream_id` was opened under (see [`SettingsLedger::limit_for_stream`]).
    pub fn limit_for_stream(&self, stream_id: u32) -> u32 {
        self.ledger().limit_for_stream(stream_id)
    }

    fn ledger(&self) -> MutexGuard<'_, SettingsLedger> {
        // The ledger holds plain data; a panic elsewhere cannot leave it half-updated.
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) struct FrameShim<T> {
    inner: T,
    control: Arc<FrameControl>,
    reader: ReadFramer,
    writer: WriteFramer,
    read_scratch: Box<[u8]>,
    /// Filtered input not yet handed to h2.
    read_ready: Vec<u8>,
    read_pos: usize,
    /// Transformed output not yet accepted by the inner stream.
    write_out: Vec<u8>,
    write_pos: usize,
}

impl<T> FrameShim<T> {
    pub fn new(inner: T, control: Arc<FrameControl>) -> Self {
        FrameShim {
            inner,
            control,
            reader: ReadFramer::new(),
            writer: WriteFramer::new(),
            read_scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            read_ready: Vec::new(),
            read_pos: 0,
            write_out: Vec::new(),
            write_pos: 0,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> FrameShim<T> {
    /// Reads from the inner stream and throws everything away until it would block.
    fn poll_discard_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.read_ready.clear();
        self.read_pos = 0;
        loop {
            let mut scratch = ReadBuf::new(&mut self.read_scratch);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut scratch))?;
            if scratch.filled().is_empty() {
                // The client closed: report EOF so h2 ends the connection quietly.
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Writes buffered output to the inner stream until it is empty or would block.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.write_pos < self.write_out.len() {
            let pending = &self.write_out[self.write_pos..];
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write_pos += written;
        }
        self.write_out.clear();
        self.write_pos = 0;
        Poll::Ready(Ok(()))
    }

    fn inject_pending_settings(&mut self) {
        let mut ledger = self.control.ledger();
        self.writer.inject_if_due(&mut ledger, &mut self.write_out);
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for FrameShim<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.control.is_blackholed() {
                return this.poll_discard_input(cx);
            }
            if this.read_pos < this.read_ready.len() {
                let available = &this.read_ready[this.read_pos..];
                let take = available.len().min(buf.remaining());
                buf.put_slice(&available[..take]);
                this.read_pos += take;
                if this.read_pos == this.read_ready.len() {
                    this.read_ready.clear();
                    this.read_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut scratch = ReadBuf::new(&mut this.read_scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut scratch))?;
            let received = scratch.filled();
            if received.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let mut ledger = this.control.ledger();
            this.reader
                .process(received, &mut ledger, &mut this.read_ready);
            // Everything may have been dropped (an injected ACK): read again.
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for FrameShim<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.control.is_blackholed() {
            this.write_out.clear();
            this.write_pos = 0;
            return Poll::Ready(Ok(buf.len()));
        }
        if this.write_out.len() - this.write_pos >= WRITE_HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        {
            let mut ledger = this.control.ledger();
            this.writer.process(buf, &mut ledger, &mut this.write_out);
        }
        // The bytes are ours now; a blocked socket is retried on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.control.is_blackholed() {
            this.write_out.clear();
            this.write_pos = 0;
            return Poll::Ready(Ok(()));
        }
        // h2 flushes on every poll of the connection, which is how an injection made
        // while h2 has nothing to say still reaches the client.
        this.inject_pending_settings();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.control.is_blackholed() {
            // Not even a TLS close_notify may leave a blackholed connection.
            return Poll::Ready(Ok(()));
        }
        this.inject_pending_settings();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::frames::{max_streams_settings_frame, SettingsOrigin};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn settings_ack() -> [u8; 9] {
        [0, 0, 0, 4, 1, 0, 0, 0, 0]
    }

    #[tokio::test]
    async fn write_one_byte_at_a_time_rewrites_and_injects() {
        let (server_side, mut client_side) = tokio::io::duplex(1024);
        let control = Arc::new(FrameControl::new(1, true));
        let mut shim = FrameShim::new(server_side, control.clone());
        let h2_settings = [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0x13, 0x88];
        for byte in h2_settings {
            shim.write_all(&[byte]).await.unwrap();
        }
        control.request_max_streams(1000);
        shim.flush().await.unwrap();

        let mut received = vec![0u8; 30];
        client_side.read_exact(&mut received).await.unwrap();
        let mut expected = vec![0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1];
        expected.extend_from_slice(&max_streams_settings_frame(1000));
        assert_eq!(received, expected);
        assert_eq!(control.effective_limit(), 1000);

        // The client ACKs both: h2 must only see the first ACK.
        client_side.write_all(PREFACE).await.unwrap();
        client_side.write_all(&settings_ack()).await.unwrap();
        client_side.write_all(&settings_ack()).await.unwrap();
        let mut seen = vec![0u8; PREFACE.len() + 9];
        shim.read_exact(&mut seen).await.unwrap();
        assert_eq!(&seen[PREFACE.len()..], &settings_ack());
        // The injected ACK is swallowed: nothing else arrives.
        let mut extra = [0u8; 1];
        let more = tokio::time::timeout(Duration::from_millis(50), shim.read(&mut extra)).await;
        assert!(more.is_err(), "injected ACK leaked to h2");
        assert_eq!(control.effective_limit(), 1000);
        assert!(control.ledger().unacked.is_empty());
    }

    #[tokio::test]
    async fn blackhole_swallows_both_directions() {
        let (server_side, mut client_side) = tokio::io::duplex(1024);
        let control = Arc::new(FrameControl::new(10, false));
        let mut shim = FrameShim::new(server_side, control.clone());
        client_side.write_all(PREFACE).await.unwrap();
        let mut preface = vec![0u8; PREFACE.len()];
        shim.read_exact(&mut preface).await.unwrap();

        control.blackhole();
        shim.write_all(&[0, 0, 8, 6, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();
        shim.flush().await.unwrap();
        shim.shutdown().await.unwrap();
        let mut out = [0u8; 1];
        let answer =
            tokio::time::timeout(Duration::from_millis(50), client_side.read(&mut out)).await;
        assert!(answer.is_err(), "a blackholed connection wrote something");

        client_side
            .write_all(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();
        let input = tokio::time::timeout(Duration::from_millis(50), shim.read(&mut out)).await;
        assert!(input.is_err(), "a blackholed connection delivered input");

        drop(client_side);
        let eof = shim.read(&mut out).await.unwrap();
        assert_eq!(eof, 0, "client close is still reported");
    }

    #[tokio::test]
    async fn injection_waits_for_a_frame_boundary_across_writes() {
        let (server_side, mut client_side) = tokio::io::duplex(1024);
        let control = Arc::new(FrameControl::new(5, false));
        let mut shim = FrameShim::new(server_side, control.clone());
        let data = [0, 0, 4, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9];
        shim.write_all(&data[..6]).await.unwrap();
        control.request_max_streams(7);
        shim.flush().await.unwrap();
        shim.write_all(&data[6..]).await.unwrap();
        shim.flush().await.unwrap();
        let mut received = vec![0u8; data.len() + 15];
        client_side.read_exact(&mut received).await.unwrap();
        assert_eq!(&received[..data.len()], &data);
        assert_eq!(&received[data.len()..], &max_streams_settings_frame(7));
        assert_eq!(
            control.ledger().unacked.front(),
            Some(&SettingsOrigin::Injected(7))
        );
    }
}
