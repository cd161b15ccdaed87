-- The offers a cart was shown are found by its token (the decision log searched for an order, DecisionSearch): without an
-- index, that lookup read the store's whole log, newest first (with an order's other lookups, 269 ms in a log of
-- 1,000,000 decisions). Only offer decisions carry a cart token.
CREATE INDEX decisions_cart_idx ON decisions (shop_id, cart_token) WHERE cart_token IS NOT NULL;
