-- Which open call of a resource goes first is found through outbox_resource_idx (shop, resource, id). The indexes that walk
-- the queue (by due time, and a shop's calls in id order) covered the same open calls, so that lookup could use them too,
-- and did when the statistics said few calls were open: after a burst (a churn run, a sale) before autovacuum's next
-- ANALYZE, every claim, sweep and "when is the next call due" walked the shop's open calls once per call it looked at
-- (6,000 calls queued: about two minutes a statement; the serving benchmark's sweep took 3.1 s at 9,219). The queue's
-- indexes now also require next_attempt_at IS NOT NULL (always true: the column is NOT NULL), which the statements that
-- walk the queue state and the resource lookup does not, so PostgreSQL can use them only for the former.
-- outbox_shop_due_idx (shop, due time) goes: no statement reads a shop's calls by due time alone.
DROP INDEX outbox_shop_due_idx;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox_messages (next_attempt_at, id)
    WHERE completed_at IS NULL AND failed_at IS NULL AND next_attempt_at IS NOT NULL;
DROP INDEX outbox_open_in_order_idx;
CREATE INDEX outbox_open_in_order_idx ON outbox_messages (shop_id, id)
    WHERE completed_at IS NULL AND failed_at IS NULL AND next_attempt_at IS NOT NULL;
