//! A real h2-over-TLS client for the integration tests; it trusts only the mock's CA.

#![allow(dead_code)]

pub mod fcm;
pub use pushwire_test_support::jwt;

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{Ping, PingPong};
use http::{HeaderMap, Method, Request, StatusCode};
use pushwire_mock::MockServer;
use pushwire_test_support::ClientIdentity;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "00aa11bb22cc33dd44ee55ff66778899";

pub struct Client {
    pub send: SendRequest<Bytes>,
    pub ping: PingPong,
    pub connection: JoinHandle<Result<(), h2::Error>>,
    pub port: u16,
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub async fn connect(server: &MockServer) -> Client {
    try_connect(server, None).await.unwrap()
}

/// TLS (optionally with a client certificate) and the h2 handshake. Under TLS 1.3 the
/// server judges the client certificate after the client's handshake is done, so a
/// refused certificate usually shows only on the first request.
pub async fn try_connect(
    server: &MockServer,
    identity: Option<ClientIdentity>,
) -> Result<Client, Box<dyn Error>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.ca_file())? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut tls = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => builder.with_client_auth_cert(identity.chain, identity.key)?,
    };
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", server.port())).await?;
    tcp.set_nodelay(true)?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, mut connection) = h2::client::Builder::new()
        .initial_max_send_streams(100)
        .handshake::<_, Bytes>(stream)
        .await?;
    let ping = connection.ping_pong().ok_or("no PingPong")?;
    let connection = tokio::spawn(connection);
    Ok(Client {
        send,
        ping,
        connection,
        port: server.port(),
    })
}

/// HTTP/2 without TLS over an in-memory pipe the server serves (`MockServer::serve_stream`).
pub async fn connect_in_memory(server: &MockServer) -> Client {
    let (client_side, server_side) = tokio::io::duplex(64 * 1024);
    server.serve_stream(server_side);
    let (send, mut connection) = h2::client::Builder::new()
        .initial_max_send_streams(100)
        .handshake::<_, Bytes>(client_side)
        .await
        .unwrap();
    let ping = connection.ping_pong().unwrap();
    Client {
        send,
        ping,
        connection: tokio::spawn(connection),
        port: server.port(),
    }
}

impl Client {
    pub fn request(&self, token: &str) -> http::request::Builder {
        Request::builder()
            .method(Method::POST)
            .uri(format!("https://localhost:{}/3/device/{token}", self.port))
            .header("apns-topic", "com.example.app")
    }

    /// Sends a request and waits for the whole answer.
    pub async fn send(&self, request: Request<()>, body: &[u8]) -> Result<Answer, h2::Error> {
        let response = self.start(request, body).await?;
        read_answer(response).await
    }

    /// Sends a request and returns the pending response.
    pub async fn start(
        &self,
        request: Request<()>,
        body: &[u8],
    ) -> Result<h2::client::ResponseFuture, h2::Error> {
        let mut send = self.send.clone().ready().await?;
        let (response, mut stream) = send.send_request(request, body.is_empty())?;
        if !body.is_empty() {
            stream.send_data(Bytes::copy_from_slice(body), true)?;
        }
        Ok(response)
    }

    pub async fn push(&self, token: &str) -> Result<Answer, h2::Error> {
        self.send(self.request(token).body(()).unwrap(), b"{\"aps\":{}}")
            .await
    }

    /// True if a PING is answered within `within`.
    pub async fn ping_answered(&mut self, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(within, self.ping.ping(Ping::opaque())).await,
            Ok(Ok(_))
        )
    }

    /// A PING round trip: every frame the server sent before its PONG has been processed.
    pub async fn round_trip(&mut self) {
        assert!(self.ping_answered(Duration::from_secs(5)).await);
    }
}

pub async fn read_answer(response: h2::client::ResponseFuture) -> Result<Answer, h2::Error> {
    let response = response.await?;
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: Bytes::from(bytes),
    })
}

/// Polls `condition` every 10 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
