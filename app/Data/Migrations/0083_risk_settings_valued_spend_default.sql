-- The earlier spend that makes a customer valued, when the merchant has not set it, is 1,000 dollars' worth in the shop's
-- currency at a round figure (RiskHoldSettings.DefaultSpend): null here. Until 6 Dec 2026 it was 1,000 in every currency,
-- so one ordinary earlier order made a yen store's buyer a valued customer whose HIGH orders were not held. A row whose
-- valued-customer settings still stand at the old defaults (saved with the thresholds, or with holds turned on as the form
-- showed them) takes the new one; in a dollar store that is the same 1,000.
ALTER TABLE risk_settings ALTER COLUMN valued_min_spend DROP NOT NULL, ALTER COLUMN valued_min_spend DROP DEFAULT;
UPDATE risk_settings SET valued_min_spend = NULL
WHERE valued_min_spend = 1000 AND valued_min_orders = 5 AND NOT hold_valued;
