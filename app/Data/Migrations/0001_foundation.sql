-- Foundation schema. Every store row carries shop_id and is keyed by (shop_id, Shopify id),
-- so two shops can never collide and every query can be scoped by shop.

CREATE TABLE shops (
    id                        bigserial PRIMARY KEY,
    domain                    text NOT NULL UNIQUE,
    shopify_shop_id           bigint,
    access_token_enc          text,
    access_token_expires_at   timestamptz,
    refresh_token_enc         text,
    refresh_token_expires_at  timestamptz,
    scopes                    text NOT NULL DEFAULT '',
    installed_at              timestamptz,
    uninstalled_at            timestamptz,
    token_revoked_at          timestamptz,
    iana_timezone             text,
    currency                  text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

-- Every delivery Shopify sent us, raw, once. delivery_id is X-Shopify-Webhook-Id.
CREATE TABLE webhook_deliveries (
    id            bigserial PRIMARY KEY,
    delivery_id   text NOT NULL UNIQUE,
    shop_domain   text NOT NULL,
    shop_id       bigint REFERENCES shops(id) ON DELETE SET NULL,
    topic         text NOT NULL,
    api_version   text,
    event_id      text,
    triggered_at  timestamptz,
    received_at   timestamptz NOT NULL,
    outcome       text NOT NULL,
    body          jsonb NOT NULL
);
CREATE INDEX webhook_deliveries_shop_idx ON webhook_deliveries (shop_id, received_at);

CREATE TABLE customers (
    shop_id      bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id           bigint NOT NULL,
    email        text,
    first_name   text,
    last_name    text,
    phone        text,
    state        text,
    tags         text NOT NULL DEFAULT '',
    accepts_marketing boolean,
    created_at   timestamptz,
    updated_at   timestamptz,
    redacted_at  timestamptz,
    PRIMARY KEY (shop_id, id)
);

CREATE TABLE products (
    shop_id      bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id           bigint NOT NULL,
    title        text NOT NULL DEFAULT '',
    handle       text,
    product_type text,
    vendor       text,
    status       text,
    tags         text NOT NULL DEFAULT '',
    image_url    text,
    created_at   timestamptz,
    updated_at   timestamptz,
    deleted_at   timestamptz,
    PRIMARY KEY (shop_id, id)
);

CREATE TABLE variants (
    shop_id            bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id                 bigint NOT NULL,
    product_id         bigint NOT NULL,
    title              text,
    sku                text,
    price              numeric(14,2),
    compare_at_price   numeric(14,2),
    inventory_quantity integer,
    inventory_policy   text,
    inventory_item_id  bigint,
    unit_cost          numeric(14,4),
    updated_at         timestamptz,
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX variants_product_idx ON variants (shop_id, product_id);

CREATE TABLE orders (
    shop_id            bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id                 bigint NOT NULL,
    name               text,
    customer_id        bigint,
    email              text,
    currency           text,
    total_price        numeric(14,2),
    subtotal_price     numeric(14,2),
    total_discounts    numeric(14,2),
    total_tax          numeric(14,2),
    financial_status   text,
    fulfillment_status text,
    cancelled_at       timestamptz,
    cancel_reason      text,
    cart_token         text,
    checkout_token     text,
    source_name        text,
    browser_ip         text,
    billing_country    text,
    shipping_country   text,
    discount_codes     text NOT NULL DEFAULT '',
    tags               text NOT NULL DEFAULT '',
    test               boolean NOT NULL DEFAULT false,
    created_at         timestamptz,
    updated_at         timestamptz,
    processed_at       timestamptz,
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX orders_customer_idx ON orders (shop_id, customer_id);
CREATE INDEX orders_created_idx ON orders (shop_id, created_at);

CREATE TABLE order_lines (
    shop_id        bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id             bigint NOT NULL,
    order_id       bigint NOT NULL,
    product_id     bigint,
    variant_id     bigint,
    title          text,
    sku            text,
    quantity       integer NOT NULL,
    price          numeric(14,2),
    total_discount numeric(14,2),
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX order_lines_order_idx ON order_lines (shop_id, order_id);

CREATE TABLE refunds (
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id          bigint NOT NULL,
    order_id    bigint NOT NULL,
    note        text,
    amount      numeric(14,2),
    created_at  timestamptz,
    PRIMARY KEY (shop_id, id)
);

-- Keyed by (refund, line item): webhooks and the bulk backfill agree on those ids but not always on the refund line's own id.
CREATE TABLE refund_lines (
    shop_id      bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id           bigint,
    refund_id    bigint NOT NULL,
    order_id     bigint NOT NULL,
    line_item_id bigint NOT NULL,
    quantity     integer NOT NULL,
    subtotal     numeric(14,2),
    restock_type text,
    PRIMARY KEY (shop_id, refund_id, line_item_id)
);
CREATE INDEX refund_lines_order_idx ON refund_lines (shop_id, order_id);

CREATE TABLE carts (
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    token       text NOT NULL,
    note        text,
    total_price numeric(14,2),
    created_at  timestamptz,
    updated_at  timestamptz,
    PRIMARY KEY (shop_id, token)
);

CREATE TABLE cart_lines (
    shop_id    bigint NOT NULL,
    cart_token text NOT NULL,
    line_key   text NOT NULL,
    product_id bigint,
    variant_id bigint,
    quantity   integer NOT NULL,
    price      numeric(14,2),
    PRIMARY KEY (shop_id, cart_token, line_key),
    FOREIGN KEY (shop_id, cart_token) REFERENCES carts(shop_id, token) ON DELETE CASCADE
);

CREATE TABLE checkouts (
    shop_id        bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    id             bigint NOT NULL,
    token          text,
    cart_token     text,
    customer_id    bigint,
    email          text,
    currency       text,
    total_price    numeric(14,2),
    subtotal_price numeric(14,2),
    completed_at   timestamptz,
    created_at     timestamptz,
    updated_at     timestamptz,
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX checkouts_customer_idx ON checkouts (shop_id, customer_id);

CREATE TABLE checkout_lines (
    shop_id     bigint NOT NULL,
    checkout_id bigint NOT NULL,
    line_key    text NOT NULL,
    product_id  bigint,
    variant_id  bigint,
    quantity    integer NOT NULL,
    price       numeric(14,2),
    PRIMARY KEY (shop_id, checkout_id, line_key),
    FOREIGN KEY (shop_id, checkout_id) REFERENCES checkouts(shop_id, id) ON DELETE CASCADE
);

-- customers/data_request: what we hold on a customer, assembled for the merchant.
CREATE TABLE customer_data_requests (
    id              bigserial PRIMARY KEY,
    shop_id         bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    customer_id     bigint NOT NULL,
    data_request_id bigint,
    requested_at    timestamptz NOT NULL,
    export          jsonb NOT NULL
);

-- ASP.NET Core Data Protection key ring (encrypts tokens at rest; shared by every instance).
CREATE TABLE data_protection_keys (
    id            serial PRIMARY KEY,
    friendly_name text NOT NULL UNIQUE,
    xml           text NOT NULL
);
