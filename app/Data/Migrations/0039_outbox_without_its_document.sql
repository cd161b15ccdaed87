-- A queued call's GraphQL document is its operation's (OutboxOperation, found by name when the call is sent); the copy each
-- row kept was never read, and was a few hundred bytes of every call's row and log record.
ALTER TABLE outbox_messages DROP COLUMN document;
