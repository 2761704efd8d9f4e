//! The social layer's durable state: profiles, follows, blocks, mutes, posts, likes, home
//! timelines, notifications and the job queue.
//!
//! Likes and follows are written in batches ([`Store::apply_likes`], [`Store::apply_follows`]):
//! the rows of a batch and the counts they move change in one transaction, so a count is exact
//! once its batch commits and a burst on one post moves its counter once per batch.

use super::{Columns, Pool, Store, StoreError, conflict};
use sqlx::Row;
use stentor_social::batch::{dedup_last, first_changed, tally};

/// An account as its profile page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Numeric id.
    pub id: u64,
    /// Handle.
    pub handle: String,
    /// Display name (empty: the handle shows).
    pub display_name: String,
    /// Biography.
    pub bio: String,
    /// The stored avatar's key, if one was uploaded (initials otherwise).
    pub avatar: Option<String>,
    /// Who may have its live alerts: `followers`, `mutuals` or `nobody`.
    pub alerts_from: String,
    /// Accounts following it.
    pub followers: u64,
    /// Accounts it follows.
    pub following: u64,
    /// Posts it wrote.
    pub posts: u64,
    /// Its live Space, if any.
    pub live_space: Option<String>,
    /// Joined, Unix seconds.
    pub created_at: i64,
}

/// How one account stands to another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relation {
    /// The viewer follows the other.
    pub following: bool,
    /// The other follows the viewer.
    pub followed_by: bool,
    /// The viewer asked for the other's live alerts.
    pub alerts: bool,
    /// The viewer blocks the other.
    pub blocking: bool,
    /// The other blocks the viewer.
    pub blocked_by: bool,
    /// The viewer mutes the other.
    pub muting: bool,
}

/// A post with its author and counts, as one viewer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRow {
    /// Id (grows with time).
    pub id: u64,
    /// Author's id.
    pub author_id: u64,
    /// Author's handle.
    pub author_handle: String,
    /// Author's display name.
    pub author_name: String,
    /// Author's avatar key.
    pub author_avatar: Option<String>,
    /// Text (empty for a repost).
    pub text: String,
    /// The post this replies to.
    pub reply_to: Option<u64>,
    /// The post this reposts.
    pub repost_of: Option<u64>,
    /// The Space it announces.
    pub space_id: Option<String>,
    /// Written, Unix seconds.
    pub created_at: i64,
    /// Likes (exact as of the last committed batch).
    pub likes: u64,
    /// Replies.
    pub replies: u64,
    /// Reposts.
    pub reposts: u64,
    /// The viewer likes it.
    pub liked: bool,
    /// The viewer reposted it.
    pub reposted: bool,
    /// A moderation label in force, with its reason.
    pub label: Option<String>,
    /// Removed by a moderation decision (shown to nobody but its author).
    pub removed: bool,
    /// Interaction restricted by a moderation decision: no replies, reposts or likes.
    pub restricted: bool,
    /// A moderation decision limited to some countries is in force: what the viewer sees
    /// depends on where they are (the API looks it up).
    pub scoped: bool,
}

/// One entry of an inbox: a group of events of one kind on one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Id.
    pub id: u64,
    /// `follow`, `like`, `reply`, `repost`, `live`, `reminder`, `statement`,
    /// `report_outcome` or `appeal_answer`.
    pub kind: String,
    /// The latest account behind it.
    pub actor_id: Option<u64>,
    /// Its handle.
    pub actor_handle: Option<String>,
    /// The post it is about.
    pub post_id: Option<u64>,
    /// The Space it is about.
    pub space_id: Option<String>,
    /// Events in the group (a like from 4 212 accounts is one entry with 4 212).
    pub count: u64,
    /// Last changed, Unix milliseconds.
    pub at_ms: i64,
    /// Read.
    pub read: bool,
    /// For a moderation event (`statement`, `report_outcome`, `appeal_answer`): the entry of
    /// the moderation log it is about (the decision, or the notice).
    pub log_seq: Option<u64>,
}

/// A job taken from the queue, leased to the caller until it is finished or the lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Id.
    pub id: u64,
    /// What to do: `fanout` (a post into its author's followers' timelines), ...
    pub kind: String,
    /// What on (a post id, a Space id).
    pub subject: String,
    /// How many times it was taken, this time included.
    pub attempts: u32,
}

/// The columns of a [`PostRow`], `$1` the viewer (0 for nobody).
const POST_COLUMNS: &str = "SELECT p.id, p.author_id, u.handle, u.display_name, u.avatar, \
     p.text, p.reply_to, p.repost_of, p.space_id, p.created_at, \
     COALESCE(s.likes, 0), COALESCE(s.replies, 0), COALESCE(s.reposts, 0), \
     EXISTS (SELECT 1 FROM likes l WHERE l.post_id = p.id AND l.user_id = $1), \
     EXISTS (SELECT 1 FROM posts r WHERE r.author_id = $1 AND r.repost_of = p.id), \
     p.label, p.removed, p.restricted, p.scoped \
     FROM posts p JOIN users u ON u.id = p.author_id \
     LEFT JOIN post_stats s ON s.post_id = p.id";

/// A post's author is not hidden from the viewer `$1` (neither muted nor blocked either way).
const NOT_HIDDEN: &str = "NOT p.removed AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = $1 \
     AND m.muted_id = p.author_id) \
     AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = $1 AND b.blocked_id = \
     p.author_id) OR (b.blocker_id = p.author_id AND b.blocked_id = $1))";

fn post_from(row: &impl Columns) -> PostRow {
    PostRow {
        id: row.int(0) as u64,
        author_id: row.int(1) as u64,
        author_handle: row.text(2),
        author_name: row.text(3),
        author_avatar: row.maybe_text(4),
        text: row.text(5),
        reply_to: row.maybe_int(6).map(|v| v as u64),
        repost_of: row.maybe_int(7).map(|v| v as u64),
        space_id: row.maybe_text(8),
        created_at: row.int(9),
        likes: row.int(10).max(0) as u64,
        replies: row.int(11).max(0) as u64,
        reposts: row.int(12).max(0) as u64,
        liked: row.flag(13),
        reposted: row.flag(14),
        label: row.maybe_text(15),
        removed: row.flag(16),
        restricted: row.flag(17),
        scoped: row.flag(18),
    }
}

/// `ids` as a SQL list of integers (ids come from the database, never from text).
pub(crate) fn id_list(ids: &[u64]) -> String {
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    list.join(",")
}

/// Adds `delta` to `column` of a stats table's row `key` (made when missing).
fn bump(table: &str, key: &str, column: &str) -> String {
    format!(
        "INSERT INTO {table} ({key}, {column}) VALUES ($1, $2) ON CONFLICT ({key}) \
         DO UPDATE SET {column} = {table}.{column} + excluded.{column}"
    )
}

/// Adds a group of `count` events to a notification: a new entry, or the unread entry of the
/// same group grown (a read one starts again).
const NOTIFY: &str = "INSERT INTO notifications \
     (user_id, group_key, kind, actor_id, post_id, space_id, count, at_ms, read) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE) \
     ON CONFLICT (user_id, group_key) DO UPDATE SET \
     count = CASE WHEN notifications.read THEN excluded.count \
     ELSE notifications.count + excluded.count END, \
     actor_id = excluded.actor_id, at_ms = excluded.at_ms, read = FALSE";

/// A notification to add: to whom, its group, kind, actor, subject and size.
struct Notice<'a> {
    user: u64,
    group: String,
    kind: &'a str,
    actor: Option<u64>,
    post: Option<u64>,
    space: Option<&'a str>,
    count: i64,
}

/// Runs a [`Notice`] on `$conn` (a transaction of either backend) at `$now_ms`; nothing is
/// sent to an account about itself.
macro_rules! notify {
    ($conn:expr, $n:expr, $now_ms:expr) => {{
        let n: Notice = $n;
        if n.actor != Some(n.user) && n.count > 0 {
            sqlx::query(NOTIFY)
                .bind(n.user as i64)
                .bind(&n.group)
                .bind(n.kind)
                .bind(n.actor.map(|a| a as i64))
                .bind(n.post.map(|p| p as i64))
                .bind(n.space)
                .bind(n.count)
                .bind($now_ms)
                .execute($conn)
                .await?;
        }
    }};
}

impl Store {
    /// A profile by handle, with its counts and live Space.
    pub async fn profile(&self, handle: &str) -> Result<Option<Profile>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT u.id, u.handle, u.display_name, u.bio, u.avatar, u.alerts_from, \
                 COALESCE(s.followers, 0), COALESCE(s.following, 0), COALESCE(s.posts, 0), \
                 (SELECT sp.id FROM spaces sp WHERE sp.host_id = u.id AND sp.state = 'live' \
                  ORDER BY sp.created_at DESC LIMIT 1), u.created_at \
                 FROM users u LEFT JOIN user_stats s ON s.user_id = u.id WHERE u.handle = $1",
            )
            .bind(handle)
            .fetch_optional(pool)
            .await?
            .map(|row| Profile {
                id: row.int(0) as u64,
                handle: row.text(1),
                display_name: row.text(2),
                bio: row.text(3),
                avatar: row.maybe_text(4),
                alerts_from: row.text(5),
                followers: row.int(6).max(0) as u64,
                following: row.int(7).max(0) as u64,
                posts: row.int(8).max(0) as u64,
                live_space: row.maybe_text(9),
                created_at: row.int(10),
            })
        }))
    }

    /// Sets a profile's display name and biography.
    pub async fn set_profile(&self, user: u64, name: &str, bio: &str) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("UPDATE users SET display_name = $1, bio = $2 WHERE id = $3")
                .bind(name)
                .bind(bio)
                .bind(user as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Sets (or, with `None`, clears) the key of a profile's stored avatar.
    pub async fn set_avatar(&self, user: u64, key: Option<&str>) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("UPDATE users SET avatar = $1 WHERE id = $2")
                .bind(key)
                .bind(user as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Sets who may have an account's live alerts (`followers`, `mutuals`, `nobody`).
    pub async fn set_alerts_from(&self, user: u64, audience: &str) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("UPDATE users SET alerts_from = $1 WHERE id = $2")
                .bind(audience)
                .bind(user as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// How `viewer` stands to `other`.
    pub async fn relation(&self, viewer: u64, other: u64) -> Result<Relation, StoreError> {
        Ok(on!(self, |pool| {
            let row = sqlx::query(
                "SELECT \
                 EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2), \
                 EXISTS (SELECT 1 FROM follows WHERE follower_id = $2 AND followee_id = $1), \
                 EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2 \
                         AND alerts), \
                 EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2), \
                 EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $2 AND blocked_id = $1), \
                 EXISTS (SELECT 1 FROM mutes WHERE muter_id = $1 AND muted_id = $2)",
            )
            .bind(viewer as i64)
            .bind(other as i64)
            .fetch_one(pool)
            .await?;
            Relation {
                following: row.flag(0),
                followed_by: row.flag(1),
                alerts: row.flag(2),
                blocking: row.flag(3),
                blocked_by: row.flag(4),
                muting: row.flag(5),
            }
        }))
    }

    /// Writes a batch of follows `(follower, followee)` at `now` (Unix seconds): each
    /// becomes a follow unless it is one already, is of oneself, or a block stands between
    /// the two. Counts and the followees' notifications move once per followee. Followees
    /// with fewer than `backfill_below` followers have their latest 20 posts put into the new
    /// follower's timeline (larger ones are merged at read time anyway). Answers, for each
    /// follow in order, whether it was made now.
    pub async fn apply_follows(
        &self,
        follows: &[(u64, u64)],
        now: i64,
        backfill_below: u64,
    ) -> Result<Vec<bool>, StoreError> {
        let unique = dedup_last(follows, |f| *f);
        let now_ms = now * 1000;
        let made: Vec<(u64, u64)> = on!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut made = Vec::new();
            for &(follower, followee) in &unique {
                let inserted = sqlx::query(
                    "INSERT INTO follows (follower_id, followee_id, created_at) \
                     SELECT $1, $2, $3 WHERE $1 <> $2 \
                     AND EXISTS (SELECT 1 FROM users WHERE id = $2) \
                     AND NOT EXISTS (SELECT 1 FROM blocks WHERE \
                       (blocker_id = $1 AND blocked_id = $2) OR \
                       (blocker_id = $2 AND blocked_id = $1)) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(follower as i64)
                .bind(followee as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if inserted {
                    made.push((follower, followee));
                }
            }
            for (followee, n) in tally(made.iter().map(|f| f.1)) {
                sqlx::query(&bump("user_stats", "user_id", "followers"))
                    .bind(followee as i64)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
                let last = made.iter().rev().find(|f| f.1 == followee).map(|f| f.0);
                notify!(
                    &mut *tx,
                    Notice {
                        user: followee,
                        group: "follow".into(),
                        kind: "follow",
                        actor: last,
                        post: None,
                        space: None,
                        count: n,
                    },
                    now_ms
                );
            }
            for (follower, n) in tally(made.iter().map(|f| f.0)) {
                sqlx::query(&bump("user_stats", "user_id", "following"))
                    .bind(follower as i64)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
            }
            for &(follower, followee) in &made {
                sqlx::query(
                    "INSERT INTO timeline (user_id, post_id) \
                     SELECT $1, p.id FROM posts p WHERE p.author_id = $2 \
                     AND p.reply_to IS NULL \
                     AND COALESCE((SELECT followers FROM user_stats WHERE user_id = $2), 0) \
                         <= $3 \
                     ORDER BY p.id DESC LIMIT 20 ON CONFLICT DO NOTHING",
                )
                .bind(follower as i64)
                .bind(followee as i64)
                .bind(backfill_below as i64)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            made
        });
        Ok(first_changed(follows, &made))
    }

    /// Removes a batch of follows `(follower, followee)`; answers, for each in order, whether
    /// there was one to remove.
    pub async fn apply_unfollows(&self, follows: &[(u64, u64)]) -> Result<Vec<bool>, StoreError> {
        let unique = dedup_last(follows, |f| *f);
        let gone: Vec<(u64, u64)> = on!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut gone = Vec::new();
            for &(follower, followee) in &unique {
                let deleted =
                    sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
                        .bind(follower as i64)
                        .bind(followee as i64)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1;
                if deleted {
                    gone.push((follower, followee));
                }
            }
            for (followee, n) in tally(gone.iter().map(|f| f.1)) {
                sqlx::query(&bump("user_stats", "user_id", "followers"))
                    .bind(followee as i64)
                    .bind(-n)
                    .execute(&mut *tx)
                    .await?;
            }
            for (follower, n) in tally(gone.iter().map(|f| f.0)) {
                sqlx::query(&bump("user_stats", "user_id", "following"))
                    .bind(follower as i64)
                    .bind(-n)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            gone
        });
        Ok(first_changed(follows, &gone))
    }

    /// Turns a follower's live alerts for `followee` on or off; false when not following.
    pub async fn set_follow_alerts(
        &self,
        follower: u64,
        followee: u64,
        on: bool,
    ) -> Result<bool, StoreError> {
        let changed = on!(self, |pool| {
            sqlx::query(
                "UPDATE follows SET alerts = $1 WHERE follower_id = $2 AND followee_id = $3",
            )
            .bind(on)
            .bind(follower as i64)
            .bind(followee as i64)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// `blocker` blocks `blocked`: the follows between them, either way, end with it.
    pub async fn block(&self, blocker: u64, blocked: u64, now: i64) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query(
                "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(blocker as i64)
            .bind(blocked as i64)
            .bind(now)
            .execute(pool)
            .await?;
        });
        self.apply_unfollows(&[(blocker, blocked), (blocked, blocker)])
            .await?;
        Ok(())
    }

    /// Ends a block.
    pub async fn unblock(&self, blocker: u64, blocked: u64) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
                .bind(blocker as i64)
                .bind(blocked as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Whether either of two accounts blocks the other.
    pub async fn blocked_between(&self, a: u64, b: u64) -> Result<bool, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2) \
                 OR (blocker_id = $2 AND blocked_id = $1))",
            )
            .bind(a as i64)
            .bind(b as i64)
            .fetch_one(pool)
            .await?
            .flag(0)
        }))
    }

    /// `muter` mutes (`true`) or unmutes `muted`: their posts leave the muter's timeline.
    pub async fn set_mute(
        &self,
        muter: u64,
        muted: u64,
        on: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        on!(self, |pool| {
            if on {
                sqlx::query(
                    "INSERT INTO mutes (muter_id, muted_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(muter as i64)
                .bind(muted as i64)
                .bind(now)
                .execute(pool)
                .await?;
            } else {
                sqlx::query("DELETE FROM mutes WHERE muter_id = $1 AND muted_id = $2")
                    .bind(muter as i64)
                    .bind(muted as i64)
                    .execute(pool)
                    .await?;
            }
        });
        Ok(())
    }

    /// Accounts following `user` (`followers`) or followed by it (`following`), most recent
    /// first, as `(follow time, profile id, handle, display name)`, before the follow time and
    /// id `before` when given.
    pub async fn follow_list(
        &self,
        user: u64,
        followers: bool,
        before: Option<(i64, u64)>,
        limit: u32,
    ) -> Result<Vec<(i64, u64, String, String)>, StoreError> {
        let (mine, theirs) = if followers {
            ("followee_id", "follower_id")
        } else {
            ("follower_id", "followee_id")
        };
        let query = format!(
            "SELECT f.created_at, u.id, u.handle, u.display_name FROM follows f \
             JOIN users u ON u.id = f.{theirs} WHERE f.{mine} = $1 \
             AND (f.created_at < $2 OR (f.created_at = $2 AND f.{theirs} < $3)) \
             ORDER BY f.created_at DESC, f.{theirs} DESC LIMIT $4"
        );
        let (at, id) = before.unwrap_or((i64::MAX, u64::MAX >> 1));
        Ok(on!(self, |pool| {
            sqlx::query(&query)
                .bind(user as i64)
                .bind(at)
                .bind(id as i64)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| (row.int(0), row.int(1) as u64, row.text(2), row.text(3)))
                .collect()
        }))
    }

    /// Writes a post by `author` at `now`: a reply (`reply_to`), a repost (`repost_of`, with
    /// empty text), or a post of its own, announcing `space` if given. Its author's count,
    /// the parent's count and notification, and — when `fan_out` — the job that copies it
    /// into the followers' timelines, all in one transaction. `None` when the post replied to
    /// or reposted does not exist; [`StoreError::Conflict`] for a second repost of one post.
    pub async fn create_post(
        &self,
        author: u64,
        new: NewPost<'_>,
        now: i64,
        fan_out: bool,
    ) -> Result<Option<u64>, StoreError> {
        let parent = new.reply_to.or(new.repost_of);
        let now_ms = now * 1000;
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
            let parent_author = match parent {
                Some(p) => {
                    let row = sqlx::query("SELECT author_id FROM posts WHERE id = $1")
                        .bind(p as i64)
                        .fetch_optional(&mut *tx)
                        .await?;
                    match row {
                        Some(row) => Some(row.int(0) as u64),
                        None => return Ok(None),
                    }
                }
                None => None,
            };
            let id = sqlx::query(
                "INSERT INTO posts (author_id, text, reply_to, repost_of, space_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(author as i64)
            .bind(new.text)
            .bind(new.reply_to.map(|p| p as i64))
            .bind(new.repost_of.map(|p| p as i64))
            .bind(new.space)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict(e, "repost"))?
            .int(0) as u64;
            sqlx::query(&bump("user_stats", "user_id", "posts"))
                .bind(author as i64)
                .bind(1_i64)
                .execute(&mut *tx)
                .await?;
            if let (Some(parent), Some(parent_author)) = (parent, parent_author) {
                let (column, kind, group, post) = if new.reply_to.is_some() {
                    ("replies", "reply", format!("reply:{id}"), id)
                } else {
                    ("reposts", "repost", format!("repost:{parent}"), parent)
                };
                sqlx::query(&bump("post_stats", "post_id", column))
                    .bind(parent as i64)
                    .bind(1_i64)
                    .execute(&mut *tx)
                    .await?;
                notify!(
                    &mut *tx,
                    Notice {
                        user: parent_author,
                        group,
                        kind,
                        actor: Some(author),
                        post: Some(post),
                        space: None,
                        count: 1,
                    },
                    now_ms
                );
            }
            if new.reply_to.is_none() {
                // Into the author's own timeline now, the followers' by the job.
                sqlx::query("INSERT INTO timeline (user_id, post_id) VALUES ($1, $2)")
                    .bind(author as i64)
                    .bind(id as i64)
                    .execute(&mut *tx)
                    .await?;
                if fan_out {
                    sqlx::query(
                        "INSERT INTO jobs (kind, subject, run_at) VALUES ('fanout', $1, $2) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(id.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// Deletes `author`'s repost of `post`; false when there was none.
    pub async fn delete_repost(&self, author: u64, post: u64) -> Result<bool, StoreError> {
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query(
                "DELETE FROM posts WHERE author_id = $1 AND repost_of = $2 RETURNING id",
            )
            .bind(author as i64)
            .bind(post as i64)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = gone else {
                return Ok(false);
            };
            let id = row.int(0);
            sqlx::query("DELETE FROM timeline WHERE post_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&bump("post_stats", "post_id", "reposts"))
                .bind(post as i64)
                .bind(-1_i64)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&bump("user_stats", "user_id", "posts"))
                .bind(author as i64)
                .bind(-1_i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Posts by id as `viewer` (0: nobody) sees them, in the order of `ids`, leaving out those
    /// that do not exist.
    pub async fn posts(&self, ids: &[u64], viewer: u64) -> Result<Vec<PostRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!("{POST_COLUMNS} WHERE p.id IN ({})", id_list(ids));
        let rows: Vec<PostRow> = on!(self, |pool| {
            sqlx::query(&query)
                .bind(viewer as i64)
                .fetch_all(pool)
                .await?
                .iter()
                .map(post_from)
                .collect()
        });
        Ok(ids
            .iter()
            .filter_map(|id| rows.iter().find(|r| r.id == *id).cloned())
            .collect())
    }

    /// One post as `viewer` sees it.
    pub async fn post(&self, id: u64, viewer: u64) -> Result<Option<PostRow>, StoreError> {
        Ok(self.posts(&[id], viewer).await?.pop())
    }

    /// A page of posts, newest first, below the id `before`: `author`'s (with `Some`), or the
    /// replies to `reply_to`, hiding authors `viewer` mutes or blocks or who block it.
    pub async fn post_page(
        &self,
        filter: PostFilter,
        viewer: u64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PostRow>, StoreError> {
        // A demoted reply is shown to its author's followers (and the author) only.
        let (column, value, discovery) = match filter {
            PostFilter::Author(a) => ("p.author_id", a, ""),
            PostFilter::Replies(p) => (
                "p.reply_to",
                p,
                " AND (NOT p.demoted OR p.author_id = $1 OR EXISTS (SELECT 1 FROM follows f \
                 WHERE f.follower_id = $1 AND f.followee_id = p.author_id))",
            ),
        };
        let query = format!(
            "{POST_COLUMNS} WHERE {column} = $2 AND p.id < $3 AND {NOT_HIDDEN}{discovery} \
             ORDER BY p.id DESC LIMIT $4"
        );
        Ok(on!(self, |pool| {
            sqlx::query(&query)
                .bind(viewer as i64)
                .bind(value as i64)
                .bind(before.map_or(i64::MAX, |b| b as i64))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
                .iter()
                .map(post_from)
                .collect()
        }))
    }

    /// Ids for `user`'s home timeline below the id `before`, newest first, at most `limit`
    /// from each source: the posts fanned out into it, and the posts of followed accounts
    /// with at least `merge_from` followers (read from their own posts). The caller merges
    /// the two lists; [`Store::posts`] then shows them.
    pub async fn timeline_ids(
        &self,
        user: u64,
        before: Option<u64>,
        limit: u32,
        merge_from: u64,
    ) -> Result<[Vec<u64>; 2], StoreError> {
        let before = before.map_or(i64::MAX, |b| b as i64);
        let ids = |rows: Vec<i64>| rows.into_iter().map(|v| v as u64).collect::<Vec<u64>>();
        let fanned: Vec<i64> = on!(self, |pool| {
            sqlx::query_scalar(
                "SELECT post_id FROM timeline WHERE user_id = $1 AND post_id < $2 \
                 ORDER BY post_id DESC LIMIT $3",
            )
            .bind(user as i64)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        // Large accounts: the newest posts of each, a few index ranges.
        let merged: Vec<i64> = match &self.pool {
            Pool::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT r.id FROM follows f JOIN user_stats s ON s.user_id = f.followee_id \
                     CROSS JOIN LATERAL (SELECT p.id FROM posts p WHERE p.author_id = \
                     f.followee_id AND p.reply_to IS NULL AND p.id < $2 \
                     ORDER BY p.id DESC LIMIT $3) r \
                     WHERE f.follower_id = $1 AND s.followers >= $4 ORDER BY r.id DESC LIMIT $3",
                )
                .bind(user as i64)
                .bind(before)
                .bind(i64::from(limit))
                .bind(merge_from as i64)
                .fetch_all(pool)
                .await?
            }
            Pool::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT p.id FROM posts p WHERE p.author_id IN (SELECT f.followee_id \
                     FROM follows f JOIN user_stats s ON s.user_id = f.followee_id \
                     WHERE f.follower_id = $1 AND s.followers >= $4) \
                     AND p.reply_to IS NULL AND p.id < $2 ORDER BY p.id DESC LIMIT $3",
                )
                .bind(user as i64)
                .bind(before)
                .bind(i64::from(limit))
                .bind(merge_from as i64)
                .fetch_all(pool)
                .await?
            }
        };
        Ok([ids(fanned), ids(merged)])
    }

    /// Of `ids`, those `user` may see in its home timeline now: by itself or by an account it
    /// still follows, and not hidden (muted, blocked).
    pub async fn timeline_visible(&self, user: u64, ids: &[u64]) -> Result<Vec<u64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!(
            "SELECT p.id FROM posts p WHERE p.id IN ({}) AND (p.author_id = $1 OR EXISTS \
             (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = p.author_id)) \
             AND {NOT_HIDDEN}",
            id_list(ids)
        );
        let visible: Vec<i64> = on!(self, |pool| {
            sqlx::query_scalar(&query)
                .bind(user as i64)
                .fetch_all(pool)
                .await?
        });
        Ok(ids
            .iter()
            .copied()
            .filter(|id| visible.contains(&(*id as i64)))
            .collect())
    }

    /// The live Spaces of the accounts `user` follows, most recently started first.
    pub async fn live_followed(
        &self,
        user: u64,
        limit: u32,
    ) -> Result<Vec<(super::SpaceRecord, String)>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT s.id, s.host_id, s.title, s.state, s.starts_at, s.created_at, u.handle \
                 FROM follows f JOIN spaces s ON s.host_id = f.followee_id AND s.state = 'live' \
                 JOIN users u ON u.id = s.host_id WHERE f.follower_id = $1 \
                 ORDER BY s.started_at DESC LIMIT $2",
            )
            .bind(user as i64)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| (super::space_from(row), row.text(6)))
            .collect()
        }))
    }

    /// Writes a batch of likes `(post, account)` at `now`: each is counted once, whatever
    /// retries and duplicates the batch holds; a like across a block (either way) is not made. Counts and the authors' notifications move
    /// once per post. Answers, for each like in order, whether it was made now and the post's
    /// like count after the batch (`None` when the post does not exist).
    pub async fn apply_likes(
        &self,
        likes: &[(u64, u64)],
        now: i64,
    ) -> Result<Vec<(bool, Option<u64>)>, StoreError> {
        self.apply_like_batch(likes, now, true).await
    }

    /// Takes back a batch of likes; answers as [`Store::apply_likes`] does.
    pub async fn apply_unlikes(
        &self,
        likes: &[(u64, u64)],
        now: i64,
    ) -> Result<Vec<(bool, Option<u64>)>, StoreError> {
        self.apply_like_batch(likes, now, false).await
    }

    async fn apply_like_batch(
        &self,
        likes: &[(u64, u64)],
        now: i64,
        like: bool,
    ) -> Result<Vec<(bool, Option<u64>)>, StoreError> {
        let unique = dedup_last(likes, |l| *l);
        let (changed, counts) = on!(self, |pool| {
            let mut tx = pool.begin().await?;
            // One statement for the whole batch: its rows as a VALUES list.
            let rows: Vec<String> = (0..unique.len())
                .map(|k| format!("(${}, ${})", 2 * k + 2, 2 * k + 3))
                .collect();
            let statement = if like {
                format!(
                    "INSERT INTO likes (post_id, user_id, created_at) \
                     SELECT v.column1, v.column2, $1 FROM (VALUES {}) AS v \
                     WHERE EXISTS (SELECT 1 FROM posts p WHERE p.id = v.column1 \
                       AND NOT p.restricted AND NOT p.removed \
                       AND NOT EXISTS (SELECT 1 FROM blocks b WHERE \
                         (b.blocker_id = p.author_id AND b.blocked_id = v.column2) OR \
                         (b.blocker_id = v.column2 AND b.blocked_id = p.author_id))) \
                     ON CONFLICT DO NOTHING RETURNING post_id, user_id",
                    rows.join(", ")
                )
            } else {
                format!(
                    "DELETE FROM likes WHERE $1 = $1 AND (post_id, user_id) IN (VALUES {}) \
                     RETURNING post_id, user_id",
                    rows.join(", ")
                )
            };
            let mut query = sqlx::query(&statement).bind(now);
            for &(post, user) in &unique {
                query = query.bind(post as i64).bind(user as i64);
            }
            let changed: Vec<(u64, u64)> = query
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| (row.int(0) as u64, row.int(1) as u64))
                .collect();
            let sign = if like { 1 } else { -1 };
            for (post, n) in tally(changed.iter().map(|l| l.0)) {
                sqlx::query(&bump("post_stats", "post_id", "likes"))
                    .bind(post as i64)
                    .bind(sign * n)
                    .execute(&mut *tx)
                    .await?;
                if like {
                    let author: i64 =
                        sqlx::query_scalar("SELECT author_id FROM posts WHERE id = $1")
                            .bind(post as i64)
                            .fetch_one(&mut *tx)
                            .await?;
                    let author = author as u64;
                    // The author's own like is not news to the author.
                    let others = changed
                        .iter()
                        .filter(|l| l.0 == post && l.1 != author)
                        .count() as i64;
                    let last = changed
                        .iter()
                        .rev()
                        .find(|l| l.0 == post && l.1 != author)
                        .map(|l| l.1);
                    notify!(
                        &mut *tx,
                        Notice {
                            user: author,
                            group: format!("like:{post}"),
                            kind: "like",
                            actor: last,
                            post: Some(post),
                            space: None,
                            count: others,
                        },
                        now * 1000
                    );
                }
            }
            let mut counts: Vec<(u64, Option<u64>)> = Vec::new();
            for &(post, _) in &unique {
                if counts.iter().any(|c| c.0 == post) {
                    continue;
                }
                let row = sqlx::query(
                    "SELECT COALESCE((SELECT likes FROM post_stats WHERE post_id = $1), 0) \
                     FROM posts WHERE id = $1",
                )
                .bind(post as i64)
                .fetch_optional(&mut *tx)
                .await?;
                counts.push((post, row.map(|r| r.int(0).max(0) as u64)));
            }
            tx.commit().await?;
            (changed, counts)
        });
        Ok(first_changed(likes, &changed)
            .into_iter()
            .zip(likes)
            .map(|(made, l)| (made, counts.iter().find(|c| c.0 == l.0).and_then(|c| c.1)))
            .collect())
    }

    /// For `user` acting on `post`: `None` when there is no such post, otherwise its author
    /// and whether `user` is kept from interacting with it: either of the two blocks the
    /// other, or a moderation decision restricted or removed it (one light read).
    pub async fn post_gate(&self, post: u64, user: u64) -> Result<Option<(u64, bool)>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT p.author_id, EXISTS (SELECT 1 FROM blocks b WHERE \
                 (b.blocker_id = p.author_id AND b.blocked_id = $2) OR \
                 (b.blocker_id = $2 AND b.blocked_id = p.author_id)) \
                 OR p.restricted OR p.removed FROM posts p WHERE p.id = $1",
            )
            .bind(post as i64)
            .bind(user as i64)
            .fetch_optional(pool)
            .await?
            .map(|row| (row.int(0) as u64, row.flag(1)))
        }))
    }

    /// The like, reply and repost counts of `posts` (posts that do not exist are left out).
    pub async fn post_counts(&self, posts: &[u64]) -> Result<Vec<(u64, [u64; 3])>, StoreError> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!(
            "SELECT p.id, COALESCE(s.likes, 0), COALESCE(s.replies, 0), COALESCE(s.reposts, 0) \
             FROM posts p LEFT JOIN post_stats s ON s.post_id = p.id WHERE p.id IN ({})",
            id_list(posts)
        );
        Ok(on!(self, |pool| {
            sqlx::query(&query)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    let n = |i| row.int(i).max(0) as u64;
                    (row.int(0) as u64, [n(1), n(2), n(3)])
                })
                .collect()
        }))
    }

    /// The newest `limit` posts of `host` that announce Space `space` (neither replies nor
    /// reposts), newest first.
    pub async fn announcements(
        &self,
        space: &str,
        host: u64,
        limit: u32,
    ) -> Result<Vec<u64>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT id FROM posts WHERE space_id = $1 AND author_id = $2 \
                 AND reply_to IS NULL AND repost_of IS NULL ORDER BY id DESC LIMIT $3",
            )
            .bind(space)
            .bind(host as i64)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| row.int(0) as u64)
            .collect()
        }))
    }

    /// Counts the likes of `post` row by row (what the stored count must equal).
    pub async fn recount_likes(&self, post: u64) -> Result<u64, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("SELECT COUNT(*) FROM likes WHERE post_id = $1")
                .bind(post as i64)
                .fetch_one(pool)
                .await?
                .int(0) as u64
        }))
    }

    /// Adds a notification for `user` now (`now_ms`): `kind` `live` or `reminder` about
    /// `space`, from `actor`, in the group `group` (one entry per group while unread).
    pub async fn notify_space(
        &self,
        user: u64,
        kind: &str,
        group: &str,
        actor: u64,
        space: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on!(self, |pool| {
            let mut conn = pool.acquire().await?;
            notify!(
                &mut *conn,
                Notice {
                    user,
                    group: group.to_owned(),
                    kind,
                    actor: Some(actor),
                    post: None,
                    space: Some(space),
                    count: 1,
                },
                now_ms
            );
        });
        Ok(())
    }

    /// `user`'s notifications, latest first, before `(at_ms, id)` when given.
    pub async fn notifications(
        &self,
        user: u64,
        before: Option<(i64, u64)>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let (at, id) = before.unwrap_or((i64::MAX, u64::MAX >> 1));
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT n.id, n.kind, n.actor_id, u.handle, n.post_id, n.space_id, n.count, \
                 n.at_ms, n.read, n.log_seq FROM notifications n LEFT JOIN users u ON u.id = n.actor_id \
                 WHERE n.user_id = $1 AND (n.at_ms < $2 OR (n.at_ms = $2 AND n.id < $3)) \
                 ORDER BY n.at_ms DESC, n.id DESC LIMIT $4",
            )
            .bind(user as i64)
            .bind(at)
            .bind(id as i64)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Notification {
                id: row.int(0) as u64,
                kind: row.text(1),
                actor_id: row.maybe_int(2).map(|v| v as u64),
                actor_handle: row.maybe_text(3),
                post_id: row.maybe_int(4).map(|v| v as u64),
                space_id: row.maybe_text(5),
                count: row.int(6).max(0) as u64,
                at_ms: row.int(7),
                read: row.flag(8),
                log_seq: row.maybe_int(9).map(|v| v as u64),
            })
            .collect()
        }))
    }

    /// How many of `user`'s notifications are unread.
    pub async fn unread(&self, user: u64) -> Result<u64, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND NOT read")
                .bind(user as i64)
                .fetch_one(pool)
                .await?
                .int(0) as u64
        }))
    }

    /// Marks `user`'s notifications read: those up to the id `up_to`, or all of them.
    pub async fn mark_read(&self, user: u64, up_to: Option<u64>) -> Result<u64, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "UPDATE notifications SET read = TRUE WHERE user_id = $1 AND NOT read \
                 AND id <= $2",
            )
            .bind(user as i64)
            .bind(up_to.map_or(i64::MAX, |u| u as i64))
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// Takes up to `limit` due jobs (run at or before `now`, not leased to another worker),
    /// leasing them until `lease_until`. On PostgreSQL, workers on many nodes take different
    /// jobs (`FOR UPDATE SKIP LOCKED`); SQLite has one writer.
    pub async fn claim_jobs(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let lock = match self.pool {
            Pool::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Pool::Sqlite(_) => "",
        };
        let query = format!(
            "UPDATE jobs SET lease_until = $1, attempts = attempts + 1 WHERE id IN \
             (SELECT id FROM jobs WHERE run_at <= $2 AND lease_until < $2 \
              ORDER BY run_at, id LIMIT $3 {lock}) RETURNING id, kind, subject, attempts"
        );
        Ok(on!(self, |pool| {
            sqlx::query(&query)
                .bind(lease_until)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Job {
                    id: row.int(0) as u64,
                    kind: row.text(1),
                    subject: row.text(2),
                    attempts: row.get::<i32, _>(3).max(0) as u32,
                })
                .collect()
        }))
    }

    /// Puts a job off until `run_at` (a failed attempt waits before the next).
    pub async fn retry_job(&self, id: u64, run_at: i64) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("UPDATE jobs SET run_at = $1, lease_until = 0 WHERE id = $2")
                .bind(run_at)
                .bind(id as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Jobs waiting, of every kind.
    pub async fn jobs_waiting(&self) -> Result<u64, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("SELECT COUNT(*) FROM jobs")
                .fetch_one(pool)
                .await?
                .int(0) as u64
        }))
    }

    /// Carries out a `fanout` job: copies the post into the timeline of every follower of its
    /// author, and ends the job, in one transaction (run twice, it changes nothing more).
    pub async fn run_fanout(&self, job: &Job) -> Result<u64, StoreError> {
        let post: i64 = job.subject.parse().unwrap_or(-1);
        Ok(on!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "INSERT INTO timeline (user_id, post_id) SELECT f.follower_id, p.id \
                 FROM posts p JOIN follows f ON f.followee_id = p.author_id WHERE p.id = $1 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(post)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(job.id as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            n
        }))
    }
}

/// A new post's content.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewPost<'a> {
    /// Text (checked by the caller; empty for a repost).
    pub text: &'a str,
    /// The post replied to.
    pub reply_to: Option<u64>,
    /// The post reposted.
    pub repost_of: Option<u64>,
    /// The Space announced.
    pub space: Option<&'a str>,
}

/// Which posts a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostFilter {
    /// An author's posts (replies included).
    Author(u64),
    /// The replies to a post.
    Replies(u64),
}
