-- Whose erasure each erased order came under (ComplianceService, StorePersonalData), and every order an erasure covered,
-- held or not. Why: an erased order that arrives later with its cart token (a webhook after the import, which brings none)
-- leads to a cart, and to the cart offers' answers, codes and visitor ids on it, that her erasure could not find; the
-- order's arrival queues a pass of her erasure over them (SegmentRows.ErasedTokensFor), which needs her customer id, and a
-- guest's order carries none. Rows written before this migration have none: their late carts are emptied but queue no pass.
ALTER TABLE erased_orders ADD COLUMN customer_id bigint;
