-- app/uninstalled is asked about too (ShopTokenChecks): its body is the shop's own object, the same at every uninstall, and
-- the time it was triggered is an unsigned header, so a signed copy sent again with a fresh time disconnected an installed
-- shop (tokens dropped, blocks and ingestion stopped), after which a replayed shop/redact erased it at once (until 6 Dec
-- 2026). Shopify revokes the token at an uninstall: a shop whose token it still accepts is installed. One row a shop and
-- request topic.
ALTER TABLE shop_redaction_checks RENAME TO shop_token_checks;
ALTER TABLE shop_token_checks ADD COLUMN topic text NOT NULL DEFAULT 'shop/redact';
ALTER TABLE shop_token_checks ALTER COLUMN topic DROP DEFAULT;
ALTER TABLE shop_token_checks DROP CONSTRAINT shop_redaction_checks_pkey;
ALTER TABLE shop_token_checks ADD PRIMARY KEY (shop_id, topic);
