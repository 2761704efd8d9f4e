-- The platform's moderators in live Spaces: speakers they hold muted (who cannot unmute
-- until the hold is lifted).
CREATE TABLE space_holds (
    space_id TEXT NOT NULL REFERENCES spaces(id),
    user_id  BIGINT NOT NULL,
    PRIMARY KEY (space_id, user_id)
);

