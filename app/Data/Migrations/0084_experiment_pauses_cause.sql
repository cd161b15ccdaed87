-- Why a pause began: the experiment stopped ('stopped', closed when it starts again), or the merchant turned its block
-- off in the feature's own settings ('block_off': the Cart offers block, closed when turned on again; CartOfferSettingsStore).
-- Either way every arm was served the same then, and the results leave out the orders placed meanwhile
-- (ExperimentResults.Paused). Each cause is opened and closed by its own writer only.
ALTER TABLE experiment_pauses ADD COLUMN cause text NOT NULL DEFAULT 'stopped';
ALTER TABLE experiment_pauses DROP CONSTRAINT experiment_pauses_pkey;
ALTER TABLE experiment_pauses ADD PRIMARY KEY (shop_id, experiment, cause, paused_at);
-- A block already off as this runs: its pause begins when it was turned off (its settings' last save), so its orders until
-- it is turned on again are left out too. One never turned on has no exposures, and its pause leaves nothing out.
INSERT INTO experiment_pauses (shop_id, experiment, cause, paused_at)
SELECT shop_id, 'cart-offers', 'block_off', updated_at FROM cart_offer_settings WHERE NOT coalesce((settings->>'enabled')::boolean, false)
ON CONFLICT DO NOTHING;
