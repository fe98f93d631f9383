//! Hostile servers: whatever a server answers, the engine never panics and every submitted
//! request ends with exactly one outcome that does not claim more than the server did.
//!
//! The server here is a raw HTTP/2 server (TLS + ALPN h2, frames and HPACK literals written by
//! hand, nothing decoded but frame headers and request bodies), so it can send what no
//! well-behaved library would: any `:status` bytes, any header names and values, bodies of
//! random bytes / deep JSON / huge numbers / non-UTF-8, informational answers, trailers,
//! RST_STREAM and GOAWAY with any error code and any debug data, SETTINGS with any values,
//! garbage frames, dropped connections and silence. Each request carries its id in its body,
//! so the server records what it did to every attempt of every request and the outcomes are
//! checked against that record:
//!
//! - exactly one outcome per request, no panic on an engine thread, no "engine stopped";
//! - `delivered` / `rejected` only with the status the server actually sent in its one answer;
//! - `failed` with `maybe_delivered == false` only if no attempt was processed (REFUSED_STREAM,
//!   above a GOAWAY's last stream id, or never received);
//! - never two processed attempts of one request (`retry_uncertain` is off).
//!
//! Targeted cases follow the property test: GOAWAY with an error code and JSON debug data,
//! every status 100-999, every RST_STREAM code, a lowered stream limit checked byte by byte,
//! and `retry_uncertain` keeping "maybe delivered" once an attempt may have been processed.
// Helpers outside #[test] functions may panic too: in a test, a panic is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Frames are built byte by byte: keeping the low byte of a length is the encoding.
#![allow(clippy::cast_possible_truncation)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use pushwire_core::{
    Engine, EngineConfig, Outcome, OutcomeKind, PoolConfig, PoolId, Request, Template, TokenFormat,
};
use pushwire_test_support::{Collect, TestCa};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

// --- a throwaway CA and a localhost certificate ----------------------------------------------

fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new("pushwire response-fuzz test CA"))
}

fn ca_file() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| ca().write_pem()).clone()
}

fn acceptor() -> TlsAcceptor {
    ca().localhost_acceptor()
}

// --- panics on engine threads -------------------------------------------------------------

static ENGINE_PANICKED: AtomicBool = AtomicBool::new(false);

/// Records any panic on an engine thread (tokio catches task panics, so a test would not
/// otherwise see one; the drivers' drop guards would even hand out outcomes for it).
fn watch_engine_panics() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("pushwire-engine") {
                ENGINE_PANICKED.store(true, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

// --- what the server does -------------------------------------------------------------------

/// What the server does once a request's body is complete.
#[derive(Debug, Clone)]
enum Act {
    /// An answer: optional 1xx first, then `:status` (any bytes) and headers, the body in DATA
    /// frames, optional trailers.
    Respond {
        informational: Option<u16>,
        status: Vec<u8>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        body: Vec<u8>,
        trailers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// RST_STREAM with this error code (7 = REFUSED_STREAM: "not processed").
    Reset(u32),
    /// GOAWAY with this code and debug data. `include_self`: the last stream id covers this
    /// stream (it counts as processed and is never answered); otherwise it stays at the
    /// highest stream answered so far. Then close the connection, or keep serving the streams
    /// at or below the last stream id.
    GoAway {
        code: u32,
        debug: Vec<u8>,
        include_self: bool,
        close: bool,
    },
    /// Drop the connection (TCP FIN, no GOAWAY).
    Close,
    /// Write these bytes as they are (malformed frames, truncated frames...).
    Garbage(Vec<u8>),
    /// A well-framed frame of any other type, flags and payload, on this stream, on stream 0
    /// or on any stream (stray answers, PUSH_PROMISE, odd WINDOW_UPDATEs, unexpected pongs,
    /// unknown frame types...).
    Frame {
        kind: u8,
        flags: u8,
        stream: Option<u32>,
        payload: Vec<u8>,
    },
    /// `:status` 200 and these headers, then nothing: no body, no END_STREAM.
    Unfinished(Vec<(Vec<u8>, Vec<u8>)>),
    /// Never answer this stream.
    Hang,
    /// Never write anything on this connection again (PING acks included); keep reading.
    Blackhole,
    /// A SETTINGS frame with these (id, value) pairs, whatever they mean, then 200.
    Settings(Vec<(u16, u32)>),
    /// This answer (a `Respond`), after a delay; other streams go on meanwhile. `true`: sent
    /// even if the client reset the stream meanwhile (its deadline passed).
    Later(Duration, Box<Act>, bool),
}

/// What the server did to one attempt of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Did {
    /// Answered; the status when the `:status` bytes are a valid one (three digits, 1-9 first).
    Responded(Option<u16>),
    Reset(u32),
    GoAway,
    Closed,
    Garbage,
    Unfinished,
    Hung,
    Blackholed,
    /// Above a GOAWAY's last stream id: ignored, never processed.
    Ignored,
}

#[derive(Debug, Clone)]
struct Record {
    did: Did,
    /// The server may have acted on it (everything but REFUSED_STREAM and `Ignored`).
    processed: bool,
}

/// Who decides what each request gets: (request id, attempt number, connection number,
/// completed requests on that connection before this one).
type Decide = dyn Fn(usize, usize, usize, usize) -> Act + Send + Sync;

struct ServerState {
    decide: Box<Decide>,
    records: Mutex<HashMap<usize, Vec<Record>>>,
    connections: Mutex<usize>,
    /// New streams that arrived while the client already had as many open as a
    /// SETTINGS_MAX_CONCURRENT_STREAMS it had acknowledged (in byte order) allows.
    over_limit: AtomicUsize,
    /// Most streams open at once on a connection when a new one arrived, by the stream limit
    /// the client had acknowledged then (`u32::MAX`: none yet).
    most_open: Mutex<HashMap<u32, usize>>,
}

impl ServerState {
    fn records(&self) -> HashMap<usize, Vec<Record>> {
        self.records.lock().unwrap().clone()
    }
}

// --- frames -----------------------------------------------------------------------------------

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const REFUSED_STREAM: u32 = 0x7;
const PREFACE_LEN: usize = 24;
const MAX_OUT_FRAME: usize = 16_384;

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// HPACK integer with a `prefix`-bit prefix (RFC 7541 5.1); `first` holds the high bits.
fn hpack_int(out: &mut Vec<u8>, mut value: usize, prefix: u32, first: u8) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block of literals without indexing (the client's decoder table never changes).
fn header_block(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x00);
        hpack_int(&mut block, name.len(), 7, 0);
        block.extend_from_slice(name);
        hpack_int(&mut block, value.len(), 7, 0);
        block.extend_from_slice(value);
    }
    block
}

fn headers_frames(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool) {
    let flags = if end_stream { END_STREAM } else { 0 };
    let mut chunks = block.chunks(MAX_OUT_FRAME);
    let first = chunks.next().unwrap_or(&[]);
    let rest: Vec<&[u8]> = chunks.collect();
    let end = if rest.is_empty() { END_HEADERS } else { 0 };
    frame(out, HEADERS, flags | end, stream, first);
    for (i, chunk) in rest.iter().enumerate() {
        let end = if i + 1 == rest.len() { END_HEADERS } else { 0 };
        frame(out, CONTINUATION, end, stream, chunk);
    }
}

fn valid_status(status: &[u8]) -> Option<u16> {
    let ok = status.len() == 3
        && (b'1'..=b'9').contains(&status[0])
        && status.iter().all(u8::is_ascii_digit);
    ok.then(|| std::str::from_utf8(status).ok()?.parse().ok())
        .flatten()
}

fn respond(out: &mut Vec<u8>, stream: u32, act: &Act) {
    let Act::Respond {
        informational,
        status,
        headers,
        body,
        trailers,
    } = act
    else {
        return;
    };
    if let Some(code) = informational {
        let text = code.to_string();
        headers_frames(
            out,
            stream,
            &header_block(&[(b":status", text.as_bytes())]),
            false,
        );
    }
    let mut fields: Vec<(&[u8], &[u8])> = vec![(b":status", status)];
    fields.extend(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
    let done_after_headers = body.is_empty() && trailers.is_empty();
    headers_frames(out, stream, &header_block(&fields), done_after_headers);
    if !body.is_empty() {
        let mut chunks = body.chunks(MAX_OUT_FRAME).peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none() && trailers.is_empty();
            frame(out, DATA, if last { END_STREAM } else { 0 }, stream, chunk);
        }
    }
    if !trailers.is_empty() {
        let fields: Vec<(&[u8], &[u8])> = trailers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        headers_frames(out, stream, &header_block(&fields), true);
    }
}

/// The request id in a body `{"t":"r<id>"}`.
fn request_id(body: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"r")? + 2;
    let end = start + text[start..].find('"')?;
    text[start..end].parse().ok()
}

// --- the server ---------------------------------------------------------------------------

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<ServerState>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let conn = {
                let mut n = state.connections.lock().unwrap();
                *n += 1;
                *n - 1
            };
            serve(tls, conn, state).await;
        });
    }
}

/// Per-connection state of the raw server.
struct Conn {
    id: usize,
    /// Request bodies of open streams; `true` once the header block is complete.
    open: HashMap<u32, (Vec<u8>, bool, bool)>,
    completed: usize,
    highest_acted: u32,
    /// Streams above this id are ignored (the lowest last stream id of our GOAWAYs).
    ignore_above: u32,
    silent: bool,
    closing: bool,
    /// Client streams whose HEADERS arrived and that have no answer or reset yet.
    unanswered: HashSet<u32>,
    /// Our SETTINGS frames not acknowledged yet, oldest first, with the stream limit each set.
    unacked: VecDeque<Option<u32>>,
    /// The last stream limit the client acknowledged.
    acked_limit: Option<u32>,
    /// Answers due later: (when, stream, frames, even after a reset).
    later: Vec<(tokio::time::Instant, u32, Vec<u8>, bool)>,
}

async fn serve<S: AsyncRead + AsyncWrite + Send + 'static>(
    io: S,
    id: usize,
    state: Arc<ServerState>,
) {
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut out = Vec::new();
    // Our SETTINGS first (100 streams, 1 MiB stream windows), and a large connection window so
    // request bodies never wait for WINDOW_UPDATE.
    let mut settings = Vec::new();
    for (key, value) in [(0x3u16, 100u32), (0x4, 1 << 20)] {
        settings.extend_from_slice(&key.to_be_bytes());
        settings.extend_from_slice(&value.to_be_bytes());
    }
    frame(&mut out, SETTINGS, 0, 0, &settings);
    frame(&mut out, WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes());
    if writer.write_all(&out).await.is_err() {
        return;
    }
    // Frames are read by their own task, in order, so answers can also go out on timers.
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    let read_task = tokio::spawn(async move {
        let mut preface = [0u8; PREFACE_LEN];
        if reader.read_exact(&mut preface).await.is_err() {
            return;
        }
        loop {
            let mut header = [0u8; 9];
            if reader.read_exact(&mut header).await.is_err() {
                return;
            }
            let len = (usize::from(header[0]) << 16)
                | (usize::from(header[1]) << 8)
                | usize::from(header[2]);
            let stream =
                u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            if reader.read_exact(&mut payload).await.is_err()
                || frames_tx
                    .send((header[3], header[4], stream, payload))
                    .is_err()
            {
                return;
            }
        }
    });
    let mut conn = Conn {
        id,
        open: HashMap::new(),
        completed: 0,
        highest_acted: 0,
        ignore_above: u32::MAX,
        silent: false,
        closing: false,
        unanswered: HashSet::new(),
        unacked: VecDeque::from([None]),
        acked_limit: None,
        later: Vec::new(),
    };
    loop {
        let mut out = Vec::new();
        let due = conn.later.iter().map(|(when, ..)| *when).min();
        tokio::select! {
            received = frames.recv() => {
                let Some((kind, flags, stream, payload)) = received else { break };
                on_frame(&mut conn, &state, kind, flags, stream, &payload, &mut out);
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                let now = tokio::time::Instant::now();
                let (ready, waiting): (Vec<_>, Vec<_>) =
                    conn.later.drain(..).partition(|(when, ..)| *when <= now);
                conn.later = waiting;
                for (_, stream, bytes, stubborn) in ready {
                    if conn.unanswered.remove(&stream) || stubborn {
                        out.extend_from_slice(&bytes);
                    }
                }
            }
        }
        if !conn.silent && !out.is_empty() && writer.write_all(&out).await.is_err() {
            break;
        }
        if conn.closing {
            let _ = writer.flush().await;
            break;
        }
    }
    read_task.abort();
}

fn on_frame(
    conn: &mut Conn,
    state: &ServerState,
    kind: u8,
    flags: u8,
    stream: u32,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    match kind {
        SETTINGS if flags & ACK == 0 => frame(out, SETTINGS, ACK, 0, &[]),
        SETTINGS => {
            if let Some(Some(limit)) = conn.unacked.pop_front() {
                conn.acked_limit = Some(limit);
            }
        }
        PING if flags & ACK == 0 => frame(out, PING, ACK, 0, payload),
        RST_STREAM => {
            conn.open.remove(&stream);
            conn.unanswered.remove(&stream);
        }
        HEADERS if !conn.open.contains_key(&stream) => {
            let open = conn.unanswered.len();
            if conn.acked_limit.is_some_and(|limit| open >= limit as usize) {
                state.over_limit.fetch_add(1, Ordering::SeqCst);
            }
            {
                let mut most = state.most_open.lock().unwrap();
                let seen = most
                    .entry(conn.acked_limit.unwrap_or(u32::MAX))
                    .or_default();
                *seen = (*seen).max(open + 1);
            }
            conn.unanswered.insert(stream);
            on_headers(conn, state, kind, flags, stream, out);
        }
        HEADERS | CONTINUATION => on_headers(conn, state, kind, flags, stream, out),
        DATA => {
            if let Some(entry) = conn.open.get_mut(&stream) {
                entry.0.extend_from_slice(payload);
                if flags & END_STREAM != 0 {
                    entry.2 = true;
                    if entry.1 {
                        complete(conn, state, stream, out);
                    }
                }
            }
        }
        _ => {}
    }
}

fn on_headers(
    conn: &mut Conn,
    state: &ServerState,
    kind: u8,
    flags: u8,
    stream: u32,
    out: &mut Vec<u8>,
) {
    let entry = conn
        .open
        .entry(stream)
        .or_insert((Vec::new(), false, false));
    if kind == HEADERS && flags & END_STREAM != 0 {
        entry.2 = true;
    }
    if flags & END_HEADERS != 0 {
        entry.1 = true;
    }
    if entry.1 && entry.2 {
        complete(conn, state, stream, out);
    }
}

/// A request is complete: decide, act, record.
#[allow(clippy::too_many_lines)] // one match over every scripted server behaviour
fn complete(conn: &mut Conn, state: &ServerState, stream: u32, out: &mut Vec<u8>) {
    let Some((body, _, _)) = conn.open.remove(&stream) else {
        return;
    };
    let Some(id) = request_id(&body) else {
        return;
    };
    let mut records = state.records.lock().unwrap();
    let attempts = records.entry(id).or_default();
    if stream > conn.ignore_above {
        attempts.push(Record {
            did: Did::Ignored,
            processed: false,
        });
        return;
    }
    let act = (state.decide)(id, attempts.len(), conn.id, conn.completed);
    conn.completed += 1;
    if !matches!(
        act,
        Act::Later(..) | Act::Hang | Act::Blackhole | Act::Unfinished(_)
    ) {
        conn.unanswered.remove(&stream);
    }
    let (did, processed) = match &act {
        Act::Respond { status, .. } => {
            respond(out, stream, &act);
            (Did::Responded(valid_status(status)), true)
        }
        Act::Reset(code) => {
            frame(out, RST_STREAM, 0, stream, &code.to_be_bytes());
            (Did::Reset(*code), *code != REFUSED_STREAM)
        }
        Act::GoAway {
            code,
            debug,
            include_self,
            close,
        } => {
            let last = if *include_self {
                conn.highest_acted.max(stream)
            } else {
                conn.highest_acted
            };
            let mut payload = last.to_be_bytes().to_vec();
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(debug);
            frame(out, GOAWAY, 0, 0, &payload);
            conn.ignore_above = conn.ignore_above.min(last);
            conn.closing |= *close;
            (Did::GoAway, stream <= last)
        }
        Act::Close => {
            conn.closing = true;
            (Did::Closed, true)
        }
        Act::Garbage(bytes) => {
            out.extend_from_slice(bytes);
            (Did::Garbage, true)
        }
        Act::Frame {
            kind,
            flags,
            stream: target,
            payload,
        } => {
            frame(out, *kind, *flags, target.unwrap_or(stream), payload);
            (Did::Garbage, true)
        }
        Act::Unfinished(headers) => {
            let mut fields: Vec<(&[u8], &[u8])> = vec![(b":status", b"200")];
            fields.extend(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
            headers_frames(out, stream, &header_block(&fields), false);
            (Did::Unfinished, true)
        }
        Act::Hang => (Did::Hung, true),
        Act::Blackhole => {
            conn.silent = true;
            (Did::Blackholed, true)
        }
        Act::Settings(pairs) => {
            let mut payload = Vec::new();
            for (key, value) in pairs {
                payload.extend_from_slice(&key.to_be_bytes());
                payload.extend_from_slice(&value.to_be_bytes());
            }
            frame(out, SETTINGS, 0, 0, &payload);
            let limit = pairs
                .iter()
                .rev()
                .find(|(key, _)| *key == 0x3)
                .map(|(_, v)| *v);
            conn.unacked.push_back(limit);
            let ok = Act::Respond {
                informational: None,
                status: b"200".to_vec(),
                headers: Vec::new(),
                body: Vec::new(),
                trailers: Vec::new(),
            };
            respond(out, stream, &ok);
            (Did::Responded(Some(200)), true)
        }
        Act::Later(delay, answer, stubborn) => {
            let mut bytes = Vec::new();
            respond(&mut bytes, stream, answer);
            let status = match answer.as_ref() {
                Act::Respond { status, .. } => valid_status(status),
                _ => None,
            };
            conn.later.push((
                tokio::time::Instant::now() + *delay,
                stream,
                bytes,
                *stubborn,
            ));
            (Did::Responded(status), true)
        }
    };
    if processed {
        conn.highest_acted = conn.highest_acted.max(stream);
    }
    attempts.push(Record { did, processed });
}

// --- the engine side ------------------------------------------------------------------------

const MAX_RETRIES: u32 = 2;

struct Run {
    outcomes: Vec<Outcome>,
    /// Outcomes that arrived after every request had one (must be none).
    extra: Vec<Outcome>,
    records: HashMap<usize, Vec<Record>>,
    stats: pushwire_core::PoolStats,
    over_limit: usize,
    most_open: HashMap<u32, usize>,
}

/// Submit `n` requests to a fresh raw server deciding with `decide`; collect every outcome.
fn run(n: usize, decide: Box<Decide>, tweak: impl FnOnce(&mut PoolConfig)) -> Result<Run, String> {
    watch_engine_panics();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fuzz-server")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let state = Arc::new(ServerState {
        decide,
        records: Mutex::new(HashMap::new()),
        connections: Mutex::new(0),
        over_limit: AtomicUsize::new(0),
        most_open: Mutex::new(HashMap::new()),
    });
    rt.spawn(accept_loop(listener, acceptor(), state.clone()));

    let sink = Arc::new(Collect::default());
    let engine = Engine::new(EngineConfig::default(), sink.clone()).map_err(|e| e.to_string())?;
    let mut cfg = PoolConfig::new(format!("https://localhost:{port}"));
    cfg.ca_file = Some(ca_file());
    cfg.request_timeout = Duration::from_millis(400);
    cfg.ping_interval = Duration::from_millis(150);
    cfg.ping_timeout = Duration::from_millis(250);
    cfg.connect_timeout = Duration::from_millis(600);
    cfg.queue_timeout = Duration::from_secs(3);
    cfg.backoff_base = Duration::from_millis(5);
    cfg.backoff_max = Duration::from_millis(20);
    cfg.max_connect_attempts = 3;
    cfg.max_retries = MAX_RETRIES;
    cfg.max_connections = 2;
    cfg.max_streams_per_connection = 16;
    cfg.dead_after_timeouts = 4;
    tweak(&mut cfg);
    let pool: PoolId = engine.add_pool(cfg).map_err(|e| e.to_string())?;
    let template = Arc::new(
        Template::with_body_token(
            "/fuzz",
            &[("content-type".to_owned(), "application/json".to_owned())],
            Bytes::from_static(b"{\"t\":\""),
            Bytes::from_static(b"\"}"),
            TokenFormat::Opaque,
        )
        .map_err(|e| e.to_string())?,
    );
    let requests = (0..n)
        .map(|i| Request::new(i as u64, &format!("r{i}"), None, template.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    engine.submit(pool, requests).map_err(|e| e.to_string())?;
    let outcomes = sink.wait_for(n, Duration::from_secs(30)).ok_or_else(|| {
        format!(
            "not every request got an outcome within 30 s: {:?}",
            sink.take().len()
        )
    })?;
    // Anything arriving now would be a second outcome.
    std::thread::sleep(Duration::from_millis(20));
    let pool_stats = engine.stats(pool).map_err(|e| e.to_string())?;
    let unfinished = engine.outstanding();
    engine.shutdown(Duration::ZERO);
    let extra = sink.take();
    rt.shutdown_timeout(Duration::from_millis(200));
    if unfinished != 0 {
        return Err(format!(
            "{unfinished} requests still outstanding after all outcomes"
        ));
    }
    let most_open = state.most_open.lock().unwrap().clone();
    Ok(Run {
        outcomes,
        extra,
        records: state.records(),
        stats: pool_stats,
        over_limit: state.over_limit.load(Ordering::SeqCst),
        most_open,
    })
}

/// The invariants every run must keep, whatever the server did. With `retry_uncertain`, a
/// request may be processed once per attempt, and its outcome speaks for its last attempt.
fn check(run: &Run, n: usize) -> Result<(), String> {
    check_with(run, n, false)
}

fn check_with(run: &Run, n: usize, retry_uncertain: bool) -> Result<(), String> {
    if ENGINE_PANICKED.load(Ordering::SeqCst) {
        return Err("a panic happened on an engine thread".into());
    }
    if !run.extra.is_empty() {
        return Err(format!(
            "{} outcomes after every request had one",
            run.extra.len()
        ));
    }
    let mut by_id: HashMap<u64, &Outcome> = HashMap::new();
    for o in &run.outcomes {
        if by_id.insert(o.id, o).is_some() {
            return Err(format!("two outcomes for request {}", o.id));
        }
    }
    if by_id.len() != n || (0..n as u64).any(|i| !by_id.contains_key(&i)) {
        return Err(format!(
            "{} distinct outcomes for {n} requests",
            by_id.len()
        ));
    }
    let none = Vec::new();
    for (&id, o) in &by_id {
        let records = run.records.get(&(id as usize)).unwrap_or(&none);
        let processed: Vec<&Record> = records.iter().filter(|r| r.processed).collect();
        let why = || format!("request {id}: {o:?} after {records:?}");
        if o.token.as_ref() != format!("r{id}") {
            return Err(format!("wrong token: {}", why()));
        }
        if processed.len() > 1 && !retry_uncertain {
            return Err(format!("processed twice: {}", why()));
        }
        if o.error
            .as_deref()
            .is_some_and(|e| e.contains("engine stopped"))
        {
            return Err(format!("driver dropped with work in hand: {}", why()));
        }
        if o.attempts > MAX_RETRIES + 1 {
            return Err(format!("too many attempts: {}", why()));
        }
        let answered = |status: u16| {
            (processed.len() == 1 || retry_uncertain)
                && records.last().map(|r| &r.did) == Some(&Did::Responded(Some(status)))
        };
        match o.kind {
            OutcomeKind::Delivered => {
                if !(200..300).contains(&o.status) || !answered(o.status) || o.maybe_delivered {
                    return Err(format!("delivered without a 2xx answer: {}", why()));
                }
            }
            OutcomeKind::Rejected => {
                if (200..300).contains(&o.status) || !answered(o.status) || o.maybe_delivered {
                    return Err(format!("rejected without that answer: {}", why()));
                }
            }
            OutcomeKind::Timeout => {
                if o.status != 0 || !o.maybe_delivered {
                    return Err(format!("timeout must be maybe_delivered: {}", why()));
                }
            }
            OutcomeKind::Failed => {
                if o.status != 0 {
                    return Err(format!("failed with a status: {}", why()));
                }
                if !o.maybe_delivered && !processed.is_empty() {
                    return Err(format!(
                        "reported as not delivered although the server processed it: {}",
                        why()
                    ));
                }
            }
        }
    }
    Ok(())
}

// --- strategies ---------------------------------------------------------------------------

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::hash_map("[a-z]{0,10}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Numbers and number-like text a broken server might put in `timestamp` or `retry-after`.
fn numberish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[0-9]{19,400}",
        "-[0-9]{19,40}",
        Just("1e400".to_owned()),
        Just("-1e400".to_owned()),
        Just("1.7976931348623157e308".to_owned()),
        Just("NaN".to_owned()),
        Just("-0".to_owned()),
        Just("\"12\"".to_owned()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        3 => prop::collection::vec(any::<u8>(), 0..600),
        3 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        3 => (json_value(), numberish()).prop_map(|(reason, ts)| {
            format!(r#"{{"reason":{reason},"timestamp":{ts}}}"#).into_bytes()
        }),
        2 => (".{0,30}", "[A-Z_]{0,20}", json_value()).prop_map(|(code, status, details)| {
            let code = serde_json::Value::from(code);
            format!(
                r#"{{"error":{{"code":404,"status":"{status}","details":[{{"errorCode":{code}}},{details}]}}}}"#
            )
            .into_bytes()
        }),
        1 => (1usize..20_000, prop::bool::ANY).prop_map(|(depth, objects)| {
            if objects {
                let mut s = "{\"a\":".repeat(depth);
                s.push('1');
                s.push_str(&"}".repeat(depth));
                s.into_bytes()
            } else {
                let mut s = "[".repeat(depth);
                s.push_str(&"]".repeat(depth));
                s.into_bytes()
            }
        }),
        1 => (8_000usize..60_000, any::<u8>()).prop_map(|(len, fill)| {
            let mut body = br#"{"reason":""#.to_vec();
            body.extend(std::iter::repeat_n(fill, len));
            body.extend_from_slice(br#""}"#);
            body
        }),
        1 => prop::collection::vec(prop_oneof![Just(0xffu8), Just(0xfe), Just(0xc0), Just(0x80), Just(b'{')], 1..64),
    ]
}

fn header_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => prop_oneof![
            Just("apns-id"),
            Just("retry-after"),
            Just("content-type"),
            Just("apns-unique-id"),
            Just("x-reason"),
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
        6 => "[a-z][a-z0-9-]{0,20}".prop_map(String::into_bytes),
        // Not allowed in HTTP/2 responses, or not decodable: the stream or the whole
        // connection fails, each of its requests once.
        1 => prop_oneof![
            Just("content-length"),
            Just("connection"),
            Just("Apns-Id"),
            Just(":path"),
            Just(":status"),
            Just("te"),
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..24),
    ]
}

/// Bytes a header value may hold (visible ASCII, space, tab, obs-text).
fn value_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => numberish().prop_map(String::into_bytes),
        6 => prop::collection::vec(value_byte(), 0..120),
        2 => Just(b"123e4567-e89b-12d3-a456-426614174000".to_vec()),
        1 => (20_000usize..120_000, value_byte()).prop_map(|(len, byte)| vec![byte; len]),
        1 => prop::collection::vec(any::<u8>(), 0..120),
    ]
}

fn fields() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec((header_name(), header_value()), 0..4)
}

fn status() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => (200u16..300).prop_map(|s| s.to_string().into_bytes()),
        10 => (300u16..=999).prop_map(|s| s.to_string().into_bytes()),
        // Not a final answer; followed by DATA it is a connection error in h2.
        1 => (100u16..200).prop_map(|s| s.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..6),
        1 => prop_oneof![Just("0"), Just("1000"), Just("099"), Just("2 0"), Just("20")]
            .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// Well-formed answers only (any final status, valid headers, any body): what the parsing of
/// answers sees when no connection dies around it.
fn calm_act() -> impl Strategy<Value = Act> {
    let name = prop_oneof![
        Just("apns-id".to_owned()),
        Just("retry-after".to_owned()),
        Just("content-type".to_owned()),
        Just("apns-unique-id".to_owned()),
        "[a-z][a-z0-9-]{0,20}",
    ]
    .prop_map(String::into_bytes);
    let value = prop_oneof![
        numberish().prop_map(String::into_bytes),
        prop::collection::vec(value_byte(), 0..120),
    ];
    (
        (200u16..=999).prop_map(|s| s.to_string().into_bytes()),
        prop::collection::vec((name, value), 0..4),
        body(),
    )
        .prop_map(|(status, headers, body)| Act::Respond {
            informational: None,
            status,
            headers,
            body,
            trailers: Vec::new(),
        })
}

fn error_code() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..=13, 1 => any::<u32>()]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        60 => (
            prop::option::weighted(0.1, 100u16..200),
            status(),
            fields(),
            body(),
            prop_oneof![4 => Just(Vec::new()), 1 => fields()],
        )
            .prop_map(|(informational, status, headers, body, trailers)| Act::Respond {
                informational,
                status,
                headers,
                body,
                trailers,
            }),
        3 => error_code().prop_map(Act::Reset),
        2 => Just(Act::Reset(REFUSED_STREAM)),
        2 => (
            error_code(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..300),
                json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
            ],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(code, debug, include_self, close)| Act::GoAway {
                code,
                debug,
                include_self,
                close,
            }),
        1 => Just(Act::Close),
        1 => prop::collection::vec(any::<u8>(), 1..40).prop_map(Act::Garbage),
        2 => (
            // RST_STREAM and GOAWAY have their own acts (their meaning is bookkept).
            prop_oneof![Just(DATA), Just(HEADERS), Just(0x2), Just(SETTINGS), Just(0x5), Just(PING), Just(WINDOW_UPDATE), Just(CONTINUATION), 0x0au8..=0xff],
            any::<u8>(),
            prop_oneof![Just(None), Just(Some(0)), any::<u32>().prop_map(Some)],
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(kind, flags, stream, payload)| Act::Frame {
                kind,
                flags,
                stream,
                payload,
            }),
        1 => fields().prop_map(Act::Unfinished),
        1 => Just(Act::Hang),
        // Often after the request's deadline: a late answer on a stream the client reset.
        2 => (0u64..900, calm_act(), any::<bool>()).prop_map(|(ms, answer, stubborn)| {
            Act::Later(Duration::from_millis(ms), Box::new(answer), stubborn)
        }),
        1 => Just(Act::Blackhole),
        1 => prop::collection::vec((0u16..=10, prop_oneof![0u32..4, 1u32..=(1 << 24), any::<u32>()]), 0..4)
            .prop_map(Act::Settings),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PUSHWIRE_FUZZ_CASES=2000 for a longer hunt.
        cases: std::env::var("PUSHWIRE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        max_shrink_iters: 64,
        // No regression files written next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any mix of answers and faults: exactly one truthful outcome per request, no panic.
    #[test]
    fn any_server_behaviour_gives_exactly_one_truthful_outcome(
        script in prop_oneof![
            prop::collection::vec(calm_act(), 1..24),
            prop::collection::vec(act(), 1..24),
        ],
        n in 8usize..40,
    ) {
        let decide = Box::new(move |id: usize, attempt: usize, _conn: usize, _seq: usize| {
            script[(id + attempt) % script.len()].clone()
        });
        let run = run(n, decide, |_| {}).map_err(TestCaseError::fail)?;
        check(&run, n).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PUSHWIRE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12),
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The same with `retry_uncertain`: resends may duplicate, but a request is never called
    /// "not delivered" once any attempt of it may have been processed.
    #[test]
    fn with_retry_uncertain_no_outcome_calls_a_processed_request_safe_to_resend(
        script in prop::collection::vec(act(), 1..24),
        n in 8usize..40,
    ) {
        let decide = Box::new(move |id: usize, attempt: usize, _conn: usize, _seq: usize| {
            script[(id + attempt) % script.len()].clone()
        });
        let run = run(n, decide, |c| c.retry_uncertain = true).map_err(TestCaseError::fail)?;
        check_with(&run, n, true).map_err(TestCaseError::fail)?;
    }
}

// --- targeted cases -----------------------------------------------------------------------------

fn ok_200() -> Act {
    Act::Respond {
        informational: None,
        status: b"200".to_vec(),
        headers: vec![(
            b"apns-id".to_vec(),
            b"123e4567-e89b-12d3-a456-426614174000".to_vec(),
        )],
        body: Vec::new(),
        trailers: Vec::new(),
    }
}

/// The abrupt GOAWAY of the mock carries NO_ERROR and no debug data; a real server may send an
/// error code with JSON debug data. Streams above its last stream id were never processed:
/// they are resent on a new connection and delivered once; the others are answered.
#[test]
fn goaway_with_an_error_code_and_json_debug_data_resends_only_what_was_never_processed() {
    let n = 60;
    let decide = Box::new(|_id: usize, _attempt: usize, conn: usize, seq: usize| {
        if conn == 0 && seq == 10 {
            Act::GoAway {
                code: 0x2, // INTERNAL_ERROR
                debug: br#"{"reason":"Shutdown","detail":"maintenance"}"#.to_vec(),
                include_self: false,
                close: false,
            }
        } else {
            ok_200()
        }
    });
    let run = run(n, decide, |c| {
        c.max_connections = 1;
        c.max_streams_per_connection = 100;
        c.request_timeout = Duration::from_secs(5);
    })
    .unwrap();
    check(&run, n).unwrap();
    assert!(
        run.outcomes
            .iter()
            .all(|o| o.kind == OutcomeKind::Delivered),
        "{:?}",
        run.outcomes
            .iter()
            .filter(|o| o.kind != OutcomeKind::Delivered)
            .collect::<Vec<_>>()
    );
    let resent = run.outcomes.iter().filter(|o| o.attempts == 2).count();
    let ignored = run
        .records
        .values()
        .flatten()
        .filter(|r| r.did == Did::Ignored || r.did == Did::GoAway)
        .count();
    // The GOAWAY's own stream and every stream above it: sent twice, processed once (streams
    // opened but not yet written when the GOAWAY came are resent without reaching the server).
    assert!(
        resent >= 1 && resent >= ignored,
        "resent {resent}, ignored {ignored}"
    );
    assert!(
        run.stats.goaways >= 1 && run.stats.retries as usize == resent,
        "{:?}",
        run.stats
    );
}

/// Every status h2 can carry, with an APNs error body: 2xx delivered, other final statuses
/// rejected with the server's reason, a lone 1xx (not a final answer) failed as maybe
/// delivered. (A 1xx followed by DATA is a connection error in h2: every stream of that
/// connection fails as maybe delivered, so 1xx answers carry no body here.)
#[test]
fn every_status_from_100_to_999_gives_one_outcome_with_the_servers_reason() {
    let n = 900;
    let decide = Box::new(|id: usize, _attempt: usize, _conn: usize, _seq: usize| {
        let status = 100 + id;
        let body = if status < 200 {
            Vec::new()
        } else {
            format!(r#"{{"reason":"R{status}","timestamp":1700000000000}}"#).into_bytes()
        };
        Act::Respond {
            informational: None,
            status: status.to_string().into_bytes(),
            headers: vec![(b"retry-after".to_vec(), b"7".to_vec())],
            body,
            trailers: Vec::new(),
        }
    });
    let run = run(n, decide, |c| c.request_timeout = Duration::from_secs(5)).unwrap();
    check(&run, n).unwrap();
    for o in &run.outcomes {
        let status = 100 + o.id as u16;
        match status {
            100..=199 => assert!(
                o.kind == OutcomeKind::Failed && o.maybe_delivered,
                "{status}: {o:?}"
            ),
            200..=299 => assert_eq!(
                (o.kind, o.status),
                (OutcomeKind::Delivered, status),
                "{o:?}"
            ),
            _ => {
                assert_eq!((o.kind, o.status), (OutcomeKind::Rejected, status));
                assert_eq!(o.reason.as_deref(), Some(format!("R{status}").as_str()));
                assert_eq!(o.timestamp_ms, Some(1_700_000_000_000));
                assert_eq!(o.retry_after, Some(7));
            }
        }
    }
}

/// RST_STREAM with every defined code and some undefined ones: REFUSED_STREAM is resent
/// (never processed) and ends as not delivered; every other code is "maybe delivered".
#[test]
fn every_rst_stream_code_gives_one_outcome() {
    let codes: Vec<u32> = (0..=13).chain([14, 0xff, 0xdead_beef, u32::MAX]).collect();
    let n = codes.len() * 4;
    let by_id = codes.clone();
    let decide = Box::new(
        move |id: usize, _attempt: usize, _conn: usize, _seq: usize| {
            Act::Reset(by_id[id % by_id.len()])
        },
    );
    let run = run(n, decide, |_| {}).unwrap();
    check(&run, n).unwrap();
    for o in &run.outcomes {
        let code = codes[o.id as usize % codes.len()];
        assert_eq!(o.kind, OutcomeKind::Failed, "{o:?}");
        if code == REFUSED_STREAM {
            assert!(!o.maybe_delivered && o.attempts == MAX_RETRIES + 1, "{o:?}");
        } else {
            assert!(o.maybe_delivered && o.attempts == 1, "{o:?}");
        }
    }
}

/// A lowered SETTINGS_MAX_CONCURRENT_STREAMS is honoured on the wire: once the client has
/// acknowledged it (in byte order), no new stream arrives while as many are open as it allows.
/// (The mock server counts differently: see tests/test_fault_matrix.py.)
#[test]
fn a_lowered_stream_limit_is_respected_on_the_wire_once_acknowledged() {
    let n = 400;
    let decide = Box::new(
        |_id: usize, _attempt: usize, _conn: usize, seq: usize| match seq {
            40 => Act::Settings(vec![(0x3, 1)]),
            150 => Act::Settings(vec![(0x3, 100)]),
            _ => Act::Later(Duration::from_millis(10), Box::new(ok_200()), false),
        },
    );
    let run = run(n, decide, |c| {
        c.max_connections = 1;
        c.max_streams_per_connection = 50;
        c.request_timeout = Duration::from_secs(5);
        c.queue_timeout = Duration::from_secs(20);
    })
    .unwrap();
    check(&run, n).unwrap();
    let not_delivered: Vec<_> = run
        .outcomes
        .iter()
        .filter(|o| o.kind != OutcomeKind::Delivered)
        .collect();
    assert!(
        not_delivered.is_empty(),
        "{} {:?}",
        not_delivered.len(),
        not_delivered.first()
    );
    assert_eq!(
        run.over_limit, 0,
        "streams opened beyond an acknowledged limit"
    );
    // Many streams were open before the limit dropped, one at a time once it was known, many
    // again after the raise.
    let most = |limit: u32| run.most_open.get(&limit).copied().unwrap_or(0);
    assert!(most(u32::MAX) >= 20, "{:?}", run.most_open);
    assert_eq!(most(1), 1, "{:?}", run.most_open);
    assert!(most(100) >= 20, "{:?}", run.most_open);
    assert!(run.stats.retries == 0, "{:?}", run.stats);
}

/// With `retry_uncertain`, an attempt the server may have processed (here: read, then reset
/// with INTERNAL_ERROR) is resent; when the resends are then refused (REFUSED_STREAM), the
/// outcome must still say `maybe_delivered == true`: the first attempt may have been delivered
/// (the request remembers it: `Request::maybe_processed`).
#[test]
fn retry_uncertain_keeps_maybe_delivered_once_an_attempt_may_have_been_processed() {
    let n = 4;
    let decide = Box::new(|_id: usize, attempt: usize, _conn: usize, _seq: usize| {
        if attempt == 0 {
            Act::Reset(0x2) // INTERNAL_ERROR after reading the request: maybe processed
        } else {
            Act::Reset(REFUSED_STREAM)
        }
    });
    let run = run(n, decide, |c| c.retry_uncertain = true).unwrap();
    for o in &run.outcomes {
        let records = &run.records[&(o.id as usize)];
        assert_eq!(records.len(), MAX_RETRIES as usize + 1, "{records:?}");
        assert!(records[0].processed);
        assert_eq!(o.kind, OutcomeKind::Failed);
        assert!(
            o.maybe_delivered,
            "maybe_delivered is false but an earlier attempt may have been processed: {o:?}"
        );
    }
}
