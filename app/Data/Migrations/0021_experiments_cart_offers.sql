-- Experiments, one mechanism for every feature (app/Experiments): a shop's settings for each experiment a feature
-- declares (arms and shares, primary metric, guardrails, running or stopped), who was exposed to which arm, and the
-- outcomes joined from orders (experiment_outcomes, 0011) now with margin, discount and the action the cart carried.
CREATE TABLE experiments (
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    key         text NOT NULL,
    arms        jsonb NOT NULL,      -- [{"name":"control","share":0.2}, ...] shares summing to 1
    metric      text NOT NULL,       -- conversion | revenue | margin (per exposed unit)
    guardrails  jsonb NOT NULL,      -- {"maxRefundRate":0.1,"maxAverageDiscount":0.15}
    status      text NOT NULL,       -- running | stopped
    started_at  timestamptz,
    stopped_at  timestamptz,
    updated_at  timestamptz NOT NULL,
    updated_by  text,
    PRIMARY KEY (shop_id, key)
);

-- The first time a unit (a visitor "v:hash", else a customer "c:id") actually saw an arm of an experiment. covariate:
-- the unit's revenue in the 30 days before that moment (CUPED), when the unit is a known customer.
CREATE TABLE experiment_exposures (
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    experiment  text NOT NULL,
    unit        text NOT NULL,
    arm         text NOT NULL,
    customer_id bigint,
    covariate   numeric(14,2) NOT NULL DEFAULT 0,
    first_at    timestamptz NOT NULL,
    PRIMARY KEY (shop_id, experiment, unit)
);
CREATE INDEX experiment_exposures_time_idx ON experiment_exposures (shop_id, experiment, first_at);
CREATE INDEX experiment_exposures_customer_idx ON experiment_exposures (shop_id, customer_id, first_at) WHERE customer_id IS NOT NULL;

ALTER TABLE experiment_outcomes
    ADD COLUMN unit     text,
    ADD COLUMN margin   numeric(14,2),
    ADD COLUMN discount numeric(14,2) NOT NULL DEFAULT 0,
    ADD COLUMN action   text;

-- Cart offers (app/CartOffers): the merchant's settings, the pool of single-use discount codes, and every decision.
CREATE TABLE cart_offer_settings (
    shop_id    bigint PRIMARY KEY REFERENCES shops(id) ON DELETE CASCADE,
    settings   jsonb NOT NULL,
    version    int NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text
);

-- A code is created through the outbox (state creating), ready once Shopify has it, handed out to one cart, then used by
-- an order or left to expire. amount: the discount the cart would get, counted against the daily budget when handed out.
CREATE TABLE discount_codes (
    shop_id        bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    code           text NOT NULL,
    percent        numeric(5,2) NOT NULL,
    state          text NOT NULL,   -- creating | ready | handed_out | used | expired
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    cart_token     text,
    visitor_hash   text,
    decision_id    text,
    amount         numeric(14,2),
    handed_out_at  timestamptz,
    order_id       bigint,
    used_at        timestamptz,
    PRIMARY KEY (shop_id, code)
);
CREATE UNIQUE INDEX discount_codes_cart_idx ON discount_codes (shop_id, cart_token) WHERE cart_token IS NOT NULL;
CREATE INDEX discount_codes_ready_idx ON discount_codes (shop_id, state, expires_at);

CREATE TABLE cart_offer_decisions (
    shop_id         bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    decision_id     text NOT NULL,
    cart_token      text,
    visitor_hash    text,
    customer_id     bigint,
    arm             text NOT NULL,
    action          text NOT NULL,   -- nothing | nudge | nudge_upsell | offer
    explore         boolean NOT NULL,
    intent          double precision,
    intent_version  int,
    inputs          jsonb NOT NULL,
    expected        jsonb NOT NULL,  -- expected incremental margin per action considered
    reasons         jsonb NOT NULL,
    code            text,
    latency_ms      real NOT NULL,
    decided_at      timestamptz NOT NULL,
    PRIMARY KEY (shop_id, decision_id)
);
CREATE INDEX cart_offer_decisions_time_idx ON cart_offer_decisions (shop_id, decided_at);
