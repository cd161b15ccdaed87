-- The outbox's foreign key to its shop, checked for every queued call: risk scoring queues two calls an order, so a
-- scoring run of 500 orders took the shop's lock a thousand times, about 11 microseconds each (0041). Each statement that
-- queues calls now takes that lock itself, once (OutboxWriter), and queues nothing for a shop already deleted; deleting a
-- shop deletes its calls, as the cascade did.
ALTER TABLE outbox_messages DROP CONSTRAINT outbox_messages_shop_id_fkey;
CREATE TRIGGER shops_delete_outbox_messages AFTER DELETE ON shops
    FOR EACH ROW EXECUTE FUNCTION delete_rows_of_deleted_parent('outbox_messages', 'shop_id');
