-- The card an order was paid with, as order_transactions/create brings it (its first successful sale or authorization).
-- Why: order webhooks of the pinned API version carry no payment details, so until 5 Dec 2026 a live order's card checks
-- (AVS, CVV) and card windows read as none, while the backfill read them from the orders' transactions: the risk model
-- learnt them from history and never saw them when scoring. Kept here when the transaction comes before its order (the
-- order takes it when it is stored, StoreWriter.ApplyCardsSql), deleted once its order is held (taken, or refused: the order
-- has a card, or was erased), else a week after, or with her erasure.
CREATE TABLE order_cards (
    shop_id        bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id       bigint NOT NULL,
    transaction_id bigint NOT NULL,
    avs_result     text,
    cvv_result     text,
    card_bin       text,
    card_last4     text,
    received_at    timestamptz NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);
CREATE INDEX order_cards_received_idx ON order_cards (received_at);
-- When the order's card came by its transaction's webhook (null: with the order itself, or from the backfill): the version
-- of the order's card. A risk score keeps the version it was computed with (risk_scores.card_version); one that differs
-- was computed without the card, and the order is scored again (RiskQueue.ScoreStillFits, RiskScoringJob.SweepAsync).
ALTER TABLE orders ADD COLUMN card_received_at timestamptz;
CREATE INDEX orders_card_received_idx ON orders (card_received_at) WHERE card_received_at IS NOT NULL;
ALTER TABLE risk_scores ADD COLUMN card_version timestamptz;
