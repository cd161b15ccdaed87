-- A handed-out code remembers its shopper's address (a keyed hash of what Shopify's proxy reported), for one day: the
-- cart offers give one address at most CartOffers:CodesPerAddressPerDay codes a day (DiscountPool). Cleared by the
-- retention job after two days and by the customer's erasure.
ALTER TABLE discount_codes ADD COLUMN address_hash text;
CREATE INDEX discount_codes_address_idx ON discount_codes (shop_id, address_hash, handed_out_at) WHERE address_hash IS NOT NULL;
