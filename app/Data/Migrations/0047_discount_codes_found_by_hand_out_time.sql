-- The discount handed out today, which every cart offer checks against the merchant's daily budget (and the hand-out
-- checks again under the shop's lock), is summed over today's hand-outs only. Without an index on the time, the sum read
-- every code the store ever had: 10–16 ms a cart in a store of 54,000 codes over 180 days, 0.1 ms with it.
CREATE INDEX discount_codes_handed_idx ON discount_codes (shop_id, handed_out_at) WHERE handed_out_at IS NOT NULL;
