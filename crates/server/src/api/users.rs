//! Profiles and the links between accounts: a profile with its counts and live Space, the
//! caller's own profile, follow, live alerts, block, mute, followers and following.

use super::Json;
use crate::auth::Caller;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::social::engagement::EngagementError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use stentor_social::Audience;
use stentor_store::{Profile, Relation, User};

impl From<EngagementError> for ApiError {
    fn from(e: EngagementError) -> Self {
        match e {
            EngagementError::Busy => ApiError::Overloaded {
                reason: "engagement_busy",
                retry_after: 1,
            },
            EngagementError::Store(e) => ApiError::Internal(e),
        }
    }
}

/// An account as other things (posts, lists) show it.
#[derive(Serialize, Clone)]
pub struct UserCard {
    /// Id.
    pub id: u64,
    /// Handle.
    pub handle: String,
    /// Display name (empty: show the handle).
    pub display_name: String,
    /// The uploaded avatar, if any (initials otherwise).
    pub avatar_url: Option<String>,
}

/// Where a stored avatar is served from.
pub fn avatar_url(key: Option<&str>) -> Option<String> {
    key.map(|k| format!("/avatars/{k}"))
}

/// How the caller stands to a profile.
#[derive(Serialize)]
struct RelationView {
    following: bool,
    followed_by: bool,
    alerts: bool,
    blocking: bool,
    blocked_by: bool,
    muting: bool,
}

impl From<Relation> for RelationView {
    fn from(r: Relation) -> Self {
        Self {
            following: r.following,
            followed_by: r.followed_by,
            alerts: r.alerts,
            blocking: r.blocking,
            blocked_by: r.blocked_by,
            muting: r.muting,
        }
    }
}

/// A profile.
#[derive(Serialize)]
pub struct ProfileView {
    id: u64,
    handle: String,
    display_name: String,
    bio: String,
    avatar_url: Option<String>,
    followers_count: u64,
    following_count: u64,
    posts_count: u64,
    /// The id of its live Space, if any.
    live_space: Option<String>,
    /// Who may have its live alerts.
    alerts_from: String,
    /// Joined, Unix seconds.
    created_at: i64,
    /// How the caller stands to it (signed in, someone else's profile).
    relation: Option<RelationView>,
}

/// The profile of `handle`, or 404.
async fn profile(state: &AppState, handle: &str) -> Result<Profile, ApiError> {
    state
        .store
        .profile(handle)
        .await?
        .ok_or(ApiError::NotFound("user"))
}

/// `GET /api/v1/users/{handle}`: a profile with its counts, live Space and, for a signed-in
/// caller, how the caller stands to it.
pub async fn user_by_handle(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> Result<Json<ProfileView>, ApiError> {
    let p = profile(&state, &handle).await?;
    let relation = match caller.0 {
        Some(me) if me.id != p.id => Some(state.store.relation(me.id, p.id).await?.into()),
        _ => None,
    };
    Ok(Json(ProfileView {
        id: p.id,
        handle: p.handle,
        display_name: p.display_name,
        bio: p.bio,
        avatar_url: avatar_url(p.avatar.as_deref()),
        followers_count: p.followers,
        following_count: p.following,
        posts_count: p.posts,
        live_space: p.live_space,
        alerts_from: p.alerts_from,
        created_at: p.created_at,
        relation,
    }))
}

/// Changes to the caller's profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileChange {
    display_name: Option<String>,
    bio: Option<String>,
    alerts_from: Option<Audience>,
}

/// Longest display name, in characters.
const NAME_CHARS: usize = 50;
/// Longest biography, in characters.
const BIO_CHARS: usize = 300;

/// `PATCH /api/v1/me/profile`: display name, biography, and who may have the caller's live
/// alerts (`followers`, `mutuals`, `nobody`).
pub async fn update_profile(
    State(state): State<AppState>,
    caller: Caller,
    Json(change): Json<ProfileChange>,
) -> Result<Json<ProfileView>, ApiError> {
    let me = caller.required()?;
    let now = profile(&state, &me.handle).await?;
    let bad = |e: stentor_social::text::TextError| ApiError::BadRequest(e.to_string());
    let name = match &change.display_name {
        Some(n) => stentor_social::text::display_name(n, NAME_CHARS).map_err(bad)?,
        None => now.display_name,
    };
    let bio = match &change.bio {
        Some(b) => stentor_social::text::bio(b, BIO_CHARS).map_err(bad)?,
        None => now.bio,
    };
    state.store.set_profile(me.id, &name, &bio).await?;
    if let Some(audience) = change.alerts_from {
        state
            .store
            .set_alerts_from(me.id, audience.as_str())
            .await?;
    }
    user_by_handle(State(state), Caller(Some(me.clone())), Path(me.handle)).await
}

/// The other account of a request about `handle`, which must not be the caller.
async fn other(state: &AppState, me: &User, handle: &str) -> Result<Profile, ApiError> {
    let p = profile(state, handle).await?;
    if p.id == me.id {
        return Err(ApiError::BadRequest("that is your own account".into()));
    }
    Ok(p)
}

/// What a follow or unfollow did.
#[derive(Serialize)]
pub struct FollowView {
    following: bool,
    /// Whether this request changed it (a repeat does not).
    changed: bool,
    followers_count: u64,
}

/// `POST /api/v1/users/{handle}/follow`: follows (idempotent); 403 when either blocks the
/// other.
pub async fn follow(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> Result<Json<FollowView>, ApiError> {
    let me = caller.required()?;
    super::moderation::not_suspended(&state, me.id).await?;
    let them = other(&state, &me, &handle).await?;
    if state.store.blocked_between(me.id, them.id).await? {
        return Err(ApiError::Forbidden("you cannot follow this account".into()));
    }
    let changed = state.social.engagement.follow(me.id, them.id).await?;
    if changed {
        let body = serde_json::json!({
            "kind": "follow", "actor": me.handle, "url": format!("/u/{}", me.handle),
        });
        crate::social::push::notify_event(
            &state.social.push,
            &state.store,
            them.id,
            "follow".into(),
            body,
        );
    }
    let followers_count = profile(&state, &handle).await?.followers;
    Ok(Json(FollowView {
        following: true,
        changed,
        followers_count,
    }))
}

/// `DELETE /api/v1/users/{handle}/follow`: stops following (idempotent).
pub async fn unfollow(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> Result<Json<FollowView>, ApiError> {
    let me = caller.required()?;
    let them = other(&state, &me, &handle).await?;
    let changed = state.social.engagement.unfollow(me.id, them.id).await?;
    let followers_count = profile(&state, &handle).await?.followers;
    Ok(Json(FollowView {
        following: false,
        changed,
        followers_count,
    }))
}

/// Live alerts on or off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsChange {
    on: bool,
}

/// `PUT /api/v1/users/{handle}/alerts`: the caller's live alerts for an account it follows,
/// on or off. On only as the account allows: its followers, its mutuals, or nobody.
pub async fn set_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
    Json(change): Json<AlertsChange>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let me = caller.required()?;
    let them = other(&state, &me, &handle).await?;
    let rel = state.store.relation(me.id, them.id).await?;
    if !rel.following {
        return Err(ApiError::Conflict(format!("follow @{handle} first")));
    }
    let audience = Audience::parse(&them.alerts_from);
    if change.on && !audience.admits(rel.following, rel.followed_by) {
        let who = match audience {
            Audience::Mutuals => "only to accounts it follows back",
            _ => "to nobody",
        };
        return Err(ApiError::Forbidden(format!(
            "@{handle} sends live alerts {who}"
        )));
    }
    state
        .store
        .set_follow_alerts(me.id, them.id, change.on)
        .await?;
    Ok(Json(serde_json::json!({ "alerts": change.on })))
}

/// `POST /api/v1/users/{handle}/block`: blocks: the follows between the two end, and the
/// blocked account can no longer follow, reply to, like, or speak in the caller's Spaces.
pub async fn block(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let me = caller.required()?;
    let them = other(&state, &me, &handle).await?;
    state.store.block(me.id, them.id, unix_now() as i64).await?;
    Ok(Json(serde_json::json!({ "blocking": true })))
}

/// `DELETE /api/v1/users/{handle}/block`: ends a block (the follows it ended stay ended).
pub async fn unblock(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let me = caller.required()?;
    let them = other(&state, &me, &handle).await?;
    state.store.unblock(me.id, them.id).await?;
    Ok(Json(serde_json::json!({ "blocking": false })))
}

/// `POST /api/v1/users/{handle}/mute`: the account's posts leave the caller's timeline.
pub async fn mute(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    set_mute(state, caller, handle, true).await
}

/// `DELETE /api/v1/users/{handle}/mute`.
pub async fn unmute(
    State(state): State<AppState>,
    caller: Caller,
    Path(handle): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    set_mute(state, caller, handle, false).await
}

async fn set_mute(
    state: AppState,
    caller: Caller,
    handle: String,
    on: bool,
) -> Result<Json<serde_json::Value>, ApiError> {
    let me = caller.required()?;
    let them = other(&state, &me, &handle).await?;
    state
        .store
        .set_mute(me.id, them.id, on, unix_now() as i64)
        .await?;
    Ok(Json(serde_json::json!({ "muting": on })))
}

/// A page's position: `before` (the `next` of the page before) and its size.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The `next` of the page before.
    pub before: Option<String>,
    /// Items on the page, 1 to 100 [default 20].
    pub limit: Option<u32>,
}

impl PageQuery {
    /// The page size.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(20).clamp(1, 100)
    }

    /// `before` as a post id.
    pub fn before_id(&self) -> Result<Option<u64>, ApiError> {
        self.before
            .as_deref()
            .map(|b| {
                b.parse()
                    .map_err(|_| ApiError::BadRequest("before: a post id".into()))
            })
            .transpose()
    }

    /// `before` as a time and an id, `TIME.ID`.
    pub fn before_pair(&self) -> Result<Option<(i64, u64)>, ApiError> {
        self.before
            .as_deref()
            .map(|b| {
                b.split_once('.')
                    .and_then(|(t, id)| Some((t.parse().ok()?, id.parse().ok()?)))
                    .ok_or_else(|| ApiError::BadRequest("before: TIME.ID, a page's next".into()))
            })
            .transpose()
    }
}

/// An account in a followers or following list.
#[derive(Serialize)]
struct FollowEntry {
    #[serde(flatten)]
    user: UserCard,
    /// When the follow was made, Unix seconds.
    since: i64,
}

/// A page of accounts.
#[derive(Serialize)]
pub struct FollowPage {
    items: Vec<FollowEntry>,
    next: Option<String>,
}

/// `GET /api/v1/users/{handle}/followers`: who follows, latest first.
pub async fn followers(
    state: State<AppState>,
    handle: Path<String>,
    page: Query<PageQuery>,
) -> Result<Json<FollowPage>, ApiError> {
    follow_page(state, handle, page, true).await
}

/// `GET /api/v1/users/{handle}/following`: whom it follows, latest first.
pub async fn following(
    state: State<AppState>,
    handle: Path<String>,
    page: Query<PageQuery>,
) -> Result<Json<FollowPage>, ApiError> {
    follow_page(state, handle, page, false).await
}

async fn follow_page(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    Query(page): Query<PageQuery>,
    followers: bool,
) -> Result<Json<FollowPage>, ApiError> {
    let p = profile(&state, &handle).await?;
    let limit = page.limit();
    let rows = state
        .store
        .follow_list(p.id, followers, page.before_pair()?, limit)
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|(at, id, ..)| format!("{at}.{id}")))
        .flatten();
    let items = rows
        .into_iter()
        .map(|(since, id, handle, display_name)| FollowEntry {
            user: UserCard {
                id,
                handle,
                display_name,
                avatar_url: None,
            },
            since,
        })
        .collect();
    Ok(Json(FollowPage { items, next }))
}
