-- Orders of shoppers who were in an experiment, joined in the order's own transaction: the holdout comparison's outcomes.
-- The exposure is the shopper's latest decision in the 30 days before the order; its arm and its shopper key are kept.
CREATE TABLE experiment_outcomes (
    shop_id      bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    experiment   text NOT NULL,
    order_id     bigint NOT NULL,
    arm          text NOT NULL,
    visitor_hash text,
    customer_id  bigint,
    revenue      numeric(14,2) NOT NULL,
    ordered_at   timestamptz NOT NULL,
    PRIMARY KEY (shop_id, experiment, order_id)
);
CREATE INDEX experiment_outcomes_time_idx ON experiment_outcomes (shop_id, experiment, ordered_at);
CREATE INDEX recommendation_decisions_visitor_idx ON recommendation_decisions (shop_id, visitor_hash, decided_at) WHERE visitor_hash IS NOT NULL;
CREATE INDEX recommendation_decisions_customer_idx ON recommendation_decisions (shop_id, customer_id, decided_at) WHERE customer_id IS NOT NULL;
CREATE INDEX recommendation_events_time_idx ON recommendation_events (shop_id, occurred_at);

-- A merchant's switch per AI feature (on, or off showing nothing or store bestsellers), and every change to it.
CREATE TABLE ai_feature_switches (
    shop_id    bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    feature    text NOT NULL,
    enabled    boolean NOT NULL,
    when_off   text NOT NULL CHECK (when_off IN ('nothing', 'bestsellers')),
    updated_at timestamptz NOT NULL,
    updated_by text,
    PRIMARY KEY (shop_id, feature)
);
CREATE TABLE ai_feature_switch_history (
    id         bigserial PRIMARY KEY,
    shop_id    bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    feature    text NOT NULL,
    enabled    boolean NOT NULL,
    when_off   text NOT NULL,
    changed_at timestamptz NOT NULL,
    changed_by text
);
CREATE INDEX ai_feature_switch_history_idx ON ai_feature_switch_history (shop_id, id);

-- The short notice shoppers see behind "Why am I seeing this?" in the theme blocks, written by the merchant.
CREATE TABLE shopper_notices (
    shop_id    bigint PRIMARY KEY REFERENCES shops(id) ON DELETE CASCADE,
    text       text NOT NULL CHECK (length(text) <= 280),
    updated_at timestamptz NOT NULL,
    updated_by text
);
