-- Stripe events, once each by id: disputes and early fraud warnings become the order-risk model's labels.
-- charge: the charge the event is about, fetched by a job (its metadata names the order).
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    account     text,
    api_version text NOT NULL,
    livemode    boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    object_id   text,
    charge_id   text,
    charge      jsonb,
    payload     jsonb NOT NULL
);
CREATE INDEX stripe_events_charge_idx ON stripe_events (charge_id);
