-- The moderation log: append-only, each entry hash-chained to the one before.
CREATE TABLE moderation_log (
    seq          BIGINT PRIMARY KEY,
    at_ms        BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    subject_kind TEXT,
    subject_id   TEXT,
    event        TEXT NOT NULL,
    prev         TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX moderation_log_subject ON moderation_log (subject_kind, subject_id, seq);

-- Derived from the log in the transaction that appends to it: the restrictions in force.
CREATE TABLE restrictions (
    decision     BIGINT PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    affected     BIGINT NOT NULL,
    action       TEXT NOT NULL,
    ends_at_ms   BIGINT,
    reason       TEXT NOT NULL DEFAULT '',
    reversed     BOOLEAN NOT NULL DEFAULT FALSE,
    -- Its end has passed and the subject was brought up to date.
    lapsed       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX restrictions_subject ON restrictions (subject_kind, subject_id);
CREATE INDEX restrictions_affected ON restrictions (affected, decision);

-- Derived too: notices nobody has answered yet, trusted flaggers' first.
CREATE TABLE open_notices (
    notice   BIGINT PRIMARY KEY,
    notifier BIGINT,
    trusted BOOLEAN NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX open_notices_queue ON open_notices (trusted DESC, notice);

-- Who moderates (`moderator`) and who grants it (`admin`).
ALTER TABLE users ADD COLUMN role TEXT;
-- Derived from the log: an account suspended until then (Unix ms).
ALTER TABLE users ADD COLUMN suspended_until BIGINT;
-- Derived from the log: a post removed, or labelled with the reason shown on it.
ALTER TABLE posts ADD COLUMN removed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE posts ADD COLUMN label TEXT;
-- Derived from the log: nobody may reply to, repost or like it.
ALTER TABLE posts ADD COLUMN restricted BOOLEAN NOT NULL DEFAULT FALSE;
-- An inbox entry about a moderation event names its entry in the log.
ALTER TABLE notifications ADD COLUMN log_seq BIGINT;
