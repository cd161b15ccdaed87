-- Three more foreign keys to the shop whose check ran once per row on the path of every order delivery, as orders' and
-- order lines' did (0028, 0033): customers (written by webhooks and the backfill), the risk queue (written by the
-- order delivery's step) and the risk scores (written by the scorer). Each check is a locking lookup of the shop row,
-- about 11 microseconds a row measured alone (pgbench, nine rows a statement, with and without the key), and every
-- writer of these rows already holds that lock once per transaction: a webhook batch through its deliveries' own key
-- to the shop, a backfill chunk and a scoring run by taking it first. Deleting a shop deletes these rows, as the
-- cascades did.
ALTER TABLE customers DROP CONSTRAINT customers_shop_id_fkey;
ALTER TABLE risk_pending DROP CONSTRAINT risk_pending_shop_id_fkey;
ALTER TABLE risk_scores DROP CONSTRAINT risk_scores_shop_id_fkey;
CREATE TRIGGER shops_delete_customers AFTER DELETE ON shops
    FOR EACH ROW EXECUTE FUNCTION delete_rows_of_deleted_parent('customers', 'shop_id');
CREATE TRIGGER shops_delete_risk_pending AFTER DELETE ON shops
    FOR EACH ROW EXECUTE FUNCTION delete_rows_of_deleted_parent('risk_pending', 'shop_id');
CREATE TRIGGER shops_delete_risk_scores AFTER DELETE ON shops
    FOR EACH ROW EXECUTE FUNCTION delete_rows_of_deleted_parent('risk_scores', 'shop_id');
