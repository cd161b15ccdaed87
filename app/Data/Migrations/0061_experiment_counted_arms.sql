-- The shares an experiment's results count under since it started (ExperimentStore.SaveAsync): a stop may change the
-- shares without emptying the results, and the next start then counts from itself. NULL: the arms as saved.
ALTER TABLE experiments ADD COLUMN counted_arms jsonb;
