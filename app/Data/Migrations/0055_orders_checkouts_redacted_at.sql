-- When a customers/redact erased the order or checkout. A later delivery of the same order (orders/updated, a refund)
-- or checkout still carries the email, address and card a guest gave: with no customer row to mark, the row itself
-- remembers that its personal fields stay empty (UpsertStatement's erasable columns, StoreMerge).
ALTER TABLE orders ADD COLUMN redacted_at timestamptz;
ALTER TABLE checkouts ADD COLUMN redacted_at timestamptz;
