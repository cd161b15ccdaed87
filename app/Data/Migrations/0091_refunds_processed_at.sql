-- When a refund was made, as Shopify says it (processed_at; GraphQL processedAt since API 2026-01): a refund imported with
-- its order from the store's old platform is created on the import's day, processed when it happened. Churn's history
-- dates a refund by it, as it dates the order by its own (StoreData.OrderTime). Null for refunds stored before it was kept.
ALTER TABLE refunds ADD COLUMN processed_at timestamptz;
