-- The posts that announce a Space, newest first: their counts ride the Space's events.
CREATE INDEX posts_space ON posts (space_id, id) WHERE space_id IS NOT NULL;
