//! FCM HTTP v1 and its OAuth2 token endpoint on the same server as APNs, through a real
//! h2-over-TLS client.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::fcm::{
    account_a, account_b, claims, grant_form, to_token, EMAIL, FCM_TOKEN, GOOGLE_TOKEN_URI, PROJECT,
};
use common::jwt::unix_now;
use common::{connect, read_answer, Answer, TOKEN};
use h2::Reason;
use pushwire_mock::{parse_rule, MockConfig, MockServer};
use serde_json::{json, Value};

const SOON: Duration = Duration::from_secs(5);

fn with_account() -> MockConfig {
    MockConfig::new().fcm_service_account(account_a().key())
}

fn rules(specs: &[&str]) -> MockConfig {
    let mut config = MockConfig::new();
    config.rules = specs.iter().map(|s| parse_rule(s).unwrap()).collect();
    config
}

fn assert_grant_error(answer: &Answer, error: &str) {
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.json()["error"], error, "{answer:?}");
    assert!(answer.json()["error_description"].is_string());
}

fn assert_google_error(answer: &Answer, status: u16, google_status: &str, code: Option<&str>) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.headers["content-type"], "application/json");
    let json = answer.json();
    assert_eq!(json["error"]["code"], status);
    assert_eq!(json["error"]["status"], google_status, "{json}");
    assert!(json["error"]["message"].is_string());
    assert_eq!(answer.fcm_error_code().as_deref(), code, "{json}");
}

fn field_violation(answer: &Answer) -> Value {
    answer.json()["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .map_or(Value::Null, |d| d["fieldViolations"][0]["field"].clone())
}

#[tokio::test]
async fn oauth_grant_issues_a_bearer_token() {
    let config = with_account().fcm_token_lifetime(Duration::from_secs(1234));
    let server = MockServer::start(config).unwrap();
    assert_eq!(server.token_uri(), format!("{}/token", server.url()));
    let client = connect(&server).await;
    let account = account_a();

    let answer = client
        .post_token(&grant_form(
            &account.assertion(&claims(&server.token_uri())),
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["content-type"], "application/json");
    let json = answer.json();
    assert!(json["access_token"].as_str().unwrap().starts_with("ya29."));
    assert_eq!(json["expires_in"], 1234);
    assert_eq!(json["token_type"], "Bearer");

    // Google's own token URI is an accepted audience too, and tokens differ.
    let google = client
        .post_token(&grant_form(&account.assertion(&claims(GOOGLE_TOKEN_URI))))
        .await;
    assert_eq!(google.status, 200, "{google:?}");
    assert_ne!(google.json()["access_token"], json["access_token"]);
    assert_eq!(server.oauth_tokens_issued(), 2);
    assert_eq!(server.total_received(), 0, "grants are not pushes");
}

#[tokio::test]
async fn oauth_grant_refuses_bad_assertions() {
    let server = MockServer::start(with_account()).unwrap();
    let client = connect(&server).await;
    let good = account_a();
    let aud = server.token_uri();
    let now = unix_now();
    let changed = |changes: Value| {
        let mut claims = claims(&aud);
        for (key, value) in changes.as_object().unwrap() {
            claims[key] = value.clone();
        }
        good.assertion(&claims)
    };

    let signed_by_another_key = account_b().assertion(&claims(&aud));
    let cases = [
        (signed_by_another_key, "invalid_grant"),
        (
            changed(json!({"aud": "https://example.com/token"})),
            "invalid_grant",
        ),
        (
            changed(json!({"iat": now - 7200, "exp": now - 3600})),
            "invalid_grant",
        ),
        (changed(json!({"exp": now + 7200})), "invalid_grant"),
        (
            changed(json!({"iat": now + 600, "exp": now + 1200})),
            "invalid_grant",
        ),
        (
            changed(json!({"iss": "stranger@example.iam.gserviceaccount.com"})),
            "invalid_grant",
        ),
        (
            changed(json!({"scope": "https://www.googleapis.com/auth/userinfo.email"})),
            "invalid_scope",
        ),
        ("not-a-jwt".to_owned(), "invalid_grant"),
    ];
    for (assertion, error) in cases {
        assert_grant_error(&client.post_token(&grant_form(&assertion)).await, error);
    }

    let valid = good.assertion(&claims(&aud));
    let wrong_grant = format!("grant_type=client_credentials&assertion={valid}");
    assert_grant_error(
        &client.post_token(&wrong_grant).await,
        "unsupported_grant_type",
    );
    let no_assertion = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
    assert_grant_error(&client.post_token(no_assertion).await, "invalid_request");
    assert_grant_error(&client.post_token("").await, "invalid_request");
    assert_eq!(server.oauth_tokens_issued(), 0);

    // The cloud-platform scope is enough, among others.
    let cloud = changed(json!({
        "scope": "openid https://www.googleapis.com/auth/cloud-platform"
    }));
    assert_eq!(client.post_token(&grant_form(&cloud)).await.status, 200);
    assert_eq!(server.oauth_tokens_issued(), 1);
}

#[tokio::test]
async fn fcm_send_needs_an_issued_unexpired_bearer_token() {
    let server = MockServer::start(with_account()).unwrap();
    let client = connect(&server).await;
    let body = to_token(FCM_TOKEN);

    for bearer in [None, Some("ya29.not-issued-here")] {
        let answer = client.fcm_send(bearer, &body).await;
        assert_google_error(&answer, 401, "UNAUTHENTICATED", None);
        assert!(answer.json()["error"].get("details").is_none());
    }

    let token = client.access_token(&account_a()).await;
    let answer = client.fcm_send(Some(&token), &body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"name": format!("projects/{PROJECT}/messages/0:1")})
    );
    let second = client.fcm_send(Some(&token), &body).await;
    assert_eq!(
        second.json()["name"],
        format!("projects/{PROJECT}/messages/0:2")
    );

    // "The mock expires it mid-run": the same token now gets 401, a fresh one works.
    server.expire_oauth_tokens();
    let expired = client.fcm_send(Some(&token), &body).await;
    assert_google_error(&expired, 401, "UNAUTHENTICATED", None);
    let fresh = client.access_token(&account_a()).await;
    assert_eq!(client.fcm_send(Some(&fresh), &body).await.status, 200);

    assert_eq!(server.oauth_tokens_issued(), 2);
    assert_eq!(
        server.received(FCM_TOKEN),
        6,
        "every fully read send counts"
    );
    assert_eq!(server.total_received(), 6);
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let config = with_account().fcm_token_lifetime(Duration::from_millis(300));
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;
    let token = client.access_token(&account_a()).await;
    let body = to_token(FCM_TOKEN);
    assert_eq!(client.fcm_send(Some(&token), &body).await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answer = client.fcm_send(Some(&token), &body).await;
    assert_google_error(&answer, 401, "UNAUTHENTICATED", None);
}

#[tokio::test]
async fn without_service_accounts_sends_need_no_bearer() {
    let server = MockServer::start(MockConfig::new()).unwrap();
    let client = connect(&server).await;
    assert_eq!(
        client.fcm_send(None, &to_token(FCM_TOKEN)).await.status,
        200
    );
    let grant = client
        .post_token(&grant_form(
            &account_a().assertion(&claims(&server.token_uri())),
        ))
        .await;
    assert_grant_error(&grant, "invalid_grant");
}

#[tokio::test]
async fn behaviours_answer_in_fcm_shape() {
    let config = rules(&[
        "unreg=unregistered",
        "expired=expired-token",
        "badtok=bad-token",
        "quota=429",
        "internal=500",
        "unavail=503",
        "sender=sender-mismatch",
        "thirdparty=third-party-auth",
        "invalid=invalid-argument",
        "unspec=unspecified",
        "explicit=reject:409:SOME_NEW_CODE",
    ]);
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;
    let send = |token: &str| client.fcm_send_raw(None, body_for(token));

    let unregistered = send("unreg-1").await;
    assert_eq!(
        unregistered.json(),
        json!({"error": {
            "code": 404,
            "message": "Requested entity was not found.",
            "status": "NOT_FOUND",
            "details": [{
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": "UNREGISTERED",
            }],
        }})
    );
    assert_google_error(
        &send("expired-1").await,
        404,
        "NOT_FOUND",
        Some("UNREGISTERED"),
    );

    let bad_token = send("badtok-1").await;
    assert_google_error(
        &bad_token,
        400,
        "INVALID_ARGUMENT",
        Some("INVALID_ARGUMENT"),
    );
    assert_eq!(
        bad_token.json()["error"]["message"],
        "The registration token is not a valid FCM registration token"
    );
    assert_eq!(field_violation(&bad_token), Value::Null);

    let quota = send("quota-1").await;
    assert_google_error(&quota, 429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"));
    assert_eq!(quota.retry_after().as_deref(), Some("60"));
    let internal = send("internal-1").await;
    assert_google_error(&internal, 500, "INTERNAL", Some("INTERNAL"));
    assert_eq!(internal.retry_after(), None);
    let unavailable = send("unavail-1").await;
    assert_google_error(&unavailable, 503, "UNAVAILABLE", Some("UNAVAILABLE"));
    assert_eq!(unavailable.retry_after().as_deref(), Some("1"));

    let sender = send("sender-1").await;
    assert_google_error(
        &sender,
        403,
        "PERMISSION_DENIED",
        Some("SENDER_ID_MISMATCH"),
    );
    let third_party = send("thirdparty-1").await;
    assert_google_error(
        &third_party,
        401,
        "UNAUTHENTICATED",
        Some("THIRD_PARTY_AUTH_ERROR"),
    );
    let invalid = send("invalid-1").await;
    assert_google_error(&invalid, 400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"));
    assert_eq!(
        field_violation(&invalid),
        "message",
        "a payload bug names a field"
    );
    assert_ne!(
        invalid.json()["error"]["message"],
        bad_token.json()["error"]["message"]
    );
    let unspecified = send("unspec-1").await;
    assert_google_error(&unspecified, 500, "INTERNAL", Some("UNSPECIFIED_ERROR"));
    let explicit = send("explicit-1").await;
    assert_google_error(&explicit, 409, "ABORTED", Some("SOME_NEW_CODE"));

    // The same rules still answer APNs pushes in APNs shape.
    let apns = client.push("badd").await.unwrap();
    assert_eq!(apns.status, 200, "no rule for this hex token");
    server.set_rules(vec![parse_rule("=unregistered").unwrap()]);
    let apns = client.push(TOKEN).await.unwrap();
    assert_eq!(apns.status, 410);
    assert_eq!(apns.json()["reason"], "Unregistered");
    assert!(apns.json()["timestamp"].is_u64());
}

#[tokio::test]
async fn rules_match_topics_and_conditions_too() {
    let server = MockServer::start(rules(&["news=unregistered", "'a'=503"])).unwrap();
    let client = connect(&server).await;
    let topic = client
        .fcm_send(None, &json!({"message": {"topic": "news"}}))
        .await;
    assert_eq!(topic.fcm_error_code().as_deref(), Some("UNREGISTERED"));
    let condition = client
        .fcm_send(None, &json!({"message": {"condition": "'a' in topics"}}))
        .await;
    assert_eq!(condition.status, 503);
    assert_eq!(server.total_received(), 2);
    assert_eq!(
        server.received("news"),
        0,
        "only message.token is counted per token"
    );
}

#[tokio::test]
async fn faults_work_on_fcm_requests() {
    let server = MockServer::start(rules(&[
        "hang=hang",
        "slow=delay:300",
        "cancel=reset:cancel",
    ]))
    .unwrap();
    let client = connect(&server).await;

    let request = client.fcm_request(PROJECT, None);
    let reset = tokio::time::timeout(SOON, client.send(request, &body_for("cancel-1")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(reset.is_reset() && reset.is_remote(), "{reset:?}");
    assert_eq!(reset.reason(), Some(Reason::CANCEL));

    let hung = client
        .start(client.fcm_request(PROJECT, None), &body_for("hang-1"))
        .await
        .unwrap();
    let mut hung = tokio::spawn(read_answer(hung));
    let started = tokio::time::Instant::now();
    let slow = client.fcm_send(None, &to_token("slow-1")).await;
    assert_eq!(slow.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(tokio::time::timeout(Duration::from_millis(200), &mut hung)
        .await
        .is_err());
    assert_eq!(server.received("hang-1"), 1);
}

fn body_for(token: &str) -> Bytes {
    Bytes::from(to_token(token).to_string())
}

#[tokio::test]
async fn invalid_messages_get_invalid_argument_with_the_field() {
    let server = MockServer::start(MockConfig::new()).unwrap();
    let client = connect(&server).await;
    let expect = |answer: Answer, field: Value| {
        assert_google_error(&answer, 400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"));
        assert_eq!(field_violation(&answer), field, "{answer:?}");
    };

    let two_targets = json!({"message": {"token": FCM_TOKEN, "topic": "news"}});
    expect(client.fcm_send(None, &two_targets).await, json!("message"));
    let no_target = json!({"message": {"data": {"k": "v"}}});
    expect(client.fcm_send(None, &no_target).await, json!("message"));
    let no_message = json!({"validate_only": false});
    expect(client.fcm_send(None, &no_message).await, json!("message"));

    let raw = br#"{"message":{"token":"t","data":{"a":"x","n":1}}}"#;
    let number = client.fcm_send_raw(None, Bytes::from_static(raw)).await;
    expect(number, json!("message.data[1].value"));
    let reserved = json!({"message": {"token": FCM_TOKEN, "data": {"google.sent_time": "1"}}});
    expect(
        client.fcm_send(None, &reserved).await,
        json!("message.data[0].key"),
    );
    let from = json!({"message": {"token": FCM_TOKEN, "data": {"from": "me"}}});
    expect(
        client.fcm_send(None, &from).await,
        json!("message.data[0].key"),
    );

    let bad_ttl = json!({"message": {"token": FCM_TOKEN, "android": {"ttl": "1 hour"}}});
    expect(
        client.fcm_send(None, &bad_ttl).await,
        json!("message.android.ttl"),
    );
    let good_ttl = json!({"message": {"token": FCM_TOKEN, "android": {"ttl": "3600.5s"}}});
    assert_eq!(client.fcm_send(None, &good_ttl).await.status, 200);

    let big = json!({"message": {"token": FCM_TOKEN, "data": {"k": "x".repeat(4100)}}});
    let too_big = client.fcm_send(None, &big).await;
    assert_google_error(&too_big, 400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"));
    assert_eq!(too_big.json()["error"]["message"], "Message is too big");
    let huge = Bytes::from(vec![b' '; 100_000]);
    let huge = client.fcm_send_raw(None, huge).await;
    assert_eq!(huge.json()["error"]["message"], "Message is too big");

    let not_json = client
        .fcm_send_raw(None, Bytes::from_static(b"{oops"))
        .await;
    assert_google_error(&not_json, 400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"));

    assert_eq!(server.received(FCM_TOKEN), 6);
    assert_eq!(server.total_received(), 11, "invalid sends count too");
}

#[tokio::test]
async fn project_quota_answers_429_until_the_window_resets() {
    let window = Duration::from_secs(1);
    let server = MockServer::start(MockConfig::new().fcm_quota(2, window)).unwrap();
    let client = connect(&server).await;
    let body = to_token(FCM_TOKEN);
    assert_eq!(client.fcm_send(None, &body).await.status, 200);
    assert_eq!(client.fcm_send(None, &body).await.status, 200);

    let over = client.fcm_send(None, &body).await;
    assert_google_error(&over, 429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"));
    assert_eq!(over.retry_after().as_deref(), Some("1"));
    let quota_failure = &over.json()["error"]["details"][1];
    assert_eq!(
        quota_failure["@type"],
        "type.googleapis.com/google.rpc.QuotaFailure"
    );
    assert_eq!(
        quota_failure["violations"][0]["subject"],
        format!("project:{PROJECT}")
    );
    assert_eq!(server.quota_rejections(), 1);

    // The quota is per project.
    let other = client
        .send(
            client.fcm_request("other-project", None),
            body.to_string().as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(other.status, 200);

    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert_eq!(client.fcm_send(None, &body).await.status, 200);
    assert_eq!(server.quota_rejections(), 1);
}

#[tokio::test]
async fn quota_retry_after_counts_whole_seconds_to_the_reset() {
    let config = MockConfig::new().fcm_quota(1, Duration::from_secs(90));
    let server = MockServer::start(config).unwrap();
    let client = connect(&server).await;
    assert_eq!(
        client.fcm_send(None, &to_token(FCM_TOKEN)).await.status,
        200
    );
    let over = client.fcm_send(None, &to_token(FCM_TOKEN)).await;
    let seconds: u64 = over.retry_after().unwrap().parse().unwrap();
    assert!((89..=90).contains(&seconds), "{seconds}");
}

#[tokio::test]
async fn validate_only_is_a_dry_run() {
    let server = MockServer::start(rules(&["gone=unregistered"])).unwrap();
    let client = connect(&server).await;
    let mut body = to_token(FCM_TOKEN);
    body["validate_only"] = json!(true);
    let answer = client.fcm_send(None, &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json()["name"],
        format!("projects/{PROJECT}/messages/fake_message_id")
    );
    // A dry run still checks the token.
    let mut gone = to_token("gone-1");
    gone["validate_only"] = json!(true);
    let answer = client.fcm_send(None, &gone).await;
    assert_eq!(answer.fcm_error_code().as_deref(), Some("UNREGISTERED"));

    assert_eq!(server.fcm_dry_runs(), 2);
    assert_eq!(server.received(FCM_TOKEN), 0, "a dry run delivers nothing");
    assert_eq!(server.total_received(), 0);
    let real = client.fcm_send(None, &to_token(FCM_TOKEN)).await;
    assert_eq!(
        real.json()["name"],
        format!("projects/{PROJECT}/messages/0:1")
    );
    assert_eq!(server.received(FCM_TOKEN), 1);
}

#[tokio::test]
async fn apns_and_fcm_share_one_server_and_its_counters() {
    let server = MockServer::start(with_account()).unwrap();
    let client = connect(&server).await;
    assert_eq!(client.push(TOKEN).await.unwrap().status, 200);
    let token = client.access_token(&account_a()).await;
    assert_eq!(
        client.fcm_send(Some(&token), &to_token(TOKEN)).await.status,
        200
    );
    assert_eq!(server.received(TOKEN), 2);
    assert_eq!(server.total_received(), 2);
    assert_eq!(server.connections_accepted(), 1);

    let unknown = client
        .send(
            http::Request::builder()
                .method("POST")
                .uri(format!(
                    "https://localhost:{}/v1/projects/{PROJECT}/messages:batch",
                    client.port
                ))
                .body(())
                .unwrap(),
            b"{}",
        )
        .await
        .unwrap();
    assert_google_error(&unknown, 404, "NOT_FOUND", None);
    let get = client
        .send(
            http::Request::builder()
                .method("GET")
                .uri(format!(
                    "https://localhost:{}/v1/projects/{PROJECT}/messages:send",
                    client.port
                ))
                .body(())
                .unwrap(),
            b"",
        )
        .await
        .unwrap();
    assert_eq!(get.status, 404);
}

#[tokio::test]
async fn a_successful_fcm_send_raises_the_stream_limit() {
    let config = MockConfig::new()
        .max_concurrent_streams(50)
        .start_streams_at_one(true);
    let server = MockServer::start(config).unwrap();
    let mut client = connect(&server).await;
    client.round_trip().await;
    assert_eq!(client.send.current_max_send_streams(), 1);
    assert_eq!(
        client.fcm_send(None, &to_token(FCM_TOKEN)).await.status,
        200
    );
    let send = client.send.clone();
    assert!(common::eventually(SOON, || send.current_max_send_streams() == 50).await);
}

#[test]
fn unusable_fcm_config_fails_to_start() {
    let not_rsa = MockConfig::new().fcm_service_account(pushwire_mock::ServiceAccountKey {
        client_email: EMAIL.into(),
        public_key_pem: common::jwt::signing_key().public_pem,
    });
    let error = MockServer::start(not_rsa).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    let zero_window = MockConfig::new().fcm_quota(10, Duration::ZERO);
    let error = MockServer::start(zero_window).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
}
