//! Per-notification request building: validating a request (token, apns-id) and producing the
//! `:path` and body each stream sends, for APNs (token in the path, shared body) and FCM
//! (token spliced into the JSON body).
//!
//! `cargo bench -p pushwire-core --bench request`
// A benchmark that cannot build its input should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pushwire_core::{Request, Template, TokenFormat};

const TOKEN: &str = "8d3f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7";
const FCM_TOKEN: &str = "cXyZ0123:APA91bH-abcdefghijklmnopqrstuvwxyz0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJKLMN";
const APNS_ID: &str = "123e4567-e89b-42d3-a456-426614174000";

fn headers() -> Vec<(String, String)> {
    vec![
        ("apns-topic".to_owned(), "com.example.app".to_owned()),
        ("apns-push-type".to_owned(), "alert".to_owned()),
        ("apns-priority".to_owned(), "10".to_owned()),
    ]
}

fn apns_template() -> Arc<Template> {
    let body =
        Bytes::from_static(br#"{"aps":{"alert":{"title":"Hello","body":"World"},"badge":1}}"#);
    Arc::new(Template::with_path_token("/3/device/", &headers(), body, TokenFormat::Hex).unwrap())
}

fn fcm_template() -> Arc<Template> {
    Arc::new(
        Template::with_body_token(
            "/messages:send",
            &[("content-type".to_owned(), "application/json".to_owned())],
            Bytes::from_static(br#"{"message":{"token":""#),
            Bytes::from_static(br#"","notification":{"title":"Hello","body":"World"}}}"#),
            TokenFormat::Opaque,
        )
        .unwrap(),
    )
}

fn request_building(c: &mut Criterion) {
    let apns = apns_template();
    let fcm = fcm_template();
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("new/apns", |b| {
        b.iter(|| Request::new(black_box(7), black_box(TOKEN), None, apns.clone()).unwrap());
    });
    group.bench_function("new/apns+apns_id", |b| {
        b.iter(|| {
            Request::new(
                black_box(7),
                black_box(TOKEN),
                Some(black_box(APNS_ID)),
                apns.clone(),
            )
            .unwrap()
        });
    });
    group.bench_function("new/fcm", |b| {
        b.iter(|| Request::new(black_box(7), black_box(FCM_TOKEN), None, fcm.clone()).unwrap());
    });
    group.bench_function("path_and_body/apns", |b| {
        b.iter(|| {
            (
                apns.path_for(black_box(TOKEN)),
                apns.body_for(black_box(TOKEN)),
            )
        });
    });
    group.bench_function("path_and_body/fcm", |b| {
        b.iter(|| {
            (
                fcm.path_for(black_box(FCM_TOKEN)),
                fcm.body_for(black_box(FCM_TOKEN)),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, request_building);
criterion_main!(benches);
