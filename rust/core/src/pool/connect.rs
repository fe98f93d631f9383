//! Opening one connection: TCP, TLS with ALPN h2, the HTTP/2 handshake and a first PING.

use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::task::AbortOnDropHandle;

use super::shared::PoolShared;

/// A connection the server has answered on: its request handle, I/O task and PING handle.
pub(super) struct Connected {
    pub send: h2::client::SendRequest<Bytes>,
    pub io_task: JoinHandle<Result<(), h2::Error>>,
    pub ping: Option<h2::PingPong>,
}

/// TCP connect (fresh DNS lookup each time, as Apple asks), TLS with ALPN h2, HTTP/2 handshake.
pub(super) async fn connect(pool: &PoolShared) -> Result<Connected, String> {
    let cfg = &pool.cfg;
    let target = format!("{}:{}", pool.host, pool.port);
    let attempt = async {
        let tcp = TcpStream::connect((pool.host.as_str(), pool.port))
            .await
            .map_err(|e| format!("cannot connect to {target}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let tls = pool
            .connector
            .connect(pool.server_name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake with {target} failed: {e}"))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(format!(
                "{target} does not speak HTTP/2 (ALPN h2 not negotiated)"
            ));
        }
        let streams = cfg.max_streams_per_connection;
        let (send, mut connection) = h2::client::Builder::new()
            .enable_push(false)
            // Until the server's SETTINGS arrive, assume APNs' token-auth start of 1 stream.
            .initial_max_send_streams(1)
            .initial_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            // Deadline resets and late answers must never trip h2's reset limits (engine notes).
            .max_concurrent_reset_streams(streams.max(1024))
            .reset_stream_duration(cfg.request_timeout.max(Duration::from_secs(5)))
            .max_local_error_reset_streams(None)
            .handshake::<_, Bytes>(tls)
            .await
            .map_err(|e| format!("HTTP/2 handshake with {target} failed: {e}"))?;
        let mut ping = connection.ping_pong();
        // Aborted if this attempt fails or times out: no orphaned connection task.
        let mut io_task = AbortOnDropHandle::new(tokio::spawn(connection));
        // One PING round trip before any request: the server's SETTINGS (its stream limit)
        // arrive first, and a server that refuses us after the handshake (TLS 1.3 checks the
        // client certificate only then) fails the connect, so no request is written into it.
        if let Some(ping) = ping.as_mut() {
            if let Err(e) = ping.ping(h2::Ping::opaque()).await {
                let detail = error_within(&mut io_task, Duration::from_millis(100)).await;
                let detail = detail.unwrap_or_else(|| e.to_string());
                return Err(format!(
                    "{target} closed the connection before serving it: {detail}"
                ));
            }
        }
        let io_task = io_task.detach();
        Ok(Connected {
            send,
            io_task,
            ping,
        })
    };
    match tokio::time::timeout(cfg.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "connecting to {target} took longer than {:?}",
            cfg.connect_timeout
        )),
    }
}

/// The connection task's error, if it ends within `wait`.
async fn error_within(
    task: &mut AbortOnDropHandle<Result<(), h2::Error>>,
    wait: Duration,
) -> Option<String> {
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(Err(e))) => Some(e.to_string()),
        _ => None,
    }
}
