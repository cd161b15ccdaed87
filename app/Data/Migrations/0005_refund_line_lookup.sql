-- Refunded quantity per order line (training reads it for every line; the primary key leads with the refund).
CREATE INDEX refund_lines_line_item_idx ON refund_lines (shop_id, line_item_id);
