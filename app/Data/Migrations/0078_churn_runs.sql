-- The moment each churn run read the store's histories. Two runs of one shop at once (the daily sweep beside a run queued
-- by a new version) each read the store and then write under the shop's lock; the one that read first could write last,
-- and its older segments would move every customer the other had just moved back, tags and metafields with them. A run
-- whose read is older than the last one written now leaves without writing (ChurnScoringJob.ScoreShopAsync).
ALTER TABLE churn_segment_days ADD COLUMN read_at timestamptz;
