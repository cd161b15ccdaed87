-- Backfills stream Shopify's bulk JSONL into a staging table (COPY) instead of memory, and resume after a crash:
-- the current phase, its bulk operation, whether its file is fully staged, and how many parent objects are applied.
ALTER TABLE backfill_runs
    ADD COLUMN bulk_operation_id text,
    ADD COLUMN staged_lines      bigint,
    ADD COLUMN phase_cursor      bigint NOT NULL DEFAULT 0,
    ADD COLUMN phases_done       text[] NOT NULL DEFAULT '{}',
    ADD COLUMN attempts          integer NOT NULL DEFAULT 1;

-- One row per JSONL line of the phase being imported; deleted when the phase is applied.
-- Why logged: an unlogged table is emptied by a PostgreSQL crash, and a staged phase would then apply nothing.
CREATE TABLE backfill_lines (
    run_id     bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    phase      text   NOT NULL,
    line_no    bigint NOT NULL,
    parent_gid text,
    gid        text,
    body       jsonb  NOT NULL,
    PRIMARY KEY (run_id, phase, line_no)
);
CREATE INDEX backfill_lines_parent_idx ON backfill_lines (run_id, phase, parent_gid) WHERE parent_gid IS NOT NULL;
