//! Protocol-neutral answers: what a stream gets, decided before any waiting or faults.

use std::time::Duration;

use bytes::Bytes;
use http::header::{IntoHeaderName, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::config::{Behavior, Failure};

/// One complete HTTP answer (headers and an optional body).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn empty(status: u16) -> Self {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        let mut reply = Reply::empty(status);
        reply.body = body.into();
        reply.header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
    }

    pub fn header(mut self, name: impl IntoHeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub fn retry_after(self, seconds: u64) -> Self {
        self.header(RETRY_AFTER, HeaderValue::from(seconds))
    }
}

/// How each protocol words the answers a rule can ask for.
pub(crate) trait Answers {
    fn ok(&self) -> Reply;
    fn failure(&self, failure: Failure) -> Reply;
    /// An explicit `reject:STATUS:REASON`.
    fn reject(&self, status: u16, reason: &str, timestamp_ms: Option<u64>) -> Reply;
}

/// What the stream task does once the request has been judged.
#[derive(Debug)]
pub(crate) enum Action {
    Reply(Reply),
    /// Answer after this delay (other streams are not blocked).
    Delayed(Duration, Reply),
    Hang,
    Reset(h2::Reason),
    GoAway,
    CloseConnection,
    Blackhole,
}

impl Action {
    /// A rule's behaviour, with the answers worded by `answers`.
    pub fn for_behavior(behavior: Behavior, answers: &dyn Answers) -> Action {
        match behavior {
            Behavior::Ok => Action::Reply(answers.ok()),
            Behavior::Fail(failure) => Action::Reply(answers.failure(failure)),
            Behavior::Reject {
                status,
                reason,
                timestamp_ms,
            } => Action::Reply(answers.reject(status, &reason, timestamp_ms)),
            Behavior::Delay(delay) => Action::Delayed(delay, answers.ok()),
            Behavior::Hang => Action::Hang,
            Behavior::Reset(reason) => Action::Reset(reason),
            Behavior::GoAway => Action::GoAway,
            Behavior::CloseConnection => Action::CloseConnection,
            Behavior::Blackhole => Action::Blackhole,
        }
    }
}
