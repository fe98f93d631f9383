//! The engine against the mock over in-memory pipes (no socket, no TLS): GOAWAY, REFUSED_STREAM
//! and a lowered SETTINGS_MAX_CONCURRENT_STREAMS, each counted on the server side.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pushwire_core::{
    Engine, EngineConfig, Outcome, OutcomeKind, PoolConfig, PoolId, Request, Template, TokenFormat,
};
use pushwire_mock::{parse_rule, MockConfig, MockServer};
use pushwire_test_support::pipe::header_blocks;
use pushwire_test_support::{jwt, Collect, MockPipe, RecordingPipe};

const WAIT: Duration = Duration::from_secs(30);

fn token(i: usize) -> String {
    format!("{i:064x}")
}

fn requests(tokens: &[String]) -> Vec<Request> {
    let headers = vec![
        ("apns-topic".to_owned(), "com.example.app".to_owned()),
        ("apns-push-type".to_owned(), "alert".to_owned()),
    ];
    let body = Bytes::from_static(br#"{"aps":{"alert":"hi"}}"#);
    let template = Arc::new(
        Template::with_path_token("/3/device/", &headers, body, TokenFormat::Hex).unwrap(),
    );
    tokens
        .iter()
        .zip(0u64..)
        .map(|(tok, id)| Request::new(id, tok, None, template.clone()).unwrap())
        .collect()
}

/// The mock, and an engine whose only pool reaches it through pipes.
fn setup(
    config: MockConfig,
    tweak: impl FnOnce(&mut PoolConfig),
) -> (Arc<MockServer>, Engine, PoolId, Arc<Collect>) {
    let server = Arc::new(MockServer::start(config).unwrap());
    let sink = Arc::new(Collect::default());
    let engine = Engine::new(EngineConfig::default(), sink.clone()).unwrap();
    let mut pool = PoolConfig::new("https://api.push.apple.com");
    tweak(&mut pool);
    let transport = Arc::new(MockPipe {
        server: server.clone(),
    });
    let pool = engine.add_pool_with_transport(pool, transport).unwrap();
    (server, engine, pool, sink)
}

/// Exactly one outcome per request, by token, or the test fails.
fn by_token(outcomes: Vec<Outcome>, tokens: &[String]) -> HashMap<String, Outcome> {
    let mut map = HashMap::new();
    for o in outcomes {
        assert!(map.insert(o.token.to_string(), o).is_none(), "two outcomes");
    }
    assert_eq!(map.len(), tokens.len());
    map
}

#[test]
fn goaway_moves_the_rest_of_the_work_to_new_connections() {
    // Every connection is closed with a graceful GOAWAY after 10 streams; 4 at a time keeps
    // most of the work waiting for the next connection.
    let mut config = MockConfig::new();
    config.goaway_after_streams = Some(10);
    config.max_concurrent_streams = 4;
    let (server, engine, pool, sink) = setup(config, |_| {});
    let tokens: Vec<String> = (0..200).map(token).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    let outcomes = by_token(sink.wait_all(tokens.len(), WAIT), &tokens);
    for t in &tokens {
        assert_eq!(
            outcomes[t].kind,
            OutcomeKind::Delivered,
            "{:?}",
            outcomes[t]
        );
        assert_eq!(server.received(t), 1, "the server processed {t} once");
    }
    assert_eq!(server.total_received(), 200);
    let stats = engine.stats(pool).unwrap();
    assert!(stats.connections_opened >= 10, "{stats:?}");
    assert_eq!(server.connections_accepted(), stats.connections_opened);
}

#[test]
fn an_abrupt_goaway_never_hides_a_request_the_server_read() {
    // GOAWAY(NO_ERROR, last processed stream) at once, then the connection closes: streams
    // at or below that id are ambiguous, those above it were never processed and are resent.
    let goaway = token(999);
    let mut config = MockConfig::new();
    config.rules = vec![parse_rule(&format!("{goaway}=goaway")).unwrap()];
    let (server, engine, pool, sink) = setup(config, |_| {});
    let mut tokens: Vec<String> = (0..50).map(token).collect();
    tokens.push(goaway.clone());
    engine.submit(pool, requests(&tokens)).unwrap();
    let outcomes = by_token(sink.wait_all(tokens.len(), WAIT), &tokens);
    let hit = &outcomes[&goaway];
    assert_eq!(hit.kind, OutcomeKind::Failed, "{hit:?}");
    assert!(
        hit.maybe_delivered,
        "the server read it before GOAWAY: {hit:?}"
    );
    assert_eq!(server.received(&goaway), 1);
    for t in &tokens {
        let o = &outcomes[t];
        assert!(
            server.received(t) <= 1,
            "resent after it was processed: {o:?}"
        );
        if server.received(t) == 1 {
            // Read by the server: delivered, or at least never called safe to resend.
            assert!(
                o.kind == OutcomeKind::Delivered || o.maybe_delivered,
                "{o:?}"
            );
        }
    }
}

#[test]
fn refused_stream_is_retried_and_reported_as_never_delivered() {
    let refused = token(7);
    let mut config = MockConfig::new();
    config.rules = vec![parse_rule(&format!("{refused}=refused")).unwrap()];
    let (server, engine, pool, sink) = setup(config, |p| p.max_retries = 2);
    let tokens: Vec<String> = (0..20).map(token).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    let outcomes = by_token(sink.wait_all(tokens.len(), WAIT), &tokens);
    let hit = &outcomes[&refused];
    assert_eq!(hit.kind, OutcomeKind::Failed, "{hit:?}");
    assert!(
        !hit.maybe_delivered,
        "REFUSED_STREAM means never processed: {hit:?}"
    );
    assert_eq!(hit.attempts, 3, "{hit:?}");
    assert_eq!(server.received(&refused), 3, "one request per attempt");
    let stats = engine.stats(pool).unwrap();
    assert_eq!((stats.resets, stats.retries), (3, 2), "{stats:?}");
    for t in tokens.iter().filter(|t| **t != refused) {
        assert_eq!(
            outcomes[t].kind,
            OutcomeKind::Delivered,
            "{:?}",
            outcomes[t]
        );
        assert_eq!(server.received(t), 1);
    }
}

#[test]
fn a_lowered_stream_limit_is_obeyed_without_a_single_refusal() {
    let mut config = MockConfig::new();
    config.max_concurrent_streams = 16;
    config.response_delay = Duration::from_millis(20);
    let (server, engine, pool, sink) = setup(config, |p| p.max_connections = 1);
    let tokens: Vec<String> = (0..200).map(token).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    let mut outcomes = sink.wait_all(20, WAIT);
    let before = server.max_active_streams_seen();
    assert!(
        (3..=16).contains(&before),
        "the first limit was used: {before}"
    );
    // Streams open now stay open; no new stream may take the total over 2.
    server.set_max_concurrent_streams(2);
    outcomes.extend(sink.wait_all(tokens.len() - outcomes.len(), WAIT));
    let outcomes = by_token(outcomes, &tokens);
    for t in &tokens {
        assert_eq!(
            outcomes[t].kind,
            OutcomeKind::Delivered,
            "{:?}",
            outcomes[t]
        );
        assert_eq!(server.received(t), 1);
    }
    assert_eq!(
        server.refused_streams(),
        0,
        "the engine overran the lowered limit"
    );
    assert_eq!(engine.stats(pool).unwrap().resets, 0);
}

/// An APNs provider token for the mock's `key`, signed now (each call gives a new one).
fn provider_token(key: &jwt::SigningKey) -> String {
    format!("bearer {}", jwt::jwt(key, "KEYID12345", "TEAM123456"))
}

/// Send `tokens` one at a time, each after the previous one's outcome, so each request's
/// header block is encoded after the previous one's: the second can use what the first put
/// in the HPACK table.
fn send_one_by_one(engine: &Engine, pool: PoolId, sink: &Collect, tokens: &[String]) {
    for t in tokens {
        engine
            .submit(pool, requests(std::slice::from_ref(t)))
            .unwrap();
        let outcome = sink.wait_all(1, WAIT).pop().unwrap();
        assert_eq!(outcome.kind, OutcomeKind::Delivered, "{outcome:?}");
    }
}

#[test]
fn the_provider_token_is_hpack_indexed_once_per_connection_and_rotation() {
    // The mock checks every JWT, so each header block it decoded carried the right token.
    let key = jwt::signing_key();
    let mut config = MockConfig::new();
    config.jwt_keys = vec![key.jwt_key("KEYID12345", "TEAM123456")];
    config.token_update_window = Duration::ZERO;
    let server = Arc::new(MockServer::start(config).unwrap());
    let (sink, engine, transport, pool) = recording_engine(&server);
    // 30 rotations of a ~170-byte JWT are more than the 4,096-byte HPACK table holds, so the
    // stale ones are evicted along the way: each new one must still be indexed and decoded.
    let rotations = 30;
    let mut tokens = Vec::new();
    for rotation in 0..rotations {
        engine
            .set_authorization(pool, Some(&provider_token(&key)))
            .unwrap();
        let pair = [token(2 * rotation), token(2 * rotation + 1)];
        send_one_by_one(&engine, pool, &sink, &pair);
        tokens.extend(pair);
    }
    for t in &tokens {
        assert_eq!(server.received(t), 1);
    }
    assert_eq!(server.distinct_tokens(), rotations as u64);
    assert_eq!(transport.written.lock().unwrap().len(), 1, "one connection");

    let blocks: Vec<usize> = header_blocks(&transport.client_bytes(0))
        .into_iter()
        .map(|(_, len)| len)
        .collect();
    assert_eq!(blocks.len(), tokens.len(), "{blocks:?}");
    // A literal JWT costs at least 2/3 of its length (Huffman-coded base64), an index 1-2
    // bytes; the path (64 hex digits, never indexed) about 40.
    let literal_jwt = provider_token(&key).len() * 2 / 3;
    let smallest = *blocks.iter().min().unwrap();
    let mut refilled = 0;
    for (rotation, pair) in blocks.chunks(2).enumerate() {
        let (first, second) = (pair[0], pair[1]);
        assert!(
            first >= literal_jwt + 40,
            "rotation {rotation}: the new token is sent literally: {blocks:?}"
        );
        assert!(
            second < literal_jwt,
            "rotation {rotation}: the second request refers to the token: {blocks:?}"
        );
        // When the stale tokens fill the table, FIFO eviction drops the oldest entries, the
        // template's headers: the next request puts them back (~50 bytes, once).
        refilled += usize::from(second > smallest);
    }
    assert!(refilled <= rotations / 10, "{blocks:?}");
}

/// An engine whose one pool reaches `server` through a pipe that records what it wrote.
fn recording_engine(
    server: &Arc<MockServer>,
) -> (Arc<Collect>, Engine, Arc<RecordingPipe>, PoolId) {
    let sink = Arc::new(Collect::default());
    let engine = Engine::new(EngineConfig::default(), sink.clone()).unwrap();
    let transport = Arc::new(RecordingPipe::new(server.clone()));
    let pool = engine
        .add_pool_with_transport(
            PoolConfig::new("https://api.push.apple.com"),
            transport.clone(),
        )
        .unwrap();
    (sink, engine, transport, pool)
}

/// Header block sizes of 3 requests sent one by one with this `authorization` (or none).
fn header_block_sizes(authorization: Option<&str>) -> Vec<usize> {
    let server = Arc::new(MockServer::start(MockConfig::new()).unwrap());
    let (sink, engine, transport, pool) = recording_engine(&server);
    engine.set_authorization(pool, authorization).unwrap();
    send_one_by_one(&engine, pool, &sink, &[token(1), token(2), token(3)]);
    header_blocks(&transport.client_bytes(0))
        .into_iter()
        .map(|(_, len)| len)
        .collect()
}

#[test]
fn a_short_authorization_value_is_never_indexed() {
    // nghttp2's rule: a value shorter than 20 bytes may be guessable, so it is sent literally
    // every time, never put in the table. (The mock has no keys: it checks no token.)
    let short = header_block_sizes(Some("bearer abc"));
    let none = header_block_sizes(None);
    assert_eq!(short.len(), 3, "{short:?}");
    assert_eq!(none.len(), 3, "{none:?}");
    // "bearer abc" as a literal: 2 bytes of representation and length, ~7 of Huffman code.
    assert!(short[2] >= none[2] + 8, "{short:?} vs {none:?}");
    assert_eq!(short[1], short[2], "{short:?}");
}

/// Polls `cond` on the pool's stats until it holds, or fails the test after `WAIT`.
fn wait_stats(
    engine: &Engine,
    pool: PoolId,
    what: &str,
    cond: impl Fn(&pushwire_core::PoolStats) -> bool,
) -> pushwire_core::PoolStats {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let stats = engine.stats(pool).unwrap();
        if cond(&stats) {
            return stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn the_peer_stream_limit_is_read_from_settings_and_follows_a_change() {
    let mut config = MockConfig::new();
    config.max_concurrent_streams = 16;
    config.response_delay = Duration::from_millis(20);
    let (server, engine, pool, sink) = setup(config, |p| p.max_connections = 1);
    assert_eq!(
        engine.stats(pool).unwrap().peer_max_streams,
        0,
        "no connection yet"
    );
    let tokens: Vec<String> = (0..100).map(token).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    wait_stats(&engine, pool, "the server's 16", |s| {
        s.peer_max_streams == 16
    });
    server.set_max_concurrent_streams(5);
    wait_stats(&engine, pool, "the lowered 5", |s| s.peer_max_streams == 5);
    let outcomes = by_token(sink.wait_all(tokens.len(), WAIT), &tokens);
    assert!(outcomes.values().all(|o| o.kind == OutcomeKind::Delivered));
    let stats = engine.stats(pool).unwrap();
    // The mock answers after 20 ms: the measured round trip is at least that.
    assert!(stats.round_trip_us >= 20_000, "{stats:?}");
}

#[test]
fn shrinking_a_pool_with_streams_open_gives_each_request_one_outcome() {
    let mut config = MockConfig::new();
    config.max_concurrent_streams = 10;
    config.response_delay = Duration::from_millis(100);
    let (server, engine, pool, sink) = setup(config, |p| p.max_connections = 4);
    let tokens: Vec<String> = (0..400).map(token).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    wait_stats(&engine, pool, "4 busy connections", |s| {
        s.connections_live == 4 && s.in_flight >= 30
    });
    engine.set_max_connections(pool, 1).unwrap();
    assert_eq!(engine.stats(pool).unwrap().max_connections, 1);
    let outcomes = by_token(sink.wait_all(tokens.len(), WAIT), &tokens);
    for t in &tokens {
        assert_eq!(
            outcomes[t].kind,
            OutcomeKind::Delivered,
            "{:?}",
            outcomes[t]
        );
        assert_eq!(outcomes[t].attempts, 1, "{:?}", outcomes[t]);
        assert_eq!(server.received(t), 1, "the server processed {t} once");
    }
    assert_eq!(server.total_received(), 400);
    // The retired ones closed once drained; the work after the shrink went over one.
    let stats = wait_stats(&engine, pool, "one live connection", |s| {
        s.connections_live == 1
    });
    assert_eq!(stats.connections_opened, 4, "{stats:?}");
    assert_eq!(
        stats.resets + stats.retries + stats.timeouts,
        0,
        "{stats:?}"
    );
}

#[test]
fn growing_a_running_pool_opens_connections_for_queued_work() {
    let mut config = MockConfig::new();
    config.max_concurrent_streams = 5;
    config.response_delay = Duration::from_millis(50);
    let (server, engine, pool, sink) = setup(config, |p| p.max_connections = 1);
    let tokens: Vec<String> = (0..300).map(token).collect();
    engine.submit(pool, requests(&tokens)).unwrap();
    wait_stats(&engine, pool, "the first connection busy", |s| {
        s.in_flight == 5
    });
    engine.set_max_connections(pool, 3).unwrap();
    wait_stats(&engine, pool, "three connections", |s| {
        s.connections_live == 3
    });
    let outcomes = by_token(sink.wait_all(tokens.len(), WAIT), &tokens);
    assert!(outcomes.values().all(|o| o.kind == OutcomeKind::Delivered));
    assert_eq!(server.total_received(), 300);
    assert_eq!(server.connections_accepted(), 3);
    assert!(server.max_active_streams_seen() <= 5);
    assert!(
        engine.set_max_connections(pool, 0).is_err(),
        "0 connections is refused"
    );
}
