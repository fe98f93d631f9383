//! The engine against the real mock server, without Python: exactly one outcome per request.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pushwire_core::{
    Engine, EngineConfig, OutcomeKind, PoolConfig, PoolId, Request, Template, TokenFormat,
};
use pushwire_mock::{parse_rule, MockConfig, MockServer};
use pushwire_test_support::{by_id, Collect};

fn token(i: usize, prefix: &str) -> String {
    format!("{prefix}{i:0width$x}", width = 64 - prefix.len())
}

fn template() -> Arc<Template> {
    let headers = vec![
        ("apns-topic".to_owned(), "com.example.app".to_owned()),
        ("apns-push-type".to_owned(), "alert".to_owned()),
    ];
    let body = Bytes::from_static(br#"{"aps":{"alert":"hi"}}"#);
    Arc::new(Template::with_path_token("/3/device/", &headers, body, TokenFormat::Hex).unwrap())
}

fn start(rules: &[&str], tweak: impl FnOnce(&mut MockConfig)) -> MockServer {
    let mut config = MockConfig::new();
    config.rules = rules.iter().map(|r| parse_rule(r).unwrap()).collect();
    tweak(&mut config);
    MockServer::start(config).unwrap()
}

fn engine(
    server: &MockServer,
    tweak: impl FnOnce(&mut PoolConfig),
) -> (Engine, PoolId, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let engine = Engine::new(EngineConfig::default(), sink.clone()).unwrap();
    let mut cfg = PoolConfig::new(server.url());
    cfg.ca_file = Some(server.ca_file());
    tweak(&mut cfg);
    let pool = engine.add_pool(cfg).unwrap();
    (engine, pool, sink)
}

fn requests(tokens: &[String]) -> Vec<Request> {
    let t = template();
    tokens
        .iter()
        .enumerate()
        .map(|(i, tok)| Request::new(i as u64, tok, None, t.clone()).unwrap())
        .collect()
}

#[test]
fn every_request_is_delivered_once() {
    let server = start(&[], |_| {});
    let (engine, pool, sink) = engine(&server, |_| {});
    let tokens: Vec<String> = (0..5_000).map(|i| token(i, "")).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    let outcomes = by_id(
        sink.wait_all(tokens.len(), Duration::from_secs(60)),
        tokens.len(),
    );
    assert!(outcomes
        .iter()
        .all(|o| o.kind == OutcomeKind::Delivered && o.status == 200));
    assert!(tokens.iter().all(|t| server.received(t) == 1));
    assert_eq!(engine.outstanding(), 0);
}

#[test]
fn hung_streams_time_out_with_their_stream_ids_and_nothing_else_does() {
    let hung: Vec<String> = (0..20).map(|i| token(i, "eeee")).collect();
    let ok: Vec<String> = (0..1_980).map(|i| token(i, "")).collect();
    let server = start(&["eeee=hang"], |_| {});
    let (engine, pool, sink) = engine(&server, |c| c.request_timeout = Duration::from_secs(3));
    let mut all = ok.clone();
    all.extend(hung.iter().cloned());
    let started = Instant::now();
    engine.submit(pool, requests(&all)).unwrap();
    let outcomes = by_id(sink.wait_all(all.len(), Duration::from_secs(30)), all.len());
    // Bounded: the deadline plus a generous allowance for a loaded machine (debug build).
    assert!(started.elapsed() < Duration::from_secs(20));
    for o in &outcomes {
        if o.token.starts_with("eeee") {
            assert_eq!(o.kind, OutcomeKind::Timeout, "{o:?}");
            assert!(o.stream_id > 0 && o.connection_id > 0 && o.maybe_delivered);
            assert!(o.latency >= Duration::from_secs(3));
        } else {
            assert_eq!(o.kind, OutcomeKind::Delivered, "{o:?}");
        }
    }
    assert_eq!(engine.stats(pool).unwrap().timeouts, 20);
}

#[test]
fn abrupt_goaway_retries_only_what_was_never_processed() {
    let server = start(&["90a7=goaway"], |_| {});
    let (engine, pool, sink) = engine(&server, |c| c.max_connections = 1);
    let mut tokens: Vec<String> = (0..3_000).map(|i| token(i, "")).collect();
    tokens.insert(1_000, token(0, "90a7"));
    engine.submit(pool, requests(&tokens)).unwrap();
    let outcomes = by_id(
        sink.wait_all(tokens.len(), Duration::from_secs(60)),
        tokens.len(),
    );
    for o in &outcomes {
        let received = server.received(&o.token);
        assert!(received <= 1, "{} received {received} times", o.token);
        match o.kind {
            OutcomeKind::Delivered => assert_eq!(received, 1),
            OutcomeKind::Failed => assert!(o.maybe_delivered, "{o:?}"),
            other => panic!("unexpected {other:?}: {o:?}"),
        }
    }
    assert!(server.connections_accepted() >= 2);
}

#[test]
fn stream_ids_near_the_limit_rotate_the_connection() {
    let server = start(&[], |_| {});
    let (engine, pool, sink) = engine(&server, |c| {
        c.stream_id_limit = 201; // 100 streams per connection
        c.max_connections = 1;
    });
    let tokens: Vec<String> = (0..1_000).map(|i| token(i, "")).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    let outcomes = by_id(
        sink.wait_all(tokens.len(), Duration::from_secs(60)),
        tokens.len(),
    );
    assert!(outcomes.iter().all(|o| o.kind == OutcomeKind::Delivered));
    assert!(outcomes.iter().all(|o| o.stream_id <= 201 + 2 * 1000));
    let stats = engine.stats(pool).unwrap();
    assert!(stats.rotations >= 9, "{stats:?}");
    assert!(server.connections_accepted() >= 10);
}

#[test]
fn connection_refused_fails_requests_as_not_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = Arc::new(Collect::default());
    let engine = Engine::new(EngineConfig::default(), sink.clone()).unwrap();
    let mut cfg = PoolConfig::new(format!("https://127.0.0.1:{port}"));
    cfg.max_connect_attempts = 2;
    cfg.backoff_base = Duration::from_millis(5);
    let pool = engine.add_pool(cfg).unwrap();
    let tokens: Vec<String> = (0..50).map(|i| token(i, "")).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    let outcomes = by_id(sink.wait_all(50, Duration::from_secs(30)), 50);
    for o in outcomes {
        assert_eq!(o.kind, OutcomeKind::Failed);
        assert!(!o.maybe_delivered);
        assert!(
            o.error.as_deref().unwrap_or("").contains("not sent"),
            "{o:?}"
        );
    }
}
