//! Sessions: tokens (what the client keeps, and the hash the server stores), and the caller
//! extractor that reads a bearer token or the session cookie.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use stentor_store::User;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "stentor_session";
/// Lifetime of a session, in seconds (30 days).
pub const SESSION_SECS: i64 = 30 * 24 * 3600;

/// A new random session token (what the client keeps).
pub fn new_token() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// What the server stores for a token: its SHA-256, so a leaked database holds no sessions.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed-in caller, if any (bearer token or session cookie).
#[derive(Debug, Clone)]
pub struct Caller(pub Option<User>);

impl Caller {
    /// The user, or 401.
    pub fn required(self) -> Result<User, ApiError> {
        self.0
            .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))
    }
}

/// The token a request carries, from `Authorization: Bearer` or the session cookie.
pub fn request_token(parts: &Parts) -> Option<String> {
    request_token_kind(parts).map(|(token, _)| token)
}

/// The token and whether it came as a bearer token (true) or a cookie.
fn request_token_kind(parts: &Parts) -> Option<(String, bool)> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        return v
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(|t| (t.trim().to_owned(), true));
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| (v.to_owned(), false))
        })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some((token, bearer)) = request_token_kind(parts) else {
            return Ok(Caller(None));
        };
        let hash = token_hash(&token);
        let now = crate::clock::unix_now() as i64;
        let user = state.sessions.user(&hash, now).await.map_err(|e| match e {
            crate::sessions::ReadError::Busy => ApiError::Overloaded {
                reason: "sessions_busy",
                retry_after: 1,
            },
            crate::sessions::ReadError::Store(e) => ApiError::Internal(e),
        })?;
        match user {
            Some(u) => Ok(Caller(Some(u))),
            // A bad bearer token is the client's mistake and says so; a stale cookie just
            // means the browser is signed out, which must not stop it from listening.
            None if bearer => Err(ApiError::Unauthorized("unknown or expired session".into())),
            None => Ok(Caller(None)),
        }
    }
}

/// The visitor's country (an ISO 3166 alpha-2 code, upper case) from the header a trusted
/// front end sets (`--country-header`); `None` when that is not configured or not given.
pub struct Country(pub Option<String>);

impl FromRequestParts<AppState> for Country {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let code = state
            .config
            .moderation
            .country_header
            .as_deref()
            .and_then(|name| parts.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_uppercase())
            .filter(|v| v.len() == 2 && v.bytes().all(|b| b.is_ascii_uppercase()));
        Ok(Country(code))
    }
}
