//! One TLS + HTTP/2 connection: the accept loop, per-stream handling and faults. What each
//! request gets is decided per protocol (see `route`); this module carries it out.

use std::future::{poll_fn, Future};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::{Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::reply::{Action, Reply};
use crate::route::Route;
use crate::state::{ConnectionHandle, Shared};
use crate::transport::shim::{FrameControl, FrameShim};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// h2's own stream limit. The advertised limit is rewritten by the shim and enforced by
/// `admit`, so h2 must never refuse first (and must allow live raises).
const H2_STREAM_LIMIT: u32 = 1 << 20;
/// Windows large enough that thousands of small requests never wait for WINDOW_UPDATE.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;
const RESET_STREAM_ALLOWANCE: usize = 10_000;
/// A stream the client reset just before opening a new one may not have been noticed by
/// its task yet; wait this long before refusing a stream over the limit.
const ADMISSION_GRACE: Duration = Duration::from_millis(5);

pub(crate) async fn serve_connection(tcp: TcpStream, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    // Only a latency tweak; a failure changes nothing about correctness.
    let _ = tcp.set_nodelay(true);
    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
        return;
    };
    // rustls only completes the handshake with a verified chain when one is required.
    let has_client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|chain| !chain.is_empty());
    if has_client_cert {
        shared.counters.cert_connection();
    }
    if shared.http1_only {
        crate::transport::http1::serve_http1(tls, shared).await;
        return;
    }
    serve_h2(tls, shared, has_client_cert).await;
}

/// HTTP/2 over an established stream (TLS from the accept loop, or an in-memory pipe in tests).
pub(crate) async fn serve_h2<T>(io: T, shared: Arc<Shared>, has_client_cert: bool)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let configured = shared.max_concurrent_streams();
    let initial_limit = if shared.start_at_one { 1 } else { configured };
    let frames = Arc::new(FrameControl::new(initial_limit, true));
    let io = FrameShim::new(io, frames.clone());
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(H2_STREAM_LIMIT)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_pending_accept_reset_streams(RESET_STREAM_ALLOWANCE)
        .max_concurrent_reset_streams(RESET_STREAM_ALLOWANCE)
        .max_local_error_reset_streams(None)
        .handshake::<_, Bytes>(io);
    let Ok(Ok(mut conn)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await else {
        return;
    };
    shared.counters.connection_accepted();

    let handle = Arc::new(ConnectionHandle::new(
        frames,
        !shared.start_at_one,
        has_client_cert,
    ));
    let _registration = shared.register_connection(handle.clone());
    // Dropped when this function returns; parked streams wait for that.
    let (_closed_tx, closed_rx) = watch::channel(());
    let mut accepted: u64 = 0;
    loop {
        tokio::select! {
            biased;
            () = handle.wake.notified() => {
                if handle.close_requested.load(Ordering::Acquire) {
                    // Dropping the connection closes TCP without a GOAWAY.
                    break;
                }
                if handle.goaway_requested.swap(false, Ordering::AcqRel) {
                    conn.abrupt_shutdown(Reason::NO_ERROR);
                }
                // Otherwise a SETTINGS injection: the next poll below flushes it.
            }
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    // The answer delay counts from here, the request's arrival: the task's
                    // start, the body and the checks must not add to it.
                    let arrived = tokio::time::Instant::now();
                    accepted += 1;
                    if shared.goaway_after_streams == Some(accepted) {
                        conn.graceful_shutdown();
                    }
                    tokio::spawn(handle_stream(
                        request,
                        respond,
                        arrived,
                        shared.clone(),
                        handle.clone(),
                        closed_rx.clone(),
                    ));
                }
                Some(Err(_)) | None => break,
            },
        }
    }
}

/// Counts this stream as open; `None` means it must be refused.
struct OpenStreamSlot {
    conn: Arc<ConnectionHandle>,
    held: bool,
}

impl OpenStreamSlot {
    fn release(&mut self) {
        if self.held {
            self.held = false;
            self.conn.open_streams.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for OpenStreamSlot {
    fn drop(&mut self) {
        self.release();
    }
}

async fn admit(
    conn: &Arc<ConnectionHandle>,
    shared: &Shared,
    stream_id: u32,
) -> Option<OpenStreamSlot> {
    let limit = u64::from(conn.frames.limit_for_stream(stream_id));
    for attempt in 0..2 {
        let open = conn.open_streams.fetch_add(1, Ordering::AcqRel) + 1;
        if open <= limit {
            shared.counters.observe_open_streams(open);
            return Some(OpenStreamSlot {
                conn: conn.clone(),
                held: true,
            });
        }
        conn.open_streams.fetch_sub(1, Ordering::AcqRel);
        if attempt == 0 {
            tokio::time::sleep(ADMISSION_GRACE).await;
        } else {
            // Recorded so tests can see that a client overran the advertised limit.
            shared.counters.observe_open_streams(open);
        }
    }
    None
}

async fn handle_stream(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    arrived: tokio::time::Instant,
    shared: Arc<Shared>,
    conn: Arc<ConnectionHandle>,
    closed: watch::Receiver<()>,
) {
    let stream_id = respond.stream_id().as_u32();
    let Some(mut slot) = admit(&conn, &shared, stream_id).await else {
        shared.counters.stream_refused();
        respond.send_reset(Reason::REFUSED_STREAM);
        return;
    };
    let (parts, body) = request.into_parts();
    let route = Route::of(parts.uri.path());
    let Ok((body, body_len)) = read_body(body, route.body_limit(&parts)).await else {
        // Reset by the client or the connection died: nothing to answer.
        return;
    };
    let action = route.handle(&parts, &body, body_len, &shared, &conn);

    if !shared.response_delay.is_zero()
        && !wait_or_reset(
            &mut respond,
            tokio::time::sleep_until(arrived + shared.response_delay),
        )
        .await
    {
        return;
    }
    match action {
        Action::Reply(reply) => answer(&mut respond, reply, slot, &conn, &shared),
        Action::Delayed(delay, reply) => {
            if wait_or_reset(&mut respond, tokio::time::sleep(delay)).await {
                answer(&mut respond, reply, slot, &conn, &shared);
            }
        }
        Action::Hang => park_until_closed(respond, slot, closed).await,
        Action::Reset(reason) => {
            slot.release();
            respond.send_reset(reason);
        }
        Action::GoAway => {
            conn.request_goaway();
            park_until_closed(respond, slot, closed).await;
        }
        Action::CloseConnection => {
            conn.request_close();
            park_until_closed(respond, slot, closed).await;
        }
        Action::Blackhole => {
            conn.frames.blackhole();
            park_until_closed(respond, slot, closed).await;
        }
    }
}

/// Reads the whole body, keeping at most `limit + 1` bytes (enough to judge it).
async fn read_body(mut body: RecvStream, limit: usize) -> Result<(Bytes, usize), h2::Error> {
    let mut kept = BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        total += chunk.len();
        // Only fails if the stream is already gone, which the next read reports.
        let _ = body.flow_control().release_capacity(chunk.len());
        let room = (limit + 1).saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok((kept.freeze(), total))
}

/// Runs `wait` unless the client resets the stream (or the connection ends) first.
async fn wait_or_reset(respond: &mut SendResponse<Bytes>, wait: impl Future) -> bool {
    tokio::select! {
        _ = wait => true,
        _ = poll_fn(|cx| respond.poll_reset(cx)) => false,
    }
}

/// Keeps the stream unanswered (dropping `respond` would send RST_STREAM) until the
/// client resets it or the connection ends.
async fn park_until_closed(
    mut respond: SendResponse<Bytes>,
    slot: OpenStreamSlot,
    mut closed: watch::Receiver<()>,
) {
    // `changed` fails once the connection task drops the sender.
    wait_or_reset(&mut respond, closed.changed()).await;
    drop(slot);
}

fn answer(
    respond: &mut SendResponse<Bytes>,
    reply: Reply,
    mut slot: OpenStreamSlot,
    conn: &ConnectionHandle,
    shared: &Shared,
) {
    // Free the slot first: the client may open its next stream as soon as it sees this.
    slot.release();
    let succeeded = reply.status == StatusCode::OK;
    let mut response = Response::new(());
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    let end_of_stream = reply.body.is_empty();
    // Both fail only if the client already reset the stream.
    if let Ok(mut stream) = respond.send_response(response, end_of_stream) {
        if !end_of_stream {
            let _ = stream.send_data(reply.body, true);
        }
    }
    // APNs style: the first success on a connection raises its stream limit.
    if succeeded && !conn.limit_raised.swap(true, Ordering::AcqRel) {
        conn.set_max_streams(shared.max_concurrent_streams());
    }
}
