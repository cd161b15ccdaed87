-- customers/redact's second pass (ComplianceService, ErasureSecondPassJob). A writer whose statement began before the
-- erasure committed did not see her tombstone, and can commit her order (email, IP, card) after the erasure has looked
-- for her orders. The request is kept here until every transaction that held a table of personal data when the erasure
-- was first seen (seen_at) has ended; then the erasure runs again and this row is deleted with the rest.
CREATE TABLE erasure_second_passes (
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    customer_id   bigint NOT NULL,
    request       jsonb NOT NULL,
    requested_at  timestamptz NOT NULL,
    seen_at       timestamptz,
    PRIMARY KEY (shop_id, customer_id, requested_at)
);
