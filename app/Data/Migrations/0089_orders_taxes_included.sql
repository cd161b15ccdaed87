-- Whether the order's prices include its tax, as Shopify says it (taxes_included; GraphQL taxesIncluded). In a store whose
-- prices include tax (the United Kingdom, the European Union, Australia), a price and a subtotal hold the tax the merchant
-- passes on: the cart offers count margin on prices without it (CartOffers.TaxShares) and an order's margin in the
-- experiments leaves it out (Experiments.ExperimentOutcomes). Null for orders stored before it was kept: they count as
-- unknown, and the next delivery or import of the order fills it in.
ALTER TABLE orders ADD COLUMN taxes_included boolean;
