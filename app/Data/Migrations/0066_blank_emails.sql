-- An email Shopify sent as "" (orders, checkouts and customers without one) was stored as an address until 5 Dec 2026, and
-- order risk matched every such order of a store to every other as "the same email" (returning customer, orders from the
-- same email, its fraud history). Blank is no address (PayloadReader.OptionalEmail, StoreMerge).
UPDATE orders SET email = NULL WHERE btrim(email) = '';
UPDATE checkouts SET email = NULL WHERE btrim(email) = '';
UPDATE customers SET email = NULL WHERE btrim(email) = '';
