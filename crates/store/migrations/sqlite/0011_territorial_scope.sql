-- A restriction limited to some countries (comma-separated ISO codes; empty: everywhere), and
-- the posts that have one in force (their views ask which, for the viewer's country).
ALTER TABLE restrictions ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE posts ADD COLUMN scoped BOOLEAN NOT NULL DEFAULT FALSE;
