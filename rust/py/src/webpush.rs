//! Web Push on the engine: `WebPushSender` encrypts each (subscription, message) pair in Rust
//! (RFC 8291, outside the GIL) and submits it to the pool of the subscription's push service.
//! Python supplies the pools (one per push-service origin, with its VAPID authorization)
//! through a callback called once per new origin, never per notification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pushwire_core::webpush::{self, SubscriptionKeys};
use pushwire_core::{Error, PoolId, Request, Template};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::engine::Engine;
use crate::errors::to_pyerr;

/// Longest endpoint URL accepted (it is also the outcome's token).
const MAX_ENDPOINT_LEN: usize = 1024;

/// One notification before encryption.
struct Pending {
    id: u64,
    endpoint: String,
    origin: String,
    path: String,
    keys: SubscriptionKeys,
    message: Arc<Message>,
}

/// A message as the sender sees it: plaintext, headers (TTL, Urgency, Topic...), padding.
struct Message {
    plaintext: Bytes,
    headers: Vec<(String, String)>,
    padding: usize,
}

#[pyclass(frozen, module = "pushwire._core")]
pub struct WebPushSender {
    engine: Py<Engine>,
    /// Called with an origin (`https://host[:port]`) the first time it is seen; returns the
    /// engine pool to use for it.
    new_pool: Py<PyAny>,
    pools: Mutex<HashMap<String, usize>>,
}

/// `https://host[:port]/path` → (origin, path). The default port is left out of the origin
/// (it is the VAPID audience).
fn split_endpoint(endpoint: &str) -> Result<(String, String), Error> {
    let bad = |why: &str| Error::invalid_input("endpoint", format!("{endpoint:?} {why}"));
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(bad(&format!(
            "is longer than {MAX_ENDPOINT_LEN} characters"
        )));
    }
    let rest = endpoint
        .strip_prefix("https://")
        .ok_or_else(|| bad("is not an https:// URL (push services use TLS)"))?;
    let slash = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(slash);
    if authority.is_empty()
        || authority.contains('@')
        || !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    {
        return Err(bad("has no valid host"));
    }
    if path.len() < 2 || path.bytes().any(|b| !(0x21..0x7f).contains(&b)) || path.contains('#') {
        return Err(bad("has no push path, or characters outside visible ASCII"));
    }
    let authority = authority.strip_suffix(":443").unwrap_or(authority);
    Ok((format!("https://{authority}"), path.to_owned()))
}

fn str_attr(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str, index: usize) -> PyResult<String> {
    obj.getattr(name)
        .and_then(|v| v.extract::<String>())
        .map_err(|_| {
            to_pyerr(
                py,
                &Error::invalid_input(
                    name,
                    "expected a WebPushSubscription(endpoint, p256dh, auth) with str fields",
                ),
                Some(index),
            )
        })
}

fn message_of(py: Python<'_>, obj: &Bound<'_, PyAny>, index: Option<usize>) -> PyResult<Message> {
    let bad = || {
        to_pyerr(
            py,
            &Error::invalid_input("message", "expected a pushwire.WebPushMessage"),
            index,
        )
    };
    let plaintext: PyBackedBytes = obj
        .getattr(pyo3::intern!(py, "_plaintext"))
        .and_then(|v| v.extract::<PyBackedBytes>().map_err(Into::into))
        .map_err(|_| bad())?;
    let headers: Vec<(String, String)> = obj
        .getattr(pyo3::intern!(py, "_headers"))
        .and_then(|v| v.extract())
        .map_err(|_| bad())?;
    let padding: usize = obj
        .getattr(pyo3::intern!(py, "_padding"))
        .and_then(|v| v.extract())
        .map_err(|_| bad())?;
    Ok(Message {
        plaintext: Bytes::from_owner(plaintext),
        headers,
        padding,
    })
}

fn pending(
    py: Python<'_>,
    id: u64,
    subscription: &Bound<'_, PyAny>,
    message: Arc<Message>,
    index: usize,
) -> PyResult<Pending> {
    let endpoint = str_attr(py, subscription, "endpoint", index)?;
    let p256dh = str_attr(py, subscription, "p256dh", index)?;
    let auth = str_attr(py, subscription, "auth", index)?;
    let (origin, path) = split_endpoint(&endpoint).map_err(|e| to_pyerr(py, &e, Some(index)))?;
    let keys = SubscriptionKeys::from_base64url(&p256dh, &auth)
        .map_err(|e| to_pyerr(py, &e, Some(index)))?;
    if message.plaintext.len() + message.padding > webpush::MAX_PLAINTEXT_LEN {
        let e = Error::invalid_input(
            "payload",
            format!(
                "is {} bytes (with padding); encrypted Web Push messages carry at most {} bytes",
                message.plaintext.len() + message.padding,
                webpush::MAX_PLAINTEXT_LEN
            ),
        );
        return Err(to_pyerr(py, &e, Some(index)));
    }
    Ok(Pending {
        id,
        endpoint,
        origin,
        path,
        keys,
        message,
    })
}

/// Encrypt one notification and build its engine request.
fn request_for(p: &Pending) -> Result<Request, Error> {
    let body = webpush::encrypt(&p.keys, &p.message.plaintext, p.message.padding)?;
    let template = Template::fixed(&p.path, &p.message.headers, body)?;
    Request::new(p.id, &p.endpoint, None, Arc::new(template))
}

impl WebPushSender {
    /// The pool of `origin`, created through the Python callback the first time.
    fn pool_for(&self, py: Python<'_>, origin: &str) -> PyResult<usize> {
        if let Some(pool) = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(origin)
        {
            return Ok(*pool);
        }
        let pool: usize = self.new_pool.call1(py, (origin,))?.extract(py)?;
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(origin.to_owned(), pool);
        Ok(pool)
    }

    /// Encrypt everything (GIL released), then queue per pool. Every item is checked and
    /// encrypted before any is queued, so a bad one leaves nothing half-sent.
    fn send(&self, py: Python<'_>, items: Vec<Pending>) -> PyResult<()> {
        let mut pools = Vec::with_capacity(items.len());
        for p in &items {
            pools.push(self.pool_for(py, &p.origin)?);
        }
        let built: Vec<Result<Request, Error>> =
            py.detach(|| items.iter().map(request_for).collect());
        let mut by_pool: HashMap<usize, Vec<Request>> = HashMap::new();
        for (index, (request, pool)) in built.into_iter().zip(pools).enumerate() {
            let request = request.map_err(|e| to_pyerr(py, &e, Some(index)))?;
            by_pool.entry(pool).or_default().push(request);
        }
        let engine = self.engine.bind(py).get();
        let engine = engine.engine(py)?;
        for (pool, requests) in by_pool {
            engine
                .submit(PoolId(pool), requests)
                .map_err(|e| to_pyerr(py, &e, None))?;
        }
        Ok(())
    }
}

fn item_pairs<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyList>,
) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let tuple = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() >= 2)
                .ok_or_else(|| {
                    to_pyerr(
                        py,
                        &Error::invalid_input(
                            "notification",
                            "expected a WebPushNotification(subscription, message)",
                        ),
                        Some(i),
                    )
                })?;
            Ok((tuple.get_item(0)?, tuple.get_item(1)?))
        })
        .collect()
}

impl WebPushSender {
    fn pending_items(
        &self,
        py: Python<'_>,
        first_id: u64,
        items: &Bound<'_, PyList>,
    ) -> PyResult<Vec<Pending>> {
        let pairs = item_pairs(py, items)?;
        let mut out = Vec::with_capacity(pairs.len());
        // Consecutive items usually share one message object: read it once.
        let mut last: Option<(*mut pyo3::ffi::PyObject, Arc<Message>)> = None;
        for (i, (subscription, message)) in pairs.iter().enumerate() {
            let message = match &last {
                Some((ptr, m)) if *ptr == message.as_ptr() => m.clone(),
                _ => {
                    let m = Arc::new(message_of(py, message, Some(i))?);
                    last = Some((message.as_ptr(), m.clone()));
                    m
                }
            };
            out.push(pending(py, first_id + i as u64, subscription, message, i)?);
        }
        Ok(out)
    }

    fn pending_to(
        &self,
        py: Python<'_>,
        first_id: u64,
        message: &Bound<'_, PyAny>,
        subscriptions: &Bound<'_, PyList>,
    ) -> PyResult<Vec<Pending>> {
        let message = Arc::new(message_of(py, message, None)?);
        subscriptions
            .iter()
            .enumerate()
            .map(|(i, s)| pending(py, first_id + i as u64, &s, message.clone(), i))
            .collect()
    }
}

#[pymethods]
impl WebPushSender {
    #[new]
    fn new(engine: Py<Engine>, new_pool: Py<PyAny>) -> Self {
        WebPushSender {
            engine,
            new_pool,
            pools: Mutex::new(HashMap::new()),
        }
    }

    /// `(origin, pool)` of every push service seen so far.
    fn pools(&self) -> Vec<(String, usize)> {
        let pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<_> = pools.iter().map(|(o, p)| (o.clone(), *p)).collect();
        out.sort();
        out
    }

    /// Check `items` — `(subscription, message)` tuples — without sending.
    fn validate(&self, py: Python<'_>, items: &Bound<'_, PyList>) -> PyResult<()> {
        self.pending_items(py, 0, items).map(|_| ())
    }

    /// Check `subscriptions` for `message` without sending.
    fn validate_to(
        &self,
        py: Python<'_>,
        message: &Bound<'_, PyAny>,
        subscriptions: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        self.pending_to(py, 0, message, subscriptions).map(|_| ())
    }

    /// Encrypt and submit `(subscription, message)` tuples with ids `first_id, first_id + 1...`.
    fn submit(&self, py: Python<'_>, first_id: u64, items: &Bound<'_, PyList>) -> PyResult<()> {
        let pending = self.pending_items(py, first_id, items)?;
        self.send(py, pending)
    }

    /// Encrypt one message for each subscription (one ECDH each) and submit.
    fn submit_to(
        &self,
        py: Python<'_>,
        first_id: u64,
        message: &Bound<'_, PyAny>,
        subscriptions: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let pending = self.pending_to(py, first_id, message, subscriptions)?;
        self.send(py, pending)
    }
}

/// The origin (VAPID audience) and path of an endpoint URL; PayloadError when malformed.
#[pyfunction]
pub fn webpush_split_endpoint(py: Python<'_>, endpoint: &str) -> PyResult<(String, String)> {
    split_endpoint(endpoint).map_err(|e| to_pyerr(py, &e, None))
}

/// Encrypt `plaintext` for `(p256dh, auth)` (raw bytes) as the engine does: for tests and
/// interoperability checks.
#[pyfunction]
#[pyo3(signature = (p256dh, auth, plaintext, padding = 0))]
pub fn webpush_encrypt<'py>(
    py: Python<'py>,
    p256dh: &[u8],
    auth: &[u8],
    plaintext: &[u8],
    padding: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let keys = SubscriptionKeys::new(p256dh, auth).map_err(|e| to_pyerr(py, &e, None))?;
    let body = webpush::encrypt(&keys, plaintext, padding).map_err(|e| to_pyerr(py, &e, None))?;
    Ok(PyBytes::new(py, &body))
}

/// The mock push services' keys of subscription `id`: `(p256dh, auth)`, raw bytes.
#[pyfunction]
pub fn mock_webpush_keys<'py>(
    py: Python<'py>,
    id: &str,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let secret = pushwire_mock::webpush::keys::SubscriptionSecret::for_id(id)
        .map_err(pyo3::exceptions::PyValueError::new_err)?;
    Ok((
        PyBytes::new(py, &secret.p256dh()),
        PyBytes::new(py, &secret.auth()),
    ))
}

/// What a mock push service decrypted for subscription `id`, in arrival order.
#[pyfunction]
pub fn mock_webpush_messages<'py>(
    py: Python<'py>,
    server: &Bound<'py, crate::mock::MockServer>,
    id: &str,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let server = server.borrow();
    let messages = server.server()?.webpush_messages(id);
    Ok(messages.iter().map(|m| PyBytes::new(py, m)).collect())
}
