-- Since API version 2025-01 a customer in a webhook (customers/create and update, and the customer an order or a checkout
-- embeds) carries neither `email_marketing_consent` nor `tags`: consent comes by customers_email_marketing_consent/update,
-- and tags by topics of their own. Until 6 Dec 2026 every such webhook wrote consent and tags as unknown over what the
-- backfill had read, so no customer was "accepting marketing" and the abandonment signal tagged no one. Now an absent
-- field keeps what is stored (tags NULL = never told); marketing_consent_at orders consent updates that come out of order.
ALTER TABLE customers ALTER COLUMN tags DROP NOT NULL, ALTER COLUMN tags DROP DEFAULT;
ALTER TABLE customers ADD COLUMN marketing_consent_at timestamptz;
