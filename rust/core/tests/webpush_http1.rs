//! Web Push over HTTP/1.1: a pool with `allow_http1` against mock push services that speak only
//! HTTP/1.1 (VAPID checked, every message decrypted by the mock), and the h2-only pools (APNs,
//! FCM) still refusing such a server.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use pushwire_core::webpush::{encrypt, SubscriptionKeys};
use pushwire_core::{Engine, EngineConfig, OutcomeKind, PoolConfig, PoolId, Request, Template};
use pushwire_mock::webpush::keys::SubscriptionSecret;
use pushwire_mock::{parse_rule, MockConfig, MockServer};
use pushwire_test_support::{by_id, Collect};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

fn start(rules: &[&str], tweak: impl FnOnce(&mut MockConfig)) -> MockServer {
    let mut config = MockConfig::new().http1_only(true);
    config.rules = rules.iter().map(|r| parse_rule(r).unwrap()).collect();
    tweak(&mut config);
    MockServer::start(config).unwrap()
}

/// `Authorization: vapid t=<ES256 JWT for origin>, k=<public key>` (RFC 8292).
fn vapid(origin: &str) -> String {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    let claims = serde_json::json!({"aud": origin, "exp": exp, "sub": "mailto:ops@example.com"});
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let signature = key.sign(&rng, signed.as_bytes()).unwrap();
    format!(
        "vapid t={signed}.{}, k={}",
        URL_SAFE_NO_PAD.encode(signature.as_ref()),
        URL_SAFE_NO_PAD.encode(key.public_key().as_ref())
    )
}

fn engine(
    server: &MockServer,
    tweak: impl FnOnce(&mut PoolConfig),
) -> (Engine, PoolId, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let engine = Engine::new(EngineConfig::default(), sink.clone()).unwrap();
    let mut cfg = PoolConfig::new(server.url());
    cfg.ca_file = Some(server.ca_file());
    cfg.allow_http1 = true;
    tweak(&mut cfg);
    let pool = engine.add_pool(cfg).unwrap();
    engine
        .set_authorization(pool, Some(&vapid(&server.url())))
        .unwrap();
    (engine, pool, sink)
}

fn plaintext(id: &str) -> Vec<u8> {
    format!("hello {id}").into_bytes()
}

/// One encrypted Web Push request per subscription id, ids 0, 1, 2...
fn requests(server: &MockServer, ids: &[String]) -> Vec<Request> {
    let headers = vec![
        ("ttl".to_owned(), "60".to_owned()),
        ("content-encoding".to_owned(), "aes128gcm".to_owned()),
    ];
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let secret = SubscriptionSecret::for_id(id).unwrap();
            let keys = SubscriptionKeys::new(&secret.p256dh(), &secret.auth()).unwrap();
            let body = encrypt(&keys, &plaintext(id), 0).unwrap();
            let template = Template::fixed(&format!("/wp/{id}"), &headers, body).unwrap();
            let endpoint = format!("{}/wp/{id}", server.url());
            Request::new(i as u64, &endpoint, None, Arc::new(template)).unwrap()
        })
        .collect()
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn http1_push_service_gets_each_message_once_decrypted_dead_and_hung_one_outcome_each() {
    let server = start(&["dead=unregistered", "hung=hang"], |_| {});
    let (engine, pool, sink) = engine(&server, |c| {
        c.request_timeout = Duration::from_secs(2);
        c.max_connections = 4;
    });
    let mut all = ids("ok", 300);
    all.extend(ids("dead", 10));
    all.extend(ids("hung", 3));
    let started = Instant::now();
    engine.submit(pool, requests(&server, &all)).unwrap();
    let outcomes = by_id(sink.wait_all(all.len(), Duration::from_secs(60)), all.len());
    // The deadline plus a generous allowance for a loaded machine (debug build).
    assert!(started.elapsed() < Duration::from_secs(30));
    for (id, o) in all.iter().zip(&outcomes) {
        assert_eq!(
            server.received(id),
            1,
            "{id} received {} times",
            server.received(id)
        );
        if id.starts_with("ok") {
            assert_eq!((o.kind, o.status), (OutcomeKind::Delivered, 201), "{o:?}");
            assert_eq!(
                server.webpush_messages(id),
                vec![Bytes::from(plaintext(id))]
            );
        } else if id.starts_with("dead") {
            assert_eq!((o.kind, o.status), (OutcomeKind::Rejected, 410), "{o:?}");
            assert_eq!(o.reason.as_deref(), Some("Unregistered"));
        } else {
            assert_eq!(o.kind, OutcomeKind::Timeout, "{o:?}");
            assert!(o.maybe_delivered && o.latency >= Duration::from_secs(2));
        }
    }
    // One request at a time per connection: concurrency came from several connections, and
    // each hung request cost its connection.
    assert!(server.connections_accepted() >= 2);
    assert!(server.max_active_streams_seen() == 0);
    let stats = engine.stats(pool).unwrap();
    assert_eq!(stats.timeouts, 3);
    // The count drops just after the sink has the outcome (Completions::complete).
    let waited = Instant::now();
    while engine.outstanding() != 0 && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(engine.outstanding(), 0);
}

#[test]
fn connection_close_retires_the_connection_after_its_answer() {
    let server = start(&[], |c| c.goaway_after_streams = Some(10));
    let (engine, pool, sink) = engine(&server, |c| c.max_connections = 1);
    let all = ids("ok", 100);
    engine.submit(pool, requests(&server, &all)).unwrap();
    let outcomes = by_id(sink.wait_all(all.len(), Duration::from_secs(60)), all.len());
    assert!(outcomes.iter().all(|o| o.kind == OutcomeKind::Delivered));
    assert!(all.iter().all(|id| server.received(id) == 1));
    // Every tenth answer says `Connection: close`: ten connections, none reused past it.
    assert_eq!(server.connections_accepted(), 10);
    assert_eq!(engine.stats(pool).unwrap().retries, 0);
}

#[test]
fn connection_closed_before_the_answer_is_failed_maybe_delivered_and_not_resent() {
    let server = start(&["cut=close"], |_| {});
    let (engine, pool, sink) = engine(&server, |c| c.max_connections = 1);
    let mut all = ids("ok", 20);
    all.insert(10, "cut0".to_owned());
    engine.submit(pool, requests(&server, &all)).unwrap();
    let outcomes = by_id(sink.wait_all(all.len(), Duration::from_secs(60)), all.len());
    for (id, o) in all.iter().zip(&outcomes) {
        assert_eq!(server.received(id), 1, "{id}");
        if id == "cut0" {
            assert_eq!(o.kind, OutcomeKind::Failed, "{o:?}");
            assert!(o.maybe_delivered, "{o:?}");
        } else {
            assert_eq!(o.kind, OutcomeKind::Delivered, "{o:?}");
        }
    }
    assert!(server.connections_accepted() >= 2);
}

#[test]
fn h2_only_pools_still_refuse_a_server_without_http2() {
    let server = start(&[], |_| {});
    let (engine, pool, sink) = engine(&server, |c| {
        c.allow_http1 = false;
        c.max_connect_attempts = 2;
        c.backoff_base = Duration::from_millis(5);
    });
    let all = ids("ok", 5);
    engine.submit(pool, requests(&server, &all)).unwrap();
    let outcomes = by_id(sink.wait_all(all.len(), Duration::from_secs(30)), all.len());
    for o in outcomes {
        assert_eq!(o.kind, OutcomeKind::Failed);
        assert!(!o.maybe_delivered);
        let error = o.error.unwrap_or_default();
        assert!(
            error.contains("does not speak HTTP/2 (ALPN h2 not negotiated)"),
            "{error}"
        );
    }
    assert_eq!(server.total_received(), 0);
}

/// A server that ignores ALPN (no protocol negotiated) and answers every request 201 over
/// HTTP/1.1; returns its URL, its CA file and its request counter.
fn no_alpn_server() -> (
    String,
    std::path::PathBuf,
    Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::{AtomicU64, Ordering};

    let ca = pushwire_test_support::TestCa::new("no-alpn");
    let acceptor = ca.localhost_acceptor_with_alpn(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_request| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let mut response =
                            http::Response::new(http_body_util::Full::new(Bytes::new()));
                        *response.status_mut() = http::StatusCode::CREATED;
                        async { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    (format!("https://localhost:{port}"), ca.write_pem(), served)
}

#[test]
fn a_server_without_alpn_gets_http1_on_web_push_pools_and_the_h2_error_elsewhere() {
    use std::sync::atomic::Ordering;

    let (url, ca_file, served) = no_alpn_server();
    let template = Arc::new(
        Template::fixed(
            "/wp/x",
            &[("ttl".to_owned(), "60".to_owned())],
            Bytes::new(),
        )
        .unwrap(),
    );
    let batch = |n: u64| -> Vec<Request> {
        (0..n)
            .map(|i| Request::new(i, "label", None, template.clone()).unwrap())
            .collect()
    };
    for allow_http1 in [true, false] {
        let sink = Arc::new(Collect::default());
        let engine = Engine::new(EngineConfig::default(), sink.clone()).unwrap();
        let mut cfg = PoolConfig::new(url.clone());
        cfg.ca_file = Some(ca_file.clone());
        cfg.allow_http1 = allow_http1;
        cfg.max_connect_attempts = 2;
        cfg.backoff_base = Duration::from_millis(5);
        let pool = engine.add_pool(cfg).unwrap();
        engine.submit(pool, batch(20)).unwrap();
        let outcomes = by_id(sink.wait_all(20, Duration::from_secs(30)), 20);
        if allow_http1 {
            assert!(outcomes
                .iter()
                .all(|o| o.kind == OutcomeKind::Delivered && o.status == 201));
            assert_eq!(served.load(Ordering::Relaxed), 20);
        } else {
            for o in outcomes {
                assert_eq!(o.kind, OutcomeKind::Failed);
                let error = o.error.unwrap_or_default();
                assert!(
                    error.contains("does not speak HTTP/2 (ALPN h2 not negotiated)"),
                    "{error}"
                );
            }
            assert_eq!(served.load(Ordering::Relaxed), 20, "nothing more was sent");
        }
    }
}
