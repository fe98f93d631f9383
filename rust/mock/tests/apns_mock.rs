//! End-to-end tests: a real h2 client over TLS against the mock.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::jwt::{jwt, signing_key};
use common::{connect, eventually, read_answer, TOKEN};
use h2::Reason;
use pushwire_mock::{Behavior, JwtKey, Match, MockConfig, MockServer, Rule};

const SOON: Duration = Duration::from_secs(5);

fn prefix(prefix: &str, behavior: Behavior) -> Rule {
    Rule {
        matcher: Match::Prefix(prefix.to_owned()),
        behavior,
    }
}

#[tokio::test]
async fn ok_answer_echoes_or_generates_apns_id_and_counts() {
    let server = MockServer::start(MockConfig::new()).unwrap();
    assert!(server.url().starts_with("https://localhost:"));
    let client = connect(&server).await;

    let id = "123e4567-e89b-12d3-a456-426614174000";
    let request = client
        .request(TOKEN)
        .header("apns-id", id)
        .body(())
        .unwrap();
    let answer = client.send(request, b"{\"aps\":{}}").await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["apns-id"], id);
    assert!(answer.body.is_empty());

    let answer = client.push(&TOKEN.to_uppercase()).await.unwrap();
    assert_eq!(answer.status, 200);
    let generated = answer.headers["apns-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36);
    assert_eq!(&generated[14..15], "4", "version nibble: {generated}");
    assert_eq!(generated, generated.to_lowercase());

    assert_eq!(server.received(TOKEN), 2, "token case does not matter");
    assert_eq!(server.received(&TOKEN.to_uppercase()), 2);
    assert_eq!(server.received("ffff"), 0);
    assert_eq!(server.total_received(), 2);
    assert_eq!(server.connections_accepted(), 1);
    assert!(server.max_active_streams_seen() >= 1);
}

#[tokio::test]
async fn unregistered_answers_410_with_timestamp() {
    let config = MockConfig::new()
        .rule(
            Match::Exact("dead".into()),
            Behavior::Reject {
                status: 410,
                reason: "Unregistered".into(),
                timestamp_ms: Some(1_700_000_000_123),
            },
        )
        .rule(
            Match::Prefix("bad".into()),
            Behavior::Reject {
                status: 400,
                reason: "BadDeviceToken".into(),
                timestamp_ms: None,
            },
        );
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;

    let answer = client.push("dead").await.unwrap();
    assert_eq!(answer.status, 410);
    assert!(answer.headers.contains_key("apns-id"));
    assert_eq!(
        answer.json(),
        serde_json::json!({"reason": "Unregistered", "timestamp": 1_700_000_000_123u64})
    );
    let answer = client.push("bad0").await.unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json(),
        serde_json::json!({"reason": "BadDeviceToken"})
    );
    assert_eq!(
        client.push("deadbeef").await.unwrap().status,
        200,
        "exact rule"
    );
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one table of APNs rejections, read top to bottom
async fn invalid_requests_get_apns_errors_and_are_counted() {
    let server = MockServer::start(MockConfig::new()).unwrap();
    let client = connect(&server).await;
    let body = b"{\"aps\":{}}";
    let expect = |answer: common::Answer, status: u16, reason: &str| {
        assert_eq!(answer.status, status, "{reason}");
        assert_eq!(answer.json()["reason"], reason);
    };

    let get = client.request(TOKEN).method("GET").body(()).unwrap();
    expect(
        client.send(get, b"").await.unwrap(),
        405,
        "MethodNotAllowed",
    );

    let uri = format!("https://localhost:{}/3/devices/{TOKEN}", server.port());
    let bad_path = client.request(TOKEN).uri(uri).body(()).unwrap();
    expect(client.send(bad_path, body).await.unwrap(), 404, "BadPath");

    let big = format!("{{\"aps\":{{}},\"pad\":\"{}\"}}", "x".repeat(4100));
    let request = client.request(TOKEN).body(()).unwrap();
    expect(
        client.send(request, big.as_bytes()).await.unwrap(),
        413,
        "PayloadTooLarge",
    );
    let voip = client
        .request(TOKEN)
        .header("apns-push-type", "voip")
        .body(())
        .unwrap();
    assert_eq!(
        client.send(voip, big.as_bytes()).await.unwrap().status,
        200,
        "voip allows 5120"
    );

    let request = client
        .request(TOKEN)
        .header("apns-priority", "7")
        .body(())
        .unwrap();
    expect(
        client.send(request, body).await.unwrap(),
        400,
        "BadPriority",
    );
    let request = client
        .request(TOKEN)
        .header("apns-push-type", "background")
        .header("apns-priority", "10")
        .body(())
        .unwrap();
    expect(
        client.send(request, body).await.unwrap(),
        400,
        "BadPriority",
    );

    let collapse = "c".repeat(65);
    let request = client
        .request(TOKEN)
        .header("apns-collapse-id", collapse)
        .body(())
        .unwrap();
    expect(
        client.send(request, body).await.unwrap(),
        400,
        "BadCollapseId",
    );

    let request = client
        .request(TOKEN)
        .header("apns-id", "nope")
        .body(())
        .unwrap();
    expect(
        client.send(request, body).await.unwrap(),
        400,
        "BadMessageId",
    );

    let request = client
        .request(TOKEN)
        .header("apns-expiration", "later")
        .body(())
        .unwrap();
    expect(
        client.send(request, body).await.unwrap(),
        400,
        "BadExpirationDate",
    );

    let no_topic = http::Request::builder()
        .method("POST")
        .uri(format!(
            "https://localhost:{}/3/device/{TOKEN}",
            server.port()
        ))
        .body(())
        .unwrap();
    expect(
        client.send(no_topic, body).await.unwrap(),
        400,
        "MissingTopic",
    );

    let request = client.request(TOKEN).body(()).unwrap();
    expect(
        client.send(request, b"").await.unwrap(),
        400,
        "PayloadEmpty",
    );
    let request = client.request(TOKEN).body(()).unwrap();
    expect(
        client.send(request, b"[1,2]").await.unwrap(),
        400,
        "BadRequestPayload",
    );

    let request = client.request("").body(()).unwrap();
    expect(
        client.send(request, body).await.unwrap(),
        400,
        "MissingDeviceToken",
    );
    let request = client.request("xyz").body(()).unwrap();
    expect(
        client.send(request, body).await.unwrap(),
        400,
        "BadDeviceToken",
    );

    // Everything fully received counts, valid or not (the bad path has no token).
    assert_eq!(server.received(TOKEN), 11);
    assert_eq!(server.received("xyz"), 1);
    assert_eq!(server.total_received(), 14);
}

#[tokio::test]
async fn hung_stream_does_not_block_others() {
    let config = MockConfig::new().rule(Match::Prefix("aaaa".into()), Behavior::Hang);
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;

    let hung = client
        .start(client.request("aaaa01").body(()).unwrap(), b"{}")
        .await
        .unwrap();
    let mut hung = tokio::spawn(read_answer(hung));
    assert!(eventually(SOON, || server.received("aaaa01") == 1).await);
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut hung)
            .await
            .is_err(),
        "the hung stream was answered"
    );
    assert!(server.max_active_streams_seen() >= 2);
    assert!(!client.connection.is_finished());
}

#[tokio::test]
async fn delay_answers_later_without_blocking() {
    let config = MockConfig::new().rule(
        Match::Prefix("de1a".into()),
        Behavior::Delay(Duration::from_millis(400)),
    );
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;
    let started = tokio::time::Instant::now();
    let delayed = client
        .start(client.request("de1a").body(()).unwrap(), b"{}")
        .await
        .unwrap();
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(read_answer(delayed).await.unwrap().status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn reset_rule_sends_rst_stream_with_reason() {
    let config = MockConfig::new()
        .rule(Match::Prefix("cc".into()), Behavior::Reset(Reason::CANCEL))
        .rule(
            Match::Prefix("ff".into()),
            Behavior::Reset(Reason::REFUSED_STREAM),
        );
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;
    let error = client.push("cc00").await.unwrap_err();
    assert!(error.is_reset() && error.is_remote(), "{error:?}");
    assert_eq!(error.reason(), Some(Reason::CANCEL));
    let error = client.push("ff00").await.unwrap_err();
    assert_eq!(error.reason(), Some(Reason::REFUSED_STREAM));
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
}

#[tokio::test]
async fn provider_tokens_are_verified() {
    let key = signing_key();
    let impostor = signing_key();
    let config = MockConfig::new().jwt_key(JwtKey {
        key_id: "ABC123DEFG".into(),
        team_id: "TEAM123456".into(),
        public_key_pem: key.public_pem.clone(),
    });
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;
    let with_auth = |token: String| {
        client
            .request(TOKEN)
            .header("authorization", format!("bearer {token}"))
            .body(())
            .unwrap()
    };
    let body = b"{\"aps\":{}}";

    let good = with_auth(jwt(&key, "ABC123DEFG", "TEAM123456"));
    assert_eq!(client.send(good, body).await.unwrap().status, 200);

    for bad in [
        jwt(&impostor, "ABC123DEFG", "TEAM123456"),
        jwt(&key, "OTHERKEY00", "TEAM123456"),
        jwt(&key, "ABC123DEFG", "OTHERTEAM0"),
    ] {
        let answer = client.send(with_auth(bad), body).await.unwrap();
        assert_eq!(answer.status, 403);
        assert_eq!(answer.json()["reason"], "InvalidProviderToken");
    }
    let missing = client
        .send(client.request(TOKEN).body(()).unwrap(), body)
        .await
        .unwrap();
    assert_eq!(missing.status, 403);
    assert_eq!(missing.json()["reason"], "MissingProviderToken");
}

#[tokio::test]
async fn start_at_one_raises_the_limit_after_the_first_success() {
    let config = MockConfig::new()
        .max_concurrent_streams(250)
        .start_streams_at_one(true);
    let server = MockServer::start(config).unwrap();
    let mut client = connect(&server).await;
    client.round_trip().await;
    assert_eq!(client.send.current_max_send_streams(), 1);

    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    let send = client.send.clone();
    assert!(eventually(SOON, || send.current_max_send_streams() == 250).await);
    // The injected SETTINGS was ACKed without upsetting h2 on either side.
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    client.round_trip().await;
    assert!(!client.connection.is_finished());

    // A failure does not raise the limit on a fresh connection.
    server.set_rules(vec![prefix(
        "",
        Behavior::Reject {
            status: 500,
            reason: "InternalServerError".into(),
            timestamp_ms: None,
        },
    )]);
    let mut second = connect(&server).await;
    assert_eq!(second.push(TOKEN).await.unwrap().status, 500);
    second.round_trip().await;
    assert_eq!(second.send.current_max_send_streams(), 1);
}

#[tokio::test]
async fn max_concurrent_streams_changes_live() {
    let server = MockServer::start(MockConfig::new().max_concurrent_streams(100)).unwrap();
    let mut client = connect(&server).await;
    client.round_trip().await;
    assert_eq!(client.send.current_max_send_streams(), 100);

    server.set_max_concurrent_streams(3);
    let send = client.send.clone();
    assert!(eventually(SOON, || send.current_max_send_streams() == 3).await);
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);

    server.set_max_concurrent_streams(40);
    assert!(eventually(SOON, || send.current_max_send_streams() == 40).await);
    client.round_trip().await;
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    assert!(!client.connection.is_finished());

    let mut fresh = connect(&server).await;
    fresh.round_trip().await;
    assert_eq!(fresh.send.current_max_send_streams(), 40);
}

#[tokio::test]
async fn client_within_the_limit_is_never_refused() {
    let config = MockConfig::new().max_concurrent_streams(4).rule(
        Match::Prefix("de1a".into()),
        Behavior::Delay(Duration::from_millis(50)),
    );
    let server = MockServer::start(config).unwrap();
    let mut client = connect(&server).await;
    client.round_trip().await;
    let mut pending = Vec::new();
    for _ in 0..20 {
        let request = client.request("de1a").body(()).unwrap();
        pending.push(client.start(request, b"{}").await.unwrap());
    }
    for response in pending {
        assert_eq!(read_answer(response).await.unwrap().status, 200);
    }
    assert_eq!(server.refused_streams(), 0);
    assert_eq!(server.max_active_streams_seen(), 4);
    assert_eq!(server.received("de1a"), 20);
}

#[tokio::test]
async fn goaway_rule_sends_goaway_and_closes() {
    let server =
        MockServer::start(MockConfig::new().rule(Match::Prefix("90".into()), Behavior::GoAway))
            .unwrap();
    let mut client = connect(&server).await;
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    let error = tokio::time::timeout(SOON, client.push("90aa"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        !error.is_reset(),
        "the stream is not answered or reset: {error:?}"
    );
    let closed = tokio::time::timeout(SOON, &mut client.connection).await;
    assert!(closed.is_ok(), "the connection closes after GOAWAY");
    let later = client.push(TOKEN).await.unwrap_err();
    assert!(later.is_go_away() || later.is_io(), "{later:?}");
    assert_eq!(server.received("90aa"), 1);
}

#[tokio::test]
async fn goaway_after_streams_is_graceful() {
    let server = MockServer::start(MockConfig::new().goaway_after_streams(2)).unwrap();
    let mut client = connect(&server).await;
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    assert_eq!(
        client.push(TOKEN).await.unwrap().status,
        200,
        "stream 2 is still served"
    );
    // The server closes once both streams are done (the client may then see EPIPE
    // when it writes its own TLS close_notify).
    let closed = tokio::time::timeout(SOON, &mut client.connection).await;
    assert!(closed.is_ok(), "connection still open");
    let error = client.push(TOKEN).await.unwrap_err();
    assert!(error.is_go_away() || error.is_io(), "{error:?}");

    let again = connect(&server).await;
    assert_eq!(again.push(TOKEN).await.unwrap().status, 200);
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn close_connection_drops_tcp_at_once() {
    let config = MockConfig::new().rule(Match::Prefix("c1".into()), Behavior::CloseConnection);
    let server = MockServer::start(config).unwrap();
    let mut client = connect(&server).await;
    let error = tokio::time::timeout(SOON, client.push("c1"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(!error.is_go_away(), "no GOAWAY before the close: {error:?}");
    assert!(tokio::time::timeout(SOON, &mut client.connection)
        .await
        .is_ok());
    assert!(eventually(SOON, || server.open_connections() == 0).await);
}

#[tokio::test]
async fn blackhole_silences_the_connection() {
    let config = MockConfig::new().rule(Match::Prefix("b1ac".into()), Behavior::Blackhole);
    let server = MockServer::start(config).unwrap();
    let mut client = connect(&server).await;
    assert!(client.ping_answered(Duration::from_millis(500)).await);

    let silenced = client
        .start(client.request("b1ac").body(()).unwrap(), b"{}")
        .await
        .unwrap();
    let mut silenced = tokio::spawn(read_answer(silenced));
    assert!(eventually(SOON, || server.received("b1ac") == 1).await);
    assert!(
        !client.ping_answered(Duration::from_millis(500)).await,
        "PING acked"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut silenced)
            .await
            .is_err()
    );
    assert!(!client.connection.is_finished(), "TCP stays open");
    assert_eq!(server.open_connections(), 1);

    // Other connections are unaffected.
    let other = connect(&server).await;
    assert_eq!(other.push(TOKEN).await.unwrap().status, 200);

    client.connection.abort();
    assert!(eventually(SOON, || server.open_connections() == 1).await);
}

#[test]
fn starts_and_stops_from_sync_code_and_cleans_up() {
    let mut server = MockServer::start(MockConfig::new()).unwrap();
    let ca_file = server.ca_file();
    let pem = std::fs::read_to_string(&ca_file).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = connect(&server).await;
        assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    });
    server.stop();
    assert!(!ca_file.exists(), "temp cert dir removed");
    server.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err());
}

#[test]
fn explicit_cert_dir_is_kept() {
    let dir = std::env::temp_dir().join(format!("pushwire-mock-test-{}", std::process::id()));
    let server = MockServer::start(MockConfig::new().cert_dir(&dir)).unwrap();
    assert_eq!(server.ca_file(), dir.join("ca.pem"));
    drop(server);
    assert!(dir.join("ca.pem").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_concurrent_requests_never_stall() {
    let config = MockConfig::new()
        .max_concurrent_streams(500)
        .start_streams_at_one(true);
    let server = MockServer::start(config).unwrap();
    let client = std::sync::Arc::new(connect(&server).await);
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    let send = client.send.clone();
    assert!(eventually(SOON, || send.current_max_send_streams() == 500).await);

    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..50 {
        let client = client.clone();
        tasks.spawn(async move {
            for i in 0..60 {
                let token = format!("{worker:02x}{i:02x}");
                let answer = client.push(&token).await.unwrap();
                assert_eq!(answer.status, 200);
            }
        });
    }
    let all = tokio::time::timeout(Duration::from_secs(30), tasks.join_all()).await;
    assert!(all.is_ok(), "requests stalled");
    assert_eq!(server.total_received(), 3001);
    assert_eq!(server.received("0a3b"), 1);
    assert_eq!(server.refused_streams(), 0);
    assert!(server.max_active_streams_seen() <= 500);
}

#[test]
fn public_types_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<MockServer>();
    assert_send_sync::<MockConfig>();
    assert_send_sync::<Rule>();
}
