-- Order risk: orders waiting to be scored, their scores with reasons, and fraud labels with where and when they came from.

-- Queued in the delivery's own transaction (orders/create, orders/updated); the scorer deletes a row in the transaction
-- that records its score, so an order acknowledged to Shopify is scored exactly once even if a process dies mid-way.
CREATE TABLE risk_pending (
    shop_id   bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id  bigint NOT NULL,
    reason    text NOT NULL,
    queued_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);

-- One row per order: the latest score. features holds the inputs by name exactly as the model saw them.
CREATE TABLE risk_scores (
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id      bigint NOT NULL,
    score         double precision NOT NULL,
    level         text NOT NULL CHECK (level IN ('LOW', 'MEDIUM', 'HIGH')),
    model_version integer,               -- null: the rule prior alone
    prior_weight  double precision NOT NULL,
    reasons       jsonb NOT NULL,
    features      jsonb NOT NULL,
    queued_at     timestamptz NOT NULL,
    scored_at     timestamptz NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);
CREATE INDEX risk_scores_level_idx ON risk_scores (shop_id, level, scored_at DESC);

-- A label says an order was or was not fraud, from one source (review, cancellation, dispute, Stripe), known from
-- labelled_at: features and training use only labels known before the moment they describe.
CREATE TABLE risk_labels (
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id    bigint NOT NULL,
    source      text NOT NULL,
    fraud       boolean NOT NULL,
    labelled_at timestamptz NOT NULL,
    detail      text,
    PRIMARY KEY (shop_id, order_id, source)
);
CREATE INDEX risk_labels_known_idx ON risk_labels (shop_id, labelled_at);

-- The merchant's thresholds; a shop without a row uses the defaults.
CREATE TABLE risk_settings (
    shop_id     bigint PRIMARY KEY REFERENCES shops(id) ON DELETE CASCADE,
    medium_from double precision NOT NULL,
    high_from   double precision NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text,
    CHECK (0 < medium_from AND medium_from < high_from AND high_from < 1)
);

-- The feature builder's windows look back from each order by customer, email and browser address.
CREATE INDEX orders_customer_time_idx ON orders (shop_id, customer_id, created_at) WHERE customer_id IS NOT NULL;
CREATE INDEX orders_email_time_idx ON orders (shop_id, lower(email), created_at) WHERE email IS NOT NULL;
CREATE INDEX orders_ip_time_idx ON orders (shop_id, browser_ip, created_at) WHERE browser_ip IS NOT NULL;
