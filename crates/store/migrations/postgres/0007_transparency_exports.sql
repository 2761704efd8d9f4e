-- Statements submitted to the Transparency Database: sent (stored there), existing (it held
-- the puid already) or invalid (refused; not sent again), with the reason.
CREATE TABLE tdb_exports (
    decision BIGINT PRIMARY KEY,
    puid     TEXT NOT NULL,
    at_ms    BIGINT NOT NULL,
    outcome  TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX moderation_log_kind ON moderation_log (kind, seq);
