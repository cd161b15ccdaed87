-- The version of the order a score was computed from (orders.updated_at as the scorer claimed it), beside the card's
-- (card_version, migration 0074). Why: an edit whose transaction commits just after the scorer's own check (RiskScorer's
-- requeue) met the order's queue row still claimed and queued nothing; until 5 Dec 2026 the order kept the score of what
-- it no longer was. The risk sweep now queues again, each minute, an order scored in the last ten minutes whose version
-- moved and whose score no longer fits it (RiskQueue.ScoredWithout), by the scores' time.
ALTER TABLE risk_scores ADD COLUMN order_version timestamptz;
CREATE INDEX risk_scores_scored_idx ON risk_scores (scored_at);
