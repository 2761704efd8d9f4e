-- The social layer: profiles, follows, blocks, mutes, posts, likes, timelines, notifications
-- and the durable job queue that fans posts out and sends alerts.
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar TEXT;
ALTER TABLE users ADD COLUMN alerts_from TEXT NOT NULL DEFAULT 'followers';

-- Counts beside the rows they count: moved in the same transaction, once per batch.
CREATE TABLE user_stats (
    user_id   INTEGER PRIMARY KEY,
    followers BIGINT NOT NULL DEFAULT 0,
    following BIGINT NOT NULL DEFAULT 0,
    posts     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE follows (
    follower_id BIGINT NOT NULL,
    followee_id BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    alerts      INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (follower_id, followee_id)
) WITHOUT ROWID;
CREATE INDEX follows_followee ON follows (followee_id, follower_id);

CREATE TABLE blocks (
    blocker_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX blocks_blocked ON blocks (blocked_id, blocker_id);

CREATE TABLE mutes (
    muter_id   BIGINT NOT NULL,
    muted_id   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (muter_id, muted_id)
) WITHOUT ROWID;

CREATE TABLE posts (
    id         INTEGER PRIMARY KEY,
    author_id  BIGINT NOT NULL,
    text       TEXT NOT NULL,
    reply_to   BIGINT,
    repost_of  BIGINT,
    space_id   TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX posts_author ON posts (author_id, id);
CREATE INDEX posts_replies ON posts (reply_to, id) WHERE reply_to IS NOT NULL;
CREATE UNIQUE INDEX posts_one_repost ON posts (author_id, repost_of) WHERE repost_of IS NOT NULL;

CREATE TABLE post_stats (
    post_id INTEGER PRIMARY KEY,
    likes   BIGINT NOT NULL DEFAULT 0,
    replies BIGINT NOT NULL DEFAULT 0,
    reposts BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE likes (
    post_id    BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id)
) WITHOUT ROWID;

-- Posts fanned out on write into their readers' home timelines.
CREATE TABLE timeline (
    user_id BIGINT NOT NULL,
    post_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, post_id)
) WITHOUT ROWID;

-- One row per group (the likes of one post while unread, one reply, ...): a burst of likes
-- moves one row per batch.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    group_key  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   BIGINT,
    post_id    BIGINT,
    space_id   TEXT,
    count      BIGINT NOT NULL DEFAULT 1,
    at_ms      BIGINT NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, group_key)
);
CREATE INDEX notifications_newest ON notifications (user_id, at_ms);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read = 0;

-- Work that must happen once even if a node dies doing it (fan-out, alerts, reminders).
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    run_at      BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, subject)
);
CREATE INDEX jobs_due ON jobs (run_at);

-- Who listened to whose Spaces lately: live alerts go first to those most likely to come.
CREATE TABLE listens (
    user_id BIGINT NOT NULL,
    host_id BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, host_id)
) WITHOUT ROWID;

-- "Remind me" on a scheduled Space.
CREATE TABLE reminders (
    space_id   TEXT NOT NULL,
    user_id    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (space_id, user_id)
) WITHOUT ROWID;

-- One alert campaign per Space and kind (`live`, `soon`, `start`): its recipients are listed
-- once, in one transaction, then sent at the pace the Space's waiting room admits.
CREATE TABLE campaigns (
    space_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    host_id     BIGINT NOT NULL,
    listed_at   BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    PRIMARY KEY (space_id, kind)
) WITHOUT ROWID;

CREATE TABLE alerts (
    space_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    user_id  BIGINT NOT NULL,
    rank     BIGINT NOT NULL,
    sent_at  BIGINT,
    PRIMARY KEY (space_id, kind, user_id)
) WITHOUT ROWID;
CREATE INDEX alerts_due ON alerts (space_id, kind, rank DESC, user_id) WHERE sent_at IS NULL;

-- Web Push subscriptions, one per browser.
CREATE TABLE push_subscriptions (
    endpoint   TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
