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
    /// `jwt_keys` are `(key_id, team_id, public_key_pem)` tuples.
    #[new]
    #[pyo3(signature = (
        *, port = 0, max_concurrent_streams = 1000, start_streams_at_one = false, rules = Vec::new(),
        jwt_keys = Vec::new(), goaway_after_streams = None, response_delay = 0.0, cert_dir = None,
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
        config.response_delay = Duration::try_from_secs_f64(response_delay)
            .map_err(|_| PyValueError::new_err("response_delay must be >= 0 seconds"))?;
        config.cert_dir = cert_dir;
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
