-- Calls to Shopify that our decisions ask for, written in the decision's transaction and drained by a job.
-- Calls for one resource (resource_key, e.g. an order's GID) run in id order.
CREATE TABLE outbox_messages (
    id              bigserial PRIMARY KEY,
    shop_id         bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    resource_key    text NOT NULL,
    operation       text NOT NULL,
    document        text NOT NULL,
    variables       jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    completed_at    timestamptz,
    failed_at       timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox_messages (next_attempt_at, id) WHERE completed_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_resource_idx ON outbox_messages (shop_id, resource_key, id) WHERE completed_at IS NULL AND failed_at IS NULL;

-- One row per backfill of a shop: its state and progress, for the admin to show.
CREATE TABLE backfill_runs (
    id          bigserial PRIMARY KEY,
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    state       text NOT NULL,
    phase       text,
    rows_done   bigint NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz,
    error       text
);
CREATE INDEX backfill_runs_shop_idx ON backfill_runs (shop_id, id);
