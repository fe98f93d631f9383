//! One tokio runtime per process for every engine that asks for it
//! ([`Engine::on_shared_runtime`](crate::Engine::on_shared_runtime)): a server holding clients
//! for 200 applications runs them all on the same few threads instead of 200 runtimes.
//!
//! One runtime per distinct `worker_threads` value, so a client that asks for two threads gets
//! two (shared with every other client that asked for two). Each is made on first use and
//! lives as long as the process (idle threads cost nothing). A forked child gets fresh ones: a
//! runtime's threads do not survive `fork()`.

use std::sync::Mutex;

use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, ErrorKind};

/// More engine threads than this never help a push sender (and tokio panics on absurd counts).
pub(crate) const MAX_WORKER_THREADS: usize = 64;

struct Shared {
    /// The process that made the runtime; only there do its threads exist.
    pid: u32,
    worker_threads: usize,
    runtime: Runtime,
}

static SHARED: Mutex<Vec<Shared>> = Mutex::new(Vec::new());

pub(crate) fn check_worker_threads(worker_threads: usize) -> Result<(), Error> {
    if (1..=MAX_WORKER_THREADS).contains(&worker_threads) {
        Ok(())
    } else {
        Err(Error::config(
            "worker_threads",
            format!("must be between 1 and {MAX_WORKER_THREADS}"),
        ))
    }
}

/// Blocking threads serve only name lookups (`TcpStream::connect` to a host name runs
/// `getaddrinfo` on one). tokio allows 512 by default, so 200 applications connecting at
/// once grew a server by a thread each; lookups beyond this many wait their turn instead,
/// inside each connection's `connect_timeout`.
const MAX_BLOCKING_THREADS: usize = 8;

/// A runtime for one engine (or for the whole process).
pub(crate) fn build(worker_threads: usize) -> Result<Runtime, Error> {
    check_worker_threads(worker_threads)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
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

/// The process's shared runtime with `worker_threads` threads.
pub(crate) fn shared(worker_threads: usize) -> Result<Handle, Error> {
    check_worker_threads(worker_threads)?;
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pid = std::process::id();
    if shared.iter().any(|s| s.pid != pid) {
        // Made before a fork: their threads live in the parent, so dropping them here would
        // wait for threads that do not exist.
        for parents in std::mem::take(&mut *shared) {
            std::mem::forget(parents.runtime);
        }
    }
    if let Some(current) = shared.iter().find(|s| s.worker_threads == worker_threads) {
        return Ok(current.runtime.handle().clone());
    }
    let runtime = build(worker_threads)?;
    let handle = runtime.handle().clone();
    shared.push(Shared {
        pid,
        worker_threads,
        runtime,
    });
    Ok(handle)
}
