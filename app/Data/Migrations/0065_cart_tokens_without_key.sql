-- Cart tokens as the cart offers stored them until 5 Dec 2026: as /cart.js gives them since June 2024, with the cart's key
-- ("c1-…?key=…"), which the carts and orders webhooks do not carry. Without the key the cart's code, decisions, logged-in
-- customer and erasure find the cart again (CartOffersFeature now strips it on the way in). A cart holds one code: where
-- two rows would name one cart, the code handed out last keeps it and the others let go of the cart.
UPDATE discount_codes d SET cart_token = split_part(d.cart_token, '?', 1)
FROM (SELECT DISTINCT ON (shop_id, split_part(cart_token, '?', 1)) shop_id, code FROM discount_codes
      WHERE cart_token LIKE '%?%' ORDER BY shop_id, split_part(cart_token, '?', 1), handed_out_at DESC NULLS LAST, code) k
WHERE d.shop_id = k.shop_id AND d.code = k.code
  AND NOT EXISTS (SELECT 1 FROM discount_codes b WHERE b.shop_id = d.shop_id AND b.cart_token = split_part(d.cart_token, '?', 1));
UPDATE discount_codes SET cart_token = NULL WHERE cart_token LIKE '%?%';

INSERT INTO cart_customers (shop_id, cart_token, customer_id, seen_at)
SELECT DISTINCT ON (shop_id, split_part(cart_token, '?', 1)) shop_id, split_part(cart_token, '?', 1), customer_id, seen_at
FROM cart_customers WHERE cart_token LIKE '%?%' ORDER BY shop_id, split_part(cart_token, '?', 1), seen_at DESC
ON CONFLICT (shop_id, cart_token) DO NOTHING;
DELETE FROM cart_customers WHERE cart_token LIKE '%?%';

UPDATE decisions SET cart_token = split_part(cart_token, '?', 1) WHERE cart_token LIKE '%?%';
