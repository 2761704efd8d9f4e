-- Derived from the moderation log: demoted content, kept out of discovery (the lists of
-- Spaces, the replies shown to people who do not follow the author) but not from followers.
ALTER TABLE posts ADD COLUMN demoted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE spaces ADD COLUMN demoted BOOLEAN NOT NULL DEFAULT FALSE;
