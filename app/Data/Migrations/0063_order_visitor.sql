-- The storefront visitor an order came from (the salted hash of the visitor id our blocks set as a cart attribute, as
-- experiment exposures and storefront events hold it). A guest's orders are her only tie to her storefront events,
-- exposures and answers: customers/redact and data requests follow it (ComplianceService, migration 0063).
ALTER TABLE orders ADD COLUMN visitor_hash text;
