-- Stripe per store: a store that takes payments through its own Stripe account connects it, and that account's disputes and
-- early fraud warnings become the store's order-risk labels (source 'stripe').

-- One connection per shop. The key and the signing secret are encrypted with the same Data Protection protector as the
-- shop's Shopify tokens. endpoint_id is the unguessable last segment of /stripe/webhooks/{endpoint_id}: it finds the
-- secret to verify with before the body is read; it authenticates nothing by itself (the signature does).
CREATE TABLE stripe_connections (
    id                 bigserial PRIMARY KEY,
    shop_id            bigint NOT NULL UNIQUE REFERENCES shops(id) ON DELETE CASCADE,
    endpoint_id        text NOT NULL UNIQUE,
    restricted_key_enc text NOT NULL,
    webhook_secret_enc text NOT NULL,
    livemode           boolean NOT NULL,   -- from the key's prefix (rk_live_/sk_live_), shown to the merchant
    connected_at       timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);

-- The app-wide account's events named no store, so none of them can become a store's label: they go with that account.
DROP TABLE stripe_events;

-- Events once each by (connection, Stripe's event id). state: pending until the job has read the charge; then labelled
-- (a risk_labels row was written for order_id), no_label (matched, but the dispute's reason is not fraud) or unmatched
-- (no order could be named without guessing; outcome says why). payload keeps the event's object without its evidence.
CREATE TABLE stripe_events (
    connection_id bigint NOT NULL REFERENCES stripe_connections(id) ON DELETE CASCADE,
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id            text NOT NULL,
    type          text NOT NULL,
    api_version   text NOT NULL,
    livemode      boolean NOT NULL,
    created_at    timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    object_id     text,
    charge_id     text,
    charge        jsonb,
    payload       jsonb NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'labelled', 'no_label', 'unmatched')),
    order_id      bigint,
    matched_by    text,
    outcome       text,              -- why it is unmatched or has no label, in words
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX stripe_events_shop_idx ON stripe_events (shop_id, state, received_at DESC);
