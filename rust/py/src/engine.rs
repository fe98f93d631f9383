//! `Engine`: submit batches, drain outcome batches. A byte on a socket wakes the event loop
//! (`loop.add_reader(engine.fileno(), ...)`), so asyncio, uvloop or a plain `select` all work
//! and no Python callback ever runs on an engine thread.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pushwire_core::{CompletionSink, EngineConfig, Outcome, PoolConfig, PoolId, Request};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::errors::{closed_error, config_error, to_pyerr};
use crate::options::{secs, PoolOptions};
use crate::template::Template;

/// Outcomes waiting for Python, plus the wake-up socket.
struct Inbox {
    outcomes: Mutex<Vec<Outcome>>,
    wake_pending: AtomicBool,
    wake_tx: UnixStream,
}

impl CompletionSink for Inbox {
    fn complete(&self, outcomes: Vec<Outcome>) {
        self.outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(outcomes);
        // One byte per batch of completions, not per outcome: a full socket buffer already
        // means a wake-up is pending, so a failed non-blocking write is fine.
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = (&self.wake_tx).write(&[1]);
        }
    }
}

#[pyclass(frozen, module = "pushwire._core")]
pub struct Engine {
    core: pushwire_core::Engine,
    inbox: Arc<Inbox>,
    wake_rx: UnixStream,
}

impl Engine {
    pub(crate) fn engine(&self, py: Python<'_>) -> PyResult<&pushwire_core::Engine> {
        if self.core.is_closed() {
            return Err(closed_error(py));
        }
        Ok(&self.core)
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (*, worker_threads = 1, max_in_flight = 10_000))]
    fn new(py: Python<'_>, worker_threads: usize, max_in_flight: usize) -> PyResult<Self> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let inbox = Arc::new(Inbox {
            outcomes: Mutex::new(Vec::new()),
            wake_pending: AtomicBool::new(false),
            wake_tx,
        });
        let config = EngineConfig {
            worker_threads,
            max_in_flight: max_in_flight.max(1),
        };
        // One runtime per process (per worker_threads value) for every client.
        let engine = pushwire_core::Engine::on_shared_runtime(config, inbox.clone())
            .map_err(|e| to_pyerr(py, &e, None))?;
        Ok(Engine {
            core: engine,
            inbox,
            wake_rx,
        })
    }

    /// Create a connection pool for `base_url`, tuned by `options` (a `pushwire.PoolOptions`);
    /// returns its id. The other arguments wire the pool to its client.
    #[pyo3(signature = (
        base_url, options, *, path_prefix = String::new(), ca_file = None,
        client_cert_pem = None, client_key_pem = None, identity = String::new(),
        allow_http1 = false,
    ))]
    #[allow(clippy::too_many_arguments)] // keyword arguments of a Python method
    fn add_pool(
        &self,
        py: Python<'_>,
        base_url: String,
        options: PoolOptions,
        path_prefix: String,
        ca_file: Option<PathBuf>,
        client_cert_pem: Option<Vec<u8>>,
        client_key_pem: Option<Vec<u8>>,
        identity: String,
        allow_http1: bool,
    ) -> PyResult<usize> {
        let mut cfg = PoolConfig::new(base_url);
        // Web Push pools only: HTTP/1.1 when a push service does not offer h2.
        cfg.allow_http1 = allow_http1;
        if !path_prefix.is_empty() && (!path_prefix.starts_with('/') || path_prefix.ends_with('/'))
        {
            return Err(config_error(
                py,
                "path_prefix",
                "must start with '/' and not end with '/'",
            ));
        }
        cfg.path_prefix = path_prefix;
        cfg.ca_file = ca_file;
        cfg.client_cert = match (client_cert_pem, client_key_pem) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(config_error(
                    py,
                    "client_cert_pem",
                    "client_cert_pem and client_key_pem go together",
                ))
            }
        };
        cfg.identity = identity;
        options.apply(py, &mut cfg)?;
        let engine = self.engine(py)?;
        engine
            .add_pool(cfg)
            .map(|id| id.0)
            .map_err(|e| to_pyerr(py, &e, None))
    }

    /// Set (or clear) the `authorization` header of a pool. The value is never echoed back.
    #[pyo3(signature = (pool, value))]
    fn set_authorization(&self, py: Python<'_>, pool: usize, value: Option<&str>) -> PyResult<u64> {
        self.engine(py)?
            .set_authorization(PoolId(pool), value)
            .map_err(|e| to_pyerr(py, &e, None))
    }

    /// Retire every connection of a pool; open streams finish, new connections take new work.
    fn retire_connections(&self, py: Python<'_>, pool: usize) -> PyResult<()> {
        self.engine(py)?
            .retire_connections(PoolId(pool))
            .map_err(|e| to_pyerr(py, &e, None))
    }

    /// Resize a running pool to `n` connections: extra ones drain their open streams, then
    /// close; new ones open as queued work needs them.
    fn set_max_connections(&self, py: Python<'_>, pool: usize, n: usize) -> PyResult<()> {
        self.engine(py)?
            .set_max_connections(PoolId(pool), n)
            .map_err(|e| to_pyerr(py, &e, None))
    }

    /// Free room in the in-flight window.
    fn capacity(&self) -> usize {
        if self.core.is_closed() {
            0
        } else {
            self.core.capacity()
        }
    }

    /// Submitted requests without a delivered outcome yet.
    fn outstanding(&self) -> usize {
        self.core.outstanding()
    }

    /// Validate `items` — tuples `(token, template, apns_id or None)` — without sending.
    /// Raises PayloadError naming the first bad item's index.
    fn validate(&self, py: Python<'_>, items: &Bound<'_, PyList>) -> PyResult<()> {
        build_requests(py, 0, items).map(|_| ())
    }

    /// Submit `items` — tuples `(token, template, apns_id or None)` — with ids
    /// `first_id, first_id + 1, ...`. All are validated before any is queued.
    fn submit(
        &self,
        py: Python<'_>,
        pool: usize,
        first_id: u64,
        items: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let requests = build_requests(py, first_id, items)?;
        self.engine(py)?
            .submit(PoolId(pool), requests)
            .map_err(|e| to_pyerr(py, &e, None))
    }

    /// Validate `tokens` for `template` without sending.
    fn validate_tokens(
        &self,
        py: Python<'_>,
        template: &Bound<'_, Template>,
        tokens: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let format = template.get().inner.token_format();
        for (i, token) in tokens.iter().enumerate() {
            let token = str_field(py, &token, "token", i)?;
            pushwire_core::request::validate_token(token, format)
                .map_err(|e| to_pyerr(py, &e, Some(i)))?;
        }
        Ok(())
    }

    /// Submit one template to many tokens (the payload is shared, not copied).
    fn submit_tokens(
        &self,
        py: Python<'_>,
        pool: usize,
        first_id: u64,
        template: &Bound<'_, Template>,
        tokens: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let requests = token_requests(py, first_id, template, tokens)?;
        self.engine(py)?
            .submit(PoolId(pool), requests)
            .map_err(|e| to_pyerr(py, &e, None))
    }

    /// The file descriptor that becomes readable when outcomes are waiting.
    fn fileno(&self) -> i32 {
        self.wake_rx.as_raw_fd()
    }

    /// Take up to `max` waiting outcomes as plain tuples, fields in [`OUTCOME_FIELDS`] order.
    #[pyo3(signature = (max = usize::MAX))]
    fn drain<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyList>> {
        // Clear the wake-up first: an outcome added after we take the batch writes a new byte.
        let mut sink = [0u8; 4096];
        while matches!((&self.wake_rx).read_nonblocking(&mut sink), Ok(n) if n > 0) {}
        self.inbox.wake_pending.store(false, Ordering::Release);
        let batch: Vec<Outcome> = {
            let mut outcomes = self
                .inbox
                .outcomes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if outcomes.len() <= max {
                std::mem::take(&mut *outcomes)
            } else {
                // Leave the rest, and make sure the caller is woken for it.
                let rest = outcomes.split_off(max);
                let taken = std::mem::replace(&mut *outcomes, rest);
                if !self.inbox.wake_pending.swap(true, Ordering::AcqRel) {
                    let _ = (&self.inbox.wake_tx).write(&[1]);
                }
                taken
            }
        };
        let list = PyList::empty(py);
        for o in batch {
            list.append(outcome_tuple(py, o)?)?;
        }
        Ok(list)
    }

    /// Counters of a pool, as a dict.
    fn stats<'py>(
        &self,
        py: Python<'py>,
        pool: usize,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let s = self
            .engine(py)?
            .stats(PoolId(pool))
            .map_err(|e| to_pyerr(py, &e, None))?;
        let d = pyo3::types::PyDict::new(py);
        d.set_item("connections_opened", s.connections_opened)?;
        d.set_item("connections_live", s.connections_live)?;
        d.set_item("connect_failures", s.connect_failures)?;
        d.set_item("timeouts", s.timeouts)?;
        d.set_item("retries", s.retries)?;
        d.set_item("goaways", s.goaways)?;
        d.set_item("resets", s.resets)?;
        d.set_item("ping_failures", s.ping_failures)?;
        d.set_item("dead_by_timeouts", s.dead_by_timeouts)?;
        d.set_item("rotations", s.rotations)?;
        d.set_item("late_answers", s.late_answers)?;
        d.set_item("queued", s.queued)?;
        d.set_item("in_flight", s.in_flight)?;
        d.set_item("max_connections", s.max_connections)?;
        d.set_item("peer_max_streams", s.peer_max_streams)?;
        d.set_item("round_trip_us", s.round_trip_us)?;
        Ok(d)
    }

    /// A pool's latency histogram (cumulative bucket counts, the last one +Inf) and outcome
    /// counts, as a dict; `latency_bounds` are the buckets' upper bounds in seconds.
    fn metrics<'py>(
        &self,
        py: Python<'py>,
        pool: usize,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let m = self
            .engine(py)?
            .metrics(PoolId(pool))
            .map_err(|e| to_pyerr(py, &e, None))?;
        let d = pyo3::types::PyDict::new(py);
        d.set_item(
            "latency_bounds",
            pushwire_core::LATENCY_BUCKETS_SECS.to_vec(),
        )?;
        d.set_item("latency_buckets", m.latency_buckets)?;
        d.set_item("latency_sum", m.latency_sum_secs)?;
        d.set_item("latency_count", m.latency_count)?;
        d.set_item("delivered", m.delivered)?;
        d.set_item("rejected", m.rejected)?;
        d.set_item("timeout", m.timeout)?;
        d.set_item("failed", m.failed)?;
        Ok(d)
    }

    /// Stop the engine: queued requests fail as not sent; open streams get up to `grace`
    /// seconds to finish. Outcomes produced meanwhile can still be drained.
    #[pyo3(signature = (grace = 0.0))]
    fn close(&self, py: Python<'_>, grace: f64) -> PyResult<()> {
        let grace = secs(py, grace, "grace")?;
        // Never block on the runtime while holding the GIL: outcome delivery needs no GIL,
        // but other Python threads (the event loop draining) must keep running.
        py.detach(|| self.core.shutdown(grace));
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.core.is_closed()
    }
}

trait ReadNonblocking {
    fn read_nonblocking(self, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl ReadNonblocking for &UnixStream {
    fn read_nonblocking(mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self, buf)
    }
}

/// A `str` item field, or a PayloadError naming the field and the item's index.
fn str_field<'a>(
    py: Python<'_>,
    value: &'a Bound<'_, PyAny>,
    field: &str,
    index: usize,
) -> PyResult<&'a str> {
    let text = value.cast::<pyo3::types::PyString>().map_err(|_| {
        to_pyerr(
            py,
            &pushwire_core::Error::invalid_input(field, "must be a str"),
            Some(index),
        )
    })?;
    // A lone surrogate is a valid Python str but not UTF-8.
    text.to_str().map_err(|_| {
        to_pyerr(
            py,
            &pushwire_core::Error::invalid_input(field, "is not valid Unicode (lone surrogate)"),
            Some(index),
        )
    })
}

fn token_requests(
    py: Python<'_>,
    first_id: u64,
    template: &Bound<'_, Template>,
    tokens: &Bound<'_, PyList>,
) -> PyResult<Vec<Request>> {
    let shared = template.get().inner.clone();
    let mut requests = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let token = str_field(py, &token, "token", i)?;
        let request = Request::new(first_id + i as u64, token, None, shared.clone())
            .map_err(|e| to_pyerr(py, &e, Some(i)))?;
        requests.push(request);
    }
    Ok(requests)
}

fn build_requests(
    py: Python<'_>,
    first_id: u64,
    items: &Bound<'_, PyList>,
) -> PyResult<Vec<Request>> {
    let mut requests = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let bad_item = || {
            to_pyerr(
                py,
                &pushwire_core::Error::invalid_input(
                    "notification",
                    "expected a Notification(token, message, apns_id=None)",
                ),
                Some(i),
            )
        };
        let tuple = item.cast::<PyTuple>().map_err(|_| bad_item())?;
        if tuple.len() != 3 {
            return Err(bad_item());
        }
        let token_obj = tuple.get_item(0)?;
        let token = str_field(py, &token_obj, "token", i)?;
        // A Template, or a pushwire Message carrying one in `_template`.
        let message = tuple.get_item(1)?;
        let template_obj = match message.cast::<Template>() {
            Ok(_) => message,
            Err(_) => message
                .getattr(pyo3::intern!(py, "_template"))
                .map_err(|_| bad_item())?,
        };
        let template = template_obj.cast::<Template>().map_err(|_| bad_item())?;
        let apns_id_obj = tuple.get_item(2)?;
        let apns_id = if apns_id_obj.is_none() {
            None
        } else {
            Some(str_field(py, &apns_id_obj, "apns-id", i)?)
        };
        let request = Request::new(
            first_id + i as u64,
            token,
            apns_id,
            template.get().inner.clone(),
        )
        .map_err(|e| to_pyerr(py, &e, Some(i)))?;
        requests.push(request);
    }
    Ok(requests)
}

/// The names of an outcome tuple's fields, in order: exported as `_core.OUTCOME_FIELDS`, so
/// Python reads the record by name (python/pushwire/_record.py; a test checks they agree).
/// Plain tuples, not a named type: building one per outcome would cost the drain loop.
pub(crate) const OUTCOME_FIELDS: [&str; 17] = [
    "id",
    "token",
    "outcome",
    "status",
    "reason",
    "apns_id",
    "timestamp_ms",
    "retry_after",
    "stream_id",
    "connection_id",
    "latency",
    "attempts",
    "error",
    "maybe_delivered",
    "body",
    "auth_generation",
    "headers",
];

/// One outcome as a tuple, fields in [`OUTCOME_FIELDS`] order (`latency` in seconds).
fn outcome_tuple(py: Python<'_>, o: Outcome) -> PyResult<Bound<'_, PyTuple>> {
    let body = o.body.as_ref().map(|b| PyBytes::new(py, b));
    let items: [Bound<'_, PyAny>; OUTCOME_FIELDS.len()] = [
        o.id.into_pyobject(py)?.into_any(),
        o.token.as_ref().into_pyobject(py)?.into_any(),
        o.kind.as_str().into_pyobject(py)?.into_any(),
        o.status.into_pyobject(py)?.into_any(),
        o.reason.into_pyobject(py)?.into_any(),
        o.apns_id.into_pyobject(py)?.into_any(),
        o.timestamp_ms.into_pyobject(py)?.into_any(),
        o.retry_after.into_pyobject(py)?.into_any(),
        o.stream_id.into_pyobject(py)?.into_any(),
        o.connection_id.into_pyobject(py)?.into_any(),
        o.latency.as_secs_f64().into_pyobject(py)?.into_any(),
        o.attempts.into_pyobject(py)?.into_any(),
        o.error.into_pyobject(py)?.into_any(),
        pyo3::types::PyBool::new(py, o.maybe_delivered)
            .to_owned()
            .into_any(),
        body.into_pyobject(py)?.into_any(),
        o.auth_generation.into_pyobject(py)?.into_any(),
        o.headers.into_pyobject(py)?.into_any(),
    ];
    PyTuple::new(py, items)
}
