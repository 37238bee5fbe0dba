//! The one error type shared by the core and every adapter.

use std::fmt;

/// A boxed error from a backend (Kafka, MongoDB, a socket...), kept as the `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, grouped by what the caller should do about it.
///
/// Adapters convert their own errors into this type (keeping the original as `source`), so
/// HTTP status codes, STOMP ERROR frames and dead-letter reasons are decided in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input from a client or producer is invalid; `field` names the offending field.
    #[error("{}", display_invalid(.field, .message))]
    InvalidInput {
        /// JSON path of the offending field (`recipients.users[0]`), if one field is to blame.
        field: Option<String>,
        /// What is wrong, for humans.
        message: String,
    },
    /// No credentials, or credentials that do not verify.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// Why the credentials were refused.
        message: String,
    },
    /// Valid credentials, but not allowed to do this.
    #[error("forbidden: {message}")]
    Forbidden {
        /// What was refused.
        message: String,
    },
    /// The thing does not exist or the caller cannot see it.
    #[error("not found: {message}")]
    NotFound {
        /// What was not found.
        message: String,
    },
    /// A body or frame is larger than allowed.
    #[error("payload too large: {what} exceeds {limit} bytes")]
    PayloadTooLarge {
        /// What was too large (`event`, `body`, `frame`).
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// Over a rate or connection limit; `limit` names the variable that sets it.
    #[error("limit exceeded: {limit}")]
    RateLimited {
        /// The limit's variable (`NOTIFY_USER_RATE`, `NOTIFY_MAX_CONNECTIONS`...).
        limit: &'static str,
        /// When trying again may succeed (`Retry-After`).
        retry_after: std::time::Duration,
    },
    /// A backend (store, event source) cannot be reached or failed; retrying may help.
    #[error("{component} unavailable: {message}")]
    Unavailable {
        /// `store`, `event_source`...
        component: &'static str,
        /// What happened.
        message: String,
        /// The backend's own error.
        #[source]
        source: Option<BoxError>,
    },
    /// Invalid configuration; `variable` names the environment variable or setting.
    #[error("{variable}: {message}")]
    Config {
        /// The environment variable (or setting) that is wrong.
        variable: String,
        /// What is wrong with it.
        message: String,
    },
    /// A bug or an unexpected backend answer. Never used for bad input.
    #[error("internal error: {message}")]
    Internal {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

fn display_invalid(field: &Option<String>, message: &str) -> String {
    match field {
        Some(field) => format!("{field}: {message}"),
        None => message.to_string(),
    }
}

impl Error {
    /// An [`Error::InvalidInput`] blaming one field.
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::InvalidInput {
            field: Some(field.into()),
            message: message.to_string(),
        }
    }

    /// An [`Error::InvalidInput`] that is not about one field (e.g. malformed JSON).
    pub fn invalid_body(message: impl fmt::Display) -> Self {
        Error::InvalidInput {
            field: None,
            message: message.to_string(),
        }
    }

    /// An [`Error::Unauthorized`].
    pub fn unauthorized(message: impl fmt::Display) -> Self {
        Error::Unauthorized {
            message: message.to_string(),
        }
    }

    /// An [`Error::Forbidden`].
    pub fn forbidden(message: impl fmt::Display) -> Self {
        Error::Forbidden {
            message: message.to_string(),
        }
    }

    /// An [`Error::NotFound`].
    pub fn not_found(message: impl fmt::Display) -> Self {
        Error::NotFound {
            message: message.to_string(),
        }
    }

    /// An [`Error::Unavailable`] with the backend error as source.
    pub fn unavailable(
        component: &'static str,
        message: impl fmt::Display,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Unavailable {
            component,
            message: message.to_string(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Unavailable`] with no backend error behind it: the backend answered, but
    /// not usably (a topic missing from the metadata, a producer that went away).
    pub fn unavailable_because(component: &'static str, message: impl fmt::Display) -> Self {
        Error::Unavailable {
            component,
            message: message.to_string(),
            source: None,
        }
    }

    /// An [`Error::Config`] naming the variable.
    pub fn config(variable: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Config {
            variable: variable.into(),
            message: message.to_string(),
        }
    }

    /// An [`Error::Internal`].
    pub fn internal(message: impl fmt::Display) -> Self {
        Error::Internal {
            message: message.to_string(),
            source: None,
        }
    }

    /// An [`Error::Internal`] caused by `source` (a panicked task, an unexpected backend
    /// answer), kept for the log.
    pub fn internal_from(message: impl fmt::Display, source: impl Into<BoxError>) -> Self {
        Error::Internal {
            message: message.to_string(),
            source: Some(source.into()),
        }
    }

    /// The stable machine-readable code used in JSON error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
            Error::NotFound { .. } => "not_found",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable { .. } => "unavailable",
            Error::Config { .. } => "config",
            Error::Internal { .. } => "internal",
        }
    }

    /// The HTTP status for this error (the contract's table).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::InvalidInput { .. } => 400,
            Error::Unauthorized { .. } => 401,
            Error::Forbidden { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::PayloadTooLarge { .. } => 413,
            Error::RateLimited { .. } => 429,
            Error::Unavailable { .. } => 503,
            Error::Config { .. } | Error::Internal { .. } => 500,
        }
    }

    /// The field to blame, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidInput { field, .. } => field.as_deref(),
            Error::Config { variable, .. } => Some(variable),
            Error::RateLimited { limit, .. } => Some(limit),
            _ => None,
        }
    }

    /// True when retrying the same operation later may succeed (backend outages).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// The JSON error body of the contract: `{"error":{"code","message","field"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let message = match self {
            // The field is reported separately; keep the message readable on its own too.
            Error::InvalidInput { message, field } => match field {
                Some(f) => format!("{f}: {message}"),
                None => message.clone(),
            },
            other => other.to_string(),
        };
        let mut error = serde_json::json!({ "code": self.code(), "message": message });
        if let Some(field) = self.field() {
            error["field"] = serde_json::Value::String(field.to_string());
        }
        serde_json::json!({ "error": error })
    }
}
