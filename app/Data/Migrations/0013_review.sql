-- The review queue: which staff user has an order open, and what staff decided about it.

-- One reviewer per order at a time. A lock past expires_at is free: the next reviewer to open the order takes it.
CREATE TABLE review_locks (
    shop_id    bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id   bigint NOT NULL,
    holder     text NOT NULL,         -- the staff user, as AdminUser names them ("staff user 42")
    taken_at   timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);
CREATE INDEX review_locks_holder_idx ON review_locks (shop_id, holder);

-- Every decision, kept: approve and fraud also write a risk_labels row (source 'review'); a note is only recorded.
-- The note is the staff's free text about the customer's order, so customers/redact erases it.
CREATE TABLE review_decisions (
    id         bigserial PRIMARY KEY,
    shop_id    bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id   bigint NOT NULL,
    decision   text NOT NULL CHECK (decision IN ('approve', 'fraud', 'note')),
    note       text CHECK (length(note) <= 2000),
    decided_by text,
    decided_at timestamptz NOT NULL
);
CREATE INDEX review_decisions_order_idx ON review_decisions (shop_id, order_id, decided_at);
