//! Authentication like APNs: client certificates, provider-token age, key binding and
//! the minimum time between token changes on one connection.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::jwt::{jwt, jwt_at, signing_key, unix_now};
use common::{connect, try_connect, Answer, Client, TOKEN};
use pushwire_mock::{MockConfig, MockServer};
use pushwire_test_support::TestCa;

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "TEAM123456";
const BUNDLE_ID: &str = "com.example.app";
const BODY: &[u8] = b"{\"aps\":{}}";

async fn push_with(client: &Client, jwt: &str) -> Answer {
    let request = client
        .request(TOKEN)
        .header("authorization", format!("bearer {jwt}"))
        .body(())
        .unwrap();
    client.send(request, BODY).await.unwrap()
}

fn assert_answer(answer: &Answer, status: u16, reason: &str) {
    assert_eq!(answer.status, status, "{reason}: {answer:?}");
    assert_eq!(answer.json()["reason"], reason);
}

#[tokio::test]
async fn client_certificate_is_required_when_a_client_ca_is_set() {
    let ca = TestCa::new("client CA");
    let server = MockServer::start(MockConfig::new().client_ca_pem(ca.pem())).unwrap();

    let client = try_connect(&server, Some(ca.issue_client(BUNDLE_ID)))
        .await
        .unwrap();
    let answer = client.push(TOKEN).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(server.cert_connections(), 1);

    // Without a certificate, or with one from another CA, the TLS handshake fails; under
    // TLS 1.3 the client may only learn it when it first reads.
    let stranger = TestCa::new("another CA").issue_client(BUNDLE_ID);
    for identity in [None, Some(stranger)] {
        let refused = async {
            let client = try_connect(&server, identity).await?;
            client.push(TOKEN).await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        let outcome = tokio::time::timeout(Duration::from_secs(5), refused).await;
        assert!(matches!(outcome, Ok(Err(_))), "{outcome:?}");
    }
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.cert_connections(), 1);
    assert_eq!(server.total_received(), 1);
}

#[tokio::test]
async fn certificate_connections_need_no_provider_token() {
    let ca = TestCa::new("client CA");
    let key = signing_key();
    let config = MockConfig::new()
        .client_ca_pem(ca.pem())
        .jwt_key(key.jwt_key(KEY_ID, TEAM_ID));
    let server = MockServer::start(config).unwrap();
    let client = try_connect(&server, Some(ca.issue_client(BUNDLE_ID)))
        .await
        .unwrap();
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    // APNs ignores the header on certificate connections, even a bad or stale one.
    let stale = jwt_at(&key, KEY_ID, TEAM_ID, unix_now() - 7200);
    assert_eq!(push_with(&client, &stale).await.status, 200);
    assert_eq!(push_with(&client, "garbage").await.status, 200);
    assert_eq!(server.distinct_tokens(), 0);
}

#[test]
fn unusable_client_ca_fails_to_start() {
    let error = MockServer::start(MockConfig::new().client_ca_pem("no pem here")).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
}

#[tokio::test]
async fn jwt_max_age_expires_old_tokens_and_future_ones_are_invalid() {
    let key = signing_key();
    let config = MockConfig::new()
        .jwt_key(key.jwt_key(KEY_ID, TEAM_ID))
        .jwt_max_age(Duration::from_secs(600));
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;
    let now = unix_now();

    let young = jwt_at(&key, KEY_ID, TEAM_ID, now - 500);
    assert_eq!(push_with(&client, &young).await.status, 200);
    let old = jwt_at(&key, KEY_ID, TEAM_ID, now - 700);
    assert_answer(&push_with(&client, &old).await, 403, "ExpiredProviderToken");
    let future = jwt_at(&key, KEY_ID, TEAM_ID, now + 120);
    assert_answer(
        &push_with(&client, &future).await,
        403,
        "InvalidProviderToken",
    );
    assert_eq!(server.distinct_tokens(), 1);
}

#[tokio::test]
async fn a_new_token_within_the_update_window_is_refused_per_connection() {
    let window = Duration::from_secs(1);
    let key = signing_key();
    let config = MockConfig::new()
        .jwt_key(key.jwt_key(KEY_ID, TEAM_ID))
        .token_update_window(window);
    let server = MockServer::start(config).unwrap();
    let first = jwt(&key, KEY_ID, TEAM_ID);
    // Another valid token: a different `iat` makes a different string.
    let second = jwt_at(&key, KEY_ID, TEAM_ID, unix_now() - 1);
    assert_ne!(first, second);

    let client = connect(&server).await;
    assert_eq!(push_with(&client, &first).await.status, 200);
    assert_answer(
        &push_with(&client, &second).await,
        429,
        "TooManyProviderTokenUpdates",
    );
    // The refused update left the first token current.
    assert_eq!(push_with(&client, &first).await.status, 200);
    // The window is per connection: a fresh one may start with the second token.
    let other = connect(&server).await;
    assert_eq!(push_with(&other, &second).await.status, 200);

    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert_eq!(push_with(&client, &second).await.status, 200);
    assert_eq!(push_with(&client, &second).await.status, 200);
    assert_eq!(server.token_update_rejections(), 1);
    assert_eq!(server.distinct_tokens(), 2);
}

#[tokio::test]
async fn a_connection_is_bound_to_its_first_key_id() {
    let key = signing_key();
    let other_key = signing_key();
    let config = MockConfig::new()
        .jwt_key(key.jwt_key(KEY_ID, TEAM_ID))
        .jwt_key(other_key.jwt_key("OTHERKEY00", TEAM_ID))
        .token_update_window(Duration::ZERO);
    let server = MockServer::start(config).unwrap();

    let client = connect(&server).await;
    assert_eq!(
        push_with(&client, &jwt(&key, KEY_ID, TEAM_ID)).await.status,
        200
    );
    let unrelated = jwt(&other_key, "OTHERKEY00", TEAM_ID);
    assert_answer(
        &push_with(&client, &unrelated).await,
        403,
        "UnrelatedKeyIdInToken",
    );
    let fresh = connect(&server).await;
    assert_eq!(push_with(&fresh, &unrelated).await.status, 200);
    assert_eq!(server.token_update_rejections(), 0);
}
