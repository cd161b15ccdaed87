-- The score each order was given before any fraud label was known of it, by which version and when: a chargeback, a
-- Stripe warning or a fraud cancellation scores the order again (to tell Shopify and hold it), which rewrote its score,
-- version and time. The performance on fresh outcomes reads the orders a version scored 30 to 90 days ago, and a
-- chargeback comes 30 to 90 days after its order, so until 7 Dec 2026 most charged-back orders left that window, or came
-- back in it under the version active when the label came; the threshold backtest read the later score too.
-- Why no UPDATE filling them for the rows there: it would rewrite the table under the ALTER's lock, stalling ingestion and
-- scoring; a row without them reads as its own score, version and time (FreshLabels, RiskBacktest), and its next scoring
-- fills them so (RiskScorer).
ALTER TABLE risk_scores
  ADD COLUMN unlabelled_score float8,
  ADD COLUMN unlabelled_model_version int,
  ADD COLUMN unlabelled_scored_at timestamptz;
