//! The one mapping from errors to HTTP responses (`application/problem+json`, RFC 9457).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stentor_gate::limits;
use stentor_gate::ticket::TicketError;
use stentor_space::Refusal;
use stentor_store::StoreError;

/// An error answered over HTTP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The Space has ended.
    #[error("the space has ended")]
    Gone,
    /// A part or segment of a live stream that has left its window.
    #[error("{0} has left the live window")]
    LeftWindow(&'static str),
    /// A request body, or a source's audio, did not arrive in time.
    #[error("{0}")]
    TimedOut(String),
    /// A body or message is too large.
    #[error("{0}")]
    TooLarge(String),
    /// The caller has as many of something waiting as one may (say, open reports).
    #[error("{0}")]
    TooMany(String),
    /// The ticket was refused.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// The Space refused the command.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The server is at capacity; come back after `retry_after` seconds.
    #[error("the server is full; retry in {retry_after} s")]
    Unavailable {
        /// Seconds to wait (jittered, so that a refused crowd does not return at once).
        retry_after: u64,
    },
    /// The server is overloaded and sheds this kind of work; come back after `retry_after`.
    #[error("the server is overloaded; retry in {retry_after} s")]
    Overloaded {
        /// What was shed, for metrics: `shed_joins`, `shed_api`.
        reason: &'static str,
        /// Seconds to wait (jittered).
        retry_after: u64,
    },
    /// Under attack, a new ticket costs a proof of work: solve this challenge and ask again.
    #[error("{}", work_detail(.0))]
    WorkRequired(stentor_gate::pow::Required),
    /// Too many wrong passwords for this account lately: the next try is checked only after
    /// `retry_after` seconds.
    #[error("too many failed sign-ins for this account; retry in {retry_after} s")]
    Throttled {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The caller's address or network asks too often or holds too many connections.
    #[error("{}", limited_detail(*.0))]
    Limited(limits::Refusal),
    /// Something failed on our side.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Gone => "ended",
            ApiError::LeftWindow(_) => "left_window",
            ApiError::TooLarge(_) => "too_large",
            ApiError::TooMany(_) => "too_many",
            ApiError::TimedOut(_) => "timed_out",
            ApiError::Ticket(TicketError::Expired) => "ticket_expired",
            ApiError::Ticket(TicketError::WrongSpace) => "ticket_wrong_space",
            ApiError::Ticket(_) => "ticket_invalid",
            ApiError::Refused(Refusal::Removed) => "removed",
            ApiError::Refused(Refusal::Ended) => "ended",
            ApiError::Refused(_) => "refused",
            ApiError::Unavailable { .. } => "capacity",
            ApiError::Overloaded { reason, .. } => reason,
            ApiError::Limited(refusal) => refusal.reason(),
            ApiError::Throttled { .. } => "sign_in_throttled",
            ApiError::WorkRequired(r) if r.why.is_none() => "pow_required",
            ApiError::WorkRequired(_) => "pow_invalid",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Seconds the client is told to wait before trying again, if it is told to.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Unavailable { retry_after }
            | ApiError::Overloaded { retry_after, .. }
            | ApiError::Throttled { retry_after } => Some(*retry_after),
            ApiError::Limited(refusal) => Some(refusal.retry_after_secs()),
            _ => None,
        }
    }
}

fn work_detail(required: &stentor_gate::pow::Required) -> String {
    match required.why {
        None => format!(
            "the server is under attack: a ticket costs a proof of work of {} bits",
            required.bits
        ),
        Some(why) => format!("{why}: solve the new challenge ({} bits)", required.bits),
    }
}

fn limited_detail(refusal: limits::Refusal) -> String {
    let who = match refusal {
        limits::Refusal::Rate { scope, .. } | limits::Refusal::Connections { scope } => match scope
        {
            limits::Scope::Ip => "your address",
            limits::Scope::Network => "your network",
            limits::Scope::Server => "everyone",
        },
    };
    match refusal {
        limits::Refusal::Rate { .. } => format!(
            "too many requests from {who}; retry in {} s",
            refusal.retry_after_secs()
        ),
        limits::Refusal::Connections { .. } => format!(
            "too many connections from {who}; retry in {} s",
            refusal.retry_after_secs()
        ),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<&ApiError> for StatusCode {
    fn from(e: &ApiError) -> Self {
        match e {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::Ticket(_) | ApiError::WorkRequired(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone | ApiError::LeftWindow(_) => StatusCode::GONE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Refused(r) => match r {
                Refusal::Ended => StatusCode::GONE,
                Refusal::NotPermitted { .. }
                | Refusal::Removed
                | Refusal::Outranked
                | Refusal::HeldByModerators => StatusCode::FORBIDDEN,
                _ => StatusCode::CONFLICT,
            },
            ApiError::Unavailable { .. }
            | ApiError::Overloaded { .. }
            | ApiError::Limited(limits::Refusal::Connections { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Limited(limits::Refusal::Rate { .. }) | ApiError::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// The status and the problem document.
    fn problem(&self) -> (StatusCode, String) {
        let status = StatusCode::from(self);
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        if let ApiError::WorkRequired(required) = self {
            body["challenge"] = required.challenge.clone().into();
            body["bits"] = required.bits.into();
        }
        (status, body.to_string())
    }

    /// The same answer as a whole HTTP/1.1 response, for connections served off the HTTP
    /// stack; the connection closes after it.
    pub fn to_http1(&self) -> Vec<u8> {
        let (status, body) = self.problem();
        let retry = self
            .retry_after()
            .map_or(String::new(), |s| format!("retry-after: {s}\r\n"));
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n{retry}connection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("error"),
            body.len(),
        )
        .into_bytes()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.problem();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(retry_after) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}
