//! The inbox: notifications of follows, likes, replies, reposts, live Spaces and reminders,
//! grouped (the likes of one post are one entry: "alice and 4 211 others"), with an unread
//! count and marking read.

use super::Json;
use super::users::PageQuery;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

/// Who is behind an entry.
#[derive(Serialize)]
struct Actor {
    id: u64,
    handle: String,
}

/// One entry.
#[derive(Serialize)]
struct Item {
    id: u64,
    /// `follow`, `like`, `reply`, `repost`, `live` or `reminder`.
    kind: String,
    /// The latest account behind it.
    actor: Option<Actor>,
    /// Events in the group.
    count: u64,
    /// The others besides `actor` ("and 4 211 others").
    others: u64,
    post_id: Option<u64>,
    space_id: Option<String>,
    /// For `statement` and `appeal_answer`: the statement of reasons (its page).
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_id: Option<u64>,
    /// For `report_outcome`: the report answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    report_id: Option<u64>,
    /// Last changed, Unix milliseconds.
    at: i64,
    read: bool,
}

/// A page of the inbox.
#[derive(Serialize)]
pub struct Inbox {
    unread: u64,
    items: Vec<Item>,
    next: Option<String>,
}

/// `GET /api/v1/notifications`: the caller's inbox, latest first, and its unread count.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Inbox>, ApiError> {
    let me = caller.required()?;
    let limit = page.limit();
    let rows = state
        .store
        .notifications(me.id, page.before_pair()?, limit)
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|n| format!("{}.{}", n.at_ms, n.id)))
        .flatten();
    let items = rows
        .into_iter()
        .map(|n| Item {
            id: n.id,
            actor: n
                .actor_id
                .zip(n.actor_handle)
                .map(|(id, handle)| Actor { id, handle }),
            count: n.count,
            others: n.count.saturating_sub(1),
            post_id: n.post_id,
            space_id: n.space_id,
            statement_id: n.log_seq.filter(|_| n.kind != "report_outcome"),
            report_id: n.log_seq.filter(|_| n.kind == "report_outcome"),
            kind: n.kind,
            at: n.at_ms,
            read: n.read,
        })
        .collect();
    Ok(Json(Inbox {
        unread: state.store.unread(me.id).await?,
        items,
        next,
    }))
}

/// Which entries to mark read.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Entries up to this id (all when absent).
    #[serde(default)]
    up_to: Option<u64>,
}

/// `POST /api/v1/notifications/read`: marks entries read; answers the unread count after.
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Json(mark): Json<MarkRead>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let me = caller.required()?;
    state.store.mark_read(me.id, mark.up_to).await?;
    let unread = state.store.unread(me.id).await?;
    Ok(Json(serde_json::json!({ "unread": unread })))
}
