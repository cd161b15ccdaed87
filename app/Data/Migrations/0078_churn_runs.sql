-- Each churn run takes a ticket before it reads anything (the sequence churn_runs), and its segment counts keep it. Two runs
-- of one shop at once (the daily sweep beside a run queued by a new version) each read the store and then write under the
-- shop's lock; the one that began first could write last, and its older segments would move every customer the other had
-- just moved back, tags and metafields with them. A run whose ticket is older than the last one written now leaves without
-- writing (ChurnScoringJob.ScoreShopAsync). Why a sequence and not a time: instances' clocks differ, and the demo's moves.
CREATE SEQUENCE churn_runs;
ALTER TABLE churn_segment_days ADD COLUMN run bigint;
