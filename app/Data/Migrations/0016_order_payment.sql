-- What the payment said about an order, where Shopify gives it (the order's payment details or its sale / authorization
-- transaction): the gateway, the card's AVS and CVV result codes, its BIN and last four digits. The risk features count
-- orders per card (BIN and last four), never the full number, which Shopify does not send.
ALTER TABLE orders
    ADD COLUMN gateway    text,
    ADD COLUMN avs_result text,
    ADD COLUMN cvv_result text,
    ADD COLUMN card_bin   text,
    ADD COLUMN card_last4 text;

CREATE INDEX orders_card_time_idx ON orders (shop_id, card_bin, card_last4, created_at) WHERE card_last4 IS NOT NULL;
