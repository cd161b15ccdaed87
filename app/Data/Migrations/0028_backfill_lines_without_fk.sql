-- Staged lines no longer check their run with a foreign key: the check ran once per line, and for the whole Online Retail
-- set it took as long as the COPY itself. The staging transaction locks its run once instead (FOR KEY SHARE, the lock the
-- check took per line), so a run cannot be deleted while its lines are staged; deleting a run (with its shop) deletes its
-- lines, as the cascade did.
ALTER TABLE backfill_lines DROP CONSTRAINT backfill_lines_run_id_fkey;

CREATE FUNCTION backfill_runs_delete_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM backfill_lines WHERE run_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER backfill_runs_delete_lines AFTER DELETE ON backfill_runs
    FOR EACH ROW EXECUTE FUNCTION backfill_runs_delete_lines();
