//! The one place engine errors become Python exceptions of `pushwire._errors`.

use pushwire_core::{Error, ErrorKind};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Build the pushwire exception for `err`; `index` is the position in a submitted batch.
pub(crate) fn to_pyerr(py: Python<'_>, err: &Error, index: Option<usize>) -> PyErr {
    let class_name = match err.kind() {
        ErrorKind::InvalidInput => match err.field() {
            Some("base_url" | "pool" | "path" | "worker_threads") => "ConfigurationError",
            _ => "PayloadError",
        },
        ErrorKind::Tls => "ConfigurationError",
        ErrorKind::Closed => "ClientClosedError",
        ErrorKind::Runtime => "PushwireError",
        ErrorKind::Forked => "ConfigurationError",
    };
    let message = match index {
        Some(i) => format!("notification #{i}: {err}"),
        None => err.to_string(),
    };
    match build(py, class_name, &message, err.field(), index) {
        Ok(e) => e,
        // pushwire._errors missing (the extension used on its own): plain builtins.
        Err(_) if *err.kind() == ErrorKind::InvalidInput => PyValueError::new_err(message),
        Err(_) => PyRuntimeError::new_err(message),
    }
}

fn build(
    py: Python<'_>,
    class_name: &str,
    message: &str,
    field: Option<&str>,
    index: Option<usize>,
) -> PyResult<PyErr> {
    let class = py.import("pushwire._errors")?.getattr(class_name)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("field", field)?;
    kwargs.set_item("index", index)?;
    let exc = class.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(exc))
}
