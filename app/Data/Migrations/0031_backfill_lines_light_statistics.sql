-- The staged lines are analyzed once per staged phase, for the merge's plans, which need only how lines spread over runs,
-- phases, line numbers and parents. The default sample (30,000 rows, each body's jsonb compared for statistics no plan
-- uses) took 0.3-0.4 s per phase of a large store; 3,000 rows without the bodies take about 0.02 s.
ALTER TABLE backfill_lines
    ALTER COLUMN body SET STATISTICS 0,
    ALTER COLUMN run_id SET STATISTICS 10,
    ALTER COLUMN phase SET STATISTICS 10,
    ALTER COLUMN line_no SET STATISTICS 10,
    ALTER COLUMN parent_id SET STATISTICS 10;
