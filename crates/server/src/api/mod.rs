//! The HTTP routes, one module per resource, and the layers every request passes: rates,
//! shedding, deadlines, spare files.

pub mod accounts;
pub mod avatars;
pub mod hls;
pub mod media;
pub mod moderation;
pub mod notifications;
pub mod posts;
pub mod push;
pub mod recordings;
pub mod spaces;
pub mod tickets;
pub mod users;
pub mod web;

use crate::error::ApiError;
use crate::join::door::KEEP_ALIVE_CONNECTIONS;
use crate::state::AppState;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde::Serialize;
use stentor_gate::shed::{Class, retry_after};

/// Largest JSON request body accepted by the API.
pub const MAX_JSON_BODY: usize = 16 * 1024;

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

/// Whether a request is "everything else" (the API and status), shed first: not the media
/// doors, tickets, commands (the stage's controls), health and metrics, nor the app's pages,
/// which are small, cacheable, and what tells a person to wait.
fn sheddable(path: &str) -> bool {
    let exempt = ["/commands", "/tickets", "/ws", "/source", "/live.opus"];
    path.starts_with("/api/") && !exempt.iter().any(|e| path.ends_with(e))
}

/// Whether a request is a listener joining a Space: its ticket, its WebSocket, its stream.
fn is_join(method: &axum::http::Method, path: &str) -> bool {
    let Some(rest) = path
        .strip_prefix("/api/v1/spaces/")
        .or(path.strip_prefix("/spaces/"))
    else {
        return false;
    };
    match rest.split_once('/') {
        Some((_, "tickets")) => method == axum::http::Method::POST,
        Some((_, "ws" | "live.opus")) => method == axum::http::Method::GET,
        _ => false,
    }
}

/// Whether a request is for a Space's LL-HLS: read from memory, made for caches, and a crowd
/// behind one cache (or one carrier NAT) asks for it five times a second each.
fn is_hls(path: &str) -> bool {
    path.strip_prefix("/spaces/")
        .is_some_and(|rest| rest.ends_with("/live.m3u8") || rest.split('/').nth(1) == Some("hls"))
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
    let Some(ip) = peer else {
        return next.run(request).await;
    };
    if path == "/healthz" || path == "/metrics" || path.ends_with("/status") || is_hls(path) {
        return next.run(request).await;
    }
    // A listener's join waits its turn as it does in the door (the door does not see joins
    // on a connection that carried requests before, nor any on the server's own TLS).
    let limited = if is_join(request.method(), path) {
        crate::join::door::pace_join(&state, ip).await
    } else {
        state.gate.request(ip).map_err(ApiError::Limited)
    };
    if let Err(e) = limited {
        state.metrics.reject(e.reason());
        return e.into_response();
    }
    next.run(request).await
}

/// Asks the client to close the connection after this response when many are open.
async fn spare_files(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    mut response: Response,
) -> Response {
    // An LL-HLS player's connection is its way to listen (a request every part): kept.
    if state.metrics.http_connections.get() > KEEP_ALIVE_CONNECTIONS && !is_hls(uri.path()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Whether a caller may read the metrics (they tell how loaded the server is, and so how to
/// hurt it): with a token configured, its bearer from anywhere; without one, callers on the
/// machine itself.
fn may_scrape(
    state: &AppState,
    peer: Option<std::net::IpAddr>,
    headers: &axum::http::HeaderMap,
) -> bool {
    match &state.config.http.metrics_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                use sha2::Digest;
                // Compared as digests: the time taken says nothing of the token.
                sha2::Sha256::digest(given.trim()) == sha2::Sha256::digest(token)
            }),
        None => peer.is_some_and(|ip| ip.to_canonical().is_loopback()),
    }
}

/// `GET /metrics` on the main address: only for those who [`may_scrape`].
async fn metrics_here(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if state.config.http.metrics_bind.is_some() || !may_scrape(&state, peer, request.headers()) {
        return ApiError::NotFound("route").into_response();
    }
    scrape(State(state)).await
}

/// The metrics, as the separate metrics address serves them (`http.metrics_bind`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let listeners: usize = state
        .spaces
        .loaded()
        .iter()
        .map(|s| s.hub.listeners())
        .sum();
    state.metrics.listeners.set(listeners as i64);
    state
        .metrics
        .connections_open
        .set(i64::from(state.gate.open()));
    state
        .metrics
        .rate_tracked
        .set(state.gate.remembered() as i64);
    if let Some(recorder) = state.spaces.recorder() {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = recorder.stats();
        let m = &state.metrics;
        m.recording_bytes.set(stats.bytes.load(Relaxed) as i64);
        m.recording_dropped.set(stats.dropped.load(Relaxed) as i64);
    }
    let sent = state
        .social
        .alerts_sent
        .load(std::sync::atomic::Ordering::Relaxed);
    state.metrics.alerts_sent.set(sent as i64);
    let text = state.metrics.encode();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The router of the whole server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/accounts", post(accounts::sign_up))
        .route(
            "/sessions",
            post(accounts::sign_in).delete(accounts::sign_out),
        )
        .route("/me", get(accounts::me))
        .route("/me/spaces", get(spaces::my_spaces))
        .route("/me/profile", patch(users::update_profile))
        // The route's own limit wins over the API's 16 KiB below; the body deadline holds.
        .route(
            "/me/avatar",
            put(avatars::upload)
                .delete(avatars::remove)
                .layer(DefaultBodyLimit::max(avatars::MAX_UPLOAD)),
        )
        .route("/users/{handle}", get(users::user_by_handle))
        .route(
            "/users/{handle}/follow",
            post(users::follow).delete(users::unfollow),
        )
        .route("/users/{handle}/alerts", put(users::set_alerts))
        .route(
            "/users/{handle}/block",
            post(users::block).delete(users::unblock),
        )
        .route(
            "/users/{handle}/mute",
            post(users::mute).delete(users::unmute),
        )
        .route("/users/{handle}/followers", get(users::followers))
        .route("/users/{handle}/following", get(users::following))
        .route("/users/{handle}/posts", get(posts::by_user))
        .route("/posts", post(posts::create))
        .route("/posts/live", get(posts::live))
        .route("/posts/{id}", get(posts::get))
        .route("/posts/{id}/like", post(posts::like).delete(posts::unlike))
        .route(
            "/posts/{id}/repost",
            post(posts::repost).delete(posts::unrepost),
        )
        .route("/posts/{id}/replies", get(posts::replies))
        .route("/timeline", get(posts::timeline))
        .route("/reports", post(moderation::report))
        .route("/moderators", post(moderation::grant))
        .route("/moderation/queue", get(moderation::queue))
        .route("/moderation/exports", get(moderation::exports))
        .route("/moderation/notes", post(moderation::note))
        .route("/moderation/appeals", get(moderation::waiting_appeals))
        .route("/moderation/subjects/{kind}/{id}", get(moderation::history))
        .route("/moderation/decisions", post(moderation::decide))
        .route(
            "/moderation/reports/{id}/dismiss",
            post(moderation::dismiss),
        )
        .route("/statements/{id}", get(moderation::get_statement))
        .route("/statements/{id}/appeal", post(moderation::appeal))
        .route("/appeals/{id}/decision", post(moderation::decide_appeal))
        .route(
            "/transparency/statements",
            get(moderation::transparency_statements),
        )
        .route("/transparency/report", get(moderation::transparency_report))
        .route("/notifications", get(notifications::list))
        .route("/notifications/read", post(notifications::mark_read))
        .route("/push/key", get(push::key))
        .route(
            "/push/subscriptions",
            post(push::subscribe).delete(push::unsubscribe),
        )
        .route(
            "/spaces",
            post(spaces::create_space).get(spaces::list_spaces),
        )
        .route("/spaces/{id}", get(spaces::get_space))
        .route("/spaces/{id}/status", get(spaces::status))
        .route("/spaces/{id}/edges", get(spaces::edges))
        .route("/spaces/{id}/commands", post(spaces::command))
        .route("/spaces/{id}/tickets", post(tickets::ticket))
        .route("/spaces/{id}/ws", get(media::upgrade))
        .route(
            "/spaces/{id}/recording",
            get(recordings::describe)
                .patch(recordings::trim)
                .delete(recordings::delete),
        )
        .route("/spaces/{id}/clips", post(recordings::clip))
        .route(
            "/spaces/{id}/reminder",
            get(spaces::reminder).put(spaces::set_reminder),
        )
        .route("/clips/{id}", get(recordings::clip_info))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.config.deadlines(),
            crate::deadline::hold_bodies,
        ))
        .route(
            "/spaces/{id}/source",
            put(media::source).layer(DefaultBodyLimit::disable()),
        )
        .fallback(|| async { ApiError::NotFound("route") });
    Router::new()
        .nest("/api/v1", api)
        .route("/spaces/{id}/live.opus", get(media::live))
        .route("/spaces/{id}/live.m3u8", get(hls::playlist))
        .route("/spaces/{id}/hls/{name}", get(hls::file))
        .route("/spaces/{id}/recording.ogg", get(recordings::ogg))
        .route("/spaces/{id}/replay.m3u8", get(recordings::vod_playlist))
        .route("/spaces/{id}/replay/{name}", get(recordings::vod_file))
        .route("/clips/{file}", get(recordings::clip_file))
        .route("/avatars/{name}", get(avatars::file))
        .route("/c/{id}", get(web::page))
        .route("/", get(web::page))
        .route("/signin", get(web::page))
        .route("/signup", get(web::page))
        .route("/new", get(web::page))
        .route("/s/{id}", get(web::page))
        .route("/u/{handle}", get(web::page))
        .route("/p/{id}", get(web::page))
        .route("/notifications", get(web::page))
        .route("/settings", get(web::page))
        .route("/moderation", get(web::page))
        .route("/transparency", get(web::page))
        .route("/recommendations", get(web::page))
        .route("/statements/{id}", get(web::page))
        .route("/sw.js", get(web::service_worker))
        .route("/assets/{name}", get(web::asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_here))
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

    #[test]
    fn joins_are_the_ticket_the_websocket_and_the_stream() {
        use axum::http::Method;
        assert!(is_join(&Method::POST, "/api/v1/spaces/a/tickets"));
        assert!(is_join(&Method::GET, "/api/v1/spaces/a/ws"));
        assert!(is_join(&Method::GET, "/spaces/a/live.opus"));
        assert!(!is_join(&Method::GET, "/api/v1/spaces/a/tickets"));
        assert!(!is_join(&Method::POST, "/api/v1/spaces/a/commands"));
        assert!(!is_join(&Method::PUT, "/api/v1/spaces/a/source"));
        assert!(!is_join(&Method::GET, "/api/v1/spaces/a/b/ws"));
        assert!(!is_join(&Method::POST, "/api/v1/sessions"));
    }
}
