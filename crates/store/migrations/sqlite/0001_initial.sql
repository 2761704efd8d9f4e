CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    handle        TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id),
    expires_at BIGINT NOT NULL
);

CREATE TABLE spaces (
    id         TEXT PRIMARY KEY,
    host_id    BIGINT NOT NULL,
    title      TEXT NOT NULL,
    state      TEXT NOT NULL,
    starts_at  BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at   BIGINT
);

CREATE TABLE space_roles (
    space_id TEXT NOT NULL REFERENCES spaces(id),
    user_id  BIGINT NOT NULL,
    role     TEXT NOT NULL,
    PRIMARY KEY (space_id, user_id)
);

CREATE TABLE space_removed (
    space_id TEXT NOT NULL REFERENCES spaces(id),
    user_id  BIGINT NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
