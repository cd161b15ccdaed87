-- The review queue also lists an order labelled fraud from outside it (a chargeback, a Stripe early fraud warning) whose
-- goods may still be stopped, at whatever level it was scored (ReviewStore.AwaitingSql): the open scores' index takes
-- those in, so the queue's first condition on the score alone stays an index scan.
DROP INDEX IF EXISTS risk_scores_open_idx;
CREATE INDEX risk_scores_open_idx ON risk_scores (shop_id, order_id) WHERE (level IN ('MEDIUM', 'HIGH') OR told_fraud) AND reviewed_at IS NULL;
