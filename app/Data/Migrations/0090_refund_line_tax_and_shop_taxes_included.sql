-- The tax a refunded line gave back (refund_line_items[].total_tax; GraphQL totalTaxSet). In a store whose prices include
-- tax, a refunded line's subtotal holds it: the experiments take the refund off an order's margin without it, as the
-- margin was counted without the order's tax (migration 0089). Null for refund lines stored before it was kept.
ALTER TABLE refund_lines ADD COLUMN total_tax numeric(14,2);

-- Whether the shop's own prices include tax (Shop.taxesIncluded, read at install with its time zone and currency). The
-- catalog's prices are the shop's, so the cart offers read its tax share from the orders that share the setting: a store
-- that sells to a tax-inclusive market from tax-exclusive prices has none in its prices. Null until read.
ALTER TABLE shops ADD COLUMN taxes_included boolean;
