-- Which customer the storefront said owned a cart: the logged-in customer our cart block saw with the cart's token (the
-- carts webhooks carry no customer). Copied from the decision log before it is dropped (90 days), so purchase-intent
-- training reads a cart's customer as the live cart page does however old the cart is. Erased with the customer.
CREATE TABLE cart_customers (
    shop_id      bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    cart_token   text NOT NULL,
    customer_id  bigint NOT NULL,
    seen_at      timestamptz NOT NULL,
    PRIMARY KEY (shop_id, cart_token)
);
CREATE INDEX cart_customers_customer_idx ON cart_customers (shop_id, customer_id);
