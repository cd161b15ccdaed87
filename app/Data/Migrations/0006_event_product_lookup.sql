-- Attribution looks up a bought product's recent events for the buyer on every order webhook.
CREATE INDEX recommendation_events_product_idx ON recommendation_events (shop_id, product_id, occurred_at);
