-- Two foreign keys whose check ran once per row, and cost as much as the writes they guarded: staged backfill lines to
-- their run (as long as the staging COPY itself) and order lines to their shop (0.5 of a backfill chunk's 0.7 s for
-- 28,739 lines). Every writer now takes, once per transaction, the lock the check took per row (FOR KEY SHARE): the
-- staging on its run, a backfill chunk on its shop, a webhook batch through its deliveries' own key to the shop. So a
-- run or shop cannot be deleted under them, and deleting one deletes these rows, as the cascades did.
ALTER TABLE backfill_lines DROP CONSTRAINT backfill_lines_run_id_fkey;
ALTER TABLE order_lines DROP CONSTRAINT order_lines_shop_id_fkey;

-- One trigger function for both: deletes the rows of TG_ARGV[0] whose column TG_ARGV[1] holds the deleted row's id.
CREATE FUNCTION delete_rows_of_deleted_parent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM %I WHERE %I = $1', TG_ARGV[0], TG_ARGV[1]) USING OLD.id;
    RETURN NULL;
END $$;
CREATE TRIGGER backfill_runs_delete_lines AFTER DELETE ON backfill_runs
    FOR EACH ROW EXECUTE FUNCTION delete_rows_of_deleted_parent('backfill_lines', 'run_id');
CREATE TRIGGER shops_delete_order_lines AFTER DELETE ON shops
    FOR EACH ROW EXECUTE FUNCTION delete_rows_of_deleted_parent('order_lines', 'shop_id');
