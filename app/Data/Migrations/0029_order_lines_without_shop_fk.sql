-- Order lines no longer check their shop with a foreign key: the check ran once per line, and in a backfill it cost twice
-- as much as writing the lines (0.5 of 0.7 s for a chunk of 28,739). Every writer of order lines writes them after finding
-- their order for the shop, in a transaction that holds the shop's row as the check did (FOR KEY SHARE): a webhook batch
-- through its deliveries' own foreign key, a backfill chunk explicitly. Deleting a shop deletes its order lines, as the
-- cascade did.
ALTER TABLE order_lines DROP CONSTRAINT order_lines_shop_id_fkey;

CREATE FUNCTION shops_delete_order_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM order_lines WHERE shop_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER shops_delete_order_lines AFTER DELETE ON shops
    FOR EACH ROW EXECUTE FUNCTION shops_delete_order_lines();
