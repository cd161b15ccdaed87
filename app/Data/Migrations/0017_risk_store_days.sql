-- The store's usual order as the risk features see it on each day (from the 90 whole days before it), computed once per
-- shop and day by the first batch that needs it: the aggregate over a large store's 90 days dominated each scoring batch.
-- Kept as first computed, so an order's features rebuilt later equal what it was scored with.
CREATE TABLE risk_store_days (
    shop_id bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    day     timestamptz NOT NULL,
    mean    double precision,
    sd      double precision,
    p90     double precision,
    PRIMARY KEY (shop_id, day)
);
