//! One HTTP/1.1 keep-alive connection (Web Push push services without HTTP/2): hyper's client
//! connection carries one request at a time, no pipelining; the pool opens up to
//! `max_connections` of them for concurrency. Same guarantees as the HTTP/2 driver: exactly one
//! outcome per request, the request deadline gives `timeout`, a request never written is
//! resent, a written one whose answer never came is `failed` with `maybe_delivered`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::shared::{ConnState, PoolShared};
use crate::outcome::{Outcome, OutcomeKind, MAX_ERROR_BODY, MAX_KEPT_BODY};
use crate::request::Request;

/// An HTTP/1.1 connection after the TLS handshake: its request handle and I/O task.
pub(super) struct Connected {
    send: SendRequest<Full<Bytes>>,
    io_task: JoinHandle<Result<(), hyper::Error>>,
}

/// Start HTTP/1.1 over an established stream (TLS negotiated `http/1.1`, or no ALPN at all).
pub(super) async fn handshake<T>(io: T, target: &str) -> Result<Connected, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = Builder::new()
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP/1.1 setup with {target} failed: {e}"))?;
    Ok(Connected {
        send,
        io_task: tokio::spawn(connection),
    })
}

/// How one exchange ended, for the connection.
enum After {
    /// The answer came and the server keeps the connection open.
    KeepOpen,
    /// No more requests on this connection (closed, timed out, `Connection: close`).
    Close,
}

/// Why an exchange has no answer.
enum Broken {
    /// hyper gave the request back: not a byte of it was written.
    NotWritten(hyper::Error),
    /// Written (or maybe written): the server may have processed it.
    AfterWrite(hyper::Error),
}

pub(super) struct Driver {
    pool: Arc<PoolShared>,
    state: Arc<ConnState>,
    send: SendRequest<Full<Bytes>>,
    io_task: JoinHandle<Result<(), hyper::Error>>,
    retire_signal: CancellationToken,
    /// The request on the wire, if any: given an outcome on drop should the task end early.
    open: Option<Request>,
}

impl Driver {
    pub(super) fn new(
        pool: Arc<PoolShared>,
        state: Arc<ConnState>,
        connected: Connected,
        retire_signal: CancellationToken,
    ) -> Self {
        // One request at a time: the pool sees a connection with a single slot.
        state.limit.store(1, Ordering::Relaxed);
        state.peer_limit.store(1, Ordering::Relaxed);
        Driver {
            pool,
            state,
            send: connected.send,
            io_task: connected.io_task,
            retire_signal,
            open: None,
        }
    }

    /// Take requests one by one until the connection is retired, closed or unusable.
    pub(super) async fn run(mut self) {
        loop {
            self.state.in_flight.store(0, Ordering::Relaxed);
            let request = tokio::select! {
                biased;
                () = self.pool.shutdown.cancelled() => break,
                () = self.retire_signal.cancelled() => break,
                () = self.state.retire.cancelled() => break,
                // The server closed the idle connection (keep-alive timeout).
                _ = &mut self.io_task => break,
                request = self.pool.queue.pop() => request,
            };
            if let Err(err) = self.send.ready().await {
                // Closed between answers: the request was never written.
                self.pool
                    .note_error(format!("HTTP/1.1 connection closed: {err}"));
                self.pool.queue.push_front(request);
                break;
            }
            match self.exchange(request).await {
                After::KeepOpen => {}
                After::Close => break,
            }
        }
        // Drop closes the socket and tells the pool.
    }

    /// Send one request and turn its answer, error or deadline into its outcome.
    async fn exchange(&mut self, mut request: Request) -> After {
        let http_request = match self.build_request(&request) {
            Ok((r, generation)) => {
                request.auth_generation = generation;
                r
            }
            Err(message) => {
                let mut outcome = self.outcome_for(&request, OutcomeKind::Failed);
                outcome.error = Some(message);
                self.pool.complete(vec![outcome]);
                return After::KeepOpen;
            }
        };
        self.state.in_flight.store(1, Ordering::Relaxed);
        // This connection just filled up: the pool may open the next one now.
        if self.pool.room_to_grow.load(Ordering::Relaxed) {
            self.pool.conn_changed.notify_one();
        }
        let limit = if request.template.keep_body {
            MAX_KEPT_BODY
        } else {
            MAX_ERROR_BODY
        };
        let opened_at = Instant::now();
        let timeout = self.pool.cfg.request_timeout;
        self.open = Some(request);
        let answer = tokio::time::timeout(
            timeout,
            answer_of(self.send.try_send_request(http_request), limit),
        )
        .await;
        let Some(mut request) = self.open.take() else {
            return After::Close;
        };
        match answer {
            Ok(Ok((status, headers, body))) => {
                request.attempts += 1;
                self.pool.observe_round_trip(opened_at.elapsed());
                let close = asks_to_close(&headers);
                let mut outcome = self.outcome_for(&request, OutcomeKind::Failed);
                let template = &request.template;
                outcome.keep_headers(&headers, &template.keep_headers);
                outcome.apply_response(status, &headers, body, template.keep_body);
                self.pool.complete(vec![outcome]);
                if close {
                    After::Close
                } else {
                    After::KeepOpen
                }
            }
            Ok(Err(Broken::NotWritten(err))) => {
                self.pool
                    .note_error(format!("HTTP/1.1 request not sent: {err}"));
                self.retry_or_fail(request, &err.to_string());
                After::Close
            }
            Ok(Err(Broken::AfterWrite(err))) => {
                request.attempts += 1;
                self.pool
                    .note_error(format!("HTTP/1.1 connection failed: {err}"));
                self.after_write_failure(request, &err);
                After::Close
            }
            Err(_elapsed) => {
                // An unanswered HTTP/1.1 request blocks the connection for good: drop it.
                request.attempts += 1;
                self.on_deadline(request, opened_at);
                After::Close
            }
        }
    }

    /// The request line and headers for `request` (origin-form target plus `Host`), and the
    /// generation of the credential it carries.
    fn build_request(
        &self,
        request: &Request,
    ) -> Result<(http::Request<Full<Bytes>>, u64), String> {
        let template = &request.template;
        let path = self.pool.full_path(template.path_for(&request.token));
        let uri: http::Uri = path
            .parse()
            .map_err(|e| format!("cannot build request path: {e}"))?;
        let body = template.body_for(&request.token);
        let mut http_request = http::Request::new(Full::new(body));
        *http_request.method_mut() = template.method.clone();
        *http_request.uri_mut() = uri;
        let headers = http_request.headers_mut();
        let host = HeaderValue::from_str(self.pool.authority.as_str())
            .map_err(|e| format!("cannot build Host header: {e}"))?;
        headers.insert(http::header::HOST, host);
        for (name, value) in &template.headers {
            headers.insert(name.clone(), value.clone());
        }
        let (auth, generation) = self.pool.authorization();
        if let Some(mut auth) = auth {
            auth.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, auth);
        }
        if let Some(apns_id) = &request.apns_id {
            headers.insert("apns-id", apns_id.clone());
        }
        Ok((http_request, generation))
    }

    fn on_deadline(&mut self, request: Request, opened_at: Instant) {
        self.pool.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        let Some(request) = self.resend_uncertain(request) else {
            return;
        };
        let mut outcome = self.outcome_for(&request, OutcomeKind::Timeout);
        outcome.maybe_delivered = true;
        outcome.error = Some(format!(
            "no response within {:.3}s on HTTP/1.1 connection {} (connection closed)",
            opened_at.elapsed().as_secs_f64(),
            self.state.id
        ));
        self.pool.complete(vec![outcome]);
    }

    /// Written, then the connection failed before the answer: the server may have it.
    fn after_write_failure(&mut self, request: Request, err: &hyper::Error) {
        let Some(request) = self.resend_uncertain(request) else {
            return;
        };
        let mut outcome = self.outcome_for(&request, OutcomeKind::Failed);
        outcome.maybe_delivered = true;
        outcome.error = Some(format!(
            "no response, the request may have been delivered: {err}"
        ));
        self.pool.complete(vec![outcome]);
    }

    /// A request that may have reached the server is resent only with `retry_uncertain`
    /// (within the retry budget); otherwise it comes back for its outcome.
    fn resend_uncertain(&mut self, mut request: Request) -> Option<Request> {
        let cfg = &self.pool.cfg;
        if cfg.retry_uncertain && request.attempts <= cfg.max_retries {
            self.pool.stats.retries.fetch_add(1, Ordering::Relaxed);
            request.maybe_processed = true;
            self.pool.queue.push_front(request);
            return None;
        }
        Some(request)
    }

    /// Never written: resend on another connection, within the retry budget.
    fn retry_or_fail(&mut self, request: Request, why: &str) {
        if request.attempts <= self.pool.cfg.max_retries {
            self.pool.stats.retries.fetch_add(1, Ordering::Relaxed);
            self.pool.queue.push_front(request);
        } else {
            let mut outcome = self.outcome_for(&request, OutcomeKind::Failed);
            outcome.error = Some(format!(
                "gave up after {} attempts: {why}",
                request.attempts
            ));
            self.pool.complete(vec![outcome]);
        }
    }

    fn outcome_for(&self, request: &Request, kind: OutcomeKind) -> Outcome {
        request.outcome(kind, self.state.id, 0) // HTTP/1.1 has no streams
    }
}

impl Drop for Driver {
    /// Ending with a request on the wire (the engine stopping) still gives it its outcome.
    fn drop(&mut self) {
        if let Some(request) = self.open.take() {
            let mut outcome = self.outcome_for(&request, OutcomeKind::Failed);
            outcome.maybe_delivered = true;
            outcome.error =
                Some("no response: the engine stopped while the request was open".to_owned());
            self.pool.complete(vec![outcome]);
        }
        self.io_task.abort();
        self.state.in_flight.store(0, Ordering::Relaxed);
        self.state.closed.store(true, Ordering::Release);
        self.state.accepting.store(false, Ordering::Release);
        self.pool.conn_changed.notify_one();
    }
}

/// The answer's status, headers and (at most `limit` bytes of) body.
async fn answer_of(
    sending: impl std::future::Future<
        Output = Result<
            http::Response<Incoming>,
            hyper::client::conn::TrySendError<http::Request<Full<Bytes>>>,
        >,
    >,
    limit: usize,
) -> Result<(u16, HeaderMap, Bytes), Broken> {
    let response = match sending.await {
        Ok(response) => response,
        Err(mut err) => {
            return Err(if err.take_message().is_some() {
                Broken::NotWritten(err.into_error())
            } else {
                Broken::AfterWrite(err.into_error())
            })
        }
    };
    let (parts, mut body) = response.into_parts();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Broken::AfterWrite)?;
        if let Ok(chunk) = frame.into_data() {
            let room = limit.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    Ok((parts.status.as_u16(), parts.headers, buf.freeze()))
}

/// `Connection: close` (any case, among other tokens): the server ends the connection after
/// this answer.
fn asks_to_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_close_is_read_among_other_tokens() {
        let mut headers = HeaderMap::new();
        assert!(!asks_to_close(&headers));
        headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("keep-alive"),
        );
        assert!(!asks_to_close(&headers));
        headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade, Close"),
        );
        assert!(asks_to_close(&headers));
    }
}
