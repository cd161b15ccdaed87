-- An event unmatched because its order is not held yet (the order's webhook or the backfill comes later) is looked at
-- again: retry_at is when, attempts how many times it was. Events unmatched for other reasons (several orders fit, no
-- email, the key may not read charges) have no retry_at.
ALTER TABLE stripe_events ADD COLUMN attempts int NOT NULL DEFAULT 0, ADD COLUMN retry_at timestamptz;
CREATE INDEX stripe_events_retry_idx ON stripe_events (retry_at) WHERE state = 'unmatched' AND retry_at IS NOT NULL;
