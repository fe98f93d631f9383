//! A pool's tuning, read from a `pushwire.PoolOptions` in one piece.

use std::time::Duration;

use pushwire_core::PoolConfig;
use pyo3::prelude::*;

use crate::errors::config_error;

/// The attributes of a `pushwire.PoolOptions` (python/pushwire/_pool_options.py), which
/// validates them first and documents each; any object with these attributes will do.
#[derive(FromPyObject)]
pub(crate) struct PoolOptions {
    max_connections: usize,
    max_streams_per_connection: usize,
    request_timeout: f64,
    queue_timeout: f64,
    connect_timeout: f64,
    ping_interval: f64,
    ping_timeout: f64,
    dead_after_timeouts: u32,
    stream_id_limit: Option<u32>,
    backoff_base: f64,
    backoff_max: f64,
    max_connect_attempts: u32,
    max_retries: u32,
    retry_uncertain: bool,
    metrics: bool,
}

impl PoolOptions {
    /// Copy the options into `cfg`; a duration that is not a number of seconds is a
    /// `ConfigurationError` naming the option.
    pub(crate) fn apply(&self, py: Python<'_>, cfg: &mut PoolConfig) -> PyResult<()> {
        cfg.max_connections = self.max_connections.max(1);
        cfg.max_streams_per_connection = self.max_streams_per_connection.max(1);
        cfg.request_timeout = secs(py, self.request_timeout, "request_timeout")?;
        cfg.queue_timeout = secs(py, self.queue_timeout, "queue_timeout")?;
        cfg.connect_timeout = secs(py, self.connect_timeout, "connect_timeout")?;
        cfg.ping_interval = secs(py, self.ping_interval, "ping_interval")?;
        cfg.ping_timeout = secs(py, self.ping_timeout, "ping_timeout")?;
        cfg.dead_after_timeouts = self.dead_after_timeouts.max(1);
        if let Some(limit) = self.stream_id_limit {
            cfg.stream_id_limit = limit;
        }
        cfg.backoff_base = secs(py, self.backoff_base, "backoff_base")?;
        cfg.backoff_max = secs(py, self.backoff_max, "backoff_max")?;
        cfg.max_connect_attempts = self.max_connect_attempts.max(1);
        cfg.max_retries = self.max_retries;
        cfg.retry_uncertain = self.retry_uncertain;
        cfg.metrics = self.metrics;
        Ok(())
    }
}

/// `value` seconds as a Duration, or a `ConfigurationError` about `field`.
pub(crate) fn secs(py: Python<'_>, value: f64, field: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| config_error(py, field, "must be a non-negative number of seconds"))
}
