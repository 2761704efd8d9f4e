//! The JSON API: accounts, sessions, Spaces, commands and join tickets.

use crate::auth::{self, Caller, SESSION_COOKIE, SESSION_SECS};
use crate::error::ApiError;
use crate::live::{LiveSpace, SpaceView};
use crate::{AppState, unix_now};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use stentor_gate::ticket::Ticket;
use stentor_space::{Command, Role, UserId};
use stentor_store::{SpaceRecord, User};

/// A JSON body whose rejections are problem+json like every other error.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(r.body_text()),
            _ => ApiError::BadRequest(r.body_text()),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

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

async fn open_session(
    state: &AppState,
    user: User,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let token = auth::new_token();
    let expires = unix_now() as i64 + SESSION_SECS;
    state
        .store
        .create_session(&auth::token_hash(&token), user.id, expires)
        .await?;
    let cookie =
        format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={SESSION_SECS}");
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
    Json(c): Json<Credentials>,
) -> Result<Response, ApiError> {
    check_credentials(&c)?;
    state.gate.costly(peer.ip()).map_err(ApiError::Limited)?;
    let hash = state.passwords.hash(c.password).await?;
    let user = state
        .store
        .create_user(&c.handle, &hash, unix_now() as i64)
        .await?;
    open_session(&state, user, StatusCode::CREATED).await
}

/// `POST /api/v1/sessions`: signs in. A handle that does not exist costs the same hash as a
/// wrong password, and answers the same.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    open_session(&state, user.ok_or_else(refused)?, StatusCode::OK).await
}

/// `DELETE /api/v1/sessions`: signs out.
pub async fn sign_out(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    if let Some(token) = auth::request_token(&parts) {
        state
            .store
            .delete_session(&auth::token_hash(&token))
            .await?;
    }
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/v1/me`: the signed-in user, or `null` when signed out.
pub async fn me(caller: Caller) -> Json<Option<UserView>> {
    Json(caller.0.map(Into::into))
}

/// A new Space.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSpace {
    title: String,
    /// Announced start, Unix seconds.
    #[serde(default)]
    starts_at: Option<i64>,
}

/// `POST /api/v1/spaces`: creates a scheduled Space hosted by the caller.
pub async fn create_space(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    Json(new): Json<NewSpace>,
) -> Result<(StatusCode, Json<SpaceView>), ApiError> {
    let user = caller.required()?;
    state.gate.costly(peer.ip()).map_err(ApiError::Limited)?;
    let title = new.title.trim();
    if title.is_empty() || title.chars().count() > 120 {
        return Err(ApiError::BadRequest("title: 1 to 120 characters".into()));
    }
    let record = SpaceRecord {
        id: new_space_id(),
        host_id: user.id,
        title: title.to_owned(),
        state: "scheduled".into(),
        starts_at: new.starts_at,
        created_at: unix_now() as i64,
    };
    let space = state.spaces.create(record).await?;
    Ok((StatusCode::CREATED, Json(space.view())))
}

fn new_space_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let bytes: [u8; 10] = rand::random();
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A Space in a listing.
#[derive(Serialize)]
pub struct SpaceSummary {
    /// Public id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `scheduled` or `live`.
    pub state: String,
    /// Host user id.
    pub host: u64,
    /// Host handle.
    pub host_handle: Option<String>,
    /// Announced start, Unix seconds.
    pub starts_at: Option<i64>,
}

impl SpaceSummary {
    fn new(r: SpaceRecord, host_handle: Option<String>) -> Self {
        Self {
            id: r.id,
            title: r.title,
            state: r.state,
            host: r.host_id,
            host_handle,
            starts_at: r.starts_at,
        }
    }
}

/// `GET /api/v1/spaces`: Spaces that are scheduled or live.
pub async fn list_spaces(
    State(state): State<AppState>,
) -> Result<Json<Vec<SpaceSummary>>, ApiError> {
    let records = state.store.open_spaces(100).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|(r, handle)| SpaceSummary::new(r, Some(handle)))
            .collect(),
    ))
}

/// `GET /api/v1/me/spaces`: the Spaces the caller hosts, newest first.
pub async fn my_spaces(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SpaceSummary>>, ApiError> {
    let user = caller.required()?;
    let records = state.store.hosted_spaces(user.id, 100).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| SpaceSummary::new(r, Some(user.handle.clone())))
            .collect(),
    ))
}

/// `GET /api/v1/users/{handle}`: a user by handle (to invite them).
pub async fn user_by_handle(
    State(state): State<AppState>,
    Path(handle): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let (user, _) = state
        .store
        .user_with_hash(&handle)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(Json(user.into()))
}

/// `GET /api/v1/spaces/{id}`: one Space with its stage.
pub async fn get_space(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SpaceView>, ApiError> {
    Ok(Json(state.spaces.get(&id).await?.view()))
}

/// `GET /api/v1/spaces/{id}/status`: the waiting room's view of a Space, from memory (no
/// database read once the Space is loaded), cacheable for a second by any shared cache.
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let space = state.spaces.get(&id).await?;
    let status = space.status(&state.config.lobby(), unix_now() as i64);
    Ok((
        [(
            header::CACHE_CONTROL,
            "public, max-age=1, stale-while-revalidate=5",
        )],
        Json(status),
    )
        .into_response())
}

/// `POST /api/v1/spaces/{id}/commands`: a command as the signed-in caller (same commands as
/// over the WebSocket).
pub async fn command(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(command): Json<Command>,
) -> Result<StatusCode, ApiError> {
    let user = caller.required()?;
    let space = state.spaces.get(&id).await?;
    space.run_command(user.id, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A join ticket as issued.
#[derive(Serialize)]
pub struct TicketView {
    /// The signed ticket.
    pub ticket: String,
    /// The holder.
    pub user: UserId,
    /// The holder's role.
    pub role: Role,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// `POST /api/v1/spaces/{id}/tickets`: a join ticket for the caller (or an anonymous listener).
/// The door answers an anonymous request for a loaded Space itself (door.rs), with
/// [`grant`] too.
pub async fn ticket(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(work): Query<WorkQuery>,
    caller: Caller,
) -> Result<Json<TicketView>, ApiError> {
    let space = state.spaces.get(&id).await?;
    let granted = grant(&state, &space, &id, caller.0.as_ref(), work.work().as_ref());
    if let Err(e @ (ApiError::Overloaded { .. } | ApiError::WorkRequired(_))) = &granted {
        state.metrics.reject(e.reason());
    }
    granted.map(Json)
}

/// A proof of work sent with a ticket request, if any.
#[derive(Debug, Default, Deserialize)]
pub struct WorkQuery {
    challenge: Option<String>,
    nonce: Option<u64>,
}

impl WorkQuery {
    /// The solution, when both parts are there.
    pub fn work(self) -> Option<stentor_gate::pow::Work> {
        Some(stentor_gate::pow::Work {
            challenge: self.challenge?,
            nonce: self.nonce?,
        })
    }
}

/// A join ticket for `caller` (an anonymous listener when `None`) in Space `id`; in
/// under-attack mode a listener's costs the proof of `work`.
pub fn grant(
    state: &AppState,
    space: &LiveSpace,
    id: &str,
    caller: Option<&User>,
    work: Option<&stentor_gate::pow::Work>,
) -> Result<TicketView, ApiError> {
    let user = match caller {
        Some(u) => {
            space.remember_name(u.id, &u.handle);
            u.id
        }
        None if state.config.allow_anonymous() => anonymous_id(),
        None => return Err(ApiError::Unauthorized("sign in to listen".into())),
    };
    let role = space.with_domain(|d| d.may_join(user).map(|()| d.role_of(user)))?;
    crate::routes::shed_join(state, role)?;
    if !role.is_speaker() && state.overload.under_attack() {
        state
            .proofs
            .demand(
                &state.tickets,
                id,
                state.overload.pressure(),
                work,
                unix_now(),
            )
            .map_err(ApiError::WorkRequired)?;
    }
    let ticket = state.issue_ticket(id, user, role);
    Ok(TicketView {
        ticket: state.tickets.sign(&ticket),
        user,
        role,
        expires_at: ticket.exp,
    })
}

/// Anonymous listeners get ids of 2^52 and above, so they never collide with accounts.
pub fn anonymous_id() -> UserId {
    // From 2^52 up to (not including) 2^53: exact as a JavaScript number, and far above
    // any account id.
    (rand::random::<u64>() >> 12) | (1 << 52)
}

impl AppState {
    /// A ticket for `user` in `space` with `role`, valid for the configured lifetime.
    pub fn issue_ticket(&self, space: &str, user: UserId, role: Role) -> Ticket {
        Ticket {
            space: space.to_owned(),
            user,
            role,
            exp: unix_now() + self.config.ticket_ttl_secs(),
        }
    }
}
