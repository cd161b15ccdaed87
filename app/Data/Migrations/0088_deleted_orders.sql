-- Orders Shopify deleted (orders/delete: a test order, or a cancelled or archived one the merchant removed). The order and
-- what hangs on it (lines, refunds, its card, its score and its place in the review queue, its experiment outcome and
-- recommendation credit) are deleted; its id stays here so that a delivery of it that comes later (Shopify sends webhooks
-- in no set order, and retries them for hours) or an import whose snapshot still held it does not bring it back. Ids only;
-- erased with the shop.
CREATE TABLE deleted_orders (
    shop_id    bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id   bigint NOT NULL,
    deleted_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);

-- A deleted order's experiment outcomes and upsell credit are found by the order (neither key starts with it).
CREATE INDEX experiment_outcomes_order_idx ON experiment_outcomes (shop_id, order_id);
CREATE INDEX recommendation_attributions_order_idx ON recommendation_attributions (shop_id, order_id);
