-- The carts the cart offers showed something (the free-shipping bar, an upsell or a discount code), kept beyond the
-- decision log's 90 days by the nightly cart-links job. Why: purchase-intent training learns a cart's chance of becoming an
-- order when it is shown nothing, the chance the policy weighs each action against; a cart an offer was shown to was
-- partly the offer's doing, and until 6 Dec 2026 it trained the model too (a feedback loop: the more the offers won, the
-- likelier such carts looked to order anyway, and the less the policy offered them). Kept after a customer's erasure, as
-- the cart's own row is: a token and a time, which keep her shown carts out of training.
CREATE TABLE cart_offers_shown (
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    cart_token  text NOT NULL,
    shown_at    timestamptz NOT NULL,
    PRIMARY KEY (shop_id, cart_token)
);
-- The carts the log still holds (its last 90 days): the nightly job copies only the last week's.
INSERT INTO cart_offers_shown (shop_id, cart_token, shown_at)
SELECT shop_id, cart_token, min(decided_at) FROM decisions
WHERE kind = 'offer' AND subject <> 'nothing' AND cart_token IS NOT NULL
GROUP BY shop_id, cart_token
ON CONFLICT DO NOTHING;
