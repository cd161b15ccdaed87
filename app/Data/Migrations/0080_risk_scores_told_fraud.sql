-- Whether the latest assessment of the order the app queued for Shopify says it is known fraud. Why: a fraud label that
-- comes from outside the review queue (a Stripe early fraud warning or dispute, a Shopify Payments chargeback, a
-- cancellation for fraud) queues the order to be scored again, and the scorer tells Shopify when what the labels say
-- differs from what it was told, even at the same level. Until 6 Dec 2026 such a label reached Shopify only if a later
-- score changed the order's level, so an order scored LOW and then charged back stayed LOW in Shopify (and tagged so).
-- Existing scores: told when a reviewer marked the order as fraud (that sends the verdict), or when the label was known
-- before the score (the score sent HIGH with it when its level changed; the rest are told at their next score).
ALTER TABLE risk_scores ADD COLUMN told_fraud boolean NOT NULL DEFAULT false;
UPDATE risk_scores s SET told_fraud = true
WHERE EXISTS (SELECT 1 FROM risk_labels l WHERE l.shop_id = s.shop_id AND l.order_id = s.order_id AND l.fraud
                AND (l.source = 'review' OR l.labelled_at <= s.scored_at));
