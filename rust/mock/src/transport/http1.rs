//! A Web Push push service that speaks only HTTP/1.1 (ALPN `http/1.1`): hyper's server, one
//! request at a time per keep-alive connection, judged and decrypted exactly like the HTTP/2
//! services (`crate::webpush`). Faults that have no HTTP/1.1 form (resets, GOAWAY, blackhole)
//! close the connection without an answer; `goaway_after_streams` becomes `Connection: close`
//! on that answer (the HTTP/1.1 way to retire a connection).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::CONNECTION;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Action, Reply};
use crate::state::Shared;
use crate::webpush;

/// Why a request gets no answer: the connection is closed instead.
#[derive(Debug)]
struct NoAnswer;

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed without an answer")
    }
}

impl std::error::Error for NoAnswer {}

/// Serves HTTP/1.1 keep-alive over an established (TLS) stream until either side closes it.
pub(crate) async fn serve_http1<T>(io: T, shared: Arc<Shared>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.counters.connection_accepted();
    let served = Arc::new(AtomicU64::new(0));
    let service = service_fn(move |request| {
        let nth = served.fetch_add(1, Ordering::Relaxed) + 1;
        let last = shared.goaway_after_streams == Some(nth);
        answer(request, shared.clone(), last)
    });
    // An error here is the client going away or a fault closing the connection.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// The answer to one request; `last` marks it `Connection: close`.
async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    last: bool,
) -> Result<Response<Full<Bytes>>, NoAnswer> {
    let arrived = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    if !parts.uri.path().starts_with(webpush::PATH_PREFIX) {
        return Ok(response(Reply::empty(404)));
    }
    let (body, body_len) = read_body(body, webpush::BODY_LIMIT)
        .await
        .map_err(|_| NoAnswer)?;
    let action = webpush::handle(&parts, &body, body_len, &shared);
    if !shared.response_delay.is_zero() {
        tokio::time::sleep_until(arrived + shared.response_delay).await;
    }
    let reply = match action {
        Action::Reply(reply) => reply,
        Action::Delayed(delay, reply) => {
            tokio::time::sleep(delay).await;
            reply
        }
        // Never answered; hyper drops this future when the client closes the connection.
        Action::Hang => std::future::pending().await,
        Action::Reset(_) | Action::GoAway | Action::CloseConnection | Action::Blackhole => {
            return Err(NoAnswer)
        }
    };
    let mut response = response(reply);
    if last {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}

/// Reads the whole body, keeping at most `limit + 1` bytes (enough to judge it).
async fn read_body(mut body: Incoming, limit: usize) -> Result<(Bytes, usize), hyper::Error> {
    let mut kept = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        if let Ok(chunk) = frame?.into_data() {
            total += chunk.len();
            let room = (limit + 1).saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    Ok((kept.freeze(), total))
}
