-- The recheck of the last day's deletions (DeletedOrdersRecheck, every five minutes) reads them by time, not the whole table.
CREATE INDEX deleted_orders_time_idx ON deleted_orders (deleted_at);
