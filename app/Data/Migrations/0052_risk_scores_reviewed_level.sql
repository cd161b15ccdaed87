-- The level a reviewer decided an order at: a later score above it (approved at MEDIUM, then HIGH after an edit) brings the
-- order back to the review queue; one at or below it (HIGH, MEDIUM, HIGH again) does not (RiskScorer's upsert).
ALTER TABLE risk_scores ADD COLUMN reviewed_level text;
UPDATE risk_scores SET reviewed_level = level WHERE reviewed_at IS NOT NULL;
