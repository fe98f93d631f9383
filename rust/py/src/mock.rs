//! `MockServer`: the mock APNs + FCM server, started in-process on its own runtime.

use std::path::PathBuf;
use std::time::Duration;

use pushwire_mock::{parse_rule, JwtKey, MockConfig, Rule, ServiceAccountKey};
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
    pub(crate) fn server(&self) -> PyResult<&pushwire_mock::MockServer> {
        self.server
            .as_ref()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the mock server is stopped"))
    }
}

#[pymethods]
impl MockServer {
    /// Start the server. `rules` are `"PREFIX=BEHAVIOR"` strings (see `pushwire-mock --help`);
    /// `jwt_keys` are `(key_id, team_id, public_key_pem)` tuples; `client_ca_pem` makes a
    /// client certificate from that CA mandatory. FCM: `fcm_service_accounts` are
    /// `(client_email, public_key_pem)` tuples whose JWT-bearer grants `POST /token` accepts
    /// (with none, sends need no bearer token); `fcm_quota_per_window` messages per project per
    /// `fcm_quota_window`. `http1_only`: a Web Push push service speaking only HTTP/1.1.
    /// Durations are in seconds.
    #[new]
    #[pyo3(signature = (
        *, port = 0, max_concurrent_streams = 1000, start_streams_at_one = false, rules = Vec::new(),
        jwt_keys = Vec::new(), goaway_after_streams = None, response_delay = 0.0, cert_dir = None,
        client_ca_pem = None, jwt_max_age = 3600.0, token_update_window = 1200.0,
        fcm_service_accounts = Vec::new(), fcm_token_lifetime = 3600.0, fcm_quota_per_window = None,
        fcm_quota_window = 60.0, http1_only = false,
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
        fcm_service_accounts: Vec<(String, String)>,
        fcm_token_lifetime: f64,
        fcm_quota_per_window: Option<u64>,
        fcm_quota_window: f64,
        http1_only: bool,
    ) -> PyResult<Self> {
        let mut config = MockConfig::new();
        config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        config.max_concurrent_streams = max_concurrent_streams;
        config.start_streams_at_one = start_streams_at_one;
        config.http1_only = http1_only;
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
        config.fcm_service_accounts = fcm_service_accounts
            .into_iter()
            .map(|(client_email, public_key_pem)| ServiceAccountKey {
                client_email,
                public_key_pem,
            })
            .collect();
        config.fcm_token_lifetime = seconds("fcm_token_lifetime", fcm_token_lifetime)?;
        config.fcm_quota_per_window = fcm_quota_per_window;
        config.fcm_quota_window = seconds("fcm_quota_window", fcm_quota_window)?;
        if fcm_quota_per_window.is_some() && config.fcm_quota_window.is_zero() {
            return Err(PyValueError::new_err(
                "fcm_quota_window must be > 0 seconds",
            ));
        }
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

    /// The OAuth2 token endpoint, `<url>/token`.
    #[getter]
    fn token_uri(&self) -> PyResult<String> {
        Ok(self.server()?.token_uri())
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

    /// Access tokens issued by `POST /token`.
    #[getter]
    fn oauth_tokens_issued(&self) -> PyResult<u64> {
        Ok(self.server()?.oauth_tokens_issued())
    }

    /// FCM sends answered 429 QUOTA_EXCEEDED by the project quota.
    #[getter]
    fn quota_rejections(&self) -> PyResult<u64> {
        Ok(self.server()?.quota_rejections())
    }

    /// FCM sends with `validate_only: true` (not counted as received).
    #[getter]
    fn fcm_dry_runs(&self) -> PyResult<u64> {
        Ok(self.server()?.fcm_dry_runs())
    }

    /// Every access token issued so far expires now (FCM sends with it get 401).
    fn expire_oauth_tokens(&self) -> PyResult<()> {
        self.server()?.expire_oauth_tokens();
        Ok(())
    }

    fn set_rules(&self, rules: Vec<String>) -> PyResult<()> {
        self.server()?.set_rules(rules_from(&rules)?);
        Ok(())
    }

    fn set_max_concurrent_streams(&self, n: u32) -> PyResult<()> {
        self.server()?.set_max_concurrent_streams(n);
        Ok(())
    }

    /// Valid Live Activity broadcasts received for `channel_id`, whatever was answered.
    fn received_broadcasts(&self, channel_id: &str) -> PyResult<u64> {
        Ok(self.server()?.received_broadcasts(channel_id))
    }

    /// `(channel id, message-storage-policy)` of `bundle`'s broadcast channels.
    fn broadcast_channels(&self, bundle: &str) -> PyResult<Vec<(String, u8)>> {
        Ok(self.server()?.channels(bundle))
    }

    /// The message a storage-policy-1 channel keeps, if any.
    fn stored_broadcast<'py>(
        &self,
        py: Python<'py>,
        channel_id: &str,
    ) -> PyResult<Option<Bound<'py, pyo3::types::PyBytes>>> {
        Ok(self
            .server()?
            .stored_broadcast(channel_id)
            .map(|b| pyo3::types::PyBytes::new(py, &b)))
    }

    /// Broadcasts for `bundle` are answered 400 FeatureNotEnabled from now on.
    fn disable_broadcast(&self, bundle: &str) -> PyResult<()> {
        self.server()?.disable_broadcast(bundle);
        Ok(())
    }

    fn stop(&mut self, py: Python<'_>) {
        if let Some(mut server) = self.server.take() {
            py.detach(move || server.stop());
        }
    }
}
