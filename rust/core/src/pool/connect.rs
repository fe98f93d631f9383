//! Opening one connection: TCP, TLS with ALPN h2 (or the pool's own transport), the HTTP/2
//! handshake and a first PING; or, on a pool that allows it (Web Push), HTTP/1.1 when the
//! server does not pick h2.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::task::AbortOnDropHandle;

use super::shared::PoolShared;

/// A new connection, by the protocol the server chose.
pub(super) enum Link {
    H2(Connected),
    Http1(super::http1::Connected),
}

/// A connection the server has answered on: its request handle, I/O task and PING handle.
pub(super) struct Connected {
    pub send: h2::client::SendRequest<Bytes>,
    pub io_task: JoinHandle<Result<(), h2::Error>>,
    pub ping: Option<h2::PingPong>,
}

/// TCP connect (fresh DNS lookup each time, as Apple asks), TLS with ALPN h2, HTTP/2 handshake;
/// or, for a pool with its own [`Transport`](crate::Transport), the handshake over its stream.
pub(super) async fn connect(pool: &PoolShared) -> Result<Link, String> {
    let cfg = &pool.cfg;
    let target = format!("{}:{}", pool.host, pool.port);
    let attempt = async {
        if let Some(transport) = &pool.transport {
            let io = transport
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {target}: {e}"))?;
            return handshake(pool, io, &target).await.map(Link::H2);
        }
        let tcp = TcpStream::connect((pool.host.as_str(), pool.port))
            .await
            .map_err(|e| format!("cannot connect to {target}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let tls = pool
            .connector
            .connect(pool.server_name.clone(), tcp)
            .await
            .map_err(|e| tls_failure(&e, &target))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            if cfg.allow_http1 {
                return super::http1::handshake(tls, &target).await.map(Link::Http1);
            }
            return Err(no_http2(&target));
        }
        handshake(pool, tls, &target).await.map(Link::H2)
    };
    match tokio::time::timeout(cfg.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "connecting to {target} took longer than {:?}",
            cfg.connect_timeout
        )),
    }
}

fn no_http2(target: &str) -> String {
    format!("{target} does not speak HTTP/2 (ALPN h2 not negotiated)")
}

/// A failed TLS handshake, in words. A server that knows ALPN but none of the protocols we
/// offer (an HTTP/1.1-only server to an h2-only pool) refuses the handshake itself: that is
/// the same "no HTTP/2" as a server that ignores ALPN.
fn tls_failure(err: &std::io::Error, target: &str) -> String {
    let refused_alpn = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        == Some(&rustls::Error::AlertReceived(
            rustls::AlertDescription::NoApplicationProtocol,
        ));
    if refused_alpn {
        no_http2(target)
    } else {
        format!("TLS handshake with {target} failed: {err}")
    }
}

/// The HTTP/2 handshake and a first PING over an established stream.
async fn handshake<T>(pool: &PoolShared, io: T, target: &str) -> Result<Connected, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = &pool.cfg;
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
        .handshake::<_, Bytes>(io)
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
    Ok(Connected {
        send,
        io_task: io_task.detach(),
        ping,
    })
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
