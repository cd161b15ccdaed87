-- When a shop's experiment was stopped and started again. While stopped everyone gets the stopped arm, but the orders of
-- visitors exposed before still join their old arm's exposure; the results leave out orders placed during a pause, so a
-- holdout visitor served the model while it was stopped is not counted as the holdout's.
CREATE TABLE experiment_pauses (
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    experiment  text NOT NULL,
    paused_at   timestamptz NOT NULL,
    resumed_at  timestamptz,
    PRIMARY KEY (shop_id, experiment, paused_at)
);
