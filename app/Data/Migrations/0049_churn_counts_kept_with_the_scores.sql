-- The churn page counted every segment's customers and value at risk from the scores on each visit (176 ms for a store of
-- 200,000 scored customers) and sorted all of a segment's scores to show its first hundred (88 ms; 231 ms for all
-- segments). The page now reads the counts the scoring run writes beside the scores (churn_segment_days, every segment a
-- row, with when the run scored), and each segment's customers down an index in the page's order.
ALTER TABLE churn_segment_days ADD COLUMN scored_at timestamptz;
UPDATE churn_segment_days d SET scored_at = m.scored_at
FROM (SELECT shop_id, max(scored_at) AS scored_at FROM churn_scores GROUP BY shop_id) m
WHERE d.shop_id = m.shop_id AND d.day = (SELECT max(day) FROM churn_segment_days x WHERE x.shop_id = d.shop_id);
DROP INDEX churn_scores_segment_idx;
CREATE INDEX churn_scores_at_stake_idx ON churn_scores (shop_id, segment, (churn_probability * yearly_spend) DESC, customer_id);
