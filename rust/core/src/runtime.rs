//! One tokio runtime per process for every engine that asks for it
//! ([`Engine::on_shared_runtime`](crate::Engine::on_shared_runtime)): a server holding clients
//! for 200 applications runs them all on the same few threads instead of 200 runtimes.
//!
//! The runtime is made on first use and lives as long as the process (idle threads cost
//! nothing). A forked child gets a fresh one: a runtime's threads do not survive `fork()`.

use std::sync::Mutex;

use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, ErrorKind};

/// More engine threads than this never help a push sender (and tokio panics on absurd counts).
pub(crate) const MAX_WORKER_THREADS: usize = 64;

struct Shared {
    /// The process that made the runtime; only there do its threads exist.
    pid: u32,
    runtime: Runtime,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

pub(crate) fn check_worker_threads(worker_threads: usize) -> Result<(), Error> {
    if (1..=MAX_WORKER_THREADS).contains(&worker_threads) {
        Ok(())
    } else {
        Err(Error::invalid(
            "worker_threads",
            format!("must be between 1 and {MAX_WORKER_THREADS}"),
        ))
    }
}

/// A runtime for one engine (or for the whole process).
pub(crate) fn build(worker_threads: usize) -> Result<Runtime, Error> {
    check_worker_threads(worker_threads)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .thread_name("pushwire-engine")
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Runtime,
                format!("cannot start the engine runtime: {e}"),
            )
        })
}

/// The process's shared runtime, made with `worker_threads` by its first user (later callers
/// share it whatever they ask for).
pub(crate) fn shared(worker_threads: usize) -> Result<Handle, Error> {
    check_worker_threads(worker_threads)?;
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pid = std::process::id();
    if let Some(current) = shared.as_ref().filter(|s| s.pid == pid) {
        return Ok(current.runtime.handle().clone());
    }
    if let Some(parents) = shared.take() {
        // Made before a fork: its threads live in the parent, so dropping it here would wait
        // for threads that do not exist.
        std::mem::forget(parents.runtime);
    }
    let runtime = build(worker_threads)?;
    let handle = runtime.handle().clone();
    *shared = Some(Shared { pid, runtime });
    Ok(handle)
}
