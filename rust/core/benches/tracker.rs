//! The per-connection in-flight table: every stream is inserted with its own deadline and
//! removed when its answer arrives, so this is paid twice per notification.
//!
//! `cargo bench -p pushwire-core --bench tracker`
// A benchmark that cannot build its input should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pushwire_core::tracker::Tracker;
use pushwire_core::{Request, Template, TokenFormat};

const TOKEN: &str = "8d3f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7";
/// A full connection at APNs' usual stream limit.
const OPEN_STREAMS: u32 = 1000;

fn requests(n: u32) -> Vec<Request> {
    let body = Bytes::from_static(br#"{"aps":{"alert":"hi"}}"#);
    let template =
        Arc::new(Template::with_path_token("/3/device/", &[], body, TokenFormat::Hex).unwrap());
    (0..u64::from(n))
        .map(|id| Request::new(id, TOKEN, None, template.clone()).unwrap())
        .collect()
}

fn tracker(c: &mut Criterion) {
    // DelayQueue needs a tokio timer in context.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _context = runtime.enter();
    let timeout = Duration::from_secs(30);
    let mut group = c.benchmark_group("tracker");
    group.throughput(Throughput::Elements(u64::from(OPEN_STREAMS)));
    // Stream ids of one connection are odd and increasing; answers come back in any order,
    // here in reverse, so every removal is from the middle of the timer wheel.
    group.bench_function("insert_then_complete_1000", |b| {
        b.iter_batched(
            || requests(OPEN_STREAMS),
            |batch| {
                let mut tracker: Tracker<()> = Tracker::new();
                for (request, stream_id) in batch.into_iter().zip((1u32..).step_by(2)) {
                    tracker.insert(stream_id, request, (), timeout);
                }
                for stream_id in (1..2 * OPEN_STREAMS).step_by(2).rev() {
                    black_box(tracker.complete(stream_id));
                }
                tracker
            },
            BatchSize::SmallInput,
        );
    });
    // A steady connection: one answer leaves and one request enters, around 1000 open.
    group.bench_function("steady_state_1000_open", |b| {
        let mut tracker: Tracker<()> = Tracker::new();
        let mut spare = requests(OPEN_STREAMS);
        for stream_id in (1..2 * OPEN_STREAMS).step_by(2) {
            tracker.insert(stream_id, spare.pop().unwrap(), (), timeout);
        }
        let mut oldest = 1u32;
        let mut next = 2 * OPEN_STREAMS + 1;
        b.iter(|| {
            for _ in 0..OPEN_STREAMS {
                let entry = tracker.complete(oldest).unwrap();
                tracker.insert(next, entry.request, (), timeout);
                oldest += 2;
                next += 2;
            }
        });
    });
    group.finish();
}

criterion_group!(benches, tracker);
criterion_main!(benches);
