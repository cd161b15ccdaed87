-- The lines each churn run put its customers on (the at-risk, lapsing and lost probabilities, from the store's churn rate
-- of the version it scored with), kept with its counts: the Churn segments page describes each segment by them. Until
-- 7 Dec 2026 it described them by the active version's lines, which a new version moves before its first run has
-- scored, so the page could say "65 % to 79 %" of customers bucketed at 50-70 %. Rows written before keep none, and are
-- described by the active version's lines, as before.
ALTER TABLE churn_segment_days ADD COLUMN lines jsonb;
