-- The abandonment signal (app/Intent/AbandonmentSignal.cs): an open checkout the purchase-intent model scores high, for a
-- customer who accepts marketing, gets a customer tag and metafield through the outbox; cleared_at when it is no longer
-- open (completed, ordered, or too old). Personal data: declared in app/Intent/IntentFeature.cs, erased with the customer.
CREATE TABLE checkout_signals (
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    checkout_id   bigint NOT NULL,
    customer_id   bigint NOT NULL,
    score         double precision NOT NULL,
    model_version int NOT NULL,
    signalled_at  timestamptz NOT NULL,
    cleared_at    timestamptz,
    PRIMARY KEY (shop_id, checkout_id)
);
CREATE INDEX checkout_signals_customer_idx ON checkout_signals (shop_id, customer_id) WHERE cleared_at IS NULL;
