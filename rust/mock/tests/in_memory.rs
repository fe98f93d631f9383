//! An h2 client against the mock's connection handling over an in-memory pipe (no socket, no
//! TLS): live SETTINGS changes, REFUSED_STREAM and GOAWAY as the client sees them.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{connect_in_memory, TOKEN};
use h2::Reason;
use pushwire_mock::{parse_rule, MockConfig, MockServer};

#[tokio::test]
async fn the_advertised_stream_limit_changes_on_a_live_connection() {
    let server = MockServer::start(MockConfig::new().max_concurrent_streams(50)).unwrap();
    let mut client = connect_in_memory(&server).await;
    client.round_trip().await;
    assert_eq!(client.send.current_max_send_streams(), 50);
    assert_eq!(server.open_connections(), 1);

    server.set_max_concurrent_streams(3);
    client.round_trip().await;
    assert_eq!(client.send.current_max_send_streams(), 3, "lowered");
    server.set_max_concurrent_streams(7);
    client.round_trip().await;
    assert_eq!(client.send.current_max_send_streams(), 7, "raised again");
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    assert_eq!(server.received(TOKEN), 1);
}

#[tokio::test]
async fn refused_stream_is_a_remote_reset_with_its_reason() {
    let mut config = MockConfig::new();
    config.rules = vec![parse_rule(&format!("{TOKEN}=refused")).unwrap()];
    let server = MockServer::start(config).unwrap();
    let client = connect_in_memory(&server).await;
    let err = client.push(TOKEN).await.unwrap_err();
    assert!(err.is_reset() && err.is_remote(), "{err:?}");
    assert_eq!(err.reason(), Some(Reason::REFUSED_STREAM));
    // The connection survives a refused stream.
    assert_eq!(client.push("0011").await.unwrap().status, 200);
    assert_eq!(server.received(TOKEN), 1);
}

#[tokio::test]
async fn goaway_ends_the_connection_and_refuses_new_streams() {
    let mut config = MockConfig::new();
    config.rules = vec![parse_rule(&format!("{TOKEN}=goaway")).unwrap()];
    let server = MockServer::start(config).unwrap();
    let client = connect_in_memory(&server).await;
    // The GOAWAY'd stream is left unanswered; the connection then closes under it.
    let err = client.push(TOKEN).await.unwrap_err();
    assert!(!err.is_reset(), "{err:?}");
    let later = client.push(TOKEN).await.unwrap_err();
    assert!(later.is_go_away() || later.is_io(), "{later:?}");
    assert_eq!(
        server.received(TOKEN),
        1,
        "only the first request reached the server"
    );
    assert!(
        common::eventually(std::time::Duration::from_secs(5), || server
            .open_connections()
            == 0)
        .await
    );
}
