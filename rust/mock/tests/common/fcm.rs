//! FCM helpers: test-only RSA service accounts, JWT-bearer assertions, token grants and
//! v1 sends over the h2 test client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request};
use pushwire_mock::ServiceAccountKey;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde_json::{json, Value};

use super::jwt::unix_now;
use super::{Answer, Client};

pub const EMAIL: &str = "pushwire-test@demo-project.iam.gserviceaccount.com";
pub const PROJECT: &str = "demo-project";
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const FCM_TOKEN: &str = "fcmtoken-0001:APA91bTEST";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A throwaway RSA key pair from `tests/data` (ring cannot generate RSA keys).
pub struct TestAccount {
    pair: RsaKeyPair,
    pub public_pem: &'static str,
}

pub fn account_a() -> TestAccount {
    account(
        include_str!("../data/test-only-rsa-2048-a.key.pem"),
        include_str!("../data/test-only-rsa-2048-a.pub.pem"),
    )
}

pub fn account_b() -> TestAccount {
    account(
        include_str!("../data/test-only-rsa-2048-b.key.pem"),
        include_str!("../data/test-only-rsa-2048-b.pub.pem"),
    )
}

fn account(private_pem: &str, public_pem: &'static str) -> TestAccount {
    let der = PrivatePkcs8KeyDer::from_pem_slice(private_pem.as_bytes()).unwrap();
    TestAccount {
        pair: RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap(),
        public_pem,
    }
}

impl TestAccount {
    /// The mock's view of this account.
    pub fn key(&self) -> ServiceAccountKey {
        ServiceAccountKey {
            client_email: EMAIL.into(),
            public_key_pem: self.public_pem.into(),
        }
    }

    /// An RS256 JWT over `claims`.
    pub fn assertion(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// Claims a Google client sends, issued now and valid for an hour.
pub fn claims(aud: &str) -> Value {
    let now = unix_now();
    json!({"iss": EMAIL, "scope": FCM_SCOPE, "aud": aud, "iat": now, "exp": now + 3600})
}

/// The form body of a JWT-bearer grant.
pub fn grant_form(assertion: &str) -> String {
    format!(
        "grant_type={}&assertion={assertion}",
        JWT_BEARER.replace(':', "%3A")
    )
}

impl Client {
    pub async fn post_token(&self, form: &str) -> Answer {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("https://localhost:{}/token", self.port))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(())
            .unwrap();
        self.send(request, form.as_bytes()).await.unwrap()
    }

    /// Grants a token for `account` (aud = the mock's token URI) and returns it.
    pub async fn access_token(&self, account: &TestAccount) -> String {
        let aud = format!("https://localhost:{}/token", self.port);
        let answer = self
            .post_token(&grant_form(&account.assertion(&claims(&aud))))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        answer.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// An FCM v1 send request to `project` with an optional bearer token.
    pub fn fcm_request(&self, project: &str, bearer: Option<&str>) -> Request<()> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!(
                "https://localhost:{}/v1/projects/{project}/messages:send",
                self.port
            ))
            .header("content-type", "application/json");
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(()).unwrap()
    }

    pub async fn fcm_send(&self, bearer: Option<&str>, body: &Value) -> Answer {
        self.fcm_send_raw(bearer, Bytes::from(body.to_string()))
            .await
    }

    pub async fn fcm_send_raw(&self, bearer: Option<&str>, body: Bytes) -> Answer {
        self.send(self.fcm_request(PROJECT, bearer), &body)
            .await
            .unwrap()
    }
}

/// A minimal valid send to `token`.
pub fn to_token(token: &str) -> Value {
    json!({"message": {"token": token, "notification": {"title": "Hi"}, "data": {"k": "v"}}})
}

impl Answer {
    /// `error.details[].errorCode` of a Google error body, if any.
    pub fn fcm_error_code(&self) -> Option<String> {
        let json = self.json();
        json["error"]["details"]
            .as_array()?
            .iter()
            .find_map(|d| d["errorCode"].as_str().map(str::to_owned))
    }

    pub fn google_status(&self) -> String {
        self.json()["error"]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn retry_after(&self) -> Option<String> {
        self.headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned())
    }
}
