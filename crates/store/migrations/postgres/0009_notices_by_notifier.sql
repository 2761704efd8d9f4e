-- A notifier's open notices, found without reading the whole queue (one person's reports are
-- bounded, and the same subject is not reported twice while it waits).
CREATE INDEX open_notices_notifier ON open_notices (notifier);
