-- Whether the latest assessment of the order the app queued for Shopify says it is known fraud. Why: a fraud label that
-- comes from outside the review queue (a Stripe early fraud warning or dispute, a Shopify Payments chargeback, a
-- cancellation for fraud) queues the order to be scored again, and the scorer tells Shopify when what the labels say
-- differs from what it was told, even at the same level. Until 6 Dec 2026 such a label reached Shopify only if a later
-- score changed the order's level, so an order scored LOW and then charged back stayed LOW in Shopify (and tagged so).
-- Existing scores: told when a reviewer marked the order as fraud (the verdict sends its own assessment); every other
-- scored order whose labels now say fraud is queued to be scored again, and so told.
ALTER TABLE risk_scores ADD COLUMN told_fraud boolean NOT NULL DEFAULT false;
UPDATE risk_scores s SET told_fraud = true
WHERE EXISTS (SELECT 1 FROM risk_labels l WHERE l.shop_id = s.shop_id AND l.order_id = s.order_id AND l.fraud AND l.source = 'review');
INSERT INTO risk_pending (shop_id, order_id, reason, queued_at)
SELECT s.shop_id, s.order_id, 'fraud label', now() FROM risk_scores s
WHERE NOT s.told_fraud AND EXISTS (SELECT 1 FROM risk_labels l WHERE l.shop_id = s.shop_id AND l.order_id = s.order_id AND l.fraud)
ON CONFLICT (shop_id, order_id) DO NOTHING;
