-- When the install sweep last asked Shopify for the shop's settings (migration 0092): a shop Shopify does not answer for
-- (frozen, its token lost) is asked again an hour later, after the others, and two sweeps never ask for the same shop at
-- once. IF NOT EXISTS: a development database briefly had it from an earlier 0092.
ALTER TABLE shops ADD COLUMN IF NOT EXISTS settings_asked_at timestamptz;
