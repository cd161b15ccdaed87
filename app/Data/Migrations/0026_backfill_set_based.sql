-- Backfills stage each bulk JSONL line as it came (COPY into jsonb, nothing parsed by the app) and PostgreSQL maps the
-- lines to store rows in the set-based merge (StoreMerge): a child's parent id is computed once, when the line is staged.
-- Why unlogged: staged lines are written once and read once, and their WAL cost as much again as the COPY. A PostgreSQL
-- crash empties the table; the backfill then finds its staged phase without lines and stages it again.

-- A Shopify global id's number, as Gid.Id reads it ("gid://shopify/Order/123" -> 123; a query string dropped).
CREATE FUNCTION bulk_id(gid text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT split_part(split_part(gid, '/', 5), '?', 1)::bigint $$;

-- Tags as the webhook rows keep them: one comma-separated string (GraphQL gives a list).
CREATE FUNCTION bulk_tags(tags jsonb) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE jsonb_typeof(tags)
    WHEN 'array' THEN (SELECT coalesce(string_agg(t, ', ' ORDER BY n), '') FROM jsonb_array_elements_text(tags) WITH ORDINALITY e(t, n))
    WHEN 'string' THEN tags #>> '{}'
    ELSE '' END $$;

-- The last four digits of a masked card number ("•••• •••• •••• 4242"), or null.
CREATE FUNCTION bulk_last4(masked text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN length(d) >= 4 THEN right(d, 4) END FROM (SELECT regexp_replace(masked, '[^0-9]', '', 'g') AS d) x $$;

-- Recreated unlogged (an in-flight run stages its phase again, from the same bulk operation while Shopify still serves it).
UPDATE backfill_runs SET staged_lines = NULL, phase_cursor = 0 WHERE staged_lines IS NOT NULL;
DROP TABLE backfill_lines;
CREATE UNLOGGED TABLE backfill_lines (
    run_id    bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    phase     text   NOT NULL,
    line_no   bigint NOT NULL,
    body      jsonb  NOT NULL,
    parent_id bigint GENERATED ALWAYS AS (bulk_id(body ->> '__parentId')) STORED
);
-- Why no primary key: two small indexes serve every read (a chunk of parents by line; a parent's children), and each
-- index costs the COPY time.
CREATE INDEX backfill_lines_children_idx ON backfill_lines (run_id, phase, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX backfill_lines_parents_idx ON backfill_lines (run_id, phase, line_no) WHERE parent_id IS NULL;
