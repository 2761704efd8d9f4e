//! Web Push subscriptions: the server's public key, and a browser's subscription added or
//! removed.

use super::Json;
use crate::auth::Caller;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stentor_store::PushSubscription;

/// Subscriptions one account may hold (one per browser).
const MOST_PER_ACCOUNT: usize = 20;

/// `GET /api/v1/push/key`: the key browsers subscribe with (`applicationServerKey`).
pub async fn key(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "public_key": state.social.push.public_key() }))
}

/// The browser's keys, as `PushSubscription.toJSON()` gives them.
#[derive(Debug, Deserialize)]
pub struct Keys {
    p256dh: String,
    auth: String,
}

/// A browser's subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Deserialize)]
pub struct Subscription {
    endpoint: String,
    #[serde(default)]
    keys: Option<Keys>,
}

/// `POST /api/v1/push/subscriptions`: this browser wants pushes for the caller.
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    Json(sub): Json<Subscription>,
) -> Result<StatusCode, ApiError> {
    let me = caller.required()?;
    let keys = sub
        .keys
        .ok_or_else(|| ApiError::BadRequest("keys: {p256dh, auth}".into()))?;
    let sub = PushSubscription {
        endpoint: sub.endpoint,
        user_id: me.id,
        p256dh: keys.p256dh,
        auth: keys.auth,
    };
    state
        .social
        .push
        .check(&sub)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let held = state.store.push_subscriptions(&[me.id]).await?;
    if held.len() >= MOST_PER_ACCOUNT && !held.iter().any(|h| h.endpoint == sub.endpoint) {
        return Err(ApiError::Conflict(format!(
            "{MOST_PER_ACCOUNT} browsers already get pushes: unsubscribe one first"
        )));
    }
    state
        .store
        .add_push_subscription(&sub, unix_now() as i64)
        .await?;
    Ok(StatusCode::CREATED)
}

/// Which subscription to remove.
#[derive(Debug, Deserialize)]
pub struct Endpoint {
    endpoint: String,
}

/// `DELETE /api/v1/push/subscriptions`: this browser no longer wants pushes.
pub async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    Json(gone): Json<Endpoint>,
) -> Result<StatusCode, ApiError> {
    let me = caller.required()?;
    let held = state.store.push_subscriptions(&[me.id]).await?;
    if held.iter().any(|h| h.endpoint == gone.endpoint) {
        state.store.remove_push_subscription(&gone.endpoint).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
