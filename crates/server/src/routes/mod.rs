//! HTTP routes: the JSON API, the WebSocket, the Ogg stream and source, health.

pub mod api;
pub mod ogg;
pub mod web;
pub mod ws;

use crate::error::ApiError;
use crate::live::LiveSpace;
use crate::{AppState, unix_now};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use std::sync::Arc;
use stentor_gate::shed::{Class, retry_after};
use stentor_gate::ticket::Ticket;
use stentor_space::Role;

/// Largest JSON request body accepted by the API.
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// The one door to a Space's media: a valid ticket for this Space, held by someone who may
/// join it. Needs no database read when the Space is loaded.
pub async fn admit(
    state: &AppState,
    space: &str,
    ticket: Option<&str>,
) -> Result<(Ticket, Arc<LiveSpace>), ApiError> {
    let token = ticket.ok_or_else(|| ApiError::Unauthorized("a join ticket is required".into()))?;
    let ticket = state.tickets.verify(token, space, unix_now())?;
    let live = state.spaces.get(space).await?;
    let role = live.with_domain(|d| d.may_join(ticket.user).map(|()| d.role_of(ticket.user)))?;
    shed_join(state, role)?;
    Ok((ticket, live))
}

/// Refuses a listener's join while joins are shed; people on stage are never refused.
pub fn shed_join(state: &AppState, role: Role) -> Result<(), ApiError> {
    if role.is_speaker() || !state.overload.sheds(Class::Join) {
        return Ok(());
    }
    Err(ApiError::Overloaded {
        reason: "shed_joins",
        retry_after: retry_after(Class::Join, rand::random()),
    })
}

/// Whether a request is "everything else" (the API and status), shed first: not the media
/// doors, tickets, commands (the stage's controls), health and metrics, nor the app's pages,
/// which are small, cacheable, and what tells a person to wait.
fn sheddable(path: &str) -> bool {
    let exempt = ["/commands", "/tickets", "/ws", "/source", "/live.opus"];
    path.starts_with("/api/") && !exempt.iter().any(|e| path.ends_with(e))
}

/// Answers 503 with a jittered Retry-After to sheddable requests while they are shed.
async fn shed_api(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if sheddable(request.uri().path()) && state.overload.sheds(Class::Api) {
        let e = ApiError::Overloaded {
            reason: "shed_api",
            retry_after: retry_after(Class::Api, rand::random()),
        };
        state.metrics.reject(e.reason());
        return e.into_response();
    }
    next.run(request).await
}

/// Counts every request against its address's and network's rates and answers 429 with a
/// Retry-After past them. Not counted: health and metrics (the operator's probes) and the
/// waiting room's status (a crowd behind one NAT polls it; it is read from memory, made
/// for caches, and shed first under overload).
async fn limit_requests(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = peer
        && path != "/healthz"
        && path != "/metrics"
        && !path.ends_with("/status")
        && let Err(refusal) = state.gate.request(ip)
    {
        let e = ApiError::Limited(refusal);
        state.metrics.reject(e.reason());
        return e.into_response();
    }
    next.run(request).await
}

/// A place for a media connection: a listener gets a counted slot while the budget lasts;
/// people on stage are never refused and need none (the reserve covers them).
pub fn slot(
    state: &AppState,
    space: &LiveSpace,
    user: Option<u64>,
) -> Result<Option<stentor_gate::capacity::Slot>, ApiError> {
    let on_stage = user.is_some_and(|u| space.with_domain(|d| d.role_of(u).is_speaker()));
    if on_stage {
        return Ok(None);
    }
    match state.capacity.try_acquire() {
        Some(slot) => Ok(Some(slot)),
        None => Err(ApiError::Unavailable {
            retry_after: 2 + rand::random::<u64>() % 8,
        }),
    }
}

/// Counts a media connection as a join on `transport`, or a rejection by reason.
pub fn count<T>(state: &AppState, transport: &'static str, result: &Result<T, ApiError>) {
    match result {
        Ok(_) => state.metrics.join(transport),
        Err(e) => state.metrics.reject(e.reason()),
    }
}

/// HTTP connections kept open after a response, beyond which each one closes after its
/// response: a crowd fetching tickets must not spend the files its listeners need.
pub const KEEP_ALIVE_CONNECTIONS: i64 = 256;

/// Asks the client to close the connection after this response when many are open.
async fn spare_files(State(state): State<AppState>, mut response: Response) -> Response {
    if state.metrics.http_connections.get() > KEEP_ALIVE_CONNECTIONS {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The router of the whole server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/accounts", post(api::sign_up))
        .route("/sessions", post(api::sign_in).delete(api::sign_out))
        .route("/me", get(api::me))
        .route("/me/spaces", get(api::my_spaces))
        .route("/users/{handle}", get(api::user_by_handle))
        .route("/spaces", post(api::create_space).get(api::list_spaces))
        .route("/spaces/{id}", get(api::get_space))
        .route("/spaces/{id}/status", get(api::status))
        .route("/spaces/{id}/commands", post(api::command))
        .route("/spaces/{id}/tickets", post(api::ticket))
        .route("/spaces/{id}/ws", get(ws::upgrade))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.config.deadlines(),
            crate::deadline::hold_bodies,
        ))
        .route(
            "/spaces/{id}/source",
            put(ogg::source).layer(DefaultBodyLimit::disable()),
        )
        .fallback(|| async { ApiError::NotFound("route") });
    Router::new()
        .nest("/api/v1", api)
        .route("/spaces/{id}/live.opus", get(ogg::live))
        .route("/", get(web::page))
        .route("/signin", get(web::page))
        .route("/signup", get(web::page))
        .route("/new", get(web::page))
        .route("/s/{id}", get(web::page))
        .route("/assets/{name}", get(web::asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(crate::metrics::scrape))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            spare_files,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            shed_api,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_requests,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_is_sheddable_and_not_the_stage_or_the_doors() {
        for path in ["/api/v1/spaces/a", "/api/v1/spaces/a/status", "/api/v1/me"] {
            assert!(sheddable(path), "{path}");
        }
        for path in [
            "/",
            "/app.js",
            "/healthz",
            "/metrics",
            "/api/v1/spaces/a/tickets",
            "/api/v1/spaces/a/commands",
            "/api/v1/spaces/a/ws",
        ] {
            assert!(!sheddable(path), "{path}");
        }
    }
}
