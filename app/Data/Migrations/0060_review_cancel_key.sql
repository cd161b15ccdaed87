-- Each fraud-and-cancel decision names the Shopify call that carries it out (ReviewStore.DecideAsync): a decision made
-- after an earlier cancellation failed gets a call of its own, and the order's history shows each decision's call.
-- Decisions before this change all shared the order's one call.
ALTER TABLE review_decisions ADD COLUMN cancel_key text;
UPDATE review_decisions SET cancel_key = 'order-cancel:' || order_id WHERE cancel_refund IS NOT NULL;
