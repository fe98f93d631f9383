//! The one place engine errors become Python exceptions of `pushwire._errors`.

use pushwire_core::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

// The exception tree lives in Python (`pushwire._errors`); the engine raises its classes.
pyo3::import_exception!(pushwire._errors, PushwireError);
pyo3::import_exception!(pushwire._errors, ConfigurationError);
pyo3::import_exception!(pushwire._errors, PayloadError);
pyo3::import_exception!(pushwire._errors, ClientClosedError);

/// Build the pushwire exception for `err`; `index` is the position in a submitted batch.
pub(crate) fn to_pyerr(py: Python<'_>, err: &Error, index: Option<usize>) -> PyErr {
    let class = match err.kind() {
        ErrorKind::InvalidInput => py.get_type::<PayloadError>(),
        ErrorKind::InvalidConfig | ErrorKind::Tls | ErrorKind::Forked => {
            py.get_type::<ConfigurationError>()
        }
        ErrorKind::Closed => py.get_type::<ClientClosedError>(),
        // Runtime, and any kind added later: the root of the tree.
        _ => py.get_type::<PushwireError>(),
    };
    let message = match index {
        Some(i) => format!("notification #{i}: {err}"),
        None => err.to_string(),
    };
    instance(&class, &message, err.field(), index)
}

/// A configuration error about `field` (an option of a pool or of the engine).
pub(crate) fn config_error(py: Python<'_>, field: &str, message: &str) -> PyErr {
    to_pyerr(py, &Error::invalid_config(field, message), None)
}

/// `ClientClosedError`: the engine was shut down.
pub(crate) fn closed_error(py: Python<'_>) -> PyErr {
    instance(
        &py.get_type::<ClientClosedError>(),
        "the client is closed",
        None,
        None,
    )
}

fn instance(
    class: &Bound<'_, PyType>,
    message: &str,
    field: Option<&str>,
    index: Option<usize>,
) -> PyErr {
    let built = (|| {
        let kwargs = PyDict::new(class.py());
        kwargs.set_item("field", field)?;
        kwargs.set_item("index", index)?;
        class.call((message,), Some(&kwargs))
    })();
    match built {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}
