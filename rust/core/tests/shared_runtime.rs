//! Engines on the process's shared runtime: many clients, one set of threads; stopping one
//! engine stops its work only, and still gives every request exactly one outcome.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pushwire_core::{
    Engine, EngineConfig, OutcomeKind, PoolConfig, PoolId, Request, Template, TokenFormat,
};
use pushwire_mock::{parse_rule, MockConfig, MockServer};
use pushwire_test_support::{Collect, MockPipe};

const WAIT: Duration = Duration::from_secs(30);
const HANG: &str = "dead";

fn requests(n: u64, prefix: &str) -> Vec<Request> {
    let body = Bytes::from_static(br#"{"aps":{"alert":"hi"}}"#);
    let headers = [("apns-topic".to_owned(), "com.example.app".to_owned())];
    let template = Arc::new(
        Template::with_path_token("/3/device/", &headers, body, TokenFormat::Hex).unwrap(),
    );
    (0..n)
        .map(|id| {
            let token = format!("{prefix}{id:0width$x}", width = 64 - prefix.len());
            Request::new(id, &token, None, template.clone()).unwrap()
        })
        .collect()
}

fn shared_engine(server: &Arc<MockServer>) -> (Engine, PoolId, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let engine = Engine::on_shared_runtime(EngineConfig::default(), sink.clone()).unwrap();
    let pipe = Arc::new(MockPipe {
        server: server.clone(),
    });
    let pool = engine
        .add_pool_with_transport(PoolConfig::new("https://api.push.apple.com"), pipe)
        .unwrap();
    (engine, pool, sink)
}

/// Threads of this process named like the engine's (workers and blocking-pool threads).
fn engine_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "pushwire-engine")
        .count()
}

// One test function: the thread count must not see other tests' engines.
#[test]
fn engines_share_threads_and_stop_independently() {
    let mut config = MockConfig::new();
    config.rules = vec![parse_rule(&format!("{HANG}=hang")).unwrap()];
    let server = Arc::new(MockServer::start(config).unwrap());

    // 50 clients, 20 notifications each, all on one runtime.
    let engines: Vec<_> = (0..50).map(|_| shared_engine(&server)).collect();
    for (engine, pool, _) in &engines {
        engine.submit(*pool, requests(20, "")).unwrap();
    }
    for (_, _, sink) in &engines {
        let outcomes = sink.wait_all(20, WAIT);
        let bad = outcomes.iter().find(|o| o.kind != OutcomeKind::Delivered);
        assert!(bad.is_none(), "{bad:?}");
    }
    let threads = engine_threads();
    assert!(threads <= 2, "{threads} engine threads for 50 engines");
    // A client asking for more threads gets them, on a runtime of its own size.
    let sink = Arc::new(Collect::default());
    let config = EngineConfig {
        worker_threads: 3,
        ..EngineConfig::default()
    };
    let wider = Engine::on_shared_runtime(config, sink).unwrap();
    // Worker threads start in the background: wait for them to show.
    let deadline = std::time::Instant::now() + WAIT;
    while engine_threads() < threads + 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(engine_threads(), threads + 3, "before: {threads}");
    drop(wider);

    // Stopping one engine with work in hand: its own requests end, the others go on.
    let (stopping, pool, sink) = &engines[0];
    stopping.submit(*pool, requests(5, HANG)).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while stopping.stats(*pool).unwrap().in_flight < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            stopping.stats(*pool).unwrap()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stopping.submit(*pool, requests(3, "")).unwrap();
    stopping.shutdown(Duration::ZERO);
    let ended = sink.wait_all(8, WAIT);
    assert_eq!(ended.len(), 8, "{ended:?}");
    assert!(ended
        .iter()
        .all(|o| o.kind != OutcomeKind::Delivered || !o.token.starts_with(HANG)));
    assert_eq!(stopping.outstanding(), 0);

    let (other, other_pool, other_sink) = &engines[1];
    other.submit(*other_pool, requests(10, "")).unwrap();
    let outcomes = other_sink.wait_all(10, WAIT);
    assert!(
        outcomes.iter().all(|o| o.kind == OutcomeKind::Delivered),
        "{outcomes:?}"
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(sink.take().is_empty(), "a second outcome after the stop");
}
