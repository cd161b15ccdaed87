-- What the first pass of customers/redact found: her orders and her storefront visitor ids. The first pass blanks what
-- found them (a guest's email, the orders' visitor ids), so until 5 Dec 2026 the second pass, reading the request again,
-- found neither, and a decision written meanwhile under her visitor id (queued before the erasure, flushed after it) kept
-- it and its inputs. Deleted with the row.
ALTER TABLE erasure_second_passes ADD COLUMN orders bigint[] NOT NULL DEFAULT '{}', ADD COLUMN visitors text[] NOT NULL DEFAULT '{}';
