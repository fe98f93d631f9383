//! `MockServer`: the mock APNs server, started in-process on its own runtime.

use std::path::PathBuf;
use std::time::Duration;

use pushwire_mock::{parse_rule, JwtKey, MockConfig, Rule};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

#[pyclass(module = "pushwire._core")]
pub struct MockServer {
    server: Option<pushwire_mock::MockServer>,
}

fn rules_from(specs: &[String]) -> PyResult<Vec<Rule>> {
    specs
        .iter()
        .map(|s| parse_rule(s).map_err(|e| PyValueError::new_err(format!("rule {s:?}: {e}"))))
        .collect()
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{name} must be >= 0 seconds")))
}

impl MockServer {
    fn server(&self) -> PyResult<&pushwire_mock::MockServer> {
        self.server
            .as_ref()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the mock server is stopped"))
    }
}

#[pymethods]
impl MockServer {
    /// Start the server. `rules` are `"PREFIX=BEHAVIOR"` strings (see `pushwire-mock --help`);
    /// `jwt_keys` are `(key_id, team_id, public_key_pem)` tuples; `client_ca_pem` makes a
    /// client certificate from that CA mandatory. Durations are in seconds.
    #[new]
    #[pyo3(signature = (
        *, port = 0, max_concurrent_streams = 1000, start_streams_at_one = false, rules = Vec::new(),
        jwt_keys = Vec::new(), goaway_after_streams = None, response_delay = 0.0, cert_dir = None,
        client_ca_pem = None, jwt_max_age = 3600.0, token_update_window = 1200.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        port: u16,
        max_concurrent_streams: u32,
        start_streams_at_one: bool,
        rules: Vec<String>,
        jwt_keys: Vec<(String, String, String)>,
        goaway_after_streams: Option<u64>,
        response_delay: f64,
        cert_dir: Option<PathBuf>,
        client_ca_pem: Option<String>,
        jwt_max_age: f64,
        token_update_window: f64,
    ) -> PyResult<Self> {
        let mut config = MockConfig::new();
        config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        config.max_concurrent_streams = max_concurrent_streams;
        config.start_streams_at_one = start_streams_at_one;
        config.rules = rules_from(&rules)?;
        config.jwt_keys = jwt_keys
            .into_iter()
            .map(|(key_id, team_id, public_key_pem)| JwtKey {
                key_id,
                team_id,
                public_key_pem,
            })
            .collect();
        config.goaway_after_streams = goaway_after_streams;
        config.response_delay = seconds("response_delay", response_delay)?;
        config.cert_dir = cert_dir;
        config.client_ca_pem = client_ca_pem;
        config.jwt_max_age = seconds("jwt_max_age", jwt_max_age)?;
        config.token_update_window = seconds("token_update_window", token_update_window)?;
        let server = py.detach(move || pushwire_mock::MockServer::start(config))?;
        Ok(MockServer {
            server: Some(server),
        })
    }

    #[getter]
    fn url(&self) -> PyResult<String> {
        Ok(self.server()?.url())
    }

    #[getter]
    fn port(&self) -> PyResult<u16> {
        Ok(self.server()?.port())
    }

    #[getter]
    fn ca_file(&self) -> PyResult<PathBuf> {
        Ok(self.server()?.ca_file())
    }

    /// Requests fully received for `token`, across all connections.
    fn received(&self, token: &str) -> PyResult<u64> {
        Ok(self.server()?.received(&token.to_ascii_lowercase()))
    }

    #[getter]
    fn total_received(&self) -> PyResult<u64> {
        Ok(self.server()?.total_received())
    }

    #[getter]
    fn connections_accepted(&self) -> PyResult<u64> {
        Ok(self.server()?.connections_accepted())
    }

    #[getter]
    fn max_active_streams_seen(&self) -> PyResult<u64> {
        Ok(self.server()?.max_active_streams_seen())
    }

    /// Streams the server refused (REFUSED_STREAM) for exceeding its advertised limit.
    #[getter]
    fn refused_streams(&self) -> PyResult<u64> {
        Ok(self.server()?.refused_streams())
    }

    /// Connections that presented a client certificate (verified against `client_ca_pem`).
    #[getter]
    fn cert_connections(&self) -> PyResult<u64> {
        Ok(self.server()?.cert_connections())
    }

    /// Requests answered 429 TooManyProviderTokenUpdates.
    #[getter]
    fn token_update_rejections(&self) -> PyResult<u64> {
        Ok(self.server()?.token_update_rejections())
    }

    /// Distinct provider tokens (JWT strings) that passed signature and age checks.
    #[getter]
    fn distinct_tokens(&self) -> PyResult<u64> {
        Ok(self.server()?.distinct_tokens())
    }

    fn set_rules(&self, rules: Vec<String>) -> PyResult<()> {
        self.server()?.set_rules(rules_from(&rules)?);
        Ok(())
    }

    fn set_max_concurrent_streams(&self, n: u32) -> PyResult<()> {
        self.server()?.set_max_concurrent_streams(n);
        Ok(())
    }

    fn stop(&mut self, py: Python<'_>) {
        if let Some(mut server) = self.server.take() {
            py.detach(move || server.stop());
        }
    }
}
