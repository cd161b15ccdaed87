-- Shopify's ids are unique across shops: a delivery whose own resource is already held for another shop is a replay.
-- These let the ingest statement check that by id alone.
CREATE INDEX orders_id_idx ON orders (id);
CREATE INDEX customers_id_idx ON customers (id);
CREATE INDEX products_id_idx ON products (id);
CREATE INDEX checkouts_id_idx ON checkouts (id);
CREATE INDEX carts_token_idx ON carts (token);

-- A signed delivery PostgreSQL refused is kept aside with its error; raw_body holds it only when even jsonb refused it.
ALTER TABLE webhook_deliveries ADD COLUMN error text, ADD COLUMN raw_body bytea;

-- Deliveries already stored for shops we do not hold keep no personal data.
UPDATE webhook_deliveries SET body = jsonb_build_object('withheld', 'no shop of ours') WHERE shop_id IS NULL;

-- A storefront event counts once per served item: at most one impression, click and add-to-cart per answer and product.
DELETE FROM recommendation_events e USING recommendation_events f
WHERE e.shop_id = f.shop_id AND e.request_id = f.request_id AND e.product_id = f.product_id AND e.event_type = f.event_type AND e.id > f.id;
CREATE UNIQUE INDEX recommendation_events_once_idx ON recommendation_events (shop_id, request_id, product_id, event_type);
