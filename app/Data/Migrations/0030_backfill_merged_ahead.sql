-- Chunks of the phase merged ahead of the cursor while an earlier chunk was still being merged on another connection
-- (each as the line before its first and its last line, flattened): a resumed run passes over them instead of merging
-- and counting them again.
ALTER TABLE backfill_runs ADD COLUMN merged_ahead bigint[] NOT NULL DEFAULT '{}';
