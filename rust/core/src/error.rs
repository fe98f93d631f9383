//! The engine's error type: what went wrong before a request could be submitted.

use std::fmt;

/// Why a call into the engine was refused. New kinds may be added: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A value of one notification is invalid (token, header, payload...). Nothing was sent.
    InvalidInput,
    /// The engine or a pool is configured wrongly (base URL, path, option out of range...).
    InvalidConfig,
    /// TLS configuration could not be built (bad CA file, bad client certificate...).
    Tls,
    /// The engine was shut down.
    Closed,
    /// The engine runtime could not be created.
    Runtime,
    /// The engine was created in another process (before a fork): its threads are not here.
    Forked,
}

/// An error with the field it concerns and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    field: Option<String>,
    message: String,
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::InvalidInput,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// An invalid-input error about `field` (for callers that validate before the engine).
    pub fn invalid_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(field, message)
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::InvalidConfig,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A configuration error about `field` (for callers that check options before the engine).
    pub fn invalid_config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::config(field, message)
    }

    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            field: None,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The input field the error is about, when there is one (`token`, `apns-topic`...).
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}
