//! Posts: write, read, reply, repost, like; an author's posts, a post's replies, the home
//! timeline with the followed accounts' live Spaces on top, and the live counts of the posts
//! a page shows.

use super::Json;
use super::users::{PageQuery, UserCard, avatar_url};
use crate::auth::{Caller, Country};
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use stentor_store::{NewPost, PostFilter, PostRow, StoreError, User};

/// A Space a post announces, as its card shows it.
#[derive(Serialize, Clone)]
pub struct SpaceCard {
    id: String,
    title: String,
    /// `scheduled`, `live` or `ended`.
    state: String,
    starts_at: Option<i64>,
    host_handle: Option<String>,
}

/// A post as the API shows it.
#[derive(Serialize, Clone)]
pub struct PostView {
    id: u64,
    author: UserCard,
    text: String,
    /// Written, Unix seconds.
    created_at: i64,
    reply_to: Option<u64>,
    repost_of: Option<u64>,
    /// The reposted post, for a repost.
    reposted: Option<Box<PostView>>,
    /// The Space it announces.
    space: Option<SpaceCard>,
    like_count: u64,
    reply_count: u64,
    repost_count: u64,
    /// The caller likes it.
    liked: bool,
    /// The caller reposted it.
    reposted_by_me: bool,
    /// A moderation label with its reason, shown on the post.
    label: Option<String>,
    /// Removed by a moderation decision (only its author still sees it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
}

fn view(row: PostRow, space: Option<SpaceCard>) -> PostView {
    PostView {
        id: row.id,
        author: UserCard {
            id: row.author_id,
            handle: row.author_handle,
            display_name: row.author_name,
            avatar_url: avatar_url(row.author_avatar.as_deref()),
        },
        text: row.text,
        created_at: row.created_at,
        reply_to: row.reply_to,
        repost_of: row.repost_of,
        reposted: None,
        space,
        like_count: row.likes,
        reply_count: row.replies,
        repost_count: row.reposts,
        liked: row.liked,
        reposted_by_me: row.reposted,
        label: row.label,
        removed: row.removed,
    }
}

/// Applies to `rows` the moderation decisions limited to some countries that concern
/// `country` (the viewer's, when known): a removal there, a label there. Only rows marked
/// `scoped` cost a lookup.
async fn localize(
    state: &AppState,
    rows: &mut [PostRow],
    country: Option<&str>,
) -> Result<(), ApiError> {
    let Some(country) = country else {
        return Ok(());
    };
    let now = (unix_now() * 1000) as i64;
    for row in rows.iter_mut().filter(|r| r.scoped) {
        let restrictions = state
            .store
            .restrictions_on(
                stentor_moderation::model::SubjectKind::Post,
                &row.id.to_string(),
                now,
            )
            .await?;
        for r in restrictions
            .iter()
            .filter(|r| r.scope.iter().any(|c| c == country))
        {
            match r.action.as_str() {
                "remove" => row.removed = true,
                "label" => row.label = Some(r.reason.clone()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Views of `rows` for `viewer` in `country`, with their Space cards and, for reposts, the
/// posts reposted; posts removed where the viewer is are left out (but for their author).
async fn views(
    state: &AppState,
    mut rows: Vec<PostRow>,
    viewer: u64,
    country: Option<&str>,
) -> Result<Vec<PostView>, ApiError> {
    localize(state, &mut rows, country).await?;
    rows.retain(|r| !r.removed || r.author_id == viewer);
    let originals: Vec<u64> = rows.iter().filter_map(|r| r.repost_of).collect();
    let mut originals = state.store.posts(&originals, viewer).await?;
    localize(state, &mut originals, country).await?;
    let mut cards: Vec<SpaceCard> = Vec::new();
    for id in rows
        .iter()
        .chain(&originals)
        .filter_map(|r| r.space_id.as_deref())
    {
        if cards.iter().any(|c| c.id == id) {
            continue;
        }
        if let Some(space) = state.store.space(id).await? {
            let host = state.store.user(space.host_id).await?.map(|u| u.handle);
            cards.push(SpaceCard {
                id: space.id,
                title: space.title,
                state: space.state,
                starts_at: space.starts_at,
                host_handle: host,
            });
        }
    }
    let card = |id: &Option<String>| {
        id.as_deref()
            .and_then(|id| cards.iter().find(|c| c.id == id).cloned())
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            let original = row.repost_of.and_then(|o| {
                originals
                    .iter()
                    .find(|p| p.id == o)
                    .map(|p| Box::new(view(p.clone(), card(&p.space_id))))
            });
            let space = card(&row.space_id);
            let mut v = view(row, space);
            v.reposted = original;
            v
        })
        .collect())
}

/// A new post.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPostBody {
    text: String,
    /// The post this replies to.
    #[serde(default)]
    reply_to: Option<u64>,
    /// The Space it announces (otherwise the first Space linked in the text, if any).
    #[serde(default)]
    space: Option<String>,
}

/// Pushes an inbox event to `user`'s browsers (at most once a minute per subject).
fn push_event(state: &AppState, user: u64, subject: String, body: serde_json::Value) {
    crate::social::push::notify_event(&state.social.push, &state.store, user, subject, body);
}

/// Whether posts by an account with `followers` are copied into its followers' timelines.
fn fans_out(state: &AppState, followers: u64) -> bool {
    stentor_social::timeline::fans_out(followers, state.config.fanout_max_followers())
}

/// 403 when the author of `post` and `me` block one another, or a moderation decision
/// restricted interaction with it; 404 when there is no such post (or it was removed).
async fn reachable(state: &AppState, me: &User, post: u64) -> Result<PostRow, ApiError> {
    let row = state
        .store
        .post(post, me.id)
        .await?
        .filter(|p| !p.removed)
        .ok_or(ApiError::NotFound("post"))?;
    if row.restricted {
        return Err(ApiError::Forbidden(
            "interaction with this post is restricted by a moderation decision".into(),
        ));
    }
    if state.store.blocked_between(me.id, row.author_id).await? {
        return Err(ApiError::Forbidden(
            "you cannot interact with this account's posts".into(),
        ));
    }
    Ok(row)
}

/// `POST /api/v1/posts`: writes a post or a reply; 201 with the post.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewPostBody>,
) -> Result<(StatusCode, Json<PostView>), ApiError> {
    let me = caller.required()?;
    super::moderation::not_suspended(&state, me.id).await?;
    let text = stentor_social::text::post(&new.text, state.config.post_max_chars())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let parent_author = match new.reply_to {
        Some(parent) => Some(reachable(&state, &me, parent).await?.author_id),
        None => None,
    };
    let mut space = None;
    let named = new.space.iter().cloned();
    for id in named.chain(stentor_social::text::space_links(&text)) {
        if state.store.space(&id).await?.is_some() {
            space = Some(id);
            break;
        }
        if new.space.as_deref() == Some(id.as_str()) {
            return Err(ApiError::NotFound("space"));
        }
    }
    let followers = state
        .store
        .profile(&me.handle)
        .await?
        .map_or(0, |p| p.followers);
    let post = NewPost {
        text: &text,
        reply_to: new.reply_to,
        repost_of: None,
        space: space.as_deref(),
    };
    let id = state
        .store
        .create_post(me.id, post, unix_now() as i64, fans_out(&state, followers))
        .await?
        .ok_or(ApiError::NotFound("post"))?;
    let row = state
        .store
        .post(id, me.id)
        .await?
        .ok_or(ApiError::NotFound("post"))?;
    if let Some(space) = &space
        && new.reply_to.is_none()
    {
        // If the Space is live here, its listeners hear of this post's counts from now on.
        state.social.counts.announced(space);
    }
    if let (Some(parent), Some(author)) = (new.reply_to, parent_author)
        && author != me.id
    {
        let body = serde_json::json!({
            "kind": "reply", "actor": me.handle, "post_id": id, "url": format!("/p/{id}"),
        });
        push_event(&state, author, format!("reply-{parent}"), body);
    }
    let mut v = views(&state, vec![row], me.id, None).await?;
    Ok((StatusCode::CREATED, Json(v.remove(0))))
}

/// `GET /api/v1/posts/{id}`: a post with its counts (and, signed in, whether the caller
/// likes or reposted it).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Country(country): Country,
    Path(id): Path<u64>,
) -> Result<Json<PostView>, ApiError> {
    let viewer = caller.0.map_or(0, |u| u.id);
    let row = state
        .store
        .post(id, viewer)
        .await?
        .ok_or(ApiError::NotFound("post"))?;
    let mut v = views(&state, vec![row], viewer, country.as_deref()).await?;
    if v.is_empty() {
        return Err(ApiError::NotFound("post"));
    }
    Ok(Json(v.remove(0)))
}

/// What a like or unlike did.
#[derive(Serialize)]
pub struct LikeView {
    liked: bool,
    /// Whether this request changed it (a repeat does not).
    changed: bool,
    like_count: u64,
}

/// `POST /api/v1/posts/{id}/like`: likes (idempotent: a repeat changes nothing).
pub async fn like(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<LikeView>, ApiError> {
    let me = caller.required()?;
    // The batch refuses a like of nothing or across a block; only a like that changed
    // nothing costs a look at why (a repeat, or a block).
    let (changed, count) = state.social.engagement.like(id, me.id).await?;
    if !changed && let Some((_, true)) = state.store.post_gate(id, me.id).await? {
        return Err(ApiError::Forbidden(
            "you cannot interact with this post (a block, or a moderation decision)".into(),
        ));
    }
    // The author's phone hears of a post's likes once a minute at most: the author is
    // looked up only then.
    if changed
        && state.social.push.due(&format!("like-{id}"))
        && let Some((author, _)) = state.store.post_gate(id, me.id).await?
        && author != me.id
    {
        let body = serde_json::json!({
            "kind": "like", "actor": me.handle, "post_id": id, "url": format!("/p/{id}"),
        });
        push_event(&state, author, format!("like-{id}"), body);
    }
    Ok(Json(LikeView {
        liked: true,
        changed,
        like_count: count.ok_or(ApiError::NotFound("post"))?,
    }))
}

/// `DELETE /api/v1/posts/{id}/like`: takes a like back (idempotent).
pub async fn unlike(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<LikeView>, ApiError> {
    let me = caller.required()?;
    let (changed, count) = state.social.engagement.unlike(id, me.id).await?;
    Ok(Json(LikeView {
        liked: false,
        changed,
        like_count: count.ok_or(ApiError::NotFound("post"))?,
    }))
}

/// What a repost or its removal did.
#[derive(Serialize)]
pub struct RepostView {
    reposted: bool,
    changed: bool,
    repost_count: u64,
}

/// `POST /api/v1/posts/{id}/repost`: reposts (a repost of a repost reposts the original;
/// idempotent).
pub async fn repost(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<RepostView>, ApiError> {
    let me = caller.required()?;
    let row = reachable(&state, &me, id).await?;
    let original = match row.repost_of {
        Some(o) => reachable(&state, &me, o).await?,
        None => row,
    };
    let followers = state
        .store
        .profile(&me.handle)
        .await?
        .map_or(0, |p| p.followers);
    let post = NewPost {
        repost_of: Some(original.id),
        ..NewPost::default()
    };
    let made = state
        .store
        .create_post(me.id, post, unix_now() as i64, fans_out(&state, followers))
        .await;
    let changed = match made {
        Ok(Some(_)) => true,
        Ok(None) => return Err(ApiError::NotFound("post")),
        Err(StoreError::Conflict(_)) => false,
        Err(e) => return Err(e.into()),
    };
    let count = state
        .store
        .post(original.id, me.id)
        .await?
        .map_or(0, |p| p.reposts);
    Ok(Json(RepostView {
        reposted: true,
        changed,
        repost_count: count,
    }))
}

/// `DELETE /api/v1/posts/{id}/repost`: takes a repost back (idempotent).
pub async fn unrepost(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<RepostView>, ApiError> {
    let me = caller.required()?;
    let changed = state.store.delete_repost(me.id, id).await?;
    let count = state
        .store
        .post(id, me.id)
        .await?
        .ok_or(ApiError::NotFound("post"))?
        .reposts;
    Ok(Json(RepostView {
        reposted: false,
        changed,
        repost_count: count,
    }))
}

/// A page of posts.
#[derive(Serialize)]
pub struct PostPage {
    items: Vec<PostView>,
    /// The `before` of the next page; none after the last.
    next: Option<String>,
}

async fn page(
    state: &AppState,
    filter: PostFilter,
    viewer: u64,
    country: Option<&str>,
    query: &PageQuery,
) -> Result<PostPage, ApiError> {
    let limit = query.limit();
    let rows = state
        .store
        .post_page(filter, viewer, query.before_id()?, limit)
        .await?;
    let ids: Vec<u64> = rows.iter().map(|r| r.id).collect();
    let next = stentor_social::timeline::next_cursor(&ids, limit as usize).map(|c| c.to_string());
    Ok(PostPage {
        items: views(state, rows, viewer, country).await?,
        next,
    })
}

/// `GET /api/v1/posts/{id}/replies`: the replies to a post, newest first.
pub async fn replies(
    State(state): State<AppState>,
    caller: Caller,
    Country(country): Country,
    Path(id): Path<u64>,
    Query(query): Query<PageQuery>,
) -> Result<Json<PostPage>, ApiError> {
    let viewer = caller.0.map_or(0, |u| u.id);
    Ok(Json(
        page(
            &state,
            PostFilter::Replies(id),
            viewer,
            country.as_deref(),
            &query,
        )
        .await?,
    ))
}

/// `GET /api/v1/users/{handle}/posts`: an account's posts and replies, newest first.
pub async fn by_user(
    State(state): State<AppState>,
    caller: Caller,
    Country(country): Country,
    Path(handle): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<PostPage>, ApiError> {
    let viewer = caller.0.map_or(0, |u| u.id);
    let author = state
        .store
        .profile(&handle)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(Json(
        page(
            &state,
            PostFilter::Author(author.id),
            viewer,
            country.as_deref(),
            &query,
        )
        .await?,
    ))
}

/// A live Space of a followed account, for the bar on top of the timeline.
#[derive(Serialize)]
struct LiveEntry {
    id: String,
    title: String,
    host_handle: String,
}

/// The home timeline.
#[derive(Serialize)]
pub struct Timeline {
    /// The followed accounts' live Spaces (first page only).
    live: Vec<LiveEntry>,
    items: Vec<PostView>,
    next: Option<String>,
}

/// `GET /api/v1/timeline`: the caller's home timeline, newest first: its own posts and those
/// of the accounts it follows (small accounts' copied in when written, large accounts' merged
/// now), with the live Spaces of the accounts it follows on top.
pub async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Country(country): Country,
    Query(query): Query<PageQuery>,
) -> Result<Json<Timeline>, ApiError> {
    let me = caller.required()?;
    let limit = query.limit();
    let before = query.before_id()?;
    let lists = state
        .store
        .timeline_ids(me.id, before, limit, state.config.fanout_max_followers())
        .await?;
    let ids = stentor_social::timeline::merge(&lists, limit as usize);
    let next = stentor_social::timeline::next_cursor(&ids, limit as usize).map(|c| c.to_string());
    let visible = state.store.timeline_visible(me.id, &ids).await?;
    let rows = state.store.posts(&visible, me.id).await?;
    let live = if before.is_none() {
        state
            .store
            .live_followed(me.id, 10)
            .await?
            .into_iter()
            .map(|(s, host_handle)| LiveEntry {
                id: s.id,
                title: s.title,
                host_handle,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(Timeline {
        live,
        items: views(&state, rows, me.id, country.as_deref()).await?,
        next,
    }))
}

/// Which posts to follow the counts of.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// Post ids, comma-separated, at most [`MOST_POSTS`].
    ids: String,
}

/// Posts one stream may follow.
pub const MOST_POSTS: usize = 100;
/// How long a stream lasts before the client is asked to come back (an `EventSource` does
/// by itself), so that no connection is held for ever.
const STREAM_FOR: Duration = Duration::from_secs(300);

/// `GET /api/v1/posts/live?ids=1,2,3`: a stream of server-sent events, one `counts` event
/// per post whose counts changed, at most one a second per post, for five minutes.
pub async fn live(
    State(state): State<AppState>,
    Query(query): Query<LiveQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError>
{
    let mut ids: Vec<u64> = Vec::new();
    for part in query.ids.split(',').filter(|p| !p.is_empty()) {
        let id = part
            .parse()
            .map_err(|_| ApiError::BadRequest("ids: post ids, comma-separated".into()))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() || ids.len() > MOST_POSTS {
        return Err(ApiError::BadRequest(format!(
            "ids: 1 to {MOST_POSTS} post ids"
        )));
    }
    let watch = state.social.counts.watch(ids).ok_or(ApiError::Overloaded {
        reason: "live_counts_full",
        retry_after: 30,
    })?;
    let until = tokio::time::Instant::now() + STREAM_FOR;
    let sent = std::collections::HashMap::<u64, [u64; 3]>::new();
    let stream = futures_util::stream::unfold(
        (watch, sent, Vec::<Event>::new()),
        move |(mut watch, mut sent, mut pending)| async move {
            loop {
                if let Some(event) = pending.pop() {
                    return Some((Ok(event), (watch, sent, pending)));
                }
                tokio::select! {
                    changed = watch.changes.changed() => changed.ok()?,
                    () = tokio::time::sleep_until(until) => return None,
                }
                let latest = watch.changes.borrow_and_update().clone();
                for post in watch.posts() {
                    if let Some(counts) = latest.get(post)
                        && sent.get(post) != Some(counts)
                    {
                        sent.insert(*post, *counts);
                        let data = serde_json::json!({
                            "id": post,
                            "like_count": counts[0],
                            "reply_count": counts[1],
                            "repost_count": counts[2],
                        });
                        pending.push(Event::default().event("counts").data(data.to_string()));
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
