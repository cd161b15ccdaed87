-- Every phase's bulk operation is started at once and each phase's file staged as soon as it is ready (while earlier
-- phases merge), so a run holds a bulk operation and a staged line count per phase: {"phase": value}.
ALTER TABLE backfill_runs ADD COLUMN bulk_operations jsonb NOT NULL DEFAULT '{}', ADD COLUMN staged jsonb NOT NULL DEFAULT '{}';
UPDATE backfill_runs SET bulk_operations = jsonb_build_object(phase, bulk_operation_id) WHERE phase IS NOT NULL AND bulk_operation_id IS NOT NULL;
UPDATE backfill_runs SET staged = jsonb_build_object(phase, staged_lines) WHERE phase IS NOT NULL AND staged_lines IS NOT NULL;
ALTER TABLE backfill_runs DROP COLUMN bulk_operation_id, DROP COLUMN staged_lines;
