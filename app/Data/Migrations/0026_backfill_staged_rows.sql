-- Backfills stage Shopify's bulk JSONL as typed rows (COPY, one table per kind of row, mapped once by the app while it
-- streams the file) and merge them into the store tables with a few set-based upserts per chunk, instead of staging
-- raw jsonb lines and applying them object by object. A row is staged with its line number in the file (seq): parents
-- are applied in seq order, a chunk at a time; a child carries its parent's id, wherever it appeared in the file.
-- Why logged: an unlogged table is emptied by a PostgreSQL crash, and a staged phase would then apply nothing.

CREATE TABLE backfill_products (
    run_id bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id bigint NOT NULL, title text NOT NULL, handle text, product_type text, vendor text, status text, tags text NOT NULL,
    image_url text, created_at timestamptz, updated_at timestamptz,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE backfill_variants (
    run_id bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id bigint NOT NULL, product_id bigint NOT NULL, title text, sku text, price numeric, compare_at_price numeric,
    inventory_quantity integer, inventory_policy text, inventory_item_id bigint, unit_cost numeric, updated_at timestamptz
);
CREATE INDEX backfill_variants_parent_idx ON backfill_variants (run_id, product_id);
CREATE TABLE backfill_product_collections (
    run_id bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    product_id bigint NOT NULL, collection_id bigint NOT NULL
);
CREATE INDEX backfill_product_collections_parent_idx ON backfill_product_collections (run_id, product_id);

CREATE TABLE backfill_customers (
    run_id bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id bigint NOT NULL, email text, first_name text, last_name text, phone text, state text, tags text NOT NULL,
    accepts_marketing boolean, created_at timestamptz, updated_at timestamptz,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE backfill_orders (
    run_id bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id bigint NOT NULL, name text, customer_id bigint, email text, currency text, total_price numeric, subtotal_price numeric,
    total_discounts numeric, total_tax numeric, financial_status text, fulfillment_status text, cancelled_at timestamptz,
    cancel_reason text, cart_token text, checkout_token text, source_name text, browser_ip text, billing_country text,
    shipping_country text, discount_codes text NOT NULL, tags text NOT NULL, test boolean NOT NULL, created_at timestamptz,
    updated_at timestamptz, processed_at timestamptz, gateway text, avs_result text, cvv_result text, card_bin text, card_last4 text,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE backfill_order_lines (
    run_id bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id bigint NOT NULL, order_id bigint NOT NULL, product_id bigint, variant_id bigint, title text, sku text,
    quantity integer NOT NULL, price numeric, total_discount numeric
);
CREATE INDEX backfill_order_lines_parent_idx ON backfill_order_lines (run_id, order_id);
-- Refunds come inside their order's line: they carry the order's seq.
CREATE TABLE backfill_refunds (
    run_id bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id bigint NOT NULL, order_id bigint NOT NULL, note text, amount numeric, created_at timestamptz
);
CREATE INDEX backfill_refunds_seq_idx ON backfill_refunds (run_id, seq);
CREATE TABLE backfill_refund_lines (
    run_id bigint NOT NULL REFERENCES backfill_runs(id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    id bigint, refund_id bigint NOT NULL, order_id bigint NOT NULL, line_item_id bigint NOT NULL, quantity integer NOT NULL,
    subtotal numeric, restock_type text
);
CREATE INDEX backfill_refund_lines_seq_idx ON backfill_refund_lines (run_id, seq);

-- A run that had staged raw lines stages its phase again (from the same bulk operation while Shopify still serves it).
UPDATE backfill_runs SET staged_lines = NULL, phase_cursor = 0 WHERE staged_lines IS NOT NULL;
DROP TABLE backfill_lines;
