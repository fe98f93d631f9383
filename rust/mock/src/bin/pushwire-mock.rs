//! `pushwire-mock`: run the mock APNs + FCM server from the command line.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use pushwire_mock::{parse_rule, JwtKey, MockConfig, MockServer, Rule, ServiceAccountKey};

#[derive(Parser, Debug)]
#[command(
    name = "pushwire-mock",
    about = "A TLS HTTP/2 mock of the APNs provider API and FCM HTTP v1 (with its OAuth2 token endpoint)"
)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Advertised SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(long, default_value_t = 1000)]
    max_streams: u32,
    /// Advertise one stream per connection until its first 200 (like APNs).
    #[arg(long)]
    start_at_one: bool,
    /// Be a Web Push push service that speaks only HTTP/1.1 (ALPN http/1.1, no h2).
    #[arg(long)]
    http1_only: bool,
    /// Directory for ca.pem (default: a temp dir removed on exit).
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Accepted provider-token key, KID:TEAM:PATH.pem (repeatable).
    #[arg(long = "jwt-key", value_name = "KID:TEAM:PATH", value_parser = parse_jwt_key)]
    jwt_keys: Vec<JwtKey>,
    /// Token-prefix rule, PREFIX=BEHAVIOR (repeatable; first match wins). FCM matches on
    /// message.token, else topic, else condition. BEHAVIOR: ok, unregistered, expired-token,
    /// bad-token, 429, 500, 503, sender-mismatch, third-party-auth, invalid-argument,
    /// unspecified, delay:MS, hang, reset, refused, goaway, close, blackhole or
    /// reject:STATUS:REASON.
    #[arg(long = "rule", value_name = "PREFIX=BEHAVIOR", value_parser = parse_rule)]
    rules: Vec<Rule>,
    /// Gracefully GOAWAY each connection after this many streams.
    #[arg(long)]
    goaway_after: Option<u64>,
    /// Answer every request this many milliseconds late (other streams are not blocked): a
    /// far-away server's round trip, for latency-bound benchmarks.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    response_delay_ms: u64,
    /// Require a TLS client certificate issued by this CA (PEM file); such connections
    /// need no provider token.
    #[arg(long, value_name = "PATH")]
    client_ca: Option<PathBuf>,
    /// Provider tokens whose iat is older than this many seconds are expired.
    #[arg(long, value_name = "SECS", default_value_t = 3600.0, value_parser = parse_seconds)]
    jwt_max_age: f64,
    /// Minimum seconds between provider-token changes on one connection.
    #[arg(long, value_name = "SECS", default_value_t = 1200.0, value_parser = parse_seconds)]
    token_update_window: f64,
    /// FCM: a service account whose JWT-bearer assertions POST /token accepts,
    /// CLIENT_EMAIL:PATH to its RSA public key PEM (repeatable). With none, FCM sends need
    /// no bearer token.
    #[arg(long = "fcm-service-account", value_name = "EMAIL:PATH", value_parser = parse_service_account)]
    fcm_service_accounts: Vec<ServiceAccountKey>,
    /// FCM: seconds an issued access token is accepted (its expires_in).
    #[arg(long, value_name = "SECS", default_value_t = 3600.0, value_parser = parse_seconds)]
    fcm_token_lifetime: f64,
    /// FCM: messages per project per quota window (default: no quota).
    #[arg(long, value_name = "MESSAGES")]
    fcm_quota: Option<u64>,
    /// FCM: length of the fixed quota windows.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_seconds)]
    fcm_quota_window: f64,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|secs| Duration::try_from_secs_f64(*secs).is_ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds >= 0"))
}

fn parse_jwt_key(text: &str) -> Result<JwtKey, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(key_id), Some(team_id), Some(path)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{text:?} is not KID:TEAM:PATH"));
    };
    let public_key_pem =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read public key {path}: {e}"))?;
    Ok(JwtKey {
        key_id: key_id.to_owned(),
        team_id: team_id.to_owned(),
        public_key_pem,
    })
}

fn parse_service_account(text: &str) -> Result<ServiceAccountKey, String> {
    let (client_email, path) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not CLIENT_EMAIL:PATH"))?;
    let public_key_pem =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read public key {path}: {e}"))?;
    Ok(ServiceAccountKey {
        client_email: client_email.to_owned(),
        public_key_pem,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = MockConfig::new()
        .bind(SocketAddr::new(args.host, args.port))
        .max_concurrent_streams(args.max_streams)
        .start_streams_at_one(args.start_at_one)
        .http1_only(args.http1_only);
    config.jwt_keys = args.jwt_keys;
    config.rules = args.rules;
    config.goaway_after_streams = args.goaway_after;
    config.response_delay = Duration::from_millis(args.response_delay_ms);
    config.cert_dir = args.cert_dir;
    config.jwt_max_age = Duration::from_secs_f64(args.jwt_max_age);
    config.token_update_window = Duration::from_secs_f64(args.token_update_window);
    config.fcm_service_accounts = args.fcm_service_accounts;
    config.fcm_token_lifetime = Duration::from_secs_f64(args.fcm_token_lifetime);
    config.fcm_quota_per_window = args.fcm_quota;
    config.fcm_quota_window = Duration::from_secs_f64(args.fcm_quota_window);
    if let Some(path) = &args.client_ca {
        match std::fs::read_to_string(path) {
            Ok(pem) => config.client_ca_pem = Some(pem),
            Err(e) => {
                eprintln!(
                    "pushwire-mock: cannot read client CA {}: {e}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }

    let mut server = match MockServer::start(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("pushwire-mock: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let announced = writeln!(stdout, "url={}", server.url())
        .and_then(|()| writeln!(stdout, "ca_file={}", server.ca_file().display()))
        .and_then(|()| writeln!(stdout, "token_uri={}", server.token_uri()))
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("pushwire-mock: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }

    let waited = wait_for_termination();
    server.stop();
    match waited {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushwire-mock: signal handling failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Blocks until SIGINT or (on Unix) SIGTERM.
fn wait_for_termination() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                result = tokio::signal::ctrl_c() => result,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    })
}
