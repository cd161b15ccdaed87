-- A customer Shopify deleted (customers/delete: one without orders, or one merged into another, whose orders move to the
-- customer kept). Her row is emptied and marked here, not as erased (redacted_at): an erasure's rules also empty the orders
-- and refunds that name its customer, and a merged customer's orders belong to the customer kept. No model scores, tags or
-- signals a deleted customer, and a late delivery of her does not bring her back.
ALTER TABLE customers ADD COLUMN deleted_at timestamptz;
