-- A checkout is known by its token. Shopify removed `id` from the checkouts/create and checkouts/update webhooks in API
-- version 2026-04 (the app pins 2026-07), and `checkout_id` from the order webhooks, which name a checkout by
-- `checkout_token`. Until 6 Dec 2026 every checkout delivery of the pinned version was refused as malformed (400).
-- A row without a token cannot be told from any other (none comes from Shopify); two rows of one token keep the later.
DELETE FROM checkouts WHERE token IS NULL;
DELETE FROM checkouts a USING checkouts b
WHERE a.shop_id = b.shop_id AND a.token = b.token
  AND (coalesce(a.updated_at, '-infinity'), a.id) < (coalesce(b.updated_at, '-infinity'), b.id);

ALTER TABLE checkout_lines ADD COLUMN checkout_token text;
UPDATE checkout_lines l SET checkout_token = k.token FROM checkouts k WHERE k.shop_id = l.shop_id AND k.id = l.checkout_id;
ALTER TABLE checkout_lines DROP CONSTRAINT checkout_lines_pkey, DROP CONSTRAINT checkout_lines_shop_id_checkout_id_fkey;
DELETE FROM checkout_lines WHERE checkout_token IS NULL;

-- A signal whose checkout is gone was never cleared (the sweep finds it through its checkout); it goes with it.
ALTER TABLE checkout_signals ADD COLUMN checkout_token text;
UPDATE checkout_signals s SET checkout_token = k.token FROM checkouts k WHERE k.shop_id = s.shop_id AND k.id = s.checkout_id;
DELETE FROM checkout_signals WHERE checkout_token IS NULL;
ALTER TABLE checkout_signals DROP CONSTRAINT checkout_signals_pkey, DROP COLUMN checkout_id,
  ALTER COLUMN checkout_token SET NOT NULL, ADD PRIMARY KEY (shop_id, checkout_token);

DROP INDEX checkouts_id_idx;
ALTER TABLE checkouts DROP CONSTRAINT checkouts_pkey, DROP COLUMN id, ALTER COLUMN token SET NOT NULL,
  ADD PRIMARY KEY (shop_id, token);
-- Tokens are unique across shops: a checkout already held for another shop means a signed body replayed naming the wrong
-- shop (the ingest statement checks by token alone, as carts_token_idx lets it for carts).
CREATE INDEX checkouts_token_idx ON checkouts (token);

ALTER TABLE checkout_lines DROP COLUMN checkout_id, ALTER COLUMN checkout_token SET NOT NULL,
  ADD PRIMARY KEY (shop_id, checkout_token, line_key),
  ADD FOREIGN KEY (shop_id, checkout_token) REFERENCES checkouts (shop_id, token) ON DELETE CASCADE;
