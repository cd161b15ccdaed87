-- The churn probability and predicted value last queued to a customer's metafields. Until 5 Dec 2026 the metafields were
-- written only when the segment changed, so a customer who stayed "active" while her probability rose from 0.10 to 0.48
-- kept 0.10 in Shopify, and a Flow rule on the metafield never fired. A run now rewrites them when either moved enough
-- (Churn:MetafieldProbabilityStep, Churn:MetafieldValueStep); rows scored before this start empty, so the next run writes
-- every customer's values once.
ALTER TABLE churn_scores ADD COLUMN synced_probability double precision, ADD COLUMN synced_value numeric(14,2);
