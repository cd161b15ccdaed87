-- Why a pause began: the experiment stopped ('stopped', closed when it starts again), or the merchant turned its block
-- off in the feature's own settings ('block_off': the Cart offers block, closed when turned on again; CartOfferSettingsStore).
-- Either way every arm was served the same then, and the results leave out the orders placed meanwhile
-- (ExperimentResults.Paused). Each cause is opened and closed by its own writer only.
ALTER TABLE experiment_pauses ADD COLUMN cause text NOT NULL DEFAULT 'stopped';
ALTER TABLE experiment_pauses DROP CONSTRAINT experiment_pauses_pkey;
ALTER TABLE experiment_pauses ADD PRIMARY KEY (shop_id, experiment, cause, paused_at);
