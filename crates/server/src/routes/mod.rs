//! HTTP routes: the JSON API, the WebSocket, the Ogg stream and source, health.

pub mod api;
pub mod ogg;
pub mod ws;

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

/// Largest JSON request body accepted by the API.
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// The router of the whole server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/accounts", post(api::sign_up))
        .route("/sessions", post(api::sign_in).delete(api::sign_out))
        .route("/me", get(api::me))
        .route("/spaces", post(api::create_space).get(api::list_spaces))
        .route("/spaces/{id}", get(api::get_space))
        .route("/spaces/{id}/commands", post(api::command))
        .route("/spaces/{id}/tickets", post(api::ticket))
        .route("/spaces/{id}/ws", get(ws::upgrade))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .route(
            "/spaces/{id}/source",
            put(ogg::source).layer(DefaultBodyLimit::disable()),
        )
        .fallback(|| async { ApiError::NotFound("route") });
    Router::new()
        .nest("/api/v1", api)
        .route("/spaces/{id}/live.opus", get(ogg::live))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(crate::metrics::scrape))
        .with_state(state)
}
