-- Whether a Space is recorded: on unless its host turns it off.
ALTER TABLE spaces ADD COLUMN recording BOOLEAN NOT NULL DEFAULT TRUE;
