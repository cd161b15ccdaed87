-- An install saves the shop first and queues its jobs (the history backfill, the nightly training) after. A process that died
-- between the two left the shop installed with no history and no training, and no later install comes back to queue them.
-- A new install now marks the shop until its jobs are queued; a sweep sets up the shops still marked after a while.
ALTER TABLE shops ADD COLUMN setup_pending_since timestamptz;
