-- A cart erased by customers/redact stays erased (StorePersonalData, StoreWriter.CartUpsert): a later carts/update of the
-- same token must not bring its note back, as orders and checkouts have kept theirs since migration 0055.
ALTER TABLE carts ADD COLUMN redacted_at timestamptz;
