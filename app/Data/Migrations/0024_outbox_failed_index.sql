-- Failed Shopify calls are few beside the sent ones kept for 30 days: the operators' backlog gauge counts them through
-- this index instead of reading the whole table (and a shop's failed list can use it too).
CREATE INDEX outbox_failed_idx ON outbox_messages (shop_id, failed_at) WHERE failed_at IS NOT NULL;
