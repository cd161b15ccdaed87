-- The carts the first pass of customers/redact found as hers (redaction_carts). The first pass removes what tied them to
-- her (her cart_customers rows, the decisions' cart tokens, a guest checkout's email), so until 5 Dec 2026 the second pass
-- could not find them again, and a cart row or a kept-aside cart delivery a writer in flight committed after the first pass
-- stayed whole. Deleted with the row.
ALTER TABLE erasure_second_passes ADD COLUMN carts text[] NOT NULL DEFAULT '{}';
