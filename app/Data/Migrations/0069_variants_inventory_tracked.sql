-- Whether Shopify tracks a variant's stock: stock it does not track (made to order, digital) has a quantity of 0 and is
-- always for sale. Products webhooks no longer carry it (API 2024-07), so it comes from the backfill's inventoryItem.tracked
-- (variants.inventory_tracked, kept by a product webhook) and from inventory_items/create|update, stored as the inventory
-- item says it whatever order it arrives in (an item's webhook may come before its product's): the catalog reads the
-- item's, else the variant's. Until 5 Dec 2026 such variants read as out of stock and their products were never recommended.
ALTER TABLE variants ADD COLUMN inventory_tracked boolean;
CREATE TABLE inventory_items (
    shop_id    bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id         bigint NOT NULL,
    tracked    boolean,
    updated_at timestamptz,
    PRIMARY KEY (shop_id, id)
);
-- The item's unit cost goes to its variants (StoreWriter.AddInventoryItem): found by the item, not by walking the shop's variants.
CREATE INDEX variants_inventory_item_idx ON variants (shop_id, inventory_item_id) WHERE inventory_item_id IS NOT NULL;
