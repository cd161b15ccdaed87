-- A shop/redact for a shop the app still holds a working token for: Shopify is asked whether the token still works before
-- the shop is erased (ShopRedactionChecks). Why: a shop/redact body is signed, but the time it was triggered is an unsigned
-- header, so a copy replayed with a fresh time erased a merchant who had uninstalled and installed again more than 48 hours
-- before (until 6 Dec 2026). Shopify revokes the token at an uninstall; a token it still accepts means the app is installed.
-- One row a shop: the request waiting for that answer, gone with the shop.
CREATE TABLE shop_redaction_checks (
  shop_id bigint PRIMARY KEY REFERENCES shops (id) ON DELETE CASCADE,
  delivery_id text NOT NULL,
  triggered_at timestamptz NOT NULL,  -- when the request says it was triggered (X-Shopify-Triggered-At, else received)
  requested_at timestamptz NOT NULL,
  next_at timestamptz NOT NULL,
  tries int NOT NULL DEFAULT 0,
  last_error text
);
