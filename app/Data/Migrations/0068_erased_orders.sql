-- Orders a customers/redact listed that we did not hold then (a guest's, not yet imported or delivered): when one arrives
-- later, by webhook or backfill, it is written without its personal fields, as an erased order held then is
-- (orders.redacted_at). Until 5 Dec 2026 only her orders by customer id were kept erased, and a guest's order that came
-- after her erasure was stored with her email, browser address and card. Ids only; erased with the shop.
CREATE TABLE erased_orders (
    shop_id   bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id  bigint NOT NULL,
    erased_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);
