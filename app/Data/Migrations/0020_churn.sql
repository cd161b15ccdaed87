-- Churn: each customer's latest score from the store's active churn model (app/Churn). segment is what the model says
-- now; synced_segment is the segment whose Shopify tag and metafields were last queued through the outbox (NULL: none
-- yet), and changes counts the queued changes (part of the outbox idempotency keys). Personal data: declared in
-- app/Churn/ChurnExtensions.cs, erased with the customer.
CREATE TABLE churn_scores (
    shop_id            bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    customer_id        bigint NOT NULL,
    model_version      int NOT NULL,
    model_kind         text NOT NULL,
    churn_probability  double precision NOT NULL,
    probability_alive  double precision NOT NULL,
    expected_orders_30 double precision NOT NULL,
    expected_orders_90 double precision NOT NULL,
    expected_orders_365 double precision NOT NULL,
    expected_value_365 numeric(14,2),
    orders             int NOT NULL,
    days_since_last    double precision NOT NULL,
    total_spend        numeric(14,2) NOT NULL,
    yearly_spend       numeric(14,2) NOT NULL,  -- spend so far per year since the first order (at least one year)
    segment            text NOT NULL,
    reasons            jsonb NOT NULL,
    scored_at          timestamptz NOT NULL,
    synced_segment     text,
    changes            int NOT NULL DEFAULT 0,
    PRIMARY KEY (shop_id, customer_id)
);
CREATE INDEX churn_scores_segment_idx ON churn_scores (shop_id, segment, churn_probability DESC);

-- Segment sizes and value at risk per scoring day, for the admin's plot (counts only, no customer).
CREATE TABLE churn_segment_days (
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    day           date NOT NULL,
    segment       text NOT NULL,
    customers     int NOT NULL,
    value_at_risk numeric(14,2) NOT NULL,
    PRIMARY KEY (shop_id, day, segment)
);
