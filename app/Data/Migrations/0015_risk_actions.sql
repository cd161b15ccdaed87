-- What order risk may do in Shopify beyond scoring: hold HIGH orders' fulfillment (off by default), never for a valued
-- customer unless the merchant says so; and the holds, releases and cancellations asked for, as the queue shows them.

-- Defaults: holding is off. A valued customer has at least 5 earlier orders or at least 1,000 earlier spend (the shop's
-- currency): the risk prior already calls 3 orders over 30 days a returning customer, so 5 is clearly past that; 1,000 is
-- many times a typical order in the stores we see (25 to 80), so one large first order does not make a customer valued.
ALTER TABLE risk_settings
    ADD COLUMN hold_high         boolean NOT NULL DEFAULT false,
    ADD COLUMN valued_min_orders integer NOT NULL DEFAULT 5 CHECK (valued_min_orders BETWEEN 1 AND 10000),
    ADD COLUMN valued_min_spend  numeric(14, 2) NOT NULL DEFAULT 1000 CHECK (valued_min_spend > 0),
    ADD COLUMN hold_valued       boolean NOT NULL DEFAULT false;

-- One row per HIGH order that holding applied to, from the score that made it HIGH:
--   to_hold          the scorer decided to hold; the hold job reads the order's fulfillment orders next
--   held             one fulfillment_order_hold call per open fulfillment order is in the outbox (fulfillment_orders)
--   not_held_valued  a valued customer: in the queue, not held (earlier_orders, earlier_spend say why)
--   to_release       a reviewer approved a held order; the hold job reads our holds' ids and queues their release
--   released         release calls are in the outbox (or there was nothing of ours to release)
CREATE TABLE risk_holds (
    shop_id            bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id           bigint NOT NULL,
    state              text NOT NULL CHECK (state IN ('to_hold', 'held', 'not_held_valued', 'to_release', 'released')),
    earlier_orders     integer NOT NULL,
    earlier_spend      numeric(14, 2) NOT NULL,
    fulfillment_orders text[] NOT NULL DEFAULT '{}',
    decided_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);
CREATE INDEX risk_holds_due_idx ON risk_holds (shop_id) WHERE state IN ('to_hold', 'to_release');

-- A fraud decision may cancel the order in Shopify: what the reviewer chose, beside the decision.
ALTER TABLE review_decisions
    ADD COLUMN cancel_refund  text CHECK (cancel_refund IN ('original', 'none')),
    ADD COLUMN cancel_restock boolean,
    ADD COLUMN cancel_notify  boolean;
