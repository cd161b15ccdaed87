-- The outbox sends outside any transaction: a call is claimed for a lease, sent, then its outcome recorded. A call that
-- may have reached Shopify without us learning the outcome (a crash, a dropped connection) is checked before it is sent
-- again. The idempotency key makes a decision that is written twice queue its call once.
ALTER TABLE outbox_messages
    ADD COLUMN idempotency_key text,
    ADD COLUMN claimed_until   timestamptz,
    ADD COLUMN outcome         text;
UPDATE outbox_messages SET idempotency_key = 'legacy:' || id WHERE idempotency_key IS NULL;
ALTER TABLE outbox_messages ALTER COLUMN idempotency_key SET NOT NULL;
CREATE UNIQUE INDEX outbox_idempotency_idx ON outbox_messages (shop_id, idempotency_key);
CREATE INDEX outbox_shop_due_idx ON outbox_messages (shop_id, next_attempt_at) WHERE completed_at IS NULL AND failed_at IS NULL;
