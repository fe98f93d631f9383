//! One HTTP/2 connection's driver task: admits requests up to the server's
//! SETTINGS_MAX_CONCURRENT_STREAMS, tracks each stream by id with its own deadline, and turns
//! every answer, error or expiry into exactly one outcome (or one transparent retry when the
//! request provably never reached the server).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use h2::client::{ResponseFuture, SendRequest};
use h2::{PingPong, Reason, SendStream};
use http::{HeaderMap, HeaderValue, Uri};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::shared::{ConnState, PoolShared};
use crate::outcome::{Outcome, OutcomeKind, APNS_ID, MAX_ERROR_BODY, MAX_KEPT_BODY};
use crate::request::Request;
use crate::tracker::{must_rotate, InFlight, Tracker};

type Answer = Result<(u16, HeaderMap, Bytes), h2::Error>;
type AnswerFuture = Pin<Box<dyn std::future::Future<Output = (u32, Answer)> + Send>>;

/// At most this many streams opened, and answers taken, in one turn of the driver loop beyond
/// the event that woke it. One turn per event costs a full `select!` (five futures made,
/// polled and dropped) and a wake-up of the connection task per stream; a batch shares them,
/// so h2 writes the HEADERS of many streams in one TLS record and one syscall. Bounded, so a
/// busy connection still sees shutdown, deadlines and PING failures promptly.
const TURN_BATCH: usize = 64;

/// Why a connection stopped taking new requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// Still taking requests.
    No,
    /// GOAWAY, connection error, stream ids nearly exhausted: finish what is open.
    Retiring,
    /// PING unanswered or timeouts with no success: dead; open streams run to their deadlines.
    Dead,
}

pub(crate) struct Driver {
    pool: Arc<PoolShared>,
    state: Arc<ConnState>,
    send: SendRequest<Bytes>,
    io_task: JoinHandle<Result<(), h2::Error>>,
    /// Cancelled when the pool retires all its connections.
    retire_signal: CancellationToken,
    tracker: Tracker<SendStream<Bytes>>,
    answers: FuturesUnordered<AnswerFuture>,
    /// A request taken from the queue, waiting for h2 to accept a new stream.
    pending: Option<Request>,
    drain: Drain,
    timeouts_since_success: u32,
    last_success: Instant,
    /// Every stream slot was taken at the last look (to see it fill up).
    was_full: bool,
    /// Outcomes of this loop turn, handed to the sink together.
    done: Vec<Outcome>,
}

impl Driver {
    pub(crate) fn new(
        pool: Arc<PoolShared>,
        state: Arc<ConnState>,
        send: SendRequest<Bytes>,
        io_task: JoinHandle<Result<(), h2::Error>>,
        retire_signal: CancellationToken,
    ) -> Self {
        Driver {
            pool,
            state,
            send,
            io_task,
            retire_signal,
            tracker: Tracker::new(),
            answers: FuturesUnordered::new(),
            pending: None,
            drain: Drain::No,
            timeouts_since_success: 0,
            last_success: Instant::now(),
            was_full: false,
            done: Vec::new(),
        }
    }

    /// Run until the connection is retired and every stream it opened has an outcome.
    pub(crate) async fn run(mut self, ping: Option<PingPong>) {
        let ping_failed = Arc::new(Notify::new());
        let pinger = ping.map(|ping| {
            tokio::spawn(ping_loop(
                ping,
                self.pool.cfg.ping_interval,
                self.pool.cfg.ping_timeout,
                ping_failed.clone(),
            ))
        });
        let mut io_finished = false;
        loop {
            self.publish_capacity();
            if self.drain != Drain::No && self.tracker.is_empty() && self.pending.is_none() {
                break;
            }
            let can_take =
                self.drain == Drain::No && self.pending.is_none() && self.has_free_slot();
            tokio::select! {
                biased;
                () = self.pool.shutdown.cancelled(), if self.drain == Drain::No => {
                    self.retire(Drain::Retiring);
                }
                () = self.retire_signal.cancelled(), if self.drain == Drain::No => {
                    self.retire(Drain::Retiring);
                }
                // The pool shrank past this connection: drain it like a GOAWAY would.
                () = self.state.retire.cancelled(), if self.drain == Drain::No => {
                    self.retire(Drain::Retiring);
                }
                Some((stream_id, answer)) = self.answers.next(), if !self.answers.is_empty() => {
                    self.on_answer(stream_id, answer);
                }
                (stream_id, entry) = self.tracker.next_expired() => {
                    self.on_deadline(stream_id, entry);
                }
                result = &mut self.io_task, if !io_finished => {
                    io_finished = true;
                    self.on_connection_closed(&result);
                }
                () = ping_failed.notified(), if self.drain != Drain::Dead => {
                    self.pool.stats.ping_failures.fetch_add(1, Ordering::Relaxed);
                    self.retire(Drain::Dead);
                }
                ready = poll_fn(|cx| self.send.poll_ready(cx)), if self.pending.is_some() => {
                    if let Some(request) = self.pending.take() {
                        self.open_when_ready(ready, request);
                    }
                }
                request = self.pool.queue.pop(), if can_take => {
                    self.pending = Some(request);
                }
            }
            self.take_ready_answers();
            self.open_ready_streams();
            self.flush();
        }
        // A request taken for this connection but never sent goes back to the pool.
        if let Some(request) = self.pending.take() {
            self.pool.queue.push_front(request);
        }
        if let Some(pinger) = pinger {
            pinger.abort();
        }
        // Drop closes the socket and tells the pool.
    }

    /// Answers that are already in, without waiting. The no-op waker is safe: the loop's
    /// `select!` polls `answers` again with the task's waker before it sleeps.
    fn take_ready_answers(&mut self) {
        for _ in 0..TURN_BATCH {
            match self.answers.next().now_or_never() {
                Some(Some((stream_id, answer))) => self.on_answer(stream_id, answer),
                _ => return,
            }
        }
    }

    /// Fill free stream slots from the queue while h2 takes new streams at once. Whatever has to
    /// wait (h2 not ready, queue empty) is left to the loop's `select!`, which registers the
    /// task's waker; the no-op waker here never stands in for it.
    fn open_ready_streams(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..TURN_BATCH {
            if self.retire_requested() {
                // Seen here, not only at the next `select!`: a caller that retires the
                // connections and then submits (a key rotation's resend) must never find its
                // request on a retired connection.
                self.retire(Drain::Retiring);
            }
            if self.drain != Drain::No || !self.has_free_slot() {
                return;
            }
            let Some(request) = self.pending.take().or_else(|| self.pool.queue.try_pop()) else {
                return;
            };
            match self.send.poll_ready(&mut cx) {
                Poll::Pending => {
                    self.pending = Some(request);
                    return;
                }
                Poll::Ready(ready) => self.open_when_ready(ready, request),
            }
        }
    }

    /// Open `request`'s stream once h2 said whether it takes one (`ready`).
    fn open_when_ready(&mut self, ready: Result<(), h2::Error>, request: Request) {
        match ready {
            Ok(()) => self.open_stream(request),
            Err(err) => {
                self.retire(Drain::Retiring);
                self.note_connection_error(&err);
                self.retry_or_fail(request, &err, false);
            }
        }
    }

    /// Whether the pool asked this connection to stop taking work (shutdown, retire all, or
    /// a shrink past it): the `select!` branches' conditions, read without waiting.
    fn retire_requested(&self) -> bool {
        self.drain == Drain::No
            && (self.pool.shutdown.is_cancelled()
                || self.retire_signal.is_cancelled()
                || self.state.retire.is_cancelled())
    }

    fn has_free_slot(&self) -> bool {
        self.tracker.len() < self.stream_limit()
    }

    /// Our cap or the server's current SETTINGS_MAX_CONCURRENT_STREAMS, whichever is lower.
    fn stream_limit(&self) -> usize {
        self.send
            .current_max_send_streams()
            .min(self.pool.cfg.max_streams_per_connection)
    }

    fn publish_capacity(&mut self) {
        // Read on every turn: a SETTINGS frame may change it at any time.
        self.state
            .peer_limit
            .store(self.send.current_max_send_streams(), Ordering::Relaxed);
        self.state
            .in_flight
            .store(self.tracker.len(), Ordering::Relaxed);
        let limit = self.stream_limit();
        self.state.limit.store(limit, Ordering::Relaxed);
        // Just filled up while the pool may grow: the manager opens the next connection now,
        // not on its next tick (a 4-connection ramp took 100 ms of a 2 s send). Only on the
        // transition, and never once the pool is at its size, so a full pool wakes nobody.
        let full = self.tracker.len() >= limit;
        if full && !self.was_full && self.pool.room_to_grow.load(Ordering::Relaxed) {
            self.pool.conn_changed.notify_one();
        }
        self.was_full = full;
    }

    fn open_stream(&mut self, mut request: Request) {
        let http_request = match self.build_request(&request) {
            Ok((r, generation)) => {
                request.auth_generation = generation;
                r
            }
            Err(message) => {
                let mut outcome = self.outcome_for(&request, OutcomeKind::Failed, 0);
                outcome.error = Some(message);
                self.done.push(outcome);
                return;
            }
        };
        let body = request.template.body_for(&request.token);
        match self.send.send_request(http_request, false) {
            Ok((response, mut stream)) => {
                let stream_id = response.stream_id().as_u32();
                request.attempts += 1;
                // Data goes out after HEADERS; h2 buffers it until the flow-control window allows.
                if let Err(err) = stream.send_data(body, true) {
                    self.fail_after_send(request, stream_id, &err);
                    return;
                }
                // Kept bodies (OAuth tokens, APNs channel lists) are data, not diagnostics.
                let limit = if request.template.keep_body {
                    MAX_KEPT_BODY
                } else {
                    MAX_ERROR_BODY
                };
                self.tracker
                    .insert(stream_id, request, stream, self.pool.cfg.request_timeout);
                self.answers
                    .push(Box::pin(read_answer(stream_id, response, limit)));
                if must_rotate(stream_id, self.pool.cfg.stream_id_limit) {
                    self.pool.stats.rotations.fetch_add(1, Ordering::Relaxed);
                    self.retire(Drain::Retiring);
                }
            }
            Err(err) => {
                // send_request failed: no HEADERS were written, the request never left us.
                self.retire(Drain::Retiring);
                self.note_connection_error(&err);
                self.retry_or_fail(request, &err, false);
            }
        }
    }

    /// The HTTP request for `request`, and the generation of the credential it carries.
    fn build_request(&self, request: &Request) -> Result<(http::Request<()>, u64), String> {
        let template = &request.template;
        let uri = Uri::builder()
            .scheme("https")
            .authority(self.pool.authority.clone())
            .path_and_query(self.pool.full_path(template.path_for(&request.token)))
            .build()
            .map_err(|e| format!("cannot build request URI: {e}"))?;
        let mut http_request = http::Request::new(());
        *http_request.method_mut() = template.method.clone();
        *http_request.uri_mut() = uri;
        let headers = http_request.headers_mut();
        for (name, value) in &template.headers {
            headers.insert(name.clone(), value.clone());
        }
        let (auth, generation) = self.pool.authorization();
        if let Some(auth) = auth {
            headers.insert(http::header::AUTHORIZATION, indexable_credential(auth));
        }
        if let Some(apns_id) = &request.apns_id {
            headers.insert(APNS_ID, apns_id.clone());
        }
        Ok((http_request, generation))
    }

    fn on_answer(&mut self, stream_id: u32, answer: Answer) {
        let Some(entry) = self.tracker.complete(stream_id) else {
            // Already expired and reported as a timeout: a late answer changes nothing. Only a
            // response the server sent counts as one; the error h2 hands back for our own
            // RST_STREAM (or a connection that went down since) is no answer.
            if answer.is_ok() {
                self.pool.stats.late_answers.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        match answer {
            Ok((status, headers, body)) => {
                self.pool.observe_round_trip(entry.opened_at.elapsed());
                self.timeouts_since_success = 0;
                self.last_success = Instant::now();
                let mut outcome = self.outcome_for(&entry.request, OutcomeKind::Failed, stream_id);
                let template = &entry.request.template;
                outcome.keep_headers(&headers, &template.keep_headers);
                outcome.apply_response(status, &headers, body, template.keep_body);
                self.done.push(outcome);
            }
            Err(err) => {
                if err.is_go_away() {
                    self.retire(Drain::Retiring);
                    self.note_connection_error(&err);
                }
                self.fail_after_send(entry.request, stream_id, &err);
            }
        }
    }

    /// A stream's own deadline passed: reset it (RST_STREAM CANCEL) and report a timeout.
    fn on_deadline(&mut self, stream_id: u32, mut entry: InFlight<SendStream<Bytes>>) {
        entry.stream.send_reset(Reason::CANCEL);
        self.pool.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        self.timeouts_since_success += 1;
        let waited = entry.opened_at.elapsed();
        let pool = self.pool.clone();
        let cfg = &pool.cfg;
        if self.timeouts_since_success >= cfg.dead_after_timeouts
            && self.last_success.elapsed() >= cfg.request_timeout
            && self.drain != Drain::Dead
        {
            self.pool
                .stats
                .dead_by_timeouts
                .fetch_add(1, Ordering::Relaxed);
            self.retire(Drain::Dead);
        }
        if cfg.retry_uncertain && entry.request.attempts <= cfg.max_retries {
            self.pool.stats.retries.fetch_add(1, Ordering::Relaxed);
            let mut request = entry.request;
            request.maybe_processed = true;
            self.pool.queue.push_front(request);
            return;
        }
        let mut outcome = self.outcome_for(&entry.request, OutcomeKind::Timeout, stream_id);
        outcome.maybe_delivered = true;
        outcome.error = Some(format!(
            "no response within {:.3}s on stream {stream_id} of connection {} (stream reset with CANCEL)",
            waited.as_secs_f64(),
            self.state.id
        ));
        self.done.push(outcome);
    }

    fn on_connection_closed(
        &mut self,
        result: &Result<Result<(), h2::Error>, tokio::task::JoinError>,
    ) {
        self.retire(Drain::Retiring);
        if let Ok(Err(err)) = result {
            self.note_connection_error(err);
        }
        // Open streams now fail one by one through their answer futures (h2 ends them on EOF);
        // their deadlines still stand in case one never does.
    }

    /// The request was written (or may have been): report it, unless the error proves the
    /// server never processed it (GOAWAY above last_stream_id, REFUSED_STREAM).
    fn fail_after_send(&mut self, mut request: Request, stream_id: u32, err: &h2::Error) {
        let never_processed = (err.is_go_away() && err.is_remote())
            || (err.is_reset() && err.is_remote() && err.reason() == Some(Reason::REFUSED_STREAM));
        if err.is_reset() && err.is_remote() {
            self.pool.stats.resets.fetch_add(1, Ordering::Relaxed);
        }
        if never_processed || self.pool.cfg.retry_uncertain {
            // An attempt that may have been processed taints every later outcome of the request.
            request.maybe_processed |= !never_processed;
            self.retry_or_fail_at(request, err, !never_processed, stream_id);
        } else {
            let mut outcome = self.outcome_for(&request, OutcomeKind::Failed, stream_id);
            outcome.maybe_delivered = true;
            outcome.error = Some(format!(
                "no response, the request may have been delivered: {err}"
            ));
            self.done.push(outcome);
        }
    }

    fn retry_or_fail(&mut self, request: Request, err: &h2::Error, maybe_delivered: bool) {
        self.retry_or_fail_at(request, err, maybe_delivered, 0);
    }

    fn retry_or_fail_at(
        &mut self,
        request: Request,
        err: &h2::Error,
        maybe_delivered: bool,
        stream_id: u32,
    ) {
        if request.attempts <= self.pool.cfg.max_retries {
            self.pool.stats.retries.fetch_add(1, Ordering::Relaxed);
            self.pool.queue.push_front(request);
        } else {
            let mut outcome = self.outcome_for(&request, OutcomeKind::Failed, stream_id);
            outcome.maybe_delivered |= maybe_delivered;
            outcome.error = Some(format!(
                "gave up after {} attempts: {err}",
                request.attempts
            ));
            self.done.push(outcome);
        }
    }

    fn note_connection_error(&self, err: &h2::Error) {
        if err.is_go_away() && err.is_remote() {
            self.pool.stats.goaways.fetch_add(1, Ordering::Relaxed);
        }
        self.pool.note_error(err.to_string());
    }

    fn retire(&mut self, why: Drain) {
        if self.drain == Drain::No {
            self.state.accepting.store(false, Ordering::Release);
            // The pool may need a replacement for queued work.
            self.pool.conn_changed.notify_one();
        }
        if why == Drain::Dead || self.drain == Drain::No {
            self.drain = why;
        }
        if why == Drain::Dead {
            // No answers will come: end the socket now. Open streams fail through h2 (broken
            // pipe, reported as maybe delivered) or reach their own deadlines.
            self.io_task.abort();
        }
    }

    fn outcome_for(&self, request: &Request, kind: OutcomeKind, stream_id: u32) -> Outcome {
        request.outcome(kind, self.state.id, stream_id)
    }

    fn flush(&mut self) {
        if !self.done.is_empty() {
            // The gauge first: a caller who has seen every outcome must not read it stale.
            self.state
                .in_flight
                .store(self.tracker.len(), Ordering::Relaxed);
            // The next turn's vector sized like this one's, so it does not regrow outcome by
            // outcome (an outcome is a few hundred bytes, each doubling a copy).
            let capacity = self.done.len();
            self.pool.complete(std::mem::replace(
                &mut self.done,
                Vec::with_capacity(capacity),
            ));
        }
    }
}

impl Drop for Driver {
    /// Ending with work in hand (a panic in this task, or the runtime shutting down) still
    /// gives every request exactly one outcome; after a normal run there is none left.
    fn drop(&mut self) {
        if let Some(request) = self.pending.take() {
            let mut outcome = self.outcome_for(&request, OutcomeKind::Failed, 0);
            outcome.error = Some("not sent: the engine stopped".to_owned());
            self.done.push(outcome);
        }
        for (stream_id, entry) in self.tracker.drain() {
            let mut outcome = self.outcome_for(&entry.request, OutcomeKind::Failed, stream_id);
            outcome.maybe_delivered = true;
            outcome.error =
                Some("no response: the engine stopped while the request was open".to_owned());
            self.done.push(outcome);
        }
        self.flush();
        // Dropping the h2 Connection closes the socket.
        self.io_task.abort();
        self.state.closed.store(true, Ordering::Release);
        self.state.accepting.store(false, Ordering::Release);
        self.pool.conn_changed.notify_one();
    }
}

/// Shorter `authorization` values stay never-indexed: HPACK matches whole values, so only a
/// short, low-entropy one could be confirmed by guessing (the threshold is nghttp2's).
const MIN_INDEXED_CREDENTIAL: usize = 20;

/// The pool's credential as one request carries it. The pool keeps it marked sensitive, so a
/// stray `Debug` never shows it; on the wire a JWT or OAuth token is HPACK-indexed, sent once
/// per connection and credential and then as a table index (h2 is patched for this: see
/// rust/vendor/h2/PATCH.md and docs/hpack.md).
fn indexable_credential(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(value.len() < MIN_INDEXED_CREDENTIAL);
    value
}

/// Await the response headers and the (small) body, releasing flow-control capacity as we go
/// so thousands of error bodies never stall the connection window.
async fn read_answer(stream_id: u32, response: ResponseFuture, limit: usize) -> (u32, Answer) {
    let answer = async {
        let response = response.await?;
        let (parts, mut body) = response.into_parts();
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            let room = limit.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        Ok((parts.status.as_u16(), parts.headers, buf.freeze()))
    }
    .await;
    (stream_id, answer)
}

/// PING the server every `interval`; a PING not acknowledged within `timeout` means the
/// connection is dead even if TCP is up (blackholed server, broken middlebox).
async fn ping_loop(mut ping: PingPong, interval: Duration, timeout: Duration, failed: Arc<Notify>) {
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, ping.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            // The connection is closing; the driver learns that from the connection task.
            Ok(Err(_)) => return,
            Err(_elapsed) => {
                failed.notify_one();
                return;
            }
        }
    }
}
