-- Moderation that lasts: who on stage is muted, and open invitations to speak.
CREATE TABLE space_mutes (
    space_id TEXT NOT NULL REFERENCES spaces(id),
    user_id  BIGINT NOT NULL,
    PRIMARY KEY (space_id, user_id)
);

CREATE TABLE space_invites (
    space_id TEXT NOT NULL REFERENCES spaces(id),
    user_id  BIGINT NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
