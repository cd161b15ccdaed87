-- An inventory item's unit cost as its newest webhook said it (cost_given: the payload carried the field, null or not).
-- Why keep it: an item's webhook may come before its product's, and until 5 Dec 2026 the cost it carried went to no variant
-- (none held yet) and was lost until the merchant edited it again, so the product's orders had no margin. A variant that
-- arrives without a cost takes its item's (StoreWriter.AddProduct), and a cost the merchant cleared clears the variants'.
ALTER TABLE inventory_items ADD COLUMN unit_cost numeric(14,4), ADD COLUMN cost_given boolean NOT NULL DEFAULT false;
