//! `Template`: headers and payload shared by many notifications, validated once.

use std::sync::Arc;

use bytes::Bytes;
use pushwire_core::TokenFormat;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use crate::errors::to_pyerr;

#[pyclass(frozen, module = "pushwire._core")]
pub struct Template {
    pub(crate) inner: Arc<pushwire_core::Template>,
}

fn token_format(py: Python<'_>, name: &str) -> PyResult<TokenFormat> {
    match name {
        "hex" => Ok(TokenFormat::Hex),
        "opaque" => Ok(TokenFormat::Opaque),
        "label" => Ok(TokenFormat::Label),
        other => Err(to_pyerr(
            py,
            &pushwire_core::Error::invalid_input(
                "token_format",
                format!("{other:?} is not 'hex' or 'opaque'"),
            ),
            None,
        )),
    }
}

#[pymethods]
impl Template {
    /// A template whose token is appended to `path` (APNs: `/3/device/`).
    #[new]
    #[pyo3(signature = (path, headers, payload, token_format = "hex"))]
    fn new(
        py: Python<'_>,
        path: &str,
        headers: Vec<(String, String)>,
        payload: PyBackedBytes,
        token_format: &str,
    ) -> PyResult<Self> {
        let format = self::token_format(py, token_format)?;
        let payload = Bytes::from_owner(payload);
        pushwire_core::Template::with_path_token(path, &headers, payload, format)
            .map(|t| Template { inner: Arc::new(t) })
            .map_err(|e| to_pyerr(py, &e, None))
    }

    /// A template with a fixed path whose body embeds the token between `before` and `after`
    /// (FCM v1 messages).
    #[staticmethod]
    #[pyo3(signature = (path, headers, before, after, token_format = "opaque"))]
    fn body_splice(
        py: Python<'_>,
        path: &str,
        headers: Vec<(String, String)>,
        before: PyBackedBytes,
        after: PyBackedBytes,
        token_format: &str,
    ) -> PyResult<Self> {
        let format = self::token_format(py, token_format)?;
        pushwire_core::Template::with_body_token(
            path,
            &headers,
            Bytes::from_owner(before),
            Bytes::from_owner(after),
            format,
        )
        .map(|t| Template { inner: Arc::new(t) })
        .map_err(|e| to_pyerr(py, &e, None))
    }

    /// A template with a fixed path and body; a request's token is only a label (FCM topic and
    /// condition messages, OAuth token calls, APNs broadcasts and channel management).
    /// `keep_body` returns 2xx bodies in outcomes; `method` is POST, GET or DELETE;
    /// `keep_headers` names response headers copied into outcomes.
    #[staticmethod]
    #[pyo3(signature = (path, headers, payload, keep_body = false, method = "POST", keep_headers = Vec::new()))]
    fn fixed(
        py: Python<'_>,
        path: &str,
        headers: Vec<(String, String)>,
        payload: PyBackedBytes,
        keep_body: bool,
        method: &str,
        keep_headers: Vec<String>,
    ) -> PyResult<Self> {
        pushwire_core::Template::fixed(path, &headers, Bytes::from_owner(payload))
            .and_then(|t| t.with_method(method))
            .and_then(|t| t.keeping_headers(&keep_headers))
            .map(|t| Template {
                inner: Arc::new(t.keeping_body(keep_body)),
            })
            .map_err(|e| to_pyerr(py, &e, None))
    }

    /// Body size for a token of `token_len` characters.
    fn body_len(&self, token_len: usize) -> usize {
        self.inner.body_len(token_len)
    }

    fn __repr__(&self) -> String {
        format!("<Template body={}B>", self.inner.body_len(0))
    }
}
