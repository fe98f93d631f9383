//! `pushwire._core`: thin pyo3 bindings over the Rust engine and the mock server.
//! Python never runs on the per-notification path: requests go in as batches, outcomes come
//! out as batches, and a socket byte wakes the event loop when outcomes are waiting.

// pyo3 extracts Python arguments as owned values, and a Python method takes `self` whether or
// not its body reads it: these two pedantic lints do not fit a binding crate.
#![allow(clippy::needless_pass_by_value, clippy::unused_self)]

mod engine;
mod errors;
mod message_ids;
mod mock;
mod options;
mod template;
mod waiter;
mod webpush;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Rust-side allocations only (Python keeps its own allocator). Every stream allocates its
/// request, header block, frames and answer; mimalloc cut the engine's allocator time (glibc
/// malloc/free/consolidate was about an eighth of the engine thread in `perf`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule(gil_used = true)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<template::Template>()?;
    m.add_class::<message_ids::MessageIds>()?;
    m.add_class::<waiter::Waiter>()?;
    m.add_class::<mock::MockServer>()?;
    m.add_class::<webpush::WebPushSender>()?;
    m.add_function(wrap_pyfunction!(webpush::webpush_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(webpush::webpush_split_endpoint, m)?)?;
    m.add_function(wrap_pyfunction!(webpush::mock_webpush_keys, m)?)?;
    m.add_function(wrap_pyfunction!(webpush::mock_webpush_messages, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "OUTCOME_FIELDS",
        PyTuple::new(m.py(), engine::OUTCOME_FIELDS)?,
    )?;
    m.add(
        "__all__",
        [
            "Engine",
            "MessageIds",
            "MockServer",
            "OUTCOME_FIELDS",
            "Template",
            "Waiter",
            "__version__",
        ],
    )?;
    Ok(())
}
