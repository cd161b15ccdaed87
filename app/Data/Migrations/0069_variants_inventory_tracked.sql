-- Whether Shopify tracks a variant's stock (its inventory item's `tracked`): stock it does not track (made to order,
-- digital) has a quantity of 0 and is always for sale. Products webhooks no longer carry it (API 2024-07), so it comes
-- from the backfill and from inventory_items/create|update (WebhookTopics), and a product webhook keeps it. Until 5 Dec
-- 2026 such variants read as out of stock and their products were never recommended. The inventory item's own version
-- (inventory_item_updated_at) keeps an older inventory_items delivery from undoing a newer one.
ALTER TABLE variants ADD COLUMN inventory_tracked boolean, ADD COLUMN inventory_item_updated_at timestamptz;
