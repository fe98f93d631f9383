//! Streaming HTTP/2 frame-boundary tracking for the fault-injection shim.
//!
//! Both directions see arbitrary byte chunks (TLS records, partial writes), so the
//! parsers keep their position across calls and never assume a frame arrives whole.

use std::collections::{BTreeMap, VecDeque};

pub(crate) const FRAME_HEADER_LEN: usize = 9;
pub(crate) const CLIENT_PREFACE_LEN: usize = 24;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_SETTINGS: u8 = 0x4;
const FLAG_ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_ENTRY_LEN: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub length: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream_id: u32,
}

impl FrameHeader {
    pub fn parse(bytes: &[u8; FRAME_HEADER_LEN]) -> Self {
        FrameHeader {
            length: (usize::from(bytes[0]) << 16)
                | (usize::from(bytes[1]) << 8)
                | usize::from(bytes[2]),
            kind: bytes[3],
            flags: bytes[4],
            stream_id: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        }
    }

    fn is_settings(&self) -> bool {
        self.kind == TYPE_SETTINGS && self.stream_id == 0
    }

    fn is_ack(&self) -> bool {
        self.flags & FLAG_ACK != 0
    }
}

/// A SETTINGS frame that only carries MAX_CONCURRENT_STREAMS.
pub(crate) fn max_streams_settings_frame(
    value: u32,
) -> [u8; FRAME_HEADER_LEN + SETTINGS_ENTRY_LEN] {
    let mut frame = [0u8; FRAME_HEADER_LEN + SETTINGS_ENTRY_LEN];
    #[allow(clippy::cast_possible_truncation)] // 6: the whole length is its low byte
    let length = SETTINGS_ENTRY_LEN as u8;
    frame[2] = length;
    frame[3] = TYPE_SETTINGS;
    frame[9..11].copy_from_slice(&SETTINGS_MAX_CONCURRENT_STREAMS.to_be_bytes());
    frame[11..15].copy_from_slice(&value.to_be_bytes());
    frame
}

/// Who sent a SETTINGS frame that the client has not acknowledged yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettingsOrigin {
    /// Written by h2 itself; h2 expects the ACK.
    H2,
    /// Injected by the shim with this MAX_CONCURRENT_STREAMS value; the ACK must be hidden.
    Injected(u32),
}

/// Connection-wide SETTINGS bookkeeping shared by both directions.
#[derive(Debug, Default)]
pub(crate) struct SettingsLedger {
    /// SETTINGS frames sent to the client, oldest first (ACKs arrive in this order).
    pub unacked: VecDeque<SettingsOrigin>,
    /// Value to inject at the next write-side frame boundary (latest request wins).
    pub pending_injection: Option<u32>,
    /// New value for MAX_CONCURRENT_STREAMS in h2's first SETTINGS frame.
    pub initial_rewrite: Option<u32>,
    /// MAX_CONCURRENT_STREAMS the client has acknowledged (or was told at connect).
    pub acknowledged_limit: u32,
    /// New streams in wire order with the limit in force when their HEADERS arrived: a
    /// stream opened before the client acknowledged a lower limit is held to the old one
    /// (RFC 9113 6.5.3), however late its handler runs.
    opened: BTreeMap<u32, u32>,
    last_opened: u32,
}

/// Streams remembered by [`SettingsLedger::note_stream_opened`] before the oldest are forgotten
/// (h2 refuses streams far beyond the limit itself; their handlers never ask).
const OPENED_MEMORY: usize = 65_536;

impl SettingsLedger {
    pub fn new(initial_limit: u32, rewrite_initial: bool) -> Self {
        SettingsLedger {
            unacked: VecDeque::new(),
            pending_injection: None,
            initial_rewrite: rewrite_initial.then_some(initial_limit),
            acknowledged_limit: initial_limit,
            opened: BTreeMap::new(),
            last_opened: 0,
        }
    }

    /// The client's HEADERS for `stream_id` just went by on the wire.
    pub fn note_stream_opened(&mut self, stream_id: u32) {
        // Trailers (a second HEADERS on an open stream) open nothing.
        if stream_id <= self.last_opened {
            return;
        }
        self.last_opened = stream_id;
        if self.opened.len() == OPENED_MEMORY {
            self.opened.pop_first();
        }
        let limit = self.effective_limit();
        self.opened.insert(stream_id, limit);
    }

    /// The limit `stream_id` must respect: the one in force when it was opened (forgotten
    /// streams, and streams this ledger never saw, get the current one).
    pub fn limit_for_stream(&mut self, stream_id: u32) -> u32 {
        // Handlers run in any order: look the stream up, never drop its neighbours.
        self.opened
            .remove(&stream_id)
            .unwrap_or_else(|| self.effective_limit())
    }

    /// The highest limit the client may currently be using: the acknowledged one, or a
    /// raise it has already received but not acknowledged yet.
    pub fn effective_limit(&self) -> u32 {
        self.unacked
            .iter()
            .filter_map(|origin| match origin {
                SettingsOrigin::Injected(value) => Some(*value),
                SettingsOrigin::H2 => None,
            })
            .chain(self.pending_injection)
            .fold(self.acknowledged_limit, u32::max)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteState {
    /// Collecting the 9 header bytes (count so far).
    Header(usize),
    /// Passing `remaining` payload bytes of a frame.
    Payload {
        remaining: usize,
        rewrite: bool,
        offset: usize,
    },
}

/// Write side (server to client): records h2's SETTINGS frames, rewrites the
/// advertised stream limit in the first one, and injects SETTINGS at frame boundaries.
#[derive(Debug)]
pub(crate) struct WriteFramer {
    state: WriteState,
    header: [u8; FRAME_HEADER_LEN],
    seen_first_settings: bool,
    /// Identifier of the SETTINGS entry currently being rewritten (2 bytes, big endian).
    entry_id: [u8; 2],
}

impl WriteFramer {
    pub fn new() -> Self {
        WriteFramer {
            state: WriteState::Header(0),
            header: [0; FRAME_HEADER_LEN],
            seen_first_settings: false,
            entry_id: [0; 2],
        }
    }

    pub fn at_boundary(&self) -> bool {
        self.state == WriteState::Header(0)
    }

    /// Emits a pending injected SETTINGS frame if the stream sits at a frame boundary.
    pub fn inject_if_due(&mut self, ledger: &mut SettingsLedger, out: &mut Vec<u8>) {
        if !self.at_boundary() {
            return;
        }
        if let Some(value) = ledger.pending_injection.take() {
            out.extend_from_slice(&max_streams_settings_frame(value));
            ledger.unacked.push_back(SettingsOrigin::Injected(value));
        }
    }

    /// Appends the (possibly rewritten) bytes of `input` to `out`.
    pub fn process(&mut self, mut input: &[u8], ledger: &mut SettingsLedger, out: &mut Vec<u8>) {
        while !input.is_empty() {
            self.inject_if_due(ledger, out);
            match self.state {
                WriteState::Header(have) => {
                    let take = (FRAME_HEADER_LEN - have).min(input.len());
                    self.header[have..have + take].copy_from_slice(&input[..take]);
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if have + take == FRAME_HEADER_LEN {
                        self.start_payload(ledger);
                    } else {
                        self.state = WriteState::Header(have + take);
                    }
                }
                WriteState::Payload {
                    remaining,
                    rewrite,
                    offset,
                } => {
                    let take = remaining.min(input.len());
                    if rewrite {
                        let value = ledger.initial_rewrite.unwrap_or(0).to_be_bytes();
                        for (i, &byte) in input[..take].iter().enumerate() {
                            out.push(self.rewrite_settings_byte(offset + i, byte, value));
                        }
                    } else {
                        out.extend_from_slice(&input[..take]);
                    }
                    input = &input[take..];
                    self.state = if take == remaining {
                        WriteState::Header(0)
                    } else {
                        WriteState::Payload {
                            remaining: remaining - take,
                            rewrite,
                            offset: offset + take,
                        }
                    };
                }
            }
        }
        self.inject_if_due(ledger, out);
    }

    fn start_payload(&mut self, ledger: &mut SettingsLedger) {
        let header = FrameHeader::parse(&self.header);
        let mut rewrite = false;
        if header.is_settings() && !header.is_ack() {
            ledger.unacked.push_back(SettingsOrigin::H2);
            rewrite = !self.seen_first_settings && ledger.initial_rewrite.is_some();
            self.seen_first_settings = true;
        }
        self.state = if header.length == 0 {
            WriteState::Header(0)
        } else {
            WriteState::Payload {
                remaining: header.length,
                rewrite,
                offset: 0,
            }
        };
    }

    fn rewrite_settings_byte(&mut self, offset: usize, byte: u8, value: [u8; 4]) -> u8 {
        let position = offset % SETTINGS_ENTRY_LEN;
        if position < 2 {
            self.entry_id[position] = byte;
            return byte;
        }
        if u16::from_be_bytes(self.entry_id) == SETTINGS_MAX_CONCURRENT_STREAMS {
            value[position - 2]
        } else {
            byte
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Preface(usize),
    Header(usize),
    Payload { remaining: usize, drop: bool },
}

/// Read side (client to server): hides the client's ACKs of injected SETTINGS from h2.
#[derive(Debug)]
pub(crate) struct ReadFramer {
    state: ReadState,
    header: [u8; FRAME_HEADER_LEN],
}

impl ReadFramer {
    pub fn new() -> Self {
        ReadFramer {
            state: ReadState::Preface(CLIENT_PREFACE_LEN),
            header: [0; FRAME_HEADER_LEN],
        }
    }

    /// Appends the bytes of `input` that h2 should see to `out`.
    pub fn process(&mut self, mut input: &[u8], ledger: &mut SettingsLedger, out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.state {
                ReadState::Preface(left) => {
                    let take = left.min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.state = if take == left {
                        ReadState::Header(0)
                    } else {
                        ReadState::Preface(left - take)
                    };
                }
                ReadState::Header(have) => {
                    // Header bytes are held back until we know whether the frame is dropped.
                    let take = (FRAME_HEADER_LEN - have).min(input.len());
                    self.header[have..have + take].copy_from_slice(&input[..take]);
                    input = &input[take..];
                    if have + take == FRAME_HEADER_LEN {
                        self.start_payload(ledger, out);
                    } else {
                        self.state = ReadState::Header(have + take);
                    }
                }
                ReadState::Payload { remaining, drop } => {
                    let take = remaining.min(input.len());
                    if !drop {
                        out.extend_from_slice(&input[..take]);
                    }
                    input = &input[take..];
                    self.state = if take == remaining {
                        ReadState::Header(0)
                    } else {
                        ReadState::Payload {
                            remaining: remaining - take,
                            drop,
                        }
                    };
                }
            }
        }
    }

    fn start_payload(&mut self, ledger: &mut SettingsLedger, out: &mut Vec<u8>) {
        let header = FrameHeader::parse(&self.header);
        let mut drop = false;
        if header.kind == TYPE_HEADERS && header.stream_id != 0 {
            ledger.note_stream_opened(header.stream_id);
        }
        if header.is_settings() && header.is_ack() {
            match ledger.unacked.front().copied() {
                Some(SettingsOrigin::Injected(value)) => {
                    ledger.unacked.pop_front();
                    ledger.acknowledged_limit = value;
                    drop = true;
                }
                Some(SettingsOrigin::H2) => {
                    ledger.unacked.pop_front();
                }
                // An ACK nobody asked for: let h2 reject it as the protocol error it is.
                None => {}
            }
        }
        if !drop {
            out.extend_from_slice(&self.header);
        }
        self.state = if header.length == 0 {
            ReadState::Header(0)
        } else {
            ReadState::Payload {
                remaining: header.length,
                drop,
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut out = vec![len[1], len[2], len[3], kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (id, value) in entries {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        frame(TYPE_SETTINGS, 0, 0, &payload)
    }

    fn settings_ack() -> Vec<u8> {
        frame(TYPE_SETTINGS, FLAG_ACK, 0, &[])
    }

    /// Every way of cutting `bytes` into two or three chunks.
    fn splits(bytes: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut all = vec![vec![bytes]];
        for a in 0..=bytes.len() {
            all.push(vec![&bytes[..a], &bytes[a..]]);
            for b in a..=bytes.len() {
                all.push(vec![&bytes[..a], &bytes[a..b], &bytes[b..]]);
            }
        }
        all
    }

    #[test]
    fn parses_frame_header_fields() {
        let header = FrameHeader::parse(&[0x01, 0x02, 0x03, 0x06, 0x01, 0x80, 0, 0, 5]);
        assert_eq!(header.length, 0x01_0203);
        assert_eq!(header.kind, 6);
        assert_eq!(header.flags, 1);
        assert_eq!(header.stream_id, 5, "reserved bit is masked");
    }

    #[test]
    fn injected_frame_layout() {
        assert_eq!(
            max_streams_settings_frame(1000).to_vec(),
            settings(&[(SETTINGS_MAX_CONCURRENT_STREAMS, 1000)])
        );
    }

    #[test]
    fn write_side_rewrites_first_settings_at_every_split() {
        let first = settings(&[(0x1, 4096), (0x3, 5000), (0x4, 1 << 20)]);
        let second = settings(&[(0x3, 7000)]);
        let data = frame(0x0, 0, 1, b"hello");
        let input = [first.clone(), settings_ack(), data.clone(), second.clone()].concat();
        let expected = [
            settings(&[(0x1, 4096), (0x3, 1), (0x4, 1 << 20)]),
            settings_ack(),
            data,
            second,
        ]
        .concat();
        for chunks in splits(&input) {
            let mut ledger = SettingsLedger::new(1, true);
            let mut framer = WriteFramer::new();
            let mut out = Vec::new();
            for chunk in &chunks {
                framer.process(chunk, &mut ledger, &mut out);
            }
            assert_eq!(
                out,
                expected,
                "chunks {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
            assert_eq!(ledger.unacked, [SettingsOrigin::H2, SettingsOrigin::H2]);
            assert!(framer.at_boundary());
        }
    }

    #[test]
    fn write_side_injects_only_at_frame_boundaries() {
        let data = frame(0x0, 0, 1, &[7u8; 20]);
        let headers = frame(0x1, 4, 3, &[1, 2, 3]);
        let input = [data.clone(), headers.clone()].concat();
        let injected = max_streams_settings_frame(42).to_vec();
        for cut in 0..=input.len() {
            let mut ledger = SettingsLedger::new(100, false);
            let mut framer = WriteFramer::new();
            let mut out = Vec::new();
            framer.process(&input[..cut], &mut ledger, &mut out);
            ledger.pending_injection = Some(42);
            framer.process(&input[cut..], &mut ledger, &mut out);
            // The injected frame lands at the first boundary at or after the cut.
            let boundary = if cut == 0 {
                0
            } else if cut <= data.len() {
                data.len()
            } else {
                input.len()
            };
            let expected = [&input[..boundary], &injected[..], &input[boundary..]].concat();
            assert_eq!(out, expected, "cut at {cut}");
            assert_eq!(ledger.unacked, [SettingsOrigin::Injected(42)]);
            assert_eq!(ledger.pending_injection, None);
        }
    }

    #[test]
    fn write_side_leaves_settings_alone_without_rewrite() {
        let first = settings(&[(0x3, 5000)]);
        let mut ledger = SettingsLedger::new(5000, false);
        let mut framer = WriteFramer::new();
        let mut out = Vec::new();
        framer.process(&first, &mut ledger, &mut out);
        assert_eq!(out, first);
    }

    #[test]
    fn read_side_drops_only_acks_of_injected_settings() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let client_settings = settings(&[(0x2, 0)]);
        let ping = frame(0x6, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let headers = frame(0x1, 5, 1, &[0x82, 0x84]);
        // Unacked order: h2's SETTINGS, then injected(1), then injected(9).
        let input = [
            preface.clone(),
            client_settings.clone(),
            settings_ack(),
            ping.clone(),
            settings_ack(),
            headers.clone(),
            settings_ack(),
        ]
        .concat();
        let expected = [preface, client_settings, settings_ack(), ping, headers].concat();
        for chunks in splits(&input) {
            let mut ledger = SettingsLedger::new(1, true);
            ledger.unacked.extend([
                SettingsOrigin::H2,
                SettingsOrigin::Injected(1),
                SettingsOrigin::Injected(9),
            ]);
            let mut framer = ReadFramer::new();
            let mut out = Vec::new();
            for chunk in &chunks {
                framer.process(chunk, &mut ledger, &mut out);
            }
            assert_eq!(
                out,
                expected,
                "chunks {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
            assert!(ledger.unacked.is_empty());
            assert_eq!(ledger.acknowledged_limit, 9);
        }
    }

    #[test]
    fn read_side_passes_unexpected_ack_to_h2() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let input = [preface, settings_ack()].concat();
        let mut ledger = SettingsLedger::new(10, false);
        let mut framer = ReadFramer::new();
        let mut out = Vec::new();
        framer.process(&input, &mut ledger, &mut out);
        assert_eq!(out, input);
    }

    #[test]
    fn effective_limit_includes_unacknowledged_raises_only() {
        let mut ledger = SettingsLedger::new(1, true);
        assert_eq!(ledger.effective_limit(), 1);
        ledger.unacked.push_back(SettingsOrigin::Injected(500));
        assert_eq!(ledger.effective_limit(), 500);
        ledger.acknowledged_limit = 500;
        ledger.unacked.clear();
        ledger.pending_injection = Some(10);
        assert_eq!(
            ledger.effective_limit(),
            500,
            "a lowered limit applies once acknowledged"
        );
    }

    #[test]
    fn streams_opened_before_the_ack_of_a_lower_limit_keep_the_old_one() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let mut ledger = SettingsLedger::new(1000, false);
        ledger.unacked.push_back(SettingsOrigin::Injected(1));
        let mut framer = ReadFramer::new();
        let mut out = Vec::new();
        // Streams 1 and 3, then the ACK of the lowered limit, then stream 5; a trailer on 3.
        let wire = [
            preface,
            frame(TYPE_HEADERS, 0x4, 1, b"h"),
            frame(TYPE_HEADERS, 0x4, 3, b"h"),
            settings_ack(),
            frame(TYPE_HEADERS, 0x4, 5, b"h"),
            frame(TYPE_HEADERS, 0x5, 3, b"t"),
        ]
        .concat();
        // Byte by byte: the ledger must not depend on how TLS records cut the stream.
        for byte in &wire {
            framer.process(std::slice::from_ref(byte), &mut ledger, &mut out);
        }
        assert_eq!(ledger.acknowledged_limit, 1);
        // Handlers ask in any order.
        assert_eq!(ledger.limit_for_stream(5), 1);
        assert_eq!(ledger.limit_for_stream(3), 1000);
        assert_eq!(ledger.limit_for_stream(1), 1000);
        // Asked once; a stream never seen gets the limit in force now.
        assert_eq!(ledger.limit_for_stream(3), 1);
        assert_eq!(ledger.limit_for_stream(99), 1);
    }
}
