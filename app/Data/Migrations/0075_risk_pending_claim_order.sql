-- The scorer claims a shop's queued orders oldest first (RiskScorer.ScoreBatchAsync). Why an index in that order: with the
-- primary key alone each claim read and sorted every order the shop had queued, and until 5 Dec 2026 joined all of them
-- to the shop's orders before taking its batch: on a sale's burst (18,000 queued) a claim took about 100-175 ms, so the
-- scorer fell further behind the more it had to do (the ingest benchmark's slow passes, 62 s of scoring against 13 s).
CREATE INDEX risk_pending_claim_idx ON risk_pending (shop_id, queued_at);
