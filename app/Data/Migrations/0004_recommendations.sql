-- Model registry: every trained model with its window, parameters, held-out metrics and status.
CREATE TABLE models (
    id            bigserial PRIMARY KEY,
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    kind          text NOT NULL,
    version       integer NOT NULL,
    status        text NOT NULL CHECK (status IN ('candidate', 'active', 'retired')),
    status_reason text,
    data_from     timestamptz,
    data_to       timestamptz,
    parameters    jsonb NOT NULL,
    metrics       jsonb NOT NULL,
    artifact      bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    activated_at  timestamptz,
    UNIQUE (shop_id, kind, version)
);
CREATE UNIQUE INDEX models_one_active_idx ON models (shop_id, kind) WHERE status = 'active';

CREATE TABLE training_runs (
    id            bigserial PRIMARY KEY,
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    kind          text NOT NULL,
    trigger       text NOT NULL,
    state         text NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    rows          bigint,
    parameters    jsonb,
    metrics       jsonb,
    model_version integer,
    error         text
);
CREATE INDEX training_runs_shop_idx ON training_runs (shop_id, id);

-- Business rules per shop (current) and every change to them.
CREATE TABLE recommendation_rules (
    shop_id    bigint PRIMARY KEY REFERENCES shops(id) ON DELETE CASCADE,
    version    integer NOT NULL,
    rules      jsonb NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE recommendation_rules_history (
    id         bigserial PRIMARY KEY,
    shop_id    bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    version    integer NOT NULL,
    rules      jsonb NOT NULL,
    changed_at timestamptz NOT NULL,
    changed_by text
);

-- Collection membership (from the backfill), for the collection blocklist.
CREATE TABLE product_collections (
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    product_id    bigint NOT NULL,
    collection_id bigint NOT NULL,
    PRIMARY KEY (shop_id, product_id, collection_id)
);

-- What the storefront reported: impressions, clicks, add-to-carts. The visitor is a salted hash.
CREATE TABLE recommendation_events (
    id           bigserial PRIMARY KEY,
    shop_id      bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    event_type   text NOT NULL,
    request_id   text,
    visitor_hash text,
    customer_id  bigint,
    product_id   bigint NOT NULL,
    variant_id   bigint,
    placement    text,
    position     integer,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX recommendation_events_visitor_idx ON recommendation_events (shop_id, visitor_hash, occurred_at);
CREATE INDEX recommendation_events_customer_idx ON recommendation_events (shop_id, customer_id, occurred_at);

-- Every answer served: request id, model version, arm, hashed inputs, output, latency.
CREATE TABLE recommendation_decisions (
    request_id     text PRIMARY KEY,
    shop_id        bigint NOT NULL,
    placement      text NOT NULL,
    path           text NOT NULL,
    model_version  integer,
    experiment_arm text NOT NULL,
    visitor_hash   text,
    customer_id    bigint,
    input_products bigint[] NOT NULL,
    output_products bigint[] NOT NULL,
    latency_ms     real NOT NULL,
    decided_at     timestamptz NOT NULL
);
CREATE INDEX recommendation_decisions_shop_idx ON recommendation_decisions (shop_id, decided_at);

-- Order lines bought after the product was recommended to that visitor or customer (7-day window).
CREATE TABLE recommendation_attributions (
    shop_id        bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    line_id        bigint NOT NULL,
    order_id       bigint NOT NULL,
    product_id     bigint NOT NULL,
    request_id     text,
    event_type     text NOT NULL,
    model_version  integer,
    experiment_arm text,
    revenue        numeric(14,2),
    attributed_at  timestamptz NOT NULL,
    PRIMARY KEY (shop_id, line_id)
);
