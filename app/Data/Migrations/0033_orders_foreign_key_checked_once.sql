-- Orders' foreign key to their shop, as order lines' (0028): its check ran per order, a locking lookup of the shop row
-- (5-7 us an order alone; two backfill connections share that row lock as a multixact). Every writer of orders already
-- holds the lock once per transaction: a backfill chunk on its shop, a webhook batch through its deliveries' own key.
-- Deleting a shop deletes its orders, as the cascade did.
ALTER TABLE orders DROP CONSTRAINT orders_shop_id_fkey;
CREATE TRIGGER shops_delete_orders AFTER DELETE ON shops
    FOR EACH ROW EXECUTE FUNCTION delete_rows_of_deleted_parent('orders', 'shop_id');
