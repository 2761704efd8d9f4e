//! Accounts and sessions: sign up, sign in, sign out, who am I.

use super::Json;
use crate::auth::{self, Caller, SESSION_COOKIE, SESSION_SECS};
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tls::Https;
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use stentor_store::User;

/// Handle and password, to sign up or in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    handle: String,
    password: String,
}

/// A user as the API shows it.
#[derive(Serialize)]
pub struct UserView {
    /// Numeric id.
    pub id: u64,
    /// Handle.
    pub handle: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            handle: u.handle,
        }
    }
}

#[derive(Serialize)]
struct SessionView {
    user: UserView,
    token: String,
}

/// Longest password accepted, in bytes.
const MAX_PASSWORD: usize = 1024;

fn check_credentials(c: &Credentials) -> Result<(), ApiError> {
    let ok_handle = (3..=30).contains(&c.handle.len())
        && c.handle
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok_handle {
        return Err(ApiError::BadRequest(
            "handle: 3 to 30 characters of a-z, 0-9 and _".into(),
        ));
    }
    if !(8..=MAX_PASSWORD).contains(&c.password.len()) {
        return Err(ApiError::BadRequest("password: 8 to 1024 bytes".into()));
    }
    Ok(())
}

/// The session cookie: `token` for `max_age` seconds (0 clears it); `Secure` on HTTPS.
fn session_cookie(token: &str, max_age: i64, https: Option<Extension<Https>>) -> String {
    let secure = if https.is_some() { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}")
}

async fn open_session(
    state: &AppState,
    user: User,
    status: StatusCode,
    https: Option<Extension<Https>>,
) -> Result<Response, ApiError> {
    let token = auth::new_token();
    let expires = unix_now() as i64 + SESSION_SECS;
    state
        .store
        .create_session(&auth::token_hash(&token), user.id, expires)
        .await?;
    let cookie = session_cookie(&token, SESSION_SECS, https);
    let body = SessionView {
        user: user.into(),
        token,
    };
    Ok((status, [(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// `POST /api/v1/accounts`: creates an account and signs in.
pub async fn sign_up(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    https: Option<Extension<Https>>,
    Json(c): Json<Credentials>,
) -> Result<Response, ApiError> {
    check_credentials(&c)?;
    state.gate.costly(peer.ip()).map_err(ApiError::Limited)?;
    let hash = state.passwords.hash(c.password).await?;
    let user = state
        .store
        .create_user(&c.handle, &hash, unix_now() as i64)
        .await?;
    open_session(&state, user, StatusCode::CREATED, https).await
}

/// `POST /api/v1/sessions`: signs in. A handle that does not exist costs the same hash as a
/// wrong password, and answers the same.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    https: Option<Extension<Https>>,
    Json(c): Json<Credentials>,
) -> Result<Response, ApiError> {
    let refused = || ApiError::Unauthorized("wrong handle or password".into());
    if c.password.len() > MAX_PASSWORD {
        return Err(refused());
    }
    state.gate.costly(peer.ip()).map_err(ApiError::Limited)?;
    let (user, hash) = match state.store.user_with_hash(&c.handle).await? {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    if !state.passwords.verify(&c.handle, c.password, hash).await? {
        return Err(refused());
    }
    open_session(&state, user.ok_or_else(refused)?, StatusCode::OK, https).await
}

/// `DELETE /api/v1/sessions`: signs out.
pub async fn sign_out(
    State(state): State<AppState>,
    https: Option<Extension<Https>>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    if let Some(token) = auth::request_token(&parts) {
        let hash = auth::token_hash(&token);
        let now = unix_now();
        if let Some(user) = state.store.session_user(&hash, now as i64).await? {
            // Tickets are checked without the database: the ones already handed out must
            // be refused from now on too.
            state.revocations.lock().revoke(user.id, now);
        }
        state.store.delete_session(&hash).await?;
        state.sessions.forget(&hash);
    }
    let cookie = session_cookie("", 0, https);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The signed-in user, with its role.
#[derive(Serialize)]
pub struct MeView {
    #[serde(flatten)]
    user: UserView,
    /// `admin`, `moderator`, `trusted_flagger`, or none.
    role: Option<String>,
    /// For moderators: whether a post can be removed or labelled in some countries only (the
    /// server knows its visitors' countries).
    #[serde(skip_serializing_if = "Option::is_none")]
    countries: Option<bool>,
}

/// `GET /api/v1/me`: the signed-in user and its role, or `null` when signed out.
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Option<MeView>>, ApiError> {
    let Some(user) = caller.0 else {
        return Ok(Json(None));
    };
    let role = super::moderation::role(&state, &user).await?;
    let countries = matches!(role.as_deref(), Some("moderator" | "admin"))
        .then(|| state.config.moderation.country_header.is_some());
    Ok(Json(Some(MeView {
        user: user.into(),
        role,
        countries,
    })))
}
